#!/usr/bin/env bash
# A Docker engine for the container suite (test/containers), on this machine, as root:
#   bash scripts/docker-host.sh        # install docker.io + debootstrap when missing; use the running
#                                      # dockerd, or start one of our own; prints the DOCKER_HOST to use
#   bash scripts/docker-host.sh down   # stop the dockerd this script started (nothing else)
# Our own dockerd runs with --bridge=none --iptables=false (no default bridge, no 172.17.x, no
# firewall changes: kernels use host networking on loopback) and its own data root, exec root and
# socket, so it never touches another engine's state. Its data root keeps images between runs (the
# cached base image, deploy/docker/build-image.sh); containers, volumes and networks are the suite's
# to remove. State: .sense-docker/ (git-ignored): dockerd.pid when we started it, dockerd.log.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${SENSE_DOCKER_DIR:-$PWD/.sense-docker}"
RUN=/run/sense-docker
SOCK="unix://$RUN/docker.sock"
DATA=/var/lib/sense-docker
log() { printf '[docker-host] %s\n' "$*" >&2; }

down() {
  if [ -f "$DIR/dockerd.pid" ]; then
    pid=$(cat "$DIR/dockerd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { log "dockerd $pid did not stop in 15 s: SIGKILL"; kill -KILL "$pid"; }
    fi
    rm -f "$DIR/dockerd.pid"
    log "down (stopped dockerd $pid)"
  fi
}

if [ "${1:-up}" = down ]; then down; exit 0; fi
if [ "$(id -u)" != 0 ]; then log "needs root (apt-get, dockerd)"; exit 1; fi
mkdir -p "$DIR"

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }
fi
# Debian's client (same version as its dockerd): another docker CLI earlier on PATH may speak a newer API.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)

# An engine already running (the system's, or ours from an earlier run) is used as it is.
for host in "${DOCKER_HOST:-}" unix:///var/run/docker.sock "$SOCK"; do
  [ -n "$host" ] || continue
  if DOCKER_HOST="$host" "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "$host"
    exit 0
  fi
done

mkdir -p "$RUN" "$DATA"
log "starting dockerd (--bridge=none --iptables=false, data root $DATA)"
dockerd --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
  --data-root "$DATA" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" -H "$SOCK" \
  --log-level=warn >"$DIR/dockerd.log" 2>&1 &
echo $! >"$DIR/dockerd.pid"
for _ in $(seq 1 300); do
  if DOCKER_HOST="$SOCK" "$DOCKER" version >/dev/null 2>&1; then echo "$SOCK"; exit 0; fi
  kill -0 "$(cat "$DIR/dockerd.pid")" 2>/dev/null || break
  sleep 0.1
done
log "dockerd did not come up; its log:"; tail -20 "$DIR/dockerd.log" >&2
down
exit 1

#!/usr/bin/env bash
# The container suite (test/containers), from a clean machine, as root:
#   1. the project set up (scripts/setup.sh, scripts/setup-gateway.sh);
#   2. a Docker engine: docker.io and debootstrap installed when missing, the running dockerd used,
#      or one of our own started without a bridge (scripts/docker-host.sh);
#   3. the Sense kernel image built (deploy/docker/build-image.sh; the debootstrap base is cached
#      in the engine by the hash of its inputs, the kernel image is rebuilt every run);
#   4. the suite run;
#   5. everything the run created removed, also when it fails: containers, volumes and networks
#      that were not there before, the kernel image, and the dockerd if this script started it.
# Extra arguments go to jest. Exit status: the suite's (or the first failing step's).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[test:containers] %s +%ss\n' "$*" "$SECONDS" >&2; }
[ "$(id -u)" = 0 ] || { echo "[test:containers] needs root (apt-get, dockerd, debootstrap)" >&2; exit 1; }
if [ "${SENSE_SETUP_DONE:-}" != 1 ]; then  # scripts/test.sh has just done both
  bash scripts/setup.sh
  bash scripts/setup-gateway.sh
fi
started_dockerd=0
[ -f .sense-docker/dockerd.pid ] || started_dockerd=1
DOCKER_HOST=$(bash scripts/docker-host.sh)
export DOCKER_HOST
[ -f .sense-docker/dockerd.pid ] || started_dockerd=0
DOCKER=/usr/bin/docker
lines() { "$@" 2>/dev/null | sort; }
before_c=$(lines "$DOCKER" ps -aq --no-trunc)
before_v=$(lines "$DOCKER" volume ls -q)
before_n=$(lines "$DOCKER" network ls -q --no-trunc)
tag="sense-tslab-kernel:test-$$"

cleanup() {
  status=$?
  set +e
  for c in $(comm -13 <(echo "$before_c") <(lines "$DOCKER" ps -aq --no-trunc)); do "$DOCKER" rm -f "$c" >/dev/null && log "removed container $c"; done
  for v in $(comm -13 <(echo "$before_v") <(lines "$DOCKER" volume ls -q)); do "$DOCKER" volume rm -f "$v" >/dev/null && log "removed volume $v"; done
  for n in $(comm -13 <(echo "$before_n") <(lines "$DOCKER" network ls -q --no-trunc)); do "$DOCKER" network rm "$n" >/dev/null && log "removed network $n"; done
  "$DOCKER" image rm -f "$tag" >/dev/null 2>&1
  [ "$started_dockerd" = 1 ] && bash scripts/docker-host.sh down
  log "done (status $status)"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
SENSE_KERNEL_IMAGE=$(bash deploy/docker/build-image.sh --tag "$tag")
export SENSE_KERNEL_IMAGE
log "image $SENSE_KERNEL_IMAGE built in $((SECONDS - t0)) s"
npx jest --ci --forceExit --config ./test/containers/jest.config.js "$@"

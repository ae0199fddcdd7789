#!/usr/bin/env bash
# Builds the Sense kernel image (deploy/docker/Dockerfile) from this repository's build.
#
#   bash deploy/docker/build-image.sh [--base debootstrap|IMAGE] [--tag NAME:TAG]
#
# --base debian:bookworm-slim (or any Debian 12 image) is the build for real deployments; the
# default, debootstrap, works with no image registry: debootstrap --variant=minbase bookworm from
# the Debian mirror, imported as sense-tslab-base:<hash of the base inputs> and reused while
# those inputs do not change (the cache is the engine's own image store). The image gets the
# Node that runs this script (>= 20; Debian 12's nodejs is 18), the package (package.json + dist)
# and its production dependencies copied from node_modules (npm ls --omit=dev), so the build
# needs no npm registry either. Default tag: sense-tslab-kernel:<package version>, the name the
# Docker and Kubernetes kernelspecs and the Helm values use. Prints the tag on stdout.
# Needs: docker (DOCKER_HOST honoured), debootstrap for --base debootstrap, root for debootstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
log() { printf '[build-image] %s +%ss\n' "$*" "$SECONDS" >&2; }
DOCKER=${DOCKER:-/usr/bin/docker}
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
base=debootstrap
version=$(node -p 'require("./package.json").version')
tag="sense-tslab-kernel:$version"
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "usage: build-image.sh [--base debootstrap|IMAGE] [--tag NAME:TAG]" >&2; exit 2 ;;
  esac
done
[[ "$tag" =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || { echo "bad --tag $tag" >&2; exit 2; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "Node >= 20 needed (this is $(node --version))" >&2; exit 1; }
[ -f dist/kernel-extension/eg-launcher/container-entry.js ] || { echo "build first (npx tsc -p tsconfig.json)" >&2; exit 1; }

work=$(mktemp -d /tmp/sense-image-XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$base" = debootstrap ]; then
  suite=bookworm
  mirror=${SENSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  include=ca-certificates
  key=$(printf '%s\n' "minbase $suite $mirror $include v1" | sha256sum | cut -c1-16)
  base="sense-tslab-base:$key"
  if "$DOCKER" image inspect "$base" >/dev/null 2>&1; then
    log "base $base cached"
  else
    log "debootstrap --variant=minbase $suite (base $base)"
    debootstrap --variant=minbase --include="$include" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -c . | "$DOCKER" import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
    rm -rf "$work/rootfs"
    log "base $base imported"
  fi
fi

ctx="$work/context"
mkdir -p "$ctx/opt/sense/node_modules/sense-tslab"
cp "$(command -v node)" "$ctx/node"
cp package.json "$ctx/opt/sense/node_modules/sense-tslab/"
mkdir -p "$ctx/opt/sense/node_modules/sense-tslab/dist"
cp -a dist/src dist/kernel-extension "$ctx/opt/sense/node_modules/sense-tslab/dist/"
# Production dependencies, hoisted as npm installed them (a top-level copy brings its nested ones).
# From the lockfile (scripts/setup.sh installs exactly it with npm ci), not from reading the tree:
# npm ls reading node_modules calls every package extraneous, and fails, when node_modules is a
# symlink (a git worktree sharing another checkout's), and its paths are the lockfile's either way.
# An optional package for another platform (fsevents) is in the lockfile but not installed: skipped.
npm ls --omit=dev --all --parseable --package-lock-only >"$work/deps" 2>"$work/deps.err" \
  || { echo "[build-image] npm ls --omit=dev failed:" >&2; tail -20 "$work/deps.err" >&2; exit 1; }
while read -r p; do
  rel=${p#"$root/node_modules/"}
  [ "$rel" = "$p" ] && continue                       # the project itself
  case "$rel" in */node_modules/*) continue ;; esac  # nested: comes with its parent
  if [ ! -e "$p" ]; then                              # optional, for another platform; else a broken install
    node -e 'process.exit(require("./package-lock.json").packages[process.argv[1]]?.optional ? 0 : 1)' "node_modules/$rel" \
      || { echo "[build-image] node_modules/$rel is missing: run scripts/setup.sh" >&2; exit 1; }
    continue
  fi
  mkdir -p "$ctx/opt/sense/node_modules/$(dirname "$rel")"
  cp -a "$p" "$ctx/opt/sense/node_modules/$rel"
done <"$work/deps"
log "context ready ($(du -sh "$ctx" | cut -f1))"
"$DOCKER" build --network none --build-arg BASE="$base" -t "$tag" -f deploy/docker/Dockerfile "$ctx" >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log" >&2; exit 1; }
log "built $tag"
echo "$tag"

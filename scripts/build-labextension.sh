#!/usr/bin/env bash
# Builds the Sense panel (labextension/, a prebuilt JupyterLab 4 extension) into dist/labextension,
# idempotently: its npm packages are installed from labextension/package-lock.json when that
# changed (the npm registry only; @jupyterlab/core-meta carries JupyterLab's shared-package table,
# so nothing else is downloaded), and it is rebuilt only when a source is newer than the build.
set -euo pipefail
cd "$(dirname "$0")/../labextension"
log() { printf '[labextension] %s\n' "$*" >&2; }
if [ ! -f node_modules/.sense-lock ] || ! cmp -s package-lock.json node_modules/.sense-lock; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.sense-lock
fi
out=../dist/labextension/package.json
if [ -f "$out" ] && [ -z "$(find src style package.json tsconfig.json ../src/protocol/usage.ts ../src/protocol/control.ts -newer "$out" -print -quit)" ]; then
  exit 0
fi
log "building the JupyterLab panel"
rm -rf lib ../dist/labextension
npx tsc -p tsconfig.json
node node_modules/@jupyter/builder/lib/build-labextension.js --core-package-file node_modules/@jupyterlab/core-meta/core.package.json . >/dev/null
test -f "$out"

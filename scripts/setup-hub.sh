#!/usr/bin/env bash
# Adds a real JupyterHub for the hub suite, idempotently (does nothing when the pins did not change):
# - jupyterhub and its dependencies (python/hub-requirements.txt, exact pins) into the project's
#   .venv, where the single-user server (jupyterhub-singleuser, jupyter_server 2.21) must import it;
# - configurable-http-proxy, the hub's proxy, from the npm registry into .venv/hub-proxy
#   (kept out of the project's package.json: only the tests use it).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup-hub] %s\n' "$*" >&2; }
CHP_VERSION=5.3.0
if [ ! -x .venv/bin/python ]; then
  log ".venv is missing: run scripts/setup.sh first"
  exit 1
fi
if [ ! -f .venv/.sense-hub-lock ] || ! cmp -s python/hub-requirements.txt .venv/.sense-hub-lock; then
  log "installing JupyterHub into .venv (python/hub-requirements.txt)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r python/hub-requirements.txt
  cp python/hub-requirements.txt .venv/.sense-hub-lock
fi
if [ ! -x .venv/hub-proxy/node_modules/.bin/configurable-http-proxy ] || [ "$(cat .venv/hub-proxy/.sense-lock 2>/dev/null)" != "$CHP_VERSION" ]; then
  log "installing configurable-http-proxy $CHP_VERSION into .venv/hub-proxy"
  mkdir -p .venv/hub-proxy
  npm install --prefix .venv/hub-proxy --no-audit --no-fund --loglevel=error --no-save "configurable-http-proxy@$CHP_VERSION"
  echo "$CHP_VERSION" > .venv/hub-proxy/.sense-lock
fi
log "ready: jupyterhub $(.venv/bin/jupyterhub --version), configurable-http-proxy $(.venv/hub-proxy/node_modules/.bin/configurable-http-proxy --version)"

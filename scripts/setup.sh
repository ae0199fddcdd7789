#!/usr/bin/env bash
# Sets up everything the project needs, idempotently: npm packages, the project's own Python
# environment with Jupyter (.venv, from python/requirements.lock), the build, and the Sense
# kernelspecs registered into that environment. Safe to run again; does only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log() { printf '[setup] %s\n' "$*" >&2; }

# 1. npm packages (reinstall when package-lock.json changed since the last install).
if [ ! -f node_modules/.sense-lock ] || ! cmp -s package-lock.json node_modules/.sense-lock; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.sense-lock
fi

# 2. The Python environment with Jupyter Server, JupyterLab and ipykernel.
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$py" -m venv .venv
fi
if [ ! -f .venv/.sense-lock ] || ! cmp -s python/requirements.lock .venv/.sense-lock; then
  log "installing Python packages (python/requirements.lock)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r python/requirements.lock
  cp python/requirements.lock .venv/.sense-lock
fi

# 3. Build.
log "building"
npx tsc -p tsconfig.json
# The Sense panel for JupyterLab (labextension/ → dist/labextension), rebuilt only when it changed.
bash scripts/build-labextension.sh
# The harness (local servers, kernel client, demo, lab, reliability table) and the bench: build/, not shipped.
npx tsc -p harness/tsconfig.json

# 4. Register the Sense kernels into the project's environment.
node dist/src/cli.js install --sys-prefix --python "$root/.venv/bin/python" >/dev/null
# Deno's Jupyter kernel (the deno binary comes from PyPI's pinned `deno` wheel, in .venv/bin).
node dist/src/cli.js install-deno --deno "$root/.venv/bin/deno" --sys-prefix --python "$root/.venv/bin/python" >/dev/null
log "ready"

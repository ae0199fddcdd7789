#!/usr/bin/env bash
# Creates Jupyter Enterprise Gateway's own Python environment, .venv-eg, from
# python/eg-requirements.txt (exact pins), idempotently: does nothing when the pins did not change.
# EG 3.3 needs jupyter_server<2 and jupyter_client<7, so it cannot live in the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup-gateway] %s\n' "$*" >&2; }
py=${PYTHON:-python3}
if [ ! -x .venv-eg/bin/python ]; then
  log "creating .venv-eg"
  "$py" -m venv .venv-eg
fi
if [ ! -f .venv-eg/.sense-lock ] || ! cmp -s python/eg-requirements.txt .venv-eg/.sense-lock; then
  log "installing Enterprise Gateway (python/eg-requirements.txt)"
  .venv-eg/bin/python -m pip install --quiet --disable-pip-version-check -r python/eg-requirements.txt
  cp python/eg-requirements.txt .venv-eg/.sense-lock
fi
.venv-eg/bin/jupyter-enterprisegateway --version >/dev/null
log "ready: $(.venv-eg/bin/jupyter-enterprisegateway --version)"

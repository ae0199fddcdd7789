#!/usr/bin/env bash
# `npm run bench`: sets up what the benchmarks need (project setup, pinned Dask distributed and
# ipyparallel in .venv, both idempotent), then runs them and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[bench] %s\n' "$*" >&2; }
bash scripts/setup.sh
if [ ! -f .venv/.sense-bench-lock ] || ! cmp -s python/bench-requirements.txt .venv/.sense-bench-lock; then
  log "installing python/bench-requirements.txt into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r python/bench-requirements.txt
  cp python/bench-requirements.txt .venv/.sense-bench-lock
fi
exec node build/bench/bench.js "$@"

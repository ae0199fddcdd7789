#!/usr/bin/env bash
# The whole test suite from a clean clone: sets up what it needs, then runs jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The gateway project (test/gateway) runs a real Enterprise Gateway (its own .venv-eg) and a real
# JupyterHub (in .venv, with its proxy): both set up idempotently, as setup.sh is.
bash scripts/setup-gateway.sh
bash scripts/setup-hub.sh
# The browser check needs Debian's Chromium; install it where we can (CI runs as root).
if [ ! -x /usr/bin/chromium ] && [ -z "${SENSE_CHROMIUM:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[test] installing chromium for the browser check" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[test] chromium could not be installed: the browser check will be skipped" >&2
fi
npx tsc -p tsconfig.test.json
npx eslint .
mkdir -p artifacts
status=0
# The reliability project (test/reliability) runs here with its CI counts; its figures table is printed below.
rm -f artifacts/reliability/figures.jsonl
npx jest --ci --forceExit --json --outputFile=artifacts/jest.json "$@" || status=$?
node build/harness/reliability.js --table || true
# Workers in real containers (test/containers, docs/scale-out.md): needs root for apt-get, dockerd
# and debootstrap, as CI has; sets up and removes its own engine state. 1.7-1.9 min on a quiet
# machine, 2-6 min while other work runs (first run on a machine: + apt-get and debootstrap, ~2 min).
# Part of the exit status.
if [ "$(id -u)" = 0 ]; then
  SENSE_SETUP_DONE=1 bash scripts/test-containers.sh || status=$?
else
  echo "[test] the container suite needs root: run sudo npm run test:containers" >&2
fi
node -e '
const r = require("./artifacts/jest.json");
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
'
exit $status

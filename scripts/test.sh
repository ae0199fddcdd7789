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
# Workers in real containers (test/containers, docs/scale-out.md) run by hand for now:
# `npm run test:containers` (root). Two of its five tests failed after the kernel-core merge
# (#13 type-checks a TypeScript master's startup code for sense-js workers too; a launch of 4
# container workers timed out under load), so they are out of `npm test` until fixed (issue #17).
node -e '
const r = require("./artifacts/jest.json");
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
'
exit $status

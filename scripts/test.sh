#!/usr/bin/env bash
# The whole test suite from a clean clone: sets up what it needs, then runs jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.test.json
npx eslint .
mkdir -p artifacts
status=0
npx jest --ci --json --outputFile=artifacts/jest.json "$@" || status=$?
node -e '
const r = require("./artifacts/jest.json");
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
'
exit $status

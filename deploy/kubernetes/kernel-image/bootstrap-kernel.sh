#!/bin/sh
# Pod entry point (EG's kernel-pod.yaml.j2 passes these as env): start the Sense kernel through the
# Node EG launcher. Values are passed as separate arguments, never through eval.
set -eu
cd "${KERNEL_WORKING_DIR:-${SENSE_PROJECT_HOME:-$HOME}}"
case "${KERNEL_LANGUAGE:-typescript}" in
  javascript) name=sense-js ;;
  *) name=sense-ts ;;
esac
exec node /opt/sense/node_modules/sense-tslab/dist/kernel-extension/eg-launcher/launch.js \
  --kernel-id "$KERNEL_ID" \
  --port-range "${KERNEL_PORT_RANGE:-0..0}" \
  --response-address "$EG_RESPONSE_ADDRESS" \
  --public-key "$EG_PUBLIC_KEY" \
  --kernel-name "$name"

#!/usr/bin/env bash
# Browser test of the stan-broker web console (headless Chromium through playwright-core).
# Builds nothing: expects target/debug/stan-broker and target/debug/console_seed
# (cargo build -p stan-broker -p stan-examples) and `npm ci` done in this directory.
#   console-test/run.sh            CHROMIUM=/path/to/chromium console-test/run.sh
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
for bin in stan-broker console_seed; do
  if [ ! -x "$ROOT/target/debug/$bin" ]; then
    echo "missing $ROOT/target/debug/$bin (cargo build -p stan-broker -p stan-examples)" >&2
    exit 1
  fi
done
if [ ! -d node_modules/playwright-core ]; then
  echo "missing node_modules: run npm ci in console-test/" >&2
  exit 1
fi
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "missing $CHROMIUM (apt-get install -y chromium chromium-driver)" >&2
  exit 1
fi
# TAP output: its closing summary (# tests, # pass, # fail, ...) is the last thing printed.
exec node --test --test-reporter=tap --test-timeout=120000 console.test.mjs

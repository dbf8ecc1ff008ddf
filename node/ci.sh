#!/usr/bin/env bash
# CI for the Node package `stan-client` (node/), its native addon (bindings/node) and the
# Node examples (examples/node). Exits non-zero on the first failure.
#
#   node/ci.sh                     everything
#   SKIP_PACK_INSTALL=1 node/ci.sh   skip the user-style `npm pack` + `npm install <tarball>`
#
# Steps: npm ci (no install scripts) + explicit debug build of the addon (with the cargo feature
# `test-hooks`: the test helpers of stan-client/testing need it) and the TS layer;
# cargo fmt/clippy/unit tests of the binding crate; tsc --strict --noEmit of tests and
# examples; typedoc (warnings are errors); the node --test suite against stan-broker; the
# examples against a broker started here; then `npm pack` and `npm install <tarball>` into a
# fresh temporary project (which builds the addon in release mode through the package's
# install script, without test hooks) and a smoke test from there that also checks that the
# release addon exposes no test hooks.
set -euo pipefail
NODE_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$NODE_DIR/.." && pwd)"
EXAMPLES="$ROOT/examples/node"
export CARGO_TERM_COLOR=never

step() { echo; echo "---- node: $* ----"; }

BROKER_PID=""
TMP_PROJECT=""
cleanup() {
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  if [ -n "$TMP_PROJECT" ]; then rm -rf "$TMP_PROJECT"; fi
}
trap cleanup EXIT

step "toolchain"
node --version
npm --version
cargo --version

step "stan-broker binary"
cargo build -p stan-broker
export STAN_BROKER_BIN="$ROOT/target/debug/stan-broker"

step "npm ci (no install scripts) + explicit build (addon with test hooks)"
cd "$NODE_DIR"
npm ci --ignore-scripts --no-audit --no-fund
npm run build:native
npm run build:ts

step "binding crate: fmt, clippy, unit tests"
cd "$ROOT"
cargo fmt -p stan-client-node -- --check
cargo clippy -p stan-client-node --all-targets -- -D warnings
cargo clippy -p stan-client-node --all-targets --features test-hooks -- -D warnings
cargo test -p stan-client-node
cargo test -p stan-client-node --features test-hooks

step "tsc --strict --noEmit (tests, examples)"
cd "$NODE_DIR"
npx tsc -p tsconfig.test.json --noEmit
mkdir -p "$EXAMPLES/node_modules"
ln -sfn ../../../node "$EXAMPLES/node_modules/stan-client"
npx tsc -p "$EXAMPLES/tsconfig.json" --noEmit

step "typedoc --treatWarningsAsErrors"
npm run docs

step "node --test"
npm test

step "examples against stan-broker"
BROKER_LOG="$(mktemp)"
BROKER_OUT="$(mktemp)"
# Logs go to standard error; standard output carries only the ready line,
# `STAN_BROKER_READY {"nats":["nats://…"],…}`, printed once the broker accepts clients.
"$STAN_BROKER_BIN" -p 0 -a 127.0.0.1 -cid test-cluster >"$BROKER_OUT" 2>"$BROKER_LOG" &
BROKER_PID=$!
URL=""
for _ in $(seq 1 300); do
  URL="$(sed -n 's/^STAN_BROKER_READY .*"nats":\["\([^"]*\)".*/\1/p' "$BROKER_OUT")"
  [ -n "$URL" ] && break
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$BROKER_LOG"; echo "broker exited" >&2; exit 1; }
  sleep 0.1 # polling the broker's ready line
done
[ -n "$URL" ] || { cat "$BROKER_LOG"; echo "broker not ready" >&2; exit 1; }
npx tsc -p "$EXAMPLES/tsconfig.json"
for ex in quickstart publish subscribe-durable queue-group; do
  echo "== examples/node/$ex.ts"
  timeout 60 node "$EXAMPLES/build/$ex.js" "$URL"
done
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
rm -f "$BROKER_LOG" "$BROKER_OUT"

if [ "${SKIP_PACK_INSTALL:-}" = 1 ]; then
  step "user-style install skipped (SKIP_PACK_INSTALL=1)"
  exit 0
fi

step "user-style install: npm pack, npm install <tarball> in a fresh project"
TMP_PROJECT="$(mktemp -d)"
cd "$NODE_DIR"
TARBALL="$(npm pack --pack-destination "$TMP_PROJECT" | tail -n 1)"
cd "$TMP_PROJECT"
npm init -y >/dev/null
# Share compiled crates with the workspace (a fresh machine still builds everything once).
CARGO_TARGET_DIR="$ROOT/target" npm install --no-audit --no-fund --foreground-scripts "./$TARBALL"
# The tarball carries no addon: its presence proves the install script built it.
ls -la node_modules/stan-client/dist/*.node
cat > smoke.js <<'JS'
const assert = require('node:assert/strict')
const path = require('node:path')
const { connect, isStanError } = require('stan-client')
const { startBroker } = require('stan-client/testing')
;(async () => {
  const broker = await startBroker()
  try {
    const sc = await connect({ clusterId: broker.clusterId, clientId: 'smoke', url: broker.url })
    const guid = await sc.publish('smoke', Buffer.from('hello'))
    const sub = await sc.subscribe('smoke', { durableName: 'd', startAt: 'first', manualAcks: true })
    for await (const msg of sub) {
      assert.equal(msg.data.toString(), 'hello')
      assert.equal(msg.sequence, 1n)
      await msg.ack()
      break
    }
    await assert.rejects(sc.publish('bad.*', 'x'), (e) => isStanError(e, 'INVALID_ARGUMENT'))
    await sc.close()
    // The release addon has no test hooks: no test exports, and the test option is refused.
    const pkgDir = path.dirname(require.resolve('stan-client/package.json'))
    const native = require(path.join(pkgDir, 'dist', 'native.js'))
    const hooks = ['errorKindCodes', 'throwErrorForCode', 'rejectErrorForCode', 'panicAsyncForTest', 'panicSyncForTest']
    assert.deepEqual(hooks.filter((h) => h in native), [], 'release addon exposes test hooks')
    await assert.rejects(
      connect({ clusterId: broker.clusterId, clientId: 'smoke2', url: broker.url, pingIntervalMsForTests: 50 }),
      (e) => isStanError(e, 'INVALID_ARGUMENT') && /test-hooks/.test(e.message),
    )
    console.log(`smoke ok (guid ${guid}; release addon without test hooks)`)
  } finally {
    await broker.stop()
  }
})().catch((e) => { console.error(e); process.exit(1) })
JS
timeout 60 node smoke.js
test -f node_modules/stan-client/dist/index.d.ts
echo
echo "node: all steps passed"

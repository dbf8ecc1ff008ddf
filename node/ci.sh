#!/usr/bin/env bash
# CI for the Node package `stan-client` (node/), its native addon (bindings/node) and the
# Node examples (examples/node). Exits non-zero on the first failure.
#
#   node/ci.sh                     everything
#   SKIP_PACK_INSTALL=1 node/ci.sh   skip the user-style installs (link, --install-links, tarball)
#
# Steps: npm ci (no install scripts) + explicit debug build of the addon (with the cargo feature
# `test-hooks`: the test helpers of stan-client/testing need it) and the TS layer;
# cargo fmt/clippy/unit tests of the binding crate; tsc --strict --noEmit of tests and
# examples; typedoc (warnings are errors); the node --test suite against stan-broker; the
# examples against a broker started here; then the three user-style installs from fresh
# projects: `npm install ./node`, `npm install --install-links ./node` and `npm install
# <tarball>` of `npm pack` (each builds the addon in release mode through the package's install
# script, without test hooks) and a smoke test from each that also checks that the release
# addon exposes no test hooks.
set -euo pipefail
NODE_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$NODE_DIR/.." && pwd)"
EXAMPLES="$ROOT/examples/node"
export CARGO_TERM_COLOR=never

step() { echo; echo "---- node: $* ----"; }

BROKER_PID=""
TMP_PROJECT=""
TMP_LINK=""
cleanup() {
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  if [ -n "$TMP_PROJECT" ]; then rm -rf "$TMP_PROJECT"; fi
  if [ -n "$TMP_LINK" ]; then rm -rf "$TMP_LINK"; fi
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
TEST_LOG="$ROOT/target/node-test.log"
npm test 2>&1 | tee "$TEST_LOG"
TEST_PASSED="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$TEST_LOG")"
TEST_FAILED="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$TEST_LOG")"

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

# The closing line: the summary of the node --test run above.
summary() { echo "node: ${TEST_PASSED:-0} passed, ${TEST_FAILED:-0} failed"; }

if [ "${SKIP_PACK_INSTALL:-}" = 1 ]; then
  step "user-style installs skipped (SKIP_PACK_INSTALL=1)"
  summary
  exit 0
fi

# The three ways a user installs the package, each from a fresh project outside the repository,
# each followed by the same smoke test. The builds share the workspace's target dir
# (CARGO_TARGET_DIR), and the two copy-installs use the same project folder, so the bundled
# sources sit at the same path: only the first of them compiles the workspace crates.
cat > "$ROOT/target/node-smoke.js" <<'JS'
const assert = require('node:assert/strict')
const path = require('node:path')
const { connect, isStanError } = require('stan-client')
const { startBroker } = require('stan-client/testing')
;(async () => {
  const broker = await startBroker()
  try {
    const sc = await connect({ clusterId: broker.clusterId, clientId: 'smoke', url: broker.url })
    const guids = await Promise.all([sc.publish('smoke', Buffer.from('hello')), sc.publish('smoke', 'again')])
    const sub = await sc.subscribe('smoke', { durableName: 'd', startAt: 'first', manualAcks: true })
    const got = []
    for await (const msg of sub) {
      got.push(msg.data.toString())
      if (got.length === 2) {
        await sub.ackMany([msg])
        break
      }
      await msg.ack()
    }
    assert.deepEqual(got, ['hello', 'again'])
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
    console.log(`smoke ok (${guids.length} guids; release addon without test hooks)`)
  } finally {
    await broker.stop()
  }
})().catch((e) => { console.error(e); process.exit(1) })
JS

# install_and_smoke DIR DESCRIPTION NPM-INSTALL-ARGS...
install_and_smoke() {
  local dir="$1" what="$2"
  shift 2
  step "user-style install: $what"
  cd "$dir"
  [ -f package.json ] || npm init -y >/dev/null
  CARGO_TARGET_DIR="$ROOT/target" npm install --no-audit --no-fund --foreground-scripts "$@"
  # A copy-install carries no addon: its presence proves the install script built it.
  ls -la node_modules/stan-client/dist/*.node
  test -f node_modules/stan-client/dist/index.d.ts
  cp "$ROOT/target/node-smoke.js" smoke.js
  timeout 60 node smoke.js
}

TMP_LINK="$(mktemp -d)"
TMP_PROJECT="$(mktemp -d)"
# 1. A link to the checkout (the install script builds in node/ itself).
install_and_smoke "$TMP_LINK" "npm install ./node (a link)" "$NODE_DIR"
# 2. A copy of the folder: npm packs it (running `prepare`, which bundles the Rust sources).
install_and_smoke "$TMP_PROJECT" "npm install --install-links ./node (a copy)" --install-links "$NODE_DIR"
test ! -L "$TMP_PROJECT/node_modules/stan-client"
# 3. The packed tarball.
cd "$NODE_DIR"
TARBALL="$(npm pack --pack-destination "$TMP_PROJECT" | tail -n 1)"
install_and_smoke "$TMP_PROJECT" "npm pack, npm install <tarball>" "./$TARBALL"
echo
echo "node: all steps passed"
summary

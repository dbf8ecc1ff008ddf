#!/usr/bin/env bash
# Runs the Rust client's scenario tests (client-core/tests) against the official
# nats-streaming-server, built from its published Go module by integration/official-server.
# Tests that need control over the broker (restart, freeze, disconnect) print their reason and
# return early in this mode. Ends with cargo's own summary lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

(cd "$here/official-server" && go build -o bin/official-server .)

out=$(mktemp /tmp/official-server.XXXXXX.log)
"$here/official-server/bin/official-server" -p 0 -cid test-cluster -mc 0 >"$out" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT

url=""
for _ in $(seq 300); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "official-server exited during startup:" >&2; cat "$out" >&2; exit 1
  fi
  url=$(sed -n 's/^READY //p' "$out" | head -n1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "official-server did not become ready" >&2; cat "$out" >&2; exit 1; }
echo "official server ready at $url"

cd "$root"
STAN_TEST_SERVER_URL="$url" STAN_TEST_CLUSTER_ID=test-cluster \
  cargo test -p stan-client --tests

#!/usr/bin/env bash
# Load test of stan-broker (release build, memory store, embedded NATS) with the official Go
# client: bench/load-test (built from the Go module proxy) connects CLIENTS clients, makes SUBS
# subscriptions (plain, durable, queue) over 100 channels and one that never acks, publishes
# at RATE msgs/s for DURATION, checks deliveries, and samples the broker's VmRSS.
#
#   bench/load-test.sh                                   # 1000 clients, 10000 subs, 20s
#   CLIENTS=100 SUBS=1000 DURATION=5s bench/load-test.sh  # short version
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-1000}
SUBS=${SUBS:-10000}
RATE=${RATE:-1000}
DURATION=${DURATION:-20s}
SIZE=${SIZE:-128}
NOACK_INFLIGHT=${NOACK_INFLIGHT:-500}
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
ulimit -n 65536 2>/dev/null || true
echo "building: stan-broker (release), bench/load-test" >&2
(cd "$root" && cargo build -q --release -p stan-broker)
tool=$(mktemp -d /tmp/load-test.XXXXXX)/load-test
(cd "$root/bench/load-test" && go build -o "$tool" .)
start_server ours
"$tool" -s "$url" -pid "$pid" -clients "$CLIENTS" -subs "$SUBS" -rate "$RATE" -d "$DURATION" \
  -ms "$SIZE" -noack-inflight "$NOACK_INFLIGHT"

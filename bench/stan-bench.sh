#!/usr/bin/env bash
# Side-by-side throughput of stan-broker and the official nats-streaming-server, measured with
# the official `stan-bench` tool (github.com/nats-io/stan.go/examples/stan-bench, installed from
# the Go module proxy into a temporary GOBIN). Both servers run the memory store with their own
# embedded core-NATS server; runs alternate between them so machine noise hits both alike.
#
#   bench/stan-bench.sh                 # default: 3 rounds, 100k msgs of 128 B
#   ROUNDS=5 MSGS=200000 SIZE=256 bench/stan-bench.sh
#
# Prints one line per scenario with the median msgs/s of each server and the ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
MSGS=${MSGS:-100000}
SIZE=${SIZE:-128}
gobin=${STAN_BENCH_GOBIN:-/tmp/stan-bench-gobin}

echo "building: stan-broker (release), official server, stan-bench" >&2
(cd "$root" && cargo build -q --release -p stan-broker)
(cd "$root/integration/official-server" && go build -o bin/official-server .)
GOBIN=$gobin go install github.com/nats-io/stan.go/examples/stan-bench@v0.10.4

pid=""
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; wait 2>/dev/null || true' EXIT

# start_server ours|official -> sets pid and url
start_server() {
  local log; log=$(mktemp /tmp/stan-bench-server.XXXXXX.log)
  if [ "$1" = ours ]; then
    "$root/target/release/stan-broker" -p 0 -mc 0 -mm 0 -mb 0 >"$log" 2>&1 &
  else
    "$root/integration/official-server/bin/official-server" -p 0 -mc 0 >"$log" 2>&1 &
  fi
  pid=$!
  url=""
  for _ in $(seq 300); do
    url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$log" | head -n1 || true)
    if [ -n "$url" ] && { [ "$1" = official ] || grep -q "^STAN_BROKER_READY " "$log"; }; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "server $1 did not start" >&2; return 1
}

stop_server() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""; }

# run_bench ARGS... -> prints aggregate msgs/sec of the run (publishers for pub-only runs,
# the "NATS Streaming Pub/Sub stats" aggregate otherwise)
run_bench() {
  "$gobin/stan-bench" -s "$url" -n "$MSGS" -ms "$SIZE" "$@" bench.ch 2>&1 |
    awk '/Pub\/Sub stats|Pub stats/ && !done { for (i = 1; i <= NF; i++) if ($i == "msgs/sec") { v = $(i-1) } ; gsub(",", "", v); print v; done = 1 }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

scenarios=(
  "1 publisher|-np 1 -ns 0"
  "1 publisher, 1 subscriber|-np 1 -ns 1"
  "4 publishers, 4 subscribers|-np 4 -ns 4"
  "1 publisher, sync acks|-np 1 -ns 0 -sync"
)
printf '%-30s %14s %14s %8s\n' "scenario ($MSGS x ${SIZE} B)" "stan-broker" "official" "ratio"
for entry in "${scenarios[@]}"; do
  name=${entry%%|*}; args=${entry#*|}
  ours=() theirs=()
  for _ in $(seq "$ROUNDS"); do
    for server in ours official; do
      start_server "$server"
      # shellcheck disable=SC2086
      v=$(run_bench $args)
      stop_server
      if [ "$server" = ours ]; then ours+=("$v"); else theirs+=("$v"); fi
    done
  done
  o=$(printf '%s\n' "${ours[@]}" | median); t=$(printf '%s\n' "${theirs[@]}" | median)
  printf '%-30s %14s %14s %7.2fx\n' "$name" "$o" "$t" "$(echo "$o $t" | awk '{ print ($2 > 0) ? $1 / $2 : 0 }')"
done

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
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
build_all

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

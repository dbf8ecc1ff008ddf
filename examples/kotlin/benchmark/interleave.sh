#!/usr/bin/env bash
# Interleaved A/B runs of benchmark jars against the official client (java-nats-streaming), for
# comparing two builds of the Kotlin package on a noisy machine: every round runs each variant
# once per case, each against a fresh release stan-broker, and the summary gives per-variant
# medians and the median of the per-round ratios to the official client.
#
#   examples/kotlin/benchmark/interleave.sh ROUNDS "VARIANT..." "SCENARIO:SIZE:MESSAGES..." >runs.jsonl
#   examples/kotlin/benchmark/interleave.sh --summary runs.jsonl...
#
# VARIANT: `official` (java-nats-streaming, run from the first jar given) or the path of a
# benchmark.jar (`mvn package` here; copy it aside before rebuilding); it is labelled by its file
# name. Example, from the repository root:
#
#   examples/kotlin/benchmark/interleave.sh 11 "/tmp/before.jar official /tmp/after.jar" \
#       "consume-auto:128:50000 consume-manual:128:50000 consume-auto:16384:2000 consume-manual:16384:2000"
#
# Needs target/release/stan-broker (`cargo build --release -p stan-broker`), java and jq.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"

if [ "${1:-}" = --summary ]; then
  shift
  exec python3 - "$@" <<'PY'
import collections, json, statistics as st, sys
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.startswith("{")]
rates, rounds = collections.defaultdict(list), collections.defaultdict(dict)
for r in rows:
    rates[(r["scenario"], r["size"], r["variant"])].append(r["msgs_per_sec"])
    rounds[(r["scenario"], r["size"], r["round"])][r["variant"]] = r["msgs_per_sec"]
ratios = collections.defaultdict(list)
for (sc, size, _), v in rounds.items():
    for name, x in v.items():
        if name != "official" and "official" in v:
            ratios[(sc, size, name)].append(x / v["official"])
for (sc, size, name) in sorted(rates):
    xs = rates[(sc, size, name)]
    line = f"{sc:15s} {size:6d} {name:12s} median {st.median(xs):10,.0f} msgs/s (n={len(xs)})"
    if (sc, size, name) in ratios:
        rs = ratios[(sc, size, name)]
        line += f"  ratio to official: median {st.median(rs):.2f}x, range {min(rs):.2f}-{max(rs):.2f}"
    print(line)
PY
fi

rounds=${1:?rounds}; variants=${2:?variants}; cases=${3:?cases}
first_jar=""
for v in $variants; do [ "$v" != official ] && { first_jar=$v; break; }; done
[ -n "$first_jar" ] || { echo "interleave.sh: give at least one jar" >&2; exit 2; }

pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT
start_broker() {
  local log; log=$(mktemp /tmp/interleave-broker.XXXXXX.log)
  "$root/target/release/stan-broker" -p 0 -mc 0 -mm 0 -mb 0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    if grep -q "^STAN_BROKER_READY " "$log"; then
      url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$log" | head -n1); rm -f "$log"; return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "the broker did not start" >&2; return 1
}
stop_broker() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; }

for r in $(seq "$rounds"); do
  for c in $cases; do
    IFS=: read -r scenario size n <<<"$c"
    for v in $variants; do
      if [ "$v" = official ]; then jar=$first_jar client=official label=official
      else jar=$v client=ours label=$(basename "$v" .jar); fi
      start_broker || exit 1
      out=$(timeout 300 java -jar "$jar" --client "$client" --scenario "$scenario" --messages "$n" \
        --size "$size" --url "$url" --cluster-id test-cluster --channel "bench$r" | tail -n1)
      stop_broker
      echo "$out" | jq -c --arg v "$label" --argjson r "$r" '. + {variant: $v, round: $r}' \
        || echo "interleave.sh: no result for $label $c in round $r" >&2
    done
  done
done

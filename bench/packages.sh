#!/usr/bin/env bash
# Each package next to the official client it replaces, against the same release stan-broker
# (memory store), with the Rust client as the floor. Every measurement is one process of the
# package's benchmark program, which prints one JSON line (the contract in docs/benchmarks.md).
#
#   bench/packages.sh                       # all languages, ROUNDS=3
#   bench/packages.sh --quick               # fewer messages, 1 round
#   bench/packages.sh --only python,rust    # some languages (python, node, kotlin, rust)
#   bench/packages.sh --write-docs          # also replace the table in docs/benchmarks.md
#
# Environment (defaults in brackets):
#   ROUNDS [3, --quick: 1]    rounds; each round runs every program once, ours then official
#   MSGS [50000]              messages of 128 B for pipelined publish and consume
#   MSGS_LARGE [2000]         messages of 16 KiB for pipelined publish and consume
#   AWAITED [5000]            messages for awaited publish (128 B); AWAITED_LARGE [2000] (16 KiB)
#   SIZES ["128 16384"]       payload sizes
#   SCENARIOS ["pub-pipelined pub-awaited consume-auto consume-manual"]
#   PY_OURS [/tmp/bench-ours/bin/python, else python3]
#                             a Python with the stan_client release wheel installed
#   PY_OFFICIAL [/tmp/bench-official/bin/python, else python3]
#                             a Python 3.9 with asyncio-nats-streaming 0.4.0 installed
#                             (python/bench/README.md sets both up)
#   NODE [node]               runs examples/node/bench/bench.js (node/ built, npm install done there)
#   JAVA [java]               runs examples/kotlin/benchmark/target/benchmark.jar
#   JVM_WARMUP [the run's message count]
#                             messages of the same scenario each Kotlin/Java program runs
#                             untimed first, on a channel of its own (0: none, a cold JVM)
#   NO_BUILD [unset]          set to skip `cargo build --release` of stan-broker and stan-client-bench
#   RUN_TIMEOUT [300]         seconds before one measurement is given up
#
# Before a language is measured, both of its programs run a 20-message probe; a language whose
# program or official client is missing (or does not print the JSON line) is skipped with a
# message on stderr. The Rust row's official side is the official Go client (stan-bench from
# stan.go, its async and -sync modes), for publishes only; its round trip is a mean (1e6 / rate).
#
# Output: a markdown table on stdout (medians over the rounds); progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=0 write_docs=0 only="python,node,kotlin,rust"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --write-docs) write_docs=1 ;;
    --only) only=${2:?--only needs a list, e.g. python,rust}; shift ;;
    --only=*) only=${1#--only=} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "packages.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for l in ${only//,/ }; do
  case $l in python|node|kotlin|rust) ;; *) echo "packages.sh: unknown language $l" >&2; exit 2 ;; esac
done

if [ "$quick" = 1 ]; then
  ROUNDS=${ROUNDS:-1} MSGS=${MSGS:-10000} MSGS_LARGE=${MSGS_LARGE:-1000}
  AWAITED=${AWAITED:-1000} AWAITED_LARGE=${AWAITED_LARGE:-500}
fi
ROUNDS=${ROUNDS:-3}
MSGS=${MSGS:-50000}
MSGS_LARGE=${MSGS_LARGE:-2000}
AWAITED=${AWAITED:-5000}
AWAITED_LARGE=${AWAITED_LARGE:-2000}
SIZES=${SIZES:-128 16384}
SCENARIOS=${SCENARIOS:-pub-pipelined pub-awaited consume-auto consume-manual}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
CLUSTER=test-cluster
default_py() { if [ -x "$1/bin/python" ]; then echo "$1/bin/python"; else echo python3; fi; }
PY_OURS=${PY_OURS:-$(default_py /tmp/bench-ours)}
PY_OFFICIAL=${PY_OFFICIAL:-$(default_py /tmp/bench-official)}
NODE=${NODE:-node}
JAVA=${JAVA:-java}

# shellcheck source=bench/common.sh
. "$root/bench/common.sh"

if [ -z "${NO_BUILD:-}" ]; then
  echo "building: stan-broker and stan-client-bench (release)" >&2
  cargo build -q --release -p stan-broker -p stan-client-bench
fi
case ",$only," in *,rust,*) install_stan_bench ;; esac

results=$(mktemp /tmp/packages-bench.XXXXXX.jsonl)
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; wait 2>/dev/null || true; rm -f "$results"' EXIT

# go_bench SCENARIO N SIZE CHANNEL: the official Go client (stan-bench) as one contract line.
go_bench() {
  local scenario=$1 n=$2 size=$3 channel=$4 rssf out rate sync=""
  case $scenario in
    pub-pipelined) ;;
    pub-awaited) sync=-sync ;;
    *) echo "no Go measurement for $scenario" >&2; return 1 ;;
  esac
  rssf=$(mktemp)
  out=$(/usr/bin/time -f '%M' -o "$rssf" "$gobin/stan-bench" -s "$url" -c "$CLUSTER" \
    -id "go-bench-$$" -np 1 -ns 0 -n "$n" -ms "$size" -mpa "$n" $sync "$channel" 2>&1) || { echo "$out" >&2; rm -f "$rssf"; return 1; }
  rate=$(echo "$out" | awk '/Pub stats/ { for (i = 1; i <= NF; i++) if ($i == "msgs/sec") v = $(i-1); gsub(",", "", v); print v; exit }')
  [ -n "$rate" ] || { echo "$out" >&2; rm -f "$rssf"; return 1; }
  jq -nc --arg s "$scenario" --argjson size "$size" --argjson n "$n" --argjson rate "$rate" \
    --argjson rss "$(tail -n1 "$rssf")" \
    '{lang: "go", client: "official", scenario: $s, size: $size, messages: $n,
      seconds: ($n / $rate), msgs_per_sec: $rate, p50_us: null, p99_us: null, rss_kb: $rss}'
  rm -f "$rssf"
}

# run_one LANG SIDE SCENARIO N SIZE CHANNEL: one measurement; prints its JSON line.
# SIDE: ours, official, or ours-batch (Rust: start_publish_batch instead of the publish_async loop).
run_one() {
  local lang=$1 side=$2 scenario=$3 n=$4 size=$5 channel=$6 client=$2 extra=()
  [ "$side" = ours-batch ] && { client=ours; extra=(--pub-mode batch); }
  local args=(--client "$client" --scenario "$scenario" --messages "$n" --size "$size"
    --url "$url" --cluster-id "$CLUSTER" --channel "$channel" "${extra[@]}")
  case $lang in
    python) if [ "$side" = ours ]; then py=$PY_OURS; else py=$PY_OFFICIAL; fi
            timeout "$RUN_TIMEOUT" "$py" python/bench/bench_clients.py "${args[@]}" ;;
    node)   timeout "$RUN_TIMEOUT" "$NODE" examples/node/bench/bench.js "${args[@]}" ;;
    kotlin) timeout "$RUN_TIMEOUT" "$JAVA" -jar examples/kotlin/benchmark/target/benchmark.jar "${args[@]}" \
              --warmup "${JVM_WARMUP:-$n}" ;;
    rust)   if [ "$side" = official ]; then
              go_bench "$scenario" "$n" "$size" "$channel"
            else
              timeout "$RUN_TIMEOUT" target/release/stan-client-bench "${args[@]}"
            fi ;;
  esac | tail -n1
}

# measure LANG SIDE SCENARIO N SIZE ROUND: run_one, check the line, append it to the results.
measure() {
  local lang=$1 side=$2 scenario=$3 n=$4 size=$5 round=$6 line
  local channel="bench.$lang.$side.$scenario.$size.$round.$RANDOM"
  if ! line=$(run_one "$lang" "$side" "$scenario" "$n" "$size" "$channel") ||
     ! echo "$line" | jq -e '.msgs_per_sec > 0' >/dev/null 2>&1; then
    echo "  $lang $side $scenario $size: FAILED (${line:-no output})" >&2
    return 1
  fi
  echo "$line" | jq -c --arg pkg "$lang" --arg side "$side" --argjson round "$round" \
    '{pkg: $pkg, side: $side, round: $round} + .' >>"$results"
  echo "  $lang $side $scenario $size: $(echo "$line" | jq -r '"\(.msgs_per_sec | floor) msgs/s p50=\(.p50_us) p99=\(.p99_us) rss=\(.rss_kb) kB"')" >&2
}

# The sides each language runs, in order, for SCENARIO.
sides() {
  case $1/$2 in
    rust/pub-pipelined) echo ours ours-batch official ;;
    rust/pub-awaited) echo ours official ;;
    rust/*) echo ours ;;
    *) echo ours official ;;
  esac
}

# Probe: a 20-message pipelined publish of each side of each language.
langs=()
start_server ours
for lang in ${only//,/ }; do
  ok=1
  for side in $(sides "$lang" pub-pipelined); do
    if ! line=$(run_one "$lang" "$side" pub-pipelined 20 128 "probe.$lang.$side" 2>/tmp/packages-probe.err) ||
       ! echo "$line" | jq -e '.msgs_per_sec > 0' >/dev/null 2>&1; then
      echo "packages.sh: skipping $lang: its $side benchmark does not run ($(tail -n3 /tmp/packages-probe.err | tr '\n' ' '))" >&2
      ok=0; break
    fi
  done
  [ "$ok" = 1 ] && langs+=("$lang")
done
stop_server
[ ${#langs[@]} -gt 0 ] || { echo "packages.sh: nothing to measure" >&2; exit 1; }
echo "measuring: ${langs[*]} (rounds: $ROUNDS)" >&2

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for size in $SIZES; do
  for scenario in $SCENARIOS; do
    if [ "$scenario" = pub-awaited ]; then
      if [ "$size" -ge 4096 ]; then n=$AWAITED_LARGE; else n=$AWAITED; fi
    else
      if [ "$size" -ge 4096 ]; then n=$MSGS_LARGE; else n=$MSGS; fi
    fi
    echo "$scenario, $n x $size B" >&2
    for round in $(seq "$ROUNDS"); do
      # A fresh broker for every round keeps the memory store's size bounded.
      start_server ours
      for lang in "${langs[@]}"; do
        for side in $(sides "$lang" "$scenario"); do
          measure "$lang" "$side" "$scenario" "$n" "$size" "$round" || true
        done
      done
      stop_server
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table=$(python3 - "$results" <<'EOF'
import json, statistics, sys
from collections import defaultdict

rows = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[(r["pkg"], r["side"], r["scenario"], r["size"])].append(r)

def med(key, pkg, side, scen, size):
    vals = [r[key] for r in rows.get((pkg, side, scen, size), []) if r.get(key) is not None]
    return statistics.median(vals) if vals else None

def rate(v):
    return "—" if v is None else f"{v:,.0f} msgs/s"

def size_name(s):
    return f"{s // 1024} KiB" if s >= 1024 and s % 1024 == 0 else f"{s} B"

names = {"python": ("Python", "asyncio-nats-streaming 0.4.0", 5.0),
         "node": ("Node", "node-nats-streaming 0.3.2", 3.0),
         "kotlin": ("Kotlin", "java-nats-streaming 2.2.3", 2.0),
         "rust": ("Rust (floor)", "Go stan.go 0.10.4", None)}
order = ["pub-pipelined", "pub-awaited", "consume-auto", "consume-manual"]
pkgs = [p for p in names if any(k[0] == p for k in rows)]
sizes = sorted({k[3] for k in rows})

out = ["| package | scenario | size | ours | official | ratio | target | Rust floor | RSS ours / official |",
       "|---|---|---|---|---|---|---|---|---|"]
for pkg in pkgs:
    label, official, target = names[pkg]
    for size in sizes:
        for scen in order:
            o = med("msgs_per_sec", pkg, "ours", scen, size)
            t = med("msgs_per_sec", pkg, "official", scen, size)
            if o is None and t is None:
                continue
            ocell, tcell = rate(o), rate(t)
            floor = med("msgs_per_sec", "rust", "ours", scen, size)
            fcell = rate(floor) if pkg != "rust" else "—"
            if scen == "pub-awaited":
                p50, p99 = med("p50_us", pkg, "ours", scen, size), med("p99_us", pkg, "ours", scen, size)
                if p50 is not None:
                    ocell += f" (p50 {p50:.0f} µs, p99 {p99:.0f} µs)"
                t50, t99 = med("p50_us", pkg, "official", scen, size), med("p99_us", pkg, "official", scen, size)
                if t50 is not None:
                    tcell += f" (p50 {t50:.0f} µs, p99 {t99:.0f} µs)"
                elif t:
                    tcell += f" (mean {1e6 / t:.0f} µs)"
                f50 = med("p50_us", "rust", "ours", scen, size)
                if pkg != "rust" and f50 is not None:
                    fcell += f" (p50 {f50:.0f} µs)"
            ratio = f"{o / t:.2f}×" if o and t else "—"
            if pkg == "rust":
                goal = "round trip ≤ Go's" if scen == "pub-awaited" else ""
                if scen == "pub-awaited" and o and t:
                    goal += " (" + ("met" if o >= t else "missed") + ")"
            else:
                want = 1.5 if scen == "pub-awaited" else target
                goal = f"≥ {want:g}×"
                if o and t:
                    r = o / t
                    goal += " (met)" if r >= want else (" (missed, below 1×)" if r < 1 else " (missed)")
                if scen == "pub-awaited":
                    p50 = med("p50_us", pkg, "ours", scen, size)
                    f50 = med("p50_us", "rust", "ours", scen, size)
                    if p50 and f50:
                        rt = p50 / f50
                        goal += f"; round trip {rt:.2f}× Rust's, ≤ 1.3× " + ("(met)" if rt <= 1.3 else "(missed)")
            ro = med("rss_kb", pkg, "ours", scen, size)
            rt_ = med("rss_kb", pkg, "official", scen, size)
            rss = f"{(ro or 0) / 1024:.0f} / " + ("—" if rt_ is None else f"{rt_ / 1024:.0f}") + " MB"
            name = f"{label} vs {official}" if scen == order[0] and size == sizes[0] else ""
            out.append(f"| {name} | {scen} | {size_name(size)} | {ocell} | {tcell} | {ratio} | {goal} | {fcell} | {rss} |")
        if pkg == "rust":
            b = med("msgs_per_sec", "rust", "ours-batch", "pub-pipelined", size)
            if b is not None:
                out.append(f"| | pub-pipelined, `start_publish_batch` | {size_name(size)} | {rate(b)} | | | | — | "
                           f"{(med('rss_kb', 'rust', 'ours-batch', 'pub-pipelined', size) or 0) / 1024:.0f} MB |")
print("\n".join(out))
EOF
)
meta="Run of \`bench/packages.sh$([ "$quick" = 1 ] && echo ' --quick') --only $(IFS=,; echo "${langs[*]}")\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $ROUNDS round(s), medians; $MSGS × 128 B / $MSGS_LARGE × 16 KiB for pipelined publish and consume, $AWAITED / $AWAITED_LARGE for awaited publish; load average before / after: $load_before / $load_after."
printf '%s\n\n%s\n' "$meta" "$table"

if [ "$write_docs" = 1 ]; then
  doc=docs/benchmarks.md
  python3 - "$doc" "$meta" "$table" <<'EOF'
import sys
doc, meta, table = sys.argv[1:4]
text = open(doc).read()
begin, end = "<!-- packages.sh:begin -->", "<!-- packages.sh:end -->"
if begin not in text or end not in text:
    sys.exit(f"{doc}: the markers {begin} / {end} are missing; add them where the table goes")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(f"{head}{begin}\n{meta}\n\n{table}\n{end}{tail}")
EOF
  echo "wrote the table into $doc" >&2
fi

# Shared by bench/stan-bench.sh and bench/file-store.sh (sourced, not run). Expects `root` set to
# the repository root; honours MSGS, SIZE and STAN_BENCH_GOBIN.
gobin=${STAN_BENCH_GOBIN:-/tmp/stan-bench-gobin}
# The official server binary start_server runs: integration/official-server (a small Go main over
# the published nats-streaming-server module, with -file_sync and -mm/-mb for the benchmarks).
official_bin=$root/integration/official-server/bin/official-server

# build_all: stan-broker (release), the official server and the stan-bench tool
build_all() {
  echo "building: stan-broker (release), official server, stan-bench" >&2
  (cd "$root" && cargo build -q --release -p stan-broker)
  (cd "$root/integration/official-server" && go build -o bin/official-server .)
  install_stan_bench
}

# install_stan_bench: the official stan-bench tool (the official Go client), into $gobin
install_stan_bench() {
  GOBIN=$gobin go install github.com/nats-io/stan.go/examples/stan-bench@v0.10.4
}

pid=""
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; wait 2>/dev/null || true' EXIT

# start_server ours|official [EXTRA ARGS...] -> sets pid and url. Both run with unlimited
# channel limits (-mc 0 -mm 0 -mb 0); extra arguments go to both servers alike.
start_server() {
  local kind=$1; shift
  local log; log=$(mktemp /tmp/stan-bench-server.XXXXXX.log)
  if [ "$kind" = ours ]; then
    "$root/target/release/stan-broker" -p 0 -mc 0 -mm 0 -mb 0 "$@" >"$log" 2>&1 &
  else
    "$official_bin" -p 0 -mc 0 -mm 0 -mb 0 "$@" >"$log" 2>&1 &
  fi
  pid=$!
  url=""
  for _ in $(seq 600); do
    url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$log" | head -n1 || true)
    if [ -n "$url" ] && { [ "$kind" = official ] || grep -q "^STAN_BROKER_READY " "$log"; }; then
      rm -f "$log"; return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "server $kind did not start" >&2; return 1
}

stop_server() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""; }

# run_bench ARGS... -> prints aggregate msgs/sec of the run (publishers for pub-only runs,
# the "NATS Streaming Pub/Sub stats" aggregate otherwise). -n defaults to MSGS.
run_bench() {
  "$gobin/stan-bench" -s "$url" -n "$MSGS" -ms "$SIZE" "$@" bench.ch 2>&1 |
    awk '/Pub\/Sub stats|Pub stats/ && !done { for (i = 1; i <= NF; i++) if ($i == "msgs/sec") { v = $(i-1) } ; gsub(",", "", v); print v; done = 1 }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { echo "$1 $2" | awk '{ print ($2 > 0) ? $1 / $2 : 0 }'; }

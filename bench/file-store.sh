#!/usr/bin/env bash
# Side-by-side FILE store benchmark of stan-broker and the official nats-streaming-server
# (v0.25.6), measured with the official `stan-bench` tool. Both servers run
# `-st FILE --dir D` in a fresh temporary directory per run, with their embedded core-NATS
# server and unlimited channel limits; runs alternate between the servers (and which goes first
# alternates by round) so machine noise hits both alike. The official server is
# integration/official-server (built by build_all in bench/common.sh), run with -file_sync and
# -mm 0 -mb 0.
#
#   bench/file-store.sh                        # 3 rounds, 100k msgs of 128 B, 1M-message restart
#   ROUNDS=5 MSGS=200000 SYNC_MSGS=10000 RESTART_MSGS=1000000 bench/file-store.sh
#   PART=throughput bench/file-store.sh        # only the stan-bench scenarios (or PART=restart)
#
# Environment: ROUNDS, MSGS, SIZE, SYNC_MSGS (messages of the publish-and-wait scenarios),
# RESTART_MSGS, RESTART_ROUNDS, BENCH_DIR (parent of the temporary store directories, default
# /tmp: put it on the disk you want to measure).
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
MSGS=${MSGS:-100000}
SIZE=${SIZE:-128}
SYNC_MSGS=${SYNC_MSGS:-5000}
RESTART_MSGS=${RESTART_MSGS:-1000000}
RESTART_ROUNDS=${RESTART_ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp}
PART=${PART:-all}
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
build_all

# fdatasync cost of the disk under BENCH_DIR: 1000 synchronous 4 KiB writes
disk_probe() {
  local f t0 t1
  f=$(mktemp "$BENCH_DIR/stan-bench-dd.XXXXXX")
  t0=$EPOCHREALTIME
  dd if=/dev/zero of="$f" bs=4k count=1000 oflag=dsync status=none
  t1=$EPOCHREALTIME
  rm -f "$f"
  echo "$t0 $t1" | awk '{ printf "disk: 1000 x 4 KiB dd oflag=dsync in %.3f s = %.0f us per synced write\n", $2 - $1, ($2 - $1) * 1000 }'
}

order() { if [ $(($1 % 2)) -eq 1 ]; then echo "ours official"; else echo "official ours"; fi; }

throughput() {
  # name|stan-bench args|server args|unit (rate: msgs/s, lat: us per publish)
  local scenarios=(
    "async, file_sync on, 1 publisher|-np 1 -ns 0||rate"
    "async, file_sync on, 4 publishers|-np 4 -ns 0||rate"
    "async, file_sync off, 1 publisher|-np 1 -ns 0|--file_sync=false|rate"
    "async, file_sync off, 4 publishers|-np 4 -ns 0|--file_sync=false|rate"
    "sync publish, file_sync on|-np 1 -ns 0 -sync -n $SYNC_MSGS||lat"
    "sync publish, file_sync off|-np 1 -ns 0 -sync -n $SYNC_MSGS|--file_sync=false|lat"
  )
  printf '%-50s %12s %12s %8s   %s\n' "scenario (${SIZE} B)" "stan-broker" "official" "ratio" "runs (ours; official)"
  local entry name rest args sargs unit ours theirs r server dir v o t
  for entry in "${scenarios[@]}"; do
    IFS='|' read -r name args sargs unit <<<"$entry"
    ours=() theirs=()
    for r in $(seq "$ROUNDS"); do
      for server in $(order "$r"); do
        dir=$(mktemp -d "$BENCH_DIR/stan-bench-store.XXXXXX")
        # shellcheck disable=SC2086
        start_server "$server" -st FILE --dir "$dir" $sargs
        # shellcheck disable=SC2086
        v=$(run_bench $args)
        stop_server
        rm -rf "$dir"
        [ -n "$v" ] || v=0
        if [ "$server" = ours ]; then ours+=("$v"); else theirs+=("$v"); fi
      done
    done
    o=$(printf '%s\n' "${ours[@]}" | median); t=$(printf '%s\n' "${theirs[@]}" | median)
    if [ "$unit" = lat ]; then
      # microseconds per publish (1e6 / msgs/s); ratio = official / ours (> 1: ours faster)
      printf '%-50s %9.1f us %9.1f us %7.2fx   %s; %s msgs/s\n' "$name" \
        "$(ratio 1000000 "$o")" "$(ratio 1000000 "$t")" "$(ratio "$o" "$t")" "${ours[*]}" "${theirs[*]}"
    else
      printf '%-50s %12s %12s %7.2fx   %s; %s msgs/s\n' "$name ($MSGS msgs)" "$o" "$t" "$(ratio "$o" "$t")" "${ours[*]}" "${theirs[*]}"
    fi
  done
}

# time_ready ours|official DIR -> prints "seconds VmRSS_kB VmHWM_kB": from process start to its
# ready line on stdout (ours: STAN_BROKER_READY, official: READY, printed once the store is
# recovered and clients are served), memory read from /proc once ready; then stops the server.
time_ready() {
  local kind=$1 dir=$2 pat t0 t1 line rss hwm
  local cmd
  if [ "$kind" = ours ]; then
    cmd=("$root/target/release/stan-broker" -p 0 -mc 0 -mm 0 -mb 0 -st FILE --dir "$dir"); pat='^STAN_BROKER_READY '
  else
    cmd=("$official_bin" -p 0 -mc 0 -mm 0 -mb 0 -st FILE --dir "$dir"); pat='^READY '
  fi
  t0=$EPOCHREALTIME
  coproc SRV { exec "${cmd[@]}" 2>/dev/null; }
  pid=$SRV_PID
  while IFS= read -r line <&"${SRV[0]}"; do [[ $line =~ $pat ]] && break; done
  t1=$EPOCHREALTIME
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
  stop_server
  echo "$t0 $t1 $rss $hwm" | awk '{ printf "%.3f %d %d\n", $2 - $1, $3, $4 }'
}

restart() {
  local server dir fill_rate fill_rss r res secs=() rss=() hwm=()
  declare -A dirs
  echo "filling one store per server with $RESTART_MSGS x $SIZE B (stan-bench, 1 publisher, file_sync off)"
  for server in ours official; do
    dir=$(mktemp -d "$BENCH_DIR/stan-bench-restart.XXXXXX"); dirs[$server]=$dir
    start_server "$server" -st FILE --dir "$dir" --file_sync=false
    fill_rate=$(MSGS=$RESTART_MSGS run_bench -np 1 -ns 0)
    fill_rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
    stop_server
    echo "  $server: filled at $fill_rate msgs/s, VmRSS after the fill $((fill_rss / 1024)) MB, store $(du -sh "$dir" | cut -f1)"
  done
  declare -A s_secs s_rss s_hwm
  for r in $(seq "$RESTART_ROUNDS"); do
    for server in $(order "$r"); do
      res=$(time_ready "$server" "${dirs[$server]}")
      read -r a b c <<<"$res"
      s_secs[$server]+="$a "; s_rss[$server]+="$b "; s_hwm[$server]+="$c "
    done
  done
  printf '%-28s %12s %12s %8s   %s\n' "restart, $RESTART_MSGS msgs" "stan-broker" "official" "ratio" "runs (ours; official)"
  local m_o m_t
  m_o=$(tr ' ' '\n' <<<"${s_secs[ours]}" | grep . | median); m_t=$(tr ' ' '\n' <<<"${s_secs[official]}" | grep . | median)
  printf '%-28s %10.3f s %10.3f s %7.2fx   %s; %s\n' "start to ready" "$m_o" "$m_t" "$(ratio "$m_o" "$m_t")" "${s_secs[ours]}" "${s_secs[official]}"
  m_o=$(tr ' ' '\n' <<<"${s_rss[ours]}" | grep . | median); m_t=$(tr ' ' '\n' <<<"${s_rss[official]}" | grep . | median)
  printf '%-28s %9.1f MB %9.1f MB %7.2fx   %s; %s kB\n' "VmRSS when ready" "$(ratio "$m_o" 1024)" "$(ratio "$m_t" 1024)" "$(ratio "$m_o" "$m_t")" "${s_rss[ours]}" "${s_rss[official]}"
  m_o=$(tr ' ' '\n' <<<"${s_hwm[ours]}" | grep . | median); m_t=$(tr ' ' '\n' <<<"${s_hwm[official]}" | grep . | median)
  printf '%-28s %9.1f MB %9.1f MB %7.2fx   %s; %s kB\n' "VmHWM when ready" "$(ratio "$m_o" 1024)" "$(ratio "$m_t" 1024)" "$(ratio "$m_o" "$m_t")" "${s_hwm[ours]}" "${s_hwm[official]}"
  rm -rf "${dirs[ours]}" "${dirs[official]}"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
disk_probe
case $PART in
  all) throughput; restart ;;
  throughput) throughput ;;
  restart) restart ;;
  *) echo "PART must be all, throughput or restart" >&2; exit 2 ;;
esac
disk_probe
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

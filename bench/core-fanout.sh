#!/usr/bin/env bash
# Core-NATS throughput through stan-broker's embedded server next to nats-server, measured with
# the official Go client (bench/core-fanout, built from the Go module proxy): one publisher
# sending MSGS messages of SIZE bytes to one subject, without and with one subscriber. Runs
# alternate between the two servers so machine noise hits both alike; each run gets a fresh
# server.
#
#   bench/core-fanout.sh                     # default: 3 rounds, 1,000,000 msgs of 128 B
#   ROUNDS=5 MSGS=200000 SIZE=1024 bench/core-fanout.sh
#
# Prints one line per scenario and server with the median msgs/s (publisher; subscriber) and
# how many runs ended with the subscriber cut or timed out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
MSGS=${MSGS:-1000000}
SIZE=${SIZE:-128}
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
nats_server_bin=${NATS_SERVER:-$(command -v nats-server || true)}
[ -n "$nats_server_bin" ] || { echo "nats-server not found (apt-get install nats-server)" >&2; exit 1; }
echo "building: stan-broker (release), bench/core-fanout" >&2
(cd "$root" && cargo build -q --release -p stan-broker)
tool=$(mktemp -d /tmp/core-fanout.XXXXXX)/core-fanout
(cd "$root/bench/core-fanout" && go build -o "$tool" .)

# start_core ours|nats-server -> sets pid and url
start_core() {
  if [ "$1" = ours ]; then
    start_server ours
  else
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$nats_server_bin" -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    pid=$!
    url="nats://127.0.0.1:$port"
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
      sleep 0.05
    done
    echo "nats-server did not start" >&2; return 1
  fi
}

printf '%-26s %-20s %14s %14s %s\n' "scenario ($MSGS x $SIZE B)" server "pub msgs/s" "sub msgs/s" "failed runs"
for subs in 0 1; do
  name="1 publisher"; [ "$subs" = 1 ] && name="1 publisher, 1 subscriber"
  declare -A pubs=() subr=() fails=()
  for _ in $(seq "$ROUNDS"); do
    for server in ours nats-server; do
      start_core "$server"
      line=$("$tool" -s "$url" -n "$MSGS" -ms "$SIZE" -subs "$subs" 2>&1 || true)
      stop_server
      echo "  $server: $line" >&2
      p=$(awk '{ print $2 }' <<<"$line"); s=$(awk '{ print $4 }' <<<"$line")
      pubs[$server]+="$p "
      if grep -q "result ok" <<<"$line"; then subr[$server]+="$s "; else fails[$server]=$(( ${fails[$server]:-0} + 1 )); fi
    done
  done
  for server in ours nats-server; do
    p=$(tr ' ' '\n' <<<"${pubs[$server]}" | grep -v '^$' | median)
    s=-
    [ "$subs" = 1 ] && [ -n "${subr[$server]:-}" ] && s=$(tr ' ' '\n' <<<"${subr[$server]}" | grep -v '^$' | median)
    label=stan-broker; [ "$server" = nats-server ] && label="nats-server $("$nats_server_bin" --version | awk '{ print $2 }')"
    printf '%-26s %-20s %14s %14s %s/%s\n' "$name" "$label" "$p" "$s" "${fails[$server]:-0}" "$ROUNDS"
  done
  unset pubs subr fails
done

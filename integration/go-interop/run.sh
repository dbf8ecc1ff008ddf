#!/usr/bin/env bash
# Runs the Go interoperability suite (official stan.go / nats.go clients) four times:
#   embedded  - stan-broker with its embedded core-NATS server
#   file      - the same with the file store (-st FILE --dir <fresh directory>); the suite gets
#               STAN_RESTART_CMD (restart-server.sh), so TestRestartDurableResume kill -9s the
#               broker and restarts it on the same directory and port
#   external  - stan-broker attached to Debian's nats-server (-ns)
#   official  - the published nats-streaming-server (../official-server), the reference
# and, on request only (RUNS=official-file), the official server with its file store, the
# reference of the file run (TestRestartDurableResume included).
#
# Environment:
#   STAN_BROKER_BIN      stan-broker binary to use (skips the cargo build)
#   STAN_BROKER_PROFILE  cargo profile when building (default: dev, i.e. target/debug)
#   RUNS                 runs to perform, space separated
#                        (default: "embedded file external official"; also: official-file)
#   STAN_CLUSTER_ID      cluster ID (default: test-cluster)
#   GO_TEST_ARGS         extra arguments for go test (e.g. "-run TestQueue")
#   READY_TIMEOUT        seconds to wait for each server (default: 30)
#   STAN_BROKER_READY_PATTERN  regex of the broker's ready line (default: "^STAN_BROKER_READY ")
#
# Logs go to a fresh directory under /tmp (printed at the end). Exit status is non-zero if any
# run failed or could not start.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${RUNS:-"embedded file external official"}
cluster=${STAN_CLUSTER_ID:-test-cluster}
ready_timeout=${READY_TIMEOUT:-30}
# Short server heartbeats so that the heartbeat-expiry test runs; STAN_HB_DETECT tells the
# suite how long detection of a silent client may take ((hbi + hbt) * (hbf + 1) at worst).
hb_flags=(-hbi 1s -hbt 1s -hbf 2)
hb_detect=6s
# One pass of the suite creates about 60 channels; the default limit (100) would stop
# repeated passes (GO_TEST_ARGS=-count=N).
limit_flags=(-mc 1000)

logdir=$(mktemp -d /tmp/go-interop.XXXXXX)
pids=()
# Files holding the PID of a server that restart-server.sh restarted (not our child).
pidfiles=()
gotest_pid=

log() { printf '==> %s\n' "$*" >&2; }

stop_pid() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
		sleep 0.1
	done
	log "process $pid ignored SIGTERM for 10s; killing it"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

stop_all() {
	local i f
	for f in "${pidfiles[@]}"; do
		[[ -s $f ]] && stop_pid "$(cat "$f")"
	done
	pidfiles=()
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[$i]}"
	done
	pids=()
}

trap 'stop_gotest; stop_all' EXIT
trap 'stop_gotest; stop_all; exit 130' INT TERM

# A free loopback TCP port (the kernel picks it; the tiny race with other users is accepted).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_ready PID LOGFILE PORT PATTERN: polls until PORT accepts connections (if PORT is set)
# and LOGFILE has a line matching PATTERN (if PATTERN is set); fails if PID exits or after
# READY_TIMEOUT seconds.
wait_ready() {
	local pid=$1 logfile=$2 port=$3 pattern=$4
	local deadline=$((SECONDS + ready_timeout))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "process $pid exited during startup; last log lines:"
			tail -n 20 "$logfile" >&2
			return 1
		fi
		local ok=1
		if [[ -n $port ]] && ! port_open "$port"; then ok=0; fi
		if [[ -n $pattern ]] && ! grep -Eq "$pattern" "$logfile"; then ok=0; fi
		((ok)) && return 0
		sleep 0.1
	done
	log "process $pid not ready after ${ready_timeout}s; last log lines:"
	tail -n 20 "$logfile" >&2
	return 1
}

# start NAME CMD...: starts a server in the background with stdout+stderr in $logdir/NAME.log;
# its PID is left in $started_pid and recorded for cleanup.
start() {
	local name=$1
	shift
	log "starting $name: $*"
	"$@" >"$logdir/$name.log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	started_pid=$pid
}

build_broker() {
	if [[ -n ${STAN_BROKER_BIN:-} ]]; then
		broker_bin=$STAN_BROKER_BIN
		log "using STAN_BROKER_BIN=$broker_bin"
	else
		local profile=${STAN_BROKER_PROFILE:-dev} dir=debug
		[[ $profile == dev ]] || dir=$profile
		log "building stan-broker (cargo profile $profile)"
		(cd "$root" && cargo build -p stan-broker --profile "$profile") || return 1
		broker_bin=${CARGO_TARGET_DIR:-$root/target}/$dir/stan-broker
	fi
	[[ -x $broker_bin ]] || { log "no executable stan-broker at $broker_bin"; return 1; }
}

build_official() {
	log "building official-server"
	(cd "$here/../official-server" && go build -o bin/official-server .) || return 1
	official_bin=$here/../official-server/bin/official-server
}

ensure_nats_server() {
	if ! command -v nats-server >/dev/null && [[ ! -x /usr/sbin/nats-server ]]; then
		log "installing Debian's nats-server"
		apt-get install -y nats-server >"$logdir/apt.log" 2>&1 || { tail -n 20 "$logdir/apt.log" >&2; return 1; }
	fi
	nats_server_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
}

# run_suite NAME URL [RESTART_CMD]: runs the Go suite against URL in the background (so a
# signal stops the script at once); its output goes to $logdir/NAME.test.log and is shown live.
# RESTART_CMD (a shell command that restarts the server with its store, on the same port) is
# given to the suite as STAN_RESTART_CMD; without it the restart test is skipped.
run_suite() {
	local name=$1 url=$2 restart_cmd=${3:-} out=$logdir/$1.test.log rc
	log "[$name] go test against $url (cluster $cluster)"
	# shellcheck disable=SC2086 # GO_TEST_ARGS is a list of words
	(cd "$here" && STAN_URL=$url STAN_CLUSTER_ID=$cluster STAN_HB_DETECT=$hb_detect \
		STAN_RESTART_CMD=$restart_cmd exec go test -count=1 -v ${GO_TEST_ARGS:-} ./...) >"$out" 2>&1 &
	gotest_pid=$!
	tail -s 0.2 -n +1 -f --pid="$gotest_pid" "$out" &
	local tail_pid=$!
	wait "$gotest_pid"
	rc=$?
	gotest_pid=
	wait "$tail_pid"
	return "$rc"
}

# stop_gotest: ends a running go test and the test binary it started (its children), by PID.
stop_gotest() {
	[[ -n ${gotest_pid:-} ]] || return 0
	local child
	for child in $(pgrep -P "$gotest_pid"); do
		stop_pid "$child"
	done
	stop_pid "$gotest_pid"
	gotest_pid=
}

# The broker's ready line, printed on standard output once it serves clients
# (`STAN_BROKER_READY {"nats":[...],"monitoring":[...],...}`, see broker/src/ready.rs).
broker_ready=${STAN_BROKER_READY_PATTERN:-'^STAN_BROKER_READY '}

run_embedded() {
	local port
	port=$(free_port) || return 1
	start broker-embedded "$broker_bin" -a 127.0.0.1 -p "$port" -cid "$cluster" "${hb_flags[@]}" "${limit_flags[@]}"
	local pid=$started_pid
	wait_ready "$pid" "$logdir/broker-embedded.log" "$port" "$broker_ready" || return 1
	run_suite embedded "nats://127.0.0.1:$port"
}

# start_restartable NAME READY_PATTERN CMD...: like start, and writes what restart-server.sh
# needs into $logdir/NAME/ (cmd, ready pattern, pid); the restart command is left in
# $restart_cmd.
start_restartable() {
	local name=$1 pattern=$2
	shift 2
	local state=$logdir/$name
	mkdir -p "$state"
	printf '%s\n' "$@" >"$state/cmd"
	printf '%s\n' "$pattern" >"$state/ready"
	start "$name" "$@"
	# Its kill -9 by restart-server.sh is expected: no "Killed" job notice from bash.
	disown "$started_pid"
	echo "$started_pid" >"$state/pid"
	pidfiles+=("$state/pid")
	restart_cmd="$(printf '%q' "$here/restart-server.sh") $(printf '%q' "$state")"
}

run_file() {
	local port store=$logdir/file-store
	port=$(free_port) || return 1
	mkdir -p "$store"
	start_restartable broker-file "$broker_ready" "$broker_bin" -a 127.0.0.1 -p "$port" -cid "$cluster" \
		"${hb_flags[@]}" "${limit_flags[@]}" -st FILE --dir "$store"
	wait_ready "$started_pid" "$logdir/broker-file.log" "$port" "$broker_ready" || return 1
	run_suite file "nats://127.0.0.1:$port" "$restart_cmd"
}

run_external() {
	local port
	port=$(free_port) || return 1
	start nats-server "$nats_server_bin" -a 127.0.0.1 -p "$port"
	wait_ready "$started_pid" "$logdir/nats-server.log" "$port" "" || return 1
	local url="nats://127.0.0.1:$port"
	start broker-external "$broker_bin" -ns "$url" -cid "$cluster" "${hb_flags[@]}" "${limit_flags[@]}"
	wait_ready "$started_pid" "$logdir/broker-external.log" "" "$broker_ready" || return 1
	run_suite external "$url"
}

run_official_file() {
	local port store=$logdir/official-file-store
	port=$(free_port) || return 1
	mkdir -p "$store"
	start_restartable official-file '^READY ' "$official_bin" -a 127.0.0.1 -p "$port" -cid "$cluster" \
		"${hb_flags[@]}" "${limit_flags[@]}" -st FILE -dir "$store"
	wait_ready "$started_pid" "$logdir/official-file.log" "$port" '^READY ' || return 1
	run_suite official-file "nats://127.0.0.1:$port" "$restart_cmd"
}

run_official() {
	start official-server "$official_bin" -p 0 -cid "$cluster" "${hb_flags[@]}" "${limit_flags[@]}"
	wait_ready "$started_pid" "$logdir/official-server.log" "" '^READY ' || return 1
	local url
	url=$(sed -n 's/^READY //p' "$logdir/official-server.log" | head -n 1)
	run_suite official "$url"
}

declare -A result
status=0
for run in $runs; do
	case $run in
	embedded | file | external)
		if [[ -z ${broker_bin:-} ]] && ! build_broker; then
			result[$run]="NOT RUN (no stan-broker binary)"
			status=1
			continue
		fi
		if [[ $run == external ]] && ! ensure_nats_server; then
			result[$run]="NOT RUN (no nats-server)"
			status=1
			continue
		fi
		;;
	official | official-file)
		if [[ -z ${official_bin:-} ]] && ! build_official; then
			result[$run]="NOT RUN (official-server build failed)"
			status=1
			continue
		fi
		;;
	*)
		log "unknown run '$run' (expected embedded, file, external, official, official-file)"
		status=1
		continue
		;;
	esac
	if "run_${run//-/_}"; then
		result[$run]=PASS
	else
		result[$run]=FAIL
		status=1
	fi
	stop_all
done

echo
echo "==================== go-interop summary ===================="
for run in $runs; do
	echo "[$run] ${result[$run]:-NOT RUN}"
	f=$logdir/$run.test.log
	if [[ -f $f ]]; then
		grep -E '^(ok|FAIL)[[:space:]]|^--- FAIL|^panic:' "$f" | sed 's/^/    /'
		printf '    top-level tests: %s passed, %s failed, %s skipped\n' \
			"$(grep -c '^--- PASS' "$f")" "$(grep -c '^--- FAIL' "$f")" "$(grep -c '^--- SKIP' "$f")"
	fi
done
echo "logs: $logdir"
exit "$status"

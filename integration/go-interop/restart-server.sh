#!/usr/bin/env bash
# restart-server.sh STATE_DIR: kill -9 the server whose PID is in STATE_DIR/pid, start it again
# with the command line in STATE_DIR/cmd (one argument per line: same store directory, same
# port), write the new PID to STATE_DIR/pid and return once STATE_DIR/restart-N.log (its
# stdout and stderr) has a line matching the regex in STATE_DIR/ready. Exit status 1 when it
# is not ready within READY_TIMEOUT seconds (default 30).
#
# run.sh writes STATE_DIR for its file runs and gives this script to the Go suite as
# STAN_RESTART_CMD (restart_test.go); run.sh stops the server whose PID is in STATE_DIR/pid.
set -uo pipefail

state=${1:?usage: restart-server.sh STATE_DIR}
ready_timeout=${READY_TIMEOUT:-30}
mapfile -t cmd <"$state/cmd"
pattern=$(cat "$state/ready")

old=$(cat "$state/pid")
kill -KILL "$old" 2>/dev/null

n=1
while [[ -e $state/restart-$n.log ]]; do n=$((n + 1)); done
deadline=$((SECONDS + ready_timeout))
# The killed process may still hold the port (or the store's lock) for a moment: retry.
while ((SECONDS < deadline)); do
	log=$state/restart-$n.log
	"${cmd[@]}" </dev/null >"$log" 2>&1 &
	pid=$!
	echo "$pid" >"$state/pid"
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
		if grep -Eq "$pattern" "$log"; then
			echo "restarted: PID $pid, log $log"
			exit 0
		fi
		sleep 0.05
	done
	n=$((n + 1))
	sleep 0.1
done
echo "server not ready after ${ready_timeout}s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1

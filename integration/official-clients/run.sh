#!/usr/bin/env bash
# The official Python and Node clients across a failover of JETSTREAM-store brokers: a
# three-node nats-server JetStream cluster, two stan-broker processes (one active, one
# standing by), and for each client one round in which the active broker is killed with
# SIGKILL while the client publishes and consumes with a durable; its one STAN session must
# go on (failover.py says what is checked). Ends with `N passed, M failed`.
#
#   integration/official-clients/run.sh
#   STAN_BROKER_BIN=target/release/stan-broker integration/official-clients/run.sh
#   CLIENTS=node integration/official-clients/run.sh      # python, node (default: both)
#
# Installs what it needs (each step a no-op when done):
#   node     node-nats-streaming 0.3.2 (package-lock.json here), `npm ci` into node_modules/
#   python   asyncio-nats-streaming 0.4.0 with "protobuf<3.21" in a venv
#            (target/official-clients/venv) of a Python 3.9: the client does not run on newer
#            Pythons. $PYTHON39, else python3.9 on the PATH, else pyenv's 3.9.
#   broker   cargo build -p stan-broker (unless STAN_BROKER_BIN is set)
#   nats-server from Debian's packages when missing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
CLIENTS=${CLIENTS:-python node}
work=$root/target/official-clients
mkdir -p "$work"

if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
  apt-get install -y -qq nats-server >/dev/null
fi
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)

if [ -z "${STAN_BROKER_BIN:-}" ]; then
  cargo build -q -p stan-broker --bin stan-broker
  STAN_BROKER_BIN=$root/target/debug/stan-broker
fi

python39() {
  local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv} c
  # The first of these that runs a Python 3.9 (a pyenv shim on the PATH may not).
  for c in ${PYTHON39:-} python3.9 "$pyenv_root"/versions/3.9*/bin/python; do
    if "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  return 1
}

clients=()
for c in $CLIENTS; do
  case $c in
    node)
      (cd "$here" && [ -d node_modules/node-nats-streaming ] || npm ci --no-audit --no-fund --silent)
      clients+=("node=node $here/client_node.js") ;;
    python)
      venv=$work/venv
      if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import stan.aio' 2>/dev/null; then
        if ! py=$(python39); then
          # Only a machine without any Python 3.9 gets here: say so, and go on with the others.
          echo "SKIPPED: python (asyncio-nats-streaming needs a Python 3.9; set PYTHON39)" >&2
          continue
        fi
        rm -rf "$venv"
        "$py" -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check \
          asyncio-nats-streaming==0.4.0 "protobuf<3.21"
      fi
      clients+=("python=$venv/bin/python $here/client_python.py") ;;
    *) echo "unknown client $c (python, node)" >&2; exit 2 ;;
  esac
done

[ ${#clients[@]} -gt 0 ] || { echo "no official client could run" >&2; exit 1; }
exec python3 "$here/failover.py" --broker "$STAN_BROKER_BIN" --nats-server "$nats_server" \
  --log-dir "$work/logs-$$" "${clients[@]}"

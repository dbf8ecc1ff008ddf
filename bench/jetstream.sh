#!/usr/bin/env bash
# The JETSTREAM store next to the FILE store, and its failover time (docs/benchmarks.md,
# "JETSTREAM store"). Release builds; a local three-node nats-server JetStream cluster.
#
#   bench/jetstream.sh                        # ROUNDS=3, FAILOVER_ROUNDS=5 (about 6 minutes)
#   PART=throughput bench/jetstream.sh        # or PART=failover
#   ROUNDS=5 MSGS=100000 LEASES="2s 5s" bench/jetstream.sh
#
# Environment (defaults in brackets): ROUNDS [3] rounds of the throughput part; MSGS [50000]
# async publishes per run; SYNC_MSGS [2000] sync publishes per run; SIZE [128] bytes;
# FAILOVER_ROUNDS [5] kills per lease TTL; LEASES ["2s 5s"]; FILL [0] messages stored in one
# channel before each failover round (recovery reads them); NO_BUILD=1 skips the cargo build;
# STAN_BROKER_BIN, NATS_SERVER: binaries to use.
#
# Throughput: our stan-bench (bench/stan-bench), 1 async publisher and 1 sync publisher, against
# FILE (file_sync on and off; embedded NATS) and JETSTREAM R1 and R3 (-ns to the cluster);
# configurations interleaved, the first rotating by round, a fresh broker and store per run.
# Failover: two R3 brokers, the active one killed with SIGKILL while the official Node client
# (a publish every 10 ms) and our Rust client (stan-bench -sync) publish; medians of the time
# from the kill to the standby's ready line, to the Node client's first acknowledged publish,
# and to the Rust client's stalled publish being acknowledged. What bench/jetstream.py prints
# is the markdown for docs/benchmarks.md; progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "${NO_BUILD:-}" != 1 ]; then
  echo "building: stan-broker and stan-bench (release)" >&2
  cargo build -q --release -p stan-broker -p stan-bench
fi
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt-get install -y -qq nats-server >/dev/null
# The official Node client of the failover probe (integration/official-clients/package-lock.json).
(cd integration/official-clients && { [ -d node_modules/node-nats-streaming ] || npm ci --no-audit --no-fund --silent; })
exec python3 bench/jetstream.py

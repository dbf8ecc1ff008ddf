#!/usr/bin/env python3
"""The JETSTREAM store's figures for docs/benchmarks.md (run by bench/jetstream.sh).

Throughput: our ``stan-bench`` (release) against a release ``stan-broker`` with the FILE store
(``--file_sync`` on, the default, and off) and with the JETSTREAM store at 1 and 3 replicas on
a local three-node ``nats-server`` cluster; 128-byte messages, one async publisher and one
sync publisher; configurations interleaved, the first one rotating by round; medians.

Failover: two JETSTREAM brokers (R3) with the same cluster ID; while two clients publish,
the active broker is killed with SIGKILL. Measured from the kill: the standby's ready line,
the first acknowledged publish of the official Node client (a publish every 10 ms, its
session kept), and the longest publish→ack wait of our Rust client (``stan-bench -sync``:
its in-flight publish is kept and re-sent once its session is resumed). Per lease TTL; medians.

Python >= 3.11, standard library; the NATS cluster and process handling come from
integration/official-clients/failover.py.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "integration" / "official-clients"))
from failover import READY_PREFIX, NatsCluster, Proc, log  # noqa: E402

BROKER = Path(os.environ.get("STAN_BROKER_BIN", ROOT / "target/release/stan-broker"))
BENCH = ROOT / "target/release/stan-bench"
NATS = os.environ.get("NATS_SERVER") or shutil.which("nats-server") or "/usr/sbin/nats-server"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
MSGS = int(os.environ.get("MSGS", "50000"))
SYNC_MSGS = int(os.environ.get("SYNC_MSGS", "2000"))
SIZE = int(os.environ.get("SIZE", "128"))
FAILOVER_ROUNDS = int(os.environ.get("FAILOVER_ROUNDS", "5"))
LEASES = os.environ.get("LEASES", "2s 5s").split()
PART = os.environ.get("PART", "all")
FILL = int(os.environ.get("FILL", "0"))
NODE_PATH = ROOT / "integration" / "official-clients" / "node_modules"


def stan_bench(url: str, cid: str, *args: str) -> dict[str, object]:
    """One stan-bench run (JSON report), connected to the first URL of `url`."""
    # stan-bench takes one URL (a comma-separated list is refused as an invalid URL).
    url = url.split(",")[0]
    out = subprocess.run(
        [
            str(BENCH),
            "-s",
            url,
            "-c",
            cid,
            "-id",
            f"b{uuid.uuid4().hex[:6]}",
            "-q",
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"stan-bench {args}: {out.stderr.strip()[-500:]}")
    report: dict[str, object] = json.loads(out.stdout)
    return report


def pubs(report: dict[str, object]) -> dict[str, object]:
    """The publishers' part of a stan-bench report."""
    p = report["publishers"]
    assert isinstance(p, dict)
    return p


def start_broker(name: str, args: list[str], log_dir: Path) -> tuple[Proc, str]:
    """A broker and its client URL, once it printed its ready line."""
    b = Proc(name, [str(BROKER), "-mc", "0", "-mm", "0", "-mb", "0", *args], log_dir)
    line = b.wait_line(READY_PREFIX)
    ports = json.loads(line[len(READY_PREFIX) :])
    return b, ",".join(ports["nats"])


def throughput(cluster: NatsCluster, log_dir: Path) -> None:
    """The throughput table."""
    configs: list[tuple[str, list[str]]] = [
        ("FILE (file_sync on)", ["-st", "FILE"]),
        ("FILE (file_sync off)", ["-st", "FILE", "--file_sync=false"]),
        ("JETSTREAM R1", ["-st", "JETSTREAM", "-ns", cluster.url, "--js_replicas", "1"]),
        ("JETSTREAM R3", ["-st", "JETSTREAM", "-ns", cluster.url, "--js_replicas", "3"]),
    ]
    rates: dict[str, list[float]] = {c: [] for c, _ in configs}
    sync_us: dict[str, list[float]] = {c: [] for c, _ in configs}
    sync_p99: dict[str, list[float]] = {c: [] for c, _ in configs}
    for r in range(ROUNDS):
        order = configs[r % len(configs) :] + configs[: r % len(configs)]
        for name, args in order:
            cid = f"bench-{uuid.uuid4().hex[:8]}"
            store = Path(tempfile.mkdtemp(prefix="stan-js-bench-file."))
            extra = ["--dir", str(store), "-p", "0"] if args[1] == "FILE" else []
            b, url = start_broker(
                f"tp-{r}-{name.split()[0].lower()}", [*args, *extra, "-cid", cid], log_dir
            )
            try:
                # The channels exist before the timed runs (a JETSTREAM channel's first
                # message creates its stream: R3 takes a leader election).
                for ch in ("tp.async", "tp.sync"):
                    stan_bench(url, cid, "-np", "1", "-ns", "0", "-n", "1", ch)
                a = pubs(
                    stan_bench(
                        url,
                        cid,
                        "-np",
                        "1",
                        "-ns",
                        "0",
                        "-n",
                        str(MSGS),
                        "-ms",
                        str(SIZE),
                        "tp.async",
                    )
                )
                s = pubs(
                    stan_bench(
                        url,
                        cid,
                        "-np",
                        "1",
                        "-ns",
                        "0",
                        "-sync",
                        "-n",
                        str(SYNC_MSGS),
                        "-ms",
                        str(SIZE),
                        "tp.sync",
                    )
                )
            finally:
                b.stop()
                shutil.rmtree(store, ignore_errors=True)
            rate = float(a["msgs_per_sec"])  # type: ignore[arg-type]
            srate = float(s["msgs_per_sec"])  # type: ignore[arg-type]
            lat = s["latency_us"]
            assert isinstance(lat, dict)
            rates[name].append(rate)
            sync_us[name].append(1e6 / srate)
            sync_p99[name].append(float(lat["p99"]))
            sync = 1e6 / srate
            log(f"round {r + 1} {name}: async {rate:,.0f} msgs/s, sync {sync:,.0f} µs/publish")
    base = statistics.median(rates[configs[0][0]])
    print(
        f"\n| store ({SIZE} B, 1 publisher) | async publish ({MSGS:,} msgs) | vs FILE (sync on) "
        f"| sync publish ({SYNC_MSGS:,} msgs): µs per publish | p99 publish→ack |"
    )
    print("|---|---|---|---|---|")
    for name, _ in configs:
        m = statistics.median(rates[name])
        us, p99 = statistics.median(sync_us[name]), statistics.median(sync_p99[name])
        ratio = f"{m / base:.2f}×"  # noqa: RUF001 - the docs' ratio sign
        print(f"| {name} | {m:,.0f} msgs/s | {ratio} | {us:,.0f} µs | {p99:,.0f} µs |")
    print(
        f"\nruns ({ROUNDS} rounds): "
        + "; ".join(f"{n}: " + ", ".join(f"{v:,.0f}" for v in rates[n]) for n, _ in configs)
    )


def failover(cluster: NatsCluster, log_dir: Path) -> None:
    """The failover table."""
    rows = []
    for lease in LEASES:
        ready, node_first, rust_max, stored = [], [], [], []
        lease_s = float(lease.rstrip("s"))
        for r in range(FAILOVER_ROUNDS):
            cid = f"fo-{uuid.uuid4().hex[:8]}"
            args = [
                "-st",
                "JETSTREAM",
                "-ns",
                cluster.url,
                "--js_replicas",
                "3",
                "--js_lease_ttl",
                lease,
                "-cid",
                cid,
            ]
            active, _ = start_broker(f"fo-{lease}-{r}-a", args, log_dir)
            standby = Proc(
                f"fo-{lease}-{r}-b",
                [str(BROKER), "-mc", "0", "-mm", "0", "-mb", "0", *args],
                log_dir,
            )
            standby.wait_line("standing by", tag="err")
            if FILL:
                # Stored messages the standby has to read when it takes over.
                stan_bench(cluster.url, cid, "-np", "1", "-ns", "0", "-n", str(FILL), "fo.fill")
            seconds = int(2 * lease_s + 15)
            env = dict(os.environ, NODE_PATH=str(NODE_PATH))
            probe = subprocess.Popen(
                [
                    "node",
                    str(ROOT / "bench/jetstream-probe.js"),
                    cluster.url,
                    cid,
                    "fo.node",
                    str(seconds),
                ],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            rust = subprocess.Popen(
                [
                    str(BENCH),
                    "-s",
                    cluster.url.split(",")[0],
                    "-c",
                    cid,
                    "-id",
                    "fo-rust",
                    "-q",
                    "--json",
                    "-np",
                    "1",
                    "-ns",
                    "0",
                    "-sync",
                    "--duration",
                    f"{seconds}s",
                    "-ms",
                    str(SIZE),
                    "fo.rust",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert probe.stdout is not None
            acks_before = 0
            for line in probe.stdout:
                if line.startswith("ack "):
                    acks_before += 1
                    if acks_before == 200:
                        break
            killed = time.time()
            active.kill()
            standby.wait_line(READY_PREFIX)
            took = time.time() - killed
            first = None
            for line in probe.stdout:
                if line.startswith("ack "):
                    sent, acked = (int(x) for x in line.split()[1:3])
                    if sent > killed * 1000 and first is None:
                        first = acked / 1000 - killed
            probe.wait()
            out, err = rust.communicate(timeout=seconds + 120)
            standby.stop()
            active.stop()
            if rust.returncode != 0:
                raise RuntimeError(f"stan-bench across the failover: {err.strip()[-500:]}")
            rp = pubs(json.loads(out))
            lat = rp["latency_us"]
            assert isinstance(lat, dict)
            ready.append(took)
            if first is not None:
                node_first.append(first)
            rust_max.append(float(lat["max"]) / 1e6)
            stored.append(int(rp["msgs"]))  # type: ignore[arg-type]
            node = "-" if first is None else f"{first:.2f} s"
            log(
                f"lease {lease} round {r + 1}: standby ready {took:.2f} s, "
                f"official Node client {node}, Rust client stall {rust_max[-1]:.2f} s"
            )
        rows.append((lease, ready, node_first, rust_max, stored))
    print(
        "\n| lease TTL | kill -9 → standby ready | → first publish acked, official Node client "
        "| → Rust client's stalled publish acked (resume) |"
    )
    print("|---|---|---|---|")
    for lease, ready, node_first, rust_max, _ in rows:

        def fmt(v: list[float]) -> str:
            # An en dash between min and max, as in the docs.
            return f"{statistics.median(v):.2f} s ({min(v):.2f}\u2013{max(v):.2f})" if v else "-"

        print(f"| {lease} | {fmt(ready)} | {fmt(node_first)} | {fmt(rust_max)} |")
    print(
        f"\n{FAILOVER_ROUNDS} rounds per lease TTL; {FILL:,} messages of {SIZE} B stored "
        "before the clients start; medians (min\u2013max)."
    )


def main() -> int:
    """Both parts (or PART=throughput / PART=failover)."""
    log_dir = Path(tempfile.mkdtemp(prefix="jetstream-bench."))
    cluster = NatsCluster(NATS, log_dir)
    try:
        cluster.wait_ready()
        log(f"3-node JetStream cluster: {cluster.url}; logs in {log_dir}")
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"machine: {os.cpu_count()} cores, load average before: {' '.join(load)}")
        if PART in ("all", "throughput"):
            throughput(cluster, log_dir)
        if PART in ("all", "failover"):
            failover(cluster, log_dir)
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"\nload average after: {' '.join(load)}")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

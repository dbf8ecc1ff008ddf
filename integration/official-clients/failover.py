#!/usr/bin/env python3
"""The official clients' STAN sessions across a failover of JETSTREAM-store brokers.

Starts a three-node ``nats-server`` JetStream cluster and two ``stan-broker`` processes with the
same cluster ID (``-st JETSTREAM --js_replicas 3 --js_lease_ttl 2s``): one becomes active, the
other stands by. Then, for each official client program given (``NAME=COMMAND``), one round:

1. the client connects, subscribes a durable, publishes and receives its first messages, and
   prints ``PHASE1``;
2. the active broker is killed with SIGKILL and the client is told ``KILLED``; it publishes
   more (retrying publishes that time out while no broker is active) and waits for its
   durable to get them;
3. the standby must print its ready line (it took over), and the client must print ``OK``:
   its one STAN session published and received throughout, with no gap in the durable's
   sequences and its connection-lost callback never called. The killed broker is started
   again, as the new standby, before the next round.

Python >= 3.11, standard library only. Ends with ``N passed, M failed`` alone on the last line;
exit status 0 only when every round passed. Logs: ``--log-dir`` (default a fresh folder in
/tmp, printed at the end).
"""

from __future__ import annotations

import argparse
import os
import queue
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import IO

READY_PREFIX = "STAN_BROKER_READY "
LEASE = "2s"
WAIT = 60.0


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def log(msg: str) -> None:
    """Progress, on standard error."""
    print(f"==> {msg}", file=sys.stderr, flush=True)


class Proc:
    """A child process whose output lines are copied to a log file and queued."""

    def __init__(self, name: str, cmd: list[str], log_dir: Path, stdin: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._log.write(f"$ {shlex.join(cmd)}\n")
        self._log.flush()
        self.p = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        for stream, tag in ((self.p.stdout, "out"), (self.p.stderr, "err")):
            threading.Thread(target=self._read, args=(stream, tag), daemon=True).start()

    def _read(self, stream: IO[str] | None, tag: str) -> None:
        assert stream is not None
        for line in stream:
            line = line.rstrip("\n")
            self._log.write(f"[{tag}] {line}\n")
            self._log.flush()
            self.lines.put((tag, line))
        self.lines.put((tag, None))

    def wait_line(self, want: str, tag: str = "out", timeout: float = WAIT) -> str:
        """The first line on `tag` that starts with (or, for logs, contains) `want`."""
        deadline = time.monotonic() + timeout
        ended = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no line with {want!r} within {timeout:.0f}s")
            try:
                t, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                ended += 1
                if ended == 2:
                    raise RuntimeError(
                        f"{self.name} exited (status {self.p.wait()}) before {want!r}"
                    )
                continue
            if t == tag and (line.startswith(want) if tag == "out" else want in line):
                return line
            if t == "out" and line.startswith("FAIL"):
                raise RuntimeError(line)

    def send(self, line: str) -> None:
        """One line to the process's standard input."""
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, SIGKILL after `timeout`; closes the log."""
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._log.close()


class NatsCluster:
    """Three JetStream nats-server nodes on loopback ports, each with its own store."""

    def __init__(self, binary: str, log_dir: Path, n: int = 3) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stan-ofc-js-"))
        self.ports = [free_port() for _ in range(n)]
        routes = [free_port() for _ in range(n)]
        self.monitor = [free_port() for _ in range(n)]
        name = f"ofc-{uuid.uuid4().hex[:8]}"
        self.nodes = []
        # A fixed JetStream file budget: by default a server allows 75 % of the disk space
        # free at its start, and the streams' reservations then fail on a nearly full disk.
        limits = self.root / "limits.conf"
        limits.write_text("jetstream {\n  max_file_store: 1TB\n}\n")
        for i in range(n):
            others = ",".join(f"nats://127.0.0.1:{routes[j]}" for j in range(n) if j != i)
            cmd = [
                binary,
                "-c",
                str(limits),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.ports[i]),
                "-m",
                str(self.monitor[i]),
                "-n",
                f"node{i}",
                "-js",
                "--store_dir",
                str(self.root / f"node{i}"),
                "--cluster_name",
                name,
                "--cluster",
                f"nats://127.0.0.1:{routes[i]}",
                "--routes",
                others,
            ]
            self.nodes.append(Proc(f"nats-node{i}", cmd, log_dir))

    @property
    def url(self) -> str:
        """Every node's client URL, comma separated (the broker's -ns form)."""
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.ports)

    def wait_ready(self) -> None:
        """Until every node's /healthz says ok (JetStream current; polled, there is no event)."""
        deadline = time.monotonic() + WAIT
        for i, port in enumerate(self.monitor):
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if self.nodes[i].p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nats node{i} is not healthy (see {self.nodes[i].log_path})"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """Stops every node and removes the stores."""
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_broker(binary: str, name: str, cluster_id: str, nats: str, log_dir: Path) -> Proc:
    """A JETSTREAM-store broker on the cluster (R3, short lease and heartbeats)."""
    return Proc(
        name,
        [
            binary,
            "-cid",
            cluster_id,
            "-st",
            "JETSTREAM",
            "-ns",
            nats,
            "--js_replicas",
            "3",
            "--js_lease_ttl",
            LEASE,
            "-hbi",
            "1s",
            "-hbt",
            "2s",
            "-hbf",
            "5",
        ],
        log_dir,
    )


def main() -> int:
    """Runs every round; the exit status."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--broker", required=True, help="the stan-broker binary")
    ap.add_argument("--nats-server", default=shutil.which("nats-server") or "/usr/sbin/nats-server")
    ap.add_argument("--log-dir", type=Path)
    ap.add_argument("client", nargs="+", help="NAME=COMMAND (the client's arguments are appended)")
    args = ap.parse_args()
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="official-clients-failover."))
    log_dir.mkdir(parents=True, exist_ok=True)

    clients = []
    for c in args.client:
        name, _, cmd = c.partition("=")
        if not cmd:
            ap.error(f"client {c!r}: expected NAME=COMMAND")
        clients.append((name, shlex.split(cmd)))

    cluster_id = f"ofc-{uuid.uuid4().hex[:8]}"
    results: list[tuple[str, bool, str]] = []
    cluster = None
    brokers: list[Proc] = []
    try:
        cluster = NatsCluster(args.nats_server, log_dir)
        cluster.wait_ready()
        log(f"JetStream cluster ready: {cluster.url}")
        active = start_broker(args.broker, "broker-1", cluster_id, cluster.url, log_dir)
        brokers.append(active)
        active.wait_line(READY_PREFIX)
        standby = start_broker(args.broker, "broker-2", cluster_id, cluster.url, log_dir)
        brokers.append(standby)
        standby.wait_line("standing by", tag="err")
        log(f"{active.name} active, {standby.name} standing by")

        for round_no, (name, cmd) in enumerate(clients, 1):
            channel = f"failover.{name}.{uuid.uuid4().hex[:6]}"
            client = Proc(
                f"client-{name}",
                [
                    *cmd,
                    "--url",
                    cluster.url,
                    "--cluster-id",
                    cluster_id,
                    "--client-id",
                    f"ofc-{name}-{os.getpid()}",
                    "--channel",
                    channel,
                ],
                log_dir,
                stdin=True,
            )
            try:
                line = client.wait_line("PHASE1")
                killed_at = time.monotonic()
                active.kill()
                log(f"[{name}] phase 1 done; killed {active.name} (SIGKILL)")
                client.send("KILLED")
                standby.wait_line(READY_PREFIX)
                took_over = time.monotonic() - killed_at
                log(f"[{name}] {standby.name} ready {took_over:.1f}s after the kill")
                line = client.wait_line("OK")
                code = client.p.wait(WAIT)
                if code != 0:
                    raise RuntimeError(f"exit status {code} after {line!r}")
                results.append(
                    (name, True, f"{line[3:]} (standby ready {took_over:.1f}s after kill -9)")
                )
            except Exception as e:  # a failed round is reported, the next one runs
                client.kill()
                results.append((name, False, f"{e} (see {client.log_path})"))
            finally:
                client.stop()
            if round_no < len(clients):
                # The killed broker comes back as the new standby; the other one is active.
                active.stop()
                nxt = start_broker(
                    args.broker, f"broker-{len(brokers) + 1}", cluster_id, cluster.url, log_dir
                )
                brokers.append(nxt)
                active, standby = standby, nxt
                try:
                    standby.wait_line("standing by", tag="err")
                except RuntimeError as e:
                    results.append(("standby restart", False, str(e)))
                    break
    except Exception as e:  # setup failed: reported as one failure
        results.append(("setup", False, str(e)))
    finally:
        for b in brokers:
            b.stop()
        if cluster is not None:
            cluster.stop()

    print()
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'} official {name} client across a failover: {detail}")
    passed = sum(ok for _, ok, _ in results)
    print(f"logs: {log_dir}")
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

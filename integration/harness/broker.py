"""The ``stan-broker`` process of the suite.

Readiness is the broker's ready line, never log text or a delay: once it accepts clients,
``stan-broker`` prints exactly one line on standard output, ``STAN_BROKER_READY `` followed by
JSON ``{"nats": [url, ...], "monitoring": [url, ...], "cluster_id": ..., "pid": ...}``. Its logs
go to standard error, which the harness writes to ``broker-N.log`` in the log folder.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .common import CLUSTER

READY_PREFIX = "STAN_BROKER_READY "
"""What starts the broker's ready line on standard output."""

READY_TIMEOUT_S = 30.0
"""How long a broker may take to print its ready line."""


@dataclass(frozen=True)
class ReadyPorts:
    """Where a running broker listens, as its ready line says."""

    nats: list[str]
    monitoring: list[str]
    cluster_id: str
    pid: int


def parse_ready_line(line: str) -> ReadyPorts | None:
    """The ports of a ready line, or ``None`` when ``line`` is not a (valid) ready line."""
    if not line.startswith(READY_PREFIX):
        return None
    try:
        data = json.loads(line[len(READY_PREFIX) :])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    nats = data.get("nats")
    if not isinstance(nats, list) or not nats or not all(isinstance(u, str) for u in nats):
        return None
    monitoring = data.get("monitoring") or []
    pid = data.get("pid", 0)
    return ReadyPorts(
        nats=list(nats),
        monitoring=[str(u) for u in monitoring] if isinstance(monitoring, list) else [],
        cluster_id=str(data.get("cluster_id", "")),
        pid=pid if isinstance(pid, int) else 0,
    )


def wait_ready(
    proc: subprocess.Popen[str], timeout_s: float = READY_TIMEOUT_S
) -> ReadyPorts | None:
    """Read ``proc``'s standard output until its ready line.

    Returns ``None`` when the process closes its output (exits) or ``timeout_s`` passes first.
    Standard output is read to its end in the background, so the broker never blocks on it.
    """
    found: queue.Queue[ReadyPorts | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        announced = False
        for line in proc.stdout:
            ports = parse_ready_line(line.rstrip("\n"))
            if ports is not None and not announced:
                announced = True
                found.put(ports)
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        return found.get(timeout=timeout_s)
    except queue.Empty:
        return None


class Broker:
    """``stan-broker`` on a loopback port; :meth:`restart` keeps the port (and the arguments).

    ``name`` prefixes its log files (``<name>-N.log``, one per start); ``args`` are extra
    command-line arguments given at every start (e.g. ``-st FILE --dir PATH``).
    """

    def __init__(
        self, binary: str, log_dir: Path, name: str = "broker", args: list[str] | None = None
    ) -> None:
        """Prepare (not start) a broker from ``binary`` logging into ``log_dir``."""
        self.binary = binary
        self.log_dir = log_dir
        self.name = name
        self.args = list(args or [])
        self.port = 0
        self.url = ""
        self.ports: ReadyPorts | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the broker and wait for its ready line (on :attr:`port`, 0 the first time).

        Retries while the port of the previous process is still being released.
        """
        last_error = ""
        for _ in range(50):
            self.starts += 1
            log_path = self.log_dir / f"{self.name}-{self.starts}.log"
            args = [self.binary, "-p", str(self.port), "-a", "127.0.0.1", "-cid", CLUSTER]
            with open(log_path, "w") as log:
                proc = subprocess.Popen(
                    args + self.args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            ports = wait_ready(proc)
            if ports is not None and proc.poll() is None:
                self.proc = proc
                self.ports = ports
                self.url = ports.nats[0]
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            proc.kill()
            proc.wait()
            last_error = log_path.read_text()[-2000:]
            time.sleep(0.1)  # the old process's port is still being released: retry
        raise RuntimeError(f"stan-broker did not start:\n{last_error}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 15 s)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def kill(self) -> None:
        """``kill -9`` the broker: no shutdown, no flush, as in a crash."""
        if self.proc is not None:
            self.proc.kill()  # SIGKILL
            self.proc.wait()
            self.proc = None

    def restart(self, crash: bool = False) -> None:
        """Stop the broker (``kill -9`` when ``crash``) and start a new one on the same port."""
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()


def file_store_broker(binary: str, log_dir: Path, name: str) -> Broker:
    """A started broker with the file store in a fresh directory ``<log_dir>/<name>-store``.

    The directory stays with the logs (``stan-broker check --dir`` can examine it afterwards).
    """
    store = log_dir / f"{name}-store"
    store.mkdir()
    broker = Broker(binary, log_dir, name, ["-st", "FILE", "--dir", str(store)])
    broker.start()
    return broker

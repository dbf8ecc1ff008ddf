"""Run a ``stan-broker`` for tests: a context manager and pytest fixtures.

The broker binary is ``$STAN_BROKER_BIN`` if set, else ``stan-broker`` from ``target/debug``
or ``target/release`` of an enclosing stan-rs checkout, else ``stan-broker`` on ``PATH``.

Context manager::

    from stan_client.testing import run_broker

    with run_broker() as broker:
        sc = await stan_client.connect(broker.cluster_id, "me", url=broker.url)

pytest: add ``pytest_plugins = ["stan_client.testing"]`` to ``conftest.py`` and use the
``stan_broker`` fixture (one broker per session) or ``stan_broker_per_test`` (a fresh broker
for tests that stop or restart it).

Readiness is the broker's ready line: once it accepts clients, ``stan-broker`` prints one line
on standard output, ``STAN_BROKER_READY`` followed by JSON with its client and monitoring
URLs (:data:`READY_PREFIX`); its logs go to standard error. Both are drained for as long as
the broker runs, so it never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

__all__ = ["READY_PREFIX", "BrokerProcess", "find_broker_binary", "free_port", "run_broker"]

READY_PREFIX = "STAN_BROKER_READY "
"""What starts the broker's ready line on standard output; the rest is JSON:
``{"nats": [url, ...], "monitoring": [url, ...], "cluster_id": ..., "pid": ...}``."""


def _parse_ready_line(line: str) -> dict[str, object] | None:
    """The JSON object of a ready line, or ``None`` if ``line`` is not one."""
    if not line.startswith(READY_PREFIX):
        return None
    try:
        ports = json.loads(line[len(READY_PREFIX) :])
    except ValueError:
        return None
    if not isinstance(ports, dict) or not ports.get("nats"):
        return None
    return ports


def free_port() -> int:
    """A loopback port that was free a moment ago, below the ephemeral range where possible.

    The ephemeral range is the kernel's ``/proc/sys/net/ipv4/ip_local_port_range``. A port
    from that range can be taken at any moment as the local port of some outgoing connection,
    so a broker restarted on its port could find it in use for as long as that connection
    lives; ports below the range are only ever taken by an explicit bind.
    """
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    if low > 11024:
        for _ in range(64):
            port = random.randrange(low - 10000, low)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_broker_binary() -> Path:
    """Locate the ``stan-broker`` binary (see the module docs for the search order)."""
    env = os.environ.get("STAN_BROKER_BIN")
    if env:
        path = Path(env)
        if not path.is_file():
            raise FileNotFoundError(f"STAN_BROKER_BIN={env} does not exist")
        return path
    for base in (Path.cwd(), Path(__file__).resolve().parent):
        for parent in (base, *base.parents):
            for profile in ("debug", "release"):
                candidate = parent / "target" / profile / "stan-broker"
                if candidate.is_file():
                    return candidate
    found = shutil.which("stan-broker")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "stan-broker not found: build it (cargo build -p stan-broker) or set STAN_BROKER_BIN"
    )


class BrokerProcess:
    """A ``stan-broker`` child process on a loopback port.

    The first :meth:`start` picks a free port (:func:`free_port`); :meth:`restart` reuses it,
    so clients can reconnect to the same URL. With ``monitoring=True`` it also serves the
    monitoring endpoints on a free port (:attr:`monitoring_url`), kept across restarts too.
    """

    def __init__(
        self,
        *,
        cluster_id: str = "test-cluster",
        binary: str | os.PathLike[str] | None = None,
        port: int = 0,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        monitoring: bool = False,
    ) -> None:
        """Describe a broker; nothing runs before :meth:`start`."""
        self.cluster_id = cluster_id
        """The broker's cluster ID."""
        self.binary = Path(binary) if binary is not None else find_broker_binary()
        """The binary that is run."""
        self.port = port
        """The bound port (known after the first start)."""
        self.extra_args = list(extra_args)
        """More command-line flags (not ``-p``, ``-a``, ``-m`` or ``-cid``)."""
        self.startup_timeout = startup_timeout
        """Seconds to wait for the ready line."""
        self.monitoring = monitoring
        """Whether the monitoring endpoints are on (``-m``)."""
        self.monitoring_url: str | None = None
        """The monitoring base URL, e.g. ``http://127.0.0.1:8222`` (after :meth:`start`, with
        ``monitoring=True``), from the broker's ready line."""
        self._monitoring_port = 0
        self._url: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._output: deque[str] = deque(maxlen=200)
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The NATS URL clients connect to (from the broker's ready line)."""
        if self._url is not None:
            return self._url
        if self.port == 0:
            raise RuntimeError("the broker has not been started")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        """The last lines the broker printed, its logs included (for failure messages)."""
        return "".join(self._output)

    def start(self) -> BrokerProcess:
        """Start the broker and wait for its ready line.

        Without a port given, the first start picks the client port (and the monitoring port)
        with :func:`free_port`, outside the ephemeral range, so that no outgoing connection
        can hold it when :meth:`restart` binds it again; if another process takes it first,
        other ports are tried.
        """
        if self.running:
            raise RuntimeError("the broker is already running")
        if self.port != 0:
            return self._launch()
        for attempt in range(6):
            self.port = free_port()
            if self.monitoring:
                self._monitoring_port = free_port()
            try:
                return self._launch()
            except RuntimeError as e:
                self.port = 0
                self._monitoring_port = 0
                if attempt == 5 or "in use" not in str(e):
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> BrokerProcess:
        """Run the broker on :attr:`port` and wait for its ready line."""
        args = [
            str(self.binary),
            "-p",
            str(self.port),
            "-a",
            "127.0.0.1",
            "-cid",
            self.cluster_id,
            *(["-m", str(self._monitoring_port)] if self.monitoring else []),
            *self.extra_args,
        ]
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._proc = proc
        ready = threading.Event()
        found: list[dict[str, object]] = []

        def pump_stdout() -> None:
            # The ready line comes on standard output; keep draining after it.
            assert proc.stdout is not None
            for line in proc.stdout:
                ports = None if ready.is_set() else _parse_ready_line(line)
                if ports is not None:
                    found.append(ports)
                    ready.set()
                else:
                    self._output.append(line)
            ready.set()  # EOF: the process exited

        def pump_stderr() -> None:
            # The logs: drained so the broker never blocks on logging, kept for diagnostics.
            assert proc.stderr is not None
            for line in proc.stderr:
                self._output.append(line)

        self._readers = [
            threading.Thread(target=pump_stdout, name="stan-broker-stdout", daemon=True),
            threading.Thread(target=pump_stderr, name="stan-broker-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not ready.wait(self.startup_timeout) or not found:
            self.kill()
            raise RuntimeError(
                f"stan-broker did not become ready (exit code {proc.poll()}):\n{self.output()}"
            )
        nats = found[0]["nats"]
        monitoring = found[0].get("monitoring") or []
        assert isinstance(nats, list) and isinstance(monitoring, list)
        self._url = str(nats[0])
        self.port = _port_of(self._url)
        self.monitoring_url = str(monitoring[0]) if monitoring else None
        if self.monitoring_url is not None:
            self._monitoring_port = _port_of(self.monitoring_url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker gracefully (SIGTERM), killing it if it does not exit in time."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._finish()

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._finish()

    @contextmanager
    def paused(self, timeout: float = 10.0) -> Iterator[None]:
        """Freeze the broker (SIGSTOP) for the ``with`` block, then let it go on (SIGCONT).

        While paused it answers nothing, which makes requests and publishes time out. On
        Linux this waits until the process is really stopped before the block starts.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("the broker is not running")
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            self._wait_stopped(proc.pid, timeout)
            yield
        finally:
            os.kill(proc.pid, signal.SIGCONT)

    @staticmethod
    def _wait_stopped(pid: int, timeout: float) -> None:
        tasks = Path(f"/proc/{pid}/task")
        if not tasks.is_dir():
            return  # no procfs: signal delivery is all we can rely on

        def all_stopped() -> bool:
            for stat in tasks.glob("*/stat"):
                try:
                    # The state follows the parenthesised command name; T: stopped.
                    state = stat.read_text().rsplit(")", 1)[1].split()[0]
                except (OSError, IndexError):
                    continue  # the thread just exited
                if state not in ("T", "t"):
                    return False
            return True

        deadline = time.monotonic() + timeout
        while not all_stopped():
            if time.monotonic() > deadline:
                raise RuntimeError(f"stan-broker (pid {pid}) did not stop within {timeout}s")
            time.sleep(0.001)

    def restart(self) -> BrokerProcess:
        """Stop the broker and start a new one on the same ports (its memory store is empty)."""
        self.stop()
        return self.start()

    def _finish(self) -> None:
        for reader in self._readers:
            reader.join(5)
        self._readers = []
        if self._proc is not None:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
        self._proc = None

    def __enter__(self) -> BrokerProcess:
        """Start the broker unless it runs."""
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        self.stop()

    def __repr__(self) -> str:
        """Describe the broker."""
        return f"BrokerProcess(cluster_id={self.cluster_id!r}, port={self.port})"


def _port_of(url: str) -> int:
    """The port of ``nats://127.0.0.1:4222`` or ``http://127.0.0.1:8222/``."""
    return int(url.rstrip("/").rsplit(":", 1)[1])


@contextmanager
def run_broker(
    *,
    cluster_id: str = "test-cluster",
    binary: str | os.PathLike[str] | None = None,
    extra_args: Sequence[str] = (),
    monitoring: bool = False,
) -> Iterator[BrokerProcess]:
    """Run a broker on a free loopback port for the duration of the ``with`` block."""
    with BrokerProcess(
        cluster_id=cluster_id, binary=binary, extra_args=extra_args, monitoring=monitoring
    ) as broker:
        yield broker


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    @pytest.fixture(scope="session")
    def stan_broker() -> Iterator[BrokerProcess]:
        """One broker for the whole test session."""
        with run_broker() as broker:
            yield broker

    @pytest.fixture
    def stan_broker_per_test() -> Iterator[BrokerProcess]:
        """A broker of its own, for tests that stop, kill or restart it."""
        with run_broker() as broker:
            yield broker

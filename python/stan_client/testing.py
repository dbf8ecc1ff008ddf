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
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerProcess", "find_broker_binary", "run_broker"]

_READY_LINE = re.compile(r"Listening for client connections on (nats://\S+)")
"""The broker's startup line with the bound URL (printed once it serves clients)."""


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

    The first :meth:`start` lets the broker pick a free port; :meth:`restart` reuses it, so
    clients can reconnect to the same URL.
    """

    def __init__(
        self,
        *,
        cluster_id: str = "test-cluster",
        binary: str | os.PathLike[str] | None = None,
        port: int = 0,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        """Describe a broker; nothing runs before :meth:`start`."""
        self.cluster_id = cluster_id
        """The broker's cluster ID."""
        self.binary = Path(binary) if binary is not None else find_broker_binary()
        """The binary that is run."""
        self.port = port
        """The bound port (known after the first start)."""
        self.extra_args = list(extra_args)
        """More command-line flags."""
        self.startup_timeout = startup_timeout
        """Seconds to wait for the ready line."""
        self._proc: subprocess.Popen[str] | None = None
        self._output: deque[str] = deque(maxlen=200)
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The NATS URL clients connect to."""
        if self.port == 0:
            raise RuntimeError("the broker has not been started")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        """The last lines the broker printed (for failure messages)."""
        return "".join(self._output)

    def start(self) -> BrokerProcess:
        """Start the broker and wait until it prints that it listens for clients."""
        if self.running:
            raise RuntimeError("the broker is already running")
        args = [
            str(self.binary),
            "-p",
            str(self.port),
            "-a",
            "127.0.0.1",
            "-cid",
            self.cluster_id,
            *self.extra_args,
        ]
        env = dict(os.environ)
        env.pop("RUST_LOG", None)  # the ready line is logged at info level
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
        )
        self._proc = proc
        ready = threading.Event()
        found: list[str] = []

        def pump() -> None:
            # Keeps draining the pipe after startup so the broker never blocks on logging.
            assert proc.stdout is not None
            for line in proc.stdout:
                self._output.append(line)
                if not ready.is_set():
                    m = _READY_LINE.search(line)
                    if m:
                        found.append(m.group(1))
                        ready.set()
            ready.set()  # EOF: the process exited

        self._reader = threading.Thread(target=pump, name="stan-broker-output", daemon=True)
        self._reader.start()
        if not ready.wait(self.startup_timeout) or not found:
            self.kill()
            raise RuntimeError(
                f"stan-broker did not become ready (exit code {proc.poll()}):\n{self.output()}"
            )
        port = int(found[0].rsplit(":", 1)[1].rstrip("/"))
        self.port = port
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
        """Stop the broker and start a new one on the same port (its memory store is empty)."""
        self.stop()
        return self.start()

    def _finish(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
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


@contextmanager
def run_broker(
    *,
    cluster_id: str = "test-cluster",
    binary: str | os.PathLike[str] | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[BrokerProcess]:
    """Run a broker on a free loopback port for the duration of the ``with`` block."""
    with BrokerProcess(cluster_id=cluster_id, binary=binary, extra_args=extra_args) as broker:
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

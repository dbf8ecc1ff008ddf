"""Language runner processes and the runner protocol (see README.md, "Runner protocol").

A runner reads one JSON command per line on standard input and answers each with one JSON line
on standard output; its standard error goes to ``runner-<lang>-<n>.log`` in the log folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from .common import INTEGRATION_DIR, ROOT, StepError


def runner_argv(lang: str) -> list[str]:
    """The command line of ``lang``'s runner (``$STAN_RUNNER_<LANG>`` overrides it)."""
    env_name = f"STAN_RUNNER_{lang.upper()}"
    if os.environ.get(env_name):
        return shlex.split(os.environ[env_name])
    if lang == "rust":
        return [str(ROOT / "target/debug/stan-integration-runner")]
    if lang == "python":
        py = ROOT / "target/integration/venv/bin/python"
        return [str(py), str(INTEGRATION_DIR / "runner-python/runner.py")]
    if lang == "node":
        return ["node", str(INTEGRATION_DIR / "runner-node/runner.js")]
    if lang == "kotlin":
        k = INTEGRATION_DIR / "runner-kotlin/target"
        return ["java", "-cp", f"{k / 'classes'}:{k / 'lib'}/*", "runner.MainKt"]
    raise ValueError(lang)


class Runner:
    """One runner process of one language."""

    def __init__(self, lang: str, argv: list[str], log_dir: Path, n: int) -> None:
        """Start the runner ``argv`` (raises ``OSError`` when it cannot be started)."""
        self.lang = lang
        self.log_path = log_dir / f"runner-{lang}-{n}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - open as long as the runner runs
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=ROOT,
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.next_id = 0
        self.dead = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.strip()
            if not line:
                continue
            try:
                self.replies.put(json.loads(line))
            except json.JSONDecodeError:
                self.log.write(f"[stdout, not JSON] {line}\n")
        self.replies.put(None)

    def call_raw(self, op: str, timeout: float = 60.0, **kw: Any) -> dict[str, Any]:
        """Send command ``op`` (``None`` arguments are left out) and return the answer.

        Raises:
            StepError: The runner is gone or did not answer within ``timeout`` seconds.
        """
        if self.dead:
            raise StepError(f"{self.lang} runner is gone: {self.dead}")
        self.next_id += 1
        cmd = {"id": self.next_id, "op": op, **{k: v for k, v in kw.items() if v is not None}}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except OSError as e:  # BrokenPipeError included
            self.dead = f"stdin closed ({e})"
            raise StepError(f"{self.lang} runner is gone: {self.dead}") from e
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.dead = f"no answer to {op} within {timeout}s"
                self.kill()
                raise StepError(f"{self.lang} runner: {self.dead}") from None
            if reply is None:
                self.dead = f"exited (status {self.proc.wait()}), see {self.log_path}"
                raise StepError(f"{self.lang} runner {self.dead}")
            if reply.get("id") == self.next_id:
                return reply

    def call(self, op: str, timeout: float = 60.0, **kw: Any) -> dict[str, Any]:
        """Like :meth:`call_raw`, and an answer with ``ok: false`` raises ``StepError``."""
        reply = self.call_raw(op, timeout, **kw)
        if not reply.get("ok"):
            raise StepError(f"{self.lang}: {op} failed: {reply.get('code')}: {reply.get('error')}")
        return reply

    def exit(self) -> None:
        """Ask the runner to exit, then wait for it (killing it after 15 s)."""
        if not self.dead:
            with contextlib.suppress(StepError):
                self.call_raw("exit", timeout=15)
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
        self.dead = self.dead or "exited"

    def kill(self) -> None:
        """Kill the runner process if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

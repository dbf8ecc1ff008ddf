#!/usr/bin/env python3
"""Cross-language scenario runner (orchestrator).

Starts stan-broker once, starts one long-lived runner process per language (Rust, Python, Node,
Kotlin) and plays every scenario of scenarios.toml through them: each runner is a thin command
interpreter over its package's public API (one JSON command per line on stdin, one JSON answer
per line on stdout, see README.md), and every scenario's logic lives here, once.

Prints a matrix (scenarios × languages, publisher × consumer) and ends with
`N passed, M failed` on the last line. A language that cannot play a scenario counts as failed.
Python 3.11+ standard library only.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import queue
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LANGS = ["rust", "python", "node", "kotlin"]
SHORT = {"rust": "rs", "python": "py", "node": "js", "kotlin": "kt"}
CLUSTER = "integration-cluster"
MAX_PAYLOAD = 1024 * 1024  # the NATS default max payload the broker announces
QUIET_MS = 400  # how long "nothing more arrives" is observed
NEXT_MS = 10_000  # how long one awaited message may take


class StepError(Exception):
    """A scenario step did not go as expected."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


# --------------------------------------------------------------------------------------------
# Broker


class Broker:
    """stan-broker on a loopback port; restart() keeps the port."""

    def __init__(self, binary: str, log_dir: Path) -> None:
        self.binary = binary
        self.log_dir = log_dir
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self, extra: list[str] | None = None) -> None:
        last_error = ""
        for _ in range(50):
            self.starts += 1
            log_path = self.log_dir / f"broker-{self.starts}.log"
            args = [self.binary, "-p", str(self.port), "-a", "127.0.0.1", "-cid", CLUSTER]
            proc = subprocess.Popen(
                args + (extra or []),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            ready = threading.Event()
            url: list[str] = []

            def read(
                p: subprocess.Popen[str] = proc,
                path: Path = log_path,
                ready: threading.Event = ready,
                url: list[str] = url,
            ) -> None:
                assert p.stdout is not None
                with open(path, "w") as log:
                    for line in p.stdout:
                        log.write(line)
                        log.flush()
                        m = re.search(r"Listening for client connections on (\S+)", line)
                        if m:
                            url.append(m.group(1))
                        if "Server is ready" in line:
                            ready.set()
                ready.set()

            threading.Thread(target=read, daemon=True).start()
            ready.wait(30)
            if url and proc.poll() is None:
                self.proc = proc
                self.url = url[0]
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            proc.kill()
            proc.wait()
            last_error = log_path.read_text()[-2000:]
            time.sleep(0.1)  # the old process's port is still being released: retry
        raise RuntimeError(f"stan-broker did not start:\n{last_error}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


# --------------------------------------------------------------------------------------------
# Runners


class Runner:
    """One runner process of one language."""

    def __init__(self, lang: str, argv: list[str], log_dir: Path, n: int) -> None:
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
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                self.replies.put(json.loads(line))
            except json.JSONDecodeError:
                self.log.write(f"[stdout, not JSON] {line}\n")
        self.replies.put(None)

    def call_raw(self, op: str, timeout: float = 60.0, **kw: Any) -> dict[str, Any]:
        if self.dead:
            raise StepError(f"{self.lang} runner is gone: {self.dead}")
        self.next_id += 1
        cmd = {"id": self.next_id, "op": op, **{k: v for k, v in kw.items() if v is not None}}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
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
        reply = self.call_raw(op, timeout, **kw)
        if not reply.get("ok"):
            raise StepError(f"{self.lang}: {op} failed: {reply.get('code')}: {reply.get('error')}")
        return reply

    def exit(self) -> None:
        if not self.dead:
            try:
                self.call_raw("exit", timeout=15)
            except StepError:
                pass
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
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def runner_argv(lang: str) -> list[str]:
    env_name = f"STAN_RUNNER_{lang.upper()}"
    if os.environ.get(env_name):
        return shlex.split(os.environ[env_name])
    if lang == "rust":
        return [str(ROOT / "target/debug/stan-integration-runner")]
    if lang == "python":
        py = ROOT / "target/integration/venv/bin/python"
        return [str(py), str(HERE / "runner-python/runner.py")]
    if lang == "node":
        return ["node", str(HERE / "runner-node/runner.js")]
    if lang == "kotlin":
        k = HERE / "runner-kotlin/target"
        return ["java", "-cp", f"{k / 'classes'}:{k / 'lib'}/*", "runner.MainKt"]
    raise ValueError(lang)


# --------------------------------------------------------------------------------------------
# Scenario context and helpers


@dataclass
class Msg:
    seq: int
    data: bytes
    redelivered: bool
    ts_ns: int

    @staticmethod
    def of(d: dict[str, Any]) -> Msg:
        return Msg(int(d["seq"]), unb64(d["data"]), bool(d["redelivered"]), int(d["ts_ns"]))


@dataclass
class Conn:
    runner: Runner
    name: str
    closed: bool = False


@dataclass
class Sub:
    runner: Runner
    name: str
    manual: bool


@dataclass
class Ctx:
    broker: Broker
    runners: dict[str, Runner]
    log_dir: Path
    langs: list[str]
    counter: int = 0
    conns: list[Conn] = field(default_factory=list)
    spawned: list[Runner] = field(default_factory=list)

    def uid(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def runner(self, lang: str) -> Runner:
        r = self.runners.get(lang)
        if r is None or r.dead:
            why = r.dead if r else "not started"
            raise StepError(f"no {lang} runner ({why})")
        return r

    def spawn(self, lang: str) -> Runner:
        """A fresh runner process (for scenarios across processes)."""
        self.counter += 1
        r = Runner(lang, runner_argv(lang), self.log_dir, self.counter)
        self.spawned.append(r)
        r.call("hello", timeout=120)
        return r

    def connect(self, r: Runner, client_id: str | None = None, **kw: Any) -> Conn:
        name = self.uid("c")
        cid = client_id or f"{SHORT[r.lang]}-{name}"
        r.call("connect", conn=name, cluster=CLUSTER, client_id=cid, url=self.broker.url, **kw)
        c = Conn(r, name)
        self.conns.append(c)
        return c

    def close(self, c: Conn) -> None:
        c.closed = True
        c.runner.call("close", conn=c.name)

    def publish(self, c: Conn, channel: str, data: bytes) -> str:
        return str(c.runner.call("publish", conn=c.name, subject=channel, data=b64(data))["guid"])

    def subscribe(self, c: Conn, channel: str, manual: bool = True, **kw: Any) -> Sub:
        name = self.uid("s")
        c.runner.call("subscribe", conn=c.name, sub=name, subject=channel, manual_acks=manual, **kw)
        return Sub(c.runner, name, manual)

    def next(self, s: Sub, timeout_ms: int = NEXT_MS) -> Msg:
        reply = s.runner.call("next", sub=s.name, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + 30)
        if reply.get("msg") is None:
            if reply.get("end"):
                raise StepError(f"{s.runner.lang}: subscription ended ({reply.get('end_code')})")
            raise StepError(f"{s.runner.lang}: no message within {timeout_ms} ms")
        return Msg.of(reply["msg"])

    def drain(self, s: Sub, idle_ms: int = QUIET_MS) -> list[Msg]:
        reply = s.runner.call("drain", sub=s.name, idle_ms=idle_ms, timeout=120)
        return [Msg.of(m) for m in reply["msgs"]]

    def ack(self, s: Sub, m: Msg) -> None:
        s.runner.call("ack", sub=s.name, seq=m.seq)

    def receive(self, s: Sub, n: int, ack: bool = True) -> list[Msg]:
        out = []
        for _ in range(n):
            m = self.next(s)
            out.append(m)
            if ack and s.manual:
                self.ack(s, m)
        return out

    def quiet(self, s: Sub, idle_ms: int = QUIET_MS) -> None:
        extra = self.drain(s, idle_ms)
        if extra:
            raise StepError(f"{s.runner.lang}: unexpected messages {[m.seq for m in extra]}")

    def cleanup(self) -> None:
        for c in self.conns:
            if not c.closed and not c.runner.dead:
                try:
                    c.runner.call_raw("close", conn=c.name, timeout=20)
                except StepError:
                    pass
        self.conns.clear()
        for r in self.spawned:
            r.exit()
        self.spawned.clear()


def check(cond: bool, what: str) -> None:
    if not cond:
        raise StepError(what)


def seqs(msgs: list[Msg]) -> list[int]:
    return [m.seq for m in msgs]


def expect_seqs(msgs: list[Msg], expected: list[int], what: str = "sequences") -> None:
    check(seqs(msgs) == expected, f"{what}: got {seqs(msgs)}, expected {expected}")


def channel(sid: str, *parts: str) -> str:
    return ".".join([sid, *parts, str(random.randrange(1 << 30))])


def publish_n(ctx: Ctx, c: Conn, ch: str, first: int, n: int) -> None:
    for i in range(first, first + n):
        ctx.publish(c, ch, f"m{i}".encode())


def collect_group(ctx: Ctx, subs: list[Sub], n: int, deadline_s: float = 30.0) -> dict[str, list[Msg]]:
    """Drain every member until n messages arrived in total, then check nothing more comes."""
    got: dict[str, list[Msg]] = {s.name: [] for s in subs}
    end = time.monotonic() + deadline_s
    while sum(len(v) for v in got.values()) < n:
        check(time.monotonic() < end, f"group got {sum(len(v) for v in got.values())} of {n}")
        for s in subs:
            got[s.name].extend(ctx.drain(s, 200))
    for s in subs:
        got[s.name].extend(ctx.drain(s, QUIET_MS // 2))
    return got


def exactly_once(got: dict[str, list[Msg]], expected: list[int], what: str) -> None:
    all_seqs = sorted(m.seq for v in got.values() for m in v)
    check(all_seqs == expected, f"{what}: delivered {all_seqs}, expected each of {expected} once")


# --------------------------------------------------------------------------------------------
# Per-language scenarios: L plays every role


def sc_connect_close(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ctx.publish(c, channel("connect-close", lang), b"x")
    ctx.close(c)
    reply = r.call_raw("publish", conn=c.name, subject="connect-close.after", data=b64(b"y"))
    check(not reply["ok"], "publish after close succeeded")
    check(reply.get("code") == "CONNECTION_CLOSED", f"publish after close: code {reply.get('code')}")
    reply = r.call_raw("close", conn=c.name, timeout=20)
    check(
        reply["ok"] or reply.get("code") in ("CONNECTION_CLOSED", "INVALID_STATE"), f"second close: {reply}"
    )


def sc_publish_ack(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("publish-ack", lang)
    guids = [ctx.publish(c, ch, f"m{i}".encode()) for i in range(1, 11)]
    check(all(guids), f"empty guid among {guids}")
    check(len(set(guids)) == 10, "guids are not distinct")
    s = ctx.subscribe(c, ch, start={"kind": "first"})
    msgs = ctx.receive(s, 10)
    expect_seqs(msgs, list(range(1, 11)))
    check([m.data for m in msgs] == [f"m{i}".encode() for i in range(1, 11)], "payloads differ")
    ctx.quiet(s)


def start_case(
    ctx: Ctx, lang: str, sid: str, before: int, start: dict[str, Any], after: int, expected: list[int]
) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel(sid, lang)
    publish_n(ctx, c, ch, 1, before)
    s = ctx.subscribe(c, ch, start=start)
    publish_n(ctx, c, ch, before + 1, after)
    msgs = ctx.receive(s, len(expected))
    expect_seqs(msgs, expected)
    check([m.data for m in msgs] == [f"m{i}".encode() for i in expected], "payloads differ")
    ctx.quiet(s)


def sc_start_new_only(ctx: Ctx, lang: str) -> None:
    start_case(ctx, lang, "start-new-only", 3, {"kind": "new_only"}, 1, [4])


def sc_start_last_received(ctx: Ctx, lang: str) -> None:
    start_case(ctx, lang, "start-last-received", 3, {"kind": "last_received"}, 1, [3, 4])


def sc_start_first(ctx: Ctx, lang: str) -> None:
    start_case(ctx, lang, "start-first", 3, {"kind": "first"}, 1, [1, 2, 3, 4])


def sc_start_sequence(ctx: Ctx, lang: str) -> None:
    start_case(ctx, lang, "start-sequence", 5, {"kind": "sequence", "value": 3}, 0, [3, 4, 5])


def sc_start_time(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("start-time", lang)
    publish_n(ctx, c, ch, 1, 3)
    time.sleep(1.0)  # time-based start: the two halves need store times 1 s apart
    publish_n(ctx, c, ch, 4, 2)
    all_msgs = ctx.receive(ctx.subscribe(c, ch, start={"kind": "first"}), 5)
    t_ms = all_msgs[3].ts_ns // 1_000_000 - 500  # half-way: tolerates 0.5 s of client-to-server latency
    expected = [m.seq for m in all_msgs if m.ts_ns >= t_ms * 1_000_000]
    check(expected == [4, 5], f"store times not apart as published: {[m.ts_ns for m in all_msgs]}")
    s = ctx.subscribe(c, ch, start={"kind": "time_ms", "value": t_ms})
    expect_seqs(ctx.receive(s, 2), expected)
    ctx.quiet(s)


def sc_start_time_delta(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("start-time-delta", lang)
    publish_n(ctx, c, ch, 1, 2)
    time.sleep(2.0)  # time-based start: the first two must be older than the delta
    publish_n(ctx, c, ch, 3, 2)
    s = ctx.subscribe(c, ch, start={"kind": "time_delta_ms", "value": 1000})
    expect_seqs(ctx.receive(s, 2), [3, 4])
    ctx.quiet(s)
    s2 = ctx.subscribe(c, ch, start={"kind": "time_delta_ms", "value": 3_600_000})
    expect_seqs(ctx.receive(s2, 4), [1, 2, 3, 4])
    ctx.quiet(s2)


def durable_resume(ctx: Ctx, lang_a: str, lang_b: str, sid: str) -> None:
    pub = ctx.connect(ctx.runner(lang_a))
    ch = channel(sid, lang_a, lang_b)
    cid = f"{sid}-{SHORT[lang_a]}-{ctx.uid('d')}"
    publish_n(ctx, pub, ch, 1, 3)
    a = ctx.spawn(lang_a)
    ca = ctx.connect(a, client_id=cid)
    sa = ctx.subscribe(ca, ch, durable="dur", start={"kind": "first"})
    expect_seqs(ctx.receive(sa, 3), [1, 2, 3], "process A")
    ctx.close(ca)
    a.exit()
    check(a.proc.returncode == 0, f"process A exited with {a.proc.returncode}")
    publish_n(ctx, pub, ch, 4, 3)
    b = ctx.spawn(lang_b)
    cb = ctx.connect(b, client_id=cid)
    sb = ctx.subscribe(cb, ch, durable="dur", start={"kind": "first"})
    msgs = ctx.receive(sb, 3)
    expect_seqs(msgs, [4, 5, 6], "process B")
    check([m.data for m in msgs] == [b"m4", b"m5", b"m6"], "payloads differ")
    ctx.quiet(sb)
    ctx.close(cb)


def sc_durable_resume(ctx: Ctx, lang: str) -> None:
    durable_resume(ctx, lang, lang, "durable-resume")


def sc_durable_resume_cross(ctx: Ctx, lang: str) -> None:
    # The next language of the run (of all four when only one is selected).
    order = ctx.langs if len(ctx.langs) > 1 else LANGS
    durable_resume(ctx, lang, order[(order.index(lang) + 1) % len(order)], "durable-resume-cross")


def sc_queue_group(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    ch = channel("queue-group", lang)
    members = [ctx.subscribe(ctx.connect(r), ch, queue="q") for _ in range(2)]
    pub = ctx.connect(r)
    publish_n(ctx, pub, ch, 1, 20)
    got = collect_group(ctx, members, 20)
    exactly_once(got, list(range(1, 21)), "queue group")
    for s in members:
        for m in got[s.name]:
            ctx.ack(s, m)


def sc_durable_queue_group(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    ch = channel("durable-queue-group", lang)
    members = [
        ctx.subscribe(ctx.connect(r), ch, queue="dq", durable="dur", start={"kind": "first"})
        for _ in range(2)
    ]
    pub = ctx.connect(r)
    publish_n(ctx, pub, ch, 1, 6)
    got = collect_group(ctx, members, 6)
    exactly_once(got, list(range(1, 7)), "durable queue group")
    for s in members:
        for m in got[s.name]:
            ctx.ack(s, m)
    for s in members:
        r.call("close_sub", sub=s.name)
    publish_n(ctx, pub, ch, 7, 4)
    s3 = ctx.subscribe(ctx.connect(r), ch, queue="dq", durable="dur", start={"kind": "first"})
    expect_seqs(ctx.receive(s3, 4), [7, 8, 9, 10], "new member")
    ctx.quiet(s3)


def sc_manual_ack_redelivery(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("manual-ack-redelivery", lang)
    s = ctx.subscribe(c, ch, ack_wait_ms=1000)
    publish_n(ctx, c, ch, 1, 3)
    first = ctx.receive(s, 3, ack=False)
    expect_seqs(first, [1, 2, 3])
    check(not any(m.redelivered for m in first), "first delivery flagged redelivered")
    ctx.ack(s, first[1])
    again = ctx.receive(s, 2, ack=False)
    check(sorted(seqs(again)) == [1, 3], f"redelivered {seqs(again)}, expected 1 and 3")
    check(all(m.redelivered for m in again), "redelivery not flagged redelivered")
    check([m.data for m in sorted(again, key=lambda m: m.seq)] == [b"m1", b"m3"], "payloads differ")
    for m in again:
        ctx.ack(s, m)
    ctx.quiet(s, 1600)  # longer than the ack wait: nothing acked comes back


def sc_max_in_flight(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("max-in-flight", lang)
    s = ctx.subscribe(c, ch, start={"kind": "first"}, max_in_flight=3)
    publish_n(ctx, c, ch, 1, 10)
    got = ctx.receive(s, 3, ack=False)
    expect_seqs(got, [1, 2, 3], "before any ack")
    ctx.quiet(s)
    ctx.ack(s, got[0])
    got.append(ctx.next(s))
    expect_seqs(got[3:], [4], "after one ack")
    ctx.quiet(s)
    for m in got[1:]:
        ctx.ack(s, m)
    got += ctx.receive(s, 6)
    expect_seqs(got, list(range(1, 11)), "all")
    ctx.quiet(s)


def sc_unsubscribe_vs_close(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("unsubscribe-vs-close", lang)
    publish_n(ctx, c, ch, 1, 2)
    s = ctx.subscribe(c, ch, durable="dur", start={"kind": "first"})
    expect_seqs(ctx.receive(s, 2), [1, 2])
    r.call("close_sub", sub=s.name)
    publish_n(ctx, c, ch, 3, 1)
    s = ctx.subscribe(c, ch, durable="dur", start={"kind": "first"})
    expect_seqs(ctx.receive(s, 1), [3], "after close")
    ctx.quiet(s)
    r.call("unsubscribe", sub=s.name)
    publish_n(ctx, c, ch, 4, 1)
    s = ctx.subscribe(c, ch, durable="dur", start={"kind": "first"})
    expect_seqs(ctx.receive(s, 4), [1, 2, 3, 4], "after unsubscribe")
    ctx.quiet(s)


def fidelity_payloads() -> list[bytes]:
    big = bytes(random.Random(7).getrandbits(8) for _ in range(MAX_PAYLOAD - 1024))
    return [
        b"",
        bytes(range(256)) + b"\x00\x00\x00",
        big,
        "héllo wörld ✓ 日本語 🚀 \u0000 end".encode(),
    ]


def sc_payload_fidelity(ctx: Ctx, lang: str) -> None:
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("payload-fidelity", lang)
    payloads = fidelity_payloads()
    for p in payloads:
        ctx.publish(c, ch, p)
    s = ctx.subscribe(c, ch, start={"kind": "first"})
    msgs = ctx.receive(s, len(payloads))
    expect_seqs(msgs, [1, 2, 3, 4])
    for i, (m, p) in enumerate(zip(msgs, payloads)):
        check(m.data == p, f"payload {i} differs (len {len(m.data)} vs {len(p)})")
    ctx.quiet(s)


PER_LANGUAGE: dict[str, Callable[[Ctx, str], None]] = {
    "connect-close": sc_connect_close,
    "publish-ack": sc_publish_ack,
    "start-new-only": sc_start_new_only,
    "start-last-received": sc_start_last_received,
    "start-first": sc_start_first,
    "start-sequence": sc_start_sequence,
    "start-time": sc_start_time,
    "start-time-delta": sc_start_time_delta,
    "durable-resume": sc_durable_resume,
    "durable-resume-cross": sc_durable_resume_cross,
    "queue-group": sc_queue_group,
    "durable-queue-group": sc_durable_queue_group,
    "manual-ack-redelivery": sc_manual_ack_redelivery,
    "max-in-flight": sc_max_in_flight,
    "unsubscribe-vs-close": sc_unsubscribe_vs_close,
    "payload-fidelity": sc_payload_fidelity,
}


# --------------------------------------------------------------------------------------------
# Cross-language scenarios


def pair_payloads() -> list[bytes]:
    rnd = random.Random(11)
    return [
        b"",
        b"\x00",
        b"\x00" * 100,
        bytes(range(256)),
        "UTF-8: ünïcödé ✓ 日本語 🚀".encode(),
        bytes(rnd.getrandbits(8) for _ in range(64 * 1024)),
        b"\xff\xfe\x00\x01 not utf-8",
        b"last",
    ]


def sc_cross_pair(ctx: Ctx, pub_lang: str, sub_lang: str) -> None:
    ch = channel("cross-pair", pub_lang, sub_lang)
    pub = ctx.connect(ctx.runner(pub_lang))
    con = ctx.connect(ctx.runner(sub_lang))
    payloads = pair_payloads()
    for p in payloads[:4]:
        ctx.publish(pub, ch, p)
    s = ctx.subscribe(con, ch, start={"kind": "first"})
    for p in payloads[4:]:
        ctx.publish(pub, ch, p)
    msgs = ctx.receive(s, len(payloads))
    expect_seqs(msgs, list(range(1, len(payloads) + 1)), "gap-free sequences")
    for i, (m, p) in enumerate(zip(msgs, payloads)):
        check(m.data == p, f"payload {i} differs (len {len(m.data)} vs {len(p)})")
    ctx.quiet(s)


def sc_queue_group_4lang(ctx: Ctx, leaver: str) -> None:
    ch = channel("queue-group-4lang", leaver)
    members = {
        lang: ctx.subscribe(
            ctx.connect(ctx.runner(lang)), ch, queue="q4", max_in_flight=10, ack_wait_ms=30_000
        )
        for lang in LANGS
    }
    pub = ctx.connect(ctx.runner(leaver))
    publish_n(ctx, pub, ch, 1, 40)
    got = collect_group(ctx, list(members.values()), 40)
    exactly_once(got, list(range(1, 41)), "four-language group")
    for lang, s in members.items():
        check(len(got[s.name]) == 10, f"{lang} member got {len(got[s.name])}, expected 10 (max in flight)")
    for lang, s in members.items():
        if lang != leaver:
            for m in got[s.name]:
                ctx.ack(s, m)
    left = sorted(m.seq for m in got[members[leaver].name])
    members[leaver].runner.call("close_sub", sub=members[leaver].name)
    rest = [s for lang, s in members.items() if lang != leaver]
    again = collect_group(ctx, rest, len(left))
    exactly_once(again, left, f"after the {leaver} member left")
    check(
        all(m.redelivered for v in again.values() for m in v), "handed-over messages not flagged redelivered"
    )
    for s in rest:
        for m in again[s.name]:
            ctx.ack(s, m)


# --------------------------------------------------------------------------------------------
# Restart scenario: every language at once, one broker restart


def sc_auto_resume_restart(ctx: Ctx, langs: list[str]) -> dict[str, tuple[bool, str]]:
    results: dict[str, tuple[bool, str]] = {}
    state: dict[str, tuple[Conn, Sub, str]] = {}
    for lang in langs:
        try:
            c = ctx.connect(ctx.runner(lang), auto_resume=True)
            ch = channel("auto-resume-restart", lang)
            s = ctx.subscribe(c, ch, start={"kind": "first"})
            ctx.publish(c, ch, b"before")
            m = ctx.next(s)
            check(m.data == b"before", "first message differs")
            ctx.ack(s, m)
            state[lang] = (c, s, ch)
        except StepError as e:
            results[lang] = (False, str(e))
    ctx.broker.restart()
    for lang, (c, s, ch) in state.items():
        try:
            r = c.runner
            ev = r.call("wait_event", conn=c.name, kind="ConnectionLost", timeout_ms=30_000)
            check(ev["found"], f"no ConnectionLost event (events: {ev['events']})")
            ev = r.call("wait_event", conn=c.name, kind="Resumed", timeout_ms=30_000)
            check(ev["found"], f"no Resumed event (events: {ev['events']})")
            ctx.publish(c, ch, b"after")
            m = ctx.next(s)
            check(m.data == b"after", f"after the restart got {m.data[:40]!r}")
            ctx.ack(s, m)
            ctx.quiet(s)
            results[lang] = (True, "")
        except StepError as e:
            results[lang] = (False, str(e))
    return results


# --------------------------------------------------------------------------------------------
# Main


def probe_file_store(binary: str) -> str:
    """'' when the broker accepts a file store, else its answer."""
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.Popen(
            [binary, "-p", "0", "-a", "127.0.0.1", "-st", "FILE", "--dir", d],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert p.stdout is not None
        first = ""
        for line in p.stdout:
            first = first or line.strip()
            if "Server is ready" in line:
                p.terminate()
                p.wait()
                return ""
        p.wait()
        return first or f"exit status {p.returncode}"


def cell(res: tuple[bool, str] | None) -> str:
    return "-" if res is None else ("ok" if res[0] else "FAIL")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--broker", default=os.environ.get("STAN_BROKER_BIN", str(ROOT / "target/debug/stan-broker"))
    )
    ap.add_argument(
        "--languages", default=",".join(LANGS), help="comma-separated subset of " + ",".join(LANGS)
    )
    ap.add_argument("--only", default="", help="comma-separated scenario ids")
    ap.add_argument("--log-dir", default="")
    args = ap.parse_args()

    langs = [lang for lang in args.languages.split(",") if lang]
    only = {s for s in args.only.split(",") if s}
    catalogue = tomllib.loads((HERE / "scenarios.toml").read_text())["scenario"]
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="stan-integration."))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {log_dir}", flush=True)
    started = time.monotonic()

    results: dict[tuple[str, str], tuple[bool, str]] = {}
    pending: list[str] = []

    def record(sid: str, col: str, ok: bool, detail: str = "") -> None:
        results[(sid, col)] = (ok, detail)
        mark = "ok" if ok else f"FAIL: {detail}"
        print(f"  {sid:<24} {col:<16} {mark}", flush=True)

    broker = Broker(args.broker, log_dir)
    broker.start()
    print(f"broker: {broker.url}", flush=True)
    runners: dict[str, Runner] = {}
    for lang in LANGS:
        try:
            r = Runner(lang, runner_argv(lang), log_dir, 0)
            runners[lang] = r
        except OSError as e:
            print(f"{lang} runner did not start: {e}", flush=True)
    for lang, r in runners.items():
        try:
            r.call("hello", timeout=120)
        except StepError as e:
            print(f"{lang} runner is not usable: {e}", flush=True)
    ctx = Ctx(broker, runners, log_dir, langs)

    def run_one(sid: str, col: str, fn: Callable[[], None]) -> None:
        try:
            fn()
            record(sid, col, True)
        except StepError as e:
            record(sid, col, False, str(e))
        except Exception as e:  # noqa: BLE001 - a bug in a scenario is a failed scenario
            record(sid, col, False, f"{type(e).__name__}: {e}")
            traceback.print_exc()
        finally:
            ctx.cleanup()

    try:
        for sc in catalogue:
            sid, kind = sc["id"], sc["kind"]
            if only and sid not in only:
                continue
            if sc.get("status") == "pending-file-store":
                why = probe_file_store(args.broker)
                if why:
                    pending.append(f"{sid} (pending-file-store: the broker answers {why!r})")
                else:
                    for lang in langs:
                        record(sid, lang, False, "the broker has a file store now: implement this scenario")
                continue
            if kind == "per-language":
                fn = PER_LANGUAGE.get(sid)
                for lang in langs:
                    if fn is None:
                        record(sid, lang, False, "no implementation in run.py")
                    else:
                        run_one(sid, lang, functools.partial(fn, ctx, lang))
            elif kind == "pairs":
                for p in langs:
                    for c in langs:
                        run_one(sid, f"{p}->{c}", functools.partial(sc_cross_pair, ctx, p, c))
            elif kind == "mixed":
                for leaver in LANGS:
                    run_one(sid, f"leaver={leaver}", functools.partial(sc_queue_group_4lang, ctx, leaver))
            elif kind != "restart":
                for lang in langs:
                    record(sid, lang, False, f"unknown kind {kind!r}")
        # Broker restarts last: they disturb every connection.
        for sc in catalogue:
            if sc["kind"] == "restart" and (not only or sc["id"] in only):
                try:
                    for lang, res in sc_auto_resume_restart(ctx, langs).items():
                        record(sc["id"], lang, *res)
                finally:
                    ctx.cleanup()
    finally:
        for r in runners.values():
            r.exit()
        broker.stop()

    # Matrix
    print()
    per_lang_ids = [
        sc["id"]
        for sc in catalogue
        if sc["kind"] in ("per-language", "restart")
        and sc.get("status") is None
        and (not only or sc["id"] in only)
    ]
    if per_lang_ids:
        print(f"{'scenario':<24}" + "".join(f"{lang:<8}" for lang in langs))
        for sid in per_lang_ids:
            cells = [cell(results.get((sid, lang))) for lang in langs]
            print(f"{sid:<24}" + "".join(f"{c:<8}" for c in cells))
    if any(k[0] == "cross-pair" for k in results):
        print()
        corner = "pub \\ sub"
        print(f"{corner:<24}" + "".join(f"{lang:<8}" for lang in langs))
        for p in langs:
            cells = [cell(results.get(("cross-pair", f"{p}->{c}"))) for c in langs]
            print(f"{p:<24}" + "".join(f"{c:<8}" for c in cells))
    mixed = [(k[1], v) for k, v in results.items() if k[0] == "queue-group-4lang"]
    if mixed:
        print()
        print("queue-group-4lang: " + ", ".join(f"{col} {'ok' if v[0] else 'FAIL'}" for col, v in mixed))
    failures = [(k, v[1]) for k, v in results.items() if not v[0]]
    if failures:
        print("\nfailures:")
        for (sid, col), detail in failures:
            print(f"  {sid} [{col}]: {detail}")
    for p in pending:
        print(f"pending (not run, not counted): {p}")
    print(f"runtime: {time.monotonic() - started:.0f}s; logs: {log_dir}")
    passed = sum(1 for v in results.values() if v[0])
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) and results else 1


if __name__ == "__main__":
    sys.exit(main())

"""What scenarios are written with: :class:`Ctx` and assertion helpers.

:class:`Ctx` opens connections and subscriptions and moves messages through the runners. Every
helper raises :class:`~harness.common.StepError` when a step does not go as expected.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .broker import Broker, file_store_broker
from .common import CLUSTER, SHORT, StepError, b64, unb64
from .runner import Runner, runner_argv

QUIET_MS = 400
"""How long "nothing more arrives" is observed."""

NEXT_MS = 10_000
"""How long one awaited message may take."""


@dataclass
class Msg:
    """A delivered message as a runner reports it."""

    seq: int
    data: bytes
    redelivered: bool
    ts_ns: int

    @staticmethod
    def of(d: dict[str, Any]) -> Msg:
        """Decode a message object of the runner protocol."""
        return Msg(int(d["seq"]), unb64(d["data"]), bool(d["redelivered"]), int(d["ts_ns"]))


@dataclass
class Conn:
    """A connection held by a runner under ``name``."""

    runner: Runner
    name: str
    closed: bool = False


@dataclass
class Sub:
    """A subscription held by a runner under ``name``."""

    runner: Runner
    name: str
    manual: bool


@dataclass
class Ctx:
    """The state of a run: the broker, the long-lived runners, and what a scenario opened.

    :meth:`cleanup` (after every scenario) closes the connections and stops the runners and
    brokers that the scenario opened, spawned or started.
    """

    broker: Broker
    runners: dict[str, Runner]
    log_dir: Path
    langs: list[str]
    counter: int = 0
    conns: list[Conn] = field(default_factory=list)
    spawned: list[Runner] = field(default_factory=list)
    brokers: list[Broker] = field(default_factory=list)

    def uid(self, prefix: str) -> str:
        """A name unique in this run."""
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def runner(self, lang: str) -> Runner:
        """The long-lived runner of ``lang``."""
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

    def file_broker(self, prefix: str) -> Broker:
        """A broker of this scenario alone, with the file store in a fresh directory.

        It runs beside the shared broker, on its own port; :meth:`cleanup` stops it.
        """
        b = file_store_broker(self.broker.binary, self.log_dir, self.uid(prefix))
        self.brokers.append(b)
        return b

    def connect(
        self, r: Runner, client_id: str | None = None, broker: Broker | None = None, **kw: Any
    ) -> Conn:
        """Connect runner ``r`` to ``broker``, by default the shared one.

        The client ID is derived from the language unless ``client_id`` is given.
        """
        name = self.uid("c")
        cid = client_id or f"{SHORT[r.lang]}-{name}"
        url = (broker or self.broker).url
        r.call("connect", conn=name, cluster=CLUSTER, client_id=cid, url=url, **kw)
        c = Conn(r, name)
        self.conns.append(c)
        return c

    def close(self, c: Conn) -> None:
        """Close a connection."""
        c.closed = True
        c.runner.call("close", conn=c.name)

    def publish(self, c: Conn, channel: str, data: bytes) -> str:
        """Publish and wait for the ack; returns the guid."""
        return str(c.runner.call("publish", conn=c.name, subject=channel, data=b64(data))["guid"])

    def subscribe(self, c: Conn, channel: str, manual: bool = True, **kw: Any) -> Sub:
        """Subscribe (manual acks unless ``manual=False``)."""
        name = self.uid("s")
        c.runner.call("subscribe", conn=c.name, sub=name, subject=channel, manual_acks=manual, **kw)
        return Sub(c.runner, name, manual)

    def next(self, s: Sub, timeout_ms: int = NEXT_MS) -> Msg:
        """The next message of ``s``, waiting up to ``timeout_ms``."""
        reply = s.runner.call(
            "next", sub=s.name, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + 30
        )
        if reply.get("msg") is None:
            if reply.get("end"):
                raise StepError(f"{s.runner.lang}: subscription ended ({reply.get('end_code')})")
            raise StepError(f"{s.runner.lang}: no message within {timeout_ms} ms")
        return Msg.of(reply["msg"])

    def drain(self, s: Sub, idle_ms: int = QUIET_MS) -> list[Msg]:
        """Every message of ``s`` until none arrives for ``idle_ms``."""
        reply = s.runner.call("drain", sub=s.name, idle_ms=idle_ms, timeout=120)
        return [Msg.of(m) for m in reply["msgs"]]

    def ack(self, s: Sub, m: Msg) -> None:
        """Acknowledge a message."""
        s.runner.call("ack", sub=s.name, seq=m.seq)

    def receive(self, s: Sub, n: int, ack: bool = True) -> list[Msg]:
        """The next ``n`` messages, acknowledged (manual-ack subscriptions) unless ``ack=False``."""
        out = []
        for _ in range(n):
            m = self.next(s)
            out.append(m)
            if ack and s.manual:
                self.ack(s, m)
        return out

    def quiet(self, s: Sub, idle_ms: int = QUIET_MS) -> None:
        """Check that nothing more arrives on ``s`` for ``idle_ms``."""
        extra = self.drain(s, idle_ms)
        if extra:
            raise StepError(f"{s.runner.lang}: unexpected messages {[m.seq for m in extra]}")

    def cleanup(self) -> None:
        """Close what the last scenario opened and stop the runners it spawned."""
        for c in self.conns:
            if not c.closed and not c.runner.dead:
                with contextlib.suppress(StepError):
                    c.runner.call_raw("close", conn=c.name, timeout=20)
        self.conns.clear()
        for r in self.spawned:
            r.exit()
        self.spawned.clear()
        for b in self.brokers:
            b.stop()
        self.brokers.clear()


def check(cond: bool, what: str) -> None:
    """Fail the step with ``what`` unless ``cond``."""
    if not cond:
        raise StepError(what)


def seqs(msgs: list[Msg]) -> list[int]:
    """The sequence numbers of ``msgs``."""
    return [m.seq for m in msgs]


def expect_seqs(msgs: list[Msg], expected: list[int], what: str = "sequences") -> None:
    """Check that ``msgs`` have exactly the sequences ``expected``, in order."""
    check(seqs(msgs) == expected, f"{what}: got {seqs(msgs)}, expected {expected}")


def channel(sid: str, *parts: str) -> str:
    """A channel name unique to this run: the scenario ID, ``parts`` and a random number."""
    return ".".join([sid, *parts, str(random.randrange(1 << 30))])


def publish_n(ctx: Ctx, c: Conn, ch: str, first: int, n: int) -> None:
    """Publish ``m<first>`` … ``m<first + n - 1>``."""
    for i in range(first, first + n):
        ctx.publish(c, ch, f"m{i}".encode())


def collect_group(
    ctx: Ctx, subs: list[Sub], n: int, deadline_s: float = 30.0
) -> dict[str, list[Msg]]:
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
    """Check that the members of a group got each of ``expected`` exactly once between them."""
    all_seqs = sorted(m.seq for v in got.values() for m in v)
    check(all_seqs == expected, f"{what}: delivered {all_seqs}, expected each of {expected} once")

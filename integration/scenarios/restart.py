"""Broker restarts.

- ``auto-resume-restart``: every language at once around one restart of the shared broker;
- ``at-least-once-kill9``: per language, a broker of its own with the file store, killed with
  SIGKILL and restarted on the same directory and port.
"""

from __future__ import annotations

import time

from harness.common import StepError
from harness.context import Conn, Ctx, Msg, Sub, channel, check, expect_seqs, publish_n, seqs
from harness.report import Result

KILL9_ACK_WAIT_MS = 3000
"""Ack wait of the durable of at-least-once-kill9: its unacked messages come again this long
after the restart at the latest (and not before the kill, which follows within milliseconds)."""

KILL9_DEADLINE_S = 30.0
"""How long at-least-once-kill9 waits for the redeliveries and the messages after the resume."""


def sc_auto_resume_restart(ctx: Ctx, langs: list[str]) -> dict[str, Result]:
    """auto-resume-restart: each client sees ConnectionLost then Resumed, and keeps working."""
    results: dict[str, Result] = {}
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


def sc_at_least_once_kill9(ctx: Ctx, lang: str) -> None:
    """at-least-once-kill9: nothing acknowledged is lost across ``kill -9`` of a file store.

    Durable (manual acks) on a broker of its own with the file store; 20 published (each
    awaiting its PubAck), all 20 delivered, 1..10 acked; ``kill -9``; the broker restarts on
    the same directory and port. With the dedup window on, the restarted broker drops the
    registration of a client that re-sends its in-flight publishes (ours, auto-resume on), so
    the client resumes its session; a registration the store kept survives the reconnect.
    Then 11..20 come again flagged redelivered, 3 more published arrive, a new subscription
    from the first message finds all 23 stored, and once everything is acked nothing comes back.
    """
    r = ctx.runner(lang)
    broker = ctx.file_broker("kill9")
    c = ctx.connect(r, broker=broker, auto_resume=True)
    ch = channel("at-least-once-kill9", lang)
    s = ctx.subscribe(c, ch, durable="dur", start={"kind": "first"}, ack_wait_ms=KILL9_ACK_WAIT_MS)
    guids = [ctx.publish(c, ch, f"m{i}".encode()) for i in range(1, 21)]
    check(len(set(guids)) == 20 and all(guids), f"guids not distinct and non-empty: {guids}")
    first = ctx.receive(s, 20, ack=False)
    expect_seqs(first, list(range(1, 21)), "before the kill")
    check_payloads(first)
    check(not any(m.redelivered for m in first), "first delivery flagged redelivered")
    for m in first[:10]:
        ctx.ack(s, m)
    # Redeliveries that came before the kill (a very slow run) must not count as coming again.
    ctx.drain(s, 50)

    broker.restart(crash=True)
    ev = r.call("wait_event", conn=c.name, kind="NatsReconnected", timeout_ms=30_000)
    check(ev["found"], f"no NatsReconnected event after the kill (events: {ev['events']})")
    if "ConnectionLost" in ev["events"]:  # the session was lost after all: it must be resumed
        ev = r.call("wait_event", conn=c.name, kind="Resumed", timeout_ms=30_000)
        check(ev["found"], f"ConnectionLost without Resumed (events: {ev['events']})")

    again = collect_acking(ctx, s, set(range(11, 21)), "the unacked 11..20 again")
    unacked_again = [m for m in again if 11 <= m.seq <= 20]
    check(
        all(m.redelivered for m in unacked_again),
        f"not flagged redelivered: {[m.seq for m in unacked_again if not m.redelivered]}",
    )
    check(all(1 <= m.seq <= 20 for m in again), f"unexpected sequences {seqs(again)}")

    publish_n(ctx, c, ch, 21, 3)
    after = collect_acking(ctx, s, {21, 22, 23}, "21..23 published after the resume")
    firsts: dict[int, Msg] = {}
    for m in after:
        firsts.setdefault(m.seq, m)
    check(
        not any(firsts[i].redelivered for i in (21, 22, 23)),
        "a first delivery of 21..23 flagged redelivered",
    )

    everything = ctx.subscribe(c, ch, manual=False, start={"kind": "first"})
    stored = ctx.receive(everything, 23)
    expect_seqs(stored, list(range(1, 24)), "stored after the restart")
    check_payloads(stored)
    ctx.quiet(everything)

    # Everything is acked: after what was still in flight, nothing may come back.
    for m in ctx.drain(s, 500):
        ctx.ack(s, m)
    ctx.quiet(s, KILL9_ACK_WAIT_MS + 600)


def check_payloads(msgs: list[Msg]) -> None:
    """Check that each message carries ``m<seq>`` (what :func:`publish_n` sends)."""
    bad = [m.seq for m in msgs if m.data != f"m{m.seq}".encode()]
    check(not bad, f"payloads differ at sequences {bad}")


def collect_acking(ctx: Ctx, s: Sub, wanted: set[int], what: str) -> list[Msg]:
    """Receive (and ack) until every sequence of ``wanted`` arrived; returns all received.

    At least once: anything may come more than once, so every message is acked as it comes.
    """
    got: list[Msg] = []
    end = time.monotonic() + KILL9_DEADLINE_S
    while not wanted <= {m.seq for m in got}:
        missing = sorted(wanted - {m.seq for m in got})
        check(time.monotonic() < end, f"{what}: {missing} missing after {KILL9_DEADLINE_S:.0f}s")
        for m in ctx.drain(s, 200):
            got.append(m)
            ctx.ack(s, m)
    check_payloads(got)
    return got

"""Per-language scenarios: where a new subscription starts."""

from __future__ import annotations

import time
from typing import Any

from harness.context import Ctx, channel, check, expect_seqs, publish_n


def start_case(
    ctx: Ctx,
    lang: str,
    sid: str,
    before: int,
    start: dict[str, Any],
    after: int,
    expected: list[int],
) -> None:
    """Publish ``before``, subscribe at ``start``, publish ``after``: receive ``expected``."""
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
    """start-new-only: only what is published after subscribing."""
    start_case(ctx, lang, "start-new-only", 3, {"kind": "new_only"}, 1, [4])


def sc_start_last_received(ctx: Ctx, lang: str) -> None:
    """start-last-received: the last stored message, then new ones."""
    start_case(ctx, lang, "start-last-received", 3, {"kind": "last_received"}, 1, [3, 4])


def sc_start_first(ctx: Ctx, lang: str) -> None:
    """start-first: everything stored, then new ones."""
    start_case(ctx, lang, "start-first", 3, {"kind": "first"}, 1, [1, 2, 3, 4])


def sc_start_sequence(ctx: Ctx, lang: str) -> None:
    """start-sequence: from a given sequence."""
    start_case(ctx, lang, "start-sequence", 5, {"kind": "sequence", "value": 3}, 0, [3, 4, 5])


def sc_start_time(ctx: Ctx, lang: str) -> None:
    """start-time: from the first message stored at or after a time."""
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("start-time", lang)
    publish_n(ctx, c, ch, 1, 3)
    time.sleep(1.0)  # time-based start: the two halves need store times 1 s apart
    publish_n(ctx, c, ch, 4, 2)
    all_msgs = ctx.receive(ctx.subscribe(c, ch, start={"kind": "first"}), 5)
    # Half-way: tolerates 0.5 s of client-to-server latency.
    t_ms = all_msgs[3].ts_ns // 1_000_000 - 500
    expected = [m.seq for m in all_msgs if m.ts_ns >= t_ms * 1_000_000]
    check(expected == [4, 5], f"store times not apart as published: {[m.ts_ns for m in all_msgs]}")
    s = ctx.subscribe(c, ch, start={"kind": "time_ms", "value": t_ms})
    expect_seqs(ctx.receive(s, 2), expected)
    ctx.quiet(s)


def sc_start_time_delta(ctx: Ctx, lang: str) -> None:
    """start-time-delta: from the first message not older than a duration."""
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

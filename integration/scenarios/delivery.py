"""Per-language scenarios: queue groups, acks, redelivery and flow control."""

from __future__ import annotations

from harness.context import (
    Ctx,
    channel,
    check,
    collect_group,
    exactly_once,
    expect_seqs,
    publish_n,
    seqs,
)


def sc_queue_group(ctx: Ctx, lang: str) -> None:
    """queue-group: two members get each message exactly once between them."""
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
    """durable-queue-group: the group's position survives its members closing."""
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
    """manual-ack-redelivery: unacked messages come back flagged redelivered, acked ones not."""
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
    in_order = sorted(again, key=lambda m: m.seq)
    check([m.data for m in in_order] == [b"m1", b"m3"], "payloads differ")
    for m in again:
        ctx.ack(s, m)
    ctx.quiet(s, 1600)  # longer than the ack wait: nothing acked comes back


def sc_max_in_flight(ctx: Ctx, lang: str) -> None:
    """max-in-flight: no more than max in flight unacked messages are delivered."""
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

"""Per-language scenarios: connect and close, publish acks, close versus unsubscribe, payloads."""

from __future__ import annotations

import random

from harness.common import b64
from harness.context import Ctx, channel, check, expect_seqs, publish_n

MAX_PAYLOAD = 1024 * 1024
"""The NATS default max payload the broker announces."""


def sc_connect_close(ctx: Ctx, lang: str) -> None:
    """connect-close: a closed client refuses to publish; a second close is harmless."""
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ctx.publish(c, channel("connect-close", lang), b"x")
    ctx.close(c)
    reply = r.call_raw("publish", conn=c.name, subject="connect-close.after", data=b64(b"y"))
    check(not reply["ok"], "publish after close succeeded")
    check(
        reply.get("code") == "CONNECTION_CLOSED", f"publish after close: code {reply.get('code')}"
    )
    reply = r.call_raw("close", conn=c.name, timeout=20)
    check(
        reply["ok"] or reply.get("code") in ("CONNECTION_CLOSED", "INVALID_STATE"),
        f"second close: {reply}",
    )


def sc_publish_ack(ctx: Ctx, lang: str) -> None:
    """publish-ack: ten acked publishes with distinct guids, stored in order."""
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


def sc_unsubscribe_vs_close(ctx: Ctx, lang: str) -> None:
    """unsubscribe-vs-close: closing keeps a durable's position, unsubscribing forgets it."""
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
    """Empty, every byte value, almost the max payload, and UTF-8 text with a NUL."""
    big = bytes(random.Random(7).getrandbits(8) for _ in range(MAX_PAYLOAD - 1024))
    return [
        b"",
        bytes(range(256)) + b"\x00\x00\x00",
        big,
        "héllo wörld ✓ 日本語 🚀 \u0000 end".encode(),
    ]


def sc_payload_fidelity(ctx: Ctx, lang: str) -> None:
    """payload-fidelity: payloads come back byte for byte."""
    r = ctx.runner(lang)
    c = ctx.connect(r)
    ch = channel("payload-fidelity", lang)
    payloads = fidelity_payloads()
    for p in payloads:
        ctx.publish(c, ch, p)
    s = ctx.subscribe(c, ch, start={"kind": "first"})
    msgs = ctx.receive(s, len(payloads))
    expect_seqs(msgs, [1, 2, 3, 4])
    for i, (m, p) in enumerate(zip(msgs, payloads, strict=True)):
        check(m.data == p, f"payload {i} differs (len {len(m.data)} vs {len(p)})")
    ctx.quiet(s)

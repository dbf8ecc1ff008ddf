"""Cross-language scenarios: publisher/consumer pairs, and one queue group of all four."""

from __future__ import annotations

import random

from harness.common import LANGS
from harness.context import Ctx, channel, check, collect_group, exactly_once, expect_seqs, publish_n


def pair_payloads() -> list[bytes]:
    """Empty, zero bytes, every byte value, UTF-8, 64 KiB random, invalid UTF-8."""
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
    """cross-pair: byte-exact payloads and gap-free sequences from one language to another."""
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
    for i, (m, p) in enumerate(zip(msgs, payloads, strict=True)):
        check(m.data == p, f"payload {i} differs (len {len(m.data)} vs {len(p)})")
    ctx.quiet(s)


def sc_queue_group_4lang(ctx: Ctx, leaver: str) -> None:
    """queue-group-4lang: one group, a member per language; ``leaver``'s member leaves unacked."""
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
        n = len(got[s.name])
        check(n == 10, f"{lang} member got {n}, expected 10 (max in flight)")
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
        all(m.redelivered for v in again.values() for m in v),
        "handed-over messages not flagged redelivered",
    )
    for s in rest:
        for m in again[s.name]:
            ctx.ack(s, m)

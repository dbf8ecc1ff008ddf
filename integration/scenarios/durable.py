"""Per-language scenarios: durable subscriptions across processes."""

from __future__ import annotations

from harness.common import LANGS, SHORT
from harness.context import Ctx, channel, check, expect_seqs, publish_n


def durable_resume(ctx: Ctx, lang_a: str, lang_b: str, sid: str) -> None:
    """A durable consumed by a process of ``lang_a`` resumes in a new process of ``lang_b``."""
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
    """durable-resume: a durable resumes in a new process of the same language."""
    durable_resume(ctx, lang, lang, "durable-resume")


def sc_durable_resume_cross(ctx: Ctx, lang: str) -> None:
    """durable-resume-cross: a durable resumes in a process of the next language."""
    # The next language of the run (of all four when only one is selected).
    order = ctx.langs if len(ctx.langs) > 1 else LANGS
    durable_resume(ctx, lang, order[(order.index(lang) + 1) % len(order)], "durable-resume-cross")

"""The restart scenario: every language at once around one broker restart."""

from __future__ import annotations

from harness.common import StepError
from harness.context import Conn, Ctx, Sub, channel, check
from harness.report import Result


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

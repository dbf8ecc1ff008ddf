#!/usr/bin/env python3
"""Cross-language scenario runner (orchestrator).

Starts stan-broker once, starts one long-lived runner process per language (Rust, Python, Node,
Kotlin) and plays every scenario of scenarios.toml through them: each runner is a thin command
interpreter over its package's public API (one JSON command per line on stdin, one JSON answer
per line on stdout, see README.md), and every scenario's logic lives in `scenarios/`, once.
Processes, the scenario context and the report are in `harness/`.

Prints a matrix (scenarios by languages, publishers by consumers) and ends with
`N passed, M failed` on the last line. A language that cannot play a scenario counts as failed.
Python 3.11+ standard library only.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import tomllib
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.broker import Broker
from harness.common import INTEGRATION_DIR, LANGS, ROOT, StepError
from harness.context import Ctx
from harness.report import Report
from harness.runner import Runner, runner_argv
from scenarios import MIXED, PAIRS, PER_LANGUAGE, RESTART

NOT_IMPLEMENTED = "no implementation in integration/scenarios"


def parse_args() -> argparse.Namespace:
    """The command line (see integration/run.sh)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--broker",
        default=os.environ.get("STAN_BROKER_BIN", str(ROOT / "target/debug/stan-broker")),
    )
    ap.add_argument(
        "--languages", default=",".join(LANGS), help="comma-separated subset of " + ",".join(LANGS)
    )
    ap.add_argument("--only", default="", help="comma-separated scenario ids")
    ap.add_argument("--log-dir", default="")
    return ap.parse_args()


def start_runners(log_dir: Path) -> dict[str, Runner]:
    """One long-lived runner per language; those that fail to start are reported, not fatal."""
    runners: dict[str, Runner] = {}
    for lang in LANGS:
        try:
            runners[lang] = Runner(lang, runner_argv(lang), log_dir, 0)
        except OSError as e:
            print(f"{lang} runner did not start: {e}", flush=True)
    for lang, r in runners.items():
        try:
            r.call("hello", timeout=120)
        except StepError as e:
            print(f"{lang} runner is not usable: {e}", flush=True)
    return runners


class Suite:
    """Plays the catalogue through a context and records into a report."""

    def __init__(self, ctx: Ctx, report: Report) -> None:
        """A suite over a started broker and runners (``ctx``)."""
        self.ctx = ctx
        self.report = report

    def run_one(self, sid: str, col: str, fn: Callable[[], None]) -> None:
        """Run one scenario column; any exception fails it. Cleans up after it."""
        try:
            fn()
            self.report.record(sid, col, True)
        except StepError as e:
            self.report.record(sid, col, False, str(e))
        except Exception as e:  # a bug in a scenario is a failed scenario
            self.report.record(sid, col, False, f"{type(e).__name__}: {e}")
            traceback.print_exc()
        finally:
            self.ctx.cleanup()

    def run_catalogue(self, catalogue: list[dict[str, Any]], only: set[str]) -> None:
        """Every selected scenario, broker restarts last."""
        langs = self.ctx.langs
        for sc in catalogue:
            sid, kind = sc["id"], sc["kind"]
            if only and sid not in only:
                continue
            if kind == "per-language":
                self.columns(sid, PER_LANGUAGE.get(sid), [(lang, (lang,)) for lang in langs])
            elif kind == "pairs":
                pairs = [(f"{p}->{c}", (p, c)) for p in langs for c in langs]
                self.columns(sid, PAIRS.get(sid), pairs)
            elif kind == "mixed":
                variants = [(f"leaver={leaver}", (leaver,)) for leaver in LANGS]
                self.columns(sid, MIXED.get(sid), variants)
            elif kind != "restart":
                for lang in langs:
                    self.report.record(sid, lang, False, f"unknown kind {kind!r}")
        # Broker restarts last: they disturb every connection.
        for sc in catalogue:
            if sc["kind"] == "restart" and (not only or sc["id"] in only):
                self.restart(sc["id"])

    def columns(
        self, sid: str, fn: Callable[..., None] | None, cols: Sequence[tuple[str, Sequence[str]]]
    ) -> None:
        """Run ``fn(ctx, *args)`` for each column ``(name, args)``; no ``fn`` fails them all."""
        for col, args in cols:
            if fn is None:
                self.report.record(sid, col, False, NOT_IMPLEMENTED)
            else:
                self.run_one(sid, col, functools.partial(fn, self.ctx, *args))

    def restart(self, sid: str) -> None:
        """A restart scenario: one run for all languages, one result each."""
        fn = RESTART.get(sid)
        try:
            if fn is None:
                for lang in self.ctx.langs:
                    self.report.record(sid, lang, False, NOT_IMPLEMENTED)
                return
            for lang, res in fn(self.ctx, self.ctx.langs).items():
                self.report.record(sid, lang, *res)
        except Exception as e:  # e.g. the broker did not come back: every language fails
            traceback.print_exc()
            for lang in self.ctx.langs:
                self.report.record(sid, lang, False, f"{type(e).__name__}: {e}")
        finally:
            self.ctx.cleanup()


def main() -> int:
    """Run the suite; the exit status is 0 only when every result passed."""
    args = parse_args()
    langs = [lang for lang in args.languages.split(",") if lang]
    only = {s for s in args.only.split(",") if s}
    catalogue: list[dict[str, Any]] = tomllib.loads(
        (INTEGRATION_DIR / "scenarios.toml").read_text()
    )["scenario"]
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="stan-integration."))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {log_dir}", flush=True)
    report = Report(langs)

    broker = Broker(args.broker, log_dir)
    broker.start()
    print(f"broker: {broker.url}", flush=True)
    runners = start_runners(log_dir)
    try:
        Suite(Ctx(broker, runners, log_dir, langs), report).run_catalogue(catalogue, only)
    finally:
        for r in runners.values():
            r.exit()
        broker.stop()
    return report.finish(catalogue, only, log_dir)


if __name__ == "__main__":
    sys.exit(main())

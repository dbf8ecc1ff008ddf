"""Results of a run: one line per result while running, then the matrix and the summary.

The last line printed is always ``N passed, M failed`` (``integration/run.sh`` and CI read it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

Result = tuple[bool, str]
"""Passed, and the reason when not."""


def cell(res: Result | None) -> str:
    """A matrix cell: ``ok``, ``FAIL`` or ``-`` (not run)."""
    return "-" if res is None else ("ok" if res[0] else "FAIL")


class Report:
    """Collects results (keyed by scenario ID and column) and prints them."""

    def __init__(self, langs: list[str]) -> None:
        """An empty report over the languages ``langs``."""
        self.langs = langs
        self.results: dict[tuple[str, str], Result] = {}
        self.started = time.monotonic()

    def record(self, sid: str, col: str, ok: bool, detail: str = "") -> None:
        """Record and print one result (``col`` is a language, a pair or a variant)."""
        self.results[(sid, col)] = (ok, detail)
        mark = "ok" if ok else f"FAIL: {detail}"
        print(f"  {sid:<24} {col:<16} {mark}", flush=True)

    def finish(self, catalogue: list[dict[str, Any]], only: set[str], log_dir: Path) -> int:
        """Print the matrices, the failures and the summary line; returns the exit status."""
        langs, results = self.langs, self.results
        print()
        per_lang_ids = [
            sc["id"]
            for sc in catalogue
            if sc["kind"] in ("per-language", "restart") and (not only or sc["id"] in only)
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
            variants = ", ".join(f"{col} {'ok' if v[0] else 'FAIL'}" for col, v in mixed)
            print(f"queue-group-4lang: {variants}")
        failures = [(k, v[1]) for k, v in results.items() if not v[0]]
        if failures:
            print("\nfailures:")
            for (sid, col), detail in failures:
                print(f"  {sid} [{col}]: {detail}")
        print(f"runtime: {time.monotonic() - self.started:.0f}s; logs: {log_dir}")
        passed = sum(1 for v in results.values() if v[0])
        print(f"{passed} passed, {len(results) - passed} failed")
        return 0 if passed == len(results) and results else 1

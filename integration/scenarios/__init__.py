"""The implementations of the catalogue (``scenarios.toml``), by kind and scenario ID.

A catalogue ID missing from the table of its kind counts as failed in every column.

- ``per-language`` (:data:`PER_LANGUAGE`): ``fn(ctx, lang)``, the language plays every role;
- ``pairs`` (:data:`PAIRS`): ``fn(ctx, publisher_lang, consumer_lang)`` for every ordered pair;
- ``mixed`` (:data:`MIXED`): ``fn(ctx, variant)`` for every language as the variant;
- ``restart`` (:data:`RESTART`): ``fn(ctx, langs)`` once for all languages, returning a result
  per language; run last, as broker restarts disturb every connection.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.context import Ctx
from harness.report import Result

from .basics import sc_connect_close, sc_payload_fidelity, sc_publish_ack, sc_unsubscribe_vs_close
from .cross import sc_cross_pair, sc_queue_group_4lang
from .delivery import (
    sc_durable_queue_group,
    sc_manual_ack_redelivery,
    sc_max_in_flight,
    sc_queue_group,
)
from .durable import sc_durable_resume, sc_durable_resume_cross
from .restart import sc_at_least_once_kill9, sc_auto_resume_restart
from .start import (
    sc_start_first,
    sc_start_last_received,
    sc_start_new_only,
    sc_start_sequence,
    sc_start_time,
    sc_start_time_delta,
)

PER_LANGUAGE: dict[str, Callable[[Ctx, str], None]] = {
    "connect-close": sc_connect_close,
    "publish-ack": sc_publish_ack,
    "start-new-only": sc_start_new_only,
    "start-last-received": sc_start_last_received,
    "start-first": sc_start_first,
    "start-sequence": sc_start_sequence,
    "start-time": sc_start_time,
    "start-time-delta": sc_start_time_delta,
    "durable-resume": sc_durable_resume,
    "durable-resume-cross": sc_durable_resume_cross,
    "queue-group": sc_queue_group,
    "durable-queue-group": sc_durable_queue_group,
    "manual-ack-redelivery": sc_manual_ack_redelivery,
    "max-in-flight": sc_max_in_flight,
    "unsubscribe-vs-close": sc_unsubscribe_vs_close,
    "payload-fidelity": sc_payload_fidelity,
    "at-least-once-kill9": sc_at_least_once_kill9,
}

PAIRS: dict[str, Callable[[Ctx, str, str], None]] = {
    "cross-pair": sc_cross_pair,
}

MIXED: dict[str, Callable[[Ctx, str], None]] = {
    "queue-group-4lang": sc_queue_group_4lang,
}

RESTART: dict[str, Callable[[Ctx, list[str]], dict[str, Result]]] = {
    "auto-resume-restart": sc_auto_resume_restart,
}

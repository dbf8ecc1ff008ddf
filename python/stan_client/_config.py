"""Option records handed to the native module (mirrored by ``bindings/python/src/options.rs``).

Internal: build them with :func:`connect_config` and :func:`subscribe_config`, which turn the
arguments of the public functions into records (the public signatures list each option once;
the records' fields carry the same names). ``None`` always means "the client core's default".
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from .errors import InvalidArgumentError
from .options import StartAt, StartPosition, TlsOptions


@dataclass(frozen=True)
class ConnectConfig:
    """Everything ``connect`` needs (see ``stan_client.connect`` for the meaning)."""

    cluster_id: str
    client_id: str
    nats_urls: list[str]
    user: str | None
    password: str | None
    token: str | None
    tls: TlsOptions | None
    connect_wait: timedelta | None
    pub_ack_wait: timedelta | None
    max_pub_acks_in_flight: int | None
    ping_interval: timedelta | None
    ping_max_out: int | None
    discover_prefix: str | None
    auto_resume: bool | None
    # Test hook: read by the native module only when set (``test-hooks`` builds honour it,
    # release builds reject it).
    ping_interval_millis_for_tests: int | None


@dataclass(frozen=True)
class SubscribeConfig:
    """Everything ``subscribe`` needs (see ``Client.subscribe`` for the meaning)."""

    queue_group: str | None
    durable_name: str | None
    start_at: StartAt | None
    max_in_flight: int | None
    ack_wait: timedelta | None
    manual_acks: bool


def connect_config(arguments: Mapping[str, Any]) -> ConnectConfig:
    """Build a :class:`ConnectConfig` from the arguments of a public ``connect``.

    ``arguments`` is that function's ``locals()`` taken before anything else: its options carry
    the names of the record's fields, so the record is filled by name (see :func:`_record`).
    """
    url, nats_urls = arguments["url"], arguments["nats_urls"]
    if isinstance(nats_urls, str):
        raise InvalidArgumentError("nats_urls must be a sequence of URLs, not a string")
    urls = ([url] if url is not None else []) + list(nats_urls or ())
    return _record(ConnectConfig, arguments, {"url"}, nats_urls=urls)


def subscribe_config(arguments: Mapping[str, Any]) -> SubscribeConfig:
    """Build a :class:`SubscribeConfig` from the arguments of a public ``subscribe``.

    ``arguments`` is that method's ``locals()`` taken before anything else (as for
    :func:`connect_config`).
    """
    start_at: StartAt | None = arguments["start_at"]
    if arguments["deliver_all_available"]:
        if start_at not in (None, StartPosition.FIRST):
            raise InvalidArgumentError("deliver_all_available=True conflicts with start_at")
        start_at = StartPosition.FIRST
    if isinstance(start_at, datetime) and start_at.tzinfo is None:
        # A naive datetime is local time, as everywhere in the standard library.
        start_at = start_at.astimezone(timezone.utc)
    # Besides the fields: the receiver, the channel, the option folded into ``start_at``, and
    # the callbacks of the asyncio API.
    used = {"self", "subject", "deliver_all_available", "cb", "error_cb"}
    return _record(SubscribeConfig, arguments, used, start_at=start_at)


_Record = TypeVar("_Record", ConnectConfig, SubscribeConfig)


def _record(
    cls: type[_Record], arguments: Mapping[str, Any], used: Set[str], **computed: Any
) -> _Record:
    """Fill each field of ``cls`` from ``computed``, else from ``arguments``.

    Every argument must be a field or in ``used`` (read by the caller), so that an option of a
    public signature cannot be dropped on the way: a mismatch raises ``TypeError`` at once.
    """
    names = {field.name for field in fields(cls)}
    stray = arguments.keys() - names - used
    if stray:
        raise TypeError(f"{cls.__name__} has no field for {sorted(stray)}")
    values = {**arguments, **computed}
    return cls(**{name: values[name] for name in names})

"""Option records handed to the native module (mirrored by ``bindings/python/src/options.rs``).

Internal: build them with :func:`connect_config` and :func:`subscribe_config`, which turn the
public keyword arguments into records. ``None`` always means "the client core's default".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

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


def connect_config(
    cluster_id: str,
    client_id: str,
    *,
    url: str | None,
    nats_urls: Sequence[str] | None,
    user: str | None,
    password: str | None,
    token: str | None,
    tls: TlsOptions | None,
    connect_wait: timedelta | None,
    pub_ack_wait: timedelta | None,
    max_pub_acks_in_flight: int | None,
    ping_interval: timedelta | None,
    ping_max_out: int | None,
    discover_prefix: str | None,
    auto_resume: bool | None,
    ping_interval_millis_for_tests: int | None,
) -> ConnectConfig:
    """Build a :class:`ConnectConfig` from the keyword arguments of ``connect``."""
    if isinstance(nats_urls, str):
        raise InvalidArgumentError("nats_urls must be a sequence of URLs, not a string")
    urls = ([url] if url is not None else []) + list(nats_urls or ())
    return ConnectConfig(
        cluster_id=cluster_id,
        client_id=client_id,
        nats_urls=urls,
        user=user,
        password=password,
        token=token,
        tls=tls,
        connect_wait=connect_wait,
        pub_ack_wait=pub_ack_wait,
        max_pub_acks_in_flight=max_pub_acks_in_flight,
        ping_interval=ping_interval,
        ping_max_out=ping_max_out,
        discover_prefix=discover_prefix,
        auto_resume=auto_resume,
        ping_interval_millis_for_tests=ping_interval_millis_for_tests,
    )


def subscribe_config(
    *,
    queue_group: str | None,
    durable_name: str | None,
    start_at: StartAt | None,
    deliver_all_available: bool,
    max_in_flight: int | None,
    ack_wait: timedelta | None,
    manual_acks: bool,
) -> SubscribeConfig:
    """Build a :class:`SubscribeConfig` from the keyword arguments of ``subscribe``."""
    if deliver_all_available:
        if start_at not in (None, StartPosition.FIRST):
            raise InvalidArgumentError("deliver_all_available=True conflicts with start_at")
        start_at = StartPosition.FIRST
    if isinstance(start_at, datetime) and start_at.tzinfo is None:
        # A naive datetime is local time, as everywhere in the standard library.
        start_at = start_at.astimezone(timezone.utc)
    return SubscribeConfig(
        queue_group=queue_group,
        durable_name=durable_name,
        start_at=start_at,
        max_in_flight=max_in_flight,
        ack_wait=ack_wait,
        manual_acks=manual_acks,
    )

"""Connection events, from :meth:`stan_client.Client.events`.

Example::

    async for event in sc.events():
        match event:
            case ConnectionLost(reason=reason, resuming=True):
                log.warning("session lost (%s), resuming", reason)
            case Closed():
                break
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeAlias

from . import _native

__all__ = [
    "Closed",
    "ConnectionLost",
    "Event",
    "Events",
    "LostReason",
    "NatsDisconnected",
    "NatsReconnected",
    "ResumeFailed",
    "Resumed",
    "UnknownEvent",
]


class LostReason(str, enum.Enum):
    """Why the streaming session was lost."""

    PINGS_EXHAUSTED = "pings_exhausted"
    """Too many pings went unanswered."""
    REPLACED = "replaced"
    """Another client registered with the same ID, or the server dropped this client."""
    SERVER_CLOSED = "server_closed"
    """The server ended the session (for example it restarted without this client)."""
    UNKNOWN = "unknown"
    """A reason this version of the package does not know."""


@dataclass(frozen=True)
class NatsDisconnected:
    """The NATS connection dropped; it reconnects by itself and the session normally survives."""


@dataclass(frozen=True)
class NatsReconnected:
    """The NATS connection is back."""


@dataclass(frozen=True)
class ConnectionLost:
    """The streaming session is gone; pending publishes failed with ``ConnectionLostError``."""

    reason: LostReason
    """Why."""
    message: str
    """The error text."""
    resuming: bool
    """True when auto-resume is trying to re-establish the session."""


@dataclass(frozen=True)
class Resumed:
    """Auto-resume registered again and re-created the subscriptions it could."""

    failed_subscriptions: int
    """Subscriptions that could not be re-created (their iterators raised)."""


@dataclass(frozen=True)
class ResumeFailed:
    """Auto-resume gave up."""

    message: str
    """The reason."""


@dataclass(frozen=True)
class Closed:
    """The client is closed (the last event)."""


@dataclass(frozen=True)
class UnknownEvent:
    """An event this version of the package does not know."""

    kind: str
    """The event's kind name."""


Event: TypeAlias = (
    "NatsDisconnected | NatsReconnected | ConnectionLost | Resumed | ResumeFailed | Closed"
    " | UnknownEvent"
)
"""Any connection event."""


def _convert(ev: _native.Event) -> Event:
    kind = ev.kind
    if kind == "nats_disconnected":
        return NatsDisconnected()
    if kind == "nats_reconnected":
        return NatsReconnected()
    if kind == "connection_lost":
        try:
            reason = LostReason(ev.reason)
        except ValueError:
            reason = LostReason.UNKNOWN
        return ConnectionLost(reason=reason, message=ev.message or "", resuming=ev.resuming)
    if kind == "resumed":
        return Resumed(failed_subscriptions=ev.failed_subscriptions)
    if kind == "resume_failed":
        return ResumeFailed(message=ev.message or "")
    if kind == "closed":
        return Closed()
    return UnknownEvent(kind=kind)


class Events(AsyncIterator[Event]):
    """The events of a client from the moment this iterator was created.

    The iteration ends after :class:`Closed`. Each iterator gets every event; one that falls
    far behind skips the oldest.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Events) -> None:
        """Wrap a native event stream (use :meth:`Client.events`)."""
        self._native = native

    def __aiter__(self) -> Events:
        """Return self."""
        return self

    async def __anext__(self) -> Event:
        """Wait for the next event."""
        return _convert(await self._native.__anext__())

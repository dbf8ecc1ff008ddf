"""Option types shared by the asyncio API and the synchronous facade."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from os import PathLike
from typing import TypeAlias

__all__ = ["StartAt", "StartPosition", "TlsOptions"]


class StartPosition(str, enum.Enum):
    """Where a new subscription starts (ignored when a durable resumes).

    Besides these members, ``start_at=`` also takes an ``int`` (start at that sequence), a
    ``datetime`` (the first message stored at or after that time) or a ``timedelta`` (the
    first message not older than that).
    """

    NEW_ONLY = "new_only"
    """Only messages published after the subscription (the default)."""
    LAST_RECEIVED = "last_received"
    """Start with the last stored message."""
    FIRST = "first"
    """Everything the channel still stores ("deliver all available")."""


StartAt: TypeAlias = "StartPosition | int | datetime | timedelta"
"""What ``start_at=`` accepts."""


@dataclass(frozen=True)
class TlsOptions:
    """TLS settings for the NATS connection.

    Example::

        tls = TlsOptions(require_tls=True, root_certificates=["ca.pem"],
                         client_certificate=("client.pem", "client.key"))
    """

    require_tls: bool = False
    """Require TLS even when the server does not ask for it."""
    root_certificates: Sequence[str | PathLike[str]] = field(default_factory=tuple)
    """PEM files with extra root certificates to trust."""
    client_certificate: tuple[str | PathLike[str], str | PathLike[str]] | None = None
    """PEM client certificate and key files, for servers that verify clients."""

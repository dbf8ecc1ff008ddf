"""A small blocking API for scripts (no event loop needed).

Every call blocks the calling thread with the GIL released, so other Python threads keep
running; Ctrl-C interrupts a wait. Use the asyncio API (:mod:`stan_client`) for anything
long-running: this facade has no callbacks and no event stream.

Example::

    from datetime import timedelta
    from stan_client import StartPosition, sync

    with sync.connect("test-cluster", "script", url="nats://127.0.0.1:4222") as sc:
        sc.publish("orders", b"hello")
        with sc.subscribe("orders", start_at=StartPosition.FIRST) as sub:
            msg = sub.next(timeout=timedelta(seconds=5))
            print(msg.sequence, msg.data)
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from types import TracebackType

from . import _config, _native
from .client import BATCH_MAX
from .errors import ConnectionClosedError
from .options import StartAt, TlsOptions

__all__ = ["Client", "Message", "Subscription", "connect"]


def connect(
    cluster_id: str,
    client_id: str,
    *,
    url: str | None = None,
    nats_urls: Sequence[str] | None = None,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    tls: TlsOptions | None = None,
    connect_wait: timedelta | None = None,
    pub_ack_wait: timedelta | None = None,
    max_pub_acks_in_flight: int | None = None,
    ping_interval: timedelta | None = None,
    ping_max_out: int | None = None,
    discover_prefix: str | None = None,
    auto_resume: bool | None = None,
    ping_interval_millis_for_tests: int | None = None,
) -> Client:
    """Connect, blocking; the options are those of :func:`stan_client.connect`."""
    config = _config.connect_config(locals())
    return Client(_native.connect_blocking(config))


class Message:
    """A delivered message; :meth:`ack` blocks."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Message) -> None:
        """Wrap a native message."""
        self._native = native

    @property
    def sequence(self) -> int:
        """The channel's sequence number of this message."""
        return self._native.sequence

    @property
    def subject(self) -> str:
        """The channel."""
        return self._native.subject

    @property
    def data(self) -> bytes:
        """The payload."""
        return self._native.data

    @property
    def timestamp(self) -> datetime:
        """When the server stored the message (UTC)."""
        return self._native.timestamp

    @property
    def timestamp_nanos(self) -> int:
        """When the server stored the message, in nanoseconds since the Unix epoch."""
        return self._native.timestamp_nanos

    @property
    def redelivered(self) -> bool:
        """True when this is not the first delivery."""
        return self._native.redelivered

    @property
    def redelivery_count(self) -> int:
        """How many times the server redelivered the message."""
        return self._native.redelivery_count

    def ack(self) -> None:
        """Acknowledge the message (manual-ack subscriptions)."""
        self._native.ack_blocking()

    def __repr__(self) -> str:
        """Describe the message."""
        return repr(self._native)


class Subscription:
    """A subscription; iterate it (blocking) or call :meth:`next`.

    Messages come from the client core in batches and are handed out one by one; the
    acknowledgement rules are those of :class:`stan_client.Subscription`. After the
    subscription or its client is closed, messages received but not handed out yet are not
    handed out.
    """

    __slots__ = ("__weakref__", "_auto", "_batch", "_msgs", "_native", "_pos")

    def __init__(self, native: _native.Subscription) -> None:
        """Wrap a native subscription."""
        self._native = native
        self._auto = not native.manual_acks
        self._batch: _native.Batch | None = None
        self._msgs: list[_native.Message] = []
        self._pos = 0

    @property
    def subject(self) -> str:
        """The channel."""
        return self._native.subject

    def next(self, timeout: timedelta | None = None) -> Message | None:
        """Wait for the next message; ``None`` when the subscription ended.

        Raises:
            TimeoutError: ``timeout`` passed without a message (the built-in exception).
        """
        pos = self._pos
        if pos < len(self._msgs):
            self._pos = pos + 1
            if self._auto and self._batch is not None:
                self._batch.mark_taken(pos + 1)  # acknowledges the message taken before
            return Message(self._msgs[pos])
        self._release_batch()
        batch = self._native.next_batch_blocking(BATCH_MAX, timeout)
        if batch is None:
            return None
        self._batch, self._msgs, self._pos = batch, batch.messages(), 1
        if self._auto:
            batch.mark_taken(1)
        return Message(self._msgs[0])

    def _release_batch(self) -> None:
        """Report what was taken from the current batch; the rest stays unacknowledged."""
        if self._batch is not None:
            self._batch.mark_taken(self._pos)
            self._batch, self._msgs, self._pos = None, [], 0

    def ack_many(self, msgs: Iterable[Message]) -> None:
        """Acknowledge many messages (manual-ack subscriptions) in one call."""
        _native.ack_many([m._native for m in msgs])

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until the subscription ends."""
        while (msg := self.next()) is not None:
            yield msg

    def close(self) -> None:
        """Close the subscription (the server keeps a durable)."""
        self._release_batch()
        self._native.close_blocking()

    def unsubscribe(self) -> None:
        """Remove the subscription on the server (a durable is deleted)."""
        self._release_batch()
        self._native.unsubscribe_blocking()

    def __enter__(self) -> Subscription:
        """Return self."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the subscription unless it was already closed or unsubscribed."""
        if self._native.closing:
            self._release_batch()
            return
        # A closed client already took the subscription with it.
        with contextlib.suppress(ConnectionClosedError):
            self.close()


class Client:
    """A blocking client, from :func:`connect`; use it with ``with``.

    A client garbage collected without :meth:`close` behaves as
    :class:`stan_client.Client` does: once no subscription or message of it is left, it
    closes itself in the background.
    """

    __slots__ = ("_native", "_subs")

    def __init__(self, native: _native.Client) -> None:
        """Wrap a native client."""
        self._native = native
        # Open subscriptions: closing the client stops handing out their buffered messages.
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()

    @property
    def client_id(self) -> str:
        """The client ID."""
        return self._native.client_id

    @property
    def is_closed(self) -> bool:
        """True once the client is closed for good."""
        return self._native.is_closed

    def publish(self, subject: str, data: bytes) -> str:
        """Publish and wait for the ack; returns the guid."""
        return self._native.publish_blocking(subject, data)

    def subscribe(
        self,
        subject: str,
        *,
        queue_group: str | None = None,
        durable_name: str | None = None,
        start_at: StartAt | None = None,
        deliver_all_available: bool = False,
        max_in_flight: int | None = None,
        ack_wait: timedelta | None = None,
        manual_acks: bool = False,
    ) -> Subscription:
        """Subscribe; the options are those of :meth:`stan_client.Client.subscribe`."""
        config = _config.subscribe_config(locals())
        sub = Subscription(self._native.subscribe_blocking(subject, config))
        self._subs.add(sub)
        return sub

    def close(self) -> None:
        """Close the connection, as :meth:`stan_client.Client.close` does."""
        subs = list(self._subs)
        self._subs.clear()
        for sub in subs:
            sub._release_batch()
        self._native.close_blocking()

    def __enter__(self) -> Client:
        """Return self."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        self.close()

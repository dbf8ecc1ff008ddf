"""The asyncio API: :func:`connect`, :class:`Client`, :class:`Subscription`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TypeAlias

from . import _config, _native
from .errors import ConnectionClosedError, InvalidStateError
from .events import Events
from .options import StartAt, TlsOptions

__all__ = ["Client", "ErrorCallback", "Message", "MessageCallback", "Subscription", "connect"]

_log = logging.getLogger("stan_client")

Message: TypeAlias = _native.Message
"""A delivered message (see :class:`stan_client._native.Message`)."""

MessageCallback: TypeAlias = Callable[[Message], "Awaitable[None] | None"]
"""A ``cb=`` handler: a plain function or a coroutine function taking the message."""

ErrorCallback: TypeAlias = Callable[[BaseException], "Awaitable[None] | None"]
"""An ``error_cb=`` handler: gets exceptions of ``cb`` and the error that ended the stream."""


async def connect(
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
    """Connect to the streaming server ``cluster_id`` as ``client_id``.

    Every option left at ``None`` takes the client core's default.

    Args:
        cluster_id: Cluster ID of the streaming server.
        client_id: This client's ID (letters, digits, ``-`` and ``_``).
        url: NATS server URL (default ``nats://127.0.0.1:4222``).
        nats_urls: More NATS server URLs (a cluster).
        user: NATS user name (with ``password``).
        password: NATS password.
        token: NATS token.
        tls: TLS settings.
        connect_wait: How long to wait for connect, subscribe and close replies (2 s).
        pub_ack_wait: How long to wait for a publish ack (30 s).
        max_pub_acks_in_flight: Publishes awaiting acks before publishing waits (16384).
        ping_interval: Interval between pings to the server (5 s; whole seconds, >= 1 s).
        ping_max_out: Unanswered pings before the session counts as lost (88; >= 2).
        discover_prefix: Discover prefix of the server (``_STAN.discover``).
        auto_resume: Re-register and re-create subscriptions when the session is lost (on).
        ping_interval_millis_for_tests: Test only: ping every this many milliseconds. Works
            only in builds with the ``test-hooks`` cargo feature (the package's test build);
            others raise ``InvalidArgumentError`` when it is set.

    Returns:
        The connected client; use it with ``async with``.

    Raises:
        ConnectTimeoutError: No streaming server with that cluster ID answered.
        ServerRejectedError: The server refused (e.g. the client ID is already registered).
        InvalidArgumentError: An option is invalid.
        TransportError: The NATS connection failed.

    Example::

        async with await stan_client.connect("test-cluster", "me") as sc:
            await sc.publish("orders", b"hello")
    """
    config = _config.connect_config(locals())
    return Client(await _native.connect(config))


class Client:
    """A connection to a streaming server, from :func:`connect`.

    Use it as an async context manager (``async with``) or call :meth:`close`.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Client) -> None:
        """Wrap a native client (use :func:`connect`)."""
        self._native = native

    @property
    def client_id(self) -> str:
        """The client ID."""
        return self._native.client_id

    @property
    def cluster_id(self) -> str:
        """The cluster ID."""
        return self._native.cluster_id

    @property
    def is_closed(self) -> bool:
        """True once the client is closed for good."""
        return self._native.is_closed

    async def publish(self, subject: str, data: bytes) -> str:
        """Publish ``data`` on channel ``subject`` and wait until the server stored it.

        Returns:
            The publish guid.

        Raises:
            PublishAckTimeoutError: No ack in time (the message may still be stored).
            ServerRejectedError: The server refused the message.
            ConnectionLostError: The session was lost meanwhile (outcome unknown).
            ConnectionClosedError: The client is closed.
            InvalidArgumentError: Bad channel name, or payload too large.
        """
        return await self._native.publish(subject, data)

    def publish_async(self, subject: str, data: bytes) -> asyncio.Future[str]:
        """Publish without waiting: the publish starts now, the ack comes later.

        Must be called with a running event loop. Publishes start in call order. Await the
        returned future for the guid (or the error, as for :meth:`publish`); dropping it does
        not cancel the publish.

        Example::

            acks = [sc.publish_async("metrics", b"%d" % i) for i in range(1000)]
            guids = await asyncio.gather(*acks)
        """
        return self._native.publish(subject, data)

    async def subscribe(
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
        cb: MessageCallback | None = None,
        error_cb: ErrorCallback | None = None,
    ) -> Subscription:
        """Subscribe to channel ``subject``.

        Iterate the subscription with ``async for``, or pass ``cb=`` to have each message
        handed to a function (a coroutine function is awaited, one message at a time).

        Args:
            subject: The channel.
            queue_group: Join this queue group (each message goes to one member).
            durable_name: Make the subscription durable under this name.
            start_at: Where a new subscription starts: a :class:`StartPosition`, a sequence
                (``int``), a ``datetime`` or a ``timedelta`` (default: new messages only).
            deliver_all_available: Same as ``start_at=StartPosition.FIRST``.
            max_in_flight: Unacknowledged messages the server sends before waiting (1024).
            ack_wait: How long the server waits for an ack before redelivering (30 s).
            manual_acks: Acknowledge each message with ``await msg.ack()``. Otherwise a message
                is acknowledged when the next one is requested.
            cb: Message handler (callback style).
            error_cb: Gets exceptions raised by ``cb`` and the error that ends the
                subscription (default: logged on the ``stan_client`` logger).

        Raises:
            ServerRejectedError: e.g. ``stan: duplicate durable registration``.
            InvalidArgumentError: An option is invalid.
            RequestTimeoutError: The server did not answer in time.
        """
        config = _config.subscribe_config(locals())
        sub = Subscription(await self._native.subscribe(subject, config))
        if cb is not None:
            sub._start_callback(cb, error_cb)
        return sub

    async def ack(self, msg: Message) -> None:
        """Acknowledge ``msg`` (same as ``await msg.ack()``)."""
        await msg.ack()

    def events(self) -> Events:
        """Connection events from now on (an async iterator; ends after ``Closed``)."""
        return Events(self._native.events())

    async def close(self) -> None:
        """Close the connection (durable subscriptions are kept). Idempotent."""
        await self._native.close()

    async def __aenter__(self) -> Client:
        """Return self."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.close()

    def __repr__(self) -> str:
        """Describe the client."""
        return repr(self._native)


class Subscription(AsyncIterator[Message]):
    """A subscription, from :meth:`Client.subscribe`.

    Iterate it with ``async for`` (the iteration ends when the subscription is closed, and
    raises when it is lost for good). Use it as an async context manager to close it at the
    end; a durable subscription is kept by :meth:`close` and deleted by :meth:`unsubscribe`.
    """

    __slots__ = ("_native", "_task")

    def __init__(self, native: _native.Subscription) -> None:
        """Wrap a native subscription (use :meth:`Client.subscribe`)."""
        self._native = native
        self._task: asyncio.Task[None] | None = None

    @property
    def subject(self) -> str:
        """The channel."""
        return self._native.subject

    @property
    def manual_acks(self) -> bool:
        """True when messages must be acknowledged with ``await msg.ack()``."""
        return self._native.manual_acks

    def __aiter__(self) -> Subscription:
        """Return self (not allowed with ``cb=``, which consumes the messages itself)."""
        if self._task is not None:
            raise InvalidStateError("this subscription delivers to its cb; do not iterate it")
        return self

    async def __anext__(self) -> Message:
        """Wait for the next message."""
        return await self._native.__anext__()

    async def close(self) -> None:
        """Close the subscription; the server keeps a durable subscription.

        Raises:
            InvalidStateError: Already closed or unsubscribed.
        """
        await self._native.close()
        await self._join_callback()

    async def unsubscribe(self) -> None:
        """Remove the subscription on the server; a durable subscription is deleted.

        Raises:
            InvalidStateError: Already closed or unsubscribed.
        """
        await self._native.unsubscribe()
        await self._join_callback()

    async def __aenter__(self) -> Subscription:
        """Return self."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the subscription unless it was already closed or unsubscribed."""
        if self._native.closing:
            await self._join_callback()
            return
        # A closed client already took the subscription with it.
        with contextlib.suppress(ConnectionClosedError):
            await self.close()

    def _start_callback(self, cb: MessageCallback, error_cb: ErrorCallback | None) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._deliver(cb, error_cb), name=f"stan_client cb {self.subject}"
        )

    async def _deliver(self, cb: MessageCallback, error_cb: ErrorCallback | None) -> None:
        async def report(err: BaseException) -> None:
            if error_cb is None:
                _log.error("stan_client subscription %r", self.subject, exc_info=err)
                return
            try:
                result = error_cb(err)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("stan_client error_cb raised")

        try:
            while True:
                try:
                    msg = await self._native.__anext__()
                except StopAsyncIteration:
                    return
                try:
                    result = cb(msg)
                    if inspect.isawaitable(result):
                        await result
                except Exception as err:
                    await report(err)
        except Exception as err:
            await report(err)

    async def _join_callback(self) -> None:
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await task

    def __repr__(self) -> str:
        """Describe the subscription."""
        return repr(self._native)

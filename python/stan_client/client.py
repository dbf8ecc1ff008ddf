"""The asyncio API: :func:`connect`, :class:`Client`, :class:`Subscription`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TypeAlias

from . import _config, _native
from .errors import ConnectionClosedError, InvalidStateError
from .events import Events
from .options import StartAt, TlsOptions

__all__ = [
    "Client",
    "ErrorCallback",
    "Message",
    "MessageCallback",
    "PublishFuture",
    "Subscription",
    "connect",
]

_log = logging.getLogger("stan_client")
PublishFuture: TypeAlias = _native.PublishFuture
"""The future of :meth:`Client.publish_async` (see :class:`stan_client._native.PublishFuture`)."""
_thread_ident = threading.get_ident
_pending_future = _native.pending_publish_future

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

    The connection stays open while the client or any of its subscriptions or messages is
    referenced. A client that is garbage collected without :meth:`close` (and with no
    subscription or message left) closes itself in the background, as :meth:`close` does:
    publishes still awaiting their acks fail with :class:`ConnectionClosedError`. Await them,
    or close the client, when their outcome matters.
    """

    __slots__ = (
        "_native",
        "_pending_data",
        "_pending_futures",
        "_pending_loop",
        "_pending_subjects",
        "_pending_thread",
        "_subs",
    )

    def __init__(self, native: _native.Client) -> None:
        """Wrap a native client (use :func:`connect`)."""
        self._native = native
        # Open subscriptions: closing the client stops handing out their buffered messages.
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()
        # publish_async calls of the current loop turn, sent together by _flush, and the loop
        # and thread they were made on.
        self._pending_subjects: list[str] = []
        self._pending_data: list[bytes] = []
        self._pending_futures: list[PublishFuture] = []
        self._pending_loop: asyncio.AbstractEventLoop | None = None
        self._pending_thread = 0

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
        if self._pending_futures:
            self._flush()
        return await self._native.publish(subject, data)

    def publish_async(self, subject: str, data: bytes) -> PublishFuture:
        """Publish without waiting for the ack.

        Must be called with a running event loop. The publish is queued now and sent when
        the loop next runs: every ``publish_async`` of the same loop turn goes to the client
        core in one call, and acks arriving together resolve with one loop wake-up.
        Publishes reach the server in call order (also mixed with :meth:`publish`). Await
        the returned future for the guid (or the error, as for :meth:`publish`); dropping or
        cancelling it does not cancel the publish. The future is a :class:`PublishFuture`:
        it behaves as an :class:`asyncio.Future` (``await``, ``asyncio.gather``,
        ``asyncio.wait_for``, ``asyncio.wait``, ``add_done_callback``, ``result``,
        ``cancel``, ...) and costs the garbage collector nothing.

        Example::

            acks = [sc.publish_async("metrics", b"%d" % i) for i in range(1000)]
            guids = await asyncio.gather(*acks)
        """
        futures = self._pending_futures
        loop = self._pending_loop
        # While calls of this loop turn wait for their flush, the loop running on the thread
        # that made them is still theirs (a thread runs one loop at a time), so it is not
        # looked up again: asyncio.get_running_loop costs a system call on Python 3.11.
        if not (
            futures
            and self._pending_thread == _thread_ident()
            and loop is not None
            and loop.is_running()
        ):
            loop = asyncio.get_running_loop()
            if self._pending_loop is not loop:
                if futures:
                    self._flush()
                self._pending_loop = loop
            self._pending_thread = _thread_ident()
            futures = self._pending_futures
        future = _pending_future(loop)
        if not futures:
            loop.call_soon(self._flush)
        self._pending_subjects.append(subject)
        self._pending_data.append(data)
        futures.append(future)
        return future

    def _flush(self) -> None:
        """Send the queued ``publish_async`` calls in one native call."""
        futures = self._pending_futures
        if not futures:
            return
        subjects, payloads = self._pending_subjects, self._pending_data
        self._pending_subjects, self._pending_data, self._pending_futures = [], [], []
        try:
            self._native.publish_many(subjects, payloads, futures)
        except BaseException as err:
            for f in futures:
                if not f.done():
                    f.set_exception(err)

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
        self._subs.add(sub)
        if cb is not None:
            sub._start_callback(cb, error_cb)
        return sub

    async def ack(self, msg: Message) -> None:
        """Acknowledge ``msg`` (same as ``await msg.ack()``)."""
        await msg.ack()

    async def ack_many(self, msgs: Iterable[Message]) -> None:
        """Acknowledge many messages in one call (same as :meth:`Subscription.ack_many`)."""
        _native.ack_many(msgs)

    def events(self) -> Events:
        """Connection events from now on (an async iterator; ends after ``Closed``)."""
        return Events(self._native.events())

    async def close(self) -> None:
        """Close the connection (durable subscriptions are kept). Idempotent.

        Publishes awaiting their acks fail with :class:`ConnectionClosedError`. Every
        subscription ends (its iteration stops, its ``cb=`` task finishes): with auto acks
        the messages it handed out are acknowledged first, and messages it received but did
        not hand out yet are not handed out any more (they stay unacknowledged and the
        server redelivers them).
        """
        subs = list(self._subs)
        self._subs.clear()
        for sub in subs:
            sub._drop_buffer()
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


BATCH_MAX = 256
"""The most messages one crossing into the client core hands over."""


class Subscription(AsyncIterator[Message]):
    """A subscription, from :meth:`Client.subscribe`.

    Iterate it with ``async for`` (the iteration ends when the subscription or its client is
    closed, and raises when it is lost for good); after a close, messages received but not
    handed out yet are not handed out. Use it as an async context manager to close it at the
    end; a durable subscription is kept by :meth:`close` and deleted by :meth:`unsubscribe`.

    Messages come from the client core in batches (everything already received, up to
    :data:`BATCH_MAX`, in one crossing) and are handed out one by one from a local buffer.
    With auto acks a message is acknowledged when the application takes the next one (or
    closes the subscription). Messages the application never took stay unacknowledged, and
    the server redelivers them: those of a receive cancelled while its batch was on its way,
    and the rest of a batch after a ``break`` out of ``async for`` followed by :meth:`close`.
    """

    __slots__ = ("__weakref__", "_auto", "_batch", "_msgs", "_native", "_pos", "_queued", "_task")

    def __init__(self, native: _native.Subscription) -> None:
        """Wrap a native subscription (use :meth:`Client.subscribe`)."""
        self._native = native
        self._auto = not native.manual_acks
        self._task: asyncio.Task[None] | None = None
        # The batch being handed out: its messages and how many were taken.
        self._batch: _native.Batch | None = None
        self._msgs: list[Message] = []
        self._pos = 0
        # Batches that arrived while another receive still had messages to hand out.
        self._queued: list[tuple[_native.Batch, list[Message]]] = []

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
        pos = self._pos
        msgs = self._msgs
        if pos < len(msgs):
            self._pos = pos + 1
            if self._auto and self._batch is not None:
                # Taking this message acknowledges the one taken before it.
                self._batch.mark_taken(pos + 1)
            return msgs[pos]
        return await self._next_batch()

    async def _next_batch(self) -> Message:
        """Hand out the first message of the next batch (the current one is used up)."""
        self._release_batch()
        if self._queued:
            batch, msgs = self._queued.pop(0)
        else:
            got = await self._native.next_batch(BATCH_MAX)
            if got is None:
                raise StopAsyncIteration
            batch, msgs = got, got.messages()
            if self._pos < len(self._msgs):
                # Another receive refilled the buffer meanwhile: this batch comes after it.
                self._queued.append((batch, msgs))
                return await self.__anext__()
        self._batch, self._msgs, self._pos = batch, msgs, 1
        if self._auto:
            batch.mark_taken(1)
        return msgs[0]

    def _release_batch(self) -> None:
        """Report what the application took from the current batch and let it go.

        Messages of the batch it did not take are left unacknowledged (redelivered).
        """
        batch = self._batch
        if batch is not None:
            batch.mark_taken(self._pos)
            self._batch, self._msgs, self._pos = None, [], 0

    async def ack_many(self, msgs: Iterable[Message]) -> None:
        """Acknowledge many messages (manual-ack subscriptions) in one call.

        Same as ``await msg.ack()`` for each message, with one crossing into the client core
        for all of them. Acking a message twice is a no-op; the messages may belong to other
        subscriptions of the same client too.

        Raises:
            InvalidStateError: A message belongs to an auto-ack subscription (the ones before
                it are acknowledged).
            ConnectionClosedError: The client is closed.
        """
        _native.ack_many(msgs)

    async def close(self) -> None:
        """Close the subscription; the server keeps a durable subscription.

        Raises:
            InvalidStateError: Already closed or unsubscribed.
        """
        self._drop_buffer()
        await self._native.close()
        await self._join_callback()

    async def unsubscribe(self) -> None:
        """Remove the subscription on the server; a durable subscription is deleted.

        Raises:
            InvalidStateError: Already closed or unsubscribed.
        """
        self._drop_buffer()
        await self._native.unsubscribe()
        await self._join_callback()

    def _drop_buffer(self) -> None:
        """Closing: ack what the application took, leave the rest unacknowledged."""
        self._release_batch()
        self._queued.clear()

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
            self._drop_buffer()
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
                    msg = await self.__anext__()
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

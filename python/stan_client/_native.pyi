# Hand-maintained stub of the native module (bindings/python/src). Keep it in sync with the
# Rust code; CI checks it with `python -m mypy.stubtest stan_client._native`.
# Internal API: use the public `stan_client` package instead.

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Generator, Iterable
from datetime import datetime, timedelta
from typing import final

from stan_client._config import ConnectConfig, SubscribeConfig
from stan_client.errors import StanError

__all__ = [
    "Batch",
    "Client",
    "Event",
    "Events",
    "Message",
    "PublishFuture",
    "Subscription",
    "__version__",
    "_after_fork_in_child",
    "_error_for_code",
    "_error_kind_codes",
    "_panic_async",
    "_panic_blocking",
    "_shutdown",
    "ack_many",
    "connect",
    "connect_blocking",
    "pending_publish_future",
]

__version__: str

@final
class PublishFuture:
    """The future of ``Client.publish_async``: resolves to the publish's guid.

    Follows asyncio's future protocol, so ``await``, ``asyncio.gather``, ``asyncio.wait_for``,
    ``asyncio.shield``, ``asyncio.wait`` and tasks accept it as an ``asyncio.Future``; it is
    not tracked by the garbage collector. Cancelling it does not cancel the publish. Each
    ``result()`` / ``exception()`` of a failed publish returns a new exception object.
    """

    _asyncio_future_blocking: bool
    def __new__(cls, event_loop: asyncio.AbstractEventLoop) -> PublishFuture: ...
    def get_loop(self) -> asyncio.AbstractEventLoop: ...
    def done(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def result(self) -> str: ...
    def exception(self) -> BaseException | None: ...
    def add_done_callback(
        self,
        fn: Callable[[PublishFuture], object],
        *,
        context: contextvars.Context | None = None,
    ) -> None: ...
    def remove_done_callback(self, fn: Callable[[PublishFuture], object]) -> int: ...
    def cancel(self, msg: str | None = None) -> bool: ...
    def set_result(self, result: str) -> None: ...
    def set_exception(self, exception: BaseException | type[BaseException]) -> None: ...
    def __await__(self) -> Generator[PublishFuture, None, str]: ...
    def __iter__(self) -> Generator[PublishFuture, None, str]: ...
    def __next__(self) -> PublishFuture: ...

def pending_publish_future(event_loop: asyncio.AbstractEventLoop) -> PublishFuture:
    """A pending ``PublishFuture`` that the garbage collector does not track."""

@final
class Client:
    @property
    def client_id(self) -> str: ...
    @property
    def cluster_id(self) -> str: ...
    @property
    def is_closed(self) -> bool: ...
    def publish(self, subject: str, data: bytes | bytearray) -> PublishFuture: ...
    def publish_many(
        self,
        subjects: list[str],
        payloads: list[bytes],
        futures: list[PublishFuture],
    ) -> None: ...
    def publish_blocking(self, subject: str, data: bytes | bytearray) -> str: ...
    def subscribe(self, subject: str, config: SubscribeConfig) -> asyncio.Future[Subscription]: ...
    def subscribe_blocking(self, subject: str, config: SubscribeConfig) -> Subscription: ...
    def events(self) -> Events: ...
    def close(self) -> asyncio.Future[None]: ...
    def close_blocking(self) -> None: ...

@final
class Subscription:
    @property
    def subject(self) -> str: ...
    @property
    def manual_acks(self) -> bool: ...
    @property
    def closing(self) -> bool: ...
    def next_batch(self, max: int | None = None) -> Awaitable[Batch | None]: ...
    def next_batch_blocking(
        self, max: int | None = None, timeout: timedelta | None = None
    ) -> Batch | None: ...
    def close(self) -> asyncio.Future[None]: ...
    def unsubscribe(self) -> asyncio.Future[None]: ...
    def close_blocking(self) -> None: ...
    def unsubscribe_blocking(self) -> None: ...

@final
class Batch:
    """The messages of one `Subscription.next_batch` call."""

    def messages(self) -> list[Message]:
        """Every message of the batch (taking none of them)."""
    def mark_taken(self, n: int) -> None:
        """Record that the application has taken the first `n` messages."""
    @property
    def taken(self) -> int:
        """How many messages the application has taken."""
    def __len__(self) -> int: ...

@final
class Message:
    """A delivered message."""

    @property
    def sequence(self) -> int:
        """The channel's sequence number of this message (starts at 1)."""
    @property
    def subject(self) -> str:
        """The channel the message was published on."""
    @property
    def data(self) -> bytes:
        """The payload."""
    @property
    def timestamp(self) -> datetime:
        """When the server stored the message (timezone-aware, UTC)."""
    @property
    def timestamp_nanos(self) -> int:
        """When the server stored the message, in nanoseconds since the Unix epoch."""
    @property
    def redelivered(self) -> bool:
        """True when this is not the first delivery to this subscription."""
    @property
    def redelivery_count(self) -> int:
        """How many times the server redelivered the message."""
    def ack(self) -> asyncio.Future[None]:
        """Acknowledge the message (manual-ack subscriptions; twice is a no-op)."""
    def ack_blocking(self) -> None:
        """Acknowledge the message, blocking."""

@final
class Event:
    @property
    def kind(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def resuming(self) -> bool: ...
    @property
    def failed_subscriptions(self) -> int: ...

@final
class Events:
    def __aiter__(self) -> Events: ...
    def __anext__(self) -> Awaitable[Event]: ...

def ack_many(messages: Iterable[Message]) -> None:
    """Acknowledge many messages (manual-ack subscriptions) in one call."""

def connect(config: ConnectConfig) -> asyncio.Future[Client]: ...
def connect_blocking(config: ConnectConfig) -> Client: ...
def _shutdown() -> None: ...
def _after_fork_in_child() -> None: ...

# Test hooks: present only when the module is built with the cargo feature `test-hooks` (the
# package's test build, python/ci.sh); a release build (`pip install ./python`) has none of them.
def _error_kind_codes() -> list[str]: ...
def _error_for_code(code: str, message: str) -> StanError: ...
def _panic_blocking(message: str) -> None: ...
def _panic_async(message: str) -> asyncio.Future[None]: ...

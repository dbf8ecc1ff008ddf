"""stan_client: a NATS Streaming (STAN) client for asyncio, over the stan-rs Rust core.

Example::

    import stan_client
    from stan_client import StartPosition

    async with await stan_client.connect("test-cluster", "me", url="nats://127.0.0.1:4222") as sc:
        guid = await sc.publish("orders", b"...")         # returns once acked
        ack = sc.publish_async("orders", b"...")          # awaitable ack, returned at once
        async with await sc.subscribe("orders", durable_name="audit",
                                      start_at=StartPosition.FIRST, manual_acks=True) as sub:
            async for msg in sub:
                await msg.ack()

See :mod:`stan_client.sync` for a blocking facade, :mod:`stan_client.errors` for the
exceptions and :mod:`stan_client.testing` for a broker fixture.

Processes: the client runs on a Tokio runtime created on first use. After ``os.fork()`` the
child gets a fresh runtime; clients, subscriptions and messages inherited from the parent raise
:class:`InvalidStateError` in the child. Create new clients there.
"""

import atexit
import os

from . import _native
from ._native import __version__
from .client import (
    Client,
    ErrorCallback,
    Message,
    MessageCallback,
    PublishFuture,
    Subscription,
    connect,
)
from .errors import (
    ConnectionClosedError,
    ConnectionLostError,
    ConnectTimeoutError,
    InvalidArgumentError,
    InvalidStateError,
    NotSupportedError,
    PanicError,
    ProtocolError,
    PublishAckTimeoutError,
    RequestTimeoutError,
    ServerRejectedError,
    StanError,
    StanTimeoutError,
    TransportError,
)
from .events import (
    Closed,
    ConnectionLost,
    Event,
    Events,
    LostReason,
    NatsDisconnected,
    NatsReconnected,
    Resumed,
    ResumeFailed,
    UnknownEvent,
)
from .options import StartAt, StartPosition, TlsOptions

# Stop resolving awaitables from Rust threads once the interpreter starts shutting down.
atexit.register(_native._shutdown)
if hasattr(os, "register_at_fork"):
    # The native module caches the pid (to tell handles inherited through fork() apart).
    os.register_at_fork(after_in_child=_native._after_fork_in_child)

__all__ = [
    "Client",
    "Closed",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ConnectionLost",
    "ConnectionLostError",
    "ErrorCallback",
    "Event",
    "Events",
    "InvalidArgumentError",
    "InvalidStateError",
    "LostReason",
    "Message",
    "MessageCallback",
    "NatsDisconnected",
    "NatsReconnected",
    "NotSupportedError",
    "PanicError",
    "ProtocolError",
    "PublishAckTimeoutError",
    "PublishFuture",
    "RequestTimeoutError",
    "ResumeFailed",
    "Resumed",
    "ServerRejectedError",
    "StanError",
    "StanTimeoutError",
    "StartAt",
    "StartPosition",
    "Subscription",
    "TlsOptions",
    "TransportError",
    "UnknownEvent",
    "__version__",
    "connect",
]

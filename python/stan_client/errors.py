"""Exceptions raised by stan_client.

Every error is a :class:`StanError` with a stable ``code`` (the client core's error-kind
code, such as ``"PUBLISH_ACK_TIMEOUT"``). Match on the class or on ``code``, never on the
message. Timeouts also derive from the built-in :class:`TimeoutError` and invalid
arguments from :class:`ValueError`, so generic handlers work too::

    try:
        await sc.publish("orders", b"...")
    except stan_client.PublishAckTimeoutError:
        ...  # the message may still have been stored
    except stan_client.StanError as e:
        print(e.code, e)

Lower-level causes (NATS, I/O) are chained as ``__cause__``. The exceptions pickle.
"""

from __future__ import annotations

__all__ = [
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ConnectionLostError",
    "InvalidArgumentError",
    "InvalidStateError",
    "NotSupportedError",
    "PanicError",
    "ProtocolError",
    "PublishAckTimeoutError",
    "RequestTimeoutError",
    "ServerRejectedError",
    "StanError",
    "StanTimeoutError",
    "TransportError",
]


class StanError(Exception):
    """Base class of every stan_client error.

    ``code`` is the stable error code; each subclass has its own. The message is for humans
    (for :class:`ServerRejectedError` it is the server's text, verbatim).
    """

    code: str = "STAN_ERROR"
    """Stable error code (``"CONNECT_TIMEOUT"``, ``"SERVER_REJECTED"``, ...)."""

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        """Create the error; ``code`` overrides the class's code (for unknown kinds)."""
        super().__init__(message)
        if code is not None and code != type(self).code:
            self.code = code

    @property
    def message(self) -> str:
        """The error message."""
        return str(self.args[0]) if self.args else ""


class StanTimeoutError(StanError, TimeoutError):
    """Base class of the timeouts (also a built-in :class:`TimeoutError`)."""

    code = "TIMEOUT"


class ConnectTimeoutError(StanTimeoutError):
    """The streaming server did not answer the connect request in time.

    Usually a wrong cluster ID, or no streaming server on that NATS server.
    """

    code = "CONNECT_TIMEOUT"


class RequestTimeoutError(StanTimeoutError):
    """A subscribe, unsubscribe or close request got no answer in time."""

    code = "REQUEST_TIMEOUT"


class PublishAckTimeoutError(StanTimeoutError):
    """The server did not acknowledge a publish in time (it may still have stored it)."""

    code = "PUBLISH_ACK_TIMEOUT"


class ConnectionClosedError(StanError):
    """The client (or the subscription) was closed by the application."""

    code = "CONNECTION_CLOSED"


class ConnectionLostError(StanError):
    """The streaming session was lost and is not (or not yet) resumed.

    The outcome of publishes in flight at that moment is unknown.
    """

    code = "CONNECTION_LOST"


class ServerRejectedError(StanError):
    """The server refused the request; the message is the server's text."""

    code = "SERVER_REJECTED"


class InvalidArgumentError(StanError, ValueError):
    """An argument or option is invalid (checked before anything is sent)."""

    code = "INVALID_ARGUMENT"


class InvalidStateError(StanError):
    """The operation does not fit the current state (e.g. acking in auto-ack mode)."""

    code = "INVALID_STATE"


class NotSupportedError(StanError):
    """The server lacks a feature the operation needs."""

    code = "NOT_SUPPORTED"


class ProtocolError(StanError):
    """The server sent something that could not be decoded."""

    code = "PROTOCOL"


class TransportError(StanError):
    """The NATS connection failed (I/O, TLS, authentication)."""

    code = "TRANSPORT"


class PanicError(StanError):
    """A bug: the Rust side panicked while serving the call. Please report it."""

    code = "PANIC"


BY_CODE: dict[str, type[StanError]] = {
    cls.code: cls
    for cls in (
        ConnectTimeoutError,
        RequestTimeoutError,
        PublishAckTimeoutError,
        ConnectionClosedError,
        ConnectionLostError,
        ServerRejectedError,
        InvalidArgumentError,
        InvalidStateError,
        NotSupportedError,
        ProtocolError,
        TransportError,
        PanicError,
    )
}
"""Every concrete error class by its code."""

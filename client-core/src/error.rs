//! The one error type of the client: [`Error`] with a stable [`ErrorKind`].

use std::fmt;

/// A boxed error kept as the [`source`](std::error::Error::source) of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, stan_client::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a stable, matchable value.
///
/// The kind is the contract: bindings map each kind to an exception class or error code, and
/// [`ErrorKind::code`] never changes for an existing kind. New kinds may be added, so the enum
/// is `#[non_exhaustive]`; [`ErrorKind::ALL`] lists every kind.
///
/// ```
/// use stan_client::ErrorKind;
/// assert_eq!(ErrorKind::PublishAckTimeout.code(), "PUBLISH_ACK_TIMEOUT");
/// assert!(ErrorKind::ALL.contains(&ErrorKind::ServerRejected));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The streaming server did not answer the connect request in time (wrong cluster ID, or
    /// no streaming server on that NATS).
    ConnectTimeout,
    /// A subscribe, unsubscribe, subscription close or connection close request got no answer
    /// in time.
    RequestTimeout,
    /// The server did not acknowledge a publish within the pub-ack wait.
    PublishAckTimeout,
    /// The client (or the subscription) was closed by the application.
    ConnectionClosed,
    /// The streaming session was lost (pings exhausted, replaced by another client with the
    /// same ID, server restarted) and is not (or not yet) resumed. The outcome of publishes in
    /// flight at that moment is unknown.
    ConnectionLost,
    /// The server refused the request; the message is the server's error text, verbatim.
    ServerRejected,
    /// An argument or option is invalid (checked before anything is sent).
    InvalidArgument,
    /// The operation does not fit the current state (for example acking in auto-ack mode, or
    /// closing a subscription twice).
    InvalidState,
    /// The server lacks a feature the operation needs (subscription close on old servers).
    NotSupported,
    /// The server sent something that could not be decoded.
    Protocol,
    /// The NATS connection failed (I/O, TLS, authentication).
    Transport,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::ConnectTimeout,
        ErrorKind::RequestTimeout,
        ErrorKind::PublishAckTimeout,
        ErrorKind::ConnectionClosed,
        ErrorKind::ConnectionLost,
        ErrorKind::ServerRejected,
        ErrorKind::InvalidArgument,
        ErrorKind::InvalidState,
        ErrorKind::NotSupported,
        ErrorKind::Protocol,
        ErrorKind::Transport,
    ];

    /// The stable SCREAMING_SNAKE code of this kind (`"PUBLISH_ACK_TIMEOUT"`, …).
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::ConnectTimeout => "CONNECT_TIMEOUT",
            ErrorKind::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorKind::PublishAckTimeout => "PUBLISH_ACK_TIMEOUT",
            ErrorKind::ConnectionClosed => "CONNECTION_CLOSED",
            ErrorKind::ConnectionLost => "CONNECTION_LOST",
            ErrorKind::ServerRejected => "SERVER_REJECTED",
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::InvalidState => "INVALID_STATE",
            ErrorKind::NotSupported => "NOT_SUPPORTED",
            ErrorKind::Protocol => "PROTOCOL",
            ErrorKind::Transport => "TRANSPORT",
        }
    }

    /// The kind whose [`code`](Self::code) is `code` (exact, case-sensitive match), or `None`
    /// for an unknown code.
    ///
    /// ```
    /// use stan_client::ErrorKind;
    /// assert_eq!(ErrorKind::from_code("CONNECTION_LOST"), Some(ErrorKind::ConnectionLost));
    /// assert_eq!(ErrorKind::from_code("connection_lost"), None);
    /// ```
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// True for the timeout kinds (bindings also derive these from their `TimeoutError`).
    pub const fn is_timeout(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectTimeout | ErrorKind::RequestTimeout | ErrorKind::PublishAckTimeout
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::ConnectTimeout => "connect timeout",
            ErrorKind::RequestTimeout => "request timeout",
            ErrorKind::PublishAckTimeout => "publish ack timeout",
            ErrorKind::ConnectionClosed => "connection closed",
            ErrorKind::ConnectionLost => "connection lost",
            ErrorKind::ServerRejected => "rejected by the server",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::InvalidState => "invalid state",
            ErrorKind::NotSupported => "not supported by the server",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Transport => "transport error",
        })
    }
}

/// The error of every fallible operation of this crate.
///
/// [`Error::kind`] is what programs match on; the message (the `Display` output) is for humans
/// and, for [`ErrorKind::ServerRejected`], is the server's text verbatim. Lower-level causes
/// (NATS, decoding) are kept as the [`source`](std::error::Error::source).
///
/// ```no_run
/// # async fn demo(client: stan_client::Client) {
/// use stan_client::ErrorKind;
/// match client.publish("orders", "hello").await {
///     Ok(guid) => println!("stored as {guid}"),
///     Err(e) if e.kind() == ErrorKind::PublishAckTimeout => println!("maybe stored: {e}"),
///     Err(e) => println!("{} ({}): {e}", e.kind(), e.code()),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A new error of `kind` with a message and a source.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable code of this error's kind (same as `self.kind().code()`).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The message without the source chain (for server rejections, the server's text).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error of an operation on a closed client or subscription: kind
    /// [`ErrorKind::ConnectionClosed`] with the protocol's text (`stan: connection closed`).
    /// Bindings use it for failures of their own glue once the client is gone.
    ///
    /// ```
    /// let e = stan_client::Error::closed();
    /// assert_eq!(e.kind(), stan_client::ErrorKind::ConnectionClosed);
    /// assert_eq!(e.to_string(), "stan: connection closed");
    /// ```
    pub fn closed() -> Self {
        Error::new(
            ErrorKind::ConnectionClosed,
            stan_protocol::errors::CONNECTION_CLOSED,
        )
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// A copy without the source (errors are not `Clone`; sources may not be).
    pub(crate) fn shallow_clone(&self) -> Self {
        Error::new(self.kind, self.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::error::Error as _;

    #[test]
    fn codes_are_distinct_and_screaming_snake() {
        let codes: HashSet<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for code in codes {
            assert!(code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
        }
        let displays: HashSet<String> = ErrorKind::ALL.iter().map(|k| k.to_string()).collect();
        assert_eq!(displays.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn style_table_codes_are_stable() {
        assert_eq!(ErrorKind::ConnectTimeout.code(), "CONNECT_TIMEOUT");
        assert_eq!(ErrorKind::PublishAckTimeout.code(), "PUBLISH_ACK_TIMEOUT");
        assert_eq!(ErrorKind::ConnectionClosed.code(), "CONNECTION_CLOSED");
        assert_eq!(ErrorKind::ConnectionLost.code(), "CONNECTION_LOST");
        assert_eq!(ErrorKind::ServerRejected.code(), "SERVER_REJECTED");
        assert_eq!(ErrorKind::InvalidArgument.code(), "INVALID_ARGUMENT");
        assert_eq!(ErrorKind::InvalidState.code(), "INVALID_STATE");
        assert_eq!(ErrorKind::Protocol.code(), "PROTOCOL");
        assert_eq!(ErrorKind::Transport.code(), "TRANSPORT");
        assert!(ErrorKind::RequestTimeout.is_timeout());
        assert!(!ErrorKind::Transport.is_timeout());
    }

    #[test]
    fn from_code_inverts_code() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(*kind));
        }
        assert_eq!(ErrorKind::from_code(""), None);
        assert_eq!(ErrorKind::from_code("NO_SUCH_CODE"), None);
        assert_eq!(ErrorKind::from_code("protocol"), None);
    }

    #[test]
    fn closed_error_has_the_protocol_text() {
        let e = Error::closed();
        assert_eq!(e.kind(), ErrorKind::ConnectionClosed);
        assert_eq!(e.code(), "CONNECTION_CLOSED");
        assert_eq!(e.message(), stan_protocol::errors::CONNECTION_CLOSED);
        assert!(e.source().is_none());
    }

    #[test]
    fn source_chain_is_kept() {
        let io = std::io::Error::other("socket gone");
        let e = Error::with_source(ErrorKind::Transport, "nats: connect failed", io);
        assert_eq!(e.to_string(), "nats: connect failed");
        assert_eq!(e.code(), "TRANSPORT");
        assert_eq!(e.source().unwrap().to_string(), "socket gone");
        let c = e.shallow_clone();
        assert_eq!(c.kind(), ErrorKind::Transport);
        assert!(c.source().is_none());
    }
}

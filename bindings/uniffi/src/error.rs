//! The one error type crossing the boundary: [`StanError`], one variant per core
//! [`ErrorKind`]. UniFFI turns it into the Kotlin `sealed class StanException`.

use std::error::Error as _;

use stan_client::ErrorKind;

/// An error from the NATS Streaming client. The variant is the stable kind (the core's
/// `ErrorKind`, code in SCREAMING_SNAKE case in the docs of each variant); the message is for
/// humans and ends with the chain of causes (`Caused by: …` lines).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum StanError {
    /// `CONNECT_TIMEOUT`: the streaming server did not answer the connect request in time
    /// (wrong cluster ID, or no streaming server on that NATS).
    #[error("{0}")]
    ConnectTimeout(String),
    /// `REQUEST_TIMEOUT`: a subscribe, unsubscribe or close request got no answer in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// `PUBLISH_ACK_TIMEOUT`: the server did not acknowledge a publish within the pub-ack
    /// wait (the message may still have been stored).
    #[error("{0}")]
    PublishAckTimeout(String),
    /// `CONNECTION_CLOSED`: the client or the subscription was closed by the application.
    #[error("{0}")]
    ConnectionClosed(String),
    /// `CONNECTION_LOST`: the streaming session was lost and is not (or not yet) resumed; the
    /// outcome of publishes in flight is unknown.
    #[error("{0}")]
    ConnectionLost(String),
    /// `SERVER_REJECTED`: the server refused the request; the message is the server's text.
    #[error("{0}")]
    ServerRejected(String),
    /// `INVALID_ARGUMENT`: an argument or option is invalid (checked before anything is sent).
    #[error("{0}")]
    InvalidArgument(String),
    /// `INVALID_STATE`: the operation does not fit the current state (acking in auto-ack
    /// mode, closing a subscription twice, …).
    #[error("{0}")]
    InvalidState(String),
    /// `NOT_SUPPORTED`: the server lacks a feature the operation needs.
    #[error("{0}")]
    NotSupported(String),
    /// `PROTOCOL`: the server sent something that could not be decoded.
    #[error("{0}")]
    Protocol(String),
    /// `TRANSPORT`: the NATS connection failed (I/O, TLS, authentication).
    #[error("{0}")]
    Transport(String),
    /// An error kind this version of the bindings does not know yet (the message starts with
    /// its code).
    #[error("{0}")]
    Generic(String),
}

impl From<stan_client::Error> for StanError {
    fn from(e: stan_client::Error) -> Self {
        let mut message = e.message().to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            message.push_str("\nCaused by: ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        match e.kind() {
            ErrorKind::ConnectTimeout => StanError::ConnectTimeout(message),
            ErrorKind::RequestTimeout => StanError::RequestTimeout(message),
            ErrorKind::PublishAckTimeout => StanError::PublishAckTimeout(message),
            ErrorKind::ConnectionClosed => StanError::ConnectionClosed(message),
            ErrorKind::ConnectionLost => StanError::ConnectionLost(message),
            ErrorKind::ServerRejected => StanError::ServerRejected(message),
            ErrorKind::InvalidArgument => StanError::InvalidArgument(message),
            ErrorKind::InvalidState => StanError::InvalidState(message),
            ErrorKind::NotSupported => StanError::NotSupported(message),
            ErrorKind::Protocol => StanError::Protocol(message),
            ErrorKind::Transport => StanError::Transport(message),
            other => StanError::Generic(format!("{}: {message}", other.code())),
        }
    }
}

impl StanError {
    /// The stable code (`StanException.code` in Kotlin) and the message. For
    /// [`Generic`](Self::Generic) the code is the one its message starts with.
    pub(crate) fn code_and_message(self) -> (String, String) {
        let (code, message) = match self {
            StanError::ConnectTimeout(m) => ("CONNECT_TIMEOUT", m),
            StanError::RequestTimeout(m) => ("REQUEST_TIMEOUT", m),
            StanError::PublishAckTimeout(m) => ("PUBLISH_ACK_TIMEOUT", m),
            StanError::ConnectionClosed(m) => ("CONNECTION_CLOSED", m),
            StanError::ConnectionLost(m) => ("CONNECTION_LOST", m),
            StanError::ServerRejected(m) => ("SERVER_REJECTED", m),
            StanError::InvalidArgument(m) => ("INVALID_ARGUMENT", m),
            StanError::InvalidState(m) => ("INVALID_STATE", m),
            StanError::NotSupported(m) => ("NOT_SUPPORTED", m),
            StanError::Protocol(m) => ("PROTOCOL", m),
            StanError::Transport(m) => ("TRANSPORT", m),
            StanError::Generic(m) => {
                let code = m.split(':').next().unwrap_or_default().to_string();
                return (code, m);
            }
        };
        (code.to_string(), message)
    }
}

#[cfg(feature = "test-hooks")]
pub use test_hooks::{error_for_code, error_kind_codes};

/// Test-only exports (feature `test-hooks`; absent from release libraries).
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use super::{ErrorKind, StanError};

    export! {
        /// Test only (feature `test-hooks`): every error code of the core, in declaration order
        /// (`CONNECT_TIMEOUT`, …). Lets the Kotlin tests check that each code maps to its own
        /// `StanException` subclass.
        pub async fn error_kind_codes() -> Vec<String> {
            ErrorKind::ALL.iter().map(|k| k.code().to_string()).collect()
        }

        /// Test only (feature `test-hooks`): fail with the [`StanError`] of the core error kind
        /// whose code is `code` (an `InvalidArgument` error for an unknown code). Used by the
        /// Kotlin tests of the mapping.
        pub async fn error_for_code(code: String) -> Result<(), StanError> {
            let kind = ErrorKind::from_code(&code).unwrap_or(ErrorKind::InvalidArgument);
            Err(stan_client::Error::new(kind, format!("test error {code}")).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::mem::discriminant;

    #[test]
    fn every_error_kind_has_its_own_variant() {
        let mut seen = HashSet::new();
        for kind in ErrorKind::ALL {
            let e = StanError::from(stan_client::Error::new(*kind, "boom"));
            assert!(
                !matches!(e, StanError::Generic(_)),
                "{kind:?} is not mapped to a variant of its own"
            );
            assert!(
                seen.insert(discriminant(&e)),
                "{kind:?} shares a variant with another kind"
            );
            assert_eq!(e.to_string(), "boom");
            assert_eq!(
                e.clone().code_and_message(),
                (kind.code().to_string(), "boom".into())
            );
        }
        assert_eq!(seen.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn cause_chain_is_appended() {
        let io = std::io::Error::other("socket gone");
        let e = stan_client::Error::with_source(ErrorKind::Transport, "nats: connect failed", io);
        assert_eq!(
            StanError::from(e),
            StanError::Transport("nats: connect failed\nCaused by: socket gone".into())
        );
    }

    #[cfg(feature = "test-hooks")]
    #[test]
    fn error_for_code_round_trips() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let codes = error_kind_codes().await;
            assert_eq!(codes.len(), ErrorKind::ALL.len());
            let e = error_for_code("SERVER_REJECTED".into()).await.unwrap_err();
            assert!(matches!(e, StanError::ServerRejected(m) if m == "test error SERVER_REJECTED"));
        });
    }
}

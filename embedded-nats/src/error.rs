//! Errors of the in-process API and the protocol error strings sent to TCP clients.

/// Error returned by the in-process API ([`crate::LocalConnection`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The subject (or queue group name) is not valid for a subscription.
    #[error("invalid subject: {0:?}")]
    InvalidSubject(String),
    /// The server has been shut down.
    #[error("server shut down")]
    ShutDown,
}

/// Exact `-ERR` texts the server sends to TCP clients.
pub mod proto_err {
    /// Unparsable input (connection is closed).
    pub const UNKNOWN_OP: &str = "Unknown Protocol Operation";
    /// Control line longer than the limit (connection is closed).
    pub const MAX_CONTROL_LINE: &str = "maximum control line exceeded";
    /// Payload larger than `max_payload` (connection is closed).
    pub const MAX_PAYLOAD: &str = "Maximum Payload Violation";
    /// Invalid SUB subject (connection stays open).
    pub const INVALID_SUBJECT: &str = "Invalid Subject";
    /// Publish to an invalid or wildcard subject in pedantic mode (connection stays open).
    pub const INVALID_PUB_SUBJECT: &str = "Invalid Publish Subject";
    /// CONNECT with an unsupported `protocol` value (connection is closed).
    pub const INVALID_CLIENT_PROTOCOL: &str = "invalid client protocol";
    /// CONNECT with `no_responders` but without `headers` (connection is closed).
    pub const NO_RESPONDERS_REQUIRES_HEADERS: &str = "no responders requires headers support";
    /// Wrong or missing credentials (connection is closed).
    pub const AUTH_VIOLATION: &str = "Authorization Violation";
    /// No CONNECT within the authentication timeout (connection is closed).
    pub const AUTH_TIMEOUT: &str = "Authentication Timeout";
    /// Too many unanswered server PINGs (connection is closed).
    pub const STALE_CONNECTION: &str = "Stale Connection";
    /// A client of a TLS port sent something other than a TLS handshake (connection is
    /// closed).
    pub const TLS_REQUIRED: &str = "Secure Connection - TLS Required";
}

//! Server options.

use std::time::Duration;

use crate::tls::TlsConfig;

/// Credentials a client must present in its CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `user` and `pass` fields of CONNECT must match.
    UserPass {
        /// Expected user name.
        user: String,
        /// Expected password.
        pass: String,
    },
    /// The `auth_token` field of CONNECT must match.
    Token(String),
}

/// Options of an embedded server.
///
/// ```
/// use stan_embedded_nats::ServerOptions;
/// let opts = ServerOptions { port: 0, ..ServerOptions::default() };
/// assert_eq!(opts.max_payload, 1024 * 1024);
/// ```
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Address to listen on; default `127.0.0.1`.
    pub host: String,
    /// Port to listen on; default 4222, 0 picks a free ephemeral port.
    pub port: u16,
    /// Name advertised in INFO; default `stan-broker`.
    pub server_name: String,
    /// Largest accepted payload (headers included), advertised in INFO; default 1 MiB.
    pub max_payload: usize,
    /// Longest accepted control line; default 4096 bytes.
    pub max_control_line: usize,
    /// Outbound bytes pending per TCP connection (buffered or being written) before it is
    /// closed as a slow consumer; default 64 MiB. From half of it on, a TCP connection that
    /// publishes to the connection is stalled briefly while the connection's writer drains, so
    /// a reader that keeps up slows its producers down rather than being cut.
    pub max_pending: usize,
    /// The same limit for messages published by in-process connections
    /// ([`LocalConnection`](crate::LocalConnection)), which are routed synchronously and cannot
    /// be stalled: a burst they publish (the streaming engine's deliveries, bounded by each
    /// subscription's max in flight) may take a connection this far before it is cut; default
    /// 256 MiB. Values below `max_pending` count as `max_pending`.
    pub max_pending_in_process: usize,
    /// Interval of server PINGs to TCP clients; default 2 minutes.
    pub ping_interval: Duration,
    /// Unanswered server PINGs tolerated before the connection is closed as stale; default 2.
    pub max_pings_out: u32,
    /// Required credentials; default none.
    pub auth: Option<Auth>,
    /// Time a client has to send CONNECT when auth is required; default 2 s.
    pub auth_timeout: Duration,
    /// TLS on the client port; default none (plaintext). When set, INFO carries
    /// `tls_required` (and `tls_verify` when client certificates are required) and is sent in
    /// plaintext; the client then starts the TLS handshake. A client that fails it is closed;
    /// the server goes on.
    pub tls: Option<TlsConfig>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            host: "127.0.0.1".to_string(),
            port: 4222,
            server_name: "stan-broker".to_string(),
            max_payload: 1024 * 1024,
            max_control_line: 4096,
            max_pending: 64 * 1024 * 1024,
            max_pending_in_process: 256 * 1024 * 1024,
            ping_interval: Duration::from_secs(120),
            max_pings_out: 2,
            auth: None,
            auth_timeout: Duration::from_secs(2),
            tls: None,
        }
    }
}

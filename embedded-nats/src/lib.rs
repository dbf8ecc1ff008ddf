//! An embeddable core-NATS server.
//!
//! [`Server`] speaks the core NATS client protocol over TCP (INFO/CONNECT, PUB/HPUB, SUB/UNSUB,
//! MSG/HMSG, PING/PONG, `+OK`/`-ERR`), with `*`/`>` wildcards, queue groups, headers,
//! no-responders, auth, TLS ([`TlsConfig`]: INFO in plaintext, then the client's handshake,
//! client certificates optional) and slow-consumer protection. [`LocalConnection`] gives
//! in-process code the same routing without a TCP hop: subscriptions are registered and
//! messages routed synchronously.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stan_embedded_nats::{Server, ServerOptions};
//! let server = Server::start(ServerOptions { port: 0, ..Default::default() }).await?;
//! let local = server.connect_local("engine");
//! let mut sub = local.subscribe("orders.>", None)?;
//! // A TCP client connected to `server.client_url()` publishing on `orders.new` now
//! // reaches `sub`.
//! # let _ = sub.try_next();
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

/// The server's hash maps: keyed by subjects, SIDs and connection IDs that clients choose, so
/// hashed with a randomly seeded hasher; foldhash's costs a fraction of SipHash on the
/// per-message paths (the subject cache, the trie's levels).
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

mod client;
mod error;
mod info;
mod local;
mod message;
mod options;
mod outbound;
mod parser;
mod readbuf;
mod server;
mod stats;
mod sublist;
mod subscription;
pub mod tls;

pub use error::{proto_err, Error};
pub use info::SERVER_VERSION;
pub use local::{LocalConnection, LocalSubscription, SubscriptionHandle};
pub use message::Message;
pub use options::{Auth, ServerOptions};
#[doc(hidden)]
pub use parser::fuzz_parse;
pub use server::Server;
pub use stats::{ConnectionInfo, SublistStats, SubscriptionInfo, VarzStats};
pub use sublist::subject_matches;
pub use tls::{TlsConfig, TlsError};
/// The rustls crate the TLS types come from ([`TlsConfig::new`] takes its `ServerConfig`).
pub use tokio_rustls::rustls;

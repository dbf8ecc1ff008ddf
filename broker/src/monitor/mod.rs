//! Monitoring HTTP endpoints (`-m`): the official server's `/streaming/*` endpoints plus
//! nats-server's core `/varz`, `/connz`, `/subsz` and `/healthz`.
//!
//! [`json`] turns a [`Snapshot`](crate::snapshot::Snapshot) into response bodies (pure
//! functions); [`http`] serves them with axum from any [`Source`] of engine data. The broker
//! is the source in production (its `Source` impl lives with [`Broker`](crate::Broker), so
//! this module never depends on it).
//!
//! | Path | Answer |
//! |---|---|
//! | `/streaming` | HTML page with links |
//! | `/streaming/serverz` | server ID, state, uptime, counts, totals, in/out counters |
//! | `/streaming/storez` | store type, limits (per-channel entries after inheritance), totals |
//! | `/streaming/clientsz` | `offset`, `limit`, `subs=1`, `client=<id>` (404 `Client <id> not found`) |
//! | `/streaming/channelsz` | `offset`, `limit`, `subs=1`, `channel=<name>` (404 `Channel <name> not found`) |
//! | `/streaming/isFTActive` | 204: a standalone server is never the active FT member |
//! | `/varz`, `/connz`, `/subsz` (also `/subscriptionsz`) | core NATS figures with nats-server's fields, see [`core`] |
//! | `/healthz` | `{"status":"ok"}` |
//! | `/metrics` | Prometheus (OpenMetrics) text, see [`metrics`] |

pub mod console;
pub mod core;
pub mod http;
pub mod json;
pub mod metrics;

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use http::{CoreInfo, Source};

/// Binds `addr`, serves the monitoring endpoints of `source` (the broker) on a spawned task
/// until [`Source::closed`] resolves, and returns the bound address (useful with port 0).
pub async fn serve<S: Source>(source: S, addr: SocketAddr) -> io::Result<SocketAddr> {
    let (listener, _) = bind(addr).await?;
    serve_on(listener, source)
}

/// Binds the monitoring listener without serving yet, so a port conflict can fail startup
/// before anything else runs. Serve it later with [`serve_on`].
pub async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Serves the monitoring endpoints of `source` on a listener from [`bind`] (spawned; stops
/// when [`Source::closed`] resolves).
pub fn serve_on<S: Source>(listener: TcpListener, source: S) -> io::Result<SocketAddr> {
    http::serve_listener(source, listener)
}

//! Monitoring HTTP endpoints (`-m`): the official server's `/streaming/*` endpoints plus
//! minimal `/varz`, `/connz` and `/healthz`.
//!
//! [`json`] turns a [`Snapshot`] into response bodies (pure
//! functions); [`http`] serves them with axum from any [`http::Source`]; this module plugs the
//! [`Broker`] in as the source.
//!
//! | Path | Answer |
//! |---|---|
//! | `/streaming` | HTML page with links |
//! | `/streaming/serverz` | server ID, state, uptime, counts, totals, in/out counters |
//! | `/streaming/storez` | store type, limits (per-channel entries after inheritance), totals |
//! | `/streaming/clientsz` | `offset`, `limit`, `subs=1`, `client=<id>` (404 `Client <id> not found`) |
//! | `/streaming/channelsz` | `offset`, `limit`, `subs=1`, `channel=<name>` (404 `Channel <name> not found`) |
//! | `/streaming/isFTActive` | 204: a standalone server is never the active FT member |
//! | `/varz`, `/connz` | minimal core-side information |
//! | `/healthz` | `{"status":"ok"}` |

pub mod http;
pub mod json;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::config::{ChannelLimits, NatsMode, StoreLimits};
use crate::snapshot::Snapshot;
use crate::store::limits::effective_limits;
use crate::Broker;
use http::{CoreInfo, Source};

impl Source for Broker {
    async fn snapshot(&self) -> Snapshot {
        Broker::snapshot(self).await
    }

    fn limits(&self) -> StoreLimits {
        self.config().limits.clone()
    }

    fn per_channel_limits(&self) -> BTreeMap<String, ChannelLimits> {
        let limits = &self.config().limits;
        limits
            .channels
            .keys()
            .map(|name| (name.clone(), effective_limits(limits, name)))
            .collect()
    }

    fn core_info(&self) -> CoreInfo {
        let (max_payload, auth_required) = match &self.config().nats {
            NatsMode::Embedded(e) => (
                e.max_payload,
                e.user.is_some() || e.pass.is_some() || e.auth_token.is_some(),
            ),
            NatsMode::External(_) => (stan_protocol::defaults::MAX_PAYLOAD, false),
        };
        CoreInfo {
            client_url: self.client_url(),
            max_payload,
            auth_required,
        }
    }

    async fn closed(&self) {
        Broker::closed(self).await
    }
}

/// Binds `addr`, serves the monitoring endpoints of `broker` on a spawned task (until the
/// broker shuts down) and returns the bound address (useful with port 0).
pub async fn serve(broker: Broker, addr: SocketAddr) -> io::Result<SocketAddr> {
    http::serve_source(broker, addr).await
}

/// Binds the monitoring listener without serving yet, so a port conflict can fail startup
/// before anything else runs. Serve it later with [`serve_on`].
pub async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Serves the monitoring endpoints of `broker` on a listener from [`bind`] (spawned; stops
/// when the broker shuts down).
pub fn serve_on(listener: TcpListener, broker: Broker) -> io::Result<SocketAddr> {
    http::serve_listener(broker, listener)
}

//! How the engine reaches core NATS.
//!
//! The engine only sees [`Transport`]: subscriptions feed a [`Sink`] (the engine's inbound
//! queue) with [`Inbound`] messages tagged by a [`Route`]; publishes never wait; requests
//! (heartbeats, duplicate-client probes) resolve to `None` on timeout or when nobody listens.
//! [`embedded::EmbeddedTransport`] routes in-process through the embedded server;
//! [`external::ExternalTransport`] uses an async-nats connection to an external server.

pub mod embedded;
pub mod external;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

pub use embedded::EmbeddedTransport;
pub use external::ExternalTransport;

/// What an inbound message is for; chosen by the engine when it subscribes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// Connect requests.
    Connect,
    /// Client pings.
    Ping,
    /// Publishes (`<pubPrefix>.>`).
    Publish,
    /// Subscription requests.
    Subscribe,
    /// Unsubscribe requests.
    Unsubscribe,
    /// Subscription close requests.
    SubClose,
    /// Connection close requests.
    Close,
    /// Acks on the ack inbox of the subscription with this ID.
    Ack(u64),
}

/// A message received on one of the engine's subscriptions.
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The route of the subscription it arrived on.
    pub route: Route,
    /// NATS subject.
    pub subject: String,
    /// NATS reply subject.
    pub reply: Option<String>,
    /// Payload.
    pub payload: Bytes,
    /// Server-wide id of the core-NATS connection that published it, when the transport
    /// knows it (embedded: yes; external: `None`, a NATS server does not tell).
    pub origin: Option<u64>,
}

/// Where subscriptions deliver: must be cheap and never block.
pub type Sink = Arc<dyn Fn(Inbound) + Send + Sync>;

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The subject is not valid for NATS.
    #[error("invalid subject: {0}")]
    InvalidSubject(String),
    /// The connection or server is gone.
    #[error("transport closed")]
    Closed,
    /// The external NATS URL list cannot be parsed.
    #[error("invalid NATS URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL list as given.
        url: String,
        /// Why a URL of the list is invalid.
        #[source]
        source: std::io::Error,
    },
    /// The external NATS URL list is empty.
    #[error("no NATS URL given")]
    NoUrl,
    /// Connecting to the external NATS server failed.
    #[error("unable to connect to NATS {url}: {source}")]
    Connect {
        /// The URL list as given.
        url: String,
        /// The client's reason.
        #[source]
        source: async_nats::ConnectError,
    },
}

/// A live subscription; dropping it unsubscribes.
pub trait TransportSubscription: Send {}

/// The engine's view of core NATS.
pub trait Transport: Send + Sync + 'static {
    /// Subscribes `subject`; when this returns, the subscription is registered ahead of any
    /// later publish from this transport (so a reply sent afterwards cannot overtake it).
    fn subscribe(
        &self,
        subject: &str,
        route: Route,
    ) -> Result<Box<dyn TransportSubscription>, TransportError>;
    /// Publishes without waiting; messages keep their order.
    fn publish(&self, subject: &str, reply: Option<&str>, payload: Bytes);
    /// Sends a request and waits up to `timeout` for one answer. `None` on timeout or when
    /// nobody listens.
    fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, Option<Bytes>>;
    /// Resolves when everything published so far has been handed to the server.
    fn flush(&self) -> BoxFuture<'static, ()>;
    /// Flushes and closes the connection (external) or detaches (embedded).
    fn close(&self) -> BoxFuture<'static, ()>;
    /// True while the core-NATS connection `origin` (an [`Inbound::origin`]) is open. A
    /// transport that cannot tell answers `true`.
    fn origin_open(&self, _origin: u64) -> bool {
        true
    }
}

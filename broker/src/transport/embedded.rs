//! In-process transport through the embedded core-NATS server: no TCP hop, no payload copy.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use stan_embedded_nats::{LocalConnection, SubscriptionHandle};

use super::{Inbound, Route, Sink, Transport, TransportError, TransportSubscription};

/// Transport over a [`LocalConnection`] of the embedded server. Routing is synchronous, so a
/// subscription is registered when [`Transport::subscribe`] returns.
pub struct EmbeddedTransport {
    conn: LocalConnection,
    sink: Sink,
}

struct EmbeddedSub(#[allow(dead_code)] SubscriptionHandle);

impl TransportSubscription for EmbeddedSub {}

impl EmbeddedTransport {
    /// Wraps a local connection; subscriptions deliver to `sink`.
    pub fn new(conn: LocalConnection, sink: Sink) -> Self {
        EmbeddedTransport { conn, sink }
    }
}

impl Transport for EmbeddedTransport {
    fn subscribe(
        &self,
        subject: &str,
        route: Route,
    ) -> Result<Box<dyn TransportSubscription>, TransportError> {
        let sink = self.sink.clone();
        let handler = Arc::new(move |m: stan_embedded_nats::Message| {
            sink(Inbound {
                route,
                subject: m.subject,
                reply: m.reply,
                payload: m.payload,
                origin: Some(m.publisher),
            })
        });
        match self.conn.subscribe_with(subject, None, handler) {
            Ok(h) => Ok(Box::new(EmbeddedSub(h))),
            Err(stan_embedded_nats::Error::InvalidSubject(s)) => {
                Err(TransportError::InvalidSubject(s))
            }
            Err(_) => Err(TransportError::Closed),
        }
    }

    fn publish(&self, subject: &str, reply: Option<&str>, payload: Bytes) {
        self.conn.publish(subject, reply, payload);
    }

    fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, Option<Bytes>> {
        let inbox = stan_protocol::subjects::new_inbox();
        let sub = self.conn.subscribe(&inbox, None);
        let delivered = match &sub {
            Ok(_) => self.conn.publish(subject, Some(&inbox), payload),
            Err(_) => 0,
        };
        async move {
            let mut sub = sub.ok()?;
            if delivered == 0 {
                return None;
            }
            match tokio::time::timeout(timeout, sub.next()).await {
                Ok(Some(m)) if !is_no_responders(&m) => Some(m.payload),
                _ => None,
            }
        }
        .boxed()
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }

    fn origin_open(&self, origin: u64) -> bool {
        origin == self.conn.id() || self.conn.is_tcp_connection_open(origin)
    }
}

fn is_no_responders(m: &stan_embedded_nats::Message) -> bool {
    m.headers
        .as_ref()
        .is_some_and(|h| h.starts_with(b"NATS/1.0 503"))
}

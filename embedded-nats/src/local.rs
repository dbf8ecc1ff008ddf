//! In-process connections: subscribe and publish without TCP or encoding.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::message::{Message, Outgoing};
use crate::outbound::Producer;
use crate::server::ServerInner;
use crate::sublist::{is_valid_queue, is_valid_sub_subject};
use crate::subscription::{Subscription, Target};

/// An in-process connection. Cheap to clone. Echo is on: it receives its own publishes when
/// subscribed.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use stan_embedded_nats::{Server, ServerOptions};
/// let server = Server::start(ServerOptions { port: 0, ..Default::default() }).await?;
/// let conn = server.connect_local("engine");
/// let mut sub = conn.subscribe("greet.*", None)?;
/// assert_eq!(conn.publish("greet.joe", None, "hi".into()), 1);
/// let msg = sub.next().await.unwrap();
/// assert_eq!(msg.subject, "greet.joe");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LocalConnection {
    server: Arc<ServerInner>,
    id: u64,
    name: Arc<str>,
}

impl std::fmt::Debug for LocalConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConnection")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl LocalConnection {
    pub(crate) fn new(server: Arc<ServerInner>, name: &str) -> Self {
        let id = server.next_id();
        LocalConnection {
            server,
            id,
            name: name.into(),
        }
    }

    /// Name given at creation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Server-wide id of this connection (what [`Message::publisher`] holds for its
    /// publishes).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True while the TCP connection with server-wide id `id` is open.
    pub fn is_tcp_connection_open(&self, id: u64) -> bool {
        crate::sublist::lock(&self.server.clients).contains_key(&id)
    }

    fn register(
        &self,
        subject: &str,
        queue: Option<&str>,
        target: Target,
    ) -> Result<Arc<Subscription>, Error> {
        if !is_valid_sub_subject(subject) {
            return Err(Error::InvalidSubject(subject.to_string()));
        }
        if let Some(q) = queue {
            if !is_valid_queue(q) {
                return Err(Error::InvalidSubject(q.to_string()));
            }
        }
        let sub = Arc::new(Subscription::new(
            self.server.next_id(),
            self.id,
            subject,
            queue,
            target,
        ));
        self.server.sublist.insert(sub.clone())?;
        Ok(sub)
    }

    /// Registers a subscription synchronously: when this returns, every later publish (from any
    /// TCP or local connection) that matches is routed to it. Wildcards and queue groups as in
    /// core NATS. Error on an invalid subject (or server shut down).
    pub fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<LocalSubscription, Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let sub = self.register(subject, queue, Target::Channel(tx))?;
        Ok(LocalSubscription {
            rx,
            subject: subject.to_string(),
            _guard: Guard {
                server: self.server.clone(),
                sub: Arc::downgrade(&sub),
            },
        })
    }

    /// Like [`subscribe`](Self::subscribe), but each matching message is handed to `handler`
    /// synchronously on the publisher's path (must be cheap and never block — e.g. push into
    /// an unbounded channel).
    pub fn subscribe_with(
        &self,
        subject: &str,
        queue: Option<&str>,
        handler: Arc<dyn Fn(Message) + Send + Sync>,
    ) -> Result<SubscriptionHandle, Error> {
        let sub = self.register(subject, queue, Target::Handler(handler))?;
        Ok(SubscriptionHandle {
            _guard: Guard {
                server: self.server.clone(),
                sub: Arc::downgrade(&sub),
            },
        })
    }

    /// Routes a message synchronously to every matching subscription (TCP connections'
    /// outbound buffers, local subscriptions). Returns how many subscriptions received it
    /// (0 = no one is listening).
    ///
    /// Never blocks: a TCP connection whose unsent backlog would exceed
    /// [`ServerOptions::max_pending_in_process`](crate::ServerOptions::max_pending_in_process)
    /// is closed as a slow consumer instead (and does not count as a delivery).
    pub fn publish(&self, subject: &str, reply: Option<&str>, payload: Bytes) -> usize {
        self.publish_with_headers(subject, reply, None, payload)
    }

    /// Like [`publish`](Self::publish), with an optional raw header block (starting with
    /// `NATS/1.0`).
    pub fn publish_with_headers(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) -> usize {
        let msg = Outgoing {
            subject,
            reply,
            headers: headers.as_ref(),
            payload: &payload,
            publisher: self.id,
        };
        self.server.route(&msg, self.id, true, Producer::InProcess)
    }

    /// True when at least one subscription (any connection) would receive a publish on
    /// `subject`.
    pub fn has_interest(&self, subject: &str) -> bool {
        let result = self.server.sublist.matches(subject);
        result.psubs.iter().any(|s| s.is_live())
            || result
                .qsubs
                .iter()
                .any(|(_, g)| g.iter().any(|s| s.is_live()))
    }
}

/// Removes its subscription when dropped.
struct Guard {
    server: Arc<ServerInner>,
    sub: Weak<Subscription>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(sub) = self.sub.upgrade() {
            self.server.remove_sub(&sub);
        }
    }
}

/// Stream of messages of a local subscription (unbounded queue: nothing is ever dropped).
/// Dropping it unsubscribes.
pub struct LocalSubscription {
    rx: mpsc::UnboundedReceiver<Message>,
    subject: String,
    _guard: Guard,
}

impl std::fmt::Debug for LocalSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSubscription")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl LocalSubscription {
    /// Next message; `None` after unsubscribe or server shutdown (once queued messages are
    /// drained).
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await
    }

    /// Next queued message, if any, without waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }

    /// Removes the subscription.
    pub fn unsubscribe(self) {
        drop(self);
    }

    /// Subject subscribed to.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl futures::Stream for LocalSubscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

/// Handle of a [`LocalConnection::subscribe_with`] subscription; dropping it (or calling
/// [`unsubscribe`](Self::unsubscribe)) removes the subscription.
pub struct SubscriptionHandle {
    _guard: Guard,
}

impl std::fmt::Debug for SubscriptionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionHandle").finish_non_exhaustive()
    }
}

impl SubscriptionHandle {
    /// Removes the subscription.
    pub fn unsubscribe(self) {
        drop(self);
    }
}

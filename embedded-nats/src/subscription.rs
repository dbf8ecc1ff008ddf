//! A subscription as stored in the subject index, and delivery to its target.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::message::{Message, Outgoing};
use crate::outbound::{ClientShared, Enqueued, Producer};
use crate::stats::SubscriptionInfo;

/// Handler of a `subscribe_with` subscription.
pub(crate) type Handler = Arc<dyn Fn(Message) + Send + Sync>;

/// Where a subscription's messages go.
pub(crate) enum Target {
    /// A TCP connection's outbound buffer, under the client-chosen sid.
    Tcp {
        client: Arc<ClientShared>,
        sid: Bytes,
    },
    /// An in-process stream.
    Channel(mpsc::UnboundedSender<Message>),
    /// An in-process callback.
    Handler(Handler),
}

/// Outcome of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Not delivered (closed, limit reached, or target gone).
    Skipped,
    /// Delivered.
    Delivered,
    /// Delivered, and this was the last message allowed by an auto-unsubscribe limit.
    DeliveredLast,
}

/// A subscription.
pub(crate) struct Subscription {
    /// Server-wide unique id.
    pub id: u64,
    /// Id of the owning connection (TCP or local).
    pub conn_id: u64,
    /// Subject (may contain wildcards).
    pub subject: Box<str>,
    /// Queue group, if any.
    pub queue: Option<Box<str>>,
    /// Destination.
    pub target: Target,
    closed: AtomicBool,
    delivered: AtomicU64,
    max: AtomicU64,
}

impl Subscription {
    /// Creates a subscription without a delivery limit.
    pub(crate) fn new(
        id: u64,
        conn_id: u64,
        subject: &str,
        queue: Option<&str>,
        target: Target,
    ) -> Self {
        Subscription {
            id,
            conn_id,
            subject: subject.into(),
            queue: queue.map(Into::into),
            target,
            closed: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            max: AtomicU64::new(u64::MAX),
        }
    }

    /// Marks the subscription closed: no further delivery happens.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Sets an auto-unsubscribe limit. Returns true when the limit is already reached (the
    /// caller must then remove the subscription).
    pub(crate) fn set_max(&self, max: u64) -> bool {
        if self.delivered.load(Ordering::Acquire) >= max {
            self.close();
            return true;
        }
        self.max.store(max, Ordering::Release);
        if self.delivered.load(Ordering::Acquire) >= max {
            self.close();
            return true;
        }
        false
    }

    /// Messages delivered so far (for monitoring).
    pub(crate) fn delivered(&self) -> u64 {
        let max = self.max.load(Ordering::Relaxed);
        self.delivered.load(Ordering::Relaxed).min(max)
    }

    /// The auto-unsubscribe limit, if one is set (for monitoring).
    pub(crate) fn max(&self) -> Option<u64> {
        let max = self.max.load(Ordering::Relaxed);
        (max != u64::MAX).then_some(max)
    }

    /// The subscription as monitoring reports it.
    pub(crate) fn info(&self) -> SubscriptionInfo {
        let sid = match &self.target {
            Target::Tcp { sid, .. } => String::from_utf8_lossy(sid).into_owned(),
            _ => self.id.to_string(),
        };
        SubscriptionInfo {
            subject: self.subject.to_string(),
            queue: self.queue.as_deref().map(str::to_string),
            sid,
            msgs: self.delivered(),
            max: self.max(),
            cid: self.conn_id,
        }
    }

    /// True if the subscription would currently accept a delivery.
    pub(crate) fn is_live(&self) -> bool {
        !self.is_closed()
            && self.delivered.load(Ordering::Acquire) < self.max.load(Ordering::Acquire)
            && match &self.target {
                Target::Tcp { client, .. } => !client.is_closed(),
                Target::Channel(tx) => !tx.is_closed(),
                Target::Handler(_) => true,
            }
    }

    /// Delivers a message of `from`. An in-process target gets its own [`Message`] (built
    /// here: building costs the same as cloning a cached one, and the usual single in-process
    /// target then pays for one copy of the subjects, not two). A TCP target over its stall
    /// mark is added (once) to a TCP producer's list.
    pub(crate) fn deliver(&self, msg: &Outgoing<'_>, from: &mut Producer<'_>) -> Delivery {
        if self.is_closed() {
            return Delivery::Skipped;
        }
        let max = self.max.load(Ordering::Acquire);
        let n = self
            .delivered
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if n > max {
            return Delivery::Skipped;
        }
        let ok = match &self.target {
            Target::Tcp { client, sid } => {
                match client.enqueue_msg(msg, sid, matches!(from, Producer::InProcess)) {
                    Enqueued::Queued => true,
                    Enqueued::Stall => {
                        if let Producer::Tcp(Some(stalled)) = from {
                            if !stalled.iter().any(|c| c.cid == client.cid) {
                                stalled.push(client.clone());
                            }
                        }
                        true
                    }
                    Enqueued::Dropped => false,
                }
            }
            Target::Channel(tx) => tx.send(msg.to_message()).is_ok(),
            Target::Handler(h) => {
                let m = msg.to_message();
                // A panicking handler must not take the publisher (e.g. a TCP reader) down.
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(m)));
                if res.is_err() {
                    tracing::error!(subject = %self.subject, "subscription handler panicked");
                }
                res.is_ok()
            }
        };
        if !ok {
            return Delivery::Skipped;
        }
        if n == max {
            self.close();
            Delivery::DeliveredLast
        } else {
            Delivery::Delivered
        }
    }
}

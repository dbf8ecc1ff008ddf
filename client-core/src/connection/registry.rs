//! The subscriptions the connection task knows.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_nats::Subject;
use tokio::sync::{mpsc, oneshot};

use crate::acked::AckedLog;
use crate::command::{Delivery, SubSpec};
use crate::error::Result;
use crate::options::StartPosition;

/// A subscription as the task knows it.
pub(super) struct SubEntry {
    pub(super) spec: SubSpec,
    /// The application's acks (shared with the subscription).
    pub(super) acked: Arc<AckedLog>,
    pub(super) tx: mpsc::UnboundedSender<Delivery>,
    /// Bumped for every SubscriptionRequest; deliveries to an older inbox are dropped.
    pub(super) gen: u64,
    /// Ack inbox of the current server-side subscription (None while (re)subscribing).
    pub(super) ack_inbox: Option<Subject>,
    /// Reply to the application's subscribe call, until the server confirmed.
    pub(super) pending_reply: Option<oneshot::Sender<Result<()>>>,
    /// Acks made while there was no ack inbox.
    pub(super) queued_acks: Vec<u64>,
    /// Delivered, not yet acked.
    pub(super) unacked: BTreeSet<u64>,
    /// Sequence of the last first-time delivery.
    pub(super) last_received: u64,
    pub(super) resubscribe_attempts: u32,
}

impl SubEntry {
    /// Where a non-durable subscription restarts after a resume.
    pub(super) fn resume_start(&self) -> StartPosition {
        match self.unacked.first() {
            Some(seq) => StartPosition::Sequence(*seq),
            None if self.last_received > 0 => StartPosition::Sequence(self.last_received + 1),
            None => self.spec.start,
        }
    }
}

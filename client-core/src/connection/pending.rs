//! The pending-ack table: publishes on the wire awaiting their PubAck.

use std::collections::{HashMap, VecDeque};

use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::error::Result;

/// A publish awaiting its PubAck.
pub(crate) struct PendingPub {
    pub(crate) tx: oneshot::Sender<Result<String>>,
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// Publishes awaiting PubAcks, with their deadlines in publish order (the ack wait is the same
/// for all, so the front always expires first).
#[derive(Default)]
pub(crate) struct PendingPubs {
    /// Epoch of the session accepting publishes (0: none).
    pub(crate) epoch: u64,
    pub(crate) map: HashMap<String, PendingPub>,
    pub(crate) order: VecDeque<(Instant, String)>,
}

impl PendingPubs {
    pub(super) fn remove(&mut self, guid: &str) -> Option<PendingPub> {
        let entry = self.map.remove(guid);
        while let Some((_, g)) = self.order.front() {
            if self.map.contains_key(g) {
                break;
            }
            self.order.pop_front();
        }
        entry
    }
}

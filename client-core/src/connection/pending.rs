//! The pending-ack table: publishes on the wire awaiting their PubAck.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::task::AtomicWaker;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::lock::lock;

/// A publish awaiting its PubAck.
pub(crate) struct PendingPub {
    pub(crate) tx: AckTx,
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// Where the outcome of one publish goes.
pub(crate) enum AckTx {
    /// Its own future ([`PublishAckFuture`](crate::PublishAckFuture)).
    One(oneshot::Sender<Result<String>>),
    /// Its place in a batch ([`PublishBatch`](crate::PublishBatch)).
    Batch(BatchSlot),
}

impl AckTx {
    /// Deliver the outcome; false when nobody waits for it any more.
    pub(crate) fn send(self, outcome: Result<String>) -> bool {
        match self {
            AckTx::One(tx) => tx.send(outcome).is_ok(),
            AckTx::Batch(slot) => slot.complete(outcome),
        }
    }
}

/// The outcomes of a batch of publishes, collected in one queue: whoever completes one wakes
/// the reader only if it is waiting, so a burst of acks costs one wake-up.
#[derive(Default)]
pub(crate) struct BatchAcks {
    done: Mutex<Vec<(usize, Result<String>)>>,
    waker: AtomicWaker,
}

impl BatchAcks {
    fn push(&self, index: usize, outcome: Result<String>) {
        lock(&self.done).push((index, outcome));
        self.waker.wake();
    }

    /// Every outcome delivered since the last call, registering `waker` first so that one
    /// delivered meanwhile wakes it.
    pub(crate) fn take(&self, waker: &std::task::Waker) -> Vec<(usize, Result<String>)> {
        self.waker.register(waker);
        std::mem::take(&mut *lock(&self.done))
    }
}

/// One publish's place in a [`BatchAcks`]. Dropped without an outcome (the client went away
/// first), it reports the client closed, so a batch always completes.
pub(crate) struct BatchSlot {
    acks: Option<Arc<BatchAcks>>,
    index: usize,
}

impl BatchSlot {
    pub(crate) fn new(acks: Arc<BatchAcks>, index: usize) -> Self {
        BatchSlot {
            acks: Some(acks),
            index,
        }
    }

    /// Deliver the outcome (always taken: the batch keeps its queue).
    pub(crate) fn complete(mut self, outcome: Result<String>) -> bool {
        if let Some(acks) = self.acks.take() {
            acks.push(self.index, outcome);
        }
        true
    }
}

impl Drop for BatchSlot {
    fn drop(&mut self) {
        if let Some(acks) = self.acks.take() {
            acks.push(self.index, Err(Error::closed()));
        }
    }
}

/// Publishes awaiting PubAcks, with their deadlines in publish order (the ack wait is the same
/// for all, so the front always expires first).
#[derive(Default)]
pub(crate) struct PendingPubs {
    /// Epoch of the session accepting publishes (0: none).
    pub(crate) epoch: u64,
    pub(crate) map: HashMap<String, PendingPub>,
    pub(crate) order: VecDeque<(Instant, String)>,
    /// The task's pub-ack timer is set at or before the deadline of every entry, present or
    /// added later, or a publisher has asked the task to set it. While it is, publishers do
    /// not wake the task (an awaited publish would otherwise wake it on every call, since the
    /// table is empty before each one).
    pub(crate) timer_armed: bool,
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

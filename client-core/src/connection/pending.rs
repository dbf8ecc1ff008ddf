//! The pending-ack table: publishes on the wire awaiting their PubAck.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::task::AtomicWaker;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::lock::lock;

/// A publish awaiting its PubAck.
pub(crate) struct PendingPub {
    pub(crate) tx: AckTx,
    pub(crate) _permit: OwnedSemaphorePermit,
    /// What a resume re-sends: kept when the session's server de-duplicates re-sent guids.
    pub(crate) resend: Option<Resend>,
}

/// A publish as a resume re-sends it (with its original guid).
pub(crate) struct Resend {
    pub(crate) channel: String,
    pub(crate) payload: Bytes,
    /// When it was first put on the wire.
    pub(crate) first_sent: Instant,
}

/// Share of the server's de-duplication window within which a publish is still re-sent: a
/// publish first sent earlier than that may have been forgotten by the server by the time
/// the re-send arrives, and fails as lost instead (it may or may not be stored).
const RESEND_WITHIN: (u32, u32) = (9, 10);

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
    /// Epoch of the session for which a refused connID already triggered a ping.
    pub(crate) conn_probe_epoch: u64,
}

impl PendingPubs {
    /// The entry a PubAck completes; `None` when there is none, or when the PubAck refuses
    /// the publish's connID (`unknown_conn`) and the publish can be re-sent: the server no
    /// longer knows the session it was sent in, so the entry stays for the resume to re-send
    /// it (or for its timeout).
    pub(super) fn take_for_ack(&mut self, guid: &str, unknown_conn: bool) -> Option<PendingPub> {
        if unknown_conn && self.map.get(guid).is_some_and(|p| p.resend.is_some()) {
            return None;
        }
        self.remove(guid)
    }

    /// The session was lost while its server de-duplicates: stop accepting publishes for it
    /// and keep the entries that can be re-sent (returns the others, to fail them).
    pub(super) fn suspend(&mut self) -> Vec<PendingPub> {
        self.epoch = 0;
        let gone: Vec<String> = self
            .map
            .iter()
            .filter(|(_, p)| p.resend.is_none())
            .map(|(g, _)| g.clone())
            .collect();
        let failed = gone.iter().filter_map(|g| self.map.remove(g)).collect();
        let map = &self.map;
        self.order.retain(|(_, g)| map.contains_key(g));
        failed
    }

    /// A new session whose server de-duplicates within `window` (zero: not at all): the
    /// kept entries to re-send, in publish order, as `(guid, channel, payload)`, each with the
    /// new `deadline`; and the entries that cannot be re-sent safely, removed, to fail.
    pub(super) fn take_resends(
        &mut self,
        window: Duration,
        deadline: Instant,
    ) -> (Vec<(String, String, Bytes)>, Vec<PendingPub>) {
        let now = Instant::now();
        let limit = window * RESEND_WITHIN.0 / RESEND_WITHIN.1;
        let mut resend = Vec::new();
        let mut failed = Vec::new();
        let mut order = VecDeque::with_capacity(self.order.len());
        for (_, guid) in std::mem::take(&mut self.order) {
            let Some(p) = self.map.get(&guid) else {
                continue;
            };
            match &p.resend {
                Some(r) if now.saturating_duration_since(r.first_sent) < limit => {
                    resend.push((guid.clone(), r.channel.clone(), r.payload.clone()));
                    order.push_back((deadline, guid));
                }
                _ => failed.extend(self.map.remove(&guid)),
            }
        }
        self.order = order;
        (resend, failed)
    }

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

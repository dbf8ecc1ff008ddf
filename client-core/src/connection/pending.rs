//! The pending-ack table: publishes on the wire awaiting their PubAck.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::task::AtomicWaker;
use prost::Message as _;
use rustc_hash::FxHashMap;
use stan_protocol::pb;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::lock::lock;

/// A publish guid: a 22-character nuid, held inline (copied, hashed and compared without
/// touching the heap).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Guid([u8; nuid::TOTAL_LEN]);

impl Guid {
    /// A new unique guid.
    pub(crate) fn new() -> Self {
        Guid(nuid::next().into_bytes())
    }

    /// The guid of a PubAck; `None` when it cannot be one of ours.
    pub(crate) fn parse(guid: &str) -> Option<Self> {
        guid.as_bytes().try_into().ok().map(Guid)
    }

    /// The guid as sent.
    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII: made by `new` or checked by `parse` (from a `str`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A publish awaiting its PubAck.
pub(crate) struct PendingPub {
    pub(crate) tx: AckTx,
    pub(crate) _permit: OwnedSemaphorePermit,
    /// What a resume re-sends: kept when the session's server de-duplicates re-sent guids.
    pub(crate) resend: Option<Resend>,
}

/// A publish as a resume re-sends it (with its original guid).
pub(crate) struct Resend {
    /// The `PubMsg` as first sent (a resume puts in the new connID).
    pub(crate) msg: Bytes,
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

/// How many entries at the front of [`PendingPubs`] a PubAck's guid is compared with before
/// the table consults (and extends) its index: PubAcks come back in publish order, so nearly
/// every one completes the front entry, and a publish that overtook another is found within a
/// few places.
const NEAR: usize = 32;

/// Publishes awaiting PubAcks, with their deadlines in publish order (the ack wait is the same
/// for all, so the front always expires first).
///
/// A PubAck is matched by comparing its guid with the entries at the front, which costs no
/// hashing for acks that come back in order. Only an ack found nowhere near the front (acks
/// out of order, or the ack of an entry already gone) builds an index of the entries not yet
/// indexed, so each entry is hashed at most once however the acks arrive.
#[derive(Default)]
pub(crate) struct PendingPubs {
    /// Epoch of the session accepting publishes (0: none).
    pub(crate) epoch: u64,
    /// The entries in publish order: `order[i]` is place `first + i`, `None` once its entry is
    /// gone. The front is always an entry still present (or the queue is empty), so finding
    /// the earliest deadline after an ack looks nothing up.
    order: VecDeque<Option<Slot>>,
    /// The place of `order[0]`.
    first: u64,
    /// The place of every entry present placed before `indexed_to` (built on demand).
    index: FxHashMap<Guid, u64>,
    /// Entries placed from here on are not in `index`.
    indexed_to: u64,
    /// The task's pub-ack timer is set at or before the deadline of every entry, present or
    /// added later, or a publisher has asked the task to set it. While it is, publishers do
    /// not wake the task (an awaited publish would otherwise wake it on every call, since the
    /// table is empty before each one).
    pub(crate) timer_armed: bool,
    /// Epoch of the session for which a refused connID already triggered a ping.
    pub(crate) conn_probe_epoch: u64,
}

/// An entry of [`PendingPubs`].
struct Slot {
    deadline: Instant,
    guid: Guid,
    entry: PendingPub,
}

impl PendingPubs {
    /// Adds a publish put on the wire now, expiring at `deadline` (no earlier than the
    /// deadline of any entry present).
    pub(crate) fn insert(&mut self, guid: Guid, deadline: Instant, entry: PendingPub) {
        self.order.push_back(Some(Slot {
            deadline,
            guid,
            entry,
        }));
    }

    /// The earliest deadline of an entry present.
    pub(crate) fn front_deadline(&self) -> Option<Instant> {
        self.order.front()?.as_ref().map(|s| s.deadline)
    }

    /// Removes and returns the entry with the earliest deadline if that deadline is not
    /// after `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<PendingPub> {
        let front = self.order.front()?.as_ref()?;
        if front.deadline > now {
            return None;
        }
        self.take_at(0)
    }

    /// Removes every entry (and stops accepting publishes).
    pub(crate) fn drain_all(&mut self) -> Vec<PendingPub> {
        self.epoch = 0;
        self.reset_places();
        std::mem::take(&mut self.order)
            .into_iter()
            .flatten()
            .map(|s| s.entry)
            .collect()
    }

    /// The entry a PubAck completes; `None` when there is none, or when the PubAck refuses
    /// the publish's connID (`unknown_conn`) and the publish can be re-sent: the server no
    /// longer knows the session it was sent in, so the entry stays for the resume to re-send
    /// it (or for its timeout).
    pub(super) fn take_for_ack(&mut self, guid: &str, unknown_conn: bool) -> Option<PendingPub> {
        let i = self.find(&Guid::parse(guid)?)?;
        let resendable = || self.order.get(i)?.as_ref()?.entry.resend.as_ref();
        if unknown_conn && resendable().is_some() {
            return None;
        }
        self.take_at(i)
    }

    /// The session was lost while its server de-duplicates: stop accepting publishes for it
    /// and keep the entries that can be re-sent (returns the others, to fail them).
    pub(super) fn suspend(&mut self) -> Vec<PendingPub> {
        self.epoch = 0;
        let gone: Vec<Guid> = self
            .order
            .iter()
            .flatten()
            .filter(|s| s.entry.resend.is_none())
            .map(|s| s.guid)
            .collect();
        gone.iter().filter_map(|g| self.remove(g)).collect()
    }

    /// A new session whose server de-duplicates within `window` (zero: not at all): the
    /// kept entries to re-send, in publish order, as `(guid, PubMsg as first sent)`, each with
    /// the new `deadline`; and the entries that cannot be re-sent safely, removed, to fail.
    pub(super) fn take_resends(
        &mut self,
        window: Duration,
        deadline: Instant,
    ) -> (Vec<(Guid, pb::PubMsg)>, Vec<PendingPub>) {
        let now = Instant::now();
        let limit = window * RESEND_WITHIN.0 / RESEND_WITHIN.1;
        let mut resend = Vec::new();
        let mut failed = Vec::new();
        let old = std::mem::take(&mut self.order);
        self.reset_places();
        for Slot { guid, entry: p, .. } in old.into_iter().flatten() {
            let msg = match &p.resend {
                Some(r) if now.saturating_duration_since(r.first_sent) < limit => {
                    pb::PubMsg::decode(r.msg.clone()).ok()
                }
                _ => None,
            };
            match msg {
                Some(msg) => {
                    resend.push((guid, msg));
                    self.insert(guid, deadline, p);
                }
                None => failed.push(p),
            }
        }
        (resend, failed)
    }

    /// Removes the entry of `guid`.
    pub(super) fn remove(&mut self, guid: &Guid) -> Option<PendingPub> {
        let i = self.find(guid)?;
        self.take_at(i)
    }

    /// The position in `order` of the entry of `guid`: among the first [`NEAR`] by comparison,
    /// elsewhere through the index (extended first to every entry placed since it was last).
    fn find(&mut self, guid: &Guid) -> Option<usize> {
        let is = |s: &Option<Slot>| s.as_ref().is_some_and(|s| s.guid == *guid);
        if let Some(i) = self.order.iter().take(NEAR).position(is) {
            return Some(i);
        }
        if self.order.len() <= NEAR {
            return None;
        }
        let end = self.first + self.order.len() as u64;
        for place in self.indexed_to.max(self.first)..end {
            if let Some(Some(s)) = self.index_of(place).and_then(|i| self.order.get(i)) {
                self.index.insert(s.guid, place);
            }
        }
        self.indexed_to = end;
        let i = self.index_of(*self.index.get(guid)?)?;
        self.order.get(i).is_some_and(is).then_some(i)
    }

    fn index_of(&self, place: u64) -> Option<usize> {
        usize::try_from(place.checked_sub(self.first)?).ok()
    }

    /// Takes the entry at position `i` of `order`, dropping the gone places at the front.
    fn take_at(&mut self, i: usize) -> Option<PendingPub> {
        let slot = self.order.get_mut(i)?.take()?;
        if self.first + (i as u64) < self.indexed_to {
            self.index.remove(&slot.guid);
        }
        while let Some(None) = self.order.front() {
            self.order.pop_front();
            self.first += 1;
        }
        Some(slot.entry)
    }

    /// Forgets every place (the entries are gone or about to be placed anew).
    fn reset_places(&mut self) {
        self.first = 0;
        self.indexed_to = 0;
        self.index.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{oneshot, Semaphore};

    use super::*;

    fn entry(permits: &Arc<Semaphore>) -> (PendingPub, oneshot::Receiver<Result<String>>) {
        let (tx, rx) = oneshot::channel();
        let permit = permits.clone().try_acquire_owned().unwrap();
        let p = PendingPub {
            tx: AckTx::One(tx),
            _permit: permit,
            resend: None,
        };
        (p, rx)
    }

    #[test]
    fn acks_in_any_order_keep_the_earliest_deadline_of_what_is_left() {
        let permits = Arc::new(Semaphore::new(100));
        let mut table = PendingPubs::default();
        let t0 = Instant::now();
        let guids: Vec<Guid> = (0..5).map(|_| Guid::new()).collect();
        for (i, g) in guids.iter().enumerate() {
            table.insert(*g, t0 + Duration::from_secs(i as u64), entry(&permits).0);
        }
        assert_eq!(permits.available_permits(), 95);
        assert_eq!(table.front_deadline(), Some(t0));
        // Out of order: the front stays until it goes itself.
        assert!(table.take_for_ack(guids[2].as_str(), false).is_some());
        assert!(table.take_for_ack(guids[2].as_str(), false).is_none());
        assert_eq!(table.front_deadline(), Some(t0));
        assert!(table.take_for_ack(guids[0].as_str(), false).is_some());
        assert!(table.take_for_ack(guids[1].as_str(), false).is_some());
        assert_eq!(table.front_deadline(), Some(t0 + Duration::from_secs(3)));
        assert!(table.take_for_ack("not a guid", false).is_none());
        // Expiry takes the front only once its deadline has passed.
        assert!(table.pop_expired(t0 + Duration::from_secs(2)).is_none());
        assert!(table.pop_expired(t0 + Duration::from_secs(3)).is_some());
        assert_eq!(table.front_deadline(), Some(t0 + Duration::from_secs(4)));
        // New entries after the front went keep their places.
        let g = Guid::new();
        table.insert(g, t0 + Duration::from_secs(9), entry(&permits).0);
        assert!(table.take_for_ack(guids[4].as_str(), false).is_some());
        assert_eq!(table.front_deadline(), Some(t0 + Duration::from_secs(9)));
        assert!(table.remove(&g).is_some());
        assert_eq!(table.front_deadline(), None);
        assert_eq!(permits.available_permits(), 100);
    }

    #[test]
    fn suspend_keeps_only_resendable_entries_in_order() {
        let permits = Arc::new(Semaphore::new(100));
        let mut table = PendingPubs::default();
        let t0 = Instant::now();
        let mut kept = Vec::new();
        for i in 0..6u64 {
            let g = Guid::new();
            let (mut p, _) = entry(&permits);
            if i % 2 == 0 {
                let msg = pb::PubMsg {
                    guid: g.to_string(),
                    subject: format!("ch{i}"),
                    ..Default::default()
                };
                p.resend = Some(Resend {
                    msg: msg.encode_to_vec().into(),
                    first_sent: t0,
                });
                kept.push((g, format!("ch{i}")));
            }
            table.insert(g, t0 + Duration::from_secs(i), p);
        }
        assert_eq!(table.suspend().len(), 3);
        let later = t0 + Duration::from_secs(60);
        let (resend, failed) = table.take_resends(Duration::from_secs(3600), later);
        assert!(failed.is_empty());
        let got: Vec<(Guid, String)> = resend.into_iter().map(|(g, m)| (g, m.subject)).collect();
        assert_eq!(got, kept);
        assert_eq!(table.front_deadline(), Some(later));
        // Outside a zero window: all fail.
        let (resend, failed) = table.take_resends(Duration::ZERO, later);
        assert!(resend.is_empty());
        assert_eq!(failed.len(), 3);
        assert_eq!(table.front_deadline(), None);
    }

    /// Tags each entry with its number through a batch slot, so a test can tell which entry
    /// a lookup took.
    fn tagged(permits: &Arc<Semaphore>, acks: &Arc<BatchAcks>, tag: usize) -> PendingPub {
        PendingPub {
            tx: AckTx::Batch(BatchSlot::new(acks.clone(), tag)),
            _permit: permits.clone().try_acquire_owned().unwrap(),
            resend: None,
        }
    }

    fn tag_of(acks: &BatchAcks, p: PendingPub) -> usize {
        assert!(p.tx.send(Ok(String::new())));
        let done = acks.take(futures::task::noop_waker_ref());
        assert_eq!(done.len(), 1);
        done[0].0
    }

    #[test]
    fn acks_out_of_order_far_from_the_front_find_their_entries_and_the_index_stays_small() {
        let permits = Arc::new(Semaphore::new(100_000));
        let acks = Arc::new(BatchAcks::default());
        let mut table = PendingPubs::default();
        let t0 = Instant::now();
        // A model: the tags present, in publish order.
        let mut model: Vec<(Guid, usize)> = Vec::new();
        let mut next_tag = 0;
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for step in 0..20_000 {
            match rand(10) {
                0..=2 => {
                    for _ in 0..rand(4) + 1 {
                        let g = Guid::new();
                        table.insert(g, t0, tagged(&permits, &acks, next_tag));
                        model.push((g, next_tag));
                        next_tag += 1;
                    }
                }
                3..=6 if !model.is_empty() => {
                    // Mostly in order, sometimes anywhere (far past the front).
                    let i = if rand(4) == 0 { rand(model.len()) } else { 0 };
                    let (g, tag) = model.remove(i);
                    let p = table.take_for_ack(g.as_str(), false).expect("present");
                    assert_eq!(tag_of(&acks, p), tag, "step {step}");
                    assert!(table.take_for_ack(g.as_str(), false).is_none());
                }
                7 => assert!(table.take_for_ack(Guid::new().as_str(), false).is_none()),
                8 if !model.is_empty() => {
                    let (g, tag) = model.remove(model.len() - 1);
                    assert_eq!(tag_of(&acks, table.remove(&g).expect("present")), tag);
                }
                _ => {
                    if let Some(p) = table.pop_expired(t0) {
                        assert_eq!(tag_of(&acks, p), model.remove(0).1, "step {step}");
                    }
                }
            }
            assert!(table.order.front().is_none_or(|s| s.is_some()));
            if step % 64 == 0 {
                let present = table.order.iter().flatten().count();
                assert_eq!(present, model.len());
                assert!(table.index.len() <= present, "step {step}");
            }
        }
        let left = table.drain_all().len();
        assert_eq!(left, model.len());
        assert!(table.index.is_empty());
    }
}

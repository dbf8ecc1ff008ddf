//! The subscription log of one channel: create / update / delete / pending / ack /
//! redelivered records, compacted by rewrite when fragmented.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use prost::Message;

use super::log::{read_log, LogFile, LogRead};
use super::record::{sub_op, SubPb, MAGIC_SUBS};
use super::{io_err, lock, CompactOptions, Shared};
use crate::store::{RecoveredSub, StoreResult, SubRecord, SubStore};

fn to_pb(r: &SubRecord) -> SubPb {
    SubPb {
        id: r.id,
        client_id: r.client_id.clone(),
        q_group: r.q_group.clone(),
        inbox: r.inbox.clone(),
        ack_inbox: r.ack_inbox.clone(),
        max_in_flight: r.max_in_flight,
        ack_wait_in_secs: r.ack_wait_in_secs,
        durable_name: r.durable_name.clone(),
        last_sent: r.last_sent,
        is_durable: r.is_durable,
        is_closed: r.is_closed,
    }
}

fn from_pb(p: SubPb) -> SubRecord {
    SubRecord {
        id: p.id,
        client_id: p.client_id,
        q_group: p.q_group,
        inbox: p.inbox,
        ack_inbox: p.ack_inbox,
        max_in_flight: p.max_in_flight,
        ack_wait_in_secs: p.ack_wait_in_secs,
        durable_name: p.durable_name,
        last_sent: p.last_sent,
        is_durable: p.is_durable,
        is_closed: p.is_closed,
    }
}

/// Whether a body looks like a subscription record (used to resynchronise after corruption).
pub(crate) fn accept(body: &[u8]) -> bool {
    match body.first() {
        Some(&sub_op::CREATE) | Some(&sub_op::UPDATE) => body.len() > 1,
        Some(&sub_op::DELETE) => body.len() == 9,
        Some(&sub_op::PENDING) | Some(&sub_op::ACK) => body.len() == 17,
        Some(&sub_op::REDELIVERED) => body.len() == 21,
        _ => false,
    }
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

/// Pending sequences of one subscription with their redelivery counts (0: never redelivered).
pub(crate) type Pending = BTreeMap<u64, u32>;

/// Subscriptions and pending sequences, as replayed from a log.
pub(crate) type SubMap = HashMap<u64, (SubRecord, Pending)>;

/// Replays the records of a verified log.
pub(crate) fn replay(read: &LogRead) -> SubMap {
    let mut subs: SubMap = HashMap::new();
    for body in read.bodies() {
        let rest = &body[1..];
        match body[0] {
            sub_op::CREATE | sub_op::UPDATE => {
                if let Ok(p) = SubPb::decode(rest) {
                    let r = from_pb(p);
                    let e = subs
                        .entry(r.id)
                        .or_insert_with(|| (r.clone(), Pending::new()));
                    if body[0] == sub_op::CREATE {
                        e.1.clear();
                        e.0 = r;
                    } else {
                        let last_sent = e.0.last_sent.max(r.last_sent);
                        e.0 = r;
                        e.0.last_sent = last_sent;
                    }
                }
            }
            sub_op::DELETE => {
                subs.remove(&u64_at(rest, 0));
            }
            sub_op::PENDING => {
                if let Some((r, p)) = subs.get_mut(&u64_at(rest, 0)) {
                    let seq = u64_at(rest, 8);
                    p.entry(seq).or_insert(0);
                    r.last_sent = r.last_sent.max(seq);
                }
            }
            sub_op::ACK => {
                if let Some((_, p)) = subs.get_mut(&u64_at(rest, 0)) {
                    p.remove(&u64_at(rest, 8));
                }
            }
            sub_op::REDELIVERED => {
                if let Some((_, p)) = subs.get_mut(&u64_at(rest, 0)) {
                    if let Some(c) = p.get_mut(&u64_at(rest, 8)) {
                        *c = u32_at(rest, 16);
                    }
                }
            }
            _ => {}
        }
    }
    subs
}

/// The subscription log of one channel with its state in memory.
pub(crate) struct SubLog {
    log: LogFile,
    subs: SubMap,
    pending_total: u64,
    /// Pending sequences with a redelivery count (one more live record each).
    counted_total: u64,
    /// The channel was deleted: nothing is written any more.
    pub(crate) deleted: bool,
    /// Registered in the store's set of logs to flush.
    registered: bool,
    compact: CompactOptions,
}

impl SubLog {
    /// Takes the pending sequences of a removed or replaced subscription off the totals.
    fn forget(&mut self, p: &Pending) {
        self.pending_total -= p.len() as u64;
        self.counted_total -= p.values().filter(|c| **c > 0).count() as u64;
    }

    fn live(&self) -> u64 {
        self.subs.len() as u64 + self.pending_total + self.counted_total
    }

    /// Writes buffered records (compacting first when due); returns the file to sync.
    pub(crate) fn write(&mut self) -> std::io::Result<Option<Arc<std::fs::File>>> {
        self.registered = false;
        if self.deleted {
            return Ok(None);
        }
        if self.log.compaction_due(self.live(), &self.compact) {
            let mut recs = Vec::with_capacity(self.live() as usize);
            let mut ids: Vec<&u64> = self.subs.keys().collect();
            ids.sort();
            for id in ids {
                let (r, pending) = &self.subs[id];
                let mut b = vec![sub_op::CREATE];
                to_pb(r).encode(&mut b).map_err(std::io::Error::other)?;
                recs.push(b);
                for (seq, count) in pending {
                    let mut b = vec![sub_op::PENDING];
                    b.extend_from_slice(&id.to_le_bytes());
                    b.extend_from_slice(&seq.to_le_bytes());
                    if *count > 0 {
                        let mut r = b.clone();
                        r[0] = sub_op::REDELIVERED;
                        r.extend_from_slice(&count.to_le_bytes());
                        recs.push(b);
                        recs.push(r);
                    } else {
                        recs.push(b);
                    }
                }
            }
            let before = self.log.size();
            self.log.rewrite(&recs)?;
            tracing::debug!(
                before,
                after = self.log.size(),
                "subscription log compacted"
            );
            return Ok(None);
        }
        self.log.write_pending()
    }
}

/// The subscription store of one channel.
pub struct FileSubStore {
    inner: Arc<Mutex<SubLog>>,
    shared: Arc<Shared>,
}

impl FileSubStore {
    /// Creates an empty log in `dir`.
    pub(crate) fn create(
        dir: &Path,
        shared: Arc<Shared>,
        compact: CompactOptions,
    ) -> std::io::Result<FileSubStore> {
        let log = LogFile::create(&dir.join(super::SUBS_FILE), MAGIC_SUBS)?;
        Ok(Self::new(log, SubMap::new(), shared, compact))
    }

    /// A store over a recovered log.
    pub(crate) fn new(
        log: LogFile,
        subs: SubMap,
        shared: Arc<Shared>,
        compact: CompactOptions,
    ) -> FileSubStore {
        let pending_total = subs.values().map(|(_, p)| p.len() as u64).sum();
        let counted_total = subs
            .values()
            .map(|(_, p)| p.values().filter(|c| **c > 0).count() as u64)
            .sum();
        FileSubStore {
            inner: Arc::new(Mutex::new(SubLog {
                log,
                subs,
                pending_total,
                counted_total,
                deleted: false,
                registered: false,
                compact,
            })),
            shared,
        }
    }

    /// The shared log (the store marks it deleted with its channel).
    pub(crate) fn log(&self) -> Arc<Mutex<SubLog>> {
        self.inner.clone()
    }

    /// The recovered subscriptions, sorted by ID.
    pub(crate) fn recovered(&self) -> Vec<RecoveredSub> {
        let inner = lock(&self.inner);
        let mut v: Vec<RecoveredSub> = inner
            .subs
            .values()
            .map(|(r, p)| RecoveredSub {
                record: r.clone(),
                pending: p.keys().copied().collect(),
                redeliveries: p
                    .iter()
                    .filter(|(_, c)| **c > 0)
                    .map(|(s, c)| (*s, *c))
                    .collect(),
            })
            .collect();
        v.sort_by_key(|s| s.record.id);
        v
    }

    fn with(&mut self, f: impl FnOnce(&mut SubLog)) -> StoreResult<()> {
        let mut inner = lock(&self.inner);
        if inner.deleted {
            return Ok(());
        }
        f(&mut inner);
        if !inner.registered {
            inner.registered = true;
            lock(&self.shared.dirty_subs).push(self.inner.clone());
        }
        Ok(())
    }

    fn record(log: &mut SubLog, op: u8, r: &SubRecord) {
        let mut b = vec![op];
        // Encoding into a Vec cannot fail.
        let _ = to_pb(r).encode(&mut b);
        log.log.append(&[&b]);
    }

    fn seq_record(log: &mut SubLog, op: u8, id: u64, seq: u64) {
        log.log
            .append(&[&[op], &id.to_le_bytes(), &seq.to_le_bytes()]);
    }
}

impl SubStore for FileSubStore {
    fn create_sub(&mut self, sub: &SubRecord) -> StoreResult<()> {
        self.with(|l| {
            Self::record(l, sub_op::CREATE, sub);
            if let Some((_, p)) = l.subs.insert(sub.id, (sub.clone(), Pending::new())) {
                l.forget(&p);
            }
        })
    }

    fn update_sub(&mut self, sub: &SubRecord) -> StoreResult<()> {
        self.with(|l| {
            Self::record(l, sub_op::UPDATE, sub);
            let e = l
                .subs
                .entry(sub.id)
                .or_insert_with(|| (sub.clone(), Pending::new()));
            let last_sent = e.0.last_sent.max(sub.last_sent);
            e.0 = sub.clone();
            e.0.last_sent = last_sent;
        })
    }

    fn delete_sub(&mut self, id: u64) -> StoreResult<()> {
        self.with(|l| {
            if let Some((_, p)) = l.subs.remove(&id) {
                l.forget(&p);
                l.log.append(&[&[sub_op::DELETE], &id.to_le_bytes()]);
            }
        })
    }

    fn add_seq_pending(&mut self, id: u64, seq: u64) -> StoreResult<()> {
        self.with(|l| {
            if let Some((r, p)) = l.subs.get_mut(&id) {
                r.last_sent = r.last_sent.max(seq);
                if let std::collections::btree_map::Entry::Vacant(e) = p.entry(seq) {
                    e.insert(0);
                    l.pending_total += 1;
                }
                Self::seq_record(l, sub_op::PENDING, id, seq);
            }
        })
    }

    fn ack_seq_pending(&mut self, id: u64, seq: u64) -> StoreResult<()> {
        self.with(|l| {
            if let Some((_, p)) = l.subs.get_mut(&id) {
                if let Some(count) = p.remove(&seq) {
                    l.pending_total -= 1;
                    if count > 0 {
                        l.counted_total -= 1;
                    }
                    Self::seq_record(l, sub_op::ACK, id, seq);
                }
            }
        })
    }

    fn record_redelivery(&mut self, id: u64, seq: u64, count: u32) -> StoreResult<()> {
        self.with(|l| {
            let Some(c) = l.subs.get_mut(&id).and_then(|(_, p)| p.get_mut(&seq)) else {
                return;
            };
            if *c == count {
                return;
            }
            if *c == 0 {
                l.counted_total += 1;
            } else if count == 0 {
                l.counted_total -= 1;
            }
            *c = count;
            l.log.append(&[
                &[sub_op::REDELIVERED],
                &id.to_le_bytes(),
                &seq.to_le_bytes(),
                &count.to_le_bytes(),
            ]);
        })
    }

    fn count(&self) -> usize {
        lock(&self.inner).subs.len()
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        let file = lock(&self.inner).write();
        match file {
            Ok(f) => self
                .shared
                .commit(f.into_iter().collect(), Vec::new(), Vec::new()),
            Err(e) => futures::future::ready(Err(io_err("subscription log write", e))).boxed(),
        }
    }
}

/// Reads and verifies a subscription log.
pub(crate) fn read(dir: &Path) -> Result<LogRead, String> {
    read_log(&dir.join(super::SUBS_FILE), MAGIC_SUBS, &accept)
}

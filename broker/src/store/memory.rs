//! The in-memory store: nothing survives a restart.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{ready, BoxFuture};
use futures::FutureExt;
use prost::Message;
use stan_protocol::pb::MsgProto;

use super::chunked::ChunkedDeque;
use super::limits::admit_channel;
use super::{
    ChannelStore, ClientRecord, MsgStore, RecoveredState, ServerInfo, Store, StoreResult,
    SubRecord, SubStore,
};
use crate::config::{ChannelLimits, StoreLimits};

/// A store that keeps channels, clients and server info in memory.
pub struct MemoryStore {
    limits: StoreLimits,
    channels: BTreeSet<String>,
    clients: HashMap<String, ClientRecord>,
    info: Option<ServerInfo>,
}

impl MemoryStore {
    /// A new empty store enforcing `limits`.
    pub fn new(limits: StoreLimits) -> Self {
        MemoryStore {
            limits,
            channels: BTreeSet::new(),
            clients: HashMap::new(),
            info: None,
        }
    }

    /// Number of recorded clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }
}

impl Store for MemoryStore {
    fn store_type(&self) -> &'static str {
        "MEMORY"
    }

    fn set_limits(&mut self, limits: StoreLimits) -> StoreResult<()> {
        self.limits = limits;
        Ok(())
    }

    fn recover(&mut self) -> BoxFuture<'_, StoreResult<Option<RecoveredState>>> {
        ready(Ok(None)).boxed()
    }

    fn init(&mut self, info: &ServerInfo) -> StoreResult<()> {
        self.info = Some(info.clone());
        Ok(())
    }

    fn create_channel(&mut self, name: &str) -> StoreResult<ChannelStore> {
        let limits = admit_channel(
            &self.limits,
            name,
            self.channels.contains(name),
            self.channels.len(),
        )?;
        self.channels.insert(name.to_string());
        Ok(ChannelStore {
            msgs: Box::new(MemoryMsgStore::new(name, &limits)),
            subs: Box::new(MemorySubStore::default()),
            limits,
        })
    }

    fn delete_channel(&mut self, name: &str) -> StoreResult<()> {
        self.channels.remove(name);
        Ok(())
    }

    fn add_client(&mut self, client: &ClientRecord) -> StoreResult<()> {
        self.clients.insert(client.id.clone(), client.clone());
        Ok(())
    }

    fn delete_client(&mut self, id: &str) -> StoreResult<()> {
        self.clients.remove(id);
        Ok(())
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }
}

/// One stored message, kept in wire form (so deliveries share it without copying, and the
/// publisher's read buffer is not kept alive by a payload slice).
struct Stored {
    seq: u64,
    timestamp: i64,
    encoded: Bytes,
}

impl Stored {
    fn size(&self) -> u64 {
        self.encoded.len() as u64
    }
}

/// Messages of one channel, in memory.
pub struct MemoryMsgStore {
    name: String,
    msgs: ChunkedDeque<Stored>,
    last_seq: u64,
    last_ts: i64,
    bytes: u64,
    max_msgs: usize,
    max_bytes: u64,
    max_age: Duration,
    warned: bool,
}

impl MemoryMsgStore {
    /// An empty message store with the channel's effective limits.
    pub fn new(name: &str, limits: &ChannelLimits) -> Self {
        MemoryMsgStore {
            name: name.to_string(),
            msgs: ChunkedDeque::default(),
            last_seq: 0,
            last_ts: 0,
            bytes: 0,
            max_msgs: limits.max_msgs.unwrap_or(0),
            max_bytes: limits.max_bytes.unwrap_or(0),
            max_age: limits.max_age.unwrap_or(Duration::ZERO),
            warned: false,
        }
    }

    /// Appends a recovered message in wire form with its own sequence (later than every
    /// stored one). A gap before it drops the older messages: the store keeps one contiguous
    /// range of sequences.
    pub(crate) fn restore(&mut self, seq: u64, timestamp: i64, encoded: Bytes) {
        if seq <= self.last_seq && self.last_seq > 0 {
            return;
        }
        if seq != self.last_seq + 1 {
            self.msgs.clear();
            self.bytes = 0;
        }
        self.last_seq = seq;
        self.last_ts = timestamp;
        self.bytes += encoded.len() as u64;
        self.msgs.push_back(Stored {
            seq,
            timestamp,
            encoded,
        });
    }

    /// Moves the last sequence of a recovered store that holds fewer messages than were ever
    /// stored (everything up to `last` was removed): the next message gets `last + 1`.
    pub(crate) fn restore_last_sequence(&mut self, last: u64, last_ts: i64) {
        if last > self.last_seq {
            self.msgs.clear();
            self.bytes = 0;
            self.last_seq = last;
            self.last_ts = last_ts;
        }
    }

    /// Forgets the messages after sequence `last` (appended but not made durable): the next
    /// message gets `last + 1` again.
    pub(crate) fn truncate_after(&mut self, last: u64) {
        if last >= self.last_seq {
            return;
        }
        while self.msgs.back().is_some_and(|m| m.seq > last) {
            if let Some(m) = self.msgs.pop_back() {
                self.bytes -= m.size();
            }
        }
        self.last_seq = last;
        self.last_ts = self.msgs.back().map_or(0, |m| m.timestamp);
    }

    fn remove_first(&mut self) {
        if let Some(s) = self.msgs.pop_front() {
            self.bytes -= s.size();
        }
    }

    fn warn_once(&mut self) {
        if !self.warned {
            self.warned = true;
            tracing::warn!(channel = %self.name, "Reached limits for store {:?}", self.name);
        }
    }

    fn index_of(&self, seq: u64) -> Option<usize> {
        let first = self.msgs.front()?.seq;
        if seq < first {
            return None;
        }
        let idx = (seq - first) as usize;
        (idx < self.msgs.len()).then_some(idx)
    }
}

impl MsgStore for MemoryMsgStore {
    fn set_limits(&mut self, limits: &ChannelLimits) -> StoreResult<()> {
        self.max_msgs = limits.max_msgs.unwrap_or(0);
        self.max_bytes = limits.max_bytes.unwrap_or(0);
        self.max_age = limits.max_age.unwrap_or(Duration::ZERO);
        Ok(())
    }

    fn store(&mut self, mut msg: MsgProto) -> StoreResult<u64> {
        self.last_seq += 1;
        msg.sequence = self.last_seq;
        self.last_ts = msg.timestamp;
        msg.redelivered = false;
        msg.redelivery_count = 0;
        let encoded = Bytes::from(msg.encode_to_vec());
        self.bytes += encoded.len() as u64;
        self.msgs.push_back(Stored {
            seq: msg.sequence,
            timestamp: msg.timestamp,
            encoded,
        });
        let mut dropped = false;
        while self.msgs.len() > 1
            && ((self.max_msgs > 0 && self.msgs.len() > self.max_msgs)
                || (self.max_bytes > 0 && self.bytes > self.max_bytes))
        {
            self.remove_first();
            dropped = true;
        }
        if dropped {
            self.warn_once();
        }
        Ok(self.last_seq)
    }

    fn lookup(&self, seq: u64) -> Option<MsgProto> {
        let i = self.index_of(seq)?;
        MsgProto::decode(self.msgs[i].encoded.clone()).ok()
    }

    fn lookup_encoded(&self, seq: u64) -> Option<Bytes> {
        self.index_of(seq).map(|i| self.msgs[i].encoded.clone())
    }

    fn first_sequence(&self) -> u64 {
        match self.msgs.front() {
            Some(s) => s.seq,
            None if self.last_seq == 0 => 0,
            None => self.last_seq + 1,
        }
    }

    fn last_sequence(&self) -> u64 {
        self.last_seq
    }

    fn last_timestamp(&self) -> i64 {
        self.last_ts
    }

    fn state(&self) -> (u64, u64) {
        (self.msgs.len() as u64, self.bytes)
    }

    fn sequence_for_timestamp(&self, ts: i64) -> u64 {
        let (Some(first), Some(last)) = (self.msgs.front(), self.msgs.back()) else {
            return self.last_seq + 1;
        };
        if ts <= first.timestamp {
            return first.seq;
        }
        if ts == last.timestamp {
            return last.seq;
        }
        if ts > last.timestamp {
            return self.last_seq + 1;
        }
        let idx = self.msgs.partition_point(|s| s.timestamp < ts);
        self.msgs[idx].seq
    }

    fn purge(&mut self) -> StoreResult<()> {
        self.msgs.clear();
        self.bytes = 0;
        Ok(())
    }

    fn expire(&mut self, now: i64) -> Option<i64> {
        if self.max_age.is_zero() {
            return None;
        }
        let age = i64::try_from(self.max_age.as_nanos()).unwrap_or(i64::MAX);
        let mut dropped = false;
        while let Some(front) = self.msgs.front() {
            if front.timestamp.saturating_add(age) <= now {
                self.remove_first();
                dropped = true;
            } else {
                break;
            }
        }
        if dropped {
            self.warn_once();
        }
        self.msgs.front().map(|s| s.timestamp.saturating_add(age))
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }
}

/// Subscription records of one channel, in memory.
///
/// Pending sequences are not kept here: the engine holds every subscription's pending
/// messages itself, and a MEMORY store starts empty after a restart, so a second copy would
/// only cost a map update per delivery and per ack.
#[derive(Default)]
pub struct MemorySubStore {
    subs: HashMap<u64, SubRecord>,
}

impl MemorySubStore {
    /// The stored record of a subscription.
    pub fn get(&self, id: u64) -> Option<&SubRecord> {
        self.subs.get(&id)
    }
}

impl SubStore for MemorySubStore {
    fn create_sub(&mut self, sub: &SubRecord) -> StoreResult<()> {
        self.subs.insert(sub.id, sub.clone());
        Ok(())
    }

    fn update_sub(&mut self, sub: &SubRecord) -> StoreResult<()> {
        self.subs.insert(sub.id, sub.clone());
        Ok(())
    }

    fn delete_sub(&mut self, id: u64) -> StoreResult<()> {
        self.subs.remove(&id);
        Ok(())
    }

    fn add_seq_pending(&mut self, _id: u64, _seq: u64) -> StoreResult<()> {
        Ok(())
    }

    fn ack_seq_pending(&mut self, _id: u64, _seq: u64) -> StoreResult<()> {
        Ok(())
    }

    fn count(&self) -> usize {
        self.subs.len()
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn msg(ts: i64, data: &'static [u8]) -> MsgProto {
        MsgProto {
            subject: "c".into(),
            data: bytes::Bytes::from_static(data),
            timestamp: ts,
            ..Default::default()
        }
    }

    fn limits(msgs: usize, bytes: u64, age: Duration) -> ChannelLimits {
        ChannelLimits {
            max_subs: Some(0),
            max_msgs: Some(msgs),
            max_bytes: Some(bytes),
            max_age: Some(age),
            max_inactivity: Some(Duration::ZERO),
        }
    }

    #[test]
    fn sequences_and_max_msgs() {
        let mut s = MemoryMsgStore::new("c", &limits(2, 0, Duration::ZERO));
        assert_eq!((s.first_sequence(), s.last_sequence()), (0, 0));
        for i in 1..=3 {
            assert_eq!(s.store(msg(i, b"x")).unwrap(), i as u64);
        }
        assert_eq!((s.first_sequence(), s.last_sequence()), (2, 3));
        assert!(s.lookup(1).is_none());
        assert_eq!(s.lookup(3).unwrap().sequence, 3);
        let enc = s.lookup_encoded(3).unwrap();
        assert_eq!(MsgProto::decode(enc).unwrap(), s.lookup(3).unwrap());
        assert_eq!(s.state().0, 2);
    }

    #[test]
    fn truncating_forgets_the_newest_and_reuses_their_sequences() {
        let mut s = MemoryMsgStore::new("c", &limits(0, 0, Duration::ZERO));
        for ts in 1..=5 {
            s.store(msg(ts, b"x")).unwrap();
        }
        let (_, bytes) = s.state();
        s.truncate_after(3);
        assert_eq!(
            (s.first_sequence(), s.last_sequence(), s.last_timestamp()),
            (1, 3, 3)
        );
        assert_eq!(s.state(), (3, bytes / 5 * 3));
        assert!(s.lookup(4).is_none());
        assert_eq!(s.store(msg(9, b"y")).unwrap(), 4);
        s.truncate_after(7);
        assert_eq!(s.last_sequence(), 4);
    }

    #[test]
    fn purge_empties_and_the_sequence_goes_on() {
        let mut s = MemoryMsgStore::new("c", &limits(0, 0, Duration::ZERO));
        for i in 1..=3 {
            s.store(msg(i, b"x")).unwrap();
        }
        s.purge().unwrap();
        assert_eq!(
            (s.first_sequence(), s.last_sequence(), s.state()),
            (4, 3, (0, 0))
        );
        assert!(s.lookup(3).is_none());
        assert_eq!(s.store(msg(9, b"y")).unwrap(), 4);
        assert_eq!(s.first_sequence(), 4);
    }

    #[test]
    fn max_bytes_keeps_newest() {
        let mut s = MemoryMsgStore::new("c", &limits(0, 1, Duration::ZERO));
        s.store(msg(1, b"hello")).unwrap();
        s.store(msg(2, b"world")).unwrap();
        assert_eq!(s.state().0, 1);
        assert_eq!(s.first_sequence(), 2);
    }

    #[test]
    fn expiry_leaves_first_after_last() {
        let mut s = MemoryMsgStore::new("c", &limits(0, 0, Duration::from_nanos(10)));
        s.store(msg(100, b"a")).unwrap();
        s.store(msg(105, b"b")).unwrap();
        assert_eq!(s.expire(111), Some(115));
        assert_eq!(s.first_sequence(), 2);
        assert_eq!(s.expire(200), None);
        assert_eq!((s.first_sequence(), s.last_sequence()), (3, 2));
        assert_eq!(s.state(), (0, 0));
    }

    #[test]
    fn sequence_for_timestamp() {
        let mut s = MemoryMsgStore::new("c", &limits(0, 0, Duration::ZERO));
        assert_eq!(s.sequence_for_timestamp(5), 1);
        for ts in [10, 20, 20, 30, 30] {
            s.store(msg(ts, b"x")).unwrap();
        }
        assert_eq!(s.sequence_for_timestamp(1), 1);
        assert_eq!(s.sequence_for_timestamp(15), 2);
        assert_eq!(s.sequence_for_timestamp(20), 2);
        assert_eq!(s.sequence_for_timestamp(30), 5);
        assert_eq!(s.sequence_for_timestamp(31), 6);
    }

    #[test]
    fn max_channels() {
        let mut st = MemoryStore::new(StoreLimits {
            max_channels: 1,
            ..Default::default()
        });
        assert!(st.create_channel("a").is_ok());
        assert_eq!(
            st.create_channel("b").err(),
            Some(StoreError::TooManyChannels)
        );
        st.delete_channel("a").unwrap();
        assert!(st.create_channel("b").is_ok());
    }
}

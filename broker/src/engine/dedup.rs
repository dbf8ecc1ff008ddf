//! The de-duplication window: the guids of the publishes stored recently, per channel, so that
//! a publish re-sent with the same guid (a client resuming its in-flight publishes) is
//! acknowledged again without being stored twice.
//!
//! Memory: one entry per stored publish within the window, at most
//! [`MAX_GUIDS_PER_CHANNEL`] per channel (the oldest fall out first). An entry is the guid
//! held inline when it has at most [`INLINE_GUID`] bytes (a NUID has 22; longer ones are
//! boxed) with its hash and timestamp in a queue in storing order (48 bytes), and its position
//! in that queue in a hash table (4 bytes and a control byte, at a load of at most 7/8): about
//! 55 bytes, and no allocation per publish. The table a lookup probes is 0.6 MB at the cap, so
//! it mostly stays in the CPU's caches; the queue is read only where a probe matches, and
//! forgetting the oldest guid does not touch the table (see [`ChannelGuids`]).
//!
//! Hashing: a guid is hashed once per publish, with the standard library's keyed (randomly
//! seeded) SipHash, so clients cannot aim guids at one bucket. The hash is kept with the guid:
//! the lookup in [`Dedup::seen`], the insertion in [`Dedup::record`], pruning and the table's
//! growth all reuse it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use hashbrown::HashTable;

use super::Map;
use crate::store::chunked::ChunkedDeque;

/// Most guids remembered per channel; older ones are forgotten early when a channel stores
/// more publishes than this within one window.
pub(crate) const MAX_GUIDS_PER_CHANNEL: usize = 100_000;

/// Longest guid kept without an allocation.
const INLINE_GUID: usize = 30;

/// A remembered guid: inline up to [`INLINE_GUID`] bytes, boxed beyond.
#[derive(Clone)]
enum Guid {
    Inline { len: u8, bytes: [u8; INLINE_GUID] },
    Boxed(Box<str>),
}

impl Guid {
    fn new(guid: &str) -> Guid {
        let b = guid.as_bytes();
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE_GUID => {
                let mut bytes = [0; INLINE_GUID];
                bytes[..b.len()].copy_from_slice(b);
                Guid::Inline { len, bytes }
            }
            _ => Guid::Boxed(guid.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Guid::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Guid::Boxed(s) => s.as_bytes(),
        }
    }
}

impl PartialEq for Guid {
    fn eq(&self, other: &Guid) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Guid {}

/// A guid with its keyed hash, computed once.
#[derive(Clone)]
struct Key {
    hash: u64,
    guid: Guid,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.hash == other.hash && self.guid == other.guid
    }
}

impl Eq for Key {}

/// The guids of one channel, with the time their messages were stored.
///
/// The guids live in `order`, oldest first; the table holds their positions, hashed by their
/// stored hash: four bytes a slot, so that the table a lookup probes stays small enough for
/// the CPU's caches even at the cap. Forgetting the oldest guid only pops it from `order`: its
/// position in the table goes stale (it falls before `base`), is never matched again, and
/// stale positions are swept out in one pass when the table is full, before it would grow.
/// So a publish costs one probe of the table to look its guid up and one to insert it.
#[derive(Default)]
struct ChannelGuids {
    /// Positions (see `base`) of the entries of `order`, and stale ones of popped entries.
    table: HashTable<u32>,
    /// `(stored at, guid)` in storing order; an entry whose position is not in `table` was
    /// forgotten (or stored again later) and is skipped.
    order: ChunkedDeque<(i64, Key)>,
    /// The position of `order`'s front; positions wrap (live ones are at most the cap apart,
    /// and stale ones are swept long before they could wrap into the live range).
    base: u32,
}

impl ChannelGuids {
    /// The entry of `order` at position `pos`, `None` if the position is stale.
    fn at(order: &ChunkedDeque<(i64, Key)>, base: u32, pos: u32) -> Option<&(i64, Key)> {
        order.get(pos.wrapping_sub(base) as usize)
    }

    /// When `key` was stored, if it is remembered.
    fn get(&self, key: &Key) -> Option<i64> {
        let (order, base) = (&self.order, self.base);
        self.table
            .find(key.hash, |&p| {
                Self::at(order, base, p).is_some_and(|e| e.1 == *key)
            })
            .and_then(|&p| Self::at(order, base, p))
            .map(|e| e.0)
    }

    /// Forget `key` (its entry in `order` becomes dead).
    fn remove(&mut self, key: &Key) {
        let (order, base) = (&self.order, self.base);
        if let Ok(e) = self.table.find_entry(key.hash, |&p| {
            Self::at(order, base, p).is_some_and(|e| e.1 == *key)
        }) {
            e.remove();
        }
    }

    /// Remember `guid`, stored at `ts`, and forget what was stored before `oldest`.
    fn record(&mut self, g: Key, ts: i64, oldest: i64) {
        self.remove(&g);
        self.prune(oldest);
        if self.table.len() == self.table.capacity() {
            // Full: sweep the stale positions first, so that growing (or rehashing in place)
            // only ever hashes live ones.
            let (order, base) = (&self.order, self.base);
            self.table.retain(|p| Self::at(order, base, *p).is_some());
        }
        let hash = g.hash;
        let pos = self.base.wrapping_add(self.order.len() as u32);
        self.order.push_back((ts, g));
        let (order, base) = (&self.order, self.base);
        self.table.insert_unique(hash, pos, |&p| {
            Self::at(order, base, p).map_or(0, |e| e.1.hash)
        });
        if self.order.len() > MAX_GUIDS_PER_CHANNEL {
            self.prune(oldest);
        }
    }

    /// Forget what was stored before `oldest` (Unix nanoseconds), and the oldest beyond the
    /// cap: pops them from `order`, which leaves their positions stale.
    fn prune(&mut self, oldest: i64) {
        while let Some((ts, _)) = self.order.front() {
            if *ts >= oldest && self.order.len() <= MAX_GUIDS_PER_CHANNEL {
                break;
            }
            self.order.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }

    /// Number of guids remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        let (order, base) = (&self.order, self.base);
        self.table
            .iter()
            .filter(|p| Self::at(order, base, **p).is_some())
            .count()
    }
}

/// The window of every channel.
pub(crate) struct Dedup {
    /// The window in nanoseconds (0: off).
    window: i64,
    channels: Map<String, ChannelGuids>,
    /// The key of guids' hashes.
    hasher: RandomState,
    /// The guid [`Dedup::seen`] looked up last, hashed, for the [`Dedup::record`] that
    /// usually follows.
    last: Option<Key>,
}

impl Dedup {
    /// A window of `window` (zero: de-duplication off).
    pub(crate) fn new(window: Duration) -> Dedup {
        Dedup {
            window: i64::try_from(window.as_nanos()).unwrap_or(i64::MAX),
            channels: Map::default(),
            hasher: RandomState::new(),
            last: None,
        }
    }

    /// `guid` with its hash (taken from the last lookup when it was the same guid).
    fn key(&mut self, guid: &str) -> Key {
        match self.last.take() {
            Some(k) if k.guid.as_bytes() == guid.as_bytes() => k,
            _ => Key {
                hash: self.hasher.hash_one(guid.as_bytes()),
                guid: Guid::new(guid),
            },
        }
    }

    /// Whether de-duplication is on.
    pub(crate) fn enabled(&self) -> bool {
        self.window > 0
    }

    /// The oldest storing time still inside the window at `now`.
    pub(crate) fn oldest(&self, now: i64) -> i64 {
        now.saturating_sub(self.window)
    }

    /// Whether a message published with `guid` was stored in `channel` within the window
    /// (at `now`, Unix nanoseconds).
    pub(crate) fn seen(&mut self, channel: &str, guid: &str, now: i64) -> bool {
        if !self.enabled() {
            return false;
        }
        let oldest = self.oldest(now);
        let key = self.key(guid);
        let Some(c) = self.channels.get_mut(channel) else {
            self.last = Some(key);
            return false;
        };
        c.prune(oldest);
        let seen = c.get(&key).is_some_and(|ts| ts >= oldest);
        self.last = Some(key);
        seen
    }

    /// Remember that a message published with `guid` was stored in `channel` at `ts`.
    pub(crate) fn record(&mut self, channel: &str, guid: &str, ts: i64) {
        if !self.enabled() {
            return;
        }
        let oldest = self.oldest(ts);
        let key = self.key(guid);
        match self.channels.get_mut(channel) {
            Some(c) => c.record(key, ts, oldest),
            None => self
                .channels
                .entry(channel.to_string())
                .or_default()
                .record(key, ts, oldest),
        }
    }

    /// Forget `guid` in `channel` (its message could not be made durable).
    pub(crate) fn forget(&mut self, channel: &str, guid: &str) {
        let key = self.key(guid);
        if let Some(c) = self.channels.get_mut(channel) {
            c.remove(&key);
        }
    }

    /// Forget a deleted channel.
    pub(crate) fn drop_channel(&mut self, channel: &str) {
        self.channels.remove(channel);
    }

    /// Number of guids remembered for `channel`.
    #[cfg(test)]
    pub(crate) fn len(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, ChannelGuids::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn remembers_within_the_window_and_forgets_after_it() {
        let mut d = Dedup::new(Duration::from_secs(2));
        d.record("a", "g1", 10 * SEC);
        assert!(d.seen("a", "g1", 11 * SEC));
        assert!(!d.seen("b", "g1", 11 * SEC), "per channel");
        assert!(!d.seen("a", "g2", 11 * SEC));
        assert!(d.seen("a", "g1", 12 * SEC), "the window's edge is inside");
        assert!(!d.seen("a", "g1", 12 * SEC + 1));
        assert_eq!(d.len("a"), 0, "pruned");
    }

    #[test]
    fn off_remembers_nothing() {
        let mut d = Dedup::new(Duration::ZERO);
        d.record("a", "g1", SEC);
        assert!(!d.seen("a", "g1", SEC));
        assert_eq!(d.len("a"), 0);
    }

    #[test]
    fn forget_and_drop_channel() {
        let mut d = Dedup::new(Duration::from_secs(60));
        d.record("a", "g1", SEC);
        d.record("a", "g2", SEC);
        d.forget("a", "g1");
        assert!(!d.seen("a", "g1", SEC));
        assert!(d.seen("a", "g2", SEC));
        // Stored again after being forgotten: the stale queue entry does not remove it.
        d.record("a", "g1", 2 * SEC);
        assert!(d.seen("a", "g1", 2 * SEC));
        d.drop_channel("a");
        assert!(!d.seen("a", "g2", SEC));
    }

    #[test]
    fn long_guids_are_kept_too() {
        let mut d = Dedup::new(Duration::from_secs(60));
        let long = "x".repeat(INLINE_GUID + 1);
        let edge = "y".repeat(INLINE_GUID);
        d.record("a", &long, SEC);
        d.record("a", &edge, SEC);
        assert!(d.seen("a", &long, SEC));
        assert!(d.seen("a", &edge, SEC));
        assert!(!d.seen("a", &long[1..], SEC), "a prefix is another guid");
        d.forget("a", &long);
        assert!(!d.seen("a", &long, SEC));
        assert!(d.seen("a", &edge, SEC));
    }

    #[test]
    fn guids_forgotten_by_the_cap_are_swept_from_the_table_without_growing_it() {
        let mut d = Dedup::new(Duration::from_secs(3600));
        let n = 3 * MAX_GUIDS_PER_CHANNEL + 7;
        for i in 0..n {
            d.record("a", &format!("g{i}"), SEC);
        }
        assert_eq!(d.len("a"), MAX_GUIDS_PER_CHANNEL);
        let table = &d.channels["a"].table;
        assert!(
            table.capacity() < 2 * MAX_GUIDS_PER_CHANNEL,
            "stale positions are swept, not kept: capacity {}",
            table.capacity()
        );
        let oldest_kept = n - MAX_GUIDS_PER_CHANNEL;
        assert!(!d.seen("a", &format!("g{}", oldest_kept - 1), SEC));
        assert!(d.seen("a", &format!("g{oldest_kept}"), SEC));
        assert!(d.seen("a", &format!("g{}", n - 1), SEC));
        // Stored again after it was forgotten: remembered once more, and once only.
        d.record("a", "g0", 2 * SEC);
        assert!(d.seen("a", "g0", 2 * SEC));
        assert_eq!(d.len("a"), MAX_GUIDS_PER_CHANNEL);
        assert!(
            !d.seen("a", &format!("g{oldest_kept}"), 2 * SEC),
            "the oldest made room"
        );
    }

    #[test]
    fn capped_per_channel() {
        let mut d = Dedup::new(Duration::from_secs(3600));
        for i in 0..MAX_GUIDS_PER_CHANNEL + 10 {
            d.record("a", &format!("g{i}"), SEC);
        }
        assert_eq!(d.len("a"), MAX_GUIDS_PER_CHANNEL);
        assert!(!d.seen("a", "g9", SEC), "the oldest fell out");
        assert!(d.seen("a", "g10", SEC));
        assert!(d.seen("a", &format!("g{}", MAX_GUIDS_PER_CHANNEL + 9), SEC));
    }
}

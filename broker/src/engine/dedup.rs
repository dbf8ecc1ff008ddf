//! The de-duplication window: the guids of the publishes stored recently, per channel, so that
//! a publish re-sent with the same guid (a client resuming its in-flight publishes) is
//! acknowledged again without being stored twice.
//!
//! Memory: one entry per stored publish within the window, at most
//! [`MAX_GUIDS_PER_CHANNEL`] per channel (the oldest fall out first). An entry is the guid
//! held inline when it has at most [`INLINE_GUID`] bytes (a NUID has 22; longer ones are
//! boxed), once in the guid map (with an 8-byte timestamp and a control byte, at a load of at
//! most 7/8) and once in the expiry queue (with its timestamp): about 100 bytes, and no
//! allocation per publish.
//!
//! Hashing: a guid is hashed once per publish, with the standard library's keyed (randomly
//! seeded) SipHash, so clients cannot aim guids at one bucket. The hash is kept with the guid:
//! the lookup in [`Dedup::seen`], the insertion in [`Dedup::record`], pruning and the map's
//! growth all reuse it.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::Duration;

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

impl Hash for Guid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that a `&[u8]` finds it (`Borrow` below).
        self.as_bytes().hash(state);
    }
}

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

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hands a [`Key`]'s stored hash to the map unchanged (it is already a keyed SipHash).
#[derive(Clone, Copy, Default)]
struct StoredHash;

impl BuildHasher for StoredHash {
    type Hasher = StoredHasher;

    fn build_hasher(&self) -> StoredHasher {
        StoredHasher(0)
    }
}

/// The hasher of [`StoredHash`].
struct StoredHasher(u64);

impl Hasher for StoredHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `Key`); fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The guids of one channel, with the time their messages were stored.
#[derive(Default)]
struct ChannelGuids {
    by_guid: HashMap<Key, i64, StoredHash>,
    /// `(stored at, guid)` in storing order; an entry whose time no longer matches
    /// `by_guid` was forgotten (or stored again) and is skipped.
    order: VecDeque<(i64, Key)>,
}

impl ChannelGuids {
    /// Remember `guid`, stored at `ts`, and forget what was stored before `oldest`.
    fn record(&mut self, g: Key, ts: i64, oldest: i64) {
        self.by_guid.insert(g.clone(), ts);
        self.order.push_back((ts, g));
        self.prune(oldest);
    }

    /// Forget what was stored before `oldest` (Unix nanoseconds), and the oldest beyond the
    /// cap.
    fn prune(&mut self, oldest: i64) {
        while let Some((ts, _)) = self.order.front() {
            if *ts >= oldest && self.order.len() <= MAX_GUIDS_PER_CHANNEL {
                break;
            }
            if let Some((ts, g)) = self.order.pop_front() {
                if let Entry::Occupied(e) = self.by_guid.entry(g) {
                    if *e.get() == ts {
                        e.remove();
                    }
                }
            }
        }
    }
}

/// The window of every channel.
pub(crate) struct Dedup {
    /// The window in nanoseconds (0: off).
    window: i64,
    channels: HashMap<String, ChannelGuids>,
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
            channels: HashMap::new(),
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
        let seen = c.by_guid.get(&key).is_some_and(|ts| *ts >= oldest);
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
            c.by_guid.remove(&key);
        }
    }

    /// Forget a deleted channel.
    pub(crate) fn drop_channel(&mut self, channel: &str) {
        self.channels.remove(channel);
    }

    /// Number of guids remembered for `channel`.
    #[cfg(test)]
    pub(crate) fn len(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |c| c.by_guid.len())
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

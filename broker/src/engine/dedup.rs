//! The de-duplication window: the guids of the publishes stored recently, per channel, so that
//! a publish re-sent with the same guid (a client resuming its in-flight publishes) is
//! acknowledged again without being stored twice.
//!
//! Memory: one entry per stored publish within the window, at most
//! [`MAX_GUIDS_PER_CHANNEL`] per channel (the oldest fall out first). An entry is the guid
//! (one shared allocation: 16 bytes of counts plus the guid, 22 bytes for a NUID, 48 with
//! the allocator's rounding), its slot in the guid map (a 16-byte pointer, an 8-byte
//! timestamp and a control byte, at a load of at most 7/8) and its slot in the expiry queue
//! (24 bytes): about 100 bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Most guids remembered per channel; older ones are forgotten early when a channel stores
/// more publishes than this within one window.
pub(crate) const MAX_GUIDS_PER_CHANNEL: usize = 100_000;

/// The guids of one channel, with the time their messages were stored.
#[derive(Default)]
struct ChannelGuids {
    by_guid: HashMap<Arc<str>, i64>,
    /// `(stored at, guid)` in storing order; an entry whose time no longer matches
    /// `by_guid` was forgotten (or stored again) and is skipped.
    order: VecDeque<(i64, Arc<str>)>,
}

impl ChannelGuids {
    /// Forget what was stored before `oldest` (Unix nanoseconds), and the oldest beyond the
    /// cap.
    fn prune(&mut self, oldest: i64) {
        while let Some((ts, _)) = self.order.front() {
            if *ts >= oldest && self.order.len() <= MAX_GUIDS_PER_CHANNEL {
                break;
            }
            if let Some((ts, g)) = self.order.pop_front() {
                if self.by_guid.get(&g) == Some(&ts) {
                    self.by_guid.remove(&g);
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
}

impl Dedup {
    /// A window of `window` (zero: de-duplication off).
    pub(crate) fn new(window: Duration) -> Dedup {
        Dedup {
            window: i64::try_from(window.as_nanos()).unwrap_or(i64::MAX),
            channels: HashMap::new(),
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
        let Some(c) = self.channels.get_mut(channel) else {
            return false;
        };
        c.prune(oldest);
        c.by_guid.get(guid).is_some_and(|ts| *ts >= oldest)
    }

    /// Remember that a message published with `guid` was stored in `channel` at `ts`.
    pub(crate) fn record(&mut self, channel: &str, guid: &str, ts: i64) {
        if !self.enabled() {
            return;
        }
        let oldest = self.oldest(ts);
        let c = self.channels.entry(channel.to_string()).or_default();
        let g: Arc<str> = Arc::from(guid);
        c.by_guid.insert(g.clone(), ts);
        c.order.push_back((ts, g));
        c.prune(oldest);
    }

    /// Forget `guid` in `channel` (its message could not be made durable).
    pub(crate) fn forget(&mut self, channel: &str, guid: &str) {
        if let Some(c) = self.channels.get_mut(channel) {
            c.by_guid.remove(guid);
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

//! One deadline index for every engine timer.

use std::collections::{BTreeSet, HashMap};

use tokio::time::Instant;

/// `at + d`, saturating at a far-future instant instead of overflowing.
pub(crate) fn later(at: Instant, d: std::time::Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + std::time::Duration::from_secs(30 * 365 * 86_400))
}

/// What a timer is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// Earliest ack expiry of a subscription.
    Ack(u64),
    /// Next heartbeat of a client.
    Heartbeat(String),
    /// Next message expiry (max_age) of a channel.
    Age(String),
    /// Inactivity deadline of a channel.
    Inactivity(String),
}

/// Deadlines ordered by time, at most one per key.
#[derive(Default)]
pub(crate) struct Timers {
    by_time: BTreeSet<(Instant, TimerKey)>,
    by_key: HashMap<TimerKey, Instant>,
}

impl Timers {
    /// Arms (or re-arms) `key` at `at`.
    pub(crate) fn set(&mut self, key: TimerKey, at: Instant) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    /// Arms `key` at `at` unless it is already armed earlier.
    pub(crate) fn set_if_earlier(&mut self, key: TimerKey, at: Instant) {
        match self.by_key.get(&key) {
            Some(old) if *old <= at => {}
            _ => self.set(key, at),
        }
    }

    /// Disarms `key`.
    pub(crate) fn cancel(&mut self, key: &TimerKey) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
    }

    /// When `key` fires, if armed.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &TimerKey) -> Option<Instant> {
        self.by_key.get(key).copied()
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Removes and returns one timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let (t, _) = self.by_time.first()?;
        if *t > now {
            return None;
        }
        let (_, key) = self.by_time.pop_first()?;
        self.by_key.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ordering_and_rearm() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.set(TimerKey::Ack(1), now + Duration::from_secs(5));
        t.set(TimerKey::Ack(2), now + Duration::from_secs(1));
        t.set(TimerKey::Ack(1), now);
        assert_eq!(t.next(), Some(now));
        assert_eq!(t.pop_due(now), Some(TimerKey::Ack(1)));
        assert_eq!(t.pop_due(now), None);
        t.set_if_earlier(TimerKey::Ack(2), now + Duration::from_secs(9));
        assert_eq!(t.get(&TimerKey::Ack(2)), Some(now + Duration::from_secs(1)));
        t.cancel(&TimerKey::Ack(2));
        assert_eq!(t.next(), None);
    }
}

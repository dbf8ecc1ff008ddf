//! The record of messages a subscription's application acked recently, shared by the
//! subscription, its messages and the connection task (which drops copies the server sends
//! again because our ack did not reach it in time).

use std::collections::VecDeque;
use std::sync::Mutex;

use rustc_hash::FxHashMap;

use crate::lock::lock;

/// Acked messages of one subscription (sequence → timestamp), oldest forgotten first.
pub(crate) struct AckedLog {
    ring: Mutex<AckedRing>,
}

impl AckedLog {
    /// A log remembering the last `cap` acks (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        AckedLog {
            ring: Mutex::new(AckedRing::new(cap)),
        }
    }

    /// Records that the application acked this message.
    pub(crate) fn insert(&self, sequence: u64, timestamp: i64) {
        lock(&self.ring).insert(sequence, timestamp);
    }

    /// True when the application already acked this message (same sequence and timestamp,
    /// so a restarted server reusing sequence numbers is not mistaken for a redelivery).
    pub(crate) fn contains(&self, sequence: u64, timestamp: i64) -> bool {
        lock(&self.ring).contains(sequence, timestamp)
    }
}

/// A bounded record of acked messages (sequence → timestamp), oldest forgotten first.
struct AckedRing {
    map: FxHashMap<u64, i64>,
    order: VecDeque<u64>,
    cap: usize,
}

impl AckedRing {
    fn new(cap: usize) -> Self {
        AckedRing {
            map: FxHashMap::default(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    fn insert(&mut self, sequence: u64, timestamp: i64) {
        if self.map.insert(sequence, timestamp).is_none() {
            self.order.push_back(sequence);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn contains(&self, sequence: u64, timestamp: i64) -> bool {
        self.map.get(&sequence) == Some(&timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_cap_acks_by_sequence_and_timestamp() {
        let log = AckedLog::new(2);
        log.insert(1, 10);
        log.insert(2, 20);
        assert!(log.contains(1, 10) && log.contains(2, 20));
        assert!(!log.contains(1, 11), "same sequence, other timestamp");
        log.insert(2, 20); // again: no second slot
        log.insert(3, 30);
        assert!(!log.contains(1, 10), "oldest forgotten");
        assert!(log.contains(2, 20) && log.contains(3, 30));
    }
}

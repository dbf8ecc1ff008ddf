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
///
/// Applications mostly ack in sequence order, so the record is usually sorted by sequence and
/// searched in place: an ack is a push (and a pop once full), a lookup a binary search. Only
/// while an ack out of sequence order is within the record is a hash index kept beside it
/// (built when such an ack arrives, dropped once it was forgotten), so the index is rebuilt
/// at most once per `cap` acks.
struct AckedRing {
    /// The acked messages in ack order (sequence, timestamp), at most `cap`.
    order: VecDeque<(u64, i64)>,
    /// Adjacent pairs of `order` whose sequences do not increase.
    breaks: usize,
    /// Sequence → timestamp of every entry of `order`, kept only while `breaks > 0`
    /// (empty, its allocation kept, otherwise).
    index: FxHashMap<u64, i64>,
    cap: usize,
}

impl AckedRing {
    fn new(cap: usize) -> Self {
        AckedRing {
            order: VecDeque::new(),
            breaks: 0,
            index: FxHashMap::default(),
            cap: cap.max(1),
        }
    }

    fn is_indexed(&self) -> bool {
        self.breaks > 0
    }

    /// Where `sequence` is in `order` while it is sorted. The usual questions (a new ack, a
    /// first delivery) are about a sequence above the last one recorded: answered without a
    /// search.
    fn position(&self, sequence: u64) -> Option<usize> {
        debug_assert!(!self.is_indexed());
        match (self.order.front(), self.order.back()) {
            (Some(&(first, _)), Some(&(last, _))) if (first..=last).contains(&sequence) => {
                self.order.binary_search_by_key(&sequence, |&(s, _)| s).ok()
            }
            _ => None,
        }
    }

    fn insert(&mut self, sequence: u64, timestamp: i64) {
        // Already recorded: the newer timestamp replaces the older (no second slot).
        if self.is_indexed() {
            if let Some(old) = self.index.get_mut(&sequence) {
                if *old != timestamp {
                    *old = timestamp;
                    if let Some(e) = self.order.iter_mut().rev().find(|e| e.0 == sequence) {
                        e.1 = timestamp;
                    }
                }
                return;
            }
        } else if let Some(i) = self.position(sequence) {
            self.order[i].1 = timestamp;
            return;
        }
        let was_indexed = self.is_indexed();
        if self.order.back().is_some_and(|&(last, _)| sequence <= last) {
            self.breaks += 1;
        }
        self.order.push_back((sequence, timestamp));
        if was_indexed {
            self.index.insert(sequence, timestamp);
        } else if self.is_indexed() {
            self.index.extend(self.order.iter().copied());
        }
        while self.order.len() > self.cap {
            let Some((old, _)) = self.order.pop_front() else {
                break;
            };
            if self.order.front().is_some_and(|&(next, _)| next <= old) {
                self.breaks -= 1;
            }
            if self.is_indexed() {
                self.index.remove(&old);
            } else {
                self.index.clear();
            }
        }
    }

    fn contains(&self, sequence: u64, timestamp: i64) -> bool {
        if self.is_indexed() {
            self.index.get(&sequence) == Some(&timestamp)
        } else {
            self.position(sequence)
                .is_some_and(|i| self.order[i].1 == timestamp)
        }
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

    /// Random acks (mostly in order, some out of order, some repeated with a new timestamp)
    /// against a model that keeps every ack in a map and the order in a list: each lookup and
    /// the index's state agree with it.
    #[test]
    fn agrees_with_a_model_over_random_acks() {
        use std::collections::HashMap;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for cap in [1usize, 2, 7, 64] {
            let mut ring = AckedRing::new(cap);
            let mut model: VecDeque<u64> = VecDeque::new();
            let mut stamps: HashMap<u64, i64> = HashMap::new();
            let mut seq = 0u64;
            for step in 0..20_000 {
                let r = next() % 100;
                let (s, ts) = if r < 80 {
                    seq += 1;
                    (seq, (seq as i64) * 10)
                } else if r < 92 {
                    // Out of order: a sequence a little behind or ahead.
                    let s = (seq + 5).saturating_sub(next() % 12);
                    (s.max(1), (s as i64) * 10)
                } else {
                    // Again, with a new timestamp (a restarted server reusing sequences).
                    let s = seq.saturating_sub(next() % 4).max(1);
                    (s, (s as i64) * 10 + 1 + (next() % 3) as i64)
                };
                ring.insert(s, ts);
                if stamps.insert(s, ts).is_none() || !model.contains(&s) {
                    model.push_back(s);
                }
                while model.len() > cap {
                    let old = model.pop_front().unwrap();
                    stamps.remove(&old);
                }
                assert_eq!(ring.order.len(), model.len(), "step {step}");
                let sorted = model.iter().zip(model.iter().skip(1)).all(|(a, b)| a < b);
                assert_eq!(ring.is_indexed(), !sorted, "step {step}");
                if !ring.is_indexed() {
                    assert!(ring.index.is_empty(), "step {step}");
                }
                for probe in seq.saturating_sub(cap as u64 + 8)..seq + 8 {
                    for t in [(probe as i64) * 10, (probe as i64) * 10 + 1] {
                        let want = stamps.get(&probe) == Some(&t);
                        assert_eq!(ring.contains(probe, t), want, "step {step}: {probe}/{t}");
                    }
                }
            }
        }
    }
}

//! A double-ended queue kept in fixed-size chunks, for the index of a channel's messages.
//!
//! A `VecDeque` that grows by reallocation copies every element at each doubling and touches
//! about twice its final size in fresh memory; for a channel that stores millions of
//! messages that is tens of megabytes copied and page-faulted while publishes wait. Here the
//! elements stay where they were first written: a full chunk is never moved, a new one is
//! added, and a chunk emptied from the front is freed.

use std::collections::VecDeque;
use std::ops::Index;

/// Elements per chunk.
const CHUNK: usize = 4096;

/// A queue with `push_back`, `pop_front`, `pop_back` and indexing, stored in chunks of
/// [`CHUNK`] elements. Every chunk but the first and the last is full, so an index maps to
/// its chunk with one division.
pub(crate) struct ChunkedDeque<T> {
    chunks: VecDeque<VecDeque<T>>,
    len: usize,
}

impl<T> Default for ChunkedDeque<T> {
    fn default() -> Self {
        ChunkedDeque {
            chunks: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedDeque<T> {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no element.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every element.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Appends an element.
    pub(crate) fn push_back(&mut self, v: T) {
        match self.chunks.back_mut() {
            // Only the last chunk takes new elements (it may also be the first).
            Some(last) if last.len() < CHUNK => last.push_back(v),
            _ => {
                let mut c = VecDeque::with_capacity(CHUNK);
                c.push_back(v);
                self.chunks.push_back(c);
            }
        }
        self.len += 1;
    }

    /// Removes the first element.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let first = self.chunks.front_mut()?;
        let v = first.pop_front()?;
        if first.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(v)
    }

    /// Removes the last element.
    pub(crate) fn pop_back(&mut self) -> Option<T> {
        let last = self.chunks.back_mut()?;
        let v = last.pop_back()?;
        if last.is_empty() {
            self.chunks.pop_back();
        }
        self.len -= 1;
        Some(v)
    }

    /// The first element.
    pub(crate) fn front(&self) -> Option<&T> {
        self.chunks.front()?.front()
    }

    /// The last element.
    pub(crate) fn back(&self) -> Option<&T> {
        self.chunks.back()?.back()
    }

    /// The element at `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let first = self.chunks.front()?;
        if i < first.len() {
            return first.get(i);
        }
        let j = i - first.len();
        self.chunks.get(1 + j / CHUNK)?.get(j % CHUNK)
    }

    /// The index of the first element for which `pred` is false, the elements being
    /// partitioned (`pred` true for a prefix, false after it), as `slice::partition_point`.
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(v) if pred(v) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }
}

impl<T> Index<usize> for ChunkedDeque<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        match self.get(i) {
            Some(v) => v,
            None => panic!("index {i} out of range for a queue of {}", self.len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every operation agrees with a `VecDeque` over a long random run that crosses chunk
    /// edges from both ends.
    #[test]
    fn behaves_as_a_vecdeque() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut ours = ChunkedDeque::default();
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for step in 0..200_000 {
            match rng.random_range(0..10) {
                0..=5 => {
                    ours.push_back(next);
                    model.push_back(next);
                    next += 1;
                }
                6 | 7 => assert_eq!(ours.pop_front(), model.pop_front(), "step {step}"),
                8 => assert_eq!(ours.pop_back(), model.pop_back(), "step {step}"),
                _ => {
                    if rng.random_range(0..1000) == 0 {
                        ours.clear();
                        model.clear();
                    }
                }
            }
            assert_eq!(ours.len(), model.len());
            assert_eq!(ours.front(), model.front());
            assert_eq!(ours.back(), model.back());
            if !model.is_empty() {
                let i = rng.random_range(0..model.len());
                assert_eq!(ours[i], model[i], "index {i} at step {step}");
            }
            assert!(ours.get(model.len()).is_none());
        }
        assert_eq!(ours.is_empty(), model.is_empty());
        for (i, v) in model.iter().enumerate() {
            assert_eq!(ours.get(i), Some(v));
        }
    }

    #[test]
    fn partition_point_finds_the_first_element_not_matching() {
        let mut q = ChunkedDeque::default();
        for i in 0..3 * CHUNK as u64 {
            q.push_back(i);
        }
        for _ in 0..100 {
            q.pop_front();
        }
        for t in [
            0,
            99,
            100,
            101,
            5000,
            3 * CHUNK as u64 - 1,
            3 * CHUNK as u64,
        ] {
            let want = (t.saturating_sub(100) as usize).min(q.len());
            assert_eq!(q.partition_point(|v| *v < t), want, "t = {t}");
        }
    }

    #[test]
    fn a_full_chunk_is_never_moved() {
        let mut q = ChunkedDeque::default();
        for i in 0..CHUNK {
            q.push_back(i);
        }
        let at: *const usize = &q[CHUNK - 1];
        for i in 0..10 * CHUNK {
            q.push_back(i);
        }
        assert!(
            std::ptr::eq(at, &q[CHUNK - 1]),
            "elements stay where they were written"
        );
    }
}

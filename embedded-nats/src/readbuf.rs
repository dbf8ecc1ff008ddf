//! The read buffer of a TCP connection, sized to the reads the connection sees.
//!
//! Parsed operations are zero-copy slices of this buffer, and in-process subscribers may hold
//! them for a while (queued for another task), so the part of the buffer they point into cannot
//! be reused until they are dropped: the reader then continues in a fresh allocation, and the
//! old one is freed when its last slice goes. With a fixed large buffer per connection, a
//! connection that receives only small operations (acks, for instance) would replace, pin and
//! free a large block every time its buffer wraps around, and hold a large block when idle.
//! Here each connection's buffer starts small, doubles when a read fills it (up to
//! [`MAX_READ`]) and halves after a few reads that use less than half of it (down to
//! [`MIN_READ`]), so what it holds, and what a held slice keeps alive, follows its traffic.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Smallest read size.
pub(crate) const MIN_READ: usize = 512;
/// Read size of a new connection.
pub(crate) const START_READ: usize = 4 * 1024;
/// Largest read size (a single operation larger than this still gets a buffer that holds it).
pub(crate) const MAX_READ: usize = 64 * 1024;
/// Consecutive reads using less than half the read size before it is halved.
const SHRINK_AFTER: u32 = 3;

/// A connection's read buffer with its adaptive read size.
pub(crate) struct ReadBuf {
    buf: BytesMut,
    /// Current read size: the spare capacity made available for one read.
    size: usize,
    /// Consecutive short reads (less than half of `size`).
    short_reads: u32,
}

impl ReadBuf {
    /// An empty buffer with the starting read size.
    pub(crate) fn new() -> Self {
        ReadBuf {
            buf: BytesMut::with_capacity(START_READ),
            size: START_READ,
            short_reads: 0,
        }
    }

    /// The bytes read and not parsed yet.
    pub(crate) fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Current read size.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Capacity of the buffer (unparsed bytes plus spare room).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Makes room for the next read: spare capacity of at least half the read size, and room
    /// for the `need` bytes (counted from the first unparsed byte) that the operation being
    /// received takes. Reuses the current allocation when nothing else refers to it; otherwise
    /// (or when it is far larger than the read size) moves the unparsed bytes to a new one.
    pub(crate) fn prepare(&mut self, need: usize) {
        let len = self.buf.len();
        let spare = self.buf.capacity() - len;
        let need_more = need.saturating_sub(len);
        if spare >= (self.size / 2).max(need_more) && self.buf.capacity() <= 4 * self.size {
            return;
        }
        let additional = self.size.max(need_more);
        // Reclaiming never allocates; it fails when a parsed slice still refers to the
        // allocation or the allocation is too small.
        if self.buf.try_reclaim(additional) && self.buf.capacity() <= 4 * (len + additional) {
            return;
        }
        let mut fresh = BytesMut::with_capacity(len + additional);
        fresh.extend_from_slice(&self.buf);
        self.buf = fresh;
    }

    /// Reads once from `rd` into the spare capacity, then adapts the read size: doubled when
    /// the read filled the spare capacity, halved after a few reads of less than half of it.
    /// Cancel-safe (as `read_buf`): nothing changes unless the read completes.
    pub(crate) async fn read_from<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
    ) -> std::io::Result<usize> {
        let spare = self.buf.capacity() - self.buf.len();
        let n = rd.read_buf(&mut self.buf).await?;
        self.adapt(n, spare);
        Ok(n)
    }

    fn adapt(&mut self, n: usize, spare: usize) {
        if n >= spare && n > 0 {
            self.short_reads = 0;
            if n * 2 >= self.size {
                self.size = (self.size * 2).min(MAX_READ);
            }
        } else if n * 2 < self.size {
            self.short_reads += 1;
            if self.short_reads >= SHRINK_AFTER {
                self.short_reads = 0;
                self.size = (self.size / 2).max(MIN_READ);
            }
        } else {
            self.short_reads = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// One read of `data` (as many bytes as fit in the spare capacity); returns bytes read.
    async fn read(rb: &mut ReadBuf, data: &[u8]) -> usize {
        let mut src = data;
        rb.read_from(&mut src).await.unwrap()
    }

    #[tokio::test]
    async fn small_operations_keep_a_small_buffer_even_while_slices_are_held() {
        let mut rb = ReadBuf::new();
        let op = [b'x'; 100];
        let mut held: Vec<Bytes> = Vec::new();
        for i in 0..2_000 {
            rb.prepare(0);
            assert_eq!(read(&mut rb, &op).await, op.len());
            held.push(rb.bytes().split_to(op.len()).freeze());
            if i % 2 == 0 {
                // Half of the slices are released at once, half stay held for a while.
                held.drain(..held.len() - 1);
            }
        }
        assert_eq!(rb.size(), MIN_READ);
        // A connection sending small operations holds (and a held slice pins) about one
        // small block, not a large fixed chunk.
        assert!(
            rb.capacity() <= 1024,
            "capacity {} for 100-byte reads",
            rb.capacity()
        );
    }

    #[tokio::test]
    async fn grows_for_full_reads_and_shrinks_back() {
        let mut rb = ReadBuf::new();
        let big = vec![b'y'; 1 << 20];
        for _ in 0..10 {
            rb.prepare(0);
            let n = read(&mut rb, &big).await;
            rb.bytes().clear();
            assert!(n > 0);
        }
        assert_eq!(rb.size(), MAX_READ);
        for _ in 0..100 {
            rb.prepare(0);
            read(&mut rb, b"PING\r\n").await;
            rb.bytes().clear();
        }
        assert_eq!(rb.size(), MIN_READ);
        assert!(rb.capacity() <= 4 * MIN_READ, "capacity {}", rb.capacity());
    }

    #[tokio::test]
    async fn keeps_unparsed_bytes_and_makes_room_for_a_large_operation() {
        let mut rb = ReadBuf::new();
        rb.prepare(0);
        read(&mut rb, b"PUB a 100000\r\nabc").await;
        let held = rb.bytes().split_to(3).freeze();
        rb.prepare(100_016);
        assert!(rb.capacity() >= 100_016);
        assert_eq!(&rb.bytes()[..], b" a 100000\r\nabc");
        assert_eq!(&held[..], b"PUB");
    }
}

//! Outbound side of a TCP connection: the bounded buffer publishers append to, and the writer
//! task that drains it in large batched writes.
//!
//! Flow control works as in core NATS servers: a connection's pending bytes (buffered plus
//! taken by the writer but not yet accepted by the socket) above half of `max_pending` make the
//! producing TCP connection stall briefly ([`ClientShared::stall`], bounded per wait and per
//! read of the producer) until the writer has drained below that mark. A connection is closed
//! as a slow consumer only when a message would take its pending bytes past `max_pending`,
//! which a reader that keeps up does not reach: its producers are slowed to its pace instead.
//! In-process producers cannot be stalled; their messages are held to the larger
//! `max_pending_in_process` instead.

use crate::Map;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::message::Outgoing;
use crate::stats::{ConnCounters, ConnectionInfo};
use crate::sublist::lock;
use crate::subscription::Subscription;

/// Initial writer batch capacity: small, as most connections receive little; the buffers grow
/// with the bursts a connection receives (up to [`KEEP_BATCH`] kept between writes).
const BATCH: usize = 4 * 1024;
/// Writer batch capacity kept between writes; larger batches are released after use.
const KEEP_BATCH: usize = 1024 * 1024;

/// Longest a producer waits for one stalled reader to drain.
pub(crate) const STALL_MAX: Duration = Duration::from_millis(5);
/// Longest a producer stalls in total between two reads of its socket.
pub(crate) const STALL_TOTAL: Duration = Duration::from_millis(10);

struct OutBuf {
    buf: BytesMut,
    /// Bytes in `buf` plus bytes the writer took and the socket has not accepted yet.
    pending: usize,
    closed: bool,
}

/// Who publishes a message, which decides the limit it is held to and whether it can stall.
pub(crate) enum Producer<'a> {
    /// A TCP connection; collects the readers its message pushed over their stall mark, when
    /// given a list.
    Tcp(Option<&'a mut Vec<Arc<ClientShared>>>),
    /// An in-process connection: never stalls, held to `max_pending_in_process`.
    InProcess,
}

/// Result of appending a message to a connection's outbound buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Queued.
    Queued,
    /// Queued; the connection is over its stall mark, so the producer should stall.
    Stall,
    /// Not queued: the connection is closed (or was just closed as a slow consumer).
    Dropped,
}

/// The part of a TCP connection shared with publishers (who append to its outbound buffer).
pub(crate) struct ClientShared {
    /// Connection id (also sent as `client_id` in INFO).
    pub cid: u64,
    /// Remote address.
    pub peer: SocketAddr,
    out: Mutex<OutBuf>,
    wake: Notify,
    /// Woken (all waiters) when the writer brings pending bytes down to the stall mark.
    drained: Notify,
    max_pending: usize,
    /// Limit for messages of in-process producers (at least `max_pending`).
    max_pending_in_process: usize,
    /// Pending bytes above which producers stall.
    stall_at: usize,
    headers: AtomicBool,
    closed: AtomicBool,
    /// Subscriptions by sid.
    pub subs: Mutex<Map<Bytes, Arc<Subscription>>>,
    /// Graceful close: stop reading, flush what is buffered, then close.
    pub closing: CancellationToken,
    /// Immediate close: abort writes.
    pub kill: CancellationToken,
    /// Monitoring counters.
    pub stats: ConnCounters,
}

fn put_num(b: &mut BytesMut, mut n: usize) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.put_slice(&tmp[i..]);
}

impl ClientShared {
    pub(crate) fn new(
        cid: u64,
        peer: SocketAddr,
        max_pending: usize,
        max_pending_in_process: usize,
    ) -> Self {
        ClientShared {
            cid,
            peer,
            out: Mutex::new(OutBuf {
                buf: BytesMut::new(),
                pending: 0,
                closed: false,
            }),
            wake: Notify::new(),
            drained: Notify::new(),
            max_pending,
            max_pending_in_process: max_pending_in_process.max(max_pending),
            stall_at: max_pending / 2,
            headers: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            subs: Mutex::new(Map::default()),
            closing: CancellationToken::new(),
            kill: CancellationToken::new(),
            stats: ConnCounters::default(),
        }
    }

    /// The connection as monitoring reports it.
    pub(crate) fn info(&self) -> ConnectionInfo {
        let pending = lock(&self.out).pending;
        let subs = lock(&self.subs)
            .values()
            .filter(|s| !s.is_closed())
            .map(|s| s.info())
            .collect();
        self.stats.report(self.cid, self.peer, pending, subs)
    }

    /// Whether the client negotiated headers (messages with headers go out as HMSG).
    pub(crate) fn set_headers(&self, on: bool) {
        self.headers.store(on, Ordering::Relaxed);
    }

    /// True once the connection is closing or closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Appends `MSG`/`HMSG` for `msg` under `sid`, held to the limit of its producer
    /// (`in_process`: `max_pending_in_process`, else `max_pending`).
    pub(crate) fn enqueue_msg(&self, msg: &Outgoing<'_>, sid: &[u8], in_process: bool) -> Enqueued {
        let headers = if self.headers.load(Ordering::Relaxed) {
            msg.headers
        } else {
            None
        };
        let hlen = headers.map_or(0, |h| h.len());
        let total = hlen + msg.payload.len();
        let need = 64 + msg.subject.len() + sid.len() + msg.reply.map_or(0, str::len) + total;
        let mut out = lock(&self.out);
        if out.closed {
            return Enqueued::Dropped;
        }
        let limit = if in_process {
            self.max_pending_in_process
        } else {
            self.max_pending
        };
        if out.pending + need > limit {
            drop(out);
            self.slow_consumer(limit);
            return Enqueued::Dropped;
        }
        let was_empty = out.buf.is_empty();
        let before = out.buf.len();
        let b = &mut out.buf;
        b.reserve(need);
        b.put_slice(if headers.is_some() { b"HMSG " } else { b"MSG " });
        b.put_slice(msg.subject.as_bytes());
        b.put_u8(b' ');
        b.put_slice(sid);
        b.put_u8(b' ');
        if let Some(r) = msg.reply {
            b.put_slice(r.as_bytes());
            b.put_u8(b' ');
        }
        if let Some(h) = headers {
            put_num(b, hlen);
            b.put_u8(b' ');
            put_num(b, total);
            b.put_slice(b"\r\n");
            b.put_slice(h);
        } else {
            put_num(b, total);
            b.put_slice(b"\r\n");
        }
        b.put_slice(msg.payload);
        b.put_slice(b"\r\n");
        let added = b.len() - before;
        out.pending += added;
        let stall = out.pending > self.stall_at;
        drop(out);
        self.stats.sent(total);
        if was_empty {
            self.wake.notify_one();
        }
        if stall {
            Enqueued::Stall
        } else {
            Enqueued::Queued
        }
    }

    /// Appends raw protocol bytes (INFO, PING, PONG, +OK, -ERR), held to the larger limit.
    pub(crate) fn enqueue_raw(&self, data: &[u8]) -> bool {
        let mut out = lock(&self.out);
        if out.closed {
            return false;
        }
        // Replies to the connection's own requests (PONG, +OK, -ERR) are small and must not
        // cut a connection that holds a large in-process burst.
        if out.pending + data.len() > self.max_pending_in_process {
            drop(out);
            self.slow_consumer(self.max_pending_in_process);
            return false;
        }
        let was_empty = out.buf.is_empty();
        out.buf.extend_from_slice(data);
        out.pending += data.len();
        drop(out);
        if was_empty {
            self.wake.notify_one();
        }
        true
    }

    fn slow_consumer(&self, limit: usize) {
        {
            let mut out = lock(&self.out);
            if out.closed {
                return;
            }
            out.closed = true;
            out.buf = BytesMut::new();
            out.pending = 0;
        }
        self.stats.mark_slow_consumer();
        self.closed.store(true, Ordering::Release);
        self.drained.notify_waiters();
        warn!(cid = self.cid, peer = %self.peer, max_pending = limit,
            "slow consumer detected, closing connection");
        self.kill.cancel();
        self.closing.cancel();
    }

    /// Stops accepting output, lets the writer flush what is buffered, then closes.
    pub(crate) fn close_graceful(&self) {
        lock(&self.out).closed = true;
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        self.closing.cancel();
    }

    /// Closes at once, dropping buffered output.
    pub(crate) fn close_now(&self) {
        {
            let mut out = lock(&self.out);
            out.closed = true;
            out.buf = BytesMut::new();
            out.pending = 0;
        }
        self.closed.store(true, Ordering::Release);
        self.drained.notify_waiters();
        self.kill.cancel();
        self.closing.cancel();
    }

    /// Records that the socket accepted `n` bytes; wakes stalled producers once pending bytes
    /// are down to the stall mark.
    fn wrote(&self, n: usize) {
        let below = {
            let mut out = lock(&self.out);
            out.pending = out.pending.saturating_sub(n);
            out.pending <= self.stall_at
        };
        if below {
            self.drained.notify_waiters();
        }
    }

    /// Waits (at most `max`) until the writer has drained pending bytes down to the stall mark
    /// or the connection is closed. A producer calls this after a delivery returned
    /// [`Enqueued::Stall`].
    pub(crate) async fn stall(&self, max: Duration) {
        let notified = self.drained.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let out = lock(&self.out);
            if out.closed || out.pending <= self.stall_at {
                return;
            }
        }
        if tokio::time::timeout(max, notified).await.is_err() {
            debug!(cid = self.cid, "producer stall timed out");
        }
    }

    /// Appends `-ERR '<text>'`.
    pub(crate) fn send_err(&self, text: &str) {
        self.enqueue_raw(format!("-ERR '{text}'\r\n").as_bytes());
    }
}

enum WriterStep {
    Write,
    Wait,
    Done,
}

/// Drains the outbound buffer in large batched writes until the connection closes.
///
/// `wr` is the socket's write half, plain or TLS; each batch is flushed once written (a no-op
/// for a plain socket; a TLS stream may hold the last records of a batch until then).
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(client: Arc<ClientShared>, mut wr: W) {
    let mut batch = BytesMut::with_capacity(BATCH);
    loop {
        let step = {
            let mut out = lock(&client.out);
            if !out.buf.is_empty() {
                std::mem::swap(&mut out.buf, &mut batch);
                WriterStep::Write
            } else if out.closed {
                WriterStep::Done
            } else {
                WriterStep::Wait
            }
        };
        match step {
            WriterStep::Wait => {
                tokio::select! {
                    _ = client.wake.notified() => {}
                    _ = client.kill.cancelled() => return,
                }
            }
            WriterStep::Done => {
                tokio::select! {
                    _ = wr.shutdown() => {}
                    _ = client.kill.cancelled() => {}
                }
                return;
            }
            WriterStep::Write => {
                let mut at = 0;
                while at < batch.len() {
                    let res = tokio::select! {
                        r = wr.write(&batch[at..]) => r,
                        _ = client.kill.cancelled() => return,
                    };
                    match res {
                        Ok(0) => {
                            debug!(cid = client.cid, "socket closed for writing");
                            client.close_now();
                            return;
                        }
                        Ok(n) => {
                            at += n;
                            client.wrote(n);
                        }
                        Err(e) => {
                            debug!(cid = client.cid, error = %e, "write failed");
                            client.close_now();
                            return;
                        }
                    }
                }
                let flushed = tokio::select! {
                    r = wr.flush() => r,
                    _ = client.kill.cancelled() => return,
                };
                if let Err(e) = flushed {
                    debug!(cid = client.cid, error = %e, "flush failed");
                    client.close_now();
                    return;
                }
                client.stats.touch();
                batch.clear();
                if batch.capacity() > KEEP_BATCH {
                    batch = BytesMut::with_capacity(BATCH);
                }
            }
        }
    }
}

//! Outbound side of a TCP connection: the bounded buffer publishers append to, and the writer
//! task that drains it in large batched writes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::message::Outgoing;
use crate::sublist::lock;
use crate::subscription::Subscription;

/// Initial writer batch capacity.
const BATCH: usize = 64 * 1024;
/// Writer batch capacity kept between writes; larger batches are released after use.
const KEEP_BATCH: usize = 1024 * 1024;

struct OutBuf {
    buf: BytesMut,
    closed: bool,
}

/// The part of a TCP connection shared with publishers (who append to its outbound buffer).
pub(crate) struct ClientShared {
    /// Connection id (also sent as `client_id` in INFO).
    pub cid: u64,
    /// Remote address.
    pub peer: SocketAddr,
    out: Mutex<OutBuf>,
    wake: Notify,
    max_pending: usize,
    headers: AtomicBool,
    closed: AtomicBool,
    /// Subscriptions by sid.
    pub subs: Mutex<HashMap<Bytes, Arc<Subscription>>>,
    /// Graceful close: stop reading, flush what is buffered, then close.
    pub closing: CancellationToken,
    /// Immediate close: abort writes.
    pub kill: CancellationToken,
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
    pub(crate) fn new(cid: u64, peer: SocketAddr, max_pending: usize) -> Self {
        ClientShared {
            cid,
            peer,
            out: Mutex::new(OutBuf {
                buf: BytesMut::new(),
                closed: false,
            }),
            wake: Notify::new(),
            max_pending,
            headers: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            subs: Mutex::new(HashMap::new()),
            closing: CancellationToken::new(),
            kill: CancellationToken::new(),
        }
    }

    /// Whether the client negotiated headers (messages with headers go out as HMSG).
    pub(crate) fn set_headers(&self, on: bool) {
        self.headers.store(on, Ordering::Relaxed);
    }

    /// True once the connection is closing or closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Appends `MSG`/`HMSG` for `msg` under `sid`. False if the connection is closed or was
    /// just closed as a slow consumer.
    pub(crate) fn enqueue_msg(&self, msg: &Outgoing<'_>, sid: &[u8]) -> bool {
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
            return false;
        }
        if out.buf.len() + need > self.max_pending {
            drop(out);
            self.slow_consumer();
            return false;
        }
        let was_empty = out.buf.is_empty();
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
        drop(out);
        if was_empty {
            self.wake.notify_one();
        }
        true
    }

    /// Appends raw protocol bytes (INFO, PING, PONG, +OK, -ERR).
    pub(crate) fn enqueue_raw(&self, data: &[u8]) -> bool {
        let mut out = lock(&self.out);
        if out.closed {
            return false;
        }
        if out.buf.len() + data.len() > self.max_pending {
            drop(out);
            self.slow_consumer();
            return false;
        }
        let was_empty = out.buf.is_empty();
        out.buf.extend_from_slice(data);
        drop(out);
        if was_empty {
            self.wake.notify_one();
        }
        true
    }

    fn slow_consumer(&self) {
        {
            let mut out = lock(&self.out);
            if out.closed {
                return;
            }
            out.closed = true;
            out.buf = BytesMut::new();
        }
        self.closed.store(true, Ordering::Release);
        warn!(cid = self.cid, peer = %self.peer, max_pending = self.max_pending,
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
        }
        self.closed.store(true, Ordering::Release);
        self.kill.cancel();
        self.closing.cancel();
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
pub(crate) async fn write_loop(client: Arc<ClientShared>, mut wr: OwnedWriteHalf) {
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
                let res = tokio::select! {
                    r = wr.write_all(&batch) => r,
                    _ = client.kill.cancelled() => return,
                };
                if let Err(e) = res {
                    debug!(cid = client.cid, error = %e, "write failed");
                    client.close_now();
                    return;
                }
                batch.clear();
                if batch.capacity() > KEEP_BATCH {
                    batch = BytesMut::with_capacity(BATCH);
                }
            }
        }
    }
}

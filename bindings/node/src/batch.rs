//! `NativeBatch`: the messages of one [`stan_client::Batch`], handed to JavaScript in one go.
//!
//! A batch crosses to JavaScript as [`NativeReceived`]: the batch object (which keeps the core
//! batch and its messages for acks) and three columns that JavaScript reads without further
//! calls: every payload in one `Buffer` (each message's `data` is a view into it), per message
//! its end offset and redelivery count and flag, and its sequence and timestamp. JavaScript
//! hands the messages out from that buffer and reports how many it handed out with
//! `markTaken(n)` (auto-ack mode: all but the newest are acked now, the newest when more is
//! asked for or at close); messages never reported stay unacked, and the server redelivers them.

use std::sync::Mutex;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{invalid_argument, to_node_error, Code};
use crate::runtime::guard;

/// One received batch as JavaScript sees it.
#[napi(object, object_from_js = false)]
pub struct NativeReceived {
    /// The batch: `markTaken`, `ack`, `deferAck`, `flushAcks`, `ackMany`.
    pub batch: NativeBatch,
    /// Every payload, one after the other.
    pub data: Buffer,
    /// Per message three values: the end offset of its payload in `data`, its redelivery
    /// count, and 1 when it is a redelivery (else 0).
    pub meta: Uint32Array,
    /// Per message two values: its sequence and its timestamp (nanoseconds since the Unix
    /// epoch, as the two's-complement bits of a signed 64-bit number).
    pub stamps: BigUint64Array,
}

impl NativeReceived {
    /// Copy the payloads of `batch` into one buffer (one copy; JavaScript gets views of it)
    /// and lay out its columns.
    pub(crate) fn new(batch: stan_client::Batch) -> Self {
        let messages = batch.messages();
        let total = messages.iter().map(|m| m.data().len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut meta = Vec::with_capacity(messages.len() * 3);
        let mut stamps = Vec::with_capacity(messages.len() * 2);
        for m in messages {
            data.extend_from_slice(m.data());
            // Payloads are limited far below 4 GiB by the NATS max payload.
            meta.push(u32::try_from(data.len()).unwrap_or(u32::MAX));
            meta.push(m.redelivery_count());
            meta.push(u32::from(m.redelivered()));
            stamps.push(m.sequence());
            stamps.push(m.timestamp_nanos() as u64);
        }
        NativeReceived {
            batch: NativeBatch {
                inner: Mutex::new(batch),
            },
            data: data.into(),
            meta: meta.into(),
            stamps: stamps.into(),
        }
    }
}

/// The core batch behind one [`NativeReceived`].
#[napi]
pub struct NativeBatch {
    inner: Mutex<stan_client::Batch>,
}

impl NativeBatch {
    fn with<T>(&self, f: impl FnOnce(&mut stan_client::Batch) -> T) -> T {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

fn message_at(batch: &stan_client::Batch, i: u32) -> stan_client::Result<&stan_client::Message> {
    batch
        .messages()
        .get(i as usize)
        .ok_or_else(|| invalid_argument(format!("no message {i} in this batch")))
}

#[napi]
impl NativeBatch {
    /// The application has taken the first `n` messages (see `Batch::mark_taken`).
    #[napi]
    pub fn mark_taken(&self, n: u32) -> napi::Result<(), Code> {
        guard(|| {
            self.with(|b| b.mark_taken(n as usize));
            Ok(())
        })
    }

    /// Acknowledge message `index` (manual-ack subscriptions); throws like `Message::ack_now`.
    #[napi]
    pub fn ack(&self, index: u32) -> napi::Result<(), Code> {
        guard(|| {
            self.with(|b| message_at(b, index).and_then(|m| m.ack_now()))
                .map_err(to_node_error)
        })
    }

    /// Acknowledge message `index` later, with the batch's other deferred acks
    /// (`Batch::defer_ack`); throws now like `ack`.
    #[napi]
    pub fn defer_ack(&self, index: u32) -> napi::Result<(), Code> {
        guard(|| {
            self.with(|b| b.defer_ack(index as usize))
                .map_err(to_node_error)
        })
    }

    /// Queue the deferred acks as one command (`Batch::flush_acks`); throws when the client
    /// is gone.
    #[napi]
    pub fn flush_acks(&self) -> napi::Result<(), Code> {
        guard(|| self.with(|b| b.flush_acks()).map_err(to_node_error))
    }

    /// Acknowledge the messages at `indices` in one call (`Message::ack_many`).
    #[napi]
    pub fn ack_many(&self, indices: Uint32Array) -> napi::Result<(), Code> {
        guard(|| {
            self.with(|b| {
                let msgs = indices
                    .iter()
                    .map(|&i| message_at(b, i))
                    .collect::<stan_client::Result<Vec<_>>>()?;
                stan_client::Message::ack_many(msgs)
            })
            .map_err(to_node_error)
        })
    }
}

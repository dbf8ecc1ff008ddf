//! [`NativeSubscription`]: a pull-based subscription read in batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use stan_client::{Batch, Message, Subscription, SubscriptionHandle};

use crate::buffer::pack_deliveries_into;
use crate::error::StanError;
use crate::message::{DeliveryBatch, NativeAcker};

/// A subscription (wraps the core `Subscription`), read one batch per call.
///
/// [`next_batch`](Self::next_batch) copies every message buffered now (up to a maximum) into
/// the subscription's delivery buffer, which the caller reads in place before its next call (see
/// [`DeliveryBatch`]). The caller hands them to the application one by one and reports how many
/// it handed out (`taken`) with the next call, or with [`settle`](Self::settle) /
/// [`close_subscription`](Self::close_subscription); in auto-ack mode a message counts as
/// handled when the next one is taken, so the taken ones are acked then and the rest of a
/// batch that is given up stays unacked (the server redelivers it).
///
/// [`close_subscription`](Self::close_subscription) and [`unsubscribe`](Self::unsubscribe) also
/// end a `next_batch()` that is waiting. Closing the Kotlin object (`close()`) drops the
/// subscription, which closes it on the server without waiting (a durable is kept).
#[derive(uniffi::Object)]
pub struct NativeSubscription {
    stream: tokio::sync::Mutex<Subscription>,
    /// The batch handed out last and its id; the caller reports progress against the id.
    current: Mutex<Option<(u64, Batch)>>,
    /// The delivery buffer, refilled for every batch (see [`DeliveryBatch`]); written only while
    /// `stream` is held.
    buffer: Mutex<Vec<u8>>,
    /// The messages of the batch in `buffer`, whose large payloads it gives by address: kept
    /// until the next batch replaces them (not by `current`, which a close drops at any time).
    pinned: Mutex<Vec<Message>>,
    next_id: AtomicU64,
    /// Closes without the stream, ending a `next_batch()` that is waiting.
    handle: SubscriptionHandle,
    subject: String,
    manual_acks: bool,
}

impl NativeSubscription {
    pub(crate) fn new(sub: Subscription) -> Self {
        NativeSubscription {
            subject: sub.subject().to_string(),
            manual_acks: sub.manual_acks(),
            handle: sub.handle(),
            stream: tokio::sync::Mutex::new(sub),
            current: Mutex::new(None),
            buffer: Mutex::new(Vec::new()),
            pinned: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Record that the first `taken` messages of batch `id` were handed out; with `release`,
    /// also give the batch up (its untaken messages stay unacked).
    fn mark(&self, id: u64, taken: u32, release: bool) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cur, batch)) = current.as_mut() {
            if *cur == id {
                batch.mark_taken(taken as usize);
            }
        }
        if release {
            current.take();
        }
    }

    /// Keep `batch` as the current one and copy it into the delivery buffer for the caller
    /// (called with `stream` held, which serialises the writers of the buffer).
    fn hand_out(&self, batch: Batch) -> DeliveryBatch {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let count = batch.messages().len() as u32;
        let (address, len) = {
            let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            pack_deliveries_into(batch.messages(), &mut buffer);
            let mut pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
            pinned.clear();
            pinned.extend_from_slice(batch.messages());
            (buffer.as_ptr() as u64, buffer.len() as u64)
        };
        let acker = self
            .manual_acks
            .then(|| Arc::new(NativeAcker::new(batch.messages().to_vec())));
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, batch));
        DeliveryBatch {
            id,
            count,
            address,
            len,
            acker,
        }
    }

    async fn end(&self, unsubscribe: bool) -> Result<(), StanError> {
        let result = if unsubscribe {
            self.handle.unsubscribe().await
        } else {
            self.handle.close().await
        };
        Ok(result?)
    }
}

export! {
    impl NativeSubscription {
        /// The channel this subscription reads.
        pub fn subject(&self) -> String {
            self.subject.clone()
        }

        /// True when the subscription uses manual acks.
        pub fn manual_acks(&self) -> bool {
            self.manual_acks
        }

        /// The next batch: waits for at least one message, then returns it with every message
        /// already buffered behind it, up to `max` (at least 1); `null` when the subscription
        /// ended (closed, unsubscribed, client closed). Throws the reason when the subscription
        /// cannot go on (then ends).
        ///
        /// `done_id` / `done_taken` report the previous batch: how many of its messages were
        /// handed to the application. In auto-ack mode they are acked (the last one by this
        /// call, as asking for more acks the message taken last); the others are left unacked.
        pub async fn next_batch(
            &self,
            max: u32,
            done_id: u64,
            done_taken: u32,
        ) -> Result<Option<DeliveryBatch>, StanError> {
            let mut stream = self.stream.lock().await;
            self.mark(done_id, done_taken, true);
            match stream.next_batch(max.max(1) as usize).await {
                Some(Ok(batch)) => Ok(Some(self.hand_out(batch))),
                Some(Err(e)) => Err(e.into()),
                None => Ok(None),
            }
        }

        /// [`next_batch`](Self::next_batch) without waiting (a plain call, no suspension): the
        /// messages buffered now, up to `max`; `null` when none is buffered, when the
        /// subscription ended, or while a `next_batch()` is waiting (then call that). It
        /// reports the previous batch only when it returns a new one.
        pub fn try_next_batch(
            &self,
            max: u32,
            done_id: u64,
            done_taken: u32,
        ) -> Result<Option<DeliveryBatch>, StanError> {
            let Ok(mut stream) = self.stream.try_lock() else {
                return Ok(None);
            };
            if stream.buffered() == 0 {
                return Ok(None);
            }
            self.mark(done_id, done_taken, true);
            match stream.try_next_batch(max.max(1) as usize) {
                Some(Ok(batch)) => Ok(Some(self.hand_out(batch))),
                Some(Err(e)) => Err(e.into()),
                None => Ok(None),
            }
        }

        /// Report that the first `taken` messages of batch `id` were handed to the application
        /// (auto-ack mode: all but the newest are acked now, the newest when more is taken or at
        /// close). Reports for another batch than the current one are ignored.
        pub fn settle(&self, id: u64, taken: u32) {
            self.mark(id, taken, false);
        }

        /// True once the subscription is closed (closed, unsubscribed, client closed, ended).
        pub fn is_closed(&self) -> bool {
            self.handle.is_closed()
        }

        /// Close the subscription after reporting batch `id` (see [`settle`](Self::settle));
        /// the untaken rest of it stays unacked. The server keeps a durable, so a later
        /// subscribe with the same durable name resumes after the last message taken.
        pub async fn close_subscription(&self, id: u64, taken: u32) -> Result<(), StanError> {
            self.mark(id, taken, true);
            self.end(false).await
        }

        /// Remove the subscription on the server (after reporting batch `id` as
        /// [`settle`](Self::settle) does); a durable is deleted with it.
        pub async fn unsubscribe(&self, id: u64, taken: u32) -> Result<(), StanError> {
            self.mark(id, taken, true);
            self.end(true).await
        }
    }
}

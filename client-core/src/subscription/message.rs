//! A delivered message and its acknowledgement.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use stan_protocol::errors;
use stan_protocol::pb::MsgProto;

use super::shared::SubShared;
use crate::error::{Error, ErrorKind, Result};

/// Ack bookkeeping of one delivered message (shared by its clones and, in auto-ack mode, the
/// subscription that handed it out).
pub(crate) struct AckHandle {
    pub(crate) sub: Arc<SubShared>,
    pub(crate) sequence: u64,
    pub(crate) timestamp: i64,
    acked: AtomicBool,
    abandoned: AtomicBool,
    /// Auto-ack mode: the application has seen the message. A message of a [`Batch`] that
    /// was never taken from it is not acked when dropped.
    ///
    /// [`Batch`]: crate::Batch
    taken: AtomicBool,
}

impl AckHandle {
    /// A handle of a message handed to the application now (`taken`) or buffered in a
    /// [`Batch`](crate::Batch) until the application takes it.
    pub(crate) fn new(sub: Arc<SubShared>, sequence: u64, timestamp: i64, taken: bool) -> Self {
        AckHandle {
            sub,
            sequence,
            timestamp,
            acked: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            taken: AtomicBool::new(taken),
        }
    }

    /// Auto-ack mode: the application took the message.
    pub(crate) fn mark_taken(&self) {
        self.taken.store(true, Ordering::Release);
    }

    /// The message will never be acked automatically (it is redelivered): the application
    /// never saw it, or its handling failed.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// Queue the ack once; false when it was already acked or the client is gone.
    pub(crate) fn send_ack(&self) -> bool {
        if self.acked.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.sub.acked.insert(self.sequence, self.timestamp);
        self.sub.send_ack(self.sequence)
    }

    /// Auto-ack mode: the consumer asked for the next message.
    pub(crate) fn auto_ack(&self) {
        if !self.abandoned.load(Ordering::Acquire) {
            self.send_ack();
        }
    }
}

struct MsgInner {
    proto: MsgProto,
    ack: Arc<AckHandle>,
}

impl Drop for MsgInner {
    fn drop(&mut self) {
        if self.ack.sub.manual_acks {
            return;
        }
        if std::thread::panicking() {
            // Dropped while unwinding: the handling failed; leave it unacked for redelivery.
            self.ack.abandon();
        } else if self.ack.taken.load(Ordering::Acquire)
            && !self.ack.abandoned.load(Ordering::Acquire)
        {
            self.ack.send_ack();
        }
    }
}

/// A message delivered to a [`Subscription`](crate::Subscription). Cheap to clone.
///
/// In auto-ack mode (the default) a message is acknowledged when the consumer asks the
/// subscription for the next message, or when the last clone of the message is dropped,
/// whichever comes first. A message dropped while its thread panics is *not* acked, so a crash
/// in the middle of handling leads to redelivery, not loss. In manual-ack mode call
/// [`ack`](Message::ack).
pub struct Message {
    inner: Arc<MsgInner>,
}

impl Clone for Message {
    fn clone(&self) -> Self {
        Message {
            inner: self.inner.clone(),
        }
    }
}

impl Message {
    pub(crate) fn new(proto: MsgProto, ack: Arc<AckHandle>) -> Self {
        Message {
            inner: Arc::new(MsgInner { proto, ack }),
        }
    }

    pub(crate) fn ack_handle(&self) -> &Arc<AckHandle> {
        &self.inner.ack
    }

    /// Acknowledge many messages of manual-ack subscriptions in one call: as
    /// [`ack_now`](Self::ack_now) for each, stopping at the first error. The messages may come
    /// from different subscriptions and batches; acking one twice is a no-op.
    ///
    /// # Errors
    /// As [`ack_now`](Self::ack_now), for the first message that could not be acked (the ones
    /// before it are acked).
    ///
    /// ```no_run
    /// # async fn demo(mut sub: stan_client::Subscription) -> stan_client::Result<()> {
    /// if let Some(batch) = sub.next_batch(256).await {
    ///     let batch = batch?;
    ///     // ... handle every message, then ack them all at once
    ///     stan_client::Message::ack_many(batch.messages())?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn ack_many<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Result<()> {
        messages.into_iter().try_for_each(Message::ack_now)
    }

    /// The channel's sequence number of this message (starts at 1).
    pub fn sequence(&self) -> u64 {
        self.inner.proto.sequence
    }

    /// The channel (subject) the message was published on.
    pub fn subject(&self) -> &str {
        &self.inner.proto.subject
    }

    /// The payload.
    pub fn data(&self) -> &Bytes {
        &self.inner.proto.data
    }

    /// When the server stored the message.
    pub fn timestamp(&self) -> SystemTime {
        let ns = self.inner.proto.timestamp;
        if ns >= 0 {
            UNIX_EPOCH + Duration::from_nanos(ns as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
        }
    }

    /// When the server stored the message, in nanoseconds since the Unix epoch.
    pub fn timestamp_nanos(&self) -> i64 {
        self.inner.proto.timestamp
    }

    /// True when this is not the first delivery of the message to this subscription.
    pub fn redelivered(&self) -> bool {
        self.inner.proto.redelivered
    }

    /// How many times the server redelivered the message (0 on the first delivery; counted in
    /// server memory only).
    pub fn redelivery_count(&self) -> u32 {
        self.inner.proto.redelivery_count
    }

    /// Acknowledge the message (manual-ack subscriptions only; acking twice is a no-op).
    ///
    /// The ack is queued to the connection and sent in order with later subscription closes.
    /// Acks made while the session is being resumed are sent once it is back. It never waits:
    /// the future completes on its first poll, exactly like [`ack_now`](Self::ack_now).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] in auto-ack mode or after the subscription was closed;
    /// [`ErrorKind::ConnectionClosed`] when the client is closed.
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// use futures::StreamExt;
    /// let mut sub = client
    ///     .subscribe("orders", stan_client::SubscribeOptions::new().manual_acks(true))
    ///     .await?;
    /// if let Some(msg) = sub.next().await {
    ///     let msg = msg?;
    ///     msg.ack().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ack(&self) -> Result<()> {
        self.ack_now()
    }

    /// [`ack`](Self::ack) without a future: queues the ack to the connection and returns at
    /// once, with the same outcome and errors. For callers that cannot (or need not) await,
    /// such as bindings acknowledging on a host-language thread.
    ///
    /// # Errors
    /// As [`ack`](Self::ack).
    ///
    /// ```no_run
    /// # fn demo(msg: &stan_client::Message) -> stan_client::Result<()> {
    /// msg.ack_now()?;
    /// # Ok(()) }
    /// ```
    pub fn ack_now(&self) -> Result<()> {
        let ack = &self.inner.ack;
        if !ack.sub.manual_acks {
            return Err(Error::new(
                ErrorKind::InvalidState,
                errors::MANUAL_ACK_IN_AUTO_MODE,
            ));
        }
        if ack.sub.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::InvalidState, errors::INVALID_SUB));
        }
        if ack.acked.load(Ordering::Acquire) {
            return Ok(());
        }
        if ack.send_ack() {
            Ok(())
        } else {
            Err(Error::closed())
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("sequence", &self.sequence())
            .field("subject", &self.subject())
            .field("data_len", &self.data().len())
            .field("timestamp", &self.timestamp_nanos())
            .field("redelivered", &self.redelivered())
            .field("redelivery_count", &self.redelivery_count())
            .finish()
    }
}

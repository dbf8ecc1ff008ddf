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

    /// Mark the message acked and record it in the subscription's ack log, without queueing
    /// the ack; false when it was acked already (the caller then sends nothing).
    pub(super) fn claim(&self) -> bool {
        if self.acked.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.sub.acked.insert(self.sequence, self.timestamp);
        true
    }

    /// Queue the ack once; false when it was already acked or the client is gone.
    pub(crate) fn send_ack(&self) -> bool {
        self.claim() && self.sub.send_ack(self.sequence)
    }

    /// Auto-ack mode: the consumer asked for the next message.
    pub(crate) fn auto_ack(&self) {
        if self.claim_auto_ack() {
            self.sub.send_ack(self.sequence);
        }
    }

    /// [`auto_ack`](Self::auto_ack) without queueing the ack: true when the caller must queue
    /// it (with [`SubShared::send_acks`], together with others of the subscription).
    pub(crate) fn claim_auto_ack(&self) -> bool {
        !self.abandoned.load(Ordering::Acquire) && self.claim()
    }

    /// Whether the application may ack the message itself: manual-ack mode and the
    /// subscription still open.
    pub(super) fn check_manual_ack(&self) -> Result<()> {
        if !self.sub.manual_acks {
            return Err(Error::new(
                ErrorKind::InvalidState,
                errors::MANUAL_ACK_IN_AUTO_MODE,
            ));
        }
        if self.sub.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::InvalidState, errors::INVALID_SUB));
        }
        Ok(())
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
    /// [`ack_now`](Self::ack_now) for each, in order, stopping at the first error. The messages
    /// may come from different subscriptions and batches; acking one twice is a no-op, and
    /// messages acked before are skipped.
    ///
    /// The acks of consecutive messages of one subscription cross into the connection task as
    /// one command (usually the whole set is one subscription's: one command for all of it);
    /// the task then sends them to the server in the given order. Each message still counts
    /// as acked at once, exactly as with [`ack_now`](Self::ack_now).
    ///
    /// # Errors
    /// As [`ack_now`](Self::ack_now), for the first message that could not be acked: the
    /// messages before it are acked (their acks are queued before the error is returned), the
    /// message and those after it are not. A message of an auto-ack subscription, or of a
    /// closed one, thus fails the call only when it is reached. When the client is closed the
    /// call fails with [`ErrorKind::ConnectionClosed`] at the first run of one subscription's
    /// messages, which then count as acked but never reach the server.
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
        // The run being gathered: consecutive acks of one subscription.
        let mut run: Option<(&Arc<SubShared>, Vec<u64>)> = None;
        for msg in messages {
            let ack = &msg.inner.ack;
            if let Err(e) = ack.check_manual_ack() {
                send_run(run)?;
                return Err(e);
            }
            if !ack.claim() {
                continue;
            }
            match &mut run {
                Some((sub, sequences)) if Arc::ptr_eq(sub, &ack.sub) => {
                    sequences.push(ack.sequence);
                }
                _ => send_run(run.replace((&ack.sub, vec![ack.sequence])))?,
            }
        }
        send_run(run)
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
        ack.check_manual_ack()?;
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

/// Queue the acks of one run of [`Message::ack_many`] (nothing for `None`).
fn send_run(run: Option<(&Arc<SubShared>, Vec<u64>)>) -> Result<()> {
    let Some((sub, sequences)) = run else {
        return Ok(());
    };
    if sub.send_acks(sequences) {
        Ok(())
    } else {
        Err(Error::closed())
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

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::acked::AckedLog;
    use crate::command::Command;

    fn sub(id: u64, manual_acks: bool, cmd: &mpsc::UnboundedSender<Command>) -> Arc<SubShared> {
        Arc::new(SubShared {
            id,
            manual_acks,
            closed: AtomicBool::new(false),
            cmd: cmd.clone(),
            acked: Arc::new(AckedLog::new(64)),
        })
    }

    fn msg(sub: &Arc<SubShared>, sequence: u64) -> Message {
        let timestamp = 1_000 + sequence as i64;
        let proto = MsgProto {
            sequence,
            timestamp,
            ..Default::default()
        };
        Message::new(
            proto,
            Arc::new(AckHandle::new(sub.clone(), sequence, timestamp, true)),
        )
    }

    /// The acks queued so far, as `(sub_id, sequences, batched)`.
    fn queued(rx: &mut mpsc::UnboundedReceiver<Command>) -> Vec<(u64, Vec<u64>, bool)> {
        let mut out = Vec::new();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Ack { sub_id, sequence } => out.push((sub_id, vec![sequence], false)),
                Command::Acks { sub_id, sequences } => out.push((sub_id, sequences, true)),
                _ => panic!("not an ack command"),
            }
        }
        out
    }

    #[test]
    fn ack_many_sends_one_command_per_run_of_one_subscription_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (a, b) = (sub(1, true, &tx), sub(2, true, &tx));
        let msgs = [
            msg(&a, 1),
            msg(&a, 2),
            msg(&a, 3),
            msg(&b, 7),
            msg(&b, 8),
            msg(&a, 4),
        ];
        Message::ack_many(&msgs).unwrap();
        assert_eq!(
            queued(&mut rx),
            vec![
                (1, vec![1, 2, 3], true),
                (2, vec![7, 8], true),
                // A run of one goes as a single ack.
                (1, vec![4], false),
            ]
        );
        for m in &msgs {
            let sub = &m.ack_handle().sub;
            assert!(
                sub.was_acked(m.sequence(), m.timestamp_nanos()),
                "#{}",
                m.sequence()
            );
        }
        // Every message is acked once: acking them again sends nothing.
        Message::ack_many(&msgs).unwrap();
        msgs[0].ack_now().unwrap();
        assert!(queued(&mut rx).is_empty());
    }

    #[test]
    fn ack_many_skips_messages_acked_before() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a = sub(1, true, &tx);
        let msgs: Vec<_> = (1..=5).map(|s| msg(&a, s)).collect();
        msgs[1].ack_now().unwrap();
        msgs[3].ack_now().unwrap();
        assert_eq!(
            queued(&mut rx),
            vec![(1, vec![2], false), (1, vec![4], false)]
        );
        Message::ack_many(&msgs).unwrap();
        assert_eq!(queued(&mut rx), vec![(1, vec![1, 3, 5], true)]);
    }

    #[test]
    fn ack_many_acks_the_messages_before_the_first_that_fails_and_no_more() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (manual, auto) = (sub(1, true, &tx), sub(2, false, &tx));
        let msgs = [
            msg(&manual, 1),
            msg(&manual, 2),
            msg(&auto, 9),
            msg(&manual, 3),
        ];
        let err = Message::ack_many(&msgs).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert_eq!(err.to_string(), msgs[2].ack_now().unwrap_err().to_string());
        assert_eq!(queued(&mut rx), vec![(1, vec![1, 2], true)]);
        assert!(!manual.was_acked(3, msgs[3].timestamp_nanos()));

        let closed = sub(3, true, &tx);
        closed.closed.store(true, Ordering::Release);
        let msgs = [msg(&manual, 3), msg(&closed, 1), msg(&manual, 4)];
        let err = Message::ack_many(&msgs).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert_eq!(err.to_string(), msgs[1].ack_now().unwrap_err().to_string());
        assert_eq!(queued(&mut rx), vec![(1, vec![3], false)]);
    }

    #[test]
    fn ack_many_on_a_closed_client_fails_as_closed() {
        let (tx, rx) = mpsc::unbounded_channel();
        let a = sub(1, true, &tx);
        let msgs = [msg(&a, 1), msg(&a, 2)];
        drop(rx);
        let err = Message::ack_many(&msgs).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
    }
}

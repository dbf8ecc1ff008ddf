//! [`Batch`]: the messages of one [`Subscription::next_batch`](crate::Subscription::next_batch).

use std::fmt;
use std::sync::Arc;

use super::{Control, Message};
use crate::error::{Error, Result};
use crate::lock::lock;

/// Messages received in one [`next_batch`](crate::Subscription::next_batch) call, in order.
///
/// A batch hands its messages to the application one by one: iterate it (`for msg in batch`,
/// or [`Iterator::next`]). In auto-ack mode taking a message acks the one taken before it,
/// exactly as [`next`](futures::StreamExt::next) does; the message taken last is acked when the
/// subscription is asked for more or closed. Messages never taken are not acked, also when
/// their clones are dropped: when a batch is dropped part way (the application stopped, a task
/// was cancelled) the rest is redelivered by the server after the ack wait.
///
/// Bindings that copy a whole batch to another language at once read
/// [`messages`](Self::messages) and report progress with [`mark_taken`](Self::mark_taken).
///
/// In manual-ack mode taking acks nothing; ack each message, or many at once with
/// [`Message::ack_many`], or defer the acks of single messages with
/// [`defer_ack`](Self::defer_ack) and queue them together with [`flush_acks`](Self::flush_acks).
pub struct Batch {
    ctl: Arc<Control>,
    messages: Vec<Message>,
    /// How many messages (from the front) the application has taken.
    taken: usize,
    /// Sequences acked with [`defer_ack`](Self::defer_ack), not yet queued to the connection.
    deferred: Vec<u64>,
}

impl Batch {
    pub(super) fn new(ctl: Arc<Control>, messages: Vec<Message>) -> Self {
        Batch {
            ctl,
            messages,
            taken: 0,
            deferred: Vec::new(),
        }
    }

    /// How many messages the batch holds (taken or not).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True for a batch without messages (`next_batch` never returns one).
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Every message of the batch, taken or not. Reading them takes nothing.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// How many messages have been taken (from the front).
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// Record that the application has taken the first `n` messages (capped at the batch's
    /// length; a smaller `n` than before changes nothing). In auto-ack mode every message
    /// taken before the newest one is acked now, and the newest one counts as the message
    /// taken last (acked when more is taken, or at close). Once the subscription is closed
    /// nothing more can be acked: messages taken after the close are redelivered.
    pub fn mark_taken(&mut self, n: usize) {
        let n = n.min(self.messages.len());
        if n <= self.taken {
            return;
        }
        let newly = &self.messages[self.taken..n];
        self.taken = n;
        let ctl = &*self.ctl;
        if ctl.shared.manual_acks {
            return;
        }
        let mut last = lock(&ctl.last);
        let mut acks = Vec::new();
        for msg in newly {
            let handle = msg.ack_handle();
            handle.mark_taken();
            if let Some(prev) = last.replace(handle.clone()) {
                if prev.claim_auto_ack() {
                    acks.push(prev.sequence);
                }
            }
        }
        // One command for all of them, queued while `last` is locked so that a concurrent
        // close request follows it.
        ctl.shared.send_acks(acks);
        drop(last);
    }

    /// Manual-ack mode: acknowledge message `index` of the batch, to be queued to the
    /// connection with the other deferred acks of the batch by [`flush_acks`](Self::flush_acks)
    /// (or when the batch is dropped): one command for many acks instead of one per message,
    /// for callers that ack message by message. Errors as [`Message::ack_now`], checked now;
    /// acking a message twice is a no-op.
    ///
    /// Flush before closing the subscription: acks flushed after the close are not sent.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) when the batch has
    /// no message `index`; otherwise as [`Message::ack_now`].
    ///
    /// ```no_run
    /// # async fn demo(mut sub: stan_client::Subscription) -> stan_client::Result<()> {
    /// while let Some(batch) = sub.next_batch(256).await {
    ///     let mut batch = batch?;
    ///     for i in 0..batch.len() {
    ///         // … handle batch.messages()[i] …
    ///         batch.defer_ack(i)?;
    ///     }
    ///     batch.flush_acks()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn defer_ack(&mut self, index: usize) -> Result<()> {
        let msg = self
            .messages
            .get(index)
            .ok_or_else(|| Error::invalid_argument(format!("no message {index} in this batch")))?;
        let ack = msg.ack_handle();
        ack.check_manual_ack()?;
        if self.ctl.shared.cmd.is_closed() {
            return Err(Error::closed());
        }
        if ack.claim() {
            self.deferred.push(ack.sequence);
        }
        Ok(())
    }

    /// Queue the acks deferred with [`defer_ack`](Self::defer_ack) since the last flush, as
    /// one command to the connection.
    ///
    /// # Errors
    /// [`ErrorKind::ConnectionClosed`](crate::ErrorKind::ConnectionClosed) when the client is
    /// gone: the deferred acks are not sent, and the server redelivers those messages to a
    /// durable or queue subscription that resumes them.
    pub fn flush_acks(&mut self) -> Result<()> {
        if self
            .ctl
            .shared
            .send_acks(std::mem::take(&mut self.deferred))
        {
            Ok(())
        } else {
            Err(Error::closed())
        }
    }
}

impl Iterator for Batch {
    type Item = Message;

    /// Take the next message: `None` when every message was taken, or when the subscription
    /// was closed (messages still in the batch are then not handed out, and stay unacked).
    fn next(&mut self) -> Option<Message> {
        if self.taken >= self.messages.len() || self.ctl.is_closed_by_app() {
            return None;
        }
        self.mark_taken(self.taken + 1);
        self.messages.get(self.taken - 1).cloned()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.messages.len() - self.taken))
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if self.ctl.shared.manual_acks {
            // Gone with the client otherwise: nothing to report the failure to.
            let _ = self.flush_acks();
            return;
        }
        for msg in &self.messages[self.taken..] {
            msg.ack_handle().abandon();
        }
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.messages.len())
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

//! [`PublishAckFuture`] and [`PublishBatch`]: the pending acknowledgements of publishes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::connection::{BatchAcks, Guid, Started};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{Error, Result};

/// The pending acknowledgement of a [`Client::publish_async`](crate::Client::publish_async) or
/// [`Client::start_publish`](crate::Client::start_publish).
/// Resolves to the guid once the server stored the message, or to the error
/// (`PublishAckTimeout`, `ServerRejected`, `ConnectionLost`, `ConnectionClosed`, and for
/// `start_publish` the errors of putting it on the wire).
#[must_use = "await it to learn whether the server stored the message"]
pub struct PublishAckFuture {
    guid: Guid,
    state: AckState,
}

enum AckState {
    /// Waiting in the publish queue ([`Client::start_publish`](crate::Client::start_publish)).
    Queued(oneshot::Receiver<Started>),
    /// On the wire, waiting for the PubAck.
    Sent(oneshot::Receiver<Result<String>>),
}

impl PublishAckFuture {
    /// A publish on the wire, waiting for its PubAck.
    pub(crate) fn sent(guid: Guid, rx: oneshot::Receiver<Result<String>>) -> Self {
        PublishAckFuture {
            guid,
            state: AckState::Sent(rx),
        }
    }

    /// A publish in the publish queue.
    pub(crate) fn queued(guid: Guid, rx: oneshot::Receiver<Started>) -> Self {
        PublishAckFuture {
            guid,
            state: AckState::Queued(rx),
        }
    }

    /// The guid of the publish (known before the ack arrives).
    pub fn guid(&self) -> &str {
        self.guid.as_str()
    }
}

impl Future for PublishAckFuture {
    type Output = Result<String>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match &mut self.state {
                AckState::Queued(started) => match Pin::new(started).poll(cx) {
                    Poll::Ready(Ok(Ok(rx))) => self.state = AckState::Sent(rx),
                    Poll::Ready(Ok(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(Error::closed())),
                    Poll::Pending => return Poll::Pending,
                },
                AckState::Sent(rx) => {
                    return match Pin::new(rx).poll(cx) {
                        Poll::Ready(Ok(r)) => Poll::Ready(r),
                        Poll::Ready(Err(_)) => Poll::Ready(Err(Error::closed())),
                        Poll::Pending => Poll::Pending,
                    }
                }
            }
        }
    }
}

impl fmt::Debug for PublishAckFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishAckFuture")
            .field("guid", &self.guid)
            .finish()
    }
}

/// Outcomes of publishes of a [`PublishBatch`]: `(index in the batch, guid or error)`.
pub type BatchOutcomes = Vec<(usize, Result<String>)>;

/// The pending acknowledgements of the publishes of one
/// [`Client::start_publish_batch`](crate::Client::start_publish_batch), reported in batches:
/// [`next_acks`](Self::next_acks) waits for at least one outcome and returns every outcome
/// available by then. The outcomes of a batch gather in one queue, so a consumer of many acks
/// wakes up once per burst, not once per ack. Dropping it does not cancel the publishes.
#[must_use = "read the acks to learn whether the server stored the messages"]
pub struct PublishBatch {
    guids: Vec<String>,
    acks: Arc<BatchAcks>,
    /// Outcomes handed out so far.
    reported: usize,
}

impl PublishBatch {
    pub(crate) fn new(guids: Vec<String>, acks: Arc<BatchAcks>) -> Self {
        PublishBatch {
            guids,
            acks,
            reported: 0,
        }
    }

    /// The guids of the publishes, in call order (known before the acks arrive).
    pub fn guids(&self) -> &[String] {
        &self.guids
    }

    /// How many publishes still wait for their outcome (or for it to be read).
    pub fn pending(&self) -> usize {
        self.guids.len() - self.reported
    }

    /// Waits until at least one publish of the batch has its outcome, then returns every
    /// outcome available now as `(index in the batch, guid or error)`; `None` once every
    /// outcome was returned. The errors are those of [`PublishAckFuture`].
    pub async fn next_acks(&mut self) -> Option<BatchOutcomes> {
        std::future::poll_fn(|cx| self.poll_acks(cx)).await
    }

    /// The outcomes available now, without waiting: empty when none is (or all were read).
    pub fn try_acks(&mut self) -> BatchOutcomes {
        let done = self.acks.take(futures::task::noop_waker_ref());
        self.reported += done.len();
        done
    }

    fn poll_acks(&mut self, cx: &mut Context<'_>) -> Poll<Option<BatchOutcomes>> {
        if self.pending() == 0 {
            return Poll::Ready(None);
        }
        let done = self.acks.take(cx.waker());
        if done.is_empty() {
            return Poll::Pending;
        }
        self.reported += done.len();
        Poll::Ready(Some(done))
    }
}

impl fmt::Debug for PublishBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishBatch")
            .field("len", &self.guids.len())
            .field("pending", &self.pending())
            .finish()
    }
}

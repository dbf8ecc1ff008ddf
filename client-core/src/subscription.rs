//! [`Subscription`]: a pull-based stream of [`Message`]s.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use stan_protocol::errors;
use tokio::sync::{mpsc, oneshot};

use crate::client::Client;
use crate::connection::Command;
use crate::error::{Error, ErrorKind, Result};
use crate::message::{AckHandle, Message, SubShared};

/// What the connection task sends to a subscription.
pub(crate) type Delivery = Result<Message>;

/// A subscription: a [`Stream`] of `Result<Message>`.
///
/// Items are `Ok(message)` while the subscription is live. When the subscription cannot go on
/// (the session was lost and is not resumed, or it could not be re-created after a resume) the
/// stream yields one `Err` with the reason and then ends. After [`close`](Self::close),
/// [`unsubscribe`](Self::unsubscribe) or [`Client::close`] it ends without an error; messages
/// still buffered are not handed out (unacked, so the server redelivers them to durables).
///
/// Dropping a subscription is a best-effort, non-blocking [`close`](Self::close) (a durable
/// subscription is kept by the server).
///
/// ```no_run
/// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
/// use futures::StreamExt;
/// use stan_client::SubscribeOptions;
///
/// let mut sub = client.subscribe("orders", SubscribeOptions::durable("audit")).await?;
/// while let Some(msg) = sub.next().await {
///     let msg = msg?;
///     println!("#{} {:?}", msg.sequence(), msg.data());
///     // auto-ack: acked when the next message is requested
/// }
/// sub.close().await?;
/// # Ok(()) }
/// ```
pub struct Subscription {
    client: Client,
    shared: Arc<SubShared>,
    subject: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
    last: Option<Arc<AckHandle>>,
    ended: bool,
}

impl Subscription {
    pub(crate) fn new(
        client: Client,
        shared: Arc<SubShared>,
        subject: String,
        rx: mpsc::UnboundedReceiver<Delivery>,
    ) -> Self {
        Subscription {
            client,
            shared,
            subject,
            rx,
            last: None,
            ended: false,
        }
    }

    /// The channel this subscription reads.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// True when the subscription uses manual acks.
    pub fn manual_acks(&self) -> bool {
        self.shared.manual_acks
    }

    /// Remove the subscription on the server; a durable subscription is deleted with it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] when already closed or unsubscribed,
    /// [`ErrorKind::RequestTimeout`], [`ErrorKind::ServerRejected`], or a connection error.
    ///
    /// ```no_run
    /// # async fn demo(sub: stan_client::Subscription) -> stan_client::Result<()> {
    /// sub.unsubscribe().await?; // the durable is gone; subscribing again starts over
    /// # Ok(()) }
    /// ```
    pub async fn unsubscribe(&self) -> Result<()> {
        self.close_or_unsubscribe(true).await
    }

    /// Close the subscription; the server keeps a durable subscription (and a durable queue
    /// group) so a later subscribe with the same durable name resumes where it stopped.
    ///
    /// # Errors
    /// As [`unsubscribe`](Self::unsubscribe), plus [`ErrorKind::NotSupported`] on servers
    /// without subscription close.
    ///
    /// ```no_run
    /// # async fn demo(sub: stan_client::Subscription) -> stan_client::Result<()> {
    /// sub.close().await?; // the durable stays; subscribe again to resume
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<()> {
        self.close_or_unsubscribe(false).await
    }

    async fn close_or_unsubscribe(&self, unsubscribe: bool) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::new(ErrorKind::InvalidState, errors::INVALID_SUB));
        }
        // Give a resume in progress the chance to finish; the task answers either way (and
        // forgets the subscription locally even when the server cannot be told).
        let wait = self.client.shared().connect_wait;
        let _ = self.client.shared().wait_session(wait).await;
        let (tx, rx) = oneshot::channel();
        self.shared
            .cmd
            .send(Command::CloseSub {
                sub_id: self.shared.id,
                unsubscribe,
                reply: Some(tx),
            })
            .map_err(|_| Error::closed())?;
        rx.await.map_err(|_| Error::closed())?
    }
}

impl Stream for Subscription {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(last) = this.last.take() {
            last.auto_ack();
        }
        if this.ended || this.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        loop {
            return match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    let handle = msg.ack_handle();
                    if this.shared.was_acked(handle.sequence, handle.timestamp) {
                        // A copy of a message the application acked while this one was
                        // buffered: ack it again and skip it.
                        handle.re_ack();
                        continue;
                    }
                    if !this.shared.manual_acks {
                        this.last = Some(handle);
                    }
                    Poll::Ready(Some(Ok(msg)))
                }
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            let _ = self.shared.cmd.send(Command::CloseSub {
                sub_id: self.shared.id,
                unsubscribe: false,
                reply: None,
            });
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("subject", &self.subject)
            .field("manual_acks", &self.shared.manual_acks)
            .finish_non_exhaustive()
    }
}

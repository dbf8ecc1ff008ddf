//! [`Subscription`]: a pull-based stream of [`Message`]s.

mod message;
mod shared;

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::Stream;
use stan_protocol::errors;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::command::{Command, Delivery};
use crate::connection::Shared;
use crate::error::{Error, ErrorKind, Result};
use crate::lock::lock;
use message::AckHandle;
pub use message::Message;
pub(crate) use shared::SubShared;

/// A subscription: a [`Stream`] of `Result<Message>`.
///
/// Items are `Ok(message)` while the subscription is live. When the subscription cannot go on
/// (the session was lost and is not resumed, or it could not be re-created after a resume) the
/// stream yields one `Err` with the reason and then ends. After [`close`](Self::close),
/// [`unsubscribe`](Self::unsubscribe) or [`Client::close`](crate::Client::close) it ends without an error; messages
/// still buffered are not handed out (unacked, so the server redelivers them to durables).
///
/// Dropping a subscription is a best-effort, non-blocking [`close`](Self::close) (a durable
/// subscription is kept by the server; in auto-ack mode the message taken last is acked).
///
/// To close it from another task while one waits in `next()`, use a [`SubscriptionHandle`]
/// from [`handle`](Self::handle); [`try_next`](Self::try_next) takes a buffered message
/// without waiting.
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
///     // auto-ack: acked when the next message is requested (or at close)
/// }
/// sub.close().await?;
/// # Ok(()) }
/// ```
pub struct Subscription {
    ctl: Arc<Control>,
    rx: mpsc::UnboundedReceiver<Delivery>,
}

/// State shared by a [`Subscription`] and its [`SubscriptionHandle`]s.
struct Control {
    /// The connection's state (session, closed or not).
    conn: Arc<Shared>,
    shared: Arc<SubShared>,
    subject: String,
    /// Auto-ack mode: the message handed out last. It counts as taken: it is acked when the
    /// next one is asked for, or when the subscription is closed or dropped. Locked while a
    /// message is being taken, so a concurrent close either acks it or stops the taking.
    last: Mutex<Option<Arc<AckHandle>>>,
    /// The stream yielded its end (or its final error).
    ended: AtomicBool,
    /// The task waiting in `poll_next`, woken by a close so that it ends.
    waker: AtomicWaker,
}

impl Control {
    fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
            || self.ended.load(Ordering::Acquire)
            || self.conn.is_closed()
    }

    /// Mark the subscription closed, end a pending `next()` and ack the message taken last
    /// (auto-ack mode). False when it was closed already.
    fn mark_closed(&self, ack_last: bool) -> bool {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.waker.wake();
        let last = lock(&self.last).take();
        if let (true, Some(last)) = (ack_last, last) {
            // Queued before the close request, so the server gets the ack first.
            last.auto_ack();
        }
        true
    }

    async fn close_or_unsubscribe(&self, unsubscribe: bool) -> Result<()> {
        if !self.mark_closed(true) {
            return Err(Error::new(ErrorKind::InvalidState, errors::INVALID_SUB));
        }
        // Give a resume in progress the chance to finish; the task answers either way (and
        // forgets the subscription locally even when the server cannot be told).
        let _ = self.conn.wait_session(self.conn.connect_wait).await;
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

impl Subscription {
    pub(crate) fn new(
        conn: Arc<Shared>,
        shared: Arc<SubShared>,
        subject: String,
        rx: mpsc::UnboundedReceiver<Delivery>,
    ) -> Self {
        Subscription {
            ctl: Arc::new(Control {
                conn,
                shared,
                subject,
                last: Mutex::new(None),
                ended: AtomicBool::new(false),
                waker: AtomicWaker::new(),
            }),
            rx,
        }
    }

    /// The channel this subscription reads.
    pub fn subject(&self) -> &str {
        &self.ctl.subject
    }

    /// True when the subscription uses manual acks.
    pub fn manual_acks(&self) -> bool {
        self.ctl.shared.manual_acks
    }

    /// True once the subscription is closed: by [`close`](Self::close),
    /// [`unsubscribe`](Self::unsubscribe) (here or through a [`SubscriptionHandle`]) or
    /// [`Client::close`](crate::Client::close), or because the client or the stream ended. Nothing new arrives
    /// after that; after a lost session the stream still yields its final error.
    pub fn is_closed(&self) -> bool {
        self.ctl.is_closed()
    }

    /// A cloneable handle that can close this subscription from anywhere, also while another
    /// task is waiting in [`next`](futures::StreamExt::next): that `next()` then ends with
    /// `None`.
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// use futures::StreamExt;
    /// let mut sub = client.subscribe("orders", Default::default()).await?;
    /// let handle = sub.handle();
    /// let reader = tokio::spawn(async move {
    ///     while let Some(msg) = sub.next().await {
    ///         match msg {
    ///             Ok(msg) => println!("#{}", msg.sequence()),
    ///             Err(e) => eprintln!("subscription failed: {e}"),
    ///         }
    ///     }
    /// });
    /// handle.close().await?; // the reader's loop ends
    /// reader.await.ok();
    /// # Ok(()) }
    /// ```
    pub fn handle(&self) -> SubscriptionHandle {
        SubscriptionHandle {
            ctl: self.ctl.clone(),
        }
    }

    /// The next message if one is buffered already, without waiting; `None` when none is
    /// buffered *or* the stream has ended (tell them apart with [`is_closed`](Self::is_closed),
    /// or call [`next`](futures::StreamExt::next), which waits). Taking a message works as with
    /// `next()`: in auto-ack mode the message taken before is acked by this call, whatever it
    /// returns. `Some(Err(_))` is the final error of the stream.
    ///
    /// ```no_run
    /// # fn demo(sub: &mut stan_client::Subscription) -> stan_client::Result<()> {
    /// while let Some(msg) = sub.try_next() {
    ///     println!("#{}", msg?.sequence());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn try_next(&mut self) -> Option<Result<Message>> {
        match self.take(None) {
            Poll::Ready(item) => item,
            Poll::Pending => None,
        }
    }

    /// Remove the subscription on the server; a durable subscription is deleted with it. In
    /// auto-ack mode the message taken last is acked first.
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
        self.ctl.close_or_unsubscribe(true).await
    }

    /// Close the subscription; the server keeps a durable subscription (and a durable queue
    /// group) so a later subscribe with the same durable name resumes where it stopped.
    ///
    /// In auto-ack mode the message taken last counts as handled: it is acked before the
    /// close, so a durable resumes after it even when the application still holds a clone of
    /// it (as garbage-collected hosts do).
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
        self.ctl.close_or_unsubscribe(false).await
    }

    /// Take the next delivery: waiting (registering `cx`) or, without `cx`, only what is
    /// buffered (`Pending`: nothing is).
    fn take(&mut self, mut cx: Option<&mut Context<'_>>) -> Poll<Option<Result<Message>>> {
        let ctl = &*self.ctl;
        if let Some(cx) = cx.as_deref_mut() {
            ctl.waker.register(cx.waker());
        }
        let mut last = lock(&ctl.last);
        if let Some(prev) = last.take() {
            prev.auto_ack();
        }
        if ctl.ended.load(Ordering::Acquire) || ctl.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        loop {
            let polled = match cx.as_deref_mut() {
                Some(cx) => self.rx.poll_recv(cx),
                None => match self.rx.try_recv() {
                    Ok(item) => Poll::Ready(Some(item)),
                    Err(TryRecvError::Empty) => Poll::Pending,
                    Err(TryRecvError::Disconnected) => Poll::Ready(None),
                },
            };
            return match polled {
                Poll::Ready(Some(Ok(proto))) => {
                    if ctl.shared.was_acked(proto.sequence, proto.timestamp) {
                        // A copy of a message the application acked while this one was
                        // buffered: ack it again and skip it.
                        ctl.shared.send_ack(proto.sequence);
                        continue;
                    }
                    let handle = Arc::new(AckHandle::new(
                        ctl.shared.clone(),
                        proto.sequence,
                        proto.timestamp,
                    ));
                    if !ctl.shared.manual_acks {
                        *last = Some(handle.clone());
                    }
                    Poll::Ready(Some(Ok(Message::new(proto, handle))))
                }
                Poll::Ready(Some(Err(e))) => {
                    ctl.ended.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Ready(None) => {
                    ctl.ended.store(true, Ordering::Release);
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

impl Stream for Subscription {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.take(Some(cx))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Dropped while unwinding: the message taken last may not have been handled.
        let ack_last = !std::thread::panicking();
        if self.ctl.mark_closed(ack_last) {
            let _ = self.ctl.shared.cmd.send(Command::CloseSub {
                sub_id: self.ctl.shared.id,
                unsubscribe: false,
                reply: None,
            });
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("subject", &self.ctl.subject)
            .field("manual_acks", &self.ctl.shared.manual_acks)
            .field("closed", &self.ctl.is_closed())
            .finish_non_exhaustive()
    }
}

/// A cloneable control handle of a [`Subscription`], from [`Subscription::handle`].
///
/// It closes or unsubscribes the subscription without needing the `Subscription` itself, so
/// it works while another task owns the stream and waits in `next()`: that `next()` ends with
/// `None` at once. Closing through a handle or through the subscription is the same
/// operation (closing twice is [`ErrorKind::InvalidState`]). A handle keeps the client's
/// connection open, like the subscription does; dropping a handle does nothing.
#[derive(Clone)]
pub struct SubscriptionHandle {
    ctl: Arc<Control>,
}

impl SubscriptionHandle {
    /// The channel of the subscription.
    pub fn subject(&self) -> &str {
        &self.ctl.subject
    }

    /// True once the subscription is closed (see [`Subscription::is_closed`]).
    pub fn is_closed(&self) -> bool {
        self.ctl.is_closed()
    }

    /// [`Subscription::close`], from any task; a pending `next()` of the subscription ends.
    ///
    /// # Errors
    /// As [`Subscription::close`].
    pub async fn close(&self) -> Result<()> {
        self.ctl.close_or_unsubscribe(false).await
    }

    /// [`Subscription::unsubscribe`], from any task; a pending `next()` of the subscription
    /// ends.
    ///
    /// # Errors
    /// As [`Subscription::unsubscribe`].
    pub async fn unsubscribe(&self) -> Result<()> {
        self.ctl.close_or_unsubscribe(true).await
    }
}

impl fmt::Debug for SubscriptionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionHandle")
            .field("subject", &self.ctl.subject)
            .field("closed", &self.ctl.is_closed())
            .finish_non_exhaustive()
    }
}

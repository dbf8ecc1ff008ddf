//! [`Subscription`]: a pull-based stream of [`Message`]s.

mod batch;
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
use stan_protocol::pb::MsgProto;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::command::{Command, Delivery};
use crate::connection::{ClientClosing, Shared};
use crate::error::{Error, ErrorKind, Result};
use crate::lock::lock;
pub use batch::Batch;
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
    /// The final error, received while a batch was being filled: handed out next.
    final_error: Option<Error>,
}

/// State shared by a [`Subscription`] and its [`SubscriptionHandle`]s.
pub(crate) struct Control {
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
    /// Closed by [`Client::close`](crate::Client::close).
    closed_by_client: AtomicBool,
    /// The task waiting in `poll_next`, woken by a close so that it ends.
    waker: AtomicWaker,
}

impl Control {
    /// Closed by the application: the subscription (close, unsubscribe, drop) or its client.
    fn is_closed_by_app(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.conn.is_closed()
    }

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
            if self.closed_by_client.load(Ordering::Acquire) {
                return Err(self.conn.closed_error());
            }
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

impl ClientClosing for Control {
    fn client_closing(&self) {
        self.closed_by_client.store(true, Ordering::Release);
        // The connection task forgets the subscription when it shuts down.
        self.mark_closed(true);
    }
}

impl Subscription {
    pub(crate) fn new(
        conn: Arc<Shared>,
        shared: Arc<SubShared>,
        subject: String,
        rx: mpsc::UnboundedReceiver<Delivery>,
    ) -> Self {
        let ctl = Arc::new(Control {
            conn,
            shared,
            subject,
            last: Mutex::new(None),
            ended: AtomicBool::new(false),
            closed_by_client: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let closing: Arc<dyn ClientClosing> = ctl.clone();
        ctl.conn.register_sub(Arc::downgrade(&closing));
        Subscription {
            ctl,
            rx,
            final_error: None,
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

    /// How many deliveries wait in the subscription's buffer (received from the server, not
    /// taken yet). A final error, if one is buffered, counts as one.
    pub fn buffered(&self) -> usize {
        self.rx.len() + usize::from(self.final_error.is_some())
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

    /// The next batch of messages: waits until at least one message is there, then returns
    /// it together with every message already buffered behind it, up to `max` (at least 1),
    /// without waiting again. `None` once the subscription has ended; `Some(Err(_))` is its
    /// final error (after the messages received before it).
    ///
    /// Asking for a batch is asking for the next message: in auto-ack mode the message taken
    /// last is acked by this call. The messages of a batch are then taken one by one from the
    /// [`Batch`] (iterate it); each is acked when the next one is taken, as with `next()`, and
    /// messages left in a batch that is dropped are *not* acked (the server redelivers them).
    ///
    /// ```no_run
    /// # async fn demo(mut sub: stan_client::Subscription) -> stan_client::Result<()> {
    /// while let Some(batch) = sub.next_batch(256).await {
    ///     for msg in batch? {
    ///         println!("#{} {:?}", msg.sequence(), msg.data());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_batch(&mut self, max: usize) -> Option<Result<Batch>> {
        std::future::poll_fn(|cx| self.take_batch(Some(cx), max)).await
    }

    /// [`next_batch`](Self::next_batch) without waiting: the messages buffered now, up to
    /// `max`; `None` when none is buffered or the stream has ended (see
    /// [`try_next`](Self::try_next)).
    pub fn try_next_batch(&mut self, max: usize) -> Option<Result<Batch>> {
        match self.take_batch(None, max) {
            Poll::Ready(item) => item,
            Poll::Pending => None,
        }
    }

    /// The start of every take: register `cx`, ack the message taken last (auto-ack mode)
    /// and tell whether the stream is over. `Some` is the item to return at once.
    fn begin_take<T>(&mut self, cx: Option<&mut Context<'_>>) -> Option<Poll<Option<Result<T>>>> {
        let ctl = &*self.ctl;
        if let Some(cx) = cx {
            ctl.waker.register(cx.waker());
        }
        if let Some(prev) = lock(&ctl.last).take() {
            prev.auto_ack();
        }
        if let Some(e) = self.final_error.take() {
            return Some(Poll::Ready(Some(Err(e))));
        }
        if ctl.ended.load(Ordering::Acquire) || ctl.shared.closed.load(Ordering::Acquire) {
            return Some(Poll::Ready(None));
        }
        None
    }

    /// Take the next delivery: waiting (registering `cx`) or, without `cx`, only what is
    /// buffered (`Pending`: nothing is).
    fn take(&mut self, mut cx: Option<&mut Context<'_>>) -> Poll<Option<Result<Message>>> {
        if let Some(done) = self.begin_take(cx.as_deref_mut()) {
            return done;
        }
        let ctl = &*self.ctl;
        let mut last = lock(&ctl.last);
        if ctl.shared.closed.load(Ordering::Acquire) {
            // Closed since `begin_take`: the close acked what it found.
            return Poll::Ready(None);
        }
        recv(ctl, &mut self.rx, cx).map(|item| {
            item.map(|delivery| {
                delivery.map(|proto| {
                    let handle = new_handle(ctl, &proto, true);
                    if !ctl.shared.manual_acks {
                        *last = Some(handle.clone());
                    }
                    Message::new(proto, handle)
                })
            })
        })
    }

    /// Take a batch: the first message as [`take`](Self::take) does, then what is buffered.
    fn take_batch(
        &mut self,
        mut cx: Option<&mut Context<'_>>,
        max: usize,
    ) -> Poll<Option<Result<Batch>>> {
        if let Some(done) = self.begin_take(cx.as_deref_mut()) {
            return done;
        }
        let ctl = &*self.ctl;
        let first = match recv(ctl, &mut self.rx, cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(proto))) => proto,
        };
        let max = max.max(1);
        let mut messages = Vec::with_capacity(max.min(self.rx.len() + 1));
        let handle = new_handle(ctl, &first, false);
        messages.push(Message::new(first, handle));
        while messages.len() < max {
            match recv(ctl, &mut self.rx, None) {
                Poll::Ready(Some(Ok(proto))) => {
                    let handle = new_handle(ctl, &proto, false);
                    messages.push(Message::new(proto, handle));
                }
                // Handed out after the messages before it.
                Poll::Ready(Some(Err(e))) => {
                    self.final_error = Some(e);
                    break;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        Poll::Ready(Some(Ok(Batch::new(self.ctl.clone(), messages))))
    }
}

/// A handle for a message received now: `taken` when it goes to the application at once.
fn new_handle(ctl: &Control, proto: &MsgProto, taken: bool) -> Arc<AckHandle> {
    Arc::new(AckHandle::new(
        ctl.shared.clone(),
        proto.sequence,
        proto.timestamp,
        taken,
    ))
}

/// The next delivery of `rx` that the application has not acked already: waiting
/// (registering `cx`) or, without `cx`, only what is buffered (`Pending`: nothing is). The end
/// of the stream (or its final error) marks it ended.
fn recv(
    ctl: &Control,
    rx: &mut mpsc::UnboundedReceiver<Delivery>,
    mut cx: Option<&mut Context<'_>>,
) -> Poll<Option<Result<MsgProto>>> {
    loop {
        let polled = match cx.as_deref_mut() {
            Some(cx) => rx.poll_recv(cx),
            None => match rx.try_recv() {
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
                Poll::Ready(Some(Ok(proto)))
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

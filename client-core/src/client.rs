//! [`Client`]: connect, publish, subscribe, events, close.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use stan_protocol::validate;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug_span, info_span, Instrument};

use crate::acked::AckedLog;
use crate::command::{Command, SubSpec};
use crate::connection::{self, put_on_wire, AckTx, BatchAcks, Guid, QueuedPub, Shared};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::event::Events;
use crate::options::{ConnectOptions, SubscribeOptions};
use crate::publish_ack::{PublishAckFuture, PublishBatch};
use crate::subscription::{SubShared, Subscription};

/// A connection to a NATS Streaming server. Cheap to clone; all clones share one connection.
///
/// The connection stays open while any clone, [`Subscription`],
/// [`SubscriptionHandle`](crate::SubscriptionHandle) or [`Message`](crate::Message) of it
/// exists, or until [`close`](Client::close). When the last of them is dropped the client
/// closes itself in the background, as `close` does (best effort, nobody hears of a failed
/// close request): publishes still awaiting their acks, and publishes still queued, fail with
/// [`ErrorKind::ConnectionClosed`]. Await the publishes (or call `close`) before dropping the
/// client when their outcome matters.
///
/// ```no_run
/// # async fn demo() -> stan_client::Result<()> {
/// use stan_client::ConnectOptions;
/// let client = ConnectOptions::new("test-cluster", "me").connect().await?;
/// let guid = client.publish("orders", "hello").await?;
/// println!("acked: {guid}");
/// client.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    shared: Arc<Shared>,
    cmd: mpsc::UnboundedSender<Command>,
    /// The publish queue of [`Client::start_publish`].
    pub_queue: mpsc::UnboundedSender<QueuedPub>,
}

impl ConnectOptions {
    /// Connect: open (or borrow) the NATS connection and register with the streaming server.
    ///
    /// ```no_run
    /// # async fn demo() -> stan_client::Result<()> {
    /// let client = stan_client::ConnectOptions::new("test-cluster", "me")
    ///     .nats_url("nats://127.0.0.1:4222")
    ///     .connect()
    ///     .await?;
    /// client.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Client> {
        connect(self).await
    }
}

pub(crate) async fn connect(options: ConnectOptions) -> Result<Client> {
    let span = info_span!(
        "stan.connect",
        cluster_id = %options.cluster_id,
        client_id = %options.client_id
    );
    async {
        let connection::Handles {
            shared,
            cmd,
            pub_queue,
        } = connection::open(&options).await?;
        tracing::info!("connected");
        Ok(Client {
            inner: Arc::new(ClientInner {
                shared,
                cmd,
                pub_queue,
            }),
        })
    }
    .instrument(span)
    .await
}

impl Client {
    /// Connect with `options` (same as [`ConnectOptions::connect`]).
    ///
    /// ```no_run
    /// # async fn demo() -> stan_client::Result<()> {
    /// let opts = stan_client::ConnectOptions::new("test-cluster", "me");
    /// let client = stan_client::Client::connect(opts).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(options: ConnectOptions) -> Result<Client> {
        connect(options).await
    }

    /// The client ID.
    pub fn client_id(&self) -> &str {
        &self.inner.shared.client_id
    }

    /// The cluster ID.
    pub fn cluster_id(&self) -> &str {
        &self.inner.shared.cluster_id
    }

    /// True once the client is closed for good (by [`close`](Self::close) or a lost session
    /// that is not resumed).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// Publish and wait until the server has stored the message; returns the publish guid.
    ///
    /// Waits for a free slot when `max_pub_acks_in_flight` publishes are already awaiting acks,
    /// and (up to the pub-ack wait) while an auto-resume is in progress.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a bad channel name; [`ErrorKind::PublishAckTimeout`]
    /// when no ack came within the pub-ack wait (the message may still have been stored);
    /// [`ErrorKind::ServerRejected`] with the server's text; [`ErrorKind::ConnectionLost`] when
    /// the session was lost while waiting (outcome unknown, never retried by the client);
    /// [`ErrorKind::ConnectionClosed`].
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// let guid = client.publish("orders", b"order #1".to_vec()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, subject: &str, payload: impl Into<Bytes>) -> Result<String> {
        self.publish_async(subject, payload).await?.await
    }

    /// Publish without waiting for the ack: resolves once the message is handed to the
    /// connection and returns a [`PublishAckFuture`] for the ack. Use this to keep many
    /// publishes in flight; it waits (back-pressure) when `max_pub_acks_in_flight` publishes
    /// await acks. Dropping the returned future does not cancel the publish.
    ///
    /// **Order.** When this future has resolved, the message is on the connection ahead of
    /// any later publish: publishes awaited one after the other (for example in a loop in one
    /// task) reach the server, and are stored, in call order. Calls running concurrently
    /// (several tasks, or several of these futures polled together) are not ordered among
    /// themselves; use [`start_publish`](Self::start_publish) when the order must follow calls
    /// that cannot await in place.
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// let mut acks = Vec::new();
    /// for i in 0..10_000 {
    ///     acks.push(client.publish_async("metrics", format!("sample {i}")).await?);
    /// }
    /// for ack in acks {
    ///     ack.await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn publish_async(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishAckFuture> {
        let payload = payload.into();
        let span = debug_span!("stan.publish", channel = subject, len = payload.len());
        self.publish_async_inner(subject, payload)
            .instrument(span)
            .await
    }

    async fn publish_async_inner(&self, subject: &str, payload: Bytes) -> Result<PublishAckFuture> {
        let guid = Guid::new();
        let (tx, rx) = oneshot::channel();
        put_on_wire(&self.inner.shared, subject, payload, guid, AckTx::One(tx)).await?;
        Ok(PublishAckFuture::sent(guid, rx))
    }

    /// Publish in call order, without awaiting anything here: the publish takes its place in
    /// the client's publish queue synchronously, and the returned [`PublishAckFuture`]
    /// resolves to the guid once the server stored the message.
    ///
    /// Publishes started this way go on the wire in the order of the calls (from several
    /// threads: in the order the calls returned), whether or not and in whatever order their
    /// futures are awaited. The queue waits as [`publish_async`](Self::publish_async) does:
    /// for a free slot when `max_pub_acks_in_flight` publishes await acks (back-pressure; the
    /// queue itself is unbounded, so a producer that never awaits its futures should bound
    /// itself), and while an auto-resume is in progress. The pub-ack wait starts once the
    /// message is on the wire. Dropping the future does not cancel the publish. It needs no
    /// async context, so any thread may call it. Publishes of this method and of
    /// `publish_async` are not ordered with respect to each other.
    ///
    /// # Errors
    /// At once: [`ErrorKind::InvalidArgument`] for a bad channel name,
    /// [`ErrorKind::ConnectionClosed`] (or the reason the client ended) on a closed client.
    /// The future: as [`publish`](Self::publish).
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// // Stored as "first" then "second", even though the acks are awaited in reverse.
    /// let first = client.start_publish("orders", "first")?;
    /// let second = client.start_publish("orders", "second")?;
    /// second.await?;
    /// first.await?;
    /// # Ok(()) }
    /// ```
    pub fn start_publish(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishAckFuture> {
        if !validate::is_valid_channel(subject) {
            return Err(Error::invalid_argument(format!(
                "invalid channel name {subject:?}"
            )));
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let guid = Guid::new();
        let (tx, rx) = oneshot::channel();
        self.inner
            .pub_queue
            .send(QueuedPub::One {
                subject: subject.to_string(),
                payload: payload.into(),
                guid,
                started: tx,
            })
            .map_err(|_| self.closed_error())?;
        Ok(PublishAckFuture::queued(guid, rx))
    }

    /// [`start_publish`](Self::start_publish) for many messages in one call: they take their
    /// places in the publish queue in order, and the returned [`PublishBatch`] reports their
    /// acks in bursts (one wake-up for every ack that arrived together). Every channel name
    /// is checked first: on a bad one nothing is published.
    ///
    /// # Errors
    /// At once: [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) for a bad
    /// channel name (nothing is published) and the closed-client errors of `start_publish`.
    /// Each ack: as [`publish`](Self::publish).
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// let items = (0..1000).map(|i| ("metrics", format!("sample {i}")));
    /// let mut batch = client.start_publish_batch(items)?;
    /// while let Some(acks) = batch.next_acks().await {
    ///     for (index, outcome) in acks {
    ///         outcome.map_err(|e| eprintln!("publish {index} failed: {e}")).ok();
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn start_publish_batch<S, P>(
        &self,
        items: impl IntoIterator<Item = (S, P)>,
    ) -> Result<PublishBatch>
    where
        S: AsRef<str>,
        P: Into<Bytes>,
    {
        let items: Vec<(S, P)> = items.into_iter().collect();
        if let Some((bad, _)) = items
            .iter()
            .find(|(s, _)| !validate::is_valid_channel(s.as_ref()))
        {
            return Err(Error::invalid_argument(format!(
                "invalid channel name {:?}",
                bad.as_ref()
            )));
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let items: Vec<(String, Bytes, Guid)> = items
            .into_iter()
            .map(|(s, p)| (s.as_ref().to_string(), p.into(), Guid::new()))
            .collect();
        let guids = items.iter().map(|(_, _, g)| g.to_string()).collect();
        let acks = Arc::new(BatchAcks::default());
        if !items.is_empty() {
            self.inner
                .pub_queue
                .send(QueuedPub::batch(items, &acks))
                .map_err(|_| self.closed_error())?;
        }
        Ok(PublishBatch::new(guids, acks))
    }

    fn closed_error(&self) -> Error {
        self.inner.shared.closed_error()
    }

    /// Subscribe to a channel.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for bad options, [`ErrorKind::ServerRejected`] (e.g.
    /// `stan: duplicate durable registration`), [`ErrorKind::RequestTimeout`], or a connection
    /// error.
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// use futures::StreamExt;
    /// use stan_client::SubscribeOptions;
    /// let mut workers = client
    ///     .subscribe("jobs", SubscribeOptions::queue("workers").deliver_all_available())
    ///     .await?;
    /// while let Some(job) = workers.next().await {
    ///     println!("job {}", job?.sequence());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(
        &self,
        subject: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription> {
        let span = info_span!(
            "stan.subscribe",
            channel = subject,
            durable = options.durable_name.as_deref().unwrap_or(""),
            queue = options.queue_group.as_deref().unwrap_or("")
        );
        self.subscribe_inner(subject, options)
            .instrument(span)
            .await
    }

    async fn subscribe_inner(
        &self,
        subject: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription> {
        let (max_in_flight, ack_wait_secs) = options.resolve(subject)?;
        let shared = &self.inner.shared;
        shared.wait_session(shared.connect_wait).await?;
        let id = shared.next_sub_id.fetch_add(1, Ordering::Relaxed);
        let acked = Arc::new(AckedLog::new(
            (max_in_flight as usize)
                .saturating_mul(2)
                .clamp(1024, 65536),
        ));
        let sub_shared = Arc::new(SubShared {
            id,
            manual_acks: options.manual_acks,
            closed: AtomicBool::new(false),
            cmd: self.inner.cmd.clone(),
            acked: acked.clone(),
        });
        let spec = SubSpec {
            channel: subject.to_string(),
            queue_group: options.queue_group.clone().unwrap_or_default(),
            durable_name: options.durable_name.clone().unwrap_or_default(),
            max_in_flight,
            ack_wait_secs,
            start: options.start_position.unwrap_or_default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.inner
            .cmd
            .send(Command::Subscribe {
                id,
                spec,
                acked,
                tx,
                reply: reply_tx,
            })
            .map_err(|_| self.closed_error())?;
        match reply_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                sub_shared.closed.store(true, Ordering::Release);
                return Err(e);
            }
            Err(_) => return Err(self.closed_error()),
        }
        Ok(Subscription::new(
            self.inner.shared.clone(),
            sub_shared,
            subject.to_string(),
            rx,
        ))
    }

    /// A stream of connection [`Event`](crate::Event)s from now on (NATS disconnects and
    /// reconnects, session lost, resumed, closed). Create it right after connecting so no event
    /// is missed. The stream ends after [`Event::Closed`](crate::Event::Closed); on a closed
    /// client it ends at once.
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) {
    /// use futures::StreamExt;
    /// let mut events = client.events();
    /// tokio::spawn(async move {
    ///     while let Some(ev) = events.next().await {
    ///         eprintln!("stan event: {ev:?}");
    ///     }
    /// });
    /// # }
    /// ```
    pub fn events(&self) -> Events {
        // Subscribe first: a close that is not visible yet will still deliver `Closed`.
        let rx = self.inner.shared.events.subscribe();
        Events::new(rx, self.is_closed())
    }

    /// Close the connection: fail pending publishes with
    /// [`ErrorKind::ConnectionClosed`], end every subscription stream (durables are kept;
    /// in auto-ack mode the message a subscription handed out last is acked first, as a
    /// subscription close does; messages still buffered in a subscription, or in a
    /// [`Batch`](crate::Batch) not taken yet, are not handed out and stay unacked), unregister
    /// from the server and close the NATS connection if this client opened it. Closing a
    /// closed client does nothing.
    ///
    /// ```no_run
    /// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
    /// client.close().await?;
    /// assert!(client.is_closed());
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        // Queued before the close request, so the server gets these acks first.
        self.inner.shared.close_subscriptions();
        let (tx, rx) = oneshot::channel();
        if self.inner.cmd.send(Command::Close { reply: tx }).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("cluster_id", &self.cluster_id())
            .field("client_id", &self.client_id())
            .field("closed", &self.is_closed())
            .finish()
    }
}

//! The streaming engine: clients, channels, subscriptions, delivery and timers.
//!
//! One task owns all state and is fed by one inbound queue (every message the transport
//! receives, plus the results of heartbeat and duplicate-client probes). It takes messages in
//! batches like the official server's I/O loop: publishes of a batch are stored, the touched
//! stores flushed, new messages dispatched, then the PubAcks sent in order. Any other request
//! first completes the pending batch, so it is handled after earlier publishes and acks.
//! Timers (ack expiry, heartbeats, max age, inactivity) live in one deadline index.

mod admin;
mod browse;
mod conn;
mod dedup;
mod delivery;
mod error;
mod fuzz;
mod publish;
mod pubmsg;
mod state;
mod subscribe;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prost::Message;
use stan_protocol::pb;
use stan_protocol::subjects::ServerSubjects;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::BrokerConfig;
use crate::snapshot::{ChannelCounters, ChannelSnapshot, ClientSnapshot, Snapshot, SubSnapshot};
use crate::store::{ServerInfo, Store};
use crate::transport::{Inbound, Route, Sink, Transport, TransportSubscription};

pub use error::{RequestError, StartError};
#[doc(hidden)]
pub use fuzz::fuzz_requests;
use state::{Channel, Client, Sub};
use timers::{TimerKey, Timers};

/// The engine's hash maps: keyed by names, IDs and inboxes that clients choose, so hashed with
/// a randomly seeded hasher; foldhash's, which costs a fraction of SipHash on the publish
/// path (several lookups per message). Their sizes are bounded by the server's limits.
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Window within which pending messages are redelivered together when an ack timer fires.
const REDELIVERY_WINDOW: Duration = Duration::from_millis(15);
/// Timeout of the standalone duplicate-server check at startup.
const STANDALONE_CHECK_TIMEOUT: Duration = Duration::from_millis(250);

/// Something for the engine task to process.
pub(crate) enum Event {
    /// A message from the transport.
    Msg(Inbound),
    /// Result of a heartbeat to a client.
    Heartbeat {
        client_id: String,
        registration: u64,
        answered: bool,
    },
    /// Result of the probe of the old client when a client ID is reused.
    Duplicate {
        old_registration: u64,
        /// Boxed: the queue moves every event by value, and this one is rare.
        req: Box<pb::ConnectRequest>,
        reply: String,
        /// Core-NATS connection the connect request came from.
        origin: Option<u64>,
        answered: bool,
    },
}

enum Control {
    Snapshot(oneshot::Sender<Snapshot>),
    /// A change made from the monitoring console.
    Admin(
        crate::monitor::console::AdminAction,
        oneshot::Sender<Result<(), crate::monitor::console::AdminError>>,
    ),
    /// A page of a channel's stored messages (monitoring console).
    Browse(
        crate::monitor::console::MsgQuery,
        oneshot::Sender<
            Result<crate::monitor::console::MsgPage, crate::monitor::console::BrowseError>,
        >,
    ),
    Shutdown(oneshot::Sender<()>),
    /// New limits (config reload).
    SetLimits(
        crate::config::StoreLimits,
        oneshot::Sender<Result<(), String>>,
    ),
    /// Test hook: run a closure on the engine state.
    #[cfg(test)]
    Inspect(Box<dyn FnOnce(&Engine) + Send>),
}

/// The receiving end of the engine's inbound queue, created before the transport so the
/// transport can be handed the matching [`Sink`].
pub struct EngineInput {
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    received: Arc<AtomicU64>,
}

impl EngineInput {
    /// A new inbound queue.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        EngineInput {
            tx,
            rx,
            received: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The sink transports deliver to.
    pub fn sink(&self) -> Sink {
        let tx = self.tx.clone();
        let received = self.received.clone();
        Arc::new(move |m: Inbound| {
            received.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(Event::Msg(m));
        })
    }
}

impl Default for EngineInput {
    fn default() -> Self {
        Self::new()
    }
}

/// Handle of a running engine task.
pub struct EngineHandle {
    ctrl: mpsc::UnboundedSender<Control>,
    frozen: watch::Sender<bool>,
    server_id: String,
    start_time: SystemTime,
    received: Arc<AtomicU64>,
}

impl EngineHandle {
    /// Number of messages the transport has handed to the engine's queue so far.
    pub fn inbound_count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// A consistent snapshot of the state (answered even while frozen).
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.ctrl.send(Control::Snapshot(tx)).ok()?;
        rx.await.ok()
    }

    /// A page of a channel's stored messages, read from its store between batches (`None`:
    /// the engine has stopped).
    pub async fn browse(
        &self,
        query: crate::monitor::console::MsgQuery,
    ) -> Option<Result<crate::monitor::console::MsgPage, crate::monitor::console::BrowseError>>
    {
        let (tx, rx) = oneshot::channel();
        self.ctrl.send(Control::Browse(query, tx)).ok()?;
        rx.await.ok()
    }

    /// Performs a console admin action and flushes the store (`None`: the engine has
    /// stopped).
    pub async fn admin(
        &self,
        action: crate::monitor::console::AdminAction,
    ) -> Option<Result<(), crate::monitor::console::AdminError>> {
        let (tx, rx) = oneshot::channel();
        self.ctrl.send(Control::Admin(action, tx)).ok()?;
        rx.await.ok()
    }

    /// Replaces the store limits: channels created from now on get them, existing channels
    /// get their new effective limits for future enforcement (next append or expiry).
    pub async fn set_limits(&self, limits: crate::config::StoreLimits) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.ctrl
            .send(Control::SetLimits(limits, tx))
            .map_err(|_| "the engine has stopped".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the engine has stopped".to_string()))
    }

    /// Processes what is queued, answers pending PubAcks, flushes and closes the store, then
    /// stops the task. Returns when done (at once if it already stopped).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.ctrl.send(Control::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Test hook: `f`'s result on the current engine state.
    #[cfg(test)]
    pub(crate) async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let f = move |e: &Engine| {
            let _ = tx.send(f(e));
        };
        self.ctrl.send(Control::Inspect(Box::new(f))).ok()?;
        rx.await.ok()
    }

    /// While frozen the engine takes nothing from its inbound queue and fires no timer.
    pub fn set_frozen(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    /// The server ID of this run.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Start time of this run.
    pub fn start_time(&self) -> SystemTime {
        self.start_time
    }
}

/// Counters reported by monitoring.
#[derive(Default, Clone)]
pub(crate) struct Stats {
    pub(crate) in_msgs: u64,
    pub(crate) in_bytes: u64,
    pub(crate) out_msgs: u64,
    pub(crate) out_bytes: u64,
    pub(crate) redeliveries: u64,
    /// Requests refused or acks dropped by client isolation.
    pub(crate) foreign_requests: u64,
    /// Per-channel traffic, by channel name.
    pub(crate) channels: Map<String, ChannelCounters>,
}

impl Stats {
    /// The counters of channel `name` (created at zero).
    pub(crate) fn channel(&mut self, name: &str) -> &mut ChannelCounters {
        if !self.channels.contains_key(name) {
            self.channels
                .insert(name.to_string(), ChannelCounters::default());
        }
        self.channels
            .get_mut(name)
            .expect("the counters were inserted above")
    }
}

/// The engine state, owned by one task.
pub(crate) struct Engine {
    pub(crate) cfg: BrokerConfig,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) store: Box<dyn Store>,
    pub(crate) subjects: ServerSubjects,
    pub(crate) server_id: String,
    pub(crate) start_time: SystemTime,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) server_subs: Vec<Box<dyn TransportSubscription>>,
    pub(crate) clients: Map<String, Client>,
    pub(crate) conn_ids: Map<Bytes, String>,
    /// The last [`Client::registration`] handed out.
    pub(crate) registrations: u64,
    pub(crate) channels: Map<String, Channel>,
    pub(crate) lower_names: Map<String, String>,
    pub(crate) subs: Map<u64, Sub>,
    pub(crate) ack_inboxes: Map<String, u64>,
    pub(crate) next_sub_id: u64,
    pub(crate) timers: Timers,
    pub(crate) stats: Stats,
    /// PubAcks of the batch: reply subject, guid, error text, channel the message went to.
    pub(crate) batch_acks: Vec<publish::BatchAck>,
    pub(crate) batch_channels: Vec<publish::BatchChannel>,
    /// When the batch's first publish was taken (for the publish-to-PubAck latency metric).
    pub(crate) batch_received: Option<std::time::Instant>,
    /// Responses that promise stored state (connect, subscribe, unsubscribe, close), held
    /// until the next store flush: reply subject, encoded response.
    pub(crate) held_replies: Vec<(String, Bytes)>,
    /// Subscriptions whose delivery starts once their held response went out: ID, resumed.
    pub(crate) held_starts: Vec<(u64, bool)>,
    /// The guids of recently stored publishes (`--dedup_window`).
    pub(crate) dedup: dedup::Dedup,
}

/// Current time in Unix nanoseconds.
pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Starts the engine: recovers/initialises the store, checks that no other streaming server
/// with the same cluster ID answers on this NATS, subscribes the server subjects and spawns the
/// engine task.
pub async fn start(
    cfg: BrokerConfig,
    transport: Arc<dyn Transport>,
    mut store: Box<dyn Store>,
    input: EngineInput,
) -> Result<EngineHandle, StartError> {
    let mut subjects = ServerSubjects::new(&cfg.cluster_id, &cfg.discover_prefix);
    let recovered = store.recover().await.map_err(StartError::Recover)?;
    let stored_info = recovered.as_ref().and_then(|r| r.server_info.as_ref());
    if let Some(info) = stored_info {
        if info.cluster_id != cfg.cluster_id {
            return Err(StartError::ClusterIdMismatch {
                configured: cfg.cluster_id.clone(),
                recovered: info.cluster_id.clone(),
            });
        }
        subjects = info.subjects.clone();
    }
    let needs_init = stored_info.is_none();
    check_standalone(&*transport, &cfg.cluster_id, &subjects.discover).await?;
    let server_id = stan_protocol::subjects::new_nuid();
    if needs_init {
        store
            .init(&ServerInfo {
                cluster_id: cfg.cluster_id.clone(),
                node_id: String::new(),
                subjects: subjects.clone(),
            })
            .map_err(StartError::Init)?;
    }
    let start_time = SystemTime::now();
    let EngineInput { tx, rx, received } = input;
    let dedup = dedup::Dedup::new(cfg.dedup_window);
    let mut engine = Engine {
        cfg,
        transport: transport.clone(),
        store,
        subjects: subjects.clone(),
        server_id: server_id.clone(),
        start_time,
        events: tx,
        server_subs: Vec::new(),
        clients: Map::default(),
        conn_ids: Map::default(),
        registrations: 0,
        channels: Map::default(),
        lower_names: Map::default(),
        subs: Map::default(),
        ack_inboxes: Map::default(),
        next_sub_id: 1,
        timers: Timers::default(),
        stats: Stats::default(),
        batch_acks: Vec::new(),
        batch_channels: Vec::new(),
        batch_received: None,
        held_replies: Vec::new(),
        held_starts: Vec::new(),
        dedup,
    };
    if let Some(r) = recovered {
        engine.apply_recovered(r);
    }
    let routes = [
        (subjects.discover.clone(), Route::Connect),
        (subjects.pings.clone(), Route::Ping),
        (format!("{}.>", subjects.publish), Route::Publish),
        (subjects.subscribe.clone(), Route::Subscribe),
        (subjects.unsubscribe.clone(), Route::Unsubscribe),
        (subjects.sub_close.clone(), Route::SubClose),
        (subjects.close.clone(), Route::Close),
    ];
    for (subject, route) in routes {
        let s = transport
            .subscribe(&subject, route)
            .map_err(|source| StartError::Subscribe { subject, source })?;
        engine.server_subs.push(s);
    }
    // The subscriptions are in place at the server before the broker says it is ready (an
    // external server processes them asynchronously).
    transport.flush().await;
    let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
    let (frozen_tx, frozen_rx) = watch::channel(false);
    tokio::spawn(engine.run(rx, ctrl_rx, frozen_rx));
    Ok(EngineHandle {
        ctrl: ctrl_tx,
        frozen: frozen_tx,
        server_id,
        start_time,
        received,
    })
}

/// §3.14: a decodable answer on our own discover subject means another server with this
/// cluster ID is running; tell it to drop the probe client and refuse to start.
async fn check_standalone(
    transport: &dyn Transport,
    cluster_id: &str,
    discover: &str,
) -> Result<(), StartError> {
    let req = pb::ConnectRequest {
        client_id: cluster_id.to_string(),
        heartbeat_inbox: stan_protocol::subjects::new_inbox(),
        protocol: stan_protocol::defaults::PROTOCOL_VERSION,
        conn_id: Bytes::from(stan_protocol::subjects::new_nuid()),
        ..Default::default()
    };
    let answer = transport
        .request(
            discover,
            req.encode_to_vec().into(),
            STANDALONE_CHECK_TIMEOUT,
        )
        .await;
    let Some(answer) = answer else { return Ok(()) };
    let Ok(resp) = pb::ConnectResponse::decode(answer) else {
        return Ok(());
    };
    if !resp.close_requests.is_empty() {
        let close = pb::CloseRequest {
            client_id: cluster_id.to_string(),
        };
        let _ = transport
            .request(
                &resp.close_requests,
                close.encode_to_vec().into(),
                STANDALONE_CHECK_TIMEOUT,
            )
            .await;
    }
    Err(StartError::DuplicateServer(cluster_id.to_string()))
}

impl Engine {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Event>,
        mut ctrl: mpsc::UnboundedReceiver<Control>,
        mut frozen: watch::Receiver<bool>,
    ) {
        let batch_size = self.cfg.io_batch_size.max(1);
        let mut frozen_open = true;
        // After a recovery: overdue pending messages first, then new ones.
        self.fire_timers();
        let names: Vec<String> = self.channels.keys().cloned().collect();
        for name in names {
            self.dispatch_channel(&name);
        }
        loop {
            let is_frozen = *frozen.borrow_and_update();
            let deadline = self.timers.next();
            tokio::select! {
                biased;
                c = ctrl.recv() => match c {
                    Some(Control::Snapshot(tx)) => {
                        let _ = tx.send(self.snapshot());
                    }
                    Some(Control::Admin(action, tx)) => {
                        let r = self.admin(action);
                        self.flush_store().await;
                        let _ = tx.send(r);
                    }
                    Some(Control::Browse(query, tx)) => {
                        let _ = tx.send(self.browse(&query));
                    }
                    Some(Control::SetLimits(limits, tx)) => {
                        let _ = tx.send(self.set_limits(limits));
                    }
                    #[cfg(test)]
                    Some(Control::Inspect(f)) => f(&self),
                    Some(Control::Shutdown(tx)) => {
                        self.shutdown(&mut rx).await;
                        let _ = tx.send(());
                        return;
                    }
                    None => {
                        self.shutdown(&mut rx).await;
                        return;
                    }
                },
                r = frozen.changed(), if frozen_open => {
                    if r.is_err() {
                        frozen_open = false;
                    }
                }
                ev = rx.recv(), if !is_frozen => {
                    let Some(ev) = ev else { return };
                    self.process(ev).await;
                    let mut n = 1;
                    while n < batch_size {
                        match rx.try_recv() {
                            Ok(ev) => {
                                self.process(ev).await;
                                n += 1;
                            }
                            Err(_) => break,
                        }
                    }
                    self.finish_batch().await;
                    self.release_replies().await;
                    self.fire_timers();
                    self.flush_store().await;
                }
                _ = sleep_until_opt(deadline), if deadline.is_some() && !is_frozen => {
                    self.fire_timers();
                    self.flush_store().await;
                }
            }
        }
    }

    /// Sends the held responses of the pass (then starts the held deliveries) after one store
    /// flush, so a response that promises state (a client record, a durable, a subscription
    /// gone offline) is sent only once that state is on disk (synced with `--file_sync`). One
    /// flush covers every request of the pass; with nothing held this is free. A failed flush
    /// is logged and the responses go out anyway: the state is live in memory, as it would be
    /// after any other store write failure.
    pub(crate) async fn release_replies(&mut self) {
        if self.held_replies.is_empty() && self.held_starts.is_empty() {
            return;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!("store flush before responses failed: {e}");
        }
        for (subject, payload) in std::mem::take(&mut self.held_replies) {
            self.transport.publish(&subject, None, payload);
        }
        for (id, resumed) in std::mem::take(&mut self.held_starts) {
            self.start_delivery(id, resumed);
        }
    }

    /// Holds an encoded protobuf response (if there is a reply subject) until
    /// [`Engine::release_replies`].
    pub(crate) fn hold_reply<M: Message>(&mut self, reply: Option<&str>, msg: &M) {
        if let Some(r) = reply {
            self.held_replies
                .push((r.to_string(), msg.encode_to_vec().into()));
        }
    }

    /// Makes what requests and timers changed outside a publish batch durable (subscription
    /// records, pending and acked sequences, clients): the store flushes whatever it buffered.
    async fn flush_store(&mut self) {
        if let Err(e) = self.store.flush().await {
            tracing::error!("store flush failed: {e}");
        }
    }

    async fn shutdown(&mut self, rx: &mut mpsc::UnboundedReceiver<Event>) {
        // Stop taking requests, then answer whatever already arrived.
        self.server_subs.clear();
        while let Ok(ev) = rx.try_recv() {
            self.process(ev).await;
        }
        self.finish_batch().await;
        self.release_replies().await;
        for sub in self.subs.values_mut() {
            sub.ack_sub = None;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!("store flush at shutdown failed: {e}");
        }
        if let Err(e) = self.store.close().await {
            tracing::error!("store close failed: {e}");
        }
        self.transport.flush().await;
    }

    async fn process(&mut self, ev: Event) {
        match ev {
            Event::Msg(m) => match m.route {
                Route::Publish => self.handle_publish(m),
                Route::Ack(id) => self.handle_ack(id, &m.payload, m.origin),
                route => {
                    self.finish_batch().await;
                    match route {
                        Route::Connect => self.handle_connect(m),
                        Route::Ping => self.handle_ping(m),
                        Route::Subscribe => self.handle_subscribe(m),
                        Route::Unsubscribe => self.handle_unsubscribe(m, false),
                        Route::SubClose => self.handle_unsubscribe(m, true),
                        Route::Close => self.handle_close(m),
                        Route::Publish | Route::Ack(_) => {}
                    }
                }
            },
            Event::Heartbeat {
                client_id,
                registration,
                answered,
            } => {
                self.finish_batch().await;
                self.heartbeat_result(&client_id, registration, answered);
            }
            Event::Duplicate {
                old_registration,
                req,
                reply,
                origin,
                answered,
            } => {
                self.finish_batch().await;
                self.duplicate_result(old_registration, *req, reply, origin, answered);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Ack(id) => self.ack_timeout(id),
                TimerKey::Heartbeat(client) => self.send_heartbeat(&client),
                TimerKey::Age(channel) => self.expire_channel(&channel),
                TimerKey::Inactivity(channel) => self.inactivity_check(&channel),
            }
        }
    }

    /// Sends an encoded protobuf reply, if there is a reply subject.
    pub(crate) fn reply<M: Message>(&self, reply: Option<&str>, msg: &M) {
        if let Some(r) = reply {
            self.transport.publish(r, None, msg.encode_to_vec().into());
        }
    }

    /// See [`EngineHandle::set_limits`].
    fn set_limits(&mut self, limits: crate::config::StoreLimits) -> Result<(), String> {
        self.store
            .set_limits(limits.clone())
            .map_err(|e| e.to_string())?;
        for ch in self.channels.values_mut() {
            let eff = crate::store::limits::effective_limits(&limits, &ch.name);
            ch.store.msgs.set_limits(&eff).map_err(|e| e.to_string())?;
            ch.store.limits = eff;
        }
        self.cfg.limits = limits;
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        let sub_snap = |id: &u64| -> Option<SubSnapshot> {
            let s = self.subs.get(id)?;
            let last_sent = if s.q_group.is_empty() {
                s.last_sent
            } else {
                self.channels
                    .get(&s.channel)
                    .and_then(|c| c.queues.get(&s.q_group))
                    .map(|g| g.last_sent)
                    .unwrap_or(s.last_sent)
            };
            Some(SubSnapshot {
                client_id: s.client_id.clone(),
                inbox: s.inbox.clone(),
                ack_inbox: s.ack_inbox.clone(),
                durable_name: s.durable_name.clone(),
                queue_name: s.q_group.clone(),
                is_durable: s.is_durable,
                is_offline: s.offline,
                max_inflight: s.max_in_flight,
                ack_wait_secs: s.ack_wait.as_secs() as i32,
                last_sent,
                pending_count: s.pending.len(),
                is_stalled: s.stalled(),
            })
        };
        let mut clients: Vec<ClientSnapshot> = self
            .clients
            .values()
            .map(|c| ClientSnapshot {
                id: c.id.clone(),
                hb_inbox: c.hb_inbox.clone(),
                hb_failures: c.hb_failures,
                subs: c.subs.iter().filter_map(sub_snap).collect(),
            })
            .collect();
        clients.sort_by(|a, b| a.id.cmp(&b.id));
        let mut channels: Vec<ChannelSnapshot> = self
            .channels
            .values()
            .map(|c| {
                let (msgs, bytes) = c.store.msgs.state();
                ChannelSnapshot {
                    name: c.name.clone(),
                    msgs,
                    bytes,
                    first_seq: c.store.msgs.first_sequence(),
                    last_seq: c.store.msgs.last_sequence(),
                    subs: c.all_sub_ids().iter().filter_map(sub_snap).collect(),
                    limits: c.store.limits.clone(),
                    counters: self
                        .stats
                        .channels
                        .get(&c.name)
                        .copied()
                        .unwrap_or_default(),
                }
            })
            .collect();
        channels.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            server_id: self.server_id.clone(),
            cluster_id: self.cfg.cluster_id.clone(),
            start_time: self.start_time,
            store_type: self.store.store_type(),
            in_msgs: self.stats.in_msgs,
            in_bytes: self.stats.in_bytes,
            out_msgs: self.stats.out_msgs,
            out_bytes: self.stats.out_bytes,
            redeliveries: self.stats.redeliveries,
            foreign_requests: self.stats.foreign_requests,
            clients,
            channels,
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

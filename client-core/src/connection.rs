//! The connection task: one per [`Client`](crate::Client). It owns the session state (server
//! subjects, subscriptions, ping timer, heartbeat replies, auto-resume) and the pub-ack timers;
//! the public handles talk to it through [`Command`]s. Publishing does not go through the task:
//! publishers register in the shared [`PendingPubs`] table and publish directly, and the task
//! completes them when PubAcks arrive.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Subject, Subscriber};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use stan_protocol::errors;
use stan_protocol::pb;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::event::{Event, LostReason};
use crate::message::{AckHandle, Message, SubShared};
use crate::options::{Resolved, StartPosition};
use crate::subscription::Delivery;

/// Consecutive `clientID already registered` answers after which auto-resume gives up.
const RESUME_REJECTIONS_BEFORE_GIVING_UP: u32 = 3;
/// Pause between re-register attempts that were rejected as duplicates (longer than the
/// server's duplicate probe, so our own stale attempts have been settled).
const RESUME_REJECTION_PAUSE: Duration = Duration::from_secs(1);
/// Attempts to re-create one subscription during a resume.
const RESUBSCRIBE_ATTEMPTS: u32 = 3;
/// Maximum pause between re-register attempts that timed out.
const RESUME_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// `wait` from now, saturating far in the future (an option like `Duration::MAX` means "wait
/// forever" and must not overflow the clock).
pub(crate) fn deadline_after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

/// One registration with the server.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) epoch: u64,
    pub(crate) conn_id: Bytes,
    pub(crate) pub_prefix: String,
    pub(crate) sub_requests: String,
    pub(crate) unsub_requests: String,
    pub(crate) sub_close_requests: String,
    pub(crate) close_requests: String,
    pub(crate) ping_requests: String,
    /// (interval, max out) when pinging.
    pub(crate) ping: Option<(Duration, u32)>,
}

/// The session as seen by publishers and other callers.
#[derive(Clone, Debug)]
pub(crate) enum SessionState {
    Active(Arc<Session>),
    Resuming,
    Closed(ErrorKind, String),
}

/// A publish awaiting its PubAck.
pub(crate) struct PendingPub {
    pub(crate) tx: oneshot::Sender<Result<String>>,
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// Publishes awaiting PubAcks, with their deadlines in publish order (the ack wait is the same
/// for all, so the front always expires first).
#[derive(Default)]
pub(crate) struct PendingPubs {
    /// Epoch of the session accepting publishes (0: none).
    pub(crate) epoch: u64,
    pub(crate) map: HashMap<String, PendingPub>,
    pub(crate) order: VecDeque<(Instant, String)>,
}

impl PendingPubs {
    fn remove(&mut self, guid: &str) -> Option<PendingPub> {
        let entry = self.map.remove(guid);
        while let Some((_, g)) = self.order.front() {
            if self.map.contains_key(g) {
                break;
            }
            self.order.pop_front();
        }
        entry
    }
}

/// State shared by the handles and the task.
pub(crate) struct Shared {
    pub(crate) client_id: String,
    pub(crate) cluster_id: String,
    pub(crate) nats: async_nats::Client,
    pub(crate) pub_ack_inbox: Subject,
    pub(crate) connect_wait: Duration,
    pub(crate) pub_ack_wait: Duration,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) pending: Mutex<PendingPubs>,
    pub(crate) pub_timer: Notify,
    pub(crate) session: watch::Sender<SessionState>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) next_sub_id: AtomicU64,
}

impl Shared {
    /// The current session, waiting up to `wait` while a resume is in progress.
    pub(crate) async fn wait_session(&self, wait: Duration) -> Result<Arc<Session>> {
        if let SessionState::Active(s) = &*self.session.borrow() {
            return Ok(s.clone());
        }
        let mut rx = self.session.subscribe();
        let deadline = deadline_after(wait);
        loop {
            match &*rx.borrow_and_update() {
                SessionState::Active(s) => return Ok(s.clone()),
                SessionState::Closed(kind, msg) => return Err(Error::new(*kind, msg.clone())),
                SessionState::Resuming => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(Error::closed()),
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::ConnectionLost,
                        "stan: connection lost, session is being resumed",
                    ))
                }
            }
        }
    }

    pub(crate) fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    /// Fail every pending publish and stop accepting publishes for the current session.
    fn fail_pending(&self, err: &Error) {
        let drained: Vec<PendingPub> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.epoch = 0;
            p.order.clear();
            p.map.drain().map(|(_, v)| v).collect()
        };
        for entry in drained {
            let _ = entry.tx.send(Err(err.shallow_clone()));
        }
    }
}

/// What a subscription is, as sent to the server.
#[derive(Clone, Debug)]
pub(crate) struct SubSpec {
    pub(crate) channel: String,
    pub(crate) queue_group: String,
    pub(crate) durable_name: String,
    pub(crate) max_in_flight: i32,
    pub(crate) ack_wait_secs: i32,
    pub(crate) start: StartPosition,
}

/// Requests from the handles to the task.
pub(crate) enum Command {
    Subscribe {
        spec: SubSpec,
        shared: Arc<SubShared>,
        tx: mpsc::UnboundedSender<Delivery>,
        reply: oneshot::Sender<Result<()>>,
    },
    Ack {
        sub_id: u64,
        sequence: u64,
    },
    CloseSub {
        sub_id: u64,
        unsubscribe: bool,
        reply: Option<oneshot::Sender<Result<()>>>,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Failure of a NATS request.
#[derive(Debug)]
pub(crate) enum ReqError {
    Timeout,
    Other(BoxError),
}

/// A NATS request with a timeout; no-responders counts as a timeout (nobody answered).
pub(crate) async fn request(
    nats: &async_nats::Client,
    subject: String,
    payload: Vec<u8>,
    timeout: Duration,
) -> std::result::Result<Bytes, ReqError> {
    use async_nats::RequestErrorKind as K;
    let req = async_nats::Request::new()
        .payload(Bytes::from(payload))
        .timeout(Some(timeout));
    match nats.send_request(subject, req).await {
        Ok(m) => Ok(m.payload),
        Err(e) => match e.kind() {
            K::TimedOut | K::NoResponders => Err(ReqError::Timeout),
            _ => Err(ReqError::Other(Box::new(e))),
        },
    }
}

/// A STAN response: its `error` is empty when the server accepted the request.
trait StanResponse: prost::Message + Default {
    fn into_error(self) -> std::result::Result<Self, String>;
}

macro_rules! stan_response {
    ($($t:ty),*) => {$(
        impl StanResponse for $t {
            fn into_error(self) -> std::result::Result<Self, String> {
                if self.error.is_empty() {
                    Ok(self)
                } else {
                    Err(self.error)
                }
            }
        }
    )*};
}
stan_response!(
    pb::ConnectResponse,
    pb::SubscriptionResponse,
    pb::CloseResponse
);

/// Reads the outcome of a STAN request: the response when the server accepted it, else
/// `timeout` (nobody answered), a transport error (`failed`), a protocol error (`malformed`)
/// or the server's own error string.
fn read_response<R: StanResponse>(
    result: std::result::Result<Bytes, ReqError>,
    timeout: Error,
    failed: &'static str,
    malformed: &'static str,
) -> Result<R> {
    match result {
        Ok(bytes) => match R::decode(bytes) {
            Ok(r) => r
                .into_error()
                .map_err(|e| Error::new(ErrorKind::ServerRejected, e)),
            Err(e) => Err(Error::with_source(ErrorKind::Protocol, malformed, e)),
        },
        Err(ReqError::Timeout) => Err(timeout),
        Err(ReqError::Other(e)) => Err(Error::with_source(ErrorKind::Transport, failed, e)),
    }
}

/// What registering needs; cloned into the resume future.
#[derive(Clone)]
pub(crate) struct RegisterCtx {
    pub(crate) nats: async_nats::Client,
    pub(crate) client_id: String,
    pub(crate) resolved: Resolved,
    pub(crate) inbox_base: String,
}

impl RegisterCtx {
    pub(crate) fn hb_inbox(&self, id: u64) -> String {
        format!("{}.hb.{id}", self.inbox_base)
    }

    /// Send one ConnectRequest; returns the response and the connID used.
    pub(crate) async fn register(&self, hb_id: u64) -> Result<(pb::ConnectResponse, Bytes)> {
        let conn_id = Bytes::from(stan_protocol::subjects::new_nuid());
        let req = pb::ConnectRequest {
            client_id: self.client_id.clone(),
            heartbeat_inbox: self.hb_inbox(hb_id),
            protocol: stan_protocol::defaults::PROTOCOL_VERSION,
            conn_id: conn_id.clone(),
            ping_interval: self.resolved.ping_interval_wire,
            ping_max_out: self.resolved.ping_max_out,
        };
        let result = request(
            &self.nats,
            self.resolved.discover_subject.clone(),
            req.encode_to_vec(),
            self.resolved.connect_wait,
        )
        .await;
        let resp: pb::ConnectResponse = read_response(
            result,
            Error::new(ErrorKind::ConnectTimeout, errors::CONNECT_REQ_TIMEOUT),
            "nats: connect request failed",
            "stan: malformed connect response",
        )?;
        Ok((resp, conn_id))
    }
}

/// Build a session from a successful ConnectResponse.
pub(crate) fn session_from(epoch: u64, resp: pb::ConnectResponse, conn_id: Bytes) -> Session {
    let ping = if resp.protocol >= 1 && resp.ping_interval != 0 && !resp.ping_requests.is_empty() {
        let interval = if resp.ping_interval > 0 {
            Duration::from_secs(resp.ping_interval as u64)
        } else {
            Duration::from_millis(resp.ping_interval.unsigned_abs() as u64)
        };
        Some((interval, resp.ping_max_out.max(1) as u32))
    } else {
        None
    };
    Session {
        epoch,
        conn_id,
        pub_prefix: resp.pub_prefix,
        sub_requests: resp.sub_requests,
        unsub_requests: resp.unsub_requests,
        sub_close_requests: resp.sub_close_requests,
        close_requests: resp.close_requests,
        ping_requests: resp.ping_requests,
        ping,
    }
}

/// A subscription as the task knows it.
struct SubEntry {
    spec: SubSpec,
    shared: Arc<SubShared>,
    tx: mpsc::UnboundedSender<Delivery>,
    /// Bumped for every SubscriptionRequest; deliveries to an older inbox are dropped.
    gen: u64,
    /// Ack inbox of the current server-side subscription (None while (re)subscribing).
    ack_inbox: Option<Subject>,
    /// Reply to the application's subscribe call, until the server confirmed.
    pending_reply: Option<oneshot::Sender<Result<()>>>,
    /// Acks made while there was no ack inbox.
    queued_acks: Vec<u64>,
    /// Delivered, not yet acked.
    unacked: BTreeSet<u64>,
    /// Sequence of the last first-time delivery.
    last_received: u64,
    resubscribe_attempts: u32,
}

impl SubEntry {
    /// Where a non-durable subscription restarts after a resume.
    fn resume_start(&self) -> StartPosition {
        match self.unacked.first() {
            Some(seq) => StartPosition::Sequence(*seq),
            None if self.last_received > 0 => StartPosition::Sequence(self.last_received + 1),
            None => self.spec.start,
        }
    }
}

enum OpDone {
    Subscribed {
        sub_id: u64,
        gen: u64,
        result: std::result::Result<Bytes, ReqError>,
    },
    SubClosed {
        unsubscribe: bool,
        reply: Option<oneshot::Sender<Result<()>>>,
        result: std::result::Result<Bytes, ReqError>,
    },
    Registered(Result<(pb::ConnectResponse, Bytes)>),
}

enum Wake {
    Cmd(Option<Command>),
    Inbox(Option<async_nats::Message>),
    PubAck(Option<async_nats::Message>),
    Nats(Option<async_nats::Event>),
    Op(OpDone),
    Ping,
    PubTimer,
    PubTimerArm,
}

/// The connection task.
pub(crate) struct Task {
    shared: Arc<Shared>,
    ctx: RegisterCtx,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    nats_events: Option<mpsc::UnboundedReceiver<async_nats::Event>>,
    owns_nats: bool,
    inbox_sub: Subscriber,
    ack_sub: Subscriber,
    session: Option<Arc<Session>>,
    epoch: u64,
    hb_current: Arc<AtomicU64>,
    ping_subject: String,
    pings_out: u32,
    ping_timer: Option<Interval>,
    nats_connected: bool,
    server_id: String,
    subs: HashMap<u64, SubEntry>,
    ops: FuturesUnordered<BoxFuture<'static, OpDone>>,
    resume_pending: usize,
    resume_failed: usize,
    pub_sleep: Pin<Box<Sleep>>,
    pub_armed: bool,
    stopped: bool,
    /// [`Event::Closed`] was emitted.
    closed_emitted: bool,
}

/// Everything `connect` hands to the task.
pub(crate) struct TaskInit {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ctx: RegisterCtx,
    pub(crate) cmd_rx: mpsc::UnboundedReceiver<Command>,
    pub(crate) nats_events: Option<mpsc::UnboundedReceiver<async_nats::Event>>,
    pub(crate) owns_nats: bool,
    pub(crate) inbox_sub: Subscriber,
    pub(crate) ack_sub: Subscriber,
    pub(crate) hb_id: u64,
    pub(crate) response: pb::ConnectResponse,
    pub(crate) conn_id: Bytes,
}

impl Task {
    pub(crate) fn new(init: TaskInit) -> Self {
        let mut task = Task {
            shared: init.shared,
            ctx: init.ctx,
            cmd_rx: init.cmd_rx,
            nats_events: init.nats_events,
            owns_nats: init.owns_nats,
            inbox_sub: init.inbox_sub,
            ack_sub: init.ack_sub,
            session: None,
            epoch: 0,
            hb_current: Arc::new(AtomicU64::new(init.hb_id)),
            ping_subject: String::new(),
            pings_out: 0,
            ping_timer: None,
            nats_connected: true,
            server_id: String::new(),
            subs: HashMap::new(),
            ops: FuturesUnordered::new(),
            resume_pending: 0,
            resume_failed: 0,
            pub_sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            pub_armed: false,
            stopped: false,
            closed_emitted: false,
        };
        task.install(init.response, init.conn_id);
        task
    }

    /// Make a fresh registration the current session.
    fn install(&mut self, resp: pb::ConnectResponse, conn_id: Bytes) {
        self.epoch += 1;
        let session = Arc::new(session_from(self.epoch, resp, conn_id));
        self.ping_subject = format!("{}.ping.{}", self.ctx.inbox_base, self.epoch);
        self.pings_out = 0;
        self.ping_timer = session.ping.map(|(interval, _)| {
            let mut t = tokio::time::interval_at(Instant::now() + interval, interval);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        self.server_id = self.shared.nats.server_info().server_id;
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .epoch = self.epoch;
        self.session = Some(session.clone());
        self.shared
            .session
            .send_replace(SessionState::Active(session));
    }

    pub(crate) async fn run(mut self) {
        while !self.stopped {
            let wake = self.next_wake().await;
            self.handle(wake).await;
        }
    }

    async fn next_wake(&mut self) -> Wake {
        let ping_on = self.ping_timer.is_some();
        let ops_on = !self.ops.is_empty();
        let events_on = self.nats_events.is_some();
        let pub_armed = self.pub_armed;
        let Task {
            cmd_rx,
            inbox_sub,
            ack_sub,
            nats_events,
            ops,
            ping_timer,
            pub_sleep,
            shared,
            ..
        } = self;
        tokio::select! {
            biased;
            c = cmd_rx.recv() => Wake::Cmd(c),
            m = ack_sub.next() => Wake::PubAck(m),
            m = inbox_sub.next() => Wake::Inbox(m),
            Some(op) = ops.next(), if ops_on => Wake::Op(op),
            e = async { nats_events.as_mut().expect("guarded").recv().await }, if events_on => Wake::Nats(e),
            _ = async { ping_timer.as_mut().expect("guarded").tick().await }, if ping_on => Wake::Ping,
            () = pub_sleep.as_mut(), if pub_armed => Wake::PubTimer,
            () = shared.pub_timer.notified() => Wake::PubTimerArm,
        }
    }

    async fn handle(&mut self, wake: Wake) {
        match wake {
            Wake::Cmd(Some(cmd)) => self.on_command(cmd).await,
            Wake::Cmd(None) => {
                // Every handle is gone: best-effort close.
                debug!("all handles dropped, closing");
                let _ = self.close_session().await;
                self.shutdown(Error::closed(), None).await;
            }
            Wake::PubAck(Some(m)) => self.on_pub_ack(m),
            Wake::Inbox(Some(m)) => self.on_inbox(m).await,
            Wake::PubAck(None) | Wake::Inbox(None) => {
                self.nats_closed().await;
            }
            Wake::Nats(Some(ev)) => self.on_nats_event(ev).await,
            Wake::Nats(None) => self.nats_events = None,
            Wake::Op(op) => self.on_op(op).await,
            Wake::Ping => self.on_ping_tick().await,
            Wake::PubTimer => self.sweep_pub_timeouts(),
            Wake::PubTimerArm => self.arm_pub_timer(),
        }
    }

    // ----- publishes -------------------------------------------------------------------------

    fn arm_pub_timer(&mut self) {
        let front = {
            let p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p.order.front().map(|(d, _)| *d)
        };
        match front {
            Some(deadline) => {
                self.pub_sleep.as_mut().reset(deadline);
                self.pub_armed = true;
            }
            None => self.pub_armed = false,
        }
    }

    fn sweep_pub_timeouts(&mut self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            while let Some((deadline, _)) = p.order.front() {
                if *deadline > now {
                    break;
                }
                if let Some((_, guid)) = p.order.pop_front() {
                    if let Some(entry) = p.map.remove(&guid) {
                        expired.push(entry);
                    }
                }
            }
        }
        for entry in expired {
            let _ = entry.tx.send(Err(Error::new(
                ErrorKind::PublishAckTimeout,
                errors::PUB_ACK_TIMEOUT,
            )));
        }
        self.arm_pub_timer();
    }

    fn on_pub_ack(&mut self, m: async_nats::Message) {
        let ack = match pb::PubAck::decode(m.payload) {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "dropping undecodable PubAck");
                return;
            }
        };
        let entry = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ack.guid);
        let Some(entry) = entry else { return };
        if ack.error.is_empty() {
            let _ = entry.tx.send(Ok(ack.guid));
        } else {
            if ack.error == errors::INVALID_PUB_REQ {
                // Our connID may no longer be registered: find out now rather than at the next
                // ping.
                self.ping_now_sync();
            }
            let _ = entry
                .tx
                .send(Err(Error::new(ErrorKind::ServerRejected, ack.error)));
        }
    }

    // ----- inbound on the client inbox -------------------------------------------------------

    async fn on_inbox(&mut self, m: async_nats::Message) {
        let Some(rest) = m
            .subject
            .as_str()
            .strip_prefix(self.ctx.inbox_base.as_str())
            .and_then(|r| r.strip_prefix('.'))
        else {
            return;
        };
        let Some((head, tail)) = rest.split_once('.') else {
            return;
        };
        match head {
            "hb" => {
                let current = self.hb_current.load(Ordering::Acquire).to_string();
                if tail == current {
                    if let Some(reply) = m.reply {
                        let _ = self.shared.nats.publish(reply, Bytes::new()).await;
                    }
                }
            }
            "ping" => {
                if tail == self.epoch.to_string() && self.session.is_some() {
                    self.on_ping_response(m).await;
                }
            }
            id => {
                if let (Ok(id), Ok(gen)) = (id.parse::<u64>(), tail.parse::<u64>()) {
                    self.on_delivery(id, gen, m.payload).await;
                }
            }
        }
    }

    async fn on_delivery(&mut self, sub_id: u64, gen: u64, payload: Bytes) {
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            return;
        };
        if sub.gen != gen {
            return;
        }
        let proto = match pb::MsgProto::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "dropping undecodable message");
                return;
            }
        };
        if sub.shared.was_acked(proto.sequence, proto.timestamp) {
            // Acked by the application before; the server did not get that ack in time.
            let seq = proto.sequence;
            self.send_ack(sub_id, seq).await;
            return;
        }
        sub.unacked.insert(proto.sequence);
        if !proto.redelivered {
            sub.last_received = proto.sequence;
        }
        let ack = Arc::new(AckHandle::new(
            sub.shared.clone(),
            proto.sequence,
            proto.timestamp,
        ));
        let _ = sub.tx.send(Ok(Message::new(proto, ack)));
    }

    async fn send_ack(&mut self, sub_id: u64, seq: u64) {
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            return;
        };
        match &sub.ack_inbox {
            Some(inbox) => {
                let ack = pb::Ack {
                    subject: sub.spec.channel.clone(),
                    sequence: seq,
                };
                let inbox = inbox.clone();
                let _ = self
                    .shared
                    .nats
                    .publish(inbox, Bytes::from(ack.encode_to_vec()))
                    .await;
            }
            None => sub.queued_acks.push(seq),
        }
    }

    // ----- pings and heartbeats --------------------------------------------------------------

    async fn on_ping_tick(&mut self) {
        if !self.owns_nats {
            self.check_borrowed_nats_state();
        }
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some((_, max_out)) = session.ping else {
            return;
        };
        self.pings_out += 1;
        if self.pings_out > max_out {
            self.on_lost(
                LostReason::PingsExhausted,
                errors::CONNECTION_LOST_PING.into(),
            )
            .await;
            return;
        }
        self.ping_now_sync();
    }

    /// Send a ping without counting it (after a reconnect, or on suspicion).
    fn ping_now_sync(&self) {
        let Some(session) = &self.session else { return };
        if session.ping.is_none() {
            return;
        }
        let ping = pb::Ping {
            conn_id: session.conn_id.clone(),
        };
        let nats = self.shared.nats.clone();
        let subject = session.ping_requests.clone();
        let reply = self.ping_subject.clone();
        // The NATS client queues the publish; don't hold the task on it.
        tokio::spawn(async move {
            let _ = nats
                .publish_with_reply(subject, reply, Bytes::from(ping.encode_to_vec()))
                .await;
        });
    }

    async fn on_ping_response(&mut self, m: async_nats::Message) {
        if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return; // counts as a miss
        }
        let Ok(resp) = pb::PingResponse::decode(m.payload) else {
            return;
        };
        if resp.error.is_empty() {
            self.pings_out = 0;
            return;
        }
        let now_id = self.shared.nats.server_info().server_id;
        let reason = if !self.server_id.is_empty() && now_id != self.server_id {
            LostReason::ServerClosed
        } else {
            LostReason::Replaced
        };
        self.on_lost(reason, resp.error).await;
    }

    fn check_borrowed_nats_state(&mut self) {
        let connected = matches!(
            self.shared.nats.connection_state(),
            async_nats::connection::State::Connected
        );
        if connected != self.nats_connected {
            self.nats_connected = connected;
            if connected {
                self.shared.emit(Event::NatsReconnected);
                self.ping_now_sync();
            } else {
                self.shared.emit(Event::NatsDisconnected);
            }
        }
    }

    async fn on_nats_event(&mut self, ev: async_nats::Event) {
        match ev {
            async_nats::Event::Disconnected if self.nats_connected => {
                self.nats_connected = false;
                info!("NATS disconnected");
                self.shared.emit(Event::NatsDisconnected);
            }
            async_nats::Event::Connected if !self.nats_connected => {
                self.nats_connected = true;
                info!("NATS reconnected");
                self.shared.emit(Event::NatsReconnected);
                self.ping_now_sync();
            }
            async_nats::Event::Closed if !self.stopped => {
                self.nats_closed().await;
            }
            _ => {}
        }
    }

    // ----- session loss and auto-resume ------------------------------------------------------

    async fn on_lost(&mut self, reason: LostReason, message: String) {
        if self.session.take().is_none() {
            return;
        }
        let auto_resume = self.ctx.resolved.auto_resume;
        warn!(%reason, %message, auto_resume, "streaming session lost");
        self.ping_timer = None;
        let err = Error::new(
            ErrorKind::ConnectionLost,
            format!("stan: connection lost ({reason}): {message}"),
        );
        self.shared.fail_pending(&err);
        let unconfirmed: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.pending_reply.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in unconfirmed {
            if let Some(mut s) = self.subs.remove(&id) {
                if let Some(r) = s.pending_reply.take() {
                    let _ = r.send(Err(err.shallow_clone()));
                }
            }
        }
        for sub in self.subs.values_mut() {
            sub.ack_inbox = None;
        }
        self.shared.emit(Event::ConnectionLost {
            reason,
            message: message.clone(),
            resuming: auto_resume,
        });
        if !auto_resume {
            self.shutdown(err.shallow_clone(), Some(err)).await;
            return;
        }
        self.shared.session.send_replace(SessionState::Resuming);
        let ctx = self.ctx.clone();
        let hb_current = self.hb_current.clone();
        let span = info_span!("stan.resume", client_id = %ctx.client_id, %reason);
        let fut = async move { OpDone::Registered(resume_register(ctx, hb_current).await) }
            .instrument(span);
        self.ops.push(fut.boxed());
    }

    async fn on_resumed(&mut self, resp: pb::ConnectResponse, conn_id: Bytes) {
        info!(client_id = %self.ctx.client_id, "re-registered, re-creating subscriptions");
        self.install(resp, conn_id);
        let ids: Vec<u64> = self.subs.keys().copied().collect();
        self.resume_pending = ids.len();
        self.resume_failed = 0;
        for id in ids {
            if let Some(s) = self.subs.get_mut(&id) {
                s.resubscribe_attempts = 0;
            }
            self.send_sub_request(id, true);
        }
        if self.resume_pending == 0 {
            info!("session resumed");
            self.shared.emit(Event::Resumed {
                failed_subscriptions: 0,
            });
        }
    }

    // ----- subscriptions ---------------------------------------------------------------------

    fn send_sub_request(&mut self, sub_id: u64, resume: bool) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            return;
        };
        sub.gen += 1;
        sub.ack_inbox = None;
        let gen = sub.gen;
        let inbox = format!("{}.{sub_id}.{gen}", self.ctx.inbox_base);
        let start = if resume && sub.spec.durable_name.is_empty() {
            sub.resume_start()
        } else {
            sub.spec.start
        };
        let (position, start_sequence, start_time_delta) = start.to_wire();
        let req = pb::SubscriptionRequest {
            client_id: self.ctx.client_id.clone(),
            subject: sub.spec.channel.clone(),
            q_group: sub.spec.queue_group.clone(),
            inbox,
            max_in_flight: sub.spec.max_in_flight,
            ack_wait_in_secs: sub.spec.ack_wait_secs,
            durable_name: sub.spec.durable_name.clone(),
            start_position: position as i32,
            start_sequence,
            start_time_delta,
        };
        let nats = self.shared.nats.clone();
        let wait = self.ctx.resolved.connect_wait;
        let subject = session.sub_requests.clone();
        self.ops.push(
            async move {
                let result = request(&nats, subject, req.encode_to_vec(), wait).await;
                OpDone::Subscribed {
                    sub_id,
                    gen,
                    result,
                }
            }
            .boxed(),
        );
    }

    async fn on_subscribed(
        &mut self,
        sub_id: u64,
        gen: u64,
        result: std::result::Result<Bytes, ReqError>,
    ) {
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            // Closed before the server answered: close the server side too.
            if let Ok(bytes) = result {
                if let Ok(resp) = pb::SubscriptionResponse::decode(bytes) {
                    if resp.error.is_empty() {
                        self.fire_and_forget_close(sub_id, resp.ack_inbox, None);
                    }
                }
            }
            return;
        };
        if sub.gen != gen {
            return;
        }
        let initial = sub.pending_reply.is_some();
        let outcome = read_response(
            result,
            Error::new(ErrorKind::RequestTimeout, errors::SUB_REQ_TIMEOUT),
            "nats: subscribe request failed",
            "stan: malformed subscription response",
        )
        .map(|r: pb::SubscriptionResponse| r.ack_inbox);
        match outcome {
            Ok(ack_inbox) => {
                sub.ack_inbox = Some(Subject::from(ack_inbox));
                let queued = std::mem::take(&mut sub.queued_acks);
                let mut caller_gone = false;
                if let Some(reply) = sub.pending_reply.take() {
                    caller_gone = reply.send(Ok(())).is_err();
                }
                for seq in queued {
                    self.send_ack(sub_id, seq).await;
                }
                if caller_gone {
                    self.remove_and_close(sub_id, false, None);
                } else if !initial {
                    self.resubscribed(true);
                }
            }
            Err(e) => {
                let timed_out = e.kind() == ErrorKind::RequestTimeout;
                if initial {
                    let Some(mut sub) = self.subs.remove(&sub_id) else {
                        return;
                    };
                    if timed_out {
                        // Like stan.go: tell the server to drop it in case it was created.
                        let inbox = format!("{}.{sub_id}.{gen}", self.ctx.inbox_base);
                        self.fire_and_forget_close(sub_id, inbox, Some(sub.spec.channel.clone()));
                    }
                    if let Some(reply) = sub.pending_reply.take() {
                        let _ = reply.send(Err(e));
                    }
                } else if timed_out && sub.resubscribe_attempts + 1 < RESUBSCRIBE_ATTEMPTS {
                    sub.resubscribe_attempts += 1;
                    self.send_sub_request(sub_id, true);
                } else {
                    warn!(sub_id, error = %e, "could not re-create subscription");
                    if let Some(sub) = self.subs.remove(&sub_id) {
                        let _ = sub.tx.send(Err(Error::new(
                            e.kind(),
                            format!("stan: subscription not resumed: {e}"),
                        )));
                    }
                    self.resubscribed(false);
                }
            }
        }
    }

    fn resubscribed(&mut self, ok: bool) {
        if self.resume_pending == 0 {
            return;
        }
        if !ok {
            self.resume_failed += 1;
        }
        self.resume_pending -= 1;
        if self.resume_pending == 0 {
            info!(failed = self.resume_failed, "session resumed");
            self.shared.emit(Event::Resumed {
                failed_subscriptions: self.resume_failed,
            });
        }
    }

    /// Send a subscription close for a server-side subscription nobody reads.
    fn fire_and_forget_close(&mut self, sub_id: u64, inbox: String, channel: Option<String>) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let channel = channel
            .or_else(|| self.subs.get(&sub_id).map(|s| s.spec.channel.clone()))
            .unwrap_or_default();
        let subject = if session.sub_close_requests.is_empty() {
            session.unsub_requests.clone()
        } else {
            session.sub_close_requests.clone()
        };
        let req = pb::UnsubscribeRequest {
            client_id: self.ctx.client_id.clone(),
            subject: channel,
            inbox,
            durable_name: String::new(),
        };
        let nats = self.shared.nats.clone();
        tokio::spawn(async move {
            let _ = nats
                .publish(subject, Bytes::from(req.encode_to_vec()))
                .await;
        });
    }

    fn remove_and_close(
        &mut self,
        sub_id: u64,
        unsubscribe: bool,
        reply: Option<oneshot::Sender<Result<()>>>,
    ) {
        let Some(sub) = self.subs.remove(&sub_id) else {
            if let Some(r) = reply {
                let _ = r.send(Err(Error::new(
                    ErrorKind::InvalidState,
                    errors::INVALID_SUB,
                )));
            }
            return;
        };
        if self.resume_pending > 0 && sub.ack_inbox.is_none() && sub.pending_reply.is_none() {
            // It was being re-created; count it as done.
            self.resubscribed(true);
        }
        let (Some(session), Some(ack_inbox)) = (self.session.clone(), sub.ack_inbox.clone()) else {
            if let Some(r) = reply {
                let _ = r.send(Err(Error::new(
                    ErrorKind::ConnectionLost,
                    "stan: connection lost, subscription closed locally only",
                )));
            }
            return;
        };
        let subject = if unsubscribe {
            session.unsub_requests.clone()
        } else if session.sub_close_requests.is_empty() {
            if let Some(r) = reply {
                let _ = r.send(Err(Error::new(
                    ErrorKind::NotSupported,
                    errors::NOT_SUPPORTED,
                )));
            }
            return;
        } else {
            session.sub_close_requests.clone()
        };
        let req = pb::UnsubscribeRequest {
            client_id: self.ctx.client_id.clone(),
            subject: sub.spec.channel.clone(),
            inbox: ack_inbox.to_string(),
            durable_name: String::new(),
        };
        let nats = self.shared.nats.clone();
        let wait = self.ctx.resolved.connect_wait;
        self.ops.push(
            async move {
                let result = request(&nats, subject, req.encode_to_vec(), wait).await;
                OpDone::SubClosed {
                    unsubscribe,
                    reply,
                    result,
                }
            }
            .boxed(),
        );
    }

    // ----- commands and ops ------------------------------------------------------------------

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Subscribe {
                spec,
                shared,
                tx,
                reply,
            } => {
                if self.session.is_none() {
                    let _ = reply.send(Err(Error::new(
                        ErrorKind::ConnectionLost,
                        "stan: connection lost, session is being resumed",
                    )));
                    return;
                }
                let id = shared.id;
                self.subs.insert(
                    id,
                    SubEntry {
                        spec,
                        shared,
                        tx,
                        gen: 0,
                        ack_inbox: None,
                        pending_reply: Some(reply),
                        queued_acks: Vec::new(),
                        unacked: BTreeSet::new(),
                        last_received: 0,
                        resubscribe_attempts: 0,
                    },
                );
                self.send_sub_request(id, false);
            }
            Command::Ack { sub_id, sequence } => {
                let Some(sub) = self.subs.get_mut(&sub_id) else {
                    return;
                };
                sub.unacked.remove(&sequence);
                self.send_ack(sub_id, sequence).await;
            }
            Command::CloseSub {
                sub_id,
                unsubscribe,
                reply,
            } => self.remove_and_close(sub_id, unsubscribe, reply),
            Command::Close { reply } => {
                let result = self.close_session().await;
                self.shutdown(Error::closed(), None).await;
                let _ = reply.send(result);
            }
        }
    }

    async fn on_op(&mut self, op: OpDone) {
        match op {
            OpDone::Subscribed {
                sub_id,
                gen,
                result,
            } => self.on_subscribed(sub_id, gen, result).await,
            OpDone::SubClosed {
                unsubscribe,
                reply,
                result,
            } => {
                let timeout = if unsubscribe {
                    errors::UNSUB_REQ_TIMEOUT
                } else {
                    errors::CLOSE_REQ_TIMEOUT
                };
                let outcome = read_response(
                    result,
                    Error::new(ErrorKind::RequestTimeout, timeout),
                    "nats: unsubscribe request failed",
                    "stan: malformed unsubscribe response",
                )
                .map(|_: pb::SubscriptionResponse| ());
                if let Some(r) = reply {
                    let _ = r.send(outcome);
                }
            }
            OpDone::Registered(result) => {
                if self.stopped {
                    return;
                }
                match result {
                    Ok((resp, conn_id)) => self.on_resumed(resp, conn_id).await,
                    Err(e) => {
                        warn!(error = %e, "auto-resume gave up");
                        self.shared.emit(Event::ResumeFailed {
                            message: e.to_string(),
                        });
                        let err = Error::new(
                            ErrorKind::ConnectionLost,
                            format!("stan: connection lost, resume failed: {e}"),
                        );
                        self.shutdown(err.shallow_clone(), Some(err)).await;
                    }
                }
            }
        }
    }

    /// Send the CloseRequest of the current session, if any.
    async fn close_session(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        // Closed from now on: publishes that start meanwhile fail as closed, not as lost.
        let closed = Error::closed();
        self.shared
            .session
            .send_replace(SessionState::Closed(closed.kind(), closed.to_string()));
        self.shared.fail_pending(&closed);
        let req = pb::CloseRequest {
            client_id: self.ctx.client_id.clone(),
        };
        let result = request(
            &self.shared.nats,
            session.close_requests.clone(),
            req.encode_to_vec(),
            self.ctx.resolved.connect_wait,
        )
        .await;
        read_response(
            result,
            Error::new(ErrorKind::RequestTimeout, errors::CLOSE_REQ_TIMEOUT),
            "nats: close request failed",
            "stan: malformed close response",
        )
        .map(|_: pb::CloseResponse| ())
    }

    /// The NATS connection closed for good: report the loss and stop.
    async fn nats_closed(&mut self) {
        let err = Error::new(ErrorKind::ConnectionLost, "nats: connection closed");
        self.shared.emit(Event::ConnectionLost {
            reason: LostReason::ServerClosed,
            message: err.to_string(),
            resuming: false,
        });
        self.shutdown(err.shallow_clone(), Some(err)).await;
    }

    /// Stop for good: fail publishes with `pub_err`, end subscriptions (with `sub_err` if
    /// given), close an owned NATS connection, emit [`Event::Closed`].
    async fn shutdown(&mut self, pub_err: Error, sub_err: Option<Error>) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.session = None;
        self.ping_timer = None;
        self.shared
            .session
            .send_replace(SessionState::Closed(pub_err.kind(), pub_err.to_string()));
        self.shared.permits.close();
        self.shared.fail_pending(&pub_err);
        for (_, mut sub) in self.subs.drain() {
            if let Some(r) = sub.pending_reply.take() {
                let _ = r.send(Err(pub_err.shallow_clone()));
            } else if let Some(e) = &sub_err {
                let _ = sub.tx.send(Err(e.shallow_clone()));
            }
        }
        self.ops = FuturesUnordered::new();
        if self.owns_nats {
            let _ = tokio::time::timeout(self.ctx.resolved.connect_wait, self.shared.nats.drain())
                .await;
        }
        self.shared.emit(Event::Closed);
        self.closed_emitted = true;
    }
}

impl Drop for Task {
    /// The task was dropped without (fully) shutting down (its runtime stopped, or it
    /// panicked): mark the client closed so that nobody waits for it forever (event streams
    /// end, publishes and subscription streams fail or end).
    fn drop(&mut self) {
        if self.closed_emitted {
            return;
        }
        if !self.stopped {
            self.stopped = true;
            let err = Error::closed();
            self.shared
                .session
                .send_replace(SessionState::Closed(err.kind(), err.to_string()));
            self.shared.permits.close();
            self.shared.fail_pending(&err);
        }
        self.shared.emit(Event::Closed);
    }
}

/// The auto-resume registration loop. Retries timeouts forever (with backoff), gives up on
/// other rejections, and on repeated `clientID already registered` answers: the server only
/// sends that when the current holder of the client ID answered its heartbeat probe, i.e.
/// another live process owns the ID, and taking it back would start a replace ping-pong.
async fn resume_register(
    ctx: RegisterCtx,
    hb_current: Arc<AtomicU64>,
) -> Result<(pb::ConnectResponse, Bytes)> {
    let mut backoff = Duration::from_millis(50);
    let mut rejections = 0;
    loop {
        // A fresh heartbeat inbox per attempt: registrations from our own earlier, timed-out
        // attempts then look dead to the server's duplicate probe.
        let hb_id = hb_current.fetch_add(1, Ordering::AcqRel) + 1;
        match ctx.register(hb_id).await {
            Ok(r) => return Ok(r),
            Err(e) if e.kind() == ErrorKind::ServerRejected => {
                if e.message() != errors::CLIENT_ID_REGISTERED {
                    return Err(e);
                }
                rejections += 1;
                debug!(rejections, "client ID held by a live client");
                if rejections >= RESUME_REJECTIONS_BEFORE_GIVING_UP {
                    return Err(e);
                }
                tokio::time::sleep(RESUME_REJECTION_PAUSE).await;
            }
            Err(e) => {
                rejections = 0;
                debug!(error = %e, ?backoff, "re-register attempt failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RESUME_MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_after_saturates() {
        let before = Instant::now();
        let far = deadline_after(Duration::MAX);
        assert!(far > before + Duration::from_secs(365 * 86_400));
        let soon = deadline_after(Duration::from_secs(1));
        assert!(soon >= before + Duration::from_secs(1) && soon < far);
    }
}

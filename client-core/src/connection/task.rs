//! The connection task: one per client. It owns the session (server subjects, subscriptions,
//! ping timer, heartbeat replies, auto-resume) and the pub-ack timers, and is driven by the
//! [`Wake`]s of its event loop. Its handlers live beside it, one concern a file.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Subject, Subscriber};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use prost::Message as _;
use rustc_hash::FxHashMap;
use stan_protocol::errors;
use stan_protocol::pb;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tracing::{debug, warn};

use super::nats::{read_response, request, ReqError};
use super::registry::SubEntry;
use super::session::{session_from, RegisterCtx, Session, SessionState};
use super::shared::Shared;
use crate::command::Command;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, LostReason};
use crate::lock::lock;

/// What an operation running beside the task (a request awaiting its response) reports.
pub(super) enum OpDone {
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

/// Commands, PubAcks and inbox messages the task takes in a row before it gives its timers,
/// requests and NATS events the first chance (see [`Task::next_wake`]).
const INBOUND_STREAK: u32 = 32;

/// What woke the task.
enum Wake {
    Cmd(Option<Command>),
    Inbox(Option<async_nats::Message>),
    PubAck(Option<async_nats::Message>),
    Nats(Option<async_nats::Event>),
    /// Boxed: the largest outcome, and a rare one (every other wake would move its size).
    Op(Box<OpDone>),
    Ping,
    PubTimer,
    PubTimerArm,
}

/// The connection task.
pub(crate) struct Task {
    /// State shared with the handles.
    pub(super) shared: Arc<Shared>,
    /// What (re-)registering needs.
    pub(super) ctx: RegisterCtx,
    /// Commands from the handles; ends when every handle is gone.
    pub(super) cmd_rx: mpsc::UnboundedReceiver<Command>,
    /// Events of a NATS connection this client opened.
    pub(super) nats_events: Option<mpsc::UnboundedReceiver<async_nats::Event>>,
    /// This client opened the NATS connection (and closes it).
    pub(super) owns_nats: bool,
    /// The client inbox: heartbeats, ping responses, deliveries.
    pub(super) inbox_sub: Subscriber,
    /// The PubAck inbox.
    pub(super) ack_sub: Subscriber,
    /// The current registration (None while lost or closed).
    pub(super) session: Option<Arc<Session>>,
    /// Number of the current registration.
    pub(super) epoch: u64,
    /// Id of the heartbeat inbox that is answered (older ones belong to stale attempts).
    pub(super) hb_current: Arc<AtomicU64>,
    /// Reply subject of this registration's pings.
    pub(super) ping_subject: String,
    /// Pings sent without an answer.
    pub(super) pings_out: u32,
    /// Ticks while pinging.
    pub(super) ping_timer: Option<Interval>,
    /// Last known state of the NATS connection.
    pub(super) nats_connected: bool,
    /// NATS server id at registration (tells a server restart from a replacement).
    pub(super) server_id: String,
    /// The subscription registry.
    pub(super) subs: FxHashMap<u64, SubEntry>,
    /// Requests in flight beside the loop.
    pub(super) ops: FuturesUnordered<BoxFuture<'static, OpDone>>,
    /// Subscriptions still being re-created by a resume.
    pub(super) resume_pending: usize,
    /// Subscriptions a resume could not re-create.
    pub(super) resume_failed: usize,
    /// Fires at the earliest pub-ack deadline.
    pub(super) pub_sleep: Pin<Box<Sleep>>,
    /// `pub_sleep` is set.
    pub(super) pub_armed: bool,
    /// Commands, PubAcks and inbox messages taken in a row (see [`INBOUND_STREAK`]).
    inbound_streak: u32,
    /// The task stopped for good.
    pub(super) stopped: bool,
    /// [`Event::Closed`] was emitted.
    pub(super) closed_emitted: bool,
    /// Core NATS messages (acks, heartbeat replies) queued by the handlers, sent by
    /// [`Task::run`] after each wake is handled (see [`Task::handle`]).
    pub(super) outgoing: Vec<(Subject, Bytes)>,
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
            subs: FxHashMap::default(),
            ops: FuturesUnordered::new(),
            resume_pending: 0,
            resume_failed: 0,
            pub_sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            pub_armed: false,
            inbound_streak: 0,
            stopped: false,
            closed_emitted: false,
            outgoing: Vec::new(),
        };
        task.install(init.response, init.conn_id);
        task
    }

    /// Make a fresh registration the current session.
    pub(super) fn install(&mut self, resp: pb::ConnectResponse, conn_id: Bytes) {
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
        lock(&self.shared.pending).epoch = self.epoch;
        self.session = Some(session.clone());
        self.shared
            .session
            .send_replace(SessionState::Active(session));
    }

    pub(crate) async fn run(mut self) {
        while !self.stopped {
            let wake = self.next_wake().await;
            if let Some(wake) = self.handle_now(wake) {
                Box::pin(self.handle_async(wake)).await;
            }
            if !self.outgoing.is_empty() {
                let mut out = std::mem::take(&mut self.outgoing);
                for (subject, payload) in out.drain(..) {
                    let _ = self.shared.nats.publish(subject, payload).await;
                }
                // The buffer (now empty) is kept for the next wake.
                self.outgoing = out;
            }
        }
    }

    /// The next thing to handle: commands first, then PubAcks, then the inbox, then requests
    /// done, NATS events, the ping tick and the pub-ack timer. Each source yields its items in
    /// its own order whatever the interleaving (a handle's acks still reach the server before
    /// its close request: both are commands). So that a flood of commands, PubAcks or inbox
    /// messages cannot hold the others back for ever (pub-ack timeouts, pings, answers to
    /// requests), after [`INBOUND_STREAK`] of them in a row the others go first until none of
    /// them is ready.
    async fn next_wake(&mut self) -> Wake {
        let ping_on = self.ping_timer.is_some();
        let ops_on = !self.ops.is_empty();
        let events_on = self.nats_events.is_some();
        let pub_armed = self.pub_armed;
        let others_first = self.inbound_streak >= INBOUND_STREAK;
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
        let wake = if others_first {
            tokio::select! {
                biased;
                () = pub_sleep.as_mut(), if pub_armed => Wake::PubTimer,
                () = shared.pub_timer.notified() => Wake::PubTimerArm,
                _ = async { ping_timer.as_mut().expect("guarded").tick().await }, if ping_on => Wake::Ping,
                Some(op) = ops.next(), if ops_on => Wake::Op(Box::new(op)),
                e = async { nats_events.as_mut().expect("guarded").recv().await }, if events_on => Wake::Nats(e),
                c = cmd_rx.recv() => Wake::Cmd(c),
                m = ack_sub.next() => Wake::PubAck(m),
                m = inbox_sub.next() => Wake::Inbox(m),
            }
        } else {
            tokio::select! {
                biased;
                c = cmd_rx.recv() => Wake::Cmd(c),
                m = ack_sub.next() => Wake::PubAck(m),
                m = inbox_sub.next() => Wake::Inbox(m),
                Some(op) = ops.next(), if ops_on => Wake::Op(Box::new(op)),
                e = async { nats_events.as_mut().expect("guarded").recv().await }, if events_on => Wake::Nats(e),
                _ = async { ping_timer.as_mut().expect("guarded").tick().await }, if ping_on => Wake::Ping,
                () = pub_sleep.as_mut(), if pub_armed => Wake::PubTimer,
                () = shared.pub_timer.notified() => Wake::PubTimerArm,
            }
        };
        let inbound = matches!(
            wake,
            Wake::Cmd(Some(_)) | Wake::PubAck(Some(_)) | Wake::Inbox(Some(_))
        );
        self.inbound_streak = match (inbound, others_first) {
            (true, false) => self.inbound_streak + 1,
            // Nothing else was ready: back to the usual order.
            (true, true) => 1,
            // Others first until none is ready.
            (false, true) => self.inbound_streak,
            (false, false) => 0,
        };
        wake
    }

    /// Handles a wake that needs no waiting, which is every per-message one (deliveries,
    /// acks, PubAcks, timers): what they send is queued in [`Task::outgoing`] and sent by
    /// [`Task::run`]. The others (closing, resuming, pings, NATS events, request outcomes)
    /// come back for [`Task::handle_async`], which runs boxed: a future is as large as its
    /// largest state, and the loop would otherwise build and move kilobytes for each message.
    fn handle_now(&mut self, wake: Wake) -> Option<Wake> {
        match wake {
            Wake::Cmd(Some(cmd)) => self.on_command(cmd).map(|cmd| Wake::Cmd(Some(cmd))),
            Wake::PubAck(Some(m)) => {
                self.on_pub_ack(m);
                None
            }
            Wake::Inbox(Some(m)) => self.on_inbox(m).map(|m| Wake::Inbox(Some(m))),
            Wake::Nats(None) => {
                self.nats_events = None;
                None
            }
            Wake::PubTimer => {
                self.sweep_pub_timeouts();
                None
            }
            Wake::PubTimerArm => {
                self.arm_pub_timer();
                None
            }
            wake => Some(wake),
        }
    }

    /// Handles what [`Task::handle_now`] handed back.
    async fn handle_async(&mut self, wake: Wake) {
        match wake {
            Wake::Cmd(Some(Command::Close { reply })) => {
                let result = self.close_session().await;
                self.shutdown(Error::closed(), None).await;
                let _ = reply.send(result);
            }
            Wake::Cmd(None) => {
                // Every handle is gone: best-effort close.
                debug!("all handles dropped, closing");
                let _ = self.close_session().await;
                self.shutdown(Error::closed(), None).await;
            }
            Wake::Inbox(Some(m)) => self.on_ping_response(m).await,
            Wake::PubAck(None) | Wake::Inbox(None) => self.nats_closed().await,
            Wake::Nats(Some(ev)) => self.on_nats_event(ev).await,
            Wake::Op(op) => self.on_op(*op).await,
            Wake::Ping => self.on_ping_tick().await,
            Wake::Cmd(Some(_))
            | Wake::PubAck(Some(_))
            | Wake::Nats(None)
            | Wake::PubTimer
            | Wake::PubTimerArm => unreachable!("handled by handle_now"),
        }
    }

    /// Handles a command; hands back the one that needs waiting (closing the client).
    fn on_command(&mut self, cmd: Command) -> Option<Command> {
        match cmd {
            Command::Subscribe {
                id,
                spec,
                acked,
                tx,
                reply,
            } => {
                if self.session.is_none() {
                    let _ = reply.send(Err(Error::new(
                        ErrorKind::ConnectionLost,
                        "stan: connection lost, session is being resumed",
                    )));
                    return None;
                }
                self.subs.insert(
                    id,
                    SubEntry {
                        spec,
                        acked,
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
                // An unknown subscription: nothing to do (None: handled).
                let sub = self.subs.get_mut(&sub_id)?;
                sub.unacked.remove(&sequence);
                self.send_ack(sub_id, sequence);
            }
            Command::Acks { sub_id, sequences } => {
                // An unknown subscription: nothing to do (None: handled).
                let sub = self.subs.get_mut(&sub_id)?;
                for sequence in &sequences {
                    sub.unacked.remove(sequence);
                }
                self.send_acks(sub_id, &sequences);
            }
            Command::CloseSub {
                sub_id,
                unsubscribe,
                reply,
            } => self.remove_and_close(sub_id, unsubscribe, reply),
            Command::Close { reply } => return Some(Command::Close { reply }),
        }
        None
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

    /// Send the CloseRequest of the current session; while resuming, see
    /// [`Task::close_while_resuming`].
    pub(super) async fn close_session(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return self.close_while_resuming().await;
        };
        // Closed from now on: publishes that start meanwhile fail as closed, not as lost.
        let closed = Error::closed();
        self.shared
            .session
            .send_replace(SessionState::Closed(closed.kind(), closed.to_string()));
        self.shared.fail_pending(&closed);
        self.send_close_request(session.close_requests.clone())
            .await
    }

    /// Unregister this client with a CloseRequest to `close_requests` and read the answer.
    pub(super) async fn send_close_request(&mut self, close_requests: String) -> Result<()> {
        let req = pb::CloseRequest {
            client_id: self.ctx.client_id.clone(),
        };
        let result = request(
            &self.shared.nats,
            close_requests,
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
    pub(super) async fn nats_closed(&mut self) {
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
    pub(super) async fn shutdown(&mut self, pub_err: Error, sub_err: Option<Error>) {
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

//! State shared by a client's handles and its connection task.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::Subject;
use tokio::sync::{broadcast, watch, Notify, Semaphore};

use super::deadline::deadline_after;
use super::pending::{PendingPub, PendingPubs};
use super::session::{Session, SessionState};
use super::wire::Encoder;
use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;
use crate::lock::lock;

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
    /// Encodes the PubMsgs and Acks this client sends.
    pub(crate) encoder: Encoder,
    pub(crate) pub_timer: Notify,
    pub(crate) session: watch::Sender<SessionState>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) next_sub_id: AtomicU64,
    /// The application's open subscriptions, told when the client closes.
    pub(crate) open_subs: Mutex<Vec<Weak<dyn ClientClosing>>>,
}

/// A subscription's part in a client close.
pub(crate) trait ClientClosing: Send + Sync {
    /// The client is about to send its close request: queue the ack of the message taken
    /// last (auto-ack mode), so that the server gets it before the close, and end the stream
    /// (messages still buffered are not handed out).
    fn client_closing(&self);
}

impl Shared {
    /// The current session, if one is active now.
    pub(crate) fn current_session(&self) -> Option<Arc<Session>> {
        match &*self.session.borrow() {
            SessionState::Active(s) => Some(s.clone()),
            _ => None,
        }
    }

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
    pub(super) fn fail_pending(&self, err: &Error) {
        let drained: Vec<PendingPub> = { lock(&self.pending).drain_all() };
        for entry in drained {
            let _ = entry.tx.send(Err(err.shallow_clone()));
        }
    }

    /// Remember an open subscription (forgetting the ones gone meanwhile).
    pub(crate) fn register_sub(&self, sub: Weak<dyn ClientClosing>) {
        let mut subs = lock(&self.open_subs);
        subs.retain(|s| s.strong_count() > 0);
        subs.push(sub);
    }

    /// Before the close request: every open subscription acks the message taken last and
    /// ends its stream.
    pub(crate) fn close_subscriptions(&self) {
        let subs: Vec<_> = lock(&self.open_subs).drain(..).collect();
        for sub in subs.iter().filter_map(Weak::upgrade) {
            sub.client_closing();
        }
    }

    /// True once the client is closed for good.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(&*self.session.borrow(), SessionState::Closed(..))
    }

    /// The error for an operation on a client that is closed: why it ended.
    pub(crate) fn closed_error(&self) -> Error {
        match &*self.session.borrow() {
            SessionState::Closed(kind, msg) => Error::new(*kind, msg.clone()),
            _ => Error::closed(),
        }
    }
}

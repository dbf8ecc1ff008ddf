//! Session loss and auto-resume, in the connection task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use stan_protocol::errors;
use stan_protocol::pb;
use tracing::{debug, info, info_span, warn, Instrument};

use super::session::{RegisterCtx, SessionState};
use super::task::{OpDone, Task};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, LostReason};

/// Consecutive `clientID already registered` answers after which auto-resume gives up.
const RESUME_REJECTIONS_BEFORE_GIVING_UP: u32 = 3;
/// Pause between re-register attempts that were rejected as duplicates (longer than the
/// server's duplicate probe, so our own stale attempts have been settled).
const RESUME_REJECTION_PAUSE: Duration = Duration::from_secs(1);
/// Attempts to re-create one subscription during a resume.
pub(super) const RESUBSCRIBE_ATTEMPTS: u32 = 3;
/// Maximum pause between re-register attempts that timed out.
const RESUME_MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Task {
    pub(super) async fn on_lost(&mut self, reason: LostReason, message: String) {
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

    pub(super) async fn on_resumed(&mut self, resp: pb::ConnectResponse, conn_id: Bytes) {
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

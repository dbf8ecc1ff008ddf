//! Session loss and auto-resume, in the connection task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use prost::Message as _;
use stan_protocol::errors;
use stan_protocol::pb;
use tracing::{debug, info, info_span, warn, Instrument};

use super::deadline::deadline_after;
use super::session::{RegisterCtx, SessionState};
use super::task::{OpDone, Task};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, LostReason};
use crate::lock::lock;

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
        let Some(lost) = self.session.take() else {
            return;
        };
        let auto_resume = self.ctx.resolved.auto_resume;
        warn!(%reason, %message, auto_resume, "streaming session lost");
        self.ping_timer = None;
        let err = Error::new(
            ErrorKind::ConnectionLost,
            format!("stan: connection lost ({reason}): {message}"),
        );
        if auto_resume && !lost.dedup_window.is_zero() {
            // The server de-duplicates re-sent guids: the in-flight publishes wait for the
            // resumed session and are re-sent there.
            let failed = lock(&self.shared.pending).suspend();
            for entry in failed {
                let _ = entry.tx.send(Err(err.shallow_clone()));
            }
        } else {
            self.shared.fail_pending(&err);
        }
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
        let resent = self.resend_in_flight(&resp, &conn_id).await;
        self.install(resp, conn_id);
        if resent > 0 {
            self.arm_pub_timer();
        }
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

impl Task {
    /// Before a resumed session accepts publishes: re-send the publishes kept from the lost
    /// session, in publish order, with their original guids, when the new session's server
    /// de-duplicates them; fail the ones it cannot take safely (no window, or first sent too
    /// long ago) as lost. Returns how many were re-sent.
    async fn resend_in_flight(&mut self, resp: &pb::ConnectResponse, conn_id: &Bytes) -> usize {
        let window = Duration::from_millis(resp.dedup_window_ms);
        let deadline = deadline_after(self.shared.pub_ack_wait);
        let (resend, failed) = lock(&self.shared.pending).take_resends(window, deadline);
        if !failed.is_empty() {
            debug!(
                count = failed.len(),
                "in-flight publishes not re-sent: outside the server's de-duplication window"
            );
            let err = Error::new(
                ErrorKind::ConnectionLost,
                "stan: connection lost, publish not re-sent (outside the server's de-duplication window)",
            );
            for entry in failed {
                let _ = entry.tx.send(Err(err.shallow_clone()));
            }
        }
        let count = resend.len();
        if count > 0 {
            info!(count, "re-sending in-flight publishes");
        }
        for (guid, mut msg) in resend {
            msg.conn_id = conn_id.clone();
            let sent = self
                .shared
                .nats
                .publish_with_reply(
                    format!("{}.{}", resp.pub_prefix, msg.subject),
                    self.shared.pub_ack_inbox.clone(),
                    Bytes::from(msg.encode_to_vec()),
                )
                .await;
            if let Err(e) = sent {
                let entry = lock(&self.shared.pending).remove(&guid);
                if let Some(entry) = entry {
                    let _ = entry.tx.send(Err(Error::with_source(
                        ErrorKind::Transport,
                        format!("nats: {e}"),
                        e,
                    )));
                }
            }
        }
        count
    }

    /// The client closes while its session is being resumed: tell the server too. The
    /// registration the server may still hold (the lost one, or one of our attempts) is
    /// taken over by registering once more (the server only replaces a registration whose
    /// holder does not answer its probe, so a live process that took the client ID meanwhile
    /// keeps it) and then closed. Bounded by the connect wait plus the pauses after
    /// `clientID already registered` answers (5 s with the defaults); nothing is closed when
    /// the server cannot be reached or keeps the ID for a live holder.
    pub(super) async fn close_while_resuming(&mut self) -> Result<()> {
        if self.stopped || !matches!(&*self.shared.session.borrow(), SessionState::Resuming) {
            return Ok(());
        }
        let closed = Error::closed();
        self.shared
            .session
            .send_replace(SessionState::Closed(closed.kind(), closed.to_string()));
        self.shared.fail_pending(&closed);
        // Like a resume attempt (the server may still be probing for an earlier one), within
        // the connect wait plus the pauses after `clientID already registered` answers.
        let limit = self.ctx.resolved.connect_wait
            + RESUME_REJECTION_PAUSE * RESUME_REJECTIONS_BEFORE_GIVING_UP;
        let attempt = resume_register(self.ctx.clone(), self.hb_current.clone());
        let resp = match tokio::time::timeout(limit, attempt).await {
            Ok(Ok((resp, _))) => resp,
            Ok(Err(e)) => {
                debug!(error = %e, "closing while resuming: not registered again");
                return Ok(());
            }
            Err(_) => {
                debug!("closing while resuming: the server could not be reached");
                return Ok(());
            }
        };
        self.send_close_request(resp.close_requests).await
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

//! Putting publishes on the wire. Publishing bypasses the connection task: a publisher takes a
//! permit (back-pressure), registers its guid in the pending-ack table and publishes directly;
//! the task completes the entry when the PubAck arrives.

use std::sync::Arc;

use bytes::Bytes;
use stan_protocol::validate;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::{debug_span, Instrument};

use super::deadline::deadline_from;
use super::pending::{AckTx, BatchAcks, BatchSlot, Guid, PendingPub, Resend};
use super::session::{Session, SessionState};
use super::shared::Shared;
use super::wire::PubMsgFields;
use crate::error::{Error, ErrorKind, Result};
use crate::lock::lock;

/// What a [`PublishAckFuture`](crate::PublishAckFuture) of [`Client::start_publish`](crate::Client::start_publish) gets from the publish queue: the
/// receiver of the PubAck once the message is on the wire, or why it could not be sent.
pub(crate) type Started = Result<oneshot::Receiver<Result<String>>>;

/// Publishes waiting in the publish queue.
pub(crate) enum QueuedPub {
    /// One publish of [`Client::start_publish`](crate::Client::start_publish).
    One {
        subject: String,
        payload: Bytes,
        guid: Guid,
        started: oneshot::Sender<Started>,
    },
    /// The publishes of one [`Client::start_publish_batch`](crate::Client::start_publish_batch),
    /// in order; their outcomes go to one shared queue.
    Batch(Vec<BatchItem>),
}

/// One publish of a batch.
pub(crate) struct BatchItem {
    pub(crate) subject: String,
    pub(crate) payload: Bytes,
    pub(crate) guid: Guid,
    pub(crate) slot: BatchSlot,
}

impl QueuedPub {
    /// The queue entry of a batch: `(subject, payload, guid)` in order, reporting to `acks`.
    pub(crate) fn batch(items: Vec<(String, Bytes, Guid)>, acks: &Arc<BatchAcks>) -> Self {
        QueuedPub::Batch(
            items
                .into_iter()
                .enumerate()
                .map(|(i, (subject, payload, guid))| BatchItem {
                    subject,
                    payload,
                    guid,
                    slot: BatchSlot::new(acks.clone(), i),
                })
                .collect(),
        )
    }
}

/// The publish queue: puts the publishes of [`Client::start_publish`](crate::Client::start_publish) on the wire one after
/// the other, in the order of the calls. Ends when every client handle is gone.
pub(super) async fn run_pub_queue(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<QueuedPub>) {
    while let Some(q) = rx.recv().await {
        match q {
            QueuedPub::One {
                subject,
                payload,
                guid,
                started,
            } => {
                let span = debug_span!("stan.publish", channel = %subject, len = payload.len());
                let (tx, ack) = oneshot::channel();
                let outcome = put_on_wire(&shared, &subject, payload, guid, AckTx::One(tx))
                    .instrument(span)
                    .await
                    .map(|()| ack);
                // Nobody waiting (the future was dropped) does not cancel the publish.
                let _ = started.send(outcome);
            }
            QueuedPub::Batch(items) => {
                for item in items {
                    let span = debug_span!(
                        "stan.publish",
                        channel = %item.subject,
                        len = item.payload.len()
                    );
                    // On failure the slot comes back, to report why.
                    let tx = AckTx::Batch(item.slot);
                    if let Err((e, Some(tx))) =
                        put_on_wire_or_return(&shared, &item.subject, item.payload, item.guid, tx)
                            .instrument(span)
                            .await
                    {
                        tx.send(Err(e));
                    }
                }
            }
        }
    }
}

/// Stage 1 of a publish: wait for a slot and a session, register the pending ack, put
/// the message on the connection; the PubAck (or its timeout) goes to `tx`. On an error
/// `tx` is dropped (a oneshot's receiver then reports the client closed; report the error
/// itself instead where it matters).
pub(crate) async fn put_on_wire(
    shared: &Shared,
    subject: &str,
    payload: Bytes,
    guid: Guid,
    tx: AckTx,
) -> Result<()> {
    put_on_wire_or_return(shared, subject, payload, guid, tx)
        .await
        .map_err(|(e, _)| e)
}

/// [`put_on_wire`], handing `tx` back with the error when the message is not on the wire
/// (`None` when the outcome was delivered to it already).
async fn put_on_wire_or_return(
    shared: &Shared,
    subject: &str,
    payload: Bytes,
    guid: Guid,
    tx: AckTx,
) -> std::result::Result<(), (Error, Option<AckTx>)> {
    if !validate::is_valid_channel(subject) {
        let e = Error::invalid_argument(format!("invalid channel name {subject:?}"));
        return Err((e, Some(tx)));
    }
    let permit = match shared.permits.clone().acquire_owned().await {
        Ok(p) => p,
        Err(_) => return Err((shared.closed_error(), Some(tx))),
    };
    // One clock reading serves the wait for a session, the re-send bookkeeping and the ack
    // deadline, unless a session has to be waited for.
    let mut now = Instant::now();
    let wait_until = deadline_from(now, shared.pub_ack_wait);
    let mut changes = shared.session.subscribe();
    let mut tx = tx;
    let mut permit = permit;
    let (session, msg) = loop {
        let session = match shared.current_session() {
            Some(s) => s,
            None => {
                let wait = wait_until.saturating_duration_since(Instant::now());
                // Boxed: the rare wait does not enlarge every publish's future.
                let session = match Box::pin(shared.wait_session(wait)).await {
                    Ok(s) => s,
                    Err(e) => return Err((e, Some(tx))),
                };
                now = Instant::now();
                session
            }
        };
        let encoded = shared.encoder.pub_msg(&PubMsgFields {
            client_id: &shared.client_id,
            guid: guid.as_str(),
            subject,
            data: &payload,
            conn_id: &session.conn_id,
        });
        let resend = (!session.dedup_window.is_zero()).then(|| Resend {
            msg: encoded.clone(),
            first_sent: now,
        });
        match register_pending(shared, &session, guid, tx, permit, resend, now) {
            Ok(()) => break (session, encoded),
            Err(back) => (tx, permit) = back,
        }
        // The session ended meanwhile: closed, or lost (and being resumed). Nothing was sent:
        // wait for the resumed session (within the same wait) unless closed.
        if let SessionState::Closed(kind, msg) = &*shared.session.borrow() {
            return Err((Error::new(*kind, msg.clone()), Some(tx)));
        }
        let still_current = matches!(
            &*changes.borrow_and_update(),
            SessionState::Active(s) if s.epoch == session.epoch
        );
        if still_current
            && !matches!(
                Box::pin(tokio::time::timeout_at(wait_until, changes.changed())).await,
                Ok(Ok(()))
            )
        {
            let e = Error::new(
                ErrorKind::ConnectionLost,
                "stan: connection lost, session is being resumed",
            );
            return Err((e, Some(tx)));
        }
        now = Instant::now();
    };
    if let Err(e) = shared
        .nats
        .publish_with_reply(
            session.pub_subject(subject),
            shared.pub_ack_inbox.clone(),
            msg,
        )
        .await
    {
        let tx = lock(&shared.pending).remove(&guid).map(|p| p.tx);
        let kind = if matches!(
            e.kind(),
            async_nats::client::PublishErrorKind::MaxPayloadExceeded
        ) {
            ErrorKind::InvalidArgument
        } else {
            ErrorKind::Transport
        };
        return Err((Error::with_source(kind, format!("nats: {e}"), e), tx));
    }
    Ok(())
}

/// Registers a publish in the pending-ack table of `session`; hands `tx` and `permit` back when
/// that session no longer accepts publishes.
fn register_pending(
    shared: &Shared,
    session: &Session,
    guid: Guid,
    tx: AckTx,
    permit: OwnedSemaphorePermit,
    resend: Option<Resend>,
    now: Instant,
) -> std::result::Result<(), (AckTx, OwnedSemaphorePermit)> {
    let mut pending = lock(&shared.pending);
    if pending.epoch != session.epoch {
        return Err((tx, permit));
    }
    let arm_timer = !pending.timer_armed;
    pending.timer_armed = true;
    pending.insert(
        guid,
        deadline_from(now, shared.pub_ack_wait),
        PendingPub {
            tx,
            _permit: permit,
            resend,
        },
    );
    if arm_timer {
        shared.pub_timer.notify_one();
    }
    Ok(())
}

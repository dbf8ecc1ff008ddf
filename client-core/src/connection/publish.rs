//! Putting publishes on the wire. Publishing bypasses the connection task: a publisher takes a
//! permit (back-pressure), registers its guid in the pending-ack table and publishes directly;
//! the task completes the entry when the PubAck arrives.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use stan_protocol::pb;
use stan_protocol::validate;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug_span, Instrument};

use super::deadline::deadline_after;
use super::pending::PendingPub;
use super::session::SessionState;
use super::shared::Shared;
use crate::error::{Error, ErrorKind, Result};
use crate::lock::lock;

/// What a [`PublishAckFuture`](crate::PublishAckFuture) of [`Client::start_publish`](crate::Client::start_publish) gets from the publish queue: the
/// receiver of the PubAck once the message is on the wire, or why it could not be sent.
pub(crate) type Started = Result<oneshot::Receiver<Result<String>>>;

/// A publish waiting in the publish queue.
pub(crate) struct QueuedPub {
    pub(crate) subject: String,
    pub(crate) payload: Bytes,
    pub(crate) guid: String,
    pub(crate) started: oneshot::Sender<Started>,
}

/// The publish queue: puts the publishes of [`Client::start_publish`](crate::Client::start_publish) on the wire one after
/// the other, in the order of the calls. Ends when every client handle is gone.
pub(super) async fn run_pub_queue(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<QueuedPub>) {
    while let Some(q) = rx.recv().await {
        let span = debug_span!("stan.publish", channel = %q.subject, len = q.payload.len());
        let started = put_on_wire(&shared, &q.subject, q.payload, q.guid)
            .instrument(span)
            .await;
        // Nobody waiting (the future was dropped) does not cancel the publish.
        let _ = q.started.send(started);
    }
}

/// Stage 1 of a publish: wait for a slot and a session, register the pending ack, put
/// the message on the connection. Returns the receiver of the PubAck.
pub(crate) async fn put_on_wire(
    shared: &Shared,
    subject: &str,
    payload: Bytes,
    guid: String,
) -> Result<oneshot::Receiver<Result<String>>> {
    if !validate::is_valid_channel(subject) {
        return Err(Error::invalid_argument(format!(
            "invalid channel name {subject:?}"
        )));
    }
    let permit = match shared.permits.clone().acquire_owned().await {
        Ok(p) => p,
        Err(_) => return Err(shared.closed_error()),
    };
    let session = shared.wait_session(shared.pub_ack_wait).await?;
    let msg = pb::PubMsg {
        client_id: shared.client_id.clone(),
        guid: guid.clone(),
        subject: subject.to_string(),
        reply: String::new(),
        data: payload,
        conn_id: session.conn_id.clone(),
        sha256: Bytes::new(),
    };
    let (tx, rx) = oneshot::channel();
    {
        let mut pending = lock(&shared.pending);
        if pending.epoch != session.epoch {
            // The session ended meanwhile: closed, or lost (and being resumed).
            if let SessionState::Closed(kind, msg) = &*shared.session.borrow() {
                return Err(Error::new(*kind, msg.clone()));
            }
            return Err(Error::new(
                ErrorKind::ConnectionLost,
                "stan: connection lost, session is being resumed",
            ));
        }
        let was_empty = pending.order.is_empty();
        pending.map.insert(
            guid.clone(),
            PendingPub {
                tx,
                _permit: permit,
            },
        );
        pending
            .order
            .push_back((deadline_after(shared.pub_ack_wait), guid.clone()));
        if was_empty {
            shared.pub_timer.notify_one();
        }
    }
    let subject = format!("{}.{subject}", session.pub_prefix);
    if let Err(e) = shared
        .nats
        .publish_with_reply(
            subject,
            shared.pub_ack_inbox.clone(),
            Bytes::from(msg.encode_to_vec()),
        )
        .await
    {
        let mut pending = lock(&shared.pending);
        pending.map.remove(&guid);
        let kind = if matches!(
            e.kind(),
            async_nats::client::PublishErrorKind::MaxPayloadExceeded
        ) {
            ErrorKind::InvalidArgument
        } else {
            ErrorKind::Transport
        };
        return Err(Error::with_source(kind, format!("nats: {e}"), e));
    }
    Ok(rx)
}

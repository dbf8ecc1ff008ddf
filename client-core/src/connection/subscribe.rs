//! Creating, re-creating and closing subscriptions on the server, in the connection task.

use async_nats::Subject;
use bytes::Bytes;
use futures::FutureExt;
use prost::Message as _;
use stan_protocol::errors;
use stan_protocol::pb;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::nats::{read_response, request, ReqError};
use super::resume::RESUBSCRIBE_ATTEMPTS;
use super::task::{OpDone, Task};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;

impl Task {
    pub(super) fn send_sub_request(&mut self, sub_id: u64, resume: bool) {
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

    pub(super) async fn on_subscribed(
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
                self.send_acks(sub_id, &queued);
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

    pub(super) fn resubscribed(&mut self, ok: bool) {
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
    pub(super) fn fire_and_forget_close(
        &mut self,
        sub_id: u64,
        inbox: String,
        channel: Option<String>,
    ) {
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

    pub(super) fn remove_and_close(
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
}

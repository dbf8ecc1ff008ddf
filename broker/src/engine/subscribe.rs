//! Subscribe (§3.4, §3.8–§3.10), unsubscribe and subscription close (§3.11).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use prost::Message;
use stan_protocol::pb::{self, StartPosition};
use stan_protocol::validate;
use tokio::time::Instant;

use super::state::{QueueGroup, Sub};
use super::timers::TimerKey;
use super::{now_nanos, Engine, RequestError};
use crate::store::MsgStore;
use crate::transport::{Inbound, Route};

/// What a successful subscription request turned into.
enum Kind {
    /// A new plain or durable subscription, or a new queue group.
    New { last_sent: u64 },
    /// A new member of an existing queue group.
    Join,
    /// A resumed durable or the re-activation of an offline durable queue group.
    Resume(u64),
}

/// `lastSent` for a new subscription per its start position (§3.4 table).
fn start_last_sent(ms: &dyn MsgStore, pos: StartPosition, req: &pb::SubscriptionRequest) -> u64 {
    let first = ms.first_sequence();
    let last = ms.last_sequence();
    match pos {
        StartPosition::NewOnly => last,
        StartPosition::LastReceived => last.saturating_sub(1),
        StartPosition::TimeDeltaStart => {
            let start = now_nanos().saturating_sub(req.start_time_delta);
            ms.sequence_for_timestamp(start).saturating_sub(1)
        }
        StartPosition::SequenceStart => {
            let s = req.start_sequence;
            if s < first {
                first.saturating_sub(1)
            } else if s > last {
                last
            } else {
                s.saturating_sub(1)
            }
        }
        StartPosition::First => first.saturating_sub(1),
    }
}

/// A subscription request that passed validation (its channel exists).
struct ValidRequest {
    req: pb::SubscriptionRequest,
    ack_wait: Duration,
    start: StartPosition,
}

impl ValidRequest {
    fn is_queue(&self) -> bool {
        !self.req.q_group.is_empty()
    }

    fn is_durable(&self) -> bool {
        !self.req.durable_name.is_empty()
    }

    /// The queue group's name: `durable:group` for a durable queue group.
    fn group_name(&self) -> String {
        if self.is_queue() && self.is_durable() {
            format!("{}:{}", self.req.durable_name, self.req.q_group)
        } else {
            self.req.q_group.clone()
        }
    }

    /// The key of a plain durable in its channel.
    fn durable_key(&self) -> (String, String) {
        (self.req.client_id.clone(), self.req.durable_name.clone())
    }
}

impl Engine {
    /// Holds the response until the subscription's record is flushed (see
    /// [`Engine::release_replies`]).
    fn sub_response(&mut self, reply: &str, ack_inbox: String, error: String) {
        self.hold_reply(Some(reply), &pb::SubscriptionResponse { ack_inbox, error });
    }

    /// Subscription request.
    pub(crate) fn handle_subscribe(&mut self, m: Inbound) {
        let Some(reply) = m.reply else {
            tracing::debug!("subscription request without reply subject dropped");
            return;
        };
        match self.process_subscribe(&m.payload, m.origin) {
            Ok((id, resumed)) => {
                let ack_inbox = self
                    .subs
                    .get(&id)
                    .map(|s| s.ack_inbox.clone())
                    .unwrap_or_default();
                self.sub_response(&reply, ack_inbox, String::new());
                // Deliveries follow the response, which waits for the flush.
                self.held_starts.push((id, resumed));
            }
            Err(e) => self.sub_response(&reply, String::new(), e.to_string()),
        }
    }

    /// Validates, classifies and installs a subscription; returns its ID and whether it
    /// resumed an existing one.
    fn process_subscribe(
        &mut self,
        payload: &[u8],
        origin: Option<u64>,
    ) -> Result<(u64, bool), RequestError> {
        let valid = self.validate_subscribe(payload, origin)?;
        let kind = self.classify_subscribe(&valid)?;
        self.install_subscribe(valid, kind)
    }

    /// Step 1: decodes the request and checks its fields and client (§3.4), then looks up the
    /// channel, creating it on first use. The channel is created before the durable queue
    /// name is checked (as before the split), so an invalid name still creates the channel.
    fn validate_subscribe(
        &mut self,
        payload: &[u8],
        origin: Option<u64>,
    ) -> Result<ValidRequest, RequestError> {
        let req = pb::SubscriptionRequest::decode(payload)
            .map_err(|_| RequestError::InvalidSubRequest)?;
        if req.client_id.is_empty() {
            return Err(RequestError::MissingClientId);
        }
        let ack_wait = if req.ack_wait_in_secs > 0 {
            Duration::from_secs(req.ack_wait_in_secs as u64)
        } else if req.ack_wait_in_secs < 0 && self.cfg.ack_wait_millis_for_tests {
            Duration::from_millis(req.ack_wait_in_secs.unsigned_abs() as u64)
        } else {
            return Err(RequestError::InvalidAckWait);
        };
        if req.max_in_flight <= 0 {
            return Err(RequestError::InvalidMaxInflight);
        }
        let start = StartPosition::try_from(req.start_position)
            .map_err(|_| RequestError::InvalidStartPosition)?;
        if !validate::is_valid_channel(&req.subject) {
            return Err(RequestError::InvalidSubject);
        }
        if !self.clients.contains_key(&req.client_id)
            || !self.sent_by_owner(&req.client_id, origin, "subscribe")
        {
            return Err(RequestError::UnknownClient);
        }
        self.lookup_or_create_channel(&req.subject)?;
        let valid = ValidRequest {
            req,
            ack_wait,
            start,
        };
        if valid.is_queue()
            && valid.is_durable()
            && !validate::is_valid_durable_queue_name(&valid.req.durable_name)
        {
            return Err(RequestError::InvalidDurableQueueName);
        }
        Ok(valid)
    }

    /// Step 2: decides what the request turns into ([`Kind`]): a new subscription or queue
    /// group (starting per its start position), a new member of a queue group, or the resume
    /// of an offline durable or durable queue group. An active plain durable with the same
    /// name is a duplicate, or is replaced (closed here) with `replace_durable`. Enforces the
    /// channel's `max_subs` for everything but a resume.
    fn classify_subscribe(&mut self, valid: &ValidRequest) -> Result<Kind, RequestError> {
        let req = &valid.req;
        let durable_key = valid.durable_key();
        // Duplicate durable (or its replacement).
        if !valid.is_queue() && valid.is_durable() {
            let active = self
                .channels
                .get(&req.subject)
                .and_then(|ch| ch.durables.get(&durable_key))
                .and_then(|id| self.subs.get(id))
                .filter(|s| !s.offline)
                .map(|s| s.id);
            if let Some(id) = active {
                if !self.cfg.replace_durable {
                    return Err(RequestError::DuplicateDurable);
                }
                self.remove_sub(id, false);
            }
        }

        let ch = self
            .channels
            .get(&req.subject)
            .ok_or(RequestError::InvalidSubject)?;
        let new = || Kind::New {
            last_sent: start_last_sent(&*ch.store.msgs, valid.start, req),
        };
        let kind = if valid.is_queue() {
            match ch.queues.get(&valid.group_name()) {
                Some(g) if !g.members.is_empty() => Kind::Join,
                Some(g) => match g.offline {
                    Some(id) => Kind::Resume(id),
                    None => Kind::Join,
                },
                None => new(),
            }
        } else if valid.is_durable() {
            match ch.durables.get(&durable_key) {
                Some(id) => Kind::Resume(*id),
                None => new(),
            }
        } else {
            new()
        };
        if !matches!(kind, Kind::Resume(_)) {
            let max_subs = ch.store.limits.max_subs.unwrap_or(0);
            if max_subs > 0 && ch.stored_sub_count() >= max_subs {
                return Err(RequestError::TooManySubs);
            }
        }
        Ok(kind)
    }

    /// Step 3: subscribes a fresh ack inbox (live before the response goes out), then resumes
    /// the existing subscription or records a new one (store, channel, queue group), and
    /// registers it with its client. Returns the subscription ID and whether it resumed.
    fn install_subscribe(
        &mut self,
        valid: ValidRequest,
        kind: Kind,
    ) -> Result<(u64, bool), RequestError> {
        let id = match kind {
            Kind::Resume(id) => id,
            _ => {
                let id = self.next_sub_id;
                self.next_sub_id += 1;
                id
            }
        };
        // The ack inbox must be live before the response goes out.
        let ack_inbox = stan_protocol::subjects::new_inbox();
        let ack_sub = self
            .transport
            .subscribe(&ack_inbox, Route::Ack(id))
            .map_err(RequestError::AckInbox)?;

        let group_name = valid.group_name();
        let (is_queue, is_durable) = (valid.is_queue(), valid.is_durable());
        let ValidRequest { req, ack_wait, .. } = valid;
        let Some(ch) = self.channels.get_mut(&req.subject) else {
            return Err(RequestError::InvalidSubject);
        };
        let resumed = matches!(kind, Kind::Resume(_));
        match kind {
            Kind::Resume(id) => {
                let Some(sub) = self.subs.get_mut(&id) else {
                    return Err(RequestError::InvalidSub);
                };
                sub.client_id = req.client_id.clone();
                sub.inbox = req.inbox;
                sub.ack_inbox = ack_inbox.clone();
                sub.max_in_flight = req.max_in_flight;
                sub.ack_wait = ack_wait;
                sub.ack_wait_raw = req.ack_wait_in_secs;
                sub.offline = false;
                sub.ack_sub = Some(ack_sub);
                if is_queue {
                    if let Some(g) = ch.queues.get_mut(&group_name) {
                        g.offline = None;
                        g.members.push(id);
                    }
                }
                if let Err(e) = ch.store.subs.update_sub(&sub.record()) {
                    tracing::error!("unable to update subscription: {e}");
                }
            }
            kind => {
                let last_sent = match kind {
                    Kind::New { last_sent } => last_sent,
                    _ => ch.queues.get(&group_name).map(|g| g.last_sent).unwrap_or(0),
                };
                let sub = Sub {
                    id,
                    channel: req.subject.clone(),
                    client_id: req.client_id.clone(),
                    inbox: req.inbox,
                    ack_inbox: ack_inbox.clone(),
                    durable_name: if is_queue {
                        String::new()
                    } else {
                        req.durable_name.clone()
                    },
                    q_group: group_name.clone(),
                    is_durable,
                    max_in_flight: req.max_in_flight,
                    ack_wait_raw: req.ack_wait_in_secs,
                    ack_wait,
                    last_sent,
                    pending: BTreeMap::new(),
                    redeliveries: HashMap::new(),
                    offline: false,
                    ack_sub: Some(ack_sub),
                };
                if let Err(e) = ch.store.subs.create_sub(&sub.record()) {
                    tracing::error!("unable to record subscription: {e}");
                }
                if is_queue {
                    ch.queues
                        .entry(group_name)
                        .or_insert_with(|| QueueGroup::new(last_sent, is_durable))
                        .members
                        .push(id);
                } else {
                    ch.subs.push(id);
                    if is_durable {
                        ch.durables
                            .insert((req.client_id.clone(), req.durable_name), id);
                    }
                }
                self.subs.insert(id, sub);
            }
        }
        ch.last_activity = Instant::now();
        self.timers.cancel(&TimerKey::Inactivity(req.subject));
        self.ack_inboxes.insert(ack_inbox, id);
        if let Some(c) = self.clients.get_mut(&req.client_id) {
            c.subs.push(id);
        }
        Ok((id, resumed))
    }

    /// After the SubscriptionResponse: resend pending messages of a resumed subscription,
    /// then start the normal flow.
    pub(crate) fn start_delivery(&mut self, id: u64, resumed: bool) {
        if resumed {
            self.redeliver_all_pending(id);
        }
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        if sub.q_group.is_empty() {
            self.send_available(id);
        } else {
            let (ch, g) = (sub.channel.clone(), sub.q_group.clone());
            self.send_available_to_queue(&ch, &g);
        }
    }

    /// Unsubscribe (`close == false`) or subscription close (`close == true`).
    pub(crate) fn handle_unsubscribe(&mut self, m: Inbound, close: bool) {
        let result = self.process_unsubscribe(&m.payload, close, m.origin);
        self.hold_reply(
            m.reply.as_deref(),
            &pb::SubscriptionResponse {
                ack_inbox: String::new(),
                error: RequestError::wire_text(&result),
            },
        );
    }

    /// Finds the subscription (by ack inbox, else by delivery inbox), checks its owner and
    /// removes it.
    fn process_unsubscribe(
        &mut self,
        payload: &[u8],
        close: bool,
        origin: Option<u64>,
    ) -> Result<(), RequestError> {
        let req = pb::UnsubscribeRequest::decode(payload)
            .map_err(|_| RequestError::InvalidUnsubRequest)?;
        let ch = self
            .channels
            .get(&req.subject)
            .ok_or(RequestError::UnknownChannel)?;
        let by_ack = self
            .ack_inboxes
            .get(&req.inbox)
            .copied()
            .filter(|id| self.subs.get(id).is_some_and(|s| s.channel == req.subject));
        let id = by_ack
            .or_else(|| {
                ch.all_sub_ids().into_iter().find(|id| {
                    self.subs
                        .get(id)
                        .is_some_and(|s| !s.offline && s.inbox == req.inbox)
                })
            })
            .ok_or(RequestError::InvalidSub)?;
        let owner_ok = self
            .subs
            .get(&id)
            .is_some_and(|s| s.client_id == req.client_id)
            && self.clients.contains_key(&req.client_id);
        if !owner_ok {
            return Err(RequestError::UnknownClient);
        }
        if !self.sent_by_owner(&req.client_id, origin, "unsubscribe") {
            return Err(RequestError::InvalidUnsubRequest);
        }
        self.remove_sub(id, !close);
        Ok(())
    }

    /// Stops routing acks of subscription `id` (ack inbox `ack_inbox`), disarms its ack timer
    /// and removes it from its client's list.
    pub(crate) fn unlink_sub(&mut self, id: u64, ack_inbox: &str, client_id: &str) {
        self.ack_inboxes.remove(ack_inbox);
        self.timers.cancel(&TimerKey::Ack(id));
        if let Some(c) = self.clients.get_mut(client_id) {
            c.subs.retain(|s| *s != id);
        }
    }

    /// Removes an active subscription. `unsubscribe` deletes durable state; otherwise
    /// durables and the last member of a durable queue group go offline.
    pub(crate) fn remove_sub(&mut self, id: u64, unsubscribe: bool) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        sub.ack_sub = None;
        let ack_inbox = std::mem::take(&mut sub.ack_inbox);
        let client_id = sub.client_id.clone();
        let chan = sub.channel.clone();
        let q_group = sub.q_group.clone();
        let durable_name = sub.durable_name.clone();
        let is_durable = sub.is_durable;
        self.unlink_sub(id, &ack_inbox, &client_id);
        let Some(ch) = self.channels.get_mut(&chan) else {
            self.subs.remove(&id);
            return;
        };
        if !q_group.is_empty() {
            let Some(g) = ch.queues.get_mut(&q_group) else {
                self.subs.remove(&id);
                return;
            };
            g.members.retain(|m| *m != id);
            if !g.members.is_empty() {
                // Hand the pending messages over to the remaining members, already expired.
                let pending = self
                    .subs
                    .get_mut(&id)
                    .map(|s| std::mem::take(&mut s.pending))
                    .unwrap_or_default();
                let now = Instant::now();
                let members = g.members.clone();
                for (i, seq) in pending.keys().enumerate() {
                    let target = members[i % members.len()];
                    if let Some(t) = self.subs.get_mut(&target) {
                        t.pending.insert(*seq, now);
                        let _ = ch.store.subs.add_seq_pending(target, *seq);
                        // The stored count went with the leaving member's records.
                        if let Some(c) = g.redeliveries.get(seq) {
                            let _ = ch.store.subs.record_redelivery(target, *seq, *c);
                        }
                        self.timers.set_if_earlier(TimerKey::Ack(target), now);
                    }
                }
                let _ = ch.store.subs.delete_sub(id);
                self.subs.remove(&id);
            } else if g.durable && !unsubscribe {
                g.offline = Some(id);
                if let Some(s) = self.subs.get_mut(&id) {
                    s.offline = true;
                    s.last_sent = g.last_sent;
                    let _ = ch.store.subs.update_sub(&s.record());
                }
            } else {
                ch.queues.remove(&q_group);
                let _ = ch.store.subs.delete_sub(id);
                self.subs.remove(&id);
            }
        } else if is_durable && !unsubscribe {
            if let Some(s) = self.subs.get_mut(&id) {
                s.offline = true;
                let _ = ch.store.subs.update_sub(&s.record());
            }
        } else {
            ch.subs.retain(|s| *s != id);
            if is_durable {
                ch.durables.remove(&(client_id, durable_name));
            }
            let _ = ch.store.subs.delete_sub(id);
            self.subs.remove(&id);
        }
        self.arm_inactivity_if_idle(&chan);
    }
}

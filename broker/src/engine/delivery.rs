//! Delivery, acks, flow control and redelivery (§3.5–§3.7, §3.9).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use prost::Message;
use stan_protocol::pb;
use tokio::time::Instant;

use super::state::{Channel, Client, QueueGroup, Sub};
use super::timers::{later, TimerKey, Timers};
use super::{Engine, Stats, REDELIVERY_WINDOW};
use crate::snapshot::ChannelCounters;
use crate::store::{MsgStore, RecoveredState, SubStore};
use crate::transport::{Route, Transport};

/// What sending touches besides the subscription and the channel's store: the engine's
/// transport, counters and timers, borrowed apart from its subscriptions and channels.
struct Outbox<'a> {
    transport: &'a Arc<dyn Transport>,
    stats: &'a mut Stats,
    timers: &'a mut Timers,
    /// Deliveries counted for one channel, added to its counters at once (when the channel
    /// changes, and on drop): one counters lookup per run of sends, not per message.
    counted: Option<(String, ChannelCounters)>,
}

impl<'a> Outbox<'a> {
    fn new(
        transport: &'a Arc<dyn Transport>,
        stats: &'a mut Stats,
        timers: &'a mut Timers,
    ) -> Self {
        Outbox {
            transport,
            stats,
            timers,
            counted: None,
        }
    }

    /// Counts one delivery of `bytes` to a subscription of `channel`.
    fn count(&mut self, channel: &str, bytes: u64, redelivery: bool) {
        if !matches!(&self.counted, Some((name, _)) if name == channel) {
            self.add_counted();
            self.counted = Some((channel.to_string(), ChannelCounters::default()));
        }
        if let Some((_, c)) = &mut self.counted {
            c.out_msgs += 1;
            c.out_bytes += bytes;
            c.redeliveries += u64::from(redelivery);
        }
    }

    /// Adds what was counted to the channel's counters.
    fn add_counted(&mut self) {
        if let Some((name, c)) = self.counted.take() {
            let counters = self.stats.channel(&name);
            counters.out_msgs += c.out_msgs;
            counters.out_bytes += c.out_bytes;
            counters.redeliveries += c.redeliveries;
        }
    }

    /// Publishes one stored message (wire form) to a subscription's inbox. A first delivery
    /// is recorded as pending (expiring at `now + ackWait`); a redelivery carries its count,
    /// which is recorded in the store (so that it survives a restart), and leaves the pending
    /// entry to the caller. The subscription's ack timer is armed if needed.
    fn send(
        &mut self,
        subs_store: &mut dyn SubStore,
        sub: &mut Sub,
        seq: u64,
        encoded: Bytes,
        redelivery: Option<u32>,
        now: Instant,
    ) {
        let payload = match redelivery {
            None => encoded,
            Some(count) => with_redelivery(&encoded, count),
        };
        self.stats.out_msgs += 1;
        self.stats.out_bytes += payload.len() as u64;
        if redelivery.is_some() {
            self.stats.redeliveries += 1;
        }
        self.count(&sub.channel, payload.len() as u64, redelivery.is_some());
        self.transport.publish(&sub.inbox, None, payload);
        let expiry = later(now, sub.ack_wait);
        match redelivery {
            None => {
                sub.pending.insert(seq, expiry);
                if let Err(e) = subs_store.add_seq_pending(sub.id, seq) {
                    tracing::error!("unable to record pending message: {e}");
                }
            }
            Some(count) => {
                if let Err(e) = subs_store.record_redelivery(sub.id, seq, count) {
                    tracing::error!("unable to record redelivery count: {e}");
                }
            }
        }
        let at = sub.pending.get(&seq).copied().unwrap_or(expiry);
        self.timers.set_if_earlier(TimerKey::Ack(sub.id), at);
    }
}

impl Drop for Outbox<'_> {
    fn drop(&mut self) {
        self.add_counted();
    }
}

/// A stored `MsgProto` (which never carries the redelivery fields) with `redelivered = true`
/// and `redeliveryCount = count` appended; protobuf decoders accept fields in any order.
fn with_redelivery(encoded: &[u8], count: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(encoded.len() + 8);
    b.extend_from_slice(encoded);
    prost::encoding::encode_key(6, prost::encoding::WireType::Varint, &mut b);
    prost::encoding::encode_varint(1, &mut b);
    if count > 0 {
        prost::encoding::encode_key(7, prost::encoding::WireType::Varint, &mut b);
        prost::encoding::encode_varint(u64::from(count), &mut b);
    }
    b.freeze()
}

/// The next sequence to send after `last_sent`, or `None` when caught up. Messages already
/// removed by limits are skipped; when none is left, `last_sent` moves up to the last one.
fn next_to_send(msgs: &dyn MsgStore, last_sent: &mut u64) -> Option<u64> {
    let last = msgs.last_sequence();
    let mut next = *last_sent + 1;
    if next > last {
        return None;
    }
    let first = msgs.first_sequence();
    if next < first {
        next = first;
        if next > last {
            *last_sent = last;
            return None;
        }
    }
    Some(next)
}

/// Counts one more redelivery of `seq`; returns the new count.
fn count_redelivery(counts: &mut HashMap<u64, u32>, seq: u64) -> u32 {
    let c = counts.entry(seq).or_insert(0);
    *c += 1;
    *c
}

/// Moves the head of a queue group's members to the back once it was picked (`idx == 0`),
/// so that members with equal load take turns.
fn rotate_members(members: &mut Vec<u64>, idx: usize) {
    if idx == 0 && members.len() > 1 {
        let head = members.remove(0);
        members.push(head);
    }
}

/// Index of the member a queue message goes to: the non-stalled, non-failing member with
/// the fewest pending messages (first on ties), else the first member.
fn best_member(
    subs: &super::Map<u64, Sub>,
    clients: &super::Map<String, Client>,
    members: &[u64],
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, id) in members.iter().enumerate() {
        let Some(s) = subs.get(id) else { continue };
        if s.stalled() || clients.get(&s.client_id).is_some_and(|c| c.hb_failures > 0) {
            continue;
        }
        if best.is_none_or(|(_, n)| s.pending.len() < n) {
            best = Some((i, s.pending.len()));
        }
    }
    match best {
        Some((i, _)) => Some(i),
        None if !members.is_empty() => Some(0),
        None => None,
    }
}

impl Engine {
    /// Subscription `id`, its channel and an outbox to send with; `None` if either is gone.
    fn sub_for_sending(&mut self, id: u64) -> Option<(&mut Sub, &mut Channel, Outbox<'_>)> {
        let sub = self.subs.get_mut(&id)?;
        let ch = self.channels.get_mut(&sub.channel)?;
        let out = Outbox::new(&self.transport, &mut self.stats, &mut self.timers);
        Some((sub, ch, out))
    }

    /// Sends new messages to a plain subscription until it is stalled or caught up.
    pub(crate) fn send_available(&mut self, id: u64) {
        let Some((sub, ch, mut out)) = self.sub_for_sending(id) else {
            return;
        };
        let now = Instant::now();
        while !sub.offline && !sub.stalled() {
            let Some(next) = next_to_send(&*ch.store.msgs, &mut sub.last_sent) else {
                break;
            };
            sub.last_sent = next;
            if let Some(m) = ch.store.msgs.lookup_encoded(next) {
                out.send(&mut *ch.store.subs, sub, next, m, None, now);
            }
        }
    }

    /// Sends new messages to a queue group until every member is stalled or it is caught up.
    pub(crate) fn send_available_to_queue(&mut self, chan: &str, group: &str) {
        let Some(ch) = self.channels.get_mut(chan) else {
            return;
        };
        let Some(g) = ch.queues.get_mut(group) else {
            return;
        };
        let now = Instant::now();
        let mut out = Outbox::new(&self.transport, &mut self.stats, &mut self.timers);
        while let Some(next) = next_to_send(&*ch.store.msgs, &mut g.last_sent) {
            let Some(idx) = best_member(&self.subs, &self.clients, &g.members) else {
                break;
            };
            let member = g.members[idx];
            let Some(sub) = self.subs.get_mut(&member) else {
                break;
            };
            if sub.stalled() {
                break;
            }
            rotate_members(&mut g.members, idx);
            g.last_sent = next;
            sub.last_sent = next;
            if let Some(m) = ch.store.msgs.lookup_encoded(next) {
                out.send(&mut *ch.store.subs, sub, next, m, None, now);
            }
        }
    }

    /// An ack arrived on the ack inbox of subscription `id`.
    pub(crate) fn handle_ack(&mut self, id: u64, payload: &[u8], origin: Option<u64>) {
        let Ok(ack) = pb::Ack::decode(payload) else {
            tracing::debug!("undecodable ack dropped");
            return;
        };
        if origin.is_some() && !self.cfg.trust_client_subjects {
            let Some(owner) = self.subs.get(&id).map(|s| s.client_id.clone()) else {
                return;
            };
            if !self.sent_by_owner(&owner, origin, "ack") {
                return;
            }
        }
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.channel != ack.subject || sub.offline {
            tracing::debug!(channel = %ack.subject, "ack for unknown channel dropped");
            return;
        }
        let Some(ch) = self.channels.get_mut(&sub.channel) else {
            return;
        };
        let seq = ack.sequence;
        let was_stalled = sub.stalled();
        let q_group = sub.q_group.clone();
        let mut acked = false;
        if sub.pending.remove(&seq).is_some() {
            acked = true;
            let _ = ch.store.subs.ack_seq_pending(id, seq);
            sub.redeliveries.remove(&seq);
            if sub.pending.is_empty() {
                self.timers.cancel(&TimerKey::Ack(id));
            }
        }
        if q_group.is_empty() {
            if acked && was_stalled {
                self.send_available(id);
            }
            return;
        }
        let chan = ch.name.clone();
        if let Some(g) = ch.queues.get_mut(&q_group) {
            if acked {
                g.redeliveries.remove(&seq);
            } else {
                // The message may have moved to another member.
                for m in g.members.clone() {
                    if let Some(s) = self.subs.get_mut(&m) {
                        if s.pending.remove(&seq).is_some() {
                            let _ = ch.store.subs.ack_seq_pending(m, seq);
                            g.redeliveries.remove(&seq);
                            if s.pending.is_empty() {
                                self.timers.cancel(&TimerKey::Ack(m));
                            }
                            acked = true;
                            break;
                        }
                    }
                }
            }
        }
        if acked {
            self.send_available_to_queue(&chan, &q_group);
        }
    }

    /// Resends every pending message of a resumed subscription, in sequence order.
    pub(crate) fn redeliver_all_pending(&mut self, id: u64) {
        let Some((sub, ch, mut out)) = self.sub_for_sending(id) else {
            return;
        };
        let now = Instant::now();
        let seqs: Vec<u64> = sub.pending.keys().copied().collect();
        let mut group = ch.queues.get_mut(&sub.q_group);
        for seq in seqs {
            let Some(m) = ch.store.msgs.lookup_encoded(seq) else {
                sub.pending.remove(&seq);
                match group.as_mut() {
                    Some(g) => g.redeliveries.remove(&seq),
                    None => sub.redeliveries.remove(&seq),
                };
                let _ = ch.store.subs.ack_seq_pending(id, seq);
                continue;
            };
            let counts = match group.as_mut() {
                Some(g) => &mut g.redeliveries,
                None => &mut sub.redeliveries,
            };
            let count = count_redelivery(counts, seq);
            sub.pending.insert(seq, later(now, sub.ack_wait));
            out.send(&mut *ch.store.subs, sub, seq, m, Some(count), now);
        }
    }

    /// Ack timer of subscription `id`: redeliver what expired (within the window), re-arm.
    pub(crate) fn ack_timeout(&mut self, id: u64) {
        let now = Instant::now();
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        if sub.offline || sub.pending.is_empty() {
            return;
        }
        let ack_wait = sub.ack_wait;
        let is_queue = !sub.q_group.is_empty();
        if !is_queue && self.client_failing(&sub.client_id) {
            self.timers.set(TimerKey::Ack(id), later(now, ack_wait));
            return;
        }
        let limit = now + REDELIVERY_WINDOW;
        let mut due: Vec<(Instant, u64)> = sub
            .pending
            .iter()
            .filter(|(_, e)| **e <= limit)
            .map(|(s, e)| (*e, *s))
            .collect();
        due.sort();
        let chan = sub.channel.clone();
        let q_group = sub.q_group.clone();
        // A pending message left this subscription without an ack.
        let mut freed = false;
        let mut out = Outbox::new(&self.transport, &mut self.stats, &mut self.timers);
        for (expiry, seq) in due {
            let Some(ch) = self.channels.get_mut(&chan) else {
                return;
            };
            let Some(m) = ch.store.msgs.lookup_encoded(seq) else {
                // Gone from the store (limits): treat as acknowledged.
                if let Some(s) = self.subs.get_mut(&id) {
                    s.pending.remove(&seq);
                    s.redeliveries.remove(&seq);
                }
                if let Some(g) = ch.queues.get_mut(&q_group) {
                    g.redeliveries.remove(&seq);
                }
                let _ = ch.store.subs.ack_seq_pending(id, seq);
                freed = true;
                continue;
            };
            let count = if is_queue {
                let Some(g) = ch.queues.get_mut(&q_group) else {
                    return;
                };
                let count = count_redelivery(&mut g.redeliveries, seq);
                let target = match best_member(&self.subs, &self.clients, &g.members) {
                    Some(idx) => {
                        let t = g.members[idx];
                        rotate_members(&mut g.members, idx);
                        t
                    }
                    None => id,
                };
                if target != id {
                    if let Some(s) = self.subs.get_mut(&id) {
                        s.pending.remove(&seq);
                    }
                    freed = true;
                    let _ = ch.store.subs.ack_seq_pending(id, seq);
                    let Some(t) = self.subs.get_mut(&target) else {
                        continue;
                    };
                    t.pending.insert(seq, later(now, t.ack_wait));
                    let _ = ch.store.subs.add_seq_pending(target, seq);
                    out.send(&mut *ch.store.subs, t, seq, m, Some(count), now);
                    continue;
                }
                count
            } else {
                let Some(s) = self.subs.get_mut(&id) else {
                    continue;
                };
                count_redelivery(&mut s.redeliveries, seq)
            };
            // Redelivered to this subscription again.
            if let Some(s) = self.subs.get_mut(&id) {
                let next = later(expiry, s.ack_wait).max(now + REDELIVERY_WINDOW);
                s.pending.insert(seq, next);
                out.send(&mut *ch.store.subs, s, seq, m, Some(count), now);
            }
        }
        // Its counts go to the channel's counters now.
        drop(out);
        // Re-arm for the earliest remaining expiry.
        if let Some(s) = self.subs.get(&id) {
            match s.pending.values().min() {
                Some(at) => self.timers.set(TimerKey::Ack(id), *at),
                None => self.timers.cancel(&TimerKey::Ack(id)),
            }
        }
        // Like an ack, a message that vanished or moved to another member may have un-stalled
        // the subscription: without this, stored messages would wait for the next publish.
        if freed {
            if is_queue {
                self.send_available_to_queue(&chan, &q_group);
            } else {
                self.send_available(id);
            }
        }
    }

    /// Installs what a persistent store recovered (§3.14): clients with fresh heartbeat
    /// timers, channels, subscriptions (non-durable ones resume on their old inbox, offline
    /// durables stay offline) and pending messages due at `timestamp + ackWait`, with their
    /// stored redelivery counts (on the subscription, or on its queue group).
    pub(crate) fn apply_recovered(&mut self, r: RecoveredState) {
        for c in &r.clients {
            if c.resends_publishes && self.dedup.enabled() {
                // Publishes it sent before the restart may be lost: it re-registers and
                // re-sends them before its later ones, which its old connID must not store
                // first (see `ConnectRequest.resends_publishes`).
                tracing::debug!(client = %c.id, "registration of a re-sending client not restored");
                if let Err(e) = self.store.delete_client(&c.id) {
                    tracing::error!(client = %c.id, "unable to delete client from store: {e}");
                }
                continue;
            }
            self.add_client_state(c);
        }
        let now = Instant::now();
        let now_ns = super::now_nanos();
        for rc in r.channels {
            let name = rc.name.clone();
            self.add_channel(&name, rc.store);
            // Limits apply to recovered channels: expire old messages at once, then re-arm.
            if let Some(ch) = self.channels.get_mut(&name) {
                if !ch.max_age().is_zero() {
                    ch.age_timer = true;
                    self.timers.set(TimerKey::Age(name.clone()), now);
                }
            }
            for rs in rc.subs {
                let rec = rs.record;
                let id = rec.id;
                // A corrupt record must not overflow the ID counter.
                let Some(next_id) = id.checked_add(1) else {
                    tracing::error!(channel = %name, id, "recovered subscription with an invalid ID ignored");
                    continue;
                };
                self.next_sub_id = self.next_sub_id.max(next_id);
                let ack_wait = if rec.ack_wait_in_secs < 0 {
                    std::time::Duration::from_millis(rec.ack_wait_in_secs.unsigned_abs() as u64)
                } else {
                    std::time::Duration::from_secs(rec.ack_wait_in_secs.max(1) as u64)
                };
                let owner_alive = self.clients.contains_key(&rec.client_id);
                let offline = rec.is_closed || !owner_alive;
                if !offline {
                    // fall through: keep active
                } else if !rec.is_durable {
                    continue;
                }
                let Some(ch) = self.channels.get_mut(&name) else {
                    continue;
                };
                // Redelivery counts recorded by the store: the next redelivery continues them.
                let mut counts: HashMap<u64, u32> = rs.redeliveries.into_iter().collect();
                let mut pending = std::collections::BTreeMap::new();
                for seq in rs.pending {
                    let ts = ch.store.msgs.timestamp(seq).unwrap_or(0);
                    let due_ns =
                        ts.saturating_add(i64::try_from(ack_wait.as_nanos()).unwrap_or(i64::MAX));
                    let wait = std::time::Duration::from_nanos(
                        due_ns.saturating_sub(now_ns).max(0) as u64,
                    );
                    pending.insert(seq, later(now, wait));
                }
                let ack_sub = if offline {
                    None
                } else {
                    self.transport
                        .subscribe(&rec.ack_inbox, Route::Ack(id))
                        .ok()
                };
                let sub = Sub {
                    id,
                    channel: name.clone(),
                    client_id: rec.client_id.clone(),
                    inbox: rec.inbox.clone(),
                    ack_inbox: rec.ack_inbox.clone(),
                    durable_name: rec.durable_name.clone(),
                    q_group: rec.q_group.clone(),
                    is_durable: rec.is_durable,
                    max_in_flight: rec.max_in_flight,
                    ack_wait_raw: rec.ack_wait_in_secs,
                    ack_wait,
                    last_sent: rec.last_sent,
                    pending,
                    redeliveries: if rec.q_group.is_empty() {
                        std::mem::take(&mut counts)
                    } else {
                        HashMap::new()
                    },
                    offline,
                    ack_sub,
                };
                if let Some(at) = sub.pending.values().min() {
                    if !offline {
                        self.timers.set(TimerKey::Ack(id), *at);
                    }
                }
                if rec.q_group.is_empty() {
                    ch.subs.push(id);
                    if rec.is_durable {
                        ch.durables
                            .insert((rec.client_id.clone(), rec.durable_name.clone()), id);
                    }
                } else {
                    let g = ch
                        .queues
                        .entry(rec.q_group.clone())
                        .or_insert_with(|| QueueGroup::new(0, rec.is_durable));
                    g.last_sent = g.last_sent.max(rec.last_sent);
                    // Queue groups count redeliveries per group, shared by the members.
                    for (seq, c) in counts {
                        let e = g.redeliveries.entry(seq).or_insert(0);
                        *e = (*e).max(c);
                    }
                    if offline {
                        g.offline = Some(id);
                    } else {
                        g.members.push(id);
                    }
                }
                if !offline {
                    self.ack_inboxes.insert(rec.ack_inbox.clone(), id);
                    if let Some(c) = self.clients.get_mut(&rec.client_id) {
                        c.subs.push(id);
                    }
                }
                self.subs.insert(id, sub);
            }
            if self
                .channels
                .get(&name)
                .is_some_and(|c| self.active_sub_count(c) > 0)
            {
                self.timers.cancel(&TimerKey::Inactivity(name.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_redelivery_fields_decode() {
        let m = pb::MsgProto {
            sequence: 7,
            subject: "ch".into(),
            data: Bytes::from_static(b"x"),
            timestamp: 42,
            ..Default::default()
        };
        let d = pb::MsgProto::decode(with_redelivery(&m.encode_to_vec(), 300)).unwrap();
        assert_eq!(
            (d.sequence, d.redelivered, d.redelivery_count),
            (7, true, 300)
        );
        assert_eq!(
            (d.subject.as_str(), d.data.as_ref(), d.timestamp),
            ("ch", &b"x"[..], 42)
        );
    }
}

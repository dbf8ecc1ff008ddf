//! Publish, PubAck and the batch that ends with dispatch and acks (§3.3).

use std::time::Duration;

use bytes::{BufMut, Bytes};
use prost::Message;
use stan_protocol::{pb, validate};
use tokio::time::Instant;

use super::dedup;
use super::pubmsg::{self, PubMsgRef};
use super::state::Channel;
use super::timers::{later, TimerKey};
use super::{now_nanos, Engine, RequestError};
use crate::monitor::metrics;
use crate::store::StoreError;
use crate::transport::Inbound;

/// The legacy server-to-server control message (`spb.CtrlMsg`): a well-formed one arriving on
/// the publish subject is ignored.
#[derive(Clone, PartialEq, ::prost::Message)]
struct CtrlMsg {
    #[prost(int32, tag = "1")]
    mtype: i32,
    #[prost(string, tag = "2")]
    server_id: String,
    #[prost(bytes = "bytes", tag = "3")]
    data: bytes::Bytes,
}

/// A channel the pending batch stored messages in, with what it stored (the channel's
/// inbound counters are updated once per batch).
pub(crate) struct BatchChannel {
    name: String,
    msgs: u64,
    bytes: u64,
}

/// A PubAck waiting for the end of its batch.
pub(crate) struct BatchAck {
    reply: String,
    /// The publish's guid: a slice of its payload (no copy).
    guid: Bytes,
    error: String,
    /// The batch slot (index in `Engine::batch_channels`) of the channel the message went to
    /// (`None` if it was refused).
    slot: Option<usize>,
    /// When the engine took the PubMsg (for the publish-to-PubAck latency metric).
    received: std::time::Instant,
}

/// `s` as a slice of `payload` when it was read from it (no copy), else copied.
fn bytes_of(payload: &Bytes, s: &str) -> Bytes {
    let (start, p) = (payload.as_ptr() as usize, s.as_ptr() as usize);
    if !s.is_empty() && p >= start && p + s.len() <= start + payload.len() {
        payload.slice_ref(s.as_bytes())
    } else {
        Bytes::copy_from_slice(s.as_bytes())
    }
}

/// A `PubAck` (`guid` = 1, `error` = 2), encoded as `pb::PubAck` encodes it, in a buffer of
/// its own size. (One small buffer per ack: a large buffer shared by a batch's acks is freed
/// by the connection writers' threads, and the allocator then returns its pages to the OS,
/// so every batch paid page faults for fresh memory.)
fn encode_pub_ack(guid: &[u8], error: &str) -> Bytes {
    let fields = [(0x0a, guid), (0x12, error.as_bytes())];
    let len = fields
        .iter()
        .filter(|(_, f)| !f.is_empty())
        .map(|(_, f)| 1 + prost::encoding::encoded_len_varint(f.len() as u64) + f.len())
        .sum();
    let mut buf = Vec::with_capacity(len);
    for (tag, field) in fields {
        if !field.is_empty() {
            buf.put_u8(tag);
            prost::encoding::encode_varint(field.len() as u64, &mut buf);
            buf.put_slice(field);
        }
    }
    Bytes::from(buf)
}

impl Engine {
    fn queue_pub_ack(
        &mut self,
        reply: Option<String>,
        guid: Bytes,
        result: Result<usize, RequestError>,
        received: std::time::Instant,
    ) {
        if let Some(reply) = reply {
            let (error, slot) = match result {
                Ok(slot) => (String::new(), Some(slot)),
                Err(e) => (e.to_string(), None),
            };
            self.batch_acks.push(BatchAck {
                reply,
                guid,
                error,
                slot,
                received,
            });
        }
    }

    /// Validates and stores one publish; its PubAck goes out with the batch.
    pub(crate) fn handle_publish(&mut self, m: Inbound) {
        // One clock read per batch for the publish-to-PubAck latency: its first publish's.
        let received = *self
            .batch_received
            .get_or_insert_with(std::time::Instant::now);
        let Inbound {
            reply,
            payload,
            origin,
            ..
        } = m;
        let decoded = match pubmsg::decode(&payload) {
            Ok(r) => r,
            Err(_) if CtrlMsg::decode(payload.clone()).is_ok() => {
                tracing::debug!("control message on the publish subject ignored");
                return;
            }
            Err(_) => {
                return self.queue_pub_ack(
                    reply,
                    Bytes::new(),
                    Err(RequestError::InvalidPubRequest),
                    received,
                )
            }
        };
        let req = decoded.as_ref();
        if origin.is_some() && !self.cfg.trust_client_subjects {
            self.bind_by_conn_id(&req.conn_id, origin);
        }
        let guid = bytes_of(&payload, req.guid);
        let result = if guid.is_empty() {
            Err(RequestError::InvalidPubRequest)
        } else {
            self.store_publish(req)
        };
        self.queue_pub_ack(reply, guid, result, received);
    }

    /// Checks the subject and the publisher, then appends the message to its channel (created
    /// on first use), arms the channel's max_age timer and marks the channel for the batch.
    /// A publish whose guid the channel stored within the de-duplication window is
    /// acknowledged like the original (with the batch, after the flush) and not stored again.
    /// Returns the channel's batch slot.
    fn store_publish(&mut self, req: PubMsgRef<'_>) -> Result<usize, RequestError> {
        let guid = req.guid;
        if !validate::is_valid_channel(req.subject) {
            return Err(RequestError::InvalidPubRequest);
        }
        let known = if !req.conn_id.is_empty() {
            self.conn_ids.contains_key(&req.conn_id)
        } else {
            self.clients.contains_key(req.client_id)
        };
        if !known {
            return Err(RequestError::InvalidPubRequest);
        }
        self.lookup_or_create_channel(req.subject)?;
        let payload_len = req.data.len() as u64;
        // The channel exists: it was just looked up or created.
        let ch = self
            .channels
            .get_mut(req.subject)
            .ok_or(RequestError::InvalidPubRequest)?;
        // The channel's slot in the batch: a re-sent publish's ack also waits for (and
        // shares the outcome of) the channel's flush.
        let slot = match ch.batch_slot {
            Some(i) => i,
            None => {
                self.batch_channels.push(BatchChannel {
                    name: ch.name.clone(),
                    msgs: 0,
                    bytes: 0,
                });
                let i = self.batch_channels.len() - 1;
                ch.batch_slot = Some(i);
                i
            }
        };
        let now_ns = now_nanos();
        if self.dedup.seen(&ch.name, guid, now_ns) {
            tracing::debug!(channel = %ch.name, guid, "re-sent publish acknowledged again, not stored");
            return Ok(slot);
        }
        let timestamp = now_ns.max(ch.store.msgs.last_timestamp());
        let msg = pb::MsgProto {
            sequence: 0,
            subject: req.subject.to_string(),
            reply: req.reply.to_string(),
            data: req.data,
            timestamp,
            ..Default::default()
        };
        if self.dedup.enabled() {
            ch.store.msgs.store_with_guid(msg, guid)?;
            self.dedup.record(&ch.name, guid, timestamp);
        } else {
            ch.store.msgs.store(msg)?;
        }
        // `last_activity` is set once per batch, with the PubAcks (`finish_batch`).
        let max_age = ch.max_age();
        if !max_age.is_zero() && !ch.age_timer {
            ch.age_timer = true;
            self.timers.set(
                TimerKey::Age(ch.name.clone()),
                later(Instant::now(), max_age),
            );
        }
        if let Some(b) = self.batch_channels.get_mut(slot) {
            b.msgs += 1;
            b.bytes += payload_len;
        }
        self.stats.in_msgs += 1;
        self.stats.in_bytes += payload_len;
        Ok(slot)
    }

    /// Ends a batch: flush touched message stores, dispatch, flush subscription stores, send
    /// the PubAcks in order. A message whose store failed to flush is acknowledged with the
    /// store's error: a successful PubAck always means "stored" (on disk, for a synced FILE
    /// store).
    pub(crate) async fn finish_batch(&mut self) {
        self.batch_received = None;
        if self.batch_channels.is_empty() && self.batch_acks.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch_channels);
        let mut touched = Vec::with_capacity(batch.len());
        for b in batch {
            if let Some(ch) = self.channels.get_mut(&b.name) {
                ch.batch_slot = None;
            }
            let counters = self.stats.channel(&b.name);
            counters.in_msgs += b.msgs;
            counters.in_bytes += b.bytes;
            touched.push(b.name);
        }
        // The flush error of each batch slot (`touched` index), if it failed.
        let mut failed: Vec<Option<String>> = vec![None; touched.len()];
        for (name, failure) in touched.iter().zip(failed.iter_mut()) {
            if let Some(ch) = self.channels.get_mut(name) {
                if let Err(e) = ch.store.msgs.flush().await {
                    tracing::error!(channel = %name, "message store flush failed: {e}");
                    *failure = Some(e.to_string());
                }
                // Inactivity counts from the PubAcks (a slow flush is not idle time).
                ch.last_activity = Instant::now();
            }
        }
        // Responses held by earlier requests go first: their subscriptions are announced
        // before the batch's messages are dispatched to them.
        self.release_replies().await;
        // A channel whose flush failed delivers nothing of this batch: its publishers get an
        // error, and a subscriber must never see a message that may not be stored.
        for (name, failure) in touched.iter().zip(&failed) {
            if failure.is_none() {
                self.dispatch_channel(name);
            }
        }
        for name in &touched {
            if let Some(ch) = self.channels.get_mut(name) {
                if let Err(e) = ch.store.subs.flush().await {
                    tracing::error!(channel = %name, "subscription store flush failed: {e}");
                }
            }
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!("store flush failed: {e}");
        }
        // Taken and given back, so that its capacity serves every batch.
        let mut acks = std::mem::take(&mut self.batch_acks);
        let sent = std::time::Instant::now();
        for mut a in acks.drain(..) {
            if let Some(slot) = a.slot {
                if let (Some(Some(e)), Some(name)) = (failed.get(slot), touched.get(slot)) {
                    a.error = e.clone();
                    // Not durable: a re-sent copy must be stored.
                    self.dedup
                        .forget(name, std::str::from_utf8(&a.guid).unwrap_or_default());
                }
            }
            let ack = encode_pub_ack(&a.guid, &a.error);
            self.transport.publish(&a.reply, None, ack);
            metrics::PUBLISH_ACK_LATENCY.observe(sent.saturating_duration_since(a.received));
        }
        self.batch_acks = acks;
    }

    /// Sends what is available to every subscription and queue group of a channel.
    pub(crate) fn dispatch_channel(&mut self, name: &str) {
        let Some(ch) = self.channels.get(name) else {
            return;
        };
        let subs = ch.subs.clone();
        let groups: Vec<String> = ch.queues.keys().cloned().collect();
        for id in subs {
            self.send_available(id);
        }
        for g in groups {
            self.send_available_to_queue(name, &g);
        }
    }

    /// The channel, created on first use (limits, case conflicts).
    pub(crate) fn lookup_or_create_channel(&mut self, name: &str) -> Result<(), RequestError> {
        if self.channels.contains_key(name) {
            return Ok(());
        }
        let lower = name.to_lowercase();
        if let Some(existing) = self.lower_names.get(&lower) {
            return Err(RequestError::ChannelCaseConflict {
                name: name.to_string(),
                existing: existing.clone(),
            });
        }
        let store = self.store.create_channel(name).map_err(|e| match e {
            StoreError::TooManyChannels => RequestError::TooManyChannels,
            e => RequestError::Store(e),
        })?;
        self.add_channel(name, store);
        Ok(())
    }

    /// Adds a channel to the engine (created or recovered) and arms its inactivity timer. The
    /// de-duplication window of a recovered channel is rebuilt from the guids its store kept
    /// with the messages stored within the window.
    pub(crate) fn add_channel(&mut self, name: &str, store: crate::store::ChannelStore) {
        if self.dedup.enabled() && store.msgs.last_sequence() > 0 {
            let since = self.dedup.oldest(now_nanos());
            let guids = store.msgs.recent_guids(since, dedup::MAX_GUIDS_PER_CHANNEL);
            tracing::debug!(channel = %name, guids = guids.len(), "de-duplication window recovered");
            for (guid, ts) in guids {
                self.dedup.record(name, &guid, ts);
            }
        }
        let now = Instant::now();
        let ch = Channel {
            name: name.to_string(),
            store,
            subs: Vec::new(),
            durables: Default::default(),
            queues: Default::default(),
            last_activity: now,
            age_timer: false,
            batch_slot: None,
        };
        let mi = ch.max_inactivity();
        self.lower_names
            .insert(name.to_lowercase(), name.to_string());
        self.channels.insert(name.to_string(), ch);
        if !mi.is_zero() {
            self.timers
                .set(TimerKey::Inactivity(name.to_string()), later(now, mi));
        }
        tracing::debug!(channel = %name, "channel created");
    }

    /// max_age timer: drop expired messages, re-arm for the next one.
    pub(crate) fn expire_channel(&mut self, name: &str) {
        let Some(ch) = self.channels.get_mut(name) else {
            return;
        };
        let now = now_nanos();
        ch.age_timer = false;
        if let Some(next) = ch.store.msgs.expire(now) {
            ch.age_timer = true;
            let wait = Duration::from_nanos(next.saturating_sub(now).max(0) as u64);
            self.timers
                .set(TimerKey::Age(name.to_string()), later(Instant::now(), wait));
        }
    }

    /// Number of active (online) subscriptions of a channel.
    pub(crate) fn active_sub_count(&self, ch: &Channel) -> usize {
        ch.subs
            .iter()
            .filter(|id| self.subs.get(id).is_some_and(|s| !s.offline))
            .count()
            + ch.queues.values().map(|g| g.members.len()).sum::<usize>()
    }

    /// Arms the inactivity timer when a channel has no active subscription left.
    pub(crate) fn arm_inactivity_if_idle(&mut self, name: &str) {
        let Some(ch) = self.channels.get(name) else {
            return;
        };
        let mi = ch.max_inactivity();
        if mi.is_zero() || self.active_sub_count(ch) > 0 {
            return;
        }
        let now = Instant::now();
        if let Some(ch) = self.channels.get_mut(name) {
            ch.last_activity = now;
        }
        self.timers
            .set(TimerKey::Inactivity(name.to_string()), later(now, mi));
    }

    /// Inactivity timer: delete the channel if it stayed idle long enough.
    pub(crate) fn inactivity_check(&mut self, name: &str) {
        let Some(ch) = self.channels.get(name) else {
            return;
        };
        if self.active_sub_count(ch) > 0 {
            return;
        }
        let deadline = later(ch.last_activity, ch.max_inactivity());
        if Instant::now() < deadline {
            self.timers
                .set(TimerKey::Inactivity(name.to_string()), deadline);
            return;
        }
        self.delete_channel(name);
        tracing::info!(channel = %name, "channel deleted after inactivity");
    }

    /// Deletes a channel with its messages and every subscription (offline ones too).
    pub(crate) fn delete_channel(&mut self, name: &str) {
        let Some(ch) = self.channels.remove(name) else {
            return;
        };
        for id in ch.all_sub_ids() {
            if let Some(sub) = self.subs.remove(&id) {
                self.unlink_sub(id, &sub.ack_inbox, &sub.client_id);
            }
        }
        self.lower_names.remove(&name.to_lowercase());
        self.dedup.drop_channel(name);
        self.timers.cancel(&TimerKey::Age(name.to_string()));
        self.timers.cancel(&TimerKey::Inactivity(name.to_string()));
        if let Err(e) = self.store.delete_channel(name) {
            tracing::error!(channel = %name, "unable to delete channel from store: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pub_acks_encode_as_the_generated_code_does() {
        let long = "g".repeat(300);
        for (guid, error) in [
            ("", ""),
            ("Zq5Ha0fQ5xC7dMb1hLq2Xo", ""),
            ("", "stan: invalid publish request"),
            (long.as_str(), "e"),
        ] {
            let ours = encode_pub_ack(guid.as_bytes(), error);
            let generated = pb::PubAck {
                guid: guid.to_string(),
                error: error.to_string(),
            }
            .encode_to_vec();
            assert_eq!(&ours[..], &generated[..], "guid {guid:?}, error {error:?}");
            assert_eq!(ours.len(), generated.len());
        }
    }

    #[test]
    fn a_guid_read_from_the_payload_is_a_slice_of_it_and_any_other_is_copied() {
        let payload = Bytes::from_static(b"xxguid-1yy");
        let inside = std::str::from_utf8(&payload[2..8]).unwrap();
        let b = bytes_of(&payload, inside);
        assert_eq!(&b[..], b"guid-1");
        assert_eq!(b.as_ptr(), payload[2..].as_ptr(), "no copy");
        let other = String::from("guid-1");
        assert_eq!(&bytes_of(&payload, &other)[..], b"guid-1");
        assert!(bytes_of(&payload, "").is_empty());
    }
}

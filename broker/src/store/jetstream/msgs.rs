//! The messages of one channel on the JETSTREAM store: a stream whose sequences are the
//! channel's, and a copy in memory that serves the engine's reads.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use stan_protocol::pb::MsgProto;

use super::Shared;
use crate::config::ChannelLimits;
use crate::store::memory::MemoryMsgStore;
use crate::store::{MsgStore, StoreError, StoreResult};

/// Guids kept per channel for [`MsgStore::recent_guids`]: as many as the engine's
/// de-duplication window holds at most (`--dedup_window`: 100,000 per channel).
pub(crate) const MAX_GUIDS: usize = 100_000;

/// Header carrying the guid of the publish that stored a message.
pub(crate) const GUID_HEADER: &str = "Stan-Guid";

/// A write waiting for the next flush.
enum Op {
    Append {
        seq: u64,
        guid: Option<String>,
        payload: Bytes,
    },
    Purge,
}

/// One channel's messages.
pub(crate) struct JsMsgStore {
    pub(crate) mem: MemoryMsgStore,
    shared: Arc<Shared>,
    stream: String,
    subject: String,
    limits: ChannelLimits,
    ops: Vec<Op>,
    /// Guids of stored publishes that had one: (sequence, guid, timestamp), oldest first.
    guids: VecDeque<(u64, String, i64)>,
    /// The stream exists with this store's configuration.
    stream_ready: bool,
    limits_changed: bool,
    /// The last sequence JetStream acknowledged (what the memory copy may hold after a failed
    /// flush).
    confirmed: std::sync::atomic::AtomicU64,
}

/// The stream configuration of a channel.
pub(crate) fn stream_config(
    name: &str,
    subject: &str,
    limits: &ChannelLimits,
    replicas: usize,
) -> stream::Config {
    let positive = |v: i64| if v > 0 { v } else { -1 };
    stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        max_messages: positive(limits.max_msgs.unwrap_or(0) as i64),
        max_bytes: positive(limits.max_bytes.unwrap_or(0) as i64),
        max_age: limits.max_age.unwrap_or(Duration::ZERO),
        // Publishes carry no Nats-Msg-Id (the engine de-duplicates): keep the window small
        // (and within max_age, as JetStream requires).
        duplicate_window: match limits.max_age {
            Some(age) if !age.is_zero() => age.min(Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        },
        description: Some("stan-broker channel".into()),
        ..Default::default()
    }
}

/// Why an existing stream cannot hold a channel (`None`: it can).
pub(crate) fn incompatible(existing: &stream::Config, wanted: &stream::Config) -> Option<String> {
    if existing.subjects != wanted.subjects {
        return Some(format!(
            "its subjects are {:?}, expected {:?}",
            existing.subjects, wanted.subjects
        ));
    }
    if existing.retention != stream::RetentionPolicy::Limits {
        return Some(format!(
            "its retention is {:?}, expected Limits",
            existing.retention
        ));
    }
    if existing.discard != stream::DiscardPolicy::Old {
        return Some("its discard policy is New, expected Old".into());
    }
    if existing.max_messages_per_subject > 0 {
        return Some("it limits messages per subject".into());
    }
    None
}

impl JsMsgStore {
    pub(crate) fn new(
        shared: Arc<Shared>,
        channel: &str,
        limits: &ChannelLimits,
        stream_ready: bool,
    ) -> JsMsgStore {
        JsMsgStore {
            mem: MemoryMsgStore::new(channel, limits),
            stream: shared.names.stream(channel),
            subject: shared.names.subject(channel),
            shared,
            limits: limits.clone(),
            ops: Vec::new(),
            guids: VecDeque::new(),
            stream_ready,
            limits_changed: false,
            confirmed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// After recovery: everything up to the stream's last sequence is stored.
    pub(crate) fn set_confirmed(&mut self, last: u64) {
        *self.confirmed.get_mut() = last;
    }

    fn confirm(&self, seq: u64) {
        self.confirmed
            .fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
    }

    /// Remembers the guid of a recovered message.
    pub(crate) fn restore_guid(&mut self, seq: u64, guid: String, ts: i64) {
        self.guids.push_back((seq, guid, ts));
    }

    fn trim_guids(&mut self) {
        let first = self.mem.first_sequence();
        while self.guids.front().is_some_and(|(s, _, _)| *s < first) {
            self.guids.pop_front();
        }
    }

    fn config(&self) -> stream::Config {
        stream_config(
            &self.stream,
            &self.subject,
            &self.limits,
            self.shared.replicas,
        )
    }

    /// Creates the stream (after deleting a deleted channel's stream of the same name that is
    /// still waiting for deletion) or checks the existing one.
    async fn ensure_stream(&mut self) -> StoreResult<()> {
        let js = &self.shared.js;
        let stale = self
            .shared
            .pending
            .lock()
            .expect("store buffer lock")
            .take_stream_deletion(&self.stream);
        if stale {
            self.shared.delete_stream(&self.stream).await?;
        }
        let wanted = self.config();
        match js.get_stream(&self.stream).await {
            Ok(mut s) => {
                let info = s.info().await.map_err(|e| {
                    StoreError::Other(format!("JetStream stream {}: {e}", self.stream))
                })?;
                if let Some(why) = incompatible(&info.config, &wanted) {
                    return Err(StoreError::Other(format!(
                        "JetStream stream {} cannot hold channel {:?}: {why}",
                        self.stream,
                        self.mem_name()
                    )));
                }
            }
            Err(_) => {
                js.create_stream(wanted).await.map_err(|e| {
                    StoreError::Other(super::explain_create(&self.stream, self.shared.replicas, e))
                })?;
            }
        }
        self.stream_ready = true;
        Ok(())
    }

    fn mem_name(&self) -> String {
        self.shared
            .names
            .channel_of_stream(&self.stream)
            .unwrap_or_default()
    }

    async fn write(&mut self) -> StoreResult<()> {
        if !self.stream_ready {
            self.ensure_stream().await?;
        }
        if std::mem::take(&mut self.limits_changed) {
            self.shared
                .js
                .update_stream(self.config())
                .await
                .map_err(|e| StoreError::Other(format!("JetStream stream {}: {e}", self.stream)))?;
        }
        let ops = std::mem::take(&mut self.ops);
        let mut batch: Vec<(u64, Option<String>, Bytes)> = Vec::new();
        for op in ops {
            match op {
                Op::Append { seq, guid, payload } => batch.push((seq, guid, payload)),
                Op::Purge => {
                    self.publish_all(std::mem::take(&mut batch)).await?;
                    let stream = self.shared.js.get_stream(&self.stream).await.map_err(|e| {
                        StoreError::Other(format!("JetStream stream {}: {e}", self.stream))
                    })?;
                    stream.purge().await.map_err(|e| {
                        StoreError::Other(format!("purging JetStream stream {}: {e}", self.stream))
                    })?;
                }
            }
        }
        self.publish_all(batch).await
    }

    /// Publishes messages pipelined (all sent, then all acknowledgements awaited). Each
    /// carries the sequence it must get (`Nats-Expected-Last-Sequence`), so a message can
    /// neither be stored twice nor land at another sequence, also when retried.
    async fn publish_all(&self, batch: Vec<(u64, Option<String>, Bytes)>) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let js = &self.shared.js;
        let mut acks = Vec::with_capacity(batch.len());
        let mut failed_at = None;
        for (i, (seq, guid, payload)) in batch.iter().enumerate() {
            match js
                .publish_with_headers(self.subject.clone(), headers(*seq, guid), payload.clone())
                .await
            {
                Ok(f) => acks.push(f),
                Err(_) => {
                    failed_at = Some(i);
                    break;
                }
            }
        }
        for (i, f) in acks.into_iter().enumerate() {
            match f.await {
                Ok(ack) if ack.sequence == batch[i].0 => self.confirm(ack.sequence),
                _ => {
                    failed_at = Some(failed_at.map_or(i, |f: usize| f.min(i)));
                    break;
                }
            }
        }
        match failed_at {
            None => Ok(()),
            Some(i) => self.publish_slowly(&batch[i..]).await,
        }
    }

    /// The careful path after a failed pipelined publish (a JetStream leader change, a lost
    /// connection): one message at a time, each retried until stored or the deadline passes;
    /// a message that turns out to be stored already counts as stored.
    async fn publish_slowly(&self, batch: &[(u64, Option<String>, Bytes)]) -> StoreResult<()> {
        let deadline = tokio::time::Instant::now() + self.shared.retry_for;
        for (seq, guid, payload) in batch {
            loop {
                if self.shared.is_fenced() {
                    return Err(StoreError::Other(
                        "the JetStream store lost its lease".into(),
                    ));
                }
                let attempt = async {
                    self.shared
                        .js
                        .publish_with_headers(
                            self.subject.clone(),
                            headers(*seq, guid),
                            payload.clone(),
                        )
                        .await?
                        .await
                };
                let last_error = match attempt.await {
                    Ok(ack) if ack.sequence == *seq => {
                        self.confirm(*seq);
                        break;
                    }
                    Ok(ack) => format!("stored at {} instead of {seq}", ack.sequence),
                    Err(e) => e.to_string(),
                };
                if self.stored_already(*seq, payload).await {
                    self.confirm(*seq);
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::Other(format!(
                        "JetStream stream {}: message {seq} not stored: {last_error}",
                        self.stream
                    )));
                }
                tracing::warn!(stream = %self.stream, seq, "JetStream write failed, retrying: {last_error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    async fn stored_already(&self, seq: u64, payload: &Bytes) -> bool {
        let Ok(stream) = self.shared.js.get_stream_no_info(&self.stream).await else {
            return false;
        };
        matches!(stream.get_raw_message(seq).await, Ok(m) if m.payload == *payload)
    }
}

fn headers(seq: u64, guid: &Option<String>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "Nats-Expected-Last-Sequence",
        (seq - 1).to_string().as_str(),
    );
    if let Some(g) = guid {
        h.insert(GUID_HEADER, g.as_str());
    }
    h
}

impl MsgStore for JsMsgStore {
    fn store(&mut self, msg: MsgProto) -> StoreResult<u64> {
        self.store_guid(msg, None)
    }

    fn store_with_guid(&mut self, msg: MsgProto, guid: &str) -> StoreResult<u64> {
        self.store_guid(msg, Some(guid))
    }

    fn recent_guids(&self, since: i64, max: usize) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .guids
            .iter()
            .rev()
            .take_while(|(_, _, ts)| *ts >= since)
            .take(max)
            .map(|(_, g, ts)| (g.clone(), *ts))
            .collect();
        v.reverse();
        v
    }

    fn lookup(&self, seq: u64) -> Option<MsgProto> {
        self.mem.lookup(seq)
    }

    fn lookup_encoded(&self, seq: u64) -> Option<Bytes> {
        self.mem.lookup_encoded(seq)
    }

    fn first_sequence(&self) -> u64 {
        self.mem.first_sequence()
    }

    fn last_sequence(&self) -> u64 {
        self.mem.last_sequence()
    }

    fn last_timestamp(&self) -> i64 {
        self.mem.last_timestamp()
    }

    fn state(&self) -> (u64, u64) {
        self.mem.state()
    }

    fn sequence_for_timestamp(&self, ts: i64) -> u64 {
        self.mem.sequence_for_timestamp(ts)
    }

    fn expire(&mut self, now: i64) -> Option<i64> {
        // The stream expires its own copies (max_age).
        let next = self.mem.expire(now);
        self.trim_guids();
        next
    }

    fn purge(&mut self) -> StoreResult<()> {
        self.mem.purge()?;
        self.guids.clear();
        self.ops.push(Op::Purge);
        Ok(())
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            self.shared.check()?;
            if self.ops.is_empty() && !self.limits_changed {
                return Ok(());
            }
            let r = self.write().await;
            if let Err(e) = &r {
                // The memory copy keeps only what JetStream acknowledged (nothing unstored can
                // be delivered), and the store stops writing, so that a standby (or a restart)
                // serves what JetStream holds.
                let confirmed = *self.confirmed.get_mut();
                self.mem.truncate_after(confirmed);
                self.guids.retain(|(s, _, _)| *s <= confirmed);
                self.shared.fail(format!("{e}"));
            }
            r
        }
        .boxed()
    }

    fn set_limits(&mut self, limits: &ChannelLimits) -> StoreResult<()> {
        self.mem.set_limits(limits)?;
        self.limits = limits.clone();
        self.limits_changed = true;
        Ok(())
    }
}

impl JsMsgStore {
    fn store_guid(&mut self, msg: MsgProto, guid: Option<&str>) -> StoreResult<u64> {
        let ts = msg.timestamp;
        let seq = self.mem.store(msg)?;
        let payload = self
            .mem
            .lookup_encoded(seq)
            .expect("the newest message is always kept");
        if let Some(g) = guid {
            self.guids.push_back((seq, g.to_string(), ts));
            // Only the newest guids can matter to a restarted de-duplication window.
            if self.guids.len() > MAX_GUIDS {
                self.guids.pop_front();
            }
            if self.guids.len() > 1024 && self.guids.len() as u64 > self.mem.state().0 {
                self.trim_guids();
            }
        }
        self.ops.push(Op::Append {
            seq,
            guid: guid.map(str::to_string),
            payload,
        });
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_map_onto_the_stream() {
        let limits = ChannelLimits {
            max_msgs: Some(10),
            max_bytes: Some(0),
            max_age: Some(Duration::from_secs(60)),
            ..ChannelLimits::default()
        };
        let c = stream_config("S-c-foo", "$SJS.S.c.foo", &limits, 3);
        assert_eq!(c.max_messages, 10);
        assert_eq!(c.max_bytes, -1);
        assert_eq!(c.max_age, Duration::from_secs(60));
        assert_eq!(c.num_replicas, 3);
        assert_eq!(c.discard, stream::DiscardPolicy::Old);
        assert_eq!(incompatible(&c, &c), None);
        let mut other = c.clone();
        other.subjects = vec!["elsewhere".into()];
        assert!(incompatible(&other, &c).unwrap().contains("subjects"));
        let mut other = c.clone();
        other.retention = stream::RetentionPolicy::WorkQueue;
        assert!(incompatible(&other, &c).unwrap().contains("retention"));
        let mut other = c.clone();
        other.discard = stream::DiscardPolicy::New;
        assert!(incompatible(&other, &c).is_some());
    }

    #[test]
    fn every_message_names_the_sequence_it_must_get() {
        let h = headers(5, &Some("g1".into()));
        assert_eq!(
            h.get("Nats-Expected-Last-Sequence").map(|v| v.as_str()),
            Some("4")
        );
        assert_eq!(h.get(GUID_HEADER).map(|v| v.as_str()), Some("g1"));
        assert!(headers(1, &None).get(GUID_HEADER).is_none());
    }
}

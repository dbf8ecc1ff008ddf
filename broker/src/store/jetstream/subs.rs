//! Subscription records, client records and server info of the JETSTREAM store, as JSON values
//! of key-value buckets, and the buffer of writes they wait in until the next flush.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use stan_protocol::subjects::ServerSubjects;

use super::names::Names;
use super::Shared;
use crate::store::{ClientRecord, RecoveredSub, ServerInfo, StoreResult, SubRecord, SubStore};

/// A subscription with its pending sequences (as ranges) and redelivery counts, as stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SubValue {
    #[serde(flatten)]
    record: SubRecord,
    /// Pending sequences as `[first, last]` ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    redeliveries: Vec<(u64, u32)>,
}

/// One subscription's live state in the write buffer.
#[derive(Clone, Debug, Default)]
pub(crate) struct SubState {
    record: SubRecord,
    pending: BTreeSet<u64>,
    redeliveries: BTreeMap<u64, u32>,
}

impl SubState {
    fn value(&self) -> SubValue {
        let mut pending: Vec<(u64, u64)> = Vec::new();
        for &s in &self.pending {
            match pending.last_mut() {
                Some((_, last)) if *last + 1 == s => *last = s,
                _ => pending.push((s, s)),
            }
        }
        SubValue {
            record: self.record.clone(),
            pending,
            redeliveries: self.redeliveries.iter().map(|(&s, &c)| (s, c)).collect(),
        }
    }
}

impl SubValue {
    /// The recovered subscription (`None`: an impossible pending range).
    pub(crate) fn recovered(self) -> Option<RecoveredSub> {
        let mut pending = Vec::new();
        for (a, b) in self.pending {
            if b < a || b - a > 10_000_000 {
                return None;
            }
            pending.extend(a..=b);
        }
        Some(RecoveredSub {
            record: self.record,
            pending,
            redeliveries: self.redeliveries,
        })
    }
}

/// The server info, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ServerValue {
    cluster_id: String,
    node_id: String,
    discover: String,
    pings: String,
    publish: String,
    subscribe: String,
    unsubscribe: String,
    sub_close: String,
    close: String,
}

impl From<&ServerInfo> for ServerValue {
    fn from(i: &ServerInfo) -> Self {
        let s = &i.subjects;
        ServerValue {
            cluster_id: i.cluster_id.clone(),
            node_id: i.node_id.clone(),
            discover: s.discover.clone(),
            pings: s.pings.clone(),
            publish: s.publish.clone(),
            subscribe: s.subscribe.clone(),
            unsubscribe: s.unsubscribe.clone(),
            sub_close: s.sub_close.clone(),
            close: s.close.clone(),
        }
    }
}

impl From<ServerValue> for ServerInfo {
    fn from(v: ServerValue) -> Self {
        ServerInfo {
            cluster_id: v.cluster_id,
            node_id: v.node_id,
            subjects: ServerSubjects {
                discover: v.discover,
                pings: v.pings,
                publish: v.publish,
                subscribe: v.subscribe,
                unsubscribe: v.unsubscribe,
                sub_close: v.sub_close,
                close: v.close,
            },
        }
    }
}

/// Writes waiting for the next flush, and the live subscription states they come from.
#[derive(Default)]
pub(crate) struct Pending {
    /// Live subscription states by (channel, ID).
    subs: HashMap<(String, u64), SubState>,
    /// Subscriptions changed since the last flush (written, or deleted when not in `subs`).
    dirty_subs: BTreeSet<(String, u64)>,
    /// Clients changed since the last flush: the record to write, `None` to delete.
    clients: BTreeMap<String, Option<ClientRecord>>,
    /// Server info to write.
    server: Option<ServerInfo>,
    /// Streams of deleted channels, to delete.
    deleted_streams: BTreeSet<String>,
    /// Streams of new channels that no message created yet, to create (so that a channel
    /// with only subscriptions survives a takeover too).
    new_streams: BTreeMap<String, async_nats::jetstream::stream::Config>,
}

/// One batch of bucket writes taken from [`Pending`].
#[derive(Default)]
pub(crate) struct Writes {
    pub(crate) subs: Vec<(String, Option<Bytes>)>,
    pub(crate) clients: Vec<(String, Option<Bytes>)>,
    pub(crate) server: Option<Bytes>,
    pub(crate) deleted_streams: Vec<String>,
    pub(crate) new_streams: Vec<async_nats::jetstream::stream::Config>,
}

impl Writes {
    pub(crate) fn is_empty(&self) -> bool {
        self.subs.is_empty()
            && self.clients.is_empty()
            && self.server.is_none()
            && self.deleted_streams.is_empty()
            && self.new_streams.is_empty()
    }
}

fn json<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("plain records serialise"))
}

impl Pending {
    /// Takes every buffered write.
    pub(crate) fn take(&mut self) -> Writes {
        let mut w = Writes::default();
        for key in std::mem::take(&mut self.dirty_subs) {
            let value = self.subs.get(&key).map(|s| json(&s.value()));
            w.subs.push((Names::sub_key(&key.0, key.1), value));
        }
        for (id, c) in std::mem::take(&mut self.clients) {
            w.clients
                .push((super::names::escape(&id), c.as_ref().map(json)));
        }
        w.server = self.server.take().map(|i| json(&ServerValue::from(&i)));
        w.deleted_streams = std::mem::take(&mut self.deleted_streams)
            .into_iter()
            .collect();
        w.new_streams = std::mem::take(&mut self.new_streams)
            .into_values()
            .collect();
        w
    }

    /// Puts writes that failed back (unless newer ones replaced them meanwhile).
    pub(crate) fn set_client(&mut self, id: &str, c: Option<ClientRecord>) {
        self.clients.insert(id.to_string(), c);
    }

    pub(crate) fn set_server(&mut self, info: &ServerInfo) {
        self.server = Some(info.clone());
    }

    /// A deleted channel: its stream and its subscription records go.
    pub(crate) fn delete_channel(&mut self, channel: &str, stream: String) {
        let keys: Vec<(String, u64)> = self
            .subs
            .keys()
            .filter(|(c, _)| c == channel)
            .cloned()
            .collect();
        for k in keys {
            self.subs.remove(&k);
            self.dirty_subs.insert(k);
        }
        self.new_streams.remove(&stream);
        self.deleted_streams.insert(stream);
    }

    /// A new channel's stream, to create at the next flush unless its message store does.
    pub(crate) fn create_stream(&mut self, config: async_nats::jetstream::stream::Config) {
        self.new_streams.insert(config.name.clone(), config);
    }

    /// Whether the stream is waiting to be deleted (and forgets it: the caller deletes it).
    pub(crate) fn take_stream_deletion(&mut self, stream: &str) -> bool {
        self.new_streams.remove(stream);
        self.deleted_streams.remove(stream)
    }

    /// A recovered subscription's state (nothing to write).
    pub(crate) fn restore_sub(&mut self, channel: &str, sub: &RecoveredSub) {
        self.subs.insert(
            (channel.to_string(), sub.record.id),
            SubState {
                record: sub.record.clone(),
                pending: sub.pending.iter().copied().collect(),
                redeliveries: sub.redeliveries.iter().copied().collect(),
            },
        );
    }

    fn update(&mut self, channel: &str, id: u64, f: impl FnOnce(&mut SubState)) {
        let key = (channel.to_string(), id);
        if let Some(s) = self.subs.get_mut(&key) {
            f(s);
            self.dirty_subs.insert(key);
        }
    }
}

/// The subscription records of one channel: live state in the shared buffer.
pub(crate) struct JsSubStore {
    pub(crate) channel: String,
    pub(crate) shared: Arc<Shared>,
}

impl JsSubStore {
    fn with<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> T {
        f(&mut self.shared.pending.lock().expect("store buffer lock"))
    }
}

impl SubStore for JsSubStore {
    fn create_sub(&mut self, sub: &SubRecord) -> StoreResult<()> {
        let ch = self.channel.clone();
        self.with(|p| {
            let key = (ch, sub.id);
            p.subs.insert(
                key.clone(),
                SubState {
                    record: sub.clone(),
                    ..SubState::default()
                },
            );
            p.dirty_subs.insert(key);
        });
        Ok(())
    }

    fn update_sub(&mut self, sub: &SubRecord) -> StoreResult<()> {
        let ch = self.channel.clone();
        self.with(|p| p.update(&ch, sub.id, |s| s.record = sub.clone()));
        Ok(())
    }

    fn delete_sub(&mut self, id: u64) -> StoreResult<()> {
        let ch = self.channel.clone();
        self.with(|p| {
            let key = (ch, id);
            p.subs.remove(&key);
            p.dirty_subs.insert(key);
        });
        Ok(())
    }

    fn add_seq_pending(&mut self, id: u64, seq: u64) -> StoreResult<()> {
        let ch = self.channel.clone();
        self.with(|p| {
            p.update(&ch, id, |s| {
                s.pending.insert(seq);
                if seq > s.record.last_sent {
                    s.record.last_sent = seq;
                }
            })
        });
        Ok(())
    }

    fn ack_seq_pending(&mut self, id: u64, seq: u64) -> StoreResult<()> {
        let ch = self.channel.clone();
        self.with(|p| {
            p.update(&ch, id, |s| {
                s.pending.remove(&seq);
                s.redeliveries.remove(&seq);
            })
        });
        Ok(())
    }

    fn record_redelivery(&mut self, id: u64, seq: u64, count: u32) -> StoreResult<()> {
        let ch = self.channel.clone();
        self.with(|p| {
            p.update(&ch, id, |s| {
                if s.pending.contains(&seq) {
                    s.redeliveries.insert(seq, count);
                }
            })
        });
        Ok(())
    }

    fn count(&self) -> usize {
        self.with(|p| p.subs.keys().filter(|(c, _)| *c == self.channel).count())
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        let shared = self.shared.clone();
        async move { shared.write_buckets().await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_sequences_are_stored_as_ranges_and_come_back() {
        let mut s = SubState {
            record: SubRecord {
                id: 7,
                client_id: "c".into(),
                last_sent: 9,
                ..SubRecord::default()
            },
            ..SubState::default()
        };
        s.pending.extend([1, 2, 3, 5, 8, 9]);
        s.redeliveries.insert(2, 3);
        let v = s.value();
        assert_eq!(v.pending, vec![(1, 3), (5, 5), (8, 9)]);
        let text = serde_json::to_string(&v).unwrap();
        let back: SubValue = serde_json::from_str(&text).unwrap();
        let r = back.recovered().unwrap();
        assert_eq!(r.pending, vec![1, 2, 3, 5, 8, 9]);
        assert_eq!(r.redeliveries, vec![(2, 3)]);
        assert_eq!(r.record, s.record);
    }

    #[test]
    fn impossible_ranges_are_refused() {
        let v = SubValue {
            pending: vec![(5, 3)],
            ..SubValue::default()
        };
        assert!(v.recovered().is_none());
    }

    #[test]
    fn deleting_a_channel_deletes_its_subscriptions_only() {
        let mut p = Pending::default();
        for (ch, id) in [("a", 1), ("a", 2), ("b", 3)] {
            p.restore_sub(
                ch,
                &RecoveredSub {
                    record: SubRecord {
                        id,
                        ..SubRecord::default()
                    },
                    ..RecoveredSub::default()
                },
            );
        }
        p.delete_channel("a", "S-a".into());
        let w = p.take();
        let mut keys: Vec<_> = w
            .subs
            .iter()
            .map(|(k, v)| (k.as_str(), v.is_none()))
            .collect();
        keys.sort();
        assert_eq!(keys, vec![("a.1", true), ("a.2", true)]);
        assert_eq!(w.deleted_streams, vec!["S-a".to_string()]);
        assert!(p.take().is_empty());
    }
}

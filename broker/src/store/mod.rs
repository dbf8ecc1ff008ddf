//! Message, subscription and client stores.
//!
//! The engine talks only to the traits of this module: [`Store`] (channels, clients, server
//! info), [`MsgStore`] (one channel's messages) and [`SubStore`] (one channel's subscription
//! records with their pending sequences). [`memory::MemoryStore`] keeps everything in memory;
//! persistent stores implement the same traits and hand their recovered state back through
//! [`Store::recover`].
//!
//! Only [`Store::recover`], the `flush` methods and [`Store::close`] may wait for I/O (they
//! return futures, awaited by the engine between batches). Every other method must not block:
//! persistent stores buffer writes until the next flush and serve reads from memory or local
//! files. The engine flushes the touched message stores, then the subscription stores, then
//! the store itself after each batch, and only then sends the PubAcks.

pub(crate) mod chunked;
pub mod file;
pub mod jetstream;
pub mod limits;
pub mod memory;

use bytes::Bytes;
use futures::future::BoxFuture;
use stan_protocol::pb::MsgProto;
use stan_protocol::subjects::ServerSubjects;

use crate::config::{ChannelLimits, StoreLimits};

pub use file::FileStore;
pub use jetstream::JetStreamStore;
pub use memory::MemoryStore;

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `max_channels` reached.
    #[error("too many channels")]
    TooManyChannels,
    /// The channel exists already.
    #[error("channel {0:?} already exists")]
    ChannelExists(String),
    /// Any other failure (I/O, corruption, ...), with a description.
    #[error("{0}")]
    Other(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Server identity persisted by the store on first start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// Cluster ID.
    pub cluster_id: String,
    /// Node ID (empty when not clustered).
    pub node_id: String,
    /// The subjects announced to clients.
    pub subjects: ServerSubjects,
}

/// A registered client, as persisted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientRecord {
    /// Client ID.
    pub id: String,
    /// Heartbeat inbox.
    pub hb_inbox: String,
    /// Connection ID.
    pub conn_id: Bytes,
    /// Client protocol level.
    pub protocol: i32,
    /// Ping interval as requested (negative: milliseconds).
    pub ping_interval: i32,
    /// Ping max out.
    pub ping_max_out: i32,
    /// The client re-sends its in-flight publishes when its registration is lost
    /// (`ConnectRequest.resends_publishes`): its registration is not restored at startup.
    pub resends_publishes: bool,
}

/// A subscription, as persisted.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SubRecord {
    /// Unique subscription ID (assigned by the engine, never reused within a run).
    pub id: u64,
    /// Owner client ID (last owner for offline entries).
    pub client_id: String,
    /// Queue group name (`durable:group` for durable queue groups).
    pub q_group: String,
    /// Delivery inbox.
    pub inbox: String,
    /// Ack inbox.
    pub ack_inbox: String,
    /// Max in flight.
    pub max_in_flight: i32,
    /// Ack wait in seconds (negative: milliseconds, test option).
    pub ack_wait_in_secs: i32,
    /// Durable name (empty for durable queue members).
    pub durable_name: String,
    /// Last sent sequence.
    pub last_sent: u64,
    /// Durable subscription or durable queue member.
    pub is_durable: bool,
    /// Offline (closed) durable.
    pub is_closed: bool,
}

/// A recovered subscription with its pending sequences.
#[derive(Clone, Debug, Default)]
pub struct RecoveredSub {
    /// The record.
    pub record: SubRecord,
    /// Sequences delivered and not acknowledged.
    pub pending: Vec<u64>,
    /// Redelivery counts of pending sequences redelivered at least once, by sequence
    /// (recorded with [`SubStore::record_redelivery`]; empty for stores that keep none).
    pub redeliveries: Vec<(u64, u32)>,
}

/// A recovered channel.
pub struct RecoveredChannel {
    /// Channel name.
    pub name: String,
    /// The channel's stores.
    pub store: ChannelStore,
    /// Its subscriptions.
    pub subs: Vec<RecoveredSub>,
}

/// Everything a persistent store found at startup.
pub struct RecoveredState {
    /// Stored server info. `None`: channels were found without server info (it was lost);
    /// they are recovered and the engine records fresh server info with [`Store::init`].
    pub server_info: Option<ServerInfo>,
    /// Registered clients.
    pub clients: Vec<ClientRecord>,
    /// Channels with their messages and subscriptions.
    pub channels: Vec<RecoveredChannel>,
}

/// The stores of one channel.
pub struct ChannelStore {
    /// Messages.
    pub msgs: Box<dyn MsgStore>,
    /// Subscription records.
    pub subs: Box<dyn SubStore>,
    /// Effective limits (every field set).
    pub limits: ChannelLimits,
}

/// A complete store: channels, clients and server info.
pub trait Store: Send {
    /// `"MEMORY"`, `"FILE"`, ...
    fn store_type(&self) -> &'static str;
    /// State found at startup (`None`: a fresh store). Called once, before [`Store::init`].
    fn recover(&mut self) -> BoxFuture<'_, StoreResult<Option<RecoveredState>>>;
    /// Records the server info (first start, or after a recovery that found none, see
    /// [`RecoveredState::server_info`]).
    fn init(&mut self, info: &ServerInfo) -> StoreResult<()>;
    /// Creates a channel (limits come from the store's configuration); fails with
    /// [`StoreError::TooManyChannels`] when `max_channels` is reached.
    fn create_channel(&mut self, name: &str) -> StoreResult<ChannelStore>;
    /// Deletes a channel with its messages and subscription records.
    fn delete_channel(&mut self, name: &str) -> StoreResult<()>;
    /// Records a registered client.
    fn add_client(&mut self, client: &ClientRecord) -> StoreResult<()>;
    /// Removes a client record.
    fn delete_client(&mut self, id: &str) -> StoreResult<()>;
    /// Makes everything written so far durable (per the store's sync setting).
    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>>;
    /// Flushes and releases resources. The store is not used afterwards.
    fn close(&mut self) -> BoxFuture<'_, StoreResult<()>>;
    /// Replaces the limits channels created from now on get (the channels that exist keep
    /// theirs: see [`MsgStore::set_limits`]). Stores that cannot do this say so.
    fn set_limits(&mut self, limits: StoreLimits) -> StoreResult<()> {
        let _ = limits;
        Err(StoreError::Other(
            "this store cannot change its limits while running".into(),
        ))
    }
}

/// The messages of one channel.
pub trait MsgStore: Send {
    /// Appends a message, assigning the next sequence (the `sequence` field is overwritten),
    /// then enforces the count and byte limits by dropping the oldest messages (the newest is
    /// always kept). Returns the sequence. Many appends may precede one [`MsgStore::flush`].
    fn store(&mut self, msg: MsgProto) -> StoreResult<u64>;
    /// [`MsgStore::store`], for a message whose publish had this guid. A persistent store
    /// keeps the guid with the message (not in its wire form), so that
    /// [`MsgStore::recent_guids`] finds it after a restart; the default forgets it.
    fn store_with_guid(&mut self, msg: MsgProto, guid: &str) -> StoreResult<u64> {
        let _ = guid;
        self.store(msg)
    }
    /// The guids kept by [`MsgStore::store_with_guid`] for the stored messages with a
    /// timestamp at or after `since` (Unix nanoseconds), oldest first, at most the newest
    /// `max`: `(guid, timestamp)`. The default (a store that keeps nothing across restarts)
    /// has none.
    fn recent_guids(&self, since: i64, max: usize) -> Vec<(String, i64)> {
        let _ = (since, max);
        Vec::new()
    }
    /// The message with that sequence, if still stored.
    fn lookup(&self, seq: u64) -> Option<MsgProto>;
    /// The message with that sequence in wire form (an encoded [`MsgProto`] without the
    /// redelivery fields), ready to be sent as is. Stores that keep the encoded form return it
    /// without copying.
    fn lookup_encoded(&self, seq: u64) -> Option<Bytes> {
        use prost::Message;
        self.lookup(seq).map(|m| Bytes::from(m.encode_to_vec()))
    }
    /// Timestamp of the message with that sequence, if still stored. Stores with an index
    /// answer without reading the message.
    fn timestamp(&self, seq: u64) -> Option<i64> {
        self.lookup(seq).map(|m| m.timestamp)
    }
    /// First stored sequence: 0 if nothing was ever stored, `last + 1` if everything was
    /// removed.
    fn first_sequence(&self) -> u64;
    /// Last assigned sequence (0 if nothing was ever stored).
    fn last_sequence(&self) -> u64;
    /// Timestamp of the last stored message (0 if none).
    fn last_timestamp(&self) -> i64;
    /// Number of stored messages and their size in bytes.
    fn state(&self) -> (u64, u64);
    /// Sequence of the first message with `timestamp >= ts`; the last sequence when `ts`
    /// equals the last message's timestamp; `last + 1` when every message is older (or the
    /// store is empty).
    fn sequence_for_timestamp(&self, ts: i64) -> u64;
    /// Removes messages older than the channel's `max_age` at `now` (Unix nanoseconds) and
    /// returns the time (Unix nanoseconds) when the next message expires, if any.
    fn expire(&mut self, now: i64) -> Option<i64>;
    /// Removes every stored message; sequences go on from the last one (`first_sequence`
    /// becomes `last + 1`, also after a restart once flushed). Stores that cannot do this say
    /// so.
    fn purge(&mut self) -> StoreResult<()> {
        Err(StoreError::Other(
            "this store cannot remove a channel's messages".into(),
        ))
    }
    /// Makes appended messages durable.
    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>>;
    /// Replaces the channel's count, byte and age limits (`limits` has every field set);
    /// they are enforced from the next append or expiry on. Stores that cannot do this say so.
    fn set_limits(&mut self, limits: &ChannelLimits) -> StoreResult<()> {
        let _ = limits;
        Err(StoreError::Other(
            "this store cannot change its limits while running".into(),
        ))
    }
}

/// The subscription records of one channel.
pub trait SubStore: Send {
    /// Records a new subscription.
    fn create_sub(&mut self, sub: &SubRecord) -> StoreResult<()>;
    /// Replaces a subscription record (resume, offline, new owner, ...).
    fn update_sub(&mut self, sub: &SubRecord) -> StoreResult<()>;
    /// Deletes a subscription and its pending sequences.
    fn delete_sub(&mut self, id: u64) -> StoreResult<()>;
    /// Records a delivered sequence (also advances the stored `last_sent`).
    fn add_seq_pending(&mut self, id: u64, seq: u64) -> StoreResult<()>;
    /// Records an acknowledgement (a recorded redelivery count of the sequence goes with it).
    fn ack_seq_pending(&mut self, id: u64, seq: u64) -> StoreResult<()>;
    /// Records that pending sequence `seq` of subscription `id` was redelivered, `count` times
    /// so far, so that the count survives a restart ([`RecoveredSub::redeliveries`]). Ignored
    /// for a sequence that is not pending. The default does nothing: a store that is not
    /// persistent has nothing to recover (the engine keeps the counts while it runs).
    fn record_redelivery(&mut self, id: u64, seq: u64, count: u32) -> StoreResult<()> {
        let _ = (id, seq, count);
        Ok(())
    }
    /// Number of stored subscription records.
    fn count(&self) -> usize;
    /// Makes the records durable.
    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>>;
}

//! Plain-data snapshots of the engine state, served by the monitoring endpoints.

use std::time::SystemTime;

use crate::config::ChannelLimits;

/// The whole engine state at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Unique ID of this server run.
    pub server_id: String,
    /// Cluster ID.
    pub cluster_id: String,
    /// When the broker started.
    pub start_time: SystemTime,
    /// `"MEMORY"` or `"FILE"`.
    pub store_type: &'static str,
    /// Publishes received.
    pub in_msgs: u64,
    /// Payload bytes received.
    pub in_bytes: u64,
    /// Deliveries sent.
    pub out_msgs: u64,
    /// Encoded bytes of deliveries sent.
    pub out_bytes: u64,
    /// Redeliveries sent (ack timeouts, subscriptions closed with pending messages).
    pub redeliveries: u64,
    /// Requests refused and acks dropped by client isolation (docs/operations.md).
    pub foreign_requests: u64,
    /// Registered clients, sorted by ID.
    pub clients: Vec<ClientSnapshot>,
    /// Channels, sorted by name.
    pub channels: Vec<ChannelSnapshot>,
}

/// One registered client.
#[derive(Clone, Debug)]
pub struct ClientSnapshot {
    /// Client ID.
    pub id: String,
    /// Heartbeat inbox.
    pub hb_inbox: String,
    /// Heartbeats in a row the client has not answered (0 when it answers).
    pub hb_failures: u32,
    /// The client's active subscriptions.
    pub subs: Vec<SubSnapshot>,
}

/// One channel.
#[derive(Clone, Debug)]
pub struct ChannelSnapshot {
    /// Channel name.
    pub name: String,
    /// Stored messages.
    pub msgs: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// First stored sequence (`last_seq + 1` when everything expired).
    pub first_seq: u64,
    /// Last assigned sequence.
    pub last_seq: u64,
    /// Active subscriptions, offline durables and offline durable queue groups.
    pub subs: Vec<SubSnapshot>,
    /// Effective limits of the channel, after inheritance (every field set).
    pub limits: ChannelLimits,
    /// Traffic of the channel since the server started.
    pub counters: ChannelCounters,
}

/// Traffic counters of one channel since the server started (not persisted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelCounters {
    /// Publishes stored.
    pub in_msgs: u64,
    /// Payload bytes of the publishes stored.
    pub in_bytes: u64,
    /// Deliveries sent (redeliveries included).
    pub out_msgs: u64,
    /// Encoded bytes of the deliveries sent.
    pub out_bytes: u64,
    /// Redeliveries sent.
    pub redeliveries: u64,
}

/// One subscription.
#[derive(Clone, Debug)]
pub struct SubSnapshot {
    /// Owner (for offline entries, the last owner).
    pub client_id: String,
    /// Delivery inbox.
    pub inbox: String,
    /// Ack inbox.
    pub ack_inbox: String,
    /// Durable name (empty if none).
    pub durable_name: String,
    /// Queue name (empty if none; `dur:grp` for durable queue groups).
    pub queue_name: String,
    /// Durable (including durable queue groups).
    pub is_durable: bool,
    /// Offline durable or offline durable queue group.
    pub is_offline: bool,
    /// Max in flight.
    pub max_inflight: i32,
    /// Ack wait in seconds.
    pub ack_wait_secs: i32,
    /// Last sent sequence.
    pub last_sent: u64,
    /// Unacknowledged messages.
    pub pending_count: usize,
    /// Pending ≥ max in flight.
    pub is_stalled: bool,
}

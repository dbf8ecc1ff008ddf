//! Client and server defaults (the official Go client and server values).

use std::time::Duration;

/// Default cluster ID.
pub const CLUSTER_ID: &str = "test-cluster";
/// Default NATS URL of clients.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";
/// Client: wait for connect, subscribe, unsubscribe and close replies.
pub const CONNECT_WAIT: Duration = Duration::from_secs(2);
/// Client: wait for a PubAck.
pub const PUB_ACK_WAIT: Duration = Duration::from_secs(30);
/// Client: publishes awaiting an ack before publishers wait.
pub const MAX_PUB_ACKS_IN_FLIGHT: usize = 16384;
/// Client: ping interval in seconds.
pub const PING_INTERVAL_SECS: i32 = 5;
/// Client: unanswered pings before the connection is lost.
pub const PING_MAX_OUT: i32 = 88;
/// Subscription ack wait.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Subscription max in flight.
pub const MAX_IN_FLIGHT: i32 = 1024;
/// Protocol level spoken by current clients and servers.
pub const PROTOCOL_VERSION: i32 = 1;

/// Server: heartbeat interval.
pub const HB_INTERVAL: Duration = Duration::from_secs(30);
/// Server: heartbeat answer timeout.
pub const HB_TIMEOUT: Duration = Duration::from_secs(10);
/// Server: heartbeat failures before a client is removed.
pub const HB_FAIL_COUNT: u32 = 10;
/// Server: wait for the old client's heartbeat answer on a duplicate client ID.
pub const DUPLICATE_CHECK_TIMEOUT: Duration = Duration::from_millis(500);
/// Server: max channels.
pub const MAX_CHANNELS: usize = 100;
/// Server: max subscriptions per channel.
pub const MAX_SUBS: usize = 1000;
/// Server: max messages per channel.
pub const MAX_MSGS: usize = 1_000_000;
/// Server: max bytes per channel.
pub const MAX_BYTES: u64 = 1_000_000 * 1024;
/// Server: I/O batch size.
pub const IO_BATCH_SIZE: usize = 1024;
/// Core NATS: default max payload.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

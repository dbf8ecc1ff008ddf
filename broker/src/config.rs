//! Broker configuration: everything the command line and config files can set.
//!
//! [`BrokerConfig::default()`] is the official server's default setup (cluster ID
//! `test-cluster`, memory store, embedded NATS on 127.0.0.1:4222, official limits and heartbeat
//! settings). The command line (`cli`) and config files fill in the same struct.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use stan_protocol::defaults;

/// How the broker reaches core NATS.
#[derive(Clone, Debug, PartialEq)]
pub enum NatsMode {
    /// Run an embedded core-NATS server (the default).
    Embedded(EmbeddedNats),
    /// Attach to an existing NATS server or cluster (`-ns nats://host:port`).
    External(ExternalNats),
}

/// Settings of the embedded core-NATS server.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddedNats {
    /// Listen host (`-a/--addr`).
    pub host: String,
    /// Listen port (`-p/--port`); 0 picks a free port.
    pub port: u16,
    /// Maximum payload size in bytes.
    pub max_payload: usize,
    /// Username required from clients (`--user`).
    pub user: Option<String>,
    /// Password required from clients (`--pass`).
    pub pass: Option<String>,
    /// Token required from clients (`--auth`).
    pub auth_token: Option<String>,
    /// TLS on the client port (`--tls`, `--tlscert`, `--tlskey`, `--tlscacert`,
    /// `--tlsverify`; config `tls { }`); `None`: plaintext.
    pub tls: Option<ServerTls>,
}

/// TLS of the embedded server's client port. The files are read when the broker starts.
///
/// ```
/// use stan_broker::config::{BrokerConfig, NatsMode, ServerTls};
/// let mut cfg = BrokerConfig::for_tests();
/// if let NatsMode::Embedded(e) = &mut cfg.nats {
///     e.tls = Some(ServerTls {
///         cert_file: "server.pem".into(),
///         key_file: "server-key.pem".into(),
///         ca_file: Some("ca.pem".into()),
///         verify: true,
///         timeout: None,
///     });
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ServerTls {
    /// The server's certificate chain, PEM (`--tlscert`, `cert_file`).
    pub cert_file: PathBuf,
    /// The server's private key, PEM (`--tlskey`, `key_file`).
    pub key_file: PathBuf,
    /// CA certificate(s) that client certificates must be signed by, PEM (`--tlscacert`,
    /// `ca_file`); needed with `verify`.
    pub ca_file: Option<PathBuf>,
    /// Require a client certificate signed by `ca_file` (`--tlsverify`, `verify`).
    pub verify: bool,
    /// Time a client has to complete the handshake (config `timeout`, seconds); `None`: 2 s.
    pub timeout: Option<Duration>,
}

/// TLS of the broker's own connection to an external NATS server (`--tls_client_cert`,
/// `--tls_client_key`, `--tls_client_cacert`; streaming config `tls { client_cert,
/// client_key, client_ca }`). Any of them makes the connection require TLS.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClientTls {
    /// Client certificate, PEM (with `key_file`), for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key, PEM.
    pub key_file: Option<PathBuf>,
    /// CA certificate(s) to trust for the server's certificate, PEM.
    pub ca_file: Option<PathBuf>,
}

impl Default for EmbeddedNats {
    fn default() -> Self {
        EmbeddedNats {
            host: "127.0.0.1".into(),
            port: 4222,
            max_payload: defaults::MAX_PAYLOAD,
            user: None,
            pass: None,
            auth_token: None,
            tls: None,
        }
    }
}

/// Settings for attaching to an external NATS server.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ExternalNats {
    /// NATS URL(s), comma separated (`-ns`).
    pub url: String,
    /// Username, if the URL has none (`--user`).
    pub user: Option<String>,
    /// Password (`--pass`).
    pub pass: Option<String>,
    /// Token (`--auth`).
    pub auth_token: Option<String>,
    /// TLS settings of the connection; `None`: TLS only if the URL (`tls://`) or the server
    /// asks for it, trusting the system's roots.
    pub tls: Option<ClientTls>,
}

/// Which message store to use.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// Everything in memory; nothing survives a restart.
    #[default]
    Memory,
    /// Crash-safe files under a directory.
    File(PathBuf),
    /// Streams and key-value buckets of a JetStream-enabled NATS cluster (requires
    /// [`NatsMode::External`]); several brokers may share it, one active, the others standing by.
    JetStream(JetStreamOptions),
}

/// Settings of the JETSTREAM store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStreamOptions {
    /// Replicas of every stream and bucket (`--js_replicas`, default 1).
    pub replicas: usize,
    /// First part of every stream and bucket name (`--js_prefix`, default `STAN`).
    pub prefix: String,
    /// How long the active broker's lease lasts without renewal (`--js_lease_ttl`, default
    /// 5s): a standby takes over about this long after the active broker died.
    pub lease_ttl: Duration,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        JetStreamOptions {
            replicas: 1,
            prefix: "STAN".into(),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

/// Settings of the FILE store (the official `--file_*` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStoreOptions {
    /// Sync (fsync) every flush, so a PubAck means "on disk" (`--file_sync`, default true).
    pub sync: bool,
    /// How often files written but not synced are synced (`--file_auto_sync`, default 1m;
    /// zero = never): every written file with `sync` off, the index files of the active slices
    /// with `sync` on (index files are not synced at flush: recovery rebuilds them from the data).
    pub auto_sync: Duration,
    /// Messages per slice (`--file_slice_max_msgs`, 0 = unlimited).
    pub slice_max_msgs: u64,
    /// Bytes per slice (`--file_slice_max_bytes`, default 64MB, 0 = unlimited).
    pub slice_max_bytes: u64,
    /// Age of a slice's first message before a new slice starts (`--file_slice_max_age`,
    /// zero = unlimited).
    pub slice_max_age: Duration,
    /// Compact the subscription and client logs (`--file_compact_enabled`, default true).
    pub compact_enabled: bool,
    /// Percentage of dead records that triggers a compaction (`--file_compact_frag`, 50).
    pub compact_frag: u32,
    /// Minimum time between two compactions of a log (`--file_compact_interval`, 300s).
    pub compact_interval: Duration,
    /// Minimum log size for a compaction (`--file_compact_min_size`, 1MB).
    pub compact_min_size: u64,
    /// Soft limit on open slice files (`--file_fds_limit`, 0 = unlimited): the least recently
    /// used files of inactive slices are closed and reopened on demand.
    pub fds_limit: u64,
    /// Check the CRC of records read back (`--file_crc`, default true; recovery always does).
    pub crc: bool,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            sync: true,
            auto_sync: Duration::from_secs(60),
            slice_max_msgs: 0,
            slice_max_bytes: 64 << 20,
            slice_max_age: Duration::ZERO,
            compact_enabled: true,
            compact_frag: 50,
            compact_interval: Duration::from_secs(300),
            compact_min_size: 1 << 20,
            fds_limit: 0,
            crc: true,
        }
    }
}

/// Limits of one channel. In per-channel entries `None` means "inherit".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChannelLimits {
    /// Maximum subscriptions (0 = unlimited).
    pub max_subs: Option<usize>,
    /// Maximum messages (0 = unlimited).
    pub max_msgs: Option<usize>,
    /// Maximum bytes (0 = unlimited).
    pub max_bytes: Option<u64>,
    /// Maximum message age (zero = unlimited).
    pub max_age: Option<Duration>,
    /// Maximum inactivity before the channel is deleted (zero = unlimited).
    pub max_inactivity: Option<Duration>,
}

/// Global and per-channel store limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Maximum number of channels (0 = unlimited).
    pub max_channels: usize,
    /// Global per-channel limits; every field is set.
    pub global: ChannelLimits,
    /// Per-channel overrides, keyed by channel name or wildcard pattern.
    pub channels: BTreeMap<String, ChannelLimits>,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_channels: defaults::MAX_CHANNELS,
            global: ChannelLimits {
                max_subs: Some(defaults::MAX_SUBS),
                max_msgs: Some(defaults::MAX_MSGS),
                max_bytes: Some(defaults::MAX_BYTES),
                max_age: Some(Duration::ZERO),
                max_inactivity: Some(Duration::ZERO),
            },
            channels: BTreeMap::new(),
        }
    }
}

/// Default of [`BrokerConfig::dedup_window`]: two minutes.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(120);

/// The whole broker configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerConfig {
    /// Cluster ID (`-cid`).
    pub cluster_id: String,
    /// Discover prefix (config file `discover_prefix`).
    pub discover_prefix: String,
    /// Embedded or external core NATS.
    pub nats: NatsMode,
    /// Message store.
    pub store: StoreKind,
    /// Settings of the FILE store (used when `store` is [`StoreKind::File`]).
    pub file: FileStoreOptions,
    /// Channel limits.
    pub limits: StoreLimits,
    /// Interval between server heartbeats to each client (`-hbi`).
    pub hb_interval: Duration,
    /// Wait for a heartbeat answer (`-hbt`).
    pub hb_timeout: Duration,
    /// Failed heartbeats before a client is removed (`-hbf`).
    pub hb_fail_count: u32,
    /// Wait for the old client's answer when a client ID is reused.
    pub duplicate_check_timeout: Duration,
    /// Replace an active durable instead of rejecting the duplicate (`--replace_durable`).
    pub replace_durable: bool,
    /// Messages the engine processes per batch.
    pub io_batch_size: usize,
    /// How long the guids of stored publishes are remembered, so that a publish re-sent with
    /// the same guid is acknowledged again without being stored twice (`--dedup_window`;
    /// zero: off).
    pub dedup_window: Duration,
    /// Monitoring HTTP listener (`-m`); `None` = off.
    pub monitor: Option<SocketAddr>,
    /// Token that turns on the web console's admin actions (`--console_admin_token`);
    /// `None`: the console is read-only.
    pub console_admin_token: Option<String>,
    /// Accept negative `ackWaitInSecs` as milliseconds (tests only).
    pub ack_wait_millis_for_tests: bool,
    /// Turn client isolation off (`--trust_client_subjects`): acks, unsubscribes,
    /// subscription closes and connection closes are then accepted from any core-NATS
    /// connection, like the official server does.
    pub trust_client_subjects: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            cluster_id: defaults::CLUSTER_ID.into(),
            discover_prefix: stan_protocol::subjects::DEFAULT_DISCOVER_PREFIX.into(),
            nats: NatsMode::Embedded(EmbeddedNats::default()),
            store: StoreKind::Memory,
            file: FileStoreOptions::default(),
            limits: StoreLimits::default(),
            hb_interval: defaults::HB_INTERVAL,
            hb_timeout: defaults::HB_TIMEOUT,
            hb_fail_count: defaults::HB_FAIL_COUNT,
            duplicate_check_timeout: defaults::DUPLICATE_CHECK_TIMEOUT,
            replace_durable: false,
            io_batch_size: defaults::IO_BATCH_SIZE,
            dedup_window: DEFAULT_DEDUP_WINDOW,
            monitor: None,
            console_admin_token: None,
            ack_wait_millis_for_tests: false,
            trust_client_subjects: false,
        }
    }
}

impl BrokerConfig {
    /// A configuration for tests: embedded NATS on a free loopback port, short heartbeats.
    ///
    /// ```
    /// let cfg = stan_broker::config::BrokerConfig::for_tests();
    /// assert!(matches!(cfg.nats, stan_broker::config::NatsMode::Embedded(ref e) if e.port == 0));
    /// ```
    pub fn for_tests() -> Self {
        BrokerConfig {
            nats: NatsMode::Embedded(EmbeddedNats {
                port: 0,
                ..Default::default()
            }),
            hb_interval: Duration::from_millis(200),
            hb_timeout: Duration::from_millis(100),
            hb_fail_count: 3,
            duplicate_check_timeout: Duration::from_millis(200),
            ack_wait_millis_for_tests: true,
            ..Default::default()
        }
    }
}

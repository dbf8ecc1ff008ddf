//! The running broker: core NATS (embedded or external), the engine, and monitoring.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{watch, OnceCell};

use crate::config::{BrokerConfig, ChannelLimits, NatsMode, StoreKind, StoreLimits};
use crate::engine::{self, EngineHandle, EngineInput, StartError};
use crate::monitor::{self, CoreInfo, Source};
use crate::snapshot::Snapshot;
use crate::store::limits::effective_limits;
use crate::store::{FileStore, JetStreamStore, MemoryStore, Store};
use crate::transport::{EmbeddedTransport, ExternalTransport, Transport, TransportError};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A TLS file (certificate, key, CA) cannot be used; the message names the file and the
    /// setting.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    /// The embedded core-NATS server could not listen.
    #[error("NATS: unable to listen on {host}:{port}: {source}")]
    NatsListen {
        /// Listen host.
        host: String,
        /// Listen port.
        port: u16,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The external core-NATS server could not be reached.
    #[error("NATS: {0}")]
    Nats(#[source] TransportError),
    /// The configured store is not available in this build.
    #[error("store: the file store ({}) is not available in this build", .0.display())]
    FileStoreUnavailable(PathBuf),
    /// The monitoring listener could not be bound.
    #[error("monitoring: unable to listen on {addr}: {source}")]
    Monitor {
        /// The configured monitoring address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The monitoring endpoints could not be served on the bound listener.
    #[error("monitoring: unable to serve on {addr}: {source}")]
    MonitorServe {
        /// The bound monitoring address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The streaming engine refused to start (another server with the same cluster ID,
    /// recovered cluster ID mismatch, ...).
    #[error(transparent)]
    Startup(#[from] StartError),
}

/// A running broker. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), stan_broker::BrokerError> {
/// use stan_broker::{config::BrokerConfig, Broker};
/// let broker = Broker::start(BrokerConfig::for_tests()).await?;
/// println!("clients connect to {}", broker.client_url());
/// broker.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    config: BrokerConfig,
    client_url: String,
    embedded: Option<stan_embedded_nats::Server>,
    transport: Arc<dyn Transport>,
    engine: EngineHandle,
    monitor_addr: Option<SocketAddr>,
    /// The limits in force (those of `config` until [`Broker::set_limits`]).
    limits: std::sync::Mutex<StoreLimits>,
    shutdown: OnceCell<()>,
    closed: watch::Sender<bool>,
    /// Why the broker stopped on its own (its store stopped writing), if it did.
    failure: std::sync::OnceLock<String>,
}

fn validate(config: &BrokerConfig) -> Result<(), BrokerError> {
    let cid = &config.cluster_id;
    if cid.is_empty() || !stan_protocol::validate::is_valid_channel(cid) {
        return Err(BrokerError::Config(format!("invalid cluster ID {cid:?}")));
    }
    if config.discover_prefix.is_empty()
        || !stan_protocol::validate::is_valid_channel(&config.discover_prefix)
    {
        return Err(BrokerError::Config(format!(
            "invalid discover prefix {:?}",
            config.discover_prefix
        )));
    }
    if config.hb_interval.is_zero() || config.hb_timeout.is_zero() {
        return Err(BrokerError::Config(
            "heartbeat interval and timeout must be positive".into(),
        ));
    }
    let mut literal = 0usize;
    for key in config.limits.channels.keys() {
        if !stan_protocol::validate::is_valid_channel_limits_key(key) {
            return Err(BrokerError::Config(format!(
                "invalid channel name {key:?} in channel limits"
            )));
        }
        if stan_protocol::validate::is_valid_channel(key) {
            literal += 1;
        }
    }
    let max = config.limits.max_channels;
    if max > 0 && literal > max {
        return Err(BrokerError::Config(format!(
            "too many channels defined ({literal}), the max is {max}"
        )));
    }
    Ok(())
}

impl Broker {
    /// Starts core NATS (embedded or external per config), the engine and (if
    /// `config.monitor` is set) the monitoring HTTP server.
    pub async fn start(config: BrokerConfig) -> Result<Broker, BrokerError> {
        validate(&config)?;
        // TLS files are read before anything listens or connects: a bad one stops the start.
        let server_tls = match &config.nats {
            NatsMode::Embedded(e) => e.tls.as_ref().map(crate::tls::server_config).transpose()?,
            NatsMode::External(x) => {
                if let Some(t) = &x.tls {
                    crate::tls::check_client_files(t)?;
                }
                None
            }
        };
        if matches!(config.store, StoreKind::JetStream(_))
            && !matches!(config.nats, NatsMode::External(_))
        {
            return Err(BrokerError::Config(
                "the JETSTREAM store needs an external NATS server with JetStream (-ns)".into(),
            ));
        }
        // Bind monitoring first so a port conflict fails startup before anything runs.
        let monitor = match config.monitor {
            Some(addr) => Some(
                monitor::bind(addr)
                    .await
                    .map_err(|source| BrokerError::Monitor { addr, source })?,
            ),
            None => None,
        };
        let monitor_addr = monitor.as_ref().map(|(_, a)| *a);
        let input = EngineInput::new();
        let sink = input.sink();
        let mut nats_client = None;
        let (embedded, transport, client_url): (_, Arc<dyn Transport>, String) = match &config.nats
        {
            NatsMode::Embedded(e) => {
                let auth = match (&e.user, &e.pass, &e.auth_token) {
                    (Some(u), Some(p), _) => Some(stan_embedded_nats::Auth::UserPass {
                        user: u.clone(),
                        pass: p.clone(),
                    }),
                    (_, _, Some(t)) => Some(stan_embedded_nats::Auth::Token(t.clone())),
                    (Some(u), None, None) => Some(stan_embedded_nats::Auth::UserPass {
                        user: u.clone(),
                        pass: String::new(),
                    }),
                    _ => None,
                };
                let opts = stan_embedded_nats::ServerOptions {
                    host: e.host.clone(),
                    port: e.port,
                    max_payload: e.max_payload,
                    auth,
                    tls: server_tls,
                    ..Default::default()
                };
                let server = stan_embedded_nats::Server::start(opts)
                    .await
                    .map_err(|source| BrokerError::NatsListen {
                        host: e.host.clone(),
                        port: e.port,
                        source,
                    })?;
                let conn = server.connect_local("stan-broker");
                let url = server.client_url();
                (
                    Some(server),
                    Arc::new(EmbeddedTransport::new(conn, sink)) as Arc<dyn Transport>,
                    url,
                )
            }
            NatsMode::External(x) => {
                let t = ExternalTransport::connect(x, "stan-broker", sink)
                    .await
                    .map_err(BrokerError::Nats)?;
                // Credentials in the URL are not shown (logs, monitoring).
                let url = crate::transport::external::redact_credentials(&x.url);
                nats_client = Some(t.client());
                (None, Arc::new(t) as Arc<dyn Transport>, url)
            }
        };
        let mut store_failures = None;
        let store: Box<dyn Store> = match &config.store {
            StoreKind::Memory => Box::new(MemoryStore::new(config.limits.clone())),
            StoreKind::File(dir) => Box::new(FileStore::new(
                dir.clone(),
                config.limits.clone(),
                config.file.clone(),
            )),
            StoreKind::JetStream(opts) => {
                let client = nats_client.take().expect("checked: external NATS");
                let s = JetStreamStore::new(
                    client,
                    &client_url,
                    &config.cluster_id,
                    config.limits.clone(),
                    opts.clone(),
                );
                store_failures = Some(s.failures());
                Box::new(s)
            }
        };
        let engine = match engine::start(config.clone(), transport.clone(), store, input).await {
            Ok(h) => h,
            Err(e) => {
                transport.close().await;
                if let Some(s) = &embedded {
                    s.shutdown().await;
                }
                return Err(BrokerError::Startup(e));
            }
        };
        let (closed, _) = watch::channel(false);
        let broker = Broker {
            inner: Arc::new(Inner {
                limits: std::sync::Mutex::new(config.limits.clone()),
                config,
                client_url,
                embedded,
                transport,
                engine,
                monitor_addr,
                shutdown: OnceCell::new(),
                closed,
                failure: std::sync::OnceLock::new(),
            }),
        };
        if let Some(mut failures) = store_failures {
            // A store that stopped writing (the JetStream lease lost) stops the broker.
            let b = broker.clone();
            tokio::spawn(async move {
                let why = match failures.wait_for(Option::is_some).await {
                    Ok(why) => why.clone().unwrap_or_default(),
                    Err(_) => return,
                };
                let _ = b.inner.failure.set(why.clone());
                tracing::error!("the store stopped writing ({why}): shutting down");
                b.shutdown().await;
            });
        }
        if let Some((listener, addr)) = monitor {
            // The single place where monitoring is plugged in.
            if let Err(source) = monitor::serve_on(listener, broker.clone()) {
                broker.shutdown().await;
                return Err(BrokerError::MonitorServe { addr, source });
            }
        }
        tracing::info!(
            cluster_id = %broker.cluster_id(),
            server_id = %broker.inner.engine.server_id(),
            url = %broker.client_url(),
            "streaming server ready"
        );
        Ok(broker)
    }

    /// URL clients should connect to (embedded: `nats://127.0.0.1:<bound port>`, or
    /// `tls://...` with TLS on; external: the `-ns` URL).
    pub fn client_url(&self) -> String {
        self.inner.client_url.clone()
    }

    /// The cluster ID.
    pub fn cluster_id(&self) -> &str {
        &self.inner.config.cluster_id
    }

    /// The bound monitoring address, if monitoring is on.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.inner.monitor_addr
    }

    /// The limits in force: those of the configuration, or the last ones
    /// [`Broker::set_limits`] applied.
    pub fn limits(&self) -> StoreLimits {
        self.inner
            .limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies new store limits while running (config reload): channels created from now on
    /// get them, and existing channels get their new effective limits, enforced from their
    /// next publish or expiry on. Invalid limits are refused and nothing changes.
    pub async fn set_limits(&self, limits: StoreLimits) -> Result<(), BrokerError> {
        let mut candidate = self.inner.config.clone();
        candidate.limits = limits.clone();
        validate(&candidate)?;
        self.inner
            .engine
            .set_limits(limits.clone())
            .await
            .map_err(BrokerError::Config)?;
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
        Ok(())
    }

    /// The configuration the broker was started with (limits: see [`Broker::limits`]).
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// A consistent snapshot of the engine state.
    pub async fn snapshot(&self) -> Snapshot {
        match self.inner.engine.snapshot().await {
            Some(s) => s,
            None => Snapshot {
                server_id: self.inner.engine.server_id().to_string(),
                cluster_id: self.inner.config.cluster_id.clone(),
                start_time: self.inner.engine.start_time(),
                store_type: "MEMORY",
                in_msgs: 0,
                in_bytes: 0,
                out_msgs: 0,
                out_bytes: 0,
                redeliveries: 0,
                foreign_requests: 0,
                clients: Vec::new(),
                channels: Vec::new(),
            },
        }
    }

    /// Graceful shutdown: stop taking new requests, answer pending PubAcks, flush the store,
    /// stop core NATS (embedded) / drain the connection (external). Idempotent.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner
            .shutdown
            .get_or_init(|| async {
                inner.engine.set_frozen(false);
                inner.engine.shutdown().await;
                inner.transport.close().await;
                if let Some(s) = &inner.embedded {
                    s.shutdown().await;
                }
                inner.closed.send_replace(true);
                tracing::info!("streaming server stopped");
            })
            .await;
    }

    /// Why the broker shut down on its own, if it did: its store stopped writing (the
    /// JETSTREAM store lost its lease to another broker, or JetStream failed for too long).
    pub fn failure(&self) -> Option<String> {
        self.inner.failure.get().cloned()
    }

    /// Resolves when the broker has shut down.
    pub async fn closed(&self) {
        let mut rx = self.inner.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Test hook: while frozen the engine processes nothing (requests queue up).
    #[doc(hidden)]
    pub fn set_frozen(&self, frozen: bool) {
        self.inner.engine.set_frozen(frozen);
    }

    /// Test hook: number of messages core NATS has handed to the engine so far (requests,
    /// publishes, acks), whether processed yet or not.
    #[doc(hidden)]
    pub fn inbound_count(&self) -> u64 {
        self.inner.engine.inbound_count()
    }

    /// Test hook (embedded mode only): drop every TCP client connection; the listener stays.
    #[doc(hidden)]
    pub fn disconnect_all_clients(&self) {
        if let Some(s) = &self.inner.embedded {
            s.disconnect_all_clients();
        }
    }
}

/// The broker is the data source of the monitoring endpoints.
impl Source for Broker {
    async fn snapshot(&self) -> Snapshot {
        Broker::snapshot(self).await
    }

    fn limits(&self) -> StoreLimits {
        Broker::limits(self)
    }

    fn per_channel_limits(&self) -> BTreeMap<String, ChannelLimits> {
        let limits = &Broker::limits(self);
        limits
            .channels
            .keys()
            .map(|name| (name.clone(), effective_limits(limits, name)))
            .collect()
    }

    fn core_info(&self) -> CoreInfo {
        let (max_payload, auth_required) = match &self.config().nats {
            NatsMode::Embedded(e) => (
                e.max_payload,
                e.user.is_some() || e.pass.is_some() || e.auth_token.is_some(),
            ),
            NatsMode::External(_) => (stan_protocol::defaults::MAX_PAYLOAD, false),
        };
        CoreInfo {
            client_url: self.client_url(),
            max_payload,
            auth_required,
        }
    }

    fn embedded_server(&self) -> Option<stan_embedded_nats::Server> {
        self.inner.embedded.clone()
    }

    fn console(&self) -> Option<Arc<dyn monitor::console::ConsoleBackend>> {
        Some(Arc::new(ConsoleMessages(Arc::downgrade(&self.inner))))
    }

    async fn closed(&self) {
        Broker::closed(self).await
    }
}

/// The console's message browser and admin actions go through the engine. Holds the broker
/// weakly: the monitoring router never keeps a dropped broker alive.
struct ConsoleMessages(std::sync::Weak<Inner>);

impl monitor::console::ConsoleBackend for ConsoleMessages {
    fn messages(
        &self,
        query: monitor::console::MsgQuery,
    ) -> futures::future::BoxFuture<
        '_,
        Option<Result<monitor::console::MsgPage, monitor::console::BrowseError>>,
    > {
        Box::pin(async move {
            let inner = self.0.upgrade()?;
            inner.engine.browse(query).await
        })
    }

    fn admin_token(&self) -> Option<String> {
        self.0.upgrade()?.config.console_admin_token.clone()
    }

    fn admin(
        &self,
        action: monitor::console::AdminAction,
    ) -> futures::future::BoxFuture<'_, Option<Result<(), monitor::console::AdminError>>> {
        Box::pin(async move {
            let inner = self.0.upgrade()?;
            inner.engine.admin(action).await
        })
    }
}

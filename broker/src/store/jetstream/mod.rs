//! The JETSTREAM store: every channel a JetStream stream (stream sequence = channel sequence,
//! the encoded message as payload), clients, subscriptions and server info as JSON values of
//! key-value buckets, on a NATS cluster that replicates them.
//!
//! Several brokers may use the same cluster ID on the same NATS cluster: the one holding the
//! lease (a key of the `lease` bucket, whose entries expire after the lease TTL) is active,
//! the others wait in [`Store::recover`] and take over when the lease expires. The active
//! broker renews the lease every third of its TTL; a broker that cannot renew it in time stops
//! writing and reports the failure ([`JetStreamStore::failures`]), and the broker shuts down.
//! Every stored message names the sequence it must get (`Nats-Expected-Last-Sequence`), so a
//! broker that lost its lease cannot write a message out of place either.
//!
//! Writes wait in memory until the engine flushes, then go out pipelined: all messages of a
//! channel are published before the first acknowledgement is awaited, the bucket writes of a
//! flush are sent concurrently. The engine's reads are served from a copy of each channel in
//! memory (as the MEMORY store keeps it), rebuilt from the streams at recovery.

mod msgs;
mod names;
mod subs;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::future::{join_all, BoxFuture};
use futures::{FutureExt, StreamExt, TryStreamExt};
use prost::Message as _;
use stan_protocol::pb::MsgProto;
use tokio::sync::watch;

use self::msgs::{JsMsgStore, GUID_HEADER};
use self::names::Names;
use self::subs::{JsSubStore, Pending, ServerValue, SubValue};
use super::limits::{admit_channel, effective_limits};
use super::{
    ChannelStore, ClientRecord, RecoveredChannel, RecoveredState, ServerInfo, Store, StoreError,
    StoreResult,
};
use crate::config::{JetStreamOptions, StoreLimits};

/// The key of the lease in the `lease` bucket.
const LEASE_KEY: &str = "active";

/// What the store's parts share: the JetStream context, the names, the write buffer of the
/// buckets, and whether the store may still write.
pub(crate) struct Shared {
    js: jetstream::Context,
    names: Names,
    replicas: usize,
    /// How long a failed write is retried before the store gives up.
    retry_for: Duration,
    buckets: Mutex<Option<Buckets>>,
    pending: Mutex<Pending>,
    fenced: AtomicBool,
    failure: watch::Sender<Option<String>>,
}

#[derive(Clone)]
struct Buckets {
    clients: kv::Store,
    subs: kv::Store,
    server: kv::Store,
}

impl Shared {
    fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// Fails when the store stopped writing.
    fn check(&self) -> StoreResult<()> {
        if self.is_fenced() {
            let why = self.failure.borrow().clone().unwrap_or_default();
            return Err(StoreError::Other(format!(
                "the JetStream store stopped writing: {why}"
            )));
        }
        Ok(())
    }

    /// Stops every write and reports `why` (the first reason wins).
    fn fail(&self, why: String) {
        if !self.fenced.swap(true, Ordering::AcqRel) {
            tracing::error!("JetStream store: {why}");
            self.failure.send_replace(Some(why));
        }
    }

    async fn delete_stream(&self, name: &str) -> StoreResult<()> {
        match self.js.delete_stream(name).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(StoreError::Other(format!(
                "deleting JetStream stream {name}: {e}"
            ))),
        }
    }

    /// Writes the buffered bucket changes (clients, subscriptions, server info) and deletes
    /// the streams of deleted channels; writes of one flush go out concurrently.
    async fn write_buckets(&self) -> StoreResult<()> {
        self.check()?;
        let writes = self.pending.lock().expect("store buffer lock").take();
        if writes.is_empty() {
            return Ok(());
        }
        let Some(b) = self.buckets.lock().expect("buckets lock").clone() else {
            return Err(StoreError::Other("the JetStream store is not open".into()));
        };
        let r = async {
            for s in &writes.deleted_streams {
                self.delete_stream(s).await?;
            }
            for c in &writes.new_streams {
                self.js
                    .get_or_create_stream(c.clone())
                    .await
                    .map_err(|e| StoreError::Other(explain_create(&c.name, self.replicas, e)))?;
            }
            let mut ops = Vec::new();
            for (key, value) in &writes.subs {
                ops.push(self.kv_write(&b.subs, key, value.clone()).boxed());
            }
            for (key, value) in &writes.clients {
                ops.push(self.kv_write(&b.clients, key, value.clone()).boxed());
            }
            if let Some(v) = &writes.server {
                ops.push(self.kv_write(&b.server, "info", Some(v.clone())).boxed());
            }
            for r in join_all(ops).await {
                r?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = &r {
            self.fail(format!("{e}"));
        }
        r
    }

    /// One put (or delete, for `None`), retried until [`Shared::retry_for`] passed.
    async fn kv_write(
        &self,
        bucket: &kv::Store,
        key: &str,
        value: Option<Bytes>,
    ) -> StoreResult<()> {
        let deadline = tokio::time::Instant::now() + self.retry_for;
        loop {
            self.check()?;
            let r = match &value {
                Some(v) => bucket
                    .put(key, v.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => bucket.delete(key).await.map_err(|e| e.to_string()),
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(StoreError::Other(format!(
                        "JetStream bucket {}: writing {key}: {e}",
                        bucket.name
                    )))
                }
                Err(e) => {
                    tracing::warn!(bucket = %bucket.name, key, "JetStream write failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// How long startup reads and bucket setup are retried on transient failures (a stream just
/// created by another broker may have no leader yet; a NATS node may be restarting).
const STARTUP_RETRY: Duration = Duration::from_secs(30);

/// How long one JetStream request may take before it is retried (or given up).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a failure may go away by itself (a timeout, a stream without a leader for now).
fn transient(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    e.contains("timed out")
        || e.contains("timeout")
        || e.contains("temporarily unavailable")
        || e.contains("no leader")
        || e.contains("not currently available")
}

/// Runs `op` until it succeeds, retrying transient failures for up to [`STARTUP_RETRY`].
async fn retrying<T, F, Fut>(mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let deadline = tokio::time::Instant::now() + STARTUP_RETRY;
    loop {
        match op().await {
            Err(StoreError::Other(e))
                if transient(&e) && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!("JetStream store: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            r => return r,
        }
    }
}

/// A readable error for a stream or bucket that could not be created.
fn explain_create(name: &str, replicas: usize, e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    let hint = if text.contains("insufficient resources")
        || text.contains("replicas")
        || text.contains("no suitable peers")
    {
        format!(" (does the NATS cluster have {replicas} JetStream servers? see --js_replicas)")
    } else if text.contains("already in use") {
        " (a stream of that name exists with another configuration)".into()
    } else {
        String::new()
    };
    format!("cannot create JetStream stream {name} with {replicas} replica(s): {text}{hint}")
}

/// The JETSTREAM store.
pub struct JetStreamStore {
    client: async_nats::Client,
    url: String,
    opts: JetStreamOptions,
    limits: StoreLimits,
    shared: Arc<Shared>,
    channels: HashSet<String>,
    lease: Option<tokio::task::JoinHandle<()>>,
    failures: watch::Receiver<Option<String>>,
}

impl JetStreamStore {
    /// A store on the NATS cluster `client` is connected to (`url` is shown in errors), for
    /// the cluster ID `cluster_id`. Nothing is read or written before [`Store::recover`].
    pub fn new(
        client: async_nats::Client,
        url: &str,
        cluster_id: &str,
        limits: StoreLimits,
        opts: JetStreamOptions,
    ) -> JetStreamStore {
        let (failure, failures) = watch::channel(None);
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        let shared = Arc::new(Shared {
            js,
            names: Names::new(&opts.prefix, cluster_id),
            replicas: opts.replicas,
            // A write is retried for as long as the lease lasts at least: beyond that the
            // lease is gone anyway.
            retry_for: opts.lease_ttl.max(Duration::from_secs(10)),
            buckets: Mutex::new(None),
            pending: Mutex::new(Pending::default()),
            fenced: AtomicBool::new(false),
            failure,
        });
        JetStreamStore {
            client,
            url: url.to_string(),
            opts,
            limits,
            shared,
            channels: HashSet::new(),
            lease: None,
            failures,
        }
    }

    /// Resolves with the reason once the store has stopped writing (lease lost, JetStream
    /// failing for longer than the retries): the broker must stop serving.
    pub fn failures(&self) -> watch::Receiver<Option<String>> {
        self.failures.clone()
    }

    /// Fails clearly when the server does not answer JetStream requests.
    async fn check_jetstream(&self) -> StoreResult<()> {
        let unavailable = |why: String| {
            StoreError::Other(format!(
                "JetStream is not available on the NATS server at {}: {why} (is nats-server started with -js?)",
                self.url
            ))
        };
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            self.client.request("$JS.API.INFO", Bytes::new()),
        )
        .await
        .map_err(|_| unavailable("no answer within 5s".into()))?
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                unavailable("nothing answers JetStream requests".into())
            }
            _ => unavailable(e.to_string()),
        })?;
        let v: serde_json::Value = serde_json::from_slice(&reply.payload)
            .map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
        if let Some(err) = v.get("error") {
            let text = err
                .get("description")
                .and_then(|d| d.as_str())
                .unwrap_or("error");
            return Err(unavailable(text.to_string()));
        }
        Ok(())
    }

    /// Opens (or creates) a bucket, retrying transient failures.
    async fn bucket(&self, what: &str, max_age: Duration) -> StoreResult<kv::Store> {
        retrying(|| self.open_bucket(what, max_age)).await
    }

    async fn open_bucket(&self, what: &str, max_age: Duration) -> StoreResult<kv::Store> {
        let name = self.shared.names.bucket(what);
        let js = &self.shared.js;
        let existing = match js.get_key_value(&name).await {
            Ok(b) => Some(b),
            Err(e) if transient(&e.to_string()) => {
                return Err(StoreError::Other(format!("JetStream bucket {name}: {e}")))
            }
            Err(_) => None,
        };
        if let Some(b) = existing {
            // A bucket made with another TTL or replica count is brought in line.
            let mut config = b.stream.cached_info().config.clone();
            if config.max_age != max_age || config.num_replicas != self.opts.replicas {
                config.max_age = max_age;
                config.num_replicas = self.opts.replicas;
                if !max_age.is_zero() && config.duplicate_window > max_age {
                    config.duplicate_window = max_age;
                }
                js.update_stream(config).await.map_err(|e| {
                    StoreError::Other(format!("updating JetStream bucket {name}: {e}"))
                })?;
            }
            return Ok(b);
        }
        // The bucket's stream, as key-value clients create it (the client's own bucket
        // creation asks for account fields that servers before 2.10 do not send).
        let stream = format!("KV_{name}");
        let config = jetstream::stream::Config {
            name: stream.clone(),
            description: Some("stan-broker state".into()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_bytes: -1,
            max_messages: -1,
            max_message_size: -1,
            max_consumers: -1,
            max_age,
            discard: jetstream::stream::DiscardPolicy::New,
            storage: jetstream::stream::StorageType::File,
            num_replicas: self.opts.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            duplicate_window: if max_age.is_zero() {
                Duration::from_secs(120)
            } else {
                max_age.min(Duration::from_secs(120))
            },
            ..Default::default()
        };
        js.create_stream(config)
            .await
            .map_err(|e| StoreError::Other(explain_create(&stream, self.opts.replicas, e)))?;
        js.get_key_value(&name)
            .await
            .map_err(|e| StoreError::Other(format!("JetStream bucket {name}: {e}")))
    }

    /// Waits until this broker holds the lease, then keeps renewing it in a task.
    async fn acquire_lease(&mut self, lease: kv::Store) -> StoreResult<()> {
        let me = Bytes::from(format!(
            "{{\"host\":{:?},\"pid\":{},\"id\":{:?}}}",
            hostname(),
            std::process::id(),
            stan_protocol::subjects::new_nuid()
        ));
        let ttl = self.opts.lease_ttl;
        let mut announced = false;
        let (revision, sent) = loop {
            let sent = tokio::time::Instant::now();
            match lease.create(LEASE_KEY, me.clone()).await {
                Ok(rev) => break (rev, sent),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if !announced {
                        announced = true;
                        let holder = lease
                            .get(LEASE_KEY)
                            .await
                            .ok()
                            .flatten()
                            .map(|v| String::from_utf8_lossy(&v).into_owned())
                            .unwrap_or_default();
                        tracing::info!(
                            "standing by: another stan-broker is active for this cluster ID ({holder})"
                        );
                    }
                }
                Err(e) => tracing::warn!("JetStream lease: {e}; retrying"),
            }
            tokio::time::sleep(ttl / 4).await;
        };
        if announced {
            tracing::info!("the lease is ours: taking over");
        }
        let shared = self.shared.clone();
        self.lease = Some(tokio::spawn(renew(lease, me, revision, sent, ttl, shared)));
        Ok(())
    }

    /// Reads a channel's stream into its store, retrying transient failures.
    async fn recover_channel(&self, channel: &str) -> StoreResult<JsMsgStore> {
        retrying(|| self.read_channel(channel)).await
    }

    async fn read_channel(&self, channel: &str) -> StoreResult<JsMsgStore> {
        let name = self.shared.names.stream(channel);
        let err =
            |e: &dyn std::fmt::Display| StoreError::Other(format!("JetStream stream {name}: {e}"));
        let limits = effective_limits(&self.limits, channel);
        let mut stream = self
            .shared
            .js
            .get_stream(&name)
            .await
            .map_err(|e| err(&e))?;
        let info = stream.info().await.map_err(|e| err(&e))?.clone();
        let wanted = msgs::stream_config(
            &name,
            &self.shared.names.subject(channel),
            &limits,
            self.opts.replicas,
        );
        if let Some(why) = msgs::incompatible(&info.config, &wanted) {
            return Err(StoreError::Other(format!(
                "JetStream stream {name} cannot hold channel {channel:?}: {why}"
            )));
        }
        let c = &info.config;
        if (c.max_messages, c.max_bytes, c.max_age, c.num_replicas)
            != (
                wanted.max_messages,
                wanted.max_bytes,
                wanted.max_age,
                wanted.num_replicas,
            )
        {
            // Limits or replicas changed in the configuration since the stream was made.
            self.shared
                .js
                .update_stream(wanted.clone())
                .await
                .map_err(|e| err(&e))?;
        }
        let mut store = JsMsgStore::new(self.shared.clone(), channel, &limits, true);
        let state = info.state;
        if state.messages > 0 {
            let consumer = stream
                .create_consumer(jetstream::consumer::push::OrderedConfig {
                    deliver_subject: self.client.new_inbox(),
                    deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: state.first_sequence,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| err(&e))?;
            let mut messages = consumer.messages().await.map_err(|e| err(&e))?;
            loop {
                let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
                    .await
                    .map_err(|_| err(&"reading the stream timed out"))?;
                let Some(m) = m else { break };
                let m = m.map_err(|e| err(&e))?;
                let seq = m.info().map_err(|e| err(&e))?.stream_sequence;
                let msg = MsgProto::decode(m.payload.clone())
                    .map_err(|e| err(&format!("message {seq} is not a stored message: {e}")))?;
                if let Some(g) = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(GUID_HEADER))
                    .filter(|_| state.last_sequence - seq < msgs::MAX_GUIDS as u64)
                {
                    store.restore_guid(seq, g.as_str().to_string(), msg.timestamp);
                }
                store.mem.restore(seq, msg.timestamp, m.payload.clone());
                if seq >= state.last_sequence {
                    break;
                }
            }
        }
        store.mem.restore_last_sequence(state.last_sequence, 0);
        store.set_confirmed(state.last_sequence);
        Ok(store)
    }

    async fn recover_state(&mut self) -> StoreResult<Option<RecoveredState>> {
        let js = self.shared.js.clone();
        self.check_jetstream().await?;
        let lease = self.bucket("lease", self.opts.lease_ttl).await?;
        let clients = self.bucket("clients", Duration::ZERO).await?;
        let subs = self.bucket("subs", Duration::ZERO).await?;
        let server = self.bucket("server", Duration::ZERO).await?;
        self.acquire_lease(lease).await?;
        *self.shared.buckets.lock().expect("buckets lock") = Some(Buckets {
            clients: clients.clone(),
            subs: subs.clone(),
            server: server.clone(),
        });

        let read_err = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Other(format!("JetStream store: reading {what}: {e}"))
        };
        let server_info = match read_all(&server, "server info").await?.pop() {
            Some((_, v)) => Some(ServerInfo::from(
                serde_json::from_slice::<ServerValue>(&v)
                    .map_err(|e| read_err("server info", &e))?,
            )),
            None => None,
        };
        let mut recovered_clients = Vec::new();
        for (key, v) in read_all(&clients, "clients").await? {
            match serde_json::from_slice::<ClientRecord>(&v) {
                Ok(c) => recovered_clients.push(c),
                Err(e) => tracing::warn!(key, "ignoring an unreadable client record: {e}"),
            }
        }
        let mut subs_by_channel: HashMap<String, Vec<super::RecoveredSub>> = HashMap::new();
        for (key, v) in read_all(&subs, "subscriptions").await? {
            let Some((channel, _)) = Names::parse_sub_key(&key) else {
                continue;
            };
            match serde_json::from_slice::<SubValue>(&v)
                .ok()
                .and_then(SubValue::recovered)
            {
                Some(s) => subs_by_channel.entry(channel).or_default().push(s),
                None => tracing::warn!(key, "ignoring an unreadable subscription record"),
            }
        }
        let mut channels: Vec<String> = retrying(|| async {
            let names: Vec<String> = js
                .stream_names()
                .try_collect()
                .await
                .map_err(|e| read_err("streams", &e))?;
            Ok(names
                .iter()
                .filter_map(|n| self.shared.names.channel_of_stream(n))
                .collect())
        })
        .await?;
        // Subscription records of a channel whose stream is missing (deleted from outside):
        // the channel comes back empty rather than losing its durables.
        for channel in subs_by_channel.keys() {
            if !channels.contains(channel) {
                let limits = effective_limits(&self.limits, channel);
                let names = &self.shared.names;
                let config = msgs::stream_config(
                    &names.stream(channel),
                    &names.subject(channel),
                    &limits,
                    self.opts.replicas,
                );
                tracing::warn!(channel, "the channel's stream is missing: created empty");
                js.get_or_create_stream(config).await.map_err(|e| {
                    StoreError::Other(explain_create(
                        &names.stream(channel),
                        self.opts.replicas,
                        e,
                    ))
                })?;
                channels.push(channel.clone());
            }
        }
        channels.sort();
        let mut recovered = Vec::new();
        for name in channels {
            let msgs = self.recover_channel(&name).await?;
            let subs = subs_by_channel.remove(&name).unwrap_or_default();
            {
                let mut p = self.shared.pending.lock().expect("store buffer lock");
                for s in &subs {
                    p.restore_sub(&name, s);
                }
            }
            self.channels.insert(name.clone());
            let limits = effective_limits(&self.limits, &name);
            recovered.push(RecoveredChannel {
                store: ChannelStore {
                    msgs: Box::new(msgs),
                    subs: Box::new(JsSubStore {
                        channel: name.clone(),
                        shared: self.shared.clone(),
                    }),
                    limits,
                },
                name,
                subs,
            });
        }
        if server_info.is_none() && recovered_clients.is_empty() && recovered.is_empty() {
            return Ok(None);
        }
        tracing::info!(
            channels = recovered.len(),
            clients = recovered_clients.len(),
            "recovered the JetStream store"
        );
        Ok(Some(RecoveredState {
            server_info,
            clients: recovered_clients,
            channels: recovered,
        }))
    }
}

/// Every key of a bucket with its value, retrying transient failures.
async fn read_all(bucket: &kv::Store, what: &str) -> StoreResult<Vec<(String, Bytes)>> {
    let err = |e: &dyn std::fmt::Display| {
        StoreError::Other(format!("JetStream store: reading {what}: {e}"))
    };
    retrying(|| async {
        let keys: Vec<String> = bucket
            .keys()
            .await
            .map_err(|e| err(&e))?
            .try_collect()
            .await
            .map_err(|e| err(&e))?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(v) = bucket.get(&key).await.map_err(|e| err(&e))? {
                out.push((key, v));
            }
        }
        Ok(out)
    })
    .await
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Renews the lease every third of its TTL. A renewal refused (another broker holds the
/// lease) or none for a whole TTL fails the store.
async fn renew(
    lease: kv::Store,
    me: Bytes,
    mut revision: u64,
    mut last_ok: tokio::time::Instant,
    ttl: Duration,
    shared: Arc<Shared>,
) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        if shared.is_fenced() {
            return;
        }
        // The lease runs from when the renewal was sent: the server may store it at once.
        let sent = tokio::time::Instant::now();
        let r = tokio::time::timeout(ttl / 3, lease.update(LEASE_KEY, me.clone(), revision)).await;
        match r {
            Ok(Ok(rev)) => {
                revision = rev;
                last_ok = sent;
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                shared.fail("lost the lease: another stan-broker took over".into());
                return;
            }
            Ok(Err(e)) => tracing::warn!("renewing the JetStream lease: {e}"),
            Err(_) => tracing::warn!("renewing the JetStream lease timed out"),
        }
        if last_ok.elapsed() >= ttl {
            shared.fail(format!("could not renew the lease for {ttl:?}"));
            return;
        }
    }
}

impl Store for JetStreamStore {
    fn store_type(&self) -> &'static str {
        "JETSTREAM"
    }

    fn set_limits(&mut self, limits: StoreLimits) -> StoreResult<()> {
        self.limits = limits;
        Ok(())
    }

    fn recover(&mut self) -> BoxFuture<'_, StoreResult<Option<RecoveredState>>> {
        self.recover_state().boxed()
    }

    fn init(&mut self, info: &ServerInfo) -> StoreResult<()> {
        self.shared
            .pending
            .lock()
            .expect("store buffer lock")
            .set_server(info);
        Ok(())
    }

    fn create_channel(&mut self, name: &str) -> StoreResult<ChannelStore> {
        let limits = admit_channel(
            &self.limits,
            name,
            self.channels.contains(name),
            self.channels.len(),
        )?;
        self.channels.insert(name.to_string());
        let names = &self.shared.names;
        self.shared
            .pending
            .lock()
            .expect("store buffer lock")
            .create_stream(msgs::stream_config(
                &names.stream(name),
                &names.subject(name),
                &limits,
                self.opts.replicas,
            ));
        Ok(ChannelStore {
            msgs: Box::new(JsMsgStore::new(self.shared.clone(), name, &limits, false)),
            subs: Box::new(JsSubStore {
                channel: name.to_string(),
                shared: self.shared.clone(),
            }),
            limits,
        })
    }

    fn delete_channel(&mut self, name: &str) -> StoreResult<()> {
        self.channels.remove(name);
        let stream = self.shared.names.stream(name);
        self.shared
            .pending
            .lock()
            .expect("store buffer lock")
            .delete_channel(name, stream);
        Ok(())
    }

    fn add_client(&mut self, client: &ClientRecord) -> StoreResult<()> {
        self.shared
            .pending
            .lock()
            .expect("store buffer lock")
            .set_client(&client.id, Some(client.clone()));
        Ok(())
    }

    fn delete_client(&mut self, id: &str) -> StoreResult<()> {
        self.shared
            .pending
            .lock()
            .expect("store buffer lock")
            .set_client(id, None);
        Ok(())
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        let shared = self.shared.clone();
        async move { shared.write_buckets().await }.boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let r = self.shared.write_buckets().await;
            if let Some(task) = self.lease.take() {
                task.abort();
                // Hand over at once: a standby need not wait for the lease to expire.
                if !self.shared.is_fenced() {
                    let bucket = self.shared.names.bucket("lease");
                    if let Ok(lease) = self.shared.js.get_key_value(&bucket).await {
                        let _ = lease.delete(LEASE_KEY).await;
                    }
                }
            }
            // Stop writing; what is acknowledged is stored.
            self.shared.fenced.store(true, Ordering::Release);
            let _ = self.client.flush().await;
            r
        }
        .boxed()
    }
}

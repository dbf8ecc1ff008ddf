//! Shared test support of the broker's tests: the raw STAN protocol spoken with async-nats and
//! the `stan_protocol` messages ([`Conn`], [`TestSub`]). Starting brokers and `nats-server`
//! comes from `stan-test-support`.
//!
//! [`start_broker`] picks the store the scenario runs on: memory by default, FILE
//! ([`file_store_wanted`]) or JETSTREAM ([`jetstream_store_wanted`]).
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use prost::Message;
use stan_broker::config::{BrokerConfig, JetStreamOptions, StoreKind};
use stan_broker::Broker;
use stan_protocol::pb;
use stan_protocol::subjects::{new_ack_inbox, new_inbox, new_nuid};
// Not every test file uses every helper.
#[allow(unused_imports)]
pub use stan_test_support::{free_port, start_nats_server, NatsServer};

/// How long a test waits for something that should happen. Shorter than
/// `stan_test_support::WAIT` on purpose: these waits also mean "promptly" (before the
/// heartbeat and request timeouts of the test configuration would matter).
pub const WAIT: Duration = Duration::from_secs(3);

/// Awaits `fut` for at most [`WAIT`], panicking with `what` on timeout.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    stan_test_support::within_for(WAIT, what, fut).await
}

/// Polls `check` on the broker snapshot until it holds (or panics after [`WAIT`]).
pub async fn wait_snapshot(
    broker: &Broker,
    what: &str,
    check: impl Fn(&stan_broker::snapshot::Snapshot) -> bool,
) {
    within(what, async {
        loop {
            if check(&broker.snapshot().await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Starts a broker attached to `nats` with the test configuration adjusted by `f` (on the
/// store [`use_test_store`] picks).
pub async fn start_external_broker(nats: &NatsServer, f: impl FnOnce(&mut BrokerConfig)) -> Broker {
    stan_test_support::start_external_broker(&nats.url, |cfg| {
        use_test_store(cfg);
        f(cfg)
    })
    .await
}

/// Starts an in-process broker with the test configuration adjusted by `f`, on the store
/// [`use_test_store`] picks, or attached to the JetStream cluster when
/// [`jetstream_store_wanted`] (see [`start_jetstream_broker`]).
pub async fn start_broker(f: impl FnOnce(&mut BrokerConfig)) -> Broker {
    if jetstream_store_wanted() {
        if let Some(url) = jetstream_url().await {
            return start_jetstream_broker(&url, f).await;
        }
    }
    stan_test_support::start_broker(|cfg| {
        use_test_store(cfg);
        f(cfg)
    })
    .await
}

/// Whether this test binary runs its scenarios on the JETSTREAM store: with
/// `STAN_TEST_STORE=jetstream` in the environment, or when the scenario file is included by
/// `jetstream_store_scenarios.rs`.
pub fn jetstream_store_wanted() -> bool {
    module_path!().starts_with("jetstream_store_scenarios")
        || std::env::var("STAN_TEST_STORE").is_ok_and(|v| v.eq_ignore_ascii_case("jetstream"))
}

/// For the few scenarios that configure or act on the embedded NATS server, which a broker on
/// the JETSTREAM store does not have (it is attached to the cluster): true, with a `SKIPPED`
/// line saying why, when the scenarios run on that store.
pub fn skip_on_jetstream(why: &str) -> bool {
    if jetstream_store_wanted() {
        eprintln!("SKIPPED on the JETSTREAM store (no embedded NATS server): this test {why}");
    }
    jetstream_store_wanted()
}

/// The client URLs (comma separated) of the JetStream cluster the JETSTREAM scenarios use:
/// `STAN_TEST_JETSTREAM_URL` (at least 3 nodes, e.g. from `scripts/js-cluster`), or else a
/// 3-node cluster started once for this test binary. A static is never dropped: its nodes run
/// under supervisors that kill them when this process exits. `None` (with a `SKIPPED` line)
/// when `nats-server` is not installed: the scenarios then run on the memory store.
pub async fn jetstream_url() -> Option<String> {
    static CLUSTER: tokio::sync::OnceCell<Option<(String, Option<stan_test_support::JsCluster>)>> =
        tokio::sync::OnceCell::const_new();
    let target = CLUSTER
        .get_or_init(|| async {
            match std::env::var("STAN_TEST_JETSTREAM_URL") {
                Ok(url) if !url.is_empty() => Some((url, None)),
                _ => {
                    let cluster = stan_test_support::JsCluster::start(3).await?;
                    Some((cluster.url(), Some(cluster)))
                }
            }
        })
        .await;
    if target.is_none() {
        eprintln!("SKIPPED: no JetStream cluster: this scenario runs on the memory store");
    }
    target.as_ref().map(|(url, _)| url.clone())
}

/// Brokers started on the shared JetStream cluster, by the unique part of their cluster ID.
static JETSTREAM_BROKERS: Mutex<Vec<(String, Broker)>> = Mutex::new(Vec::new());

/// Starts a broker on the JETSTREAM store (3 replicas) attached to the cluster at `url`, which
/// is also the URL its clients get. Brokers of tests running in parallel share the cluster, so
/// each gets a cluster ID of its own (`test-cluster-<nuid>`). The streams and buckets of the
/// brokers that have shut down meanwhile are deleted first, so that the cluster does not fill
/// up with replicated streams nobody uses any more.
pub async fn start_jetstream_broker(url: &str, f: impl FnOnce(&mut BrokerConfig)) -> Broker {
    // The broker's log, with RUST_LOG set: shown for failing tests.
    stan_test_support::init_tracing();
    delete_streams_of_finished_brokers(url).await;
    let unique = new_nuid();
    let b = stan_test_support::start_external_broker(url, |cfg| {
        cfg.cluster_id = format!("test-cluster-{unique}");
        cfg.store = StoreKind::JetStream(JetStreamOptions {
            replicas: 3,
            ..JetStreamOptions::default()
        });
        f(cfg)
    })
    .await;
    JETSTREAM_BROKERS.lock().unwrap().push((unique, b.clone()));
    b
}

/// Deletes the streams (and so the buckets) of the brokers [`start_jetstream_broker`] started
/// that have shut down since. Stream names contain the escaped cluster ID, in which the
/// alphanumeric unique part stays as it is. Best effort: the test does not depend on it.
async fn delete_streams_of_finished_brokers(url: &str) {
    let finished: Vec<String> = {
        let mut brokers = JETSTREAM_BROKERS.lock().unwrap();
        let (done, running): (Vec<_>, Vec<_>) = brokers
            .drain(..)
            .partition(|(_, b)| b.closed().now_or_never().is_some());
        *brokers = running;
        done.into_iter().map(|(unique, _)| unique).collect()
    };
    if finished.is_empty() {
        return;
    }
    let sweep = async {
        let js = async_nats::jetstream::new(nats(url).await);
        let mut names = js.stream_names();
        let mut doomed = Vec::new();
        while let Some(Ok(name)) = names.next().await {
            if finished.iter().any(|u| name.contains(u.as_str())) {
                doomed.push(name);
            }
        }
        for name in doomed {
            if let Err(e) = js.delete_stream(&name).await {
                eprintln!("could not delete stream {name}: {e}");
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), sweep)
        .await
        .is_err()
    {
        eprintln!("deleting the streams of finished brokers timed out");
    }
}

/// Whether this test binary runs its scenarios on the FILE store: with `STAN_TEST_STORE=file`
/// in the environment, or when the scenario file is included by `file_store_scenarios.rs`.
pub fn file_store_wanted() -> bool {
    module_path!().starts_with("file_store_scenarios")
        || std::env::var("STAN_TEST_STORE").is_ok_and(|v| v.eq_ignore_ascii_case("file"))
}

/// A fresh, empty directory for a FILE store (under cargo's per-target temporary directory).
pub fn fresh_store_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stan-file-store-tests");
    // Directories of earlier runs (more than an hour old) are removed once per test binary.
    static CLEAN: std::sync::Once = std::sync::Once::new();
    CLEAN.call_once(|| stan_test_support::remove_dirs_older_than(&root, Duration::from_secs(3600)));
    let d = root.join(new_nuid());
    std::fs::create_dir_all(&d).expect("create store dir");
    d
}

/// Switches `cfg` to the FILE store on a fresh directory when [`file_store_wanted`].
pub fn use_test_store(cfg: &mut BrokerConfig) {
    if file_store_wanted() {
        cfg.store = stan_broker::config::StoreKind::File(fresh_store_dir());
    }
}

/// Connects a plain NATS client to `url`, which may list several servers, comma separated (a
/// broker attached to a cluster gives the URLs of all its nodes).
pub async fn nats(url: &str) -> async_nats::Client {
    async_nats::connect(url.split(',').collect::<Vec<_>>())
        .await
        .expect("nats connect")
}

/// How a test client treats server heartbeats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Heartbeats {
    /// Answer them.
    Answer,
    /// Subscribe the heartbeat inbox but never answer (timeouts).
    Ignore,
    /// Do not subscribe the heartbeat inbox (no responders).
    NoInbox,
}

/// A raw STAN client session.
pub struct Conn {
    /// Underlying NATS connection.
    pub nc: async_nats::Client,
    /// Client ID.
    pub client_id: String,
    /// Connection ID.
    pub conn_id: Bytes,
    /// Heartbeat inbox.
    pub hb_inbox: String,
    /// The server's ConnectResponse.
    pub resp: pb::ConnectResponse,
    /// Pub-ack inbox and its subscription.
    pub ack_inbox: String,
    acks: async_nats::Subscriber,
    /// Whether heartbeats are answered (can be switched off to play dead).
    pub answer_hb: Arc<AtomicBool>,
    hb_task: Option<tokio::task::JoinHandle<()>>,
    cluster_id: String,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(t) = self.hb_task.take() {
            t.abort();
        }
    }
}

/// Sends a request and decodes the answer, panicking on timeout.
pub async fn request<R: Message + Default>(
    nc: &async_nats::Client,
    subject: &str,
    payload: Bytes,
) -> R {
    let m = within(
        &format!("reply on {subject}"),
        nc.request(subject.to_string(), payload),
    )
    .await
    .unwrap_or_else(|e| panic!("request on {subject}: {e}"));
    R::decode(m.payload).expect("decodable reply")
}

/// The ConnectRequest a client would send.
pub fn connect_request(client_id: &str, hb_inbox: &str) -> pb::ConnectRequest {
    pb::ConnectRequest {
        client_id: client_id.into(),
        heartbeat_inbox: hb_inbox.into(),
        protocol: 1,
        conn_id: Bytes::from(new_nuid()),
        ping_interval: 5,
        ping_max_out: 88,
        resends_publishes: false,
    }
}

impl Conn {
    /// Connects `client_id`, answering heartbeats; panics on a connect error.
    pub async fn connect(url: &str, cluster_id: &str, client_id: &str) -> Conn {
        Conn::try_connect(url, cluster_id, client_id, Heartbeats::Answer)
            .await
            .unwrap_or_else(|e| panic!("connect {client_id}: {e}"))
    }

    /// Connects; `Err(text)` when the server refuses.
    pub async fn try_connect(
        url: &str,
        cluster_id: &str,
        client_id: &str,
        hb: Heartbeats,
    ) -> Result<Conn, String> {
        let nc = nats(url).await;
        let hb_inbox = new_inbox();
        let answer_hb = Arc::new(AtomicBool::new(hb == Heartbeats::Answer));
        let hb_task = if hb != Heartbeats::NoInbox {
            let mut sub = nc.subscribe(hb_inbox.clone()).await.unwrap();
            let nc2 = nc.clone();
            let answer = answer_hb.clone();
            Some(tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    if answer.load(Ordering::SeqCst) {
                        if let Some(r) = m.reply {
                            let _ = nc2.publish(r, Bytes::new()).await;
                        }
                    }
                }
            }))
        } else {
            None
        };
        let ack_inbox = new_ack_inbox();
        let acks = nc.subscribe(ack_inbox.clone()).await.unwrap();
        nc.flush().await.unwrap();
        let req = connect_request(client_id, &hb_inbox);
        let conn_id = req.conn_id.clone();
        let resp: pb::ConnectResponse = request(
            &nc,
            &format!("_STAN.discover.{cluster_id}"),
            req.encode_to_vec().into(),
        )
        .await;
        if !resp.error.is_empty() {
            return Err(resp.error);
        }
        Ok(Conn {
            nc,
            client_id: client_id.into(),
            conn_id,
            hb_inbox,
            resp,
            ack_inbox,
            acks,
            answer_hb,
            hb_task,
            cluster_id: cluster_id.into(),
        })
    }

    /// Publishes without waiting for the PubAck; returns the guid.
    pub async fn publish_async(&self, channel: &str, data: &[u8]) -> String {
        let guid = new_nuid();
        self.send_publish(channel, &guid, data).await;
        guid
    }

    /// Publishes with the given guid (a re-send, for de-duplication) and returns its PubAck.
    pub async fn publish_guid(&mut self, channel: &str, guid: &str, data: &[u8]) -> pb::PubAck {
        self.send_publish(channel, guid, data).await;
        self.next_pub_ack().await
    }

    async fn send_publish(&self, channel: &str, guid: &str, data: &[u8]) {
        let m = pb::PubMsg {
            client_id: self.client_id.clone(),
            guid: guid.into(),
            subject: channel.into(),
            data: Bytes::copy_from_slice(data),
            conn_id: self.conn_id.clone(),
            ..Default::default()
        };
        self.nc
            .publish_with_reply(
                format!("{}.{channel}", self.resp.pub_prefix),
                self.ack_inbox.clone(),
                m.encode_to_vec().into(),
            )
            .await
            .unwrap();
    }

    /// The next PubAck.
    pub async fn next_pub_ack(&mut self) -> pb::PubAck {
        let m = within("pub ack", self.acks.next())
            .await
            .expect("ack stream");
        pb::PubAck::decode(m.payload).expect("decodable PubAck")
    }

    /// Publishes and waits for the PubAck; panics on an error ack.
    pub async fn publish(&mut self, channel: &str, data: &[u8]) {
        let guid = self.publish_async(channel, data).await;
        let ack = self.next_pub_ack().await;
        assert_eq!(ack.guid, guid, "{ack:?}");
        assert_eq!(ack.error, "", "publish on {channel} refused");
    }

    /// A subscription request with the client defaults.
    pub fn sub_req(&self, channel: &str) -> pb::SubscriptionRequest {
        pb::SubscriptionRequest {
            client_id: self.client_id.clone(),
            subject: channel.into(),
            inbox: new_inbox(),
            max_in_flight: 1024,
            ack_wait_in_secs: 30,
            ..Default::default()
        }
    }

    /// Subscribes (delivery inbox first, as clients do); `Err(text)` when refused.
    pub async fn subscribe(&self, req: pb::SubscriptionRequest) -> Result<TestSub, String> {
        let msgs = self.nc.subscribe(req.inbox.clone()).await.unwrap();
        self.nc.flush().await.unwrap();
        let resp: pb::SubscriptionResponse = request(
            &self.nc,
            &self.resp.sub_requests,
            req.encode_to_vec().into(),
        )
        .await;
        if !resp.error.is_empty() {
            return Err(resp.error);
        }
        Ok(TestSub {
            nc: self.nc.clone(),
            msgs,
            inbox: req.inbox,
            ack_inbox: resp.ack_inbox,
            channel: req.subject,
        })
    }

    /// Unsubscribes (`close == false`) or closes a subscription; returns the error text.
    pub async fn unsubscribe(&self, sub: &TestSub, close: bool) -> String {
        let req = pb::UnsubscribeRequest {
            client_id: self.client_id.clone(),
            subject: sub.channel.clone(),
            inbox: sub.ack_inbox.clone(),
            ..Default::default()
        };
        let subject = if close {
            &self.resp.sub_close_requests
        } else {
            &self.resp.unsub_requests
        };
        let r: pb::SubscriptionResponse =
            request(&self.nc, subject, req.encode_to_vec().into()).await;
        r.error
    }

    /// Closes the STAN connection; returns the error text.
    pub async fn close(&self) -> String {
        let req = pb::CloseRequest {
            client_id: self.client_id.clone(),
        };
        let r: pb::CloseResponse = request(
            &self.nc,
            &self.resp.close_requests,
            req.encode_to_vec().into(),
        )
        .await;
        r.error
    }

    /// Sends a Ping with this connection's ID; returns the response's error text.
    pub async fn ping(&self) -> String {
        let p = pb::Ping {
            conn_id: self.conn_id.clone(),
        };
        let r: pb::PingResponse =
            request(&self.nc, &self.resp.ping_requests, p.encode_to_vec().into()).await;
        r.error
    }

    /// Cluster ID this connection talks to.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }
}

/// A subscription's delivery inbox.
pub struct TestSub {
    nc: async_nats::Client,
    /// Deliveries.
    pub msgs: async_nats::Subscriber,
    /// Delivery inbox.
    pub inbox: String,
    /// Ack inbox from the SubscriptionResponse.
    pub ack_inbox: String,
    /// Channel.
    pub channel: String,
}

impl TestSub {
    /// The next delivered message (panics after [`WAIT`]).
    pub async fn next(&mut self) -> pb::MsgProto {
        let m = within(&format!("message on {}", self.channel), self.msgs.next())
            .await
            .expect("delivery stream");
        pb::MsgProto::decode(m.payload).expect("decodable MsgProto")
    }

    /// Asserts nothing is delivered within `d`.
    pub async fn expect_nothing(&mut self, d: Duration) {
        if let Ok(Some(m)) = tokio::time::timeout(d, self.msgs.next()).await {
            let m = pb::MsgProto::decode(m.payload).unwrap();
            panic!(
                "unexpected delivery: seq {} redelivered {}",
                m.sequence, m.redelivered
            );
        }
    }

    /// Acks a sequence.
    pub async fn ack(&self, seq: u64) {
        let a = pb::Ack {
            subject: self.channel.clone(),
            sequence: seq,
        };
        self.nc
            .publish(self.ack_inbox.clone(), a.encode_to_vec().into())
            .await
            .unwrap();
        self.nc.flush().await.unwrap();
    }

    /// Sequences of the next `n` messages.
    pub async fn next_seqs(&mut self, n: usize) -> Vec<u64> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.next().await.sequence);
        }
        v
    }
}

/// Checks the ordering rules of a subscription (PROTOCOL.md §1): the SubscriptionResponse
/// arrives before the first MsgProto, and the ack inbox accepts acks as soon as the response
/// is out. `c` must have published at least one message on `channel`.
pub async fn check_subscribe_ordering(c: &Conn, channel: &str) {
    let prefix = format!("_INBOX.{}", new_nuid());
    let mut all = c.nc.subscribe(format!("{prefix}.>")).await.unwrap();
    c.nc.flush().await.unwrap();
    let mut req = c.sub_req(channel);
    req.inbox = format!("{prefix}.deliver");
    req.start_position = pb::StartPosition::First as i32;
    req.max_in_flight = 1;
    c.nc.publish_with_reply(
        c.resp.sub_requests.clone(),
        format!("{prefix}.reply"),
        req.encode_to_vec().into(),
    )
    .await
    .unwrap();
    let first = within("subscription response", all.next()).await.unwrap();
    assert_eq!(
        first.subject.as_str(),
        format!("{prefix}.reply"),
        "response comes first"
    );
    let resp = pb::SubscriptionResponse::decode(first.payload).unwrap();
    assert_eq!(resp.error, "");
    let m = within("first message", all.next()).await.unwrap();
    assert_eq!(m.subject.as_str(), format!("{prefix}.deliver"));
    let m = pb::MsgProto::decode(m.payload).unwrap();
    let ack = pb::Ack {
        subject: channel.into(),
        sequence: m.sequence,
    };
    c.nc.publish(resp.ack_inbox, ack.encode_to_vec().into())
        .await
        .unwrap();
    // The ack un-stalls the subscription (max in flight 1): the next message follows.
    let next = within("second message", all.next()).await.unwrap();
    let next = pb::MsgProto::decode(next.payload).unwrap();
    assert_eq!(next.sequence, m.sequence + 1);
}

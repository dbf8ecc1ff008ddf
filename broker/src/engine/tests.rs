//! Engine tests with an in-memory transport and a store that hands back recovered state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{ready, BoxFuture};
use futures::FutureExt;
use prost::Message;
use stan_protocol::pb;
use stan_protocol::subjects::ServerSubjects;

use super::{start, EngineInput};
use crate::config::BrokerConfig;
use crate::store::{
    ClientRecord, MemoryStore, RecoveredChannel, RecoveredState, RecoveredSub, ServerInfo, Store,
    StoreResult, SubRecord,
};
use crate::transport::{Route, Transport, TransportError, TransportSubscription};

#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<(String, Bytes)>>,
    subscribed: Mutex<Vec<(String, Route)>>,
}

struct NoSub;
impl TransportSubscription for NoSub {}

impl Transport for Recorder {
    fn subscribe(
        &self,
        subject: &str,
        route: Route,
    ) -> Result<Box<dyn TransportSubscription>, TransportError> {
        self.subscribed
            .lock()
            .unwrap()
            .push((subject.to_string(), route));
        Ok(Box::new(NoSub))
    }
    fn publish(&self, subject: &str, _reply: Option<&str>, payload: Bytes) {
        self.published
            .lock()
            .unwrap()
            .push((subject.to_string(), payload));
    }
    fn request(&self, _: &str, _: Bytes, _: Duration) -> BoxFuture<'static, Option<Bytes>> {
        async { None }.boxed()
    }
    fn flush(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
    fn close(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}

/// A memory store that pretends to have found state on disk.
/// The `Store` methods that the test stores below pass to the store they wrap unchanged.
macro_rules! delegate_store {
    ($($field:tt)+) => {
        fn init(&mut self, info: &ServerInfo) -> StoreResult<()> {
            self.$($field)+.init(info)
        }
        fn delete_channel(&mut self, name: &str) -> StoreResult<()> {
            self.$($field)+.delete_channel(name)
        }
        fn add_client(&mut self, c: &ClientRecord) -> StoreResult<()> {
            self.$($field)+.add_client(c)
        }
        fn delete_client(&mut self, id: &str) -> StoreResult<()> {
            self.$($field)+.delete_client(id)
        }
    };
}

struct Recovering {
    inner: MemoryStore,
    state: Option<RecoveredState>,
}

impl Store for Recovering {
    fn store_type(&self) -> &'static str {
        "FILE"
    }
    fn recover(&mut self) -> BoxFuture<'_, StoreResult<Option<RecoveredState>>> {
        ready(Ok(self.state.take())).boxed()
    }
    delegate_store!(inner);
    fn create_channel(&mut self, name: &str) -> StoreResult<crate::store::ChannelStore> {
        self.inner.create_channel(name)
    }
    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }
    fn close(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }
}

fn recovered(cluster: &str) -> Recovering {
    let cfg = BrokerConfig::for_tests();
    let mut mem = MemoryStore::new(cfg.limits.clone());
    let mut ch = mem.create_channel("ch").unwrap();
    for i in 1..=3u8 {
        ch.msgs
            .store(pb::MsgProto {
                subject: "ch".into(),
                data: Bytes::from(vec![i]),
                timestamp: 1, // long ago: pending ones are overdue
                ..Default::default()
            })
            .unwrap();
    }
    let sub = |id, client: &str, inbox: &str, durable: &str, closed| SubRecord {
        id,
        client_id: client.into(),
        inbox: inbox.into(),
        ack_inbox: format!("_INBOX.ack{id}"),
        max_in_flight: 10,
        ack_wait_in_secs: 30,
        durable_name: durable.into(),
        last_sent: 2,
        is_durable: !durable.is_empty(),
        is_closed: closed,
        ..Default::default()
    };
    Recovering {
        inner: MemoryStore::new(cfg.limits),
        state: Some(RecoveredState {
            server_info: Some(ServerInfo {
                cluster_id: cluster.into(),
                node_id: String::new(),
                subjects: ServerSubjects::new(cluster, "_STAN.discover"),
            }),
            clients: vec![ClientRecord {
                id: "c1".into(),
                hb_inbox: "_INBOX.hb".into(),
                conn_id: Bytes::from_static(b"conn"),
                protocol: 1,
                ping_interval: 5,
                ping_max_out: 88,
                resends_publishes: false,
            }],
            channels: vec![RecoveredChannel {
                name: "ch".into(),
                store: ch,
                subs: vec![
                    RecoveredSub {
                        record: sub(7, "c1", "_INBOX.live", "", false),
                        pending: vec![2],
                        ..Default::default()
                    },
                    RecoveredSub {
                        record: sub(9, "gone", "_INBOX.off", "dur", true),
                        pending: vec![1],
                        ..Default::default()
                    },
                ],
            }],
        }),
    }
}

#[tokio::test]
async fn recovered_state_resumes_delivery_and_redelivers_overdue_pending() {
    let t = Arc::new(Recorder::default());
    let h = start(
        BrokerConfig::for_tests(),
        t.clone(),
        Box::new(recovered("test-cluster")),
        EngineInput::new(),
    )
    .await
    .unwrap();
    // The live sub's ack inbox is subscribed again.
    assert!(t
        .subscribed
        .lock()
        .unwrap()
        .iter()
        .any(|(s, r)| s == "_INBOX.ack7" && *r == Route::Ack(7)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let got: Vec<pb::MsgProto> = t
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == "_INBOX.live")
            .map(|(_, p)| pb::MsgProto::decode(p.clone()).unwrap())
            .collect();
        // Seq 3 (new) and seq 2 (overdue, redelivered).
        if got.len() >= 2 {
            assert!(got.iter().any(|m| m.sequence == 3 && !m.redelivered));
            assert!(got.iter().any(|m| m.sequence == 2 && m.redelivered));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!t
        .published
        .lock()
        .unwrap()
        .iter()
        .any(|(s, _)| s == "_INBOX.off"));
    let snap = h.snapshot().await.unwrap();
    assert_eq!(snap.store_type, "FILE");
    assert_eq!(snap.clients.len(), 1);
    let subs = &snap.channels[0].subs;
    assert_eq!(subs.len(), 2);
    assert!(subs.iter().any(|s| s.is_offline && s.durable_name == "dur"));
    h.shutdown().await;
}

#[tokio::test]
async fn recovered_cluster_id_must_match() {
    let t = Arc::new(Recorder::default());
    let err = start(
        BrokerConfig::for_tests(),
        t,
        Box::new(recovered("other")),
        EngineInput::new(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "cluster ID \"test-cluster\" does not match recovered value of \"other\""
    );
}

/// Feeds one message to the engine as the transport would.
fn inject(sink: &crate::transport::Sink, route: Route, reply: &str, payload: impl Message) {
    sink(crate::transport::Inbound {
        route,
        subject: String::new(),
        reply: Some(reply.to_string()),
        payload: payload.encode_to_vec().into(),
        origin: None,
    });
}

/// An engine on a [`Recorder`] with `max_msgs` 1, no heartbeats, and client "c" connected.
/// Register client `c` (connID `conn`); the engine answers on `_INBOX.r1`.
fn connect_c(sink: &crate::transport::Sink) {
    inject(
        sink,
        Route::Connect,
        "_INBOX.r1",
        pb::ConnectRequest {
            client_id: "c".into(),
            heartbeat_inbox: "_INBOX.hb".into(),
            protocol: 1,
            conn_id: Bytes::from_static(b"conn"),
            ..Default::default()
        },
    );
}

async fn limited_engine() -> (super::EngineHandle, Arc<Recorder>, crate::transport::Sink) {
    let mut cfg = BrokerConfig::for_tests();
    cfg.hb_interval = Duration::from_secs(3600);
    cfg.limits.global.max_msgs = Some(1);
    let t = Arc::new(Recorder::default());
    let input = EngineInput::new();
    let sink = input.sink();
    let h = start(
        cfg.clone(),
        t.clone(),
        Box::new(MemoryStore::new(cfg.limits.clone())),
        input,
    )
    .await
    .unwrap();
    connect_c(&sink);
    (h, t, sink)
}

fn publish(sink: &crate::transport::Sink, guid: &str) {
    inject(
        sink,
        Route::Publish,
        "_INBOX.r3",
        pb::PubMsg {
            client_id: "c".into(),
            guid: guid.into(),
            subject: "ch".into(),
            data: Bytes::from_static(b"x"),
            ..Default::default()
        },
    )
}

/// Waits until `inbox` got seq 1 with that `redelivered` flag.
async fn wait_seq1(t: &Recorder, inbox: &str, redelivered: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let seen = t
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == inbox)
            .map(|(_, p)| pb::MsgProto::decode(p.clone()).unwrap())
            .any(|m| m.sequence == 1 && m.redelivered == redelivered);
        if seen {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no delivery");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn queue_redelivery_count_of_a_vanished_message_is_forgotten() {
    let (h, t, sink) = limited_engine().await;
    inject(
        &sink,
        Route::Subscribe,
        "_INBOX.r2",
        pb::SubscriptionRequest {
            client_id: "c".into(),
            subject: "ch".into(),
            q_group: "g".into(),
            inbox: "_INBOX.q".into(),
            max_in_flight: 10,
            ack_wait_in_secs: -30,
            ..Default::default()
        },
    );
    publish(&sink, "g1");
    wait_seq1(&t, "_INBOX.q", true).await;
    // max_msgs 1: seq 2 drops seq 1, which the next ack expiry treats as acknowledged.
    publish(&sink, "g2");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let (pending, counted) = h
            .inspect(|e| {
                let g = &e.channels["ch"].queues["g"];
                let pending = g.members.iter().any(|m| e.subs[m].pending.contains_key(&1));
                (pending, g.redeliveries.contains_key(&1))
            })
            .await
            .unwrap();
        if !pending {
            assert!(!counted, "redelivery count of a vanished message kept");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seq 1 still pending"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.shutdown().await;
}

#[tokio::test]
async fn durable_resume_forgets_redelivery_count_of_a_vanished_message() {
    let (h, t, sink) = limited_engine().await;
    let sub = |inbox: &str| pb::SubscriptionRequest {
        client_id: "c".into(),
        subject: "ch".into(),
        inbox: inbox.into(),
        durable_name: "d".into(),
        max_in_flight: 10,
        ack_wait_in_secs: -30,
        ..Default::default()
    };
    inject(&sink, Route::Subscribe, "_INBOX.r2", sub("_INBOX.d1"));
    publish(&sink, "g1");
    wait_seq1(&t, "_INBOX.d1", true).await;
    // Offline with seq 1 pending (and counted), which seq 2 then drops.
    inject(
        &sink,
        Route::SubClose,
        "_INBOX.r4",
        pb::UnsubscribeRequest {
            client_id: "c".into(),
            subject: "ch".into(),
            inbox: "_INBOX.d1".into(),
            ..Default::default()
        },
    );
    publish(&sink, "g2");
    inject(&sink, Route::Subscribe, "_INBOX.r5", sub("_INBOX.d2"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let state = h
            .inspect(|e| {
                e.subs
                    .values()
                    .find(|s| s.inbox == "_INBOX.d2" && !s.offline)
                    .map(|s| (s.pending.contains_key(&1), s.redeliveries.contains_key(&1)))
            })
            .await
            .unwrap();
        if let Some((pending, counted)) = state {
            assert!(!pending, "a vanished message is not pending after resume");
            assert!(!counted, "redelivery count of a vanished message kept");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not resumed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.shutdown().await;
}

/// A message store whose flush always fails (a full or broken disk).
struct FailingMsgs(Box<dyn crate::store::MsgStore>);

impl crate::store::MsgStore for FailingMsgs {
    fn store(&mut self, msg: pb::MsgProto) -> StoreResult<u64> {
        self.0.store(msg)
    }
    fn lookup(&self, seq: u64) -> Option<pb::MsgProto> {
        self.0.lookup(seq)
    }
    fn first_sequence(&self) -> u64 {
        self.0.first_sequence()
    }
    fn last_sequence(&self) -> u64 {
        self.0.last_sequence()
    }
    fn last_timestamp(&self) -> i64 {
        self.0.last_timestamp()
    }
    fn state(&self) -> (u64, u64) {
        self.0.state()
    }
    fn sequence_for_timestamp(&self, ts: i64) -> u64 {
        self.0.sequence_for_timestamp(ts)
    }
    fn expire(&mut self, now: i64) -> Option<i64> {
        self.0.expire(now)
    }
    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Err(crate::store::StoreError::Other("disk full".into()))).boxed()
    }
}

/// A memory store whose channels cannot make messages durable.
struct FailingStore(MemoryStore);

impl Store for FailingStore {
    fn store_type(&self) -> &'static str {
        "FILE"
    }
    fn recover(&mut self) -> BoxFuture<'_, StoreResult<Option<RecoveredState>>> {
        ready(Ok(None)).boxed()
    }
    delegate_store!(0);
    fn create_channel(&mut self, name: &str) -> StoreResult<crate::store::ChannelStore> {
        let mut ch = self.0.create_channel(name)?;
        ch.msgs = Box::new(FailingMsgs(ch.msgs));
        Ok(ch)
    }
    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }
    fn close(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        ready(Ok(())).boxed()
    }
}

#[tokio::test]
async fn a_failed_store_flush_is_never_acknowledged_as_success() {
    let mut cfg = BrokerConfig::for_tests();
    cfg.hb_interval = Duration::from_secs(3600);
    let t = Arc::new(Recorder::default());
    let input = EngineInput::new();
    let sink = input.sink();
    let _h = start(
        cfg.clone(),
        t.clone(),
        Box::new(FailingStore(MemoryStore::new(cfg.limits.clone()))),
        input,
    )
    .await
    .unwrap();
    connect_c(&sink);
    inject(
        &sink,
        Route::Subscribe,
        "_INBOX.r2",
        pb::SubscriptionRequest {
            client_id: "c".into(),
            subject: "ch".into(),
            inbox: "_INBOX.sub".into(),
            max_in_flight: 10,
            ack_wait_in_secs: 30,
            ..Default::default()
        },
    );
    // The subscription is live before the publish's batch.
    response_to(&t, "_INBOX.r2").await;
    publish(&sink, "g1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let ack = loop {
        let ack = t
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == "_INBOX.r3")
            .find_map(|(_, p)| pb::PubAck::decode(p.clone()).ok());
        if let Some(a) = ack {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "no PubAck");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(ack.guid, "g1");
    assert_eq!(ack.error, "disk full");
    // A batch's deliveries go out before its PubAcks: none went to the live subscriber.
    let delivered = t
        .published
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| s == "_INBOX.sub")
        .count();
    assert_eq!(delivered, 0, "a message whose flush failed was delivered");
}

/// A FILE store whose flushes start late, so what is on disk when a response goes out is
/// exactly what a crash (`kill -9`) at that moment would leave.
struct SlowFlush {
    inner: crate::store::FileStore,
    delay: Duration,
}

impl Store for SlowFlush {
    fn store_type(&self) -> &'static str {
        "FILE"
    }
    fn recover(&mut self) -> BoxFuture<'_, StoreResult<Option<RecoveredState>>> {
        self.inner.recover()
    }
    delegate_store!(inner);
    fn create_channel(&mut self, name: &str) -> StoreResult<crate::store::ChannelStore> {
        self.inner.create_channel(name)
    }
    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        let delay = self.delay;
        async move {
            tokio::time::sleep(delay).await;
            self.inner.flush().await
        }
        .boxed()
    }
    fn close(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        self.inner.close()
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Waits for the first message published on `subject` and copies the store directory at once:
/// the crash image of that moment.
async fn image_at_response(t: &Recorder, subject: &str, dir: &std::path::Path) -> Bytes {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = t
            .published
            .lock()
            .unwrap()
            .iter()
            .find(|(s, _)| s == subject)
            .map(|(_, p)| p.clone());
        if let Some(p) = got {
            copy_dir(dir, &dir.with_extension("image"));
            return p;
        }
        assert!(tokio::time::Instant::now() < deadline, "no response");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Recovers a copy of a store directory (and removes the copy).
async fn recover_image(dir: &std::path::Path) -> RecoveredState {
    let image = dir.with_extension("image");
    let cfg = BrokerConfig::for_tests();
    let mut fs = crate::store::FileStore::new(&image, cfg.limits, Default::default());
    let r = fs.recover().await.unwrap().expect("a recovered store");
    drop(fs);
    let _ = std::fs::remove_dir_all(&image);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_sent_after_the_records_they_promise_are_flushed() {
    let dir = std::env::temp_dir().join(format!(
        "stan-engine-held-{}",
        stan_protocol::subjects::new_nuid()
    ));
    let mut cfg = BrokerConfig::for_tests();
    cfg.hb_interval = Duration::from_secs(3600);
    let t = Arc::new(Recorder::default());
    let input = EngineInput::new();
    let sink = input.sink();
    let store = SlowFlush {
        inner: crate::store::FileStore::new(&dir, cfg.limits.clone(), Default::default()),
        delay: Duration::from_millis(150),
    };
    let h = start(cfg, t.clone(), Box::new(store), input).await.unwrap();
    connect_c(&sink);
    let resp = image_at_response(&t, "_INBOX.r1", &dir).await;
    assert_eq!(pb::ConnectResponse::decode(resp).unwrap().error, "");
    let r = recover_image(&dir).await;
    assert_eq!(
        r.clients.len(),
        1,
        "connect answered before the client was stored"
    );

    publish(&sink, "g1");
    inject(
        &sink,
        Route::Subscribe,
        "_INBOX.r2",
        pb::SubscriptionRequest {
            client_id: "c".into(),
            subject: "ch".into(),
            inbox: "_INBOX.d".into(),
            durable_name: "dur".into(),
            max_in_flight: 10,
            ack_wait_in_secs: 30,
            start_position: pb::StartPosition::First as i32,
            ..Default::default()
        },
    );
    let resp = image_at_response(&t, "_INBOX.r2", &dir).await;
    let ack_inbox = pb::SubscriptionResponse::decode(resp).unwrap().ack_inbox;
    assert!(!ack_inbox.is_empty());
    // The delivery follows the response.
    wait_seq1(&t, "_INBOX.d", false).await;
    let first = t
        .published
        .lock()
        .unwrap()
        .iter()
        .position(|(s, _)| s == "_INBOX.r2" || s == "_INBOX.d")
        .unwrap();
    assert_eq!(t.published.lock().unwrap()[first].0, "_INBOX.r2");
    let r = recover_image(&dir).await;
    let ch = r.channels.iter().find(|c| c.name == "ch").expect("channel");
    assert!(
        ch.subs.iter().any(|s| s.record.durable_name == "dur"),
        "durable answered before its record was stored"
    );

    // Closing the client takes the durable offline: answered once that is stored.
    inject(
        &sink,
        Route::Close,
        "_INBOX.r4",
        pb::CloseRequest {
            client_id: "c".into(),
        },
    );
    let resp = image_at_response(&t, "_INBOX.r4", &dir).await;
    assert_eq!(pb::CloseResponse::decode(resp).unwrap().error, "");
    let r = recover_image(&dir).await;
    assert!(r.clients.is_empty(), "close answered before it was stored");
    let ch = r.channels.iter().find(|c| c.name == "ch").expect("channel");
    assert!(ch
        .subs
        .iter()
        .any(|s| s.record.durable_name == "dur" && s.record.is_closed));
    h.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A transport whose heartbeat probes are answered only when the test says so.
#[derive(Default)]
struct HeldProbes {
    rec: Recorder,
    probes: Mutex<Vec<(String, tokio::sync::oneshot::Sender<Option<Bytes>>)>>,
    /// Probes whose answer (or timeout) the engine's probe task has received.
    resolved: Arc<std::sync::atomic::AtomicUsize>,
}

impl Transport for HeldProbes {
    fn subscribe(
        &self,
        subject: &str,
        route: Route,
    ) -> Result<Box<dyn TransportSubscription>, TransportError> {
        self.rec.subscribe(subject, route)
    }
    fn publish(&self, subject: &str, reply: Option<&str>, payload: Bytes) {
        self.rec.publish(subject, reply, payload)
    }
    fn request(&self, subject: &str, _: Bytes, _: Duration) -> BoxFuture<'static, Option<Bytes>> {
        if subject != "_INBOX.hb" {
            // Not a heartbeat (the start-up check for another server): nobody answers.
            return async { None }.boxed();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.probes.lock().unwrap().push((subject.to_string(), tx));
        let resolved = self.resolved.clone();
        async move {
            let answer = rx.await.ok().flatten();
            // The probe task reports to the engine in this same poll.
            resolved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            answer
        }
        .boxed()
    }
    fn flush(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
    fn close(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}

/// The response published to `reply`, waiting for it.
async fn response_to(t: &Recorder, reply: &str) -> Bytes {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let found = t
            .published
            .lock()
            .unwrap()
            .iter()
            .find(|(s, _)| s == reply)
            .map(|(_, p)| p.clone());
        if let Some(p) = found {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no response on {reply}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Clients without a connID (the Java client) were matched by connID: the unanswered probe of
/// an earlier registration closed a new registration of the same client ID.
#[tokio::test]
async fn a_stale_heartbeat_result_does_not_hit_a_new_registration_without_conn_id() {
    let mut cfg = BrokerConfig::for_tests();
    cfg.hb_interval = Duration::from_millis(10);
    cfg.hb_fail_count = 0; // the first missed heartbeat closes a client
    let t = Arc::new(HeldProbes::default());
    let input = EngineInput::new();
    let sink = input.sink();
    let h = start(
        cfg.clone(),
        t.clone(),
        Box::new(MemoryStore::new(cfg.limits.clone())),
        input,
    )
    .await
    .unwrap();
    let connect = |reply: &str| {
        inject(
            &sink,
            Route::Connect,
            reply,
            pb::ConnectRequest {
                client_id: "j".into(),
                heartbeat_inbox: "_INBOX.hb".into(),
                protocol: 1,
                ..Default::default() // no connID
            },
        )
    };
    connect("_INBOX.c1");
    let resp = pb::ConnectResponse::decode(response_to(&t.rec, "_INBOX.c1").await).unwrap();
    assert_eq!(resp.error, "");
    // The first registration's heartbeat goes out and stays unanswered for now.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while t.probes.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no heartbeat sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    inject(
        &sink,
        Route::Close,
        "_INBOX.x1",
        pb::CloseRequest {
            client_id: "j".into(),
        },
    );
    assert_eq!(
        pb::CloseResponse::decode(response_to(&t.rec, "_INBOX.x1").await)
            .unwrap()
            .error,
        ""
    );
    connect("_INBOX.c2");
    let resp = pb::ConnectResponse::decode(response_to(&t.rec, "_INBOX.c2").await).unwrap();
    assert_eq!(resp.error, "");
    // Now the first registration's probe times out.
    let (_, stale) = t.probes.lock().unwrap().remove(0);
    stale.send(None).unwrap();
    // The engine gets that result before the publish below (one queue, in order).
    while t.resolved.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // The new registration is still there: its publish is stored.
    inject(
        &sink,
        Route::Publish,
        "_INBOX.p1",
        pb::PubMsg {
            client_id: "j".into(),
            guid: "g".into(),
            subject: "ch".into(),
            data: Bytes::from_static(b"x"),
            ..Default::default()
        },
    );
    let ack = pb::PubAck::decode(response_to(&t.rec, "_INBOX.p1").await).unwrap();
    assert_eq!(ack.error, "", "the new registration was closed");
    // Probes still held would keep the shutdown waiting: they time out now.
    t.probes.lock().unwrap().clear();
    h.shutdown().await;
}

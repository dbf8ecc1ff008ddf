//! Fuzzing entry point of the engine: arbitrary bytes on every request route of a running
//! engine on an in-memory transport and store (see `docs/fuzzing.md`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use prost::Message;
use stan_protocol::pb;

use super::{start, EngineInput};
use crate::config::BrokerConfig;
use crate::store::MemoryStore;
use crate::transport::{Inbound, Route, Sink, Transport, TransportError, TransportSubscription};

/// The reply subject of the last request of a run: its answer shows everything before it was
/// processed.
const DONE_INBOX: &str = "_INBOX.fuzz.done";

/// A transport that drops what the engine publishes, noting only the answer on [`DONE_INBOX`].
#[derive(Default)]
struct NullTransport {
    done: AtomicBool,
}

struct NoSub;
impl TransportSubscription for NoSub {}

impl Transport for NullTransport {
    fn subscribe(
        &self,
        _subject: &str,
        _route: Route,
    ) -> Result<Box<dyn TransportSubscription>, TransportError> {
        Ok(Box::new(NoSub))
    }
    fn publish(&self, subject: &str, _reply: Option<&str>, _payload: Bytes) {
        if subject == DONE_INBOX {
            self.done.store(true, Ordering::Release);
        }
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

fn inject(sink: &Sink, route: Route, reply: Option<&str>, payload: Bytes) {
    sink(Inbound {
        route,
        subject: String::new(),
        reply: reply.map(str::to_string),
        payload,
        origin: None,
    });
}

/// Feeds `data` to a fresh engine as requests, for fuzzing and for replaying fuzz inputs in
/// tests.
///
/// The engine starts on a memory store with client `c` connected (connection ID `conn`),
/// subscription 1 of `c` on channel `foo` and one message published to `foo`. `data` is then a
/// sequence of `[route][length: u16 LE][payload]` requests: the low three bits of `route` pick
/// connect, ping, publish, subscribe, unsubscribe, subscription close, close or ack; bit 3 set
/// sends it without a reply subject; for acks, the high four bits are the subscription ID. A
/// final ping's answer shows every request was processed. Panics if the engine task stops
/// (a panic inside it) before answering.
#[doc(hidden)]
pub fn fuzz_requests(data: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(data));
}

async fn run(data: &[u8]) {
    let mut cfg = BrokerConfig::for_tests();
    cfg.hb_interval = Duration::from_secs(3600);
    let transport = Arc::new(NullTransport::default());
    let input = EngineInput::new();
    let sink = input.sink();
    let store = Box::new(MemoryStore::new(cfg.limits.clone()));
    let h = start(cfg, transport.clone(), store, input)
        .await
        .expect("the engine starts");
    let reply = Some("_INBOX.fuzz.reply");
    let setup: [(Route, Bytes); 3] = [
        (
            Route::Connect,
            pb::ConnectRequest {
                client_id: "c".into(),
                heartbeat_inbox: "_INBOX.hb".into(),
                protocol: 1,
                conn_id: Bytes::from_static(b"conn"),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        ),
        (
            Route::Subscribe,
            pb::SubscriptionRequest {
                client_id: "c".into(),
                subject: "foo".into(),
                inbox: "_INBOX.sub".into(),
                max_in_flight: 10,
                ack_wait_in_secs: 30,
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        ),
        (
            Route::Publish,
            pb::PubMsg {
                client_id: "c".into(),
                guid: "g0".into(),
                subject: "foo".into(),
                data: Bytes::from_static(b"x"),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        ),
    ];
    for (route, payload) in setup {
        inject(&sink, route, reply, payload);
    }
    let mut rest = data;
    while let Some((&r, tail)) = rest.split_first() {
        let len = match tail {
            [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
            _ => 0,
        };
        let body = tail.get(2..).unwrap_or(&[]);
        let take = len.min(body.len());
        let payload = Bytes::copy_from_slice(&body[..take]);
        rest = &body[take..];
        let route = match r & 7 {
            0 => Route::Connect,
            1 => Route::Ping,
            2 => Route::Publish,
            3 => Route::Subscribe,
            4 => Route::Unsubscribe,
            5 => Route::SubClose,
            6 => Route::Close,
            _ => Route::Ack(u64::from(r >> 4)),
        };
        inject(
            &sink,
            route,
            (r & 8 == 0).then_some("_INBOX.fuzz.reply"),
            payload,
        );
        tokio::task::yield_now().await;
    }
    let ping = pb::Ping {
        conn_id: Bytes::from_static(b"conn"),
    };
    inject(
        &sink,
        Route::Ping,
        Some(DONE_INBOX),
        ping.encode_to_vec().into(),
    );
    while !transport.done.load(Ordering::Acquire) {
        assert!(
            h.snapshot().await.is_some(),
            "the engine stopped before answering every request"
        );
        tokio::task::yield_now().await;
    }
    h.shutdown().await;
}

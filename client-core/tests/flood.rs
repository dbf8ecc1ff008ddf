//! The connection task stays fair under a flood of inbound messages: pub-ack timeouts and
//! pings still come while PubAcks or inbox messages keep arriving.
//!
//! A scripted STAN server on a raw NATS connection plays the server, so that nothing answers
//! what the test wants unanswered. The NATS server and the scripted server run on a runtime
//! of their own: the client's runtime can then be held while they go on sending.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{unique, wait_event, within, TestServer};
use futures::StreamExt;
use prost::Message as _;
use stan_client::{ConnectOptions, ErrorKind, Event, LostReason};
use stan_protocol::pb;
use stan_test_support::server_synced;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Inbound messages in a flood: far more than the connection task takes in a row before it
/// looks at its timers.
const FLOOD: usize = 5_000;

/// Unanswered pings the scripted server allows.
const MAX_OUT: usize = 10;

fn server_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A scripted STAN server for cluster `cluster`: it answers connect requests with `FAKE.*`
/// subjects (pinging every `ping_ms` milliseconds when not 0, `max_out` misses allowed) and forwards
/// every publish (`FAKE.pub.>`) and ping (`FAKE.ping`) it gets to the test, answering neither.
struct FakeServer {
    pubs: mpsc::UnboundedReceiver<async_nats::Message>,
    pings: mpsc::UnboundedReceiver<async_nats::Message>,
}

async fn fake_server(
    raw: &async_nats::Client,
    cluster: &str,
    ping_ms: i32,
    max_out: i32,
) -> FakeServer {
    let mut discover = raw
        .subscribe(format!("_STAN.discover.{cluster}"))
        .await
        .unwrap();
    let mut pub_sub = raw.subscribe("FAKE.pub.>").await.unwrap();
    let mut ping_sub = raw.subscribe("FAKE.ping").await.unwrap();
    server_synced(raw).await;
    let r = raw.clone();
    tokio::spawn(async move {
        while let Some(req) = discover.next().await {
            let resp = pb::ConnectResponse {
                pub_prefix: "FAKE.pub".into(),
                sub_requests: "FAKE.sub".into(),
                unsub_requests: "FAKE.unsub".into(),
                close_requests: "FAKE.close".into(),
                sub_close_requests: "FAKE.subclose".into(),
                ping_requests: if ping_ms == 0 { "" } else { "FAKE.ping" }.into(),
                ping_interval: -ping_ms,
                ping_max_out: max_out,
                protocol: 1,
                ..Default::default()
            };
            let _ = r
                .publish(req.reply.unwrap(), resp.encode_to_vec().into())
                .await;
        }
    });
    let (pub_tx, pubs) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = pub_sub.next().await {
            let _ = pub_tx.send(m);
        }
    });
    let (ping_tx, pings) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = ping_sub.next().await {
            let _ = ping_tx.send(m);
        }
    });
    FakeServer { pubs, pings }
}

/// On `server_rt`: a test NATS server, a raw connection to it and a scripted STAN server for
/// `cluster` on that connection (see [`fake_server`]).
fn start_fake(
    server_rt: &Runtime,
    cluster: &str,
    ping_ms: i32,
    max_out: i32,
) -> (TestServer, async_nats::Client, FakeServer) {
    server_rt.block_on(async {
        let srv = TestServer::start().await;
        let raw = async_nats::connect(srv.url()).await.unwrap();
        let fake = fake_server(&raw, cluster, ping_ms, max_out).await;
        (srv, raw, fake)
    })
}

/// Holds the calling thread (the client's runtime: the client cannot read) while the server's
/// runtime answers `pubmsg` with `backlog` PubAcks of unknown guids and then its own PubAck,
/// all flushed; returns the publish's guid.
fn pub_ack_backlog(
    server_rt: &Runtime,
    raw: &async_nats::Client,
    pubmsg: async_nats::Message,
    backlog: usize,
) -> String {
    let reply = pubmsg.reply.clone().unwrap();
    let guid = pb::PubMsg::decode(pubmsg.payload.clone()).unwrap().guid;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    server_rt.spawn({
        let raw = raw.clone();
        let guid = guid.clone();
        async move {
            let foreign = (0..backlog).map(|i| format!("foreign-{i}"));
            for guid in foreign.chain([guid]) {
                let ack = pb::PubAck {
                    guid,
                    error: String::new(),
                };
                raw.publish(reply.clone(), ack.encode_to_vec().into())
                    .await
                    .unwrap();
            }
            raw.flush().await.unwrap();
            done_tx.send(()).unwrap();
        }
    });
    done_rx.recv().unwrap();
    guid
}

/// A publish whose PubAck only comes behind a backlog of thousands of foreign PubAcks, all
/// arriving after its deadline passed, times out: the connection task looks at its pub-ack
/// timer between inbound messages instead of taking every queued one first.
#[test]
fn a_pub_ack_timeout_is_not_held_back_by_a_backlog_of_pub_acks() {
    let server_rt = server_runtime();
    let client_rt = client_runtime();
    let cluster = unique("fake");
    let (srv, raw, mut fake) = start_fake(&server_rt, &cluster, 0, 3);
    let wait = Duration::from_millis(300);
    client_rt.block_on(async {
        let client = ConnectOptions::new(cluster.clone(), unique("c"))
            .nats_url(srv.url())
            .pub_ack_wait(wait)
            .connect()
            .await
            .unwrap();
        let publish = client.start_publish("ch", "no ack in time").unwrap();
        let pubmsg = within("the publish", fake.pubs.recv()).await.unwrap();
        assert_eq!(
            pub_ack_backlog(&server_rt, &raw, pubmsg, FLOOD),
            publish.guid()
        );
        // The runtime stays held until the publish's deadline has passed.
        std::thread::sleep(wait * 2);

        let outcome = within("the publish outcome", publish).await;
        let err = outcome.expect_err("the PubAck came after the deadline, behind the backlog");
        assert_eq!(err.kind(), ErrorKind::PublishAckTimeout);
        client.close().await.unwrap_or(());
    });
    drop(client_rt);
    server_rt.block_on(async move { drop(srv) });
}

/// PubAcks that pile up while the client cannot read (more than the NATS library queues for a
/// subscription by default) are all taken in once it reads again: none is dropped, so the
/// publish whose PubAck comes last completes instead of timing out.
#[test]
fn a_backlog_of_pub_acks_larger_than_the_nats_default_queue_loses_none() {
    /// Above async-nats's default subscription capacity (65,536).
    const BACKLOG: usize = 100_000;
    let server_rt = server_runtime();
    let client_rt = client_runtime();
    let cluster = unique("fake");
    let (srv, raw, mut fake) = start_fake(&server_rt, &cluster, 0, 3);
    client_rt.block_on(async {
        let client = ConnectOptions::new(cluster.clone(), unique("c"))
            .nats_url(srv.url())
            .pub_ack_wait(Duration::from_secs(5))
            .connect()
            .await
            .unwrap();
        let publish = client
            .start_publish("ch", "acked behind the backlog")
            .unwrap();
        let pubmsg = within("the publish", fake.pubs.recv()).await.unwrap();
        let expected = pub_ack_backlog(&server_rt, &raw, pubmsg, BACKLOG);

        let outcome = within("the publish outcome", publish).await;
        assert_eq!(
            outcome.expect("the PubAck behind the backlog arrived"),
            expected
        );
        client.close().await.unwrap_or(());
    });
    drop(client_rt);
    server_rt.block_on(async move { drop(srv) });
}

/// A ping tick that is due is not held back behind a backlog of inbox messages: with one
/// unanswered ping allowed, the tick that finds the first ping unanswered ends the session,
/// although a ping response arrives behind the backlog. (Taking the whole backlog first would
/// count that late response and send another ping.)
#[test]
fn a_due_ping_tick_is_not_held_back_by_a_backlog_of_inbox_messages() {
    let server_rt = server_runtime();
    let client_rt = client_runtime();
    let cluster = unique("fake");
    let interval = Duration::from_millis(100);
    let (srv, raw, mut fake) = start_fake(&server_rt, &cluster, interval.as_millis() as i32, 1);
    client_rt.block_on(async {
        let client = ConnectOptions::new(cluster.clone(), unique("c"))
            .nats_url(srv.url())
            .auto_resume(false)
            .connect()
            .await
            .unwrap();
        let mut events = client.events();
        let ping = within("a ping", fake.pings.recv()).await.unwrap();
        let reply = ping.reply.unwrap().to_string();
        let junk = format!("{}.junk.1", &reply[..reply.find(".ping.").unwrap()]);

        // Hold this runtime while the server sends the backlog with a ping response last, and
        // until the next tick is due.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        server_rt.spawn({
            let raw = raw.clone();
            async move {
                let payload = Bytes::from_static(&[0u8; 64]);
                for _ in 0..FLOOD {
                    raw.publish(junk.clone(), payload.clone()).await.unwrap();
                }
                let answer = pb::PingResponse::default();
                raw.publish(reply, answer.encode_to_vec().into())
                    .await
                    .unwrap();
                raw.flush().await.unwrap();
                done_tx.send(()).unwrap();
            }
        });
        done_rx.recv().unwrap();
        std::thread::sleep(interval * 3);

        let lost = wait_event(&mut events, |e| matches!(e, Event::ConnectionLost { .. })).await;
        assert!(
            matches!(
                lost,
                Event::ConnectionLost {
                    reason: LostReason::PingsExhausted,
                    ..
                }
            ),
            "{lost:?}"
        );
        let mut more_pings = 0;
        while fake.pings.try_recv().is_ok() {
            more_pings += 1;
        }
        assert_eq!(more_pings, 0, "no ping after the unanswered one");
        client.close().await.unwrap_or(());
    });
    drop(client_rt);
    server_rt.block_on(async move { drop(srv) });
}

/// While inbox messages flood in without end, pings keep going out and a server that stopped
/// answering them is still found dead (the session is lost, pings exhausted).
#[test]
fn pings_go_out_and_a_dead_server_is_found_during_an_endless_flood() {
    let server_rt = server_runtime();
    let client_rt = client_runtime();
    let cluster = unique("fake");
    let (srv, raw, mut fake) = start_fake(&server_rt, &cluster, 20, MAX_OUT as i32);
    let stop = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicUsize::new(0));
    client_rt.block_on(async {
        let client = ConnectOptions::new(cluster.clone(), unique("c"))
            .nats_url(srv.url())
            .auto_resume(false)
            .connect()
            .await
            .unwrap();
        let mut events = client.events();
        // The inbox subject: the reply of the first ping, minus its `.ping.<n>` tail.
        let ping = within("a ping", fake.pings.recv()).await.unwrap();
        let reply = ping.reply.unwrap().to_string();
        let base = reply[..reply.find(".ping.").unwrap()].to_string();

        // Several publishers, each sending as fast as it can, until the session is lost.
        for p in 0..3 {
            let raw = raw.clone();
            let stop = stop.clone();
            let flooded = flooded.clone();
            let subject = format!("{base}.flood.{p}");
            server_rt.spawn(async move {
                let payload = Bytes::from_static(&[0u8; 64]);
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100 {
                        if raw.publish(subject.clone(), payload.clone()).await.is_err() {
                            return;
                        }
                    }
                    flooded.fetch_add(100, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            });
        }
        let lost = wait_event(&mut events, |e| matches!(e, Event::ConnectionLost { .. })).await;
        stop.store(true, Ordering::Relaxed);
        assert!(
            matches!(
                lost,
                Event::ConnectionLost {
                    reason: LostReason::PingsExhausted,
                    ..
                }
            ),
            "{lost:?}"
        );
        // Every allowed ping went out (the first was taken above).
        for _ in 1..MAX_OUT {
            within("a ping", fake.pings.recv()).await.unwrap();
        }
        assert!(flooded.load(Ordering::Relaxed) > 0, "the flood ran");
        client.close().await.unwrap_or(());
    });
    stop.store(true, Ordering::Relaxed);
    drop(client_rt);
    server_rt.block_on(async move { drop(srv) });
}

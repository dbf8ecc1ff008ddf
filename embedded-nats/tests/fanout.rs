//! Core-NATS fan-out under load: a subscriber that keeps reading is never cut, however fast
//! the publisher; one that stops reading is cut as a slow consumer and the publisher goes on.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{opts, wait_for, Raw};
use futures::StreamExt;
use stan_embedded_nats::{Server, ServerOptions};
use tokio::time::timeout;

/// Outbound buffer per connection in these tests: small, so that the runs below exceed it
/// many times over.
const MAX_PENDING: usize = 4 * 1024 * 1024;
/// Message size of the runs.
const SIZE: usize = 128;
/// Longest wait for a whole run's messages (debug builds on a shared machine).
const RUN_WAIT: Duration = Duration::from_secs(60);

async fn server() -> Server {
    Server::start(ServerOptions {
        max_pending: MAX_PENDING,
        ..opts()
    })
    .await
    .expect("server starts")
}

/// Receives `n` messages on `sub`, checking their order (the payload starts with the index).
/// Every 1,000 messages the reader pauses briefly, so the publisher is faster than it.
async fn receive_all(mut sub: async_nats::Subscriber, n: usize) -> usize {
    let mut got = 0;
    while got < n {
        let Ok(Some(m)) = timeout(RUN_WAIT, sub.next()).await else {
            break;
        };
        let idx = u32::from_be_bytes(m.payload[..4].try_into().expect("index"));
        assert_eq!(idx as usize, got, "messages arrive in order");
        got += 1;
        if got % 1000 == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    got
}

/// Publishes `n` indexed messages of [`SIZE`] bytes on `subject`, then flushes.
async fn publish_all(client: &async_nats::Client, subject: &str, n: usize) {
    let mut body = vec![b'x'; SIZE];
    for i in 0..n {
        body[..4].copy_from_slice(&(i as u32).to_be_bytes());
        client
            .publish(subject.to_string(), Bytes::copy_from_slice(&body))
            .await
            .expect("publish");
    }
    timeout(RUN_WAIT, client.flush())
        .await
        .expect("flush within timeout")
        .expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_that_keeps_reading_gets_everything() {
    // 400,000 x 128 B is about 60 MB on the wire: 14 times the outbound buffer.
    let n = 400_000;
    let server = server().await;
    let sub_client = async_nats::ConnectOptions::new()
        .subscription_capacity(1024 * 1024)
        .connect(server.client_url())
        .await
        .unwrap();
    let sub = sub_client.subscribe("fan").await.unwrap();
    stan_test_support::server_synced(&sub_client).await;
    let reader = tokio::spawn(receive_all(sub, n));
    let publisher = async_nats::connect(server.client_url()).await.unwrap();
    publish_all(&publisher, "fan", n).await;
    let got = reader.await.unwrap();
    assert_eq!(got, n, "every message delivered");
    assert_eq!(server.num_connections(), 2, "nobody was cut");
    assert_eq!(
        sub_client.connection_state(),
        async_nats::connection::State::Connected
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_that_stops_reading_is_cut_publisher_goes_on() {
    // 8 times the outbound buffer: more than the buffer plus loopback socket buffers hold.
    let n = 8 * MAX_PENDING / SIZE;
    let server = server().await;
    // A raw connection that subscribes and then never reads again.
    let mut stuck = Raw::connect(&server).await;
    stuck.send("SUB fan 1\r\n").await;
    stuck.sync().await;
    // A subscriber that keeps reading gets everything.
    let sub_client = async_nats::ConnectOptions::new()
        .subscription_capacity(1024 * 1024)
        .connect(server.client_url())
        .await
        .unwrap();
    let sub = sub_client.subscribe("fan").await.unwrap();
    stan_test_support::server_synced(&sub_client).await;
    let reader = tokio::spawn(receive_all(sub, n));
    let publisher = async_nats::connect(server.client_url()).await.unwrap();
    publish_all(&publisher, "fan", n).await;
    assert_eq!(
        reader.await.unwrap(),
        n,
        "the reading subscriber got everything"
    );
    // The stuck one was cut: draining it ends in EOF well before all messages.
    let drained = stuck.expect_closed().await;
    assert!(drained < n * SIZE, "drained {drained}");
    wait_for(|| server.num_connections() == 2).await;
    // The publisher's connection is intact.
    publisher.publish("fan", "after".into()).await.unwrap();
    timeout(Duration::from_secs(5), publisher.flush())
        .await
        .unwrap()
        .unwrap();
    server.shutdown().await;
}

/// In-process publishes cannot be stalled: a burst of them may exceed `max_pending`, up to
/// `max_pending_in_process`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_burst_beyond_max_pending_reaches_a_reader() {
    let server = Server::start(ServerOptions {
        max_pending: 1024 * 1024,
        max_pending_in_process: 16 * 1024 * 1024,
        ..opts()
    })
    .await
    .unwrap();
    let sub_client = async_nats::ConnectOptions::new()
        .subscription_capacity(1024 * 1024)
        .connect(server.client_url())
        .await
        .unwrap();
    let sub = sub_client.subscribe("fan").await.unwrap();
    stan_test_support::server_synced(&sub_client).await;
    // 8 MiB in one synchronous burst: eight times max_pending.
    let n = 8 * 1024 * 1024 / (SIZE + 32);
    let local = server.connect_local("engine");
    let mut body = vec![b'x'; SIZE];
    for i in 0..n {
        body[..4].copy_from_slice(&(i as u32).to_be_bytes());
        assert_eq!(
            local.publish("fan", None, Bytes::copy_from_slice(&body)),
            1,
            "message {i} delivered"
        );
    }
    assert_eq!(receive_all(sub, n).await, n, "every message delivered");
    assert_eq!(server.num_connections(), 1, "nobody was cut");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_publishes_cut_a_reader_that_stops_at_their_limit() {
    let limit = 4 * 1024 * 1024;
    let server = Server::start(ServerOptions {
        max_pending: 1024 * 1024,
        max_pending_in_process: limit,
        ..opts()
    })
    .await
    .unwrap();
    let mut stuck = Raw::connect(&server).await;
    stuck.send("SUB fan 1\r\n").await;
    stuck.sync().await;
    let local = server.connect_local("engine");
    let body = Bytes::from(vec![b'x'; 16 * 1024]);
    // Far more than the limit plus socket buffers: the connection is cut on the way, after
    // which publishes reach nobody.
    let sent = (0..4 * limit / body.len())
        .take_while(|_| local.publish("fan", None, body.clone()) == 1)
        .count();
    assert!(sent * body.len() < 4 * limit, "cut after {sent} messages");
    assert!(
        sent * body.len() >= limit / 2,
        "not cut before the limit: {sent}"
    );
    stuck.expect_closed().await;
    wait_for(|| server.num_connections() == 0).await;
    server.shutdown().await;
}

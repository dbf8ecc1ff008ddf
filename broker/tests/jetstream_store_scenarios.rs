//! The broker's scenario tests run again on the JETSTREAM store: `tests/common` sees that it is
//! included from here and starts every broker attached to a 3-node JetStream cluster with
//! `StoreKind::JetStream` (3 replicas) and a cluster ID of its own. The cluster is
//! `STAN_TEST_JETSTREAM_URL` (`scripts/js-cluster start DIR` writes it to `DIR/url`), or one
//! started for this test binary. (Any scenario binary can also be switched with
//! `STAN_TEST_STORE=jetstream`.)
//!
//! Three scenarios act on the embedded NATS server, which a broker attached to a cluster does
//! not have, and are skipped here (`common::skip_on_jetstream`):
//! `bad_input::oversize_payload_is_refused_by_core_nats_and_broker_stays_up` (its
//! max_payload), `protocol::embedded_auth_settings_are_applied` (its authorization) and
//! `protocol::stan_session_survives_nats_reconnect` (drops its clients).
// Each scenario file brings its own copy of `tests/common`, on purpose.
#![allow(clippy::duplicate_mod)]

#[path = "bad_input.rs"]
mod bad_input;
#[path = "durable_queue.rs"]
mod durable_queue;
#[path = "protocol.rs"]
mod protocol;
#[path = "timing.rs"]
mod timing;

mod common;

use std::fmt::Write;

use futures::StreamExt;
use stan_broker::config::{NatsMode, StoreKind};

/// The contract's escape of cluster IDs and channels in stream names: letters and digits stay,
/// every other byte becomes `_` and two hex digits.
fn esc(s: &str) -> String {
    s.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02x}");
        }
        out
    })
}

/// The names of the streams whose name contains `part`.
async fn streams_containing(js: &async_nats::jetstream::Context, part: &str) -> Vec<String> {
    let mut names = js.stream_names();
    let mut found = Vec::new();
    while let Some(name) = names.next().await {
        let name = name.expect("stream names");
        if name.contains(part) {
            found.push(name);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_really_run_on_the_jetstream_store() {
    let Some(url) = common::jetstream_url().await else {
        return;
    };
    let b = common::start_broker(|_| {}).await;
    assert_eq!(b.snapshot().await.store_type, "JETSTREAM");
    match &b.config().store {
        StoreKind::JetStream(o) => assert_eq!(o.replicas, 3),
        other => panic!("not the JETSTREAM store: {other:?}"),
    }
    match &b.config().nats {
        NatsMode::External(x) => assert_eq!(x.url, url),
        other => panic!("not attached to the cluster: {other:?}"),
    }
    assert_eq!(b.client_url(), url, "clients get the cluster's URLs");
    assert!(b.cluster_id().starts_with("test-cluster-"));

    // A message published through the broker is in the channel's replicated stream.
    let mut c = common::Conn::connect(&b.client_url(), b.cluster_id(), "js").await;
    c.publish("orders.eu", b"stored").await;
    let js = async_nats::jetstream::new(common::nats(&url).await);
    let name = format!("STAN-{}-{}", esc(b.cluster_id()), esc("orders.eu"));
    let mut stream = js.get_stream(&name).await.expect("the channel's stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.state.messages, 1);
    assert_eq!(c.close().await, "");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_of_parallel_tests_are_apart_and_their_streams_go_once_they_are_done() {
    let Some(url) = common::jetstream_url().await else {
        return;
    };
    let js = async_nats::jetstream::new(common::nats(&url).await);
    let a = common::start_broker(|_| {}).await;
    let b = common::start_broker(|_| {}).await;
    assert_ne!(a.cluster_id(), b.cluster_id());
    let mut ca = common::Conn::connect(&a.client_url(), a.cluster_id(), "same").await;
    let mut cb = common::Conn::connect(&b.client_url(), b.cluster_id(), "same").await;
    ca.publish("ch", b"a").await;
    cb.publish("ch", b"b").await;
    cb.publish("ch", b"b").await;
    assert_eq!(a.snapshot().await.channels[0].msgs, 1);
    assert_eq!(b.snapshot().await.channels[0].msgs, 2);
    let a_part = esc(a.cluster_id());
    assert!(!streams_containing(&js, &a_part).await.is_empty());

    // Once a is shut down, the next broker started deletes a's streams; b's stay.
    a.shutdown().await;
    let c = common::start_broker(|_| {}).await;
    assert_eq!(streams_containing(&js, &a_part).await, Vec::<String>::new());
    assert!(!streams_containing(&js, &esc(b.cluster_id()))
        .await
        .is_empty());
    assert_eq!(b.snapshot().await.channels[0].msgs, 2);
    c.shutdown().await;
    b.shutdown().await;
}

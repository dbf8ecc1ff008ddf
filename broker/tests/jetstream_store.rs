//! The JETSTREAM store itself: what a broker finds again after a restart or a takeover, the
//! mapping of channel limits, refusing a stream it cannot use, standing by while another broker
//! holds the lease, and stopping when the lease is taken away.
//!
//! Runs on a single-node JetStream server (the scenario suite and the failover tests use a
//! 3-node cluster).

mod common;

use std::time::Duration;

use common::{within, Conn};
use stan_broker::config::{BrokerConfig, ExternalNats, JetStreamOptions, NatsMode, StoreKind};
use stan_broker::Broker;
use stan_protocol::subjects::new_nuid;
use stan_test_support::JsCluster;

/// One single-node JetStream server per test binary would be shared; each test takes its own
/// (they run in parallel and some stop brokers abruptly).
async fn server() -> Option<JsCluster> {
    JsCluster::start(1).await
}

fn config(url: &str, cluster_id: &str, f: impl FnOnce(&mut BrokerConfig)) -> BrokerConfig {
    let mut cfg = BrokerConfig::for_tests();
    cfg.cluster_id = cluster_id.to_string();
    cfg.nats = NatsMode::External(ExternalNats {
        url: url.to_string(),
        ..Default::default()
    });
    cfg.store = StoreKind::JetStream(JetStreamOptions {
        lease_ttl: Duration::from_secs(2),
        ..JetStreamOptions::default()
    });
    f(&mut cfg);
    cfg
}

async fn start(url: &str, cluster_id: &str) -> Broker {
    Broker::start(config(url, cluster_id, |_| {}))
        .await
        .expect("broker starts")
}

fn channel<'a>(
    s: &'a stan_broker::snapshot::Snapshot,
    name: &str,
) -> &'a stan_broker::snapshot::ChannelSnapshot {
    s.channels
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("channel {name} not in {:?}", s.channels))
}

#[tokio::test]
async fn a_restarted_broker_finds_messages_subscriptions_and_clients_again() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let b = start(&url, &cid).await;
    assert_eq!(b.snapshot().await.store_type, "JETSTREAM");
    let mut c = Conn::connect(&url, &cid, "keeper").await;
    for i in 1..=10u8 {
        c.publish("orders", &[i]).await;
    }
    let mut req = c.sub_req("orders");
    req.durable_name = "d".into();
    req.start_position = stan_protocol::pb::StartPosition::First as i32;
    req.ack_wait_in_secs = 30;
    let mut sub = c.subscribe(req).await.unwrap();
    assert_eq!(sub.next_seqs(10).await, (1..=10).collect::<Vec<_>>());
    for seq in 1..=5 {
        sub.ack(seq).await;
    }
    // A channel that only has a subscription (no message ever stored).
    let mut idle = c.sub_req("idle");
    idle.durable_name = "waiting".into();
    let _idle = c.subscribe(idle).await.unwrap();
    common::wait_snapshot(&b, "acks recorded", |s| {
        channel(s, "orders").subs.first().map(|s| s.pending_count) == Some(5)
    })
    .await;
    b.shutdown().await;

    let b = start(&url, &cid).await;
    let s = b.snapshot().await;
    let orders = channel(&s, "orders");
    assert_eq!(
        (orders.msgs, orders.first_seq, orders.last_seq),
        (10, 1, 10)
    );
    let d = &orders.subs[0];
    assert_eq!(
        (d.durable_name.as_str(), d.last_sent, d.pending_count),
        ("d", 10, 5)
    );
    assert_eq!(channel(&s, "idle").subs[0].durable_name, "waiting");
    assert!(
        s.clients.iter().any(|c| c.id == "keeper"),
        "{:?}",
        s.clients
    );
    // The client's session goes on: its next publish is the channel's 11th message.
    c.publish("orders", b"11").await;
    let s = b.snapshot().await;
    assert_eq!(channel(&s, "orders").last_seq, 11);
    b.shutdown().await;
}

#[tokio::test]
async fn channel_limits_become_stream_limits_and_hold_across_restarts() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let limited = |cfg: &mut BrokerConfig| cfg.limits.global.max_msgs = Some(5);
    let b = Broker::start(config(&url, &cid, limited)).await.unwrap();
    let mut c = Conn::connect(&url, &cid, "p").await;
    for i in 1..=8u8 {
        c.publish("capped", &[i]).await;
    }
    let s = b.snapshot().await;
    assert_eq!(
        (channel(&s, "capped").msgs, channel(&s, "capped").first_seq),
        (5, 4)
    );
    let jsc = async_nats::jetstream::new(common::nats(&url).await);
    let stream_name = format!("STAN-{}-capped", cid.replace('-', "_2d"));
    let mut stream = jsc.get_stream(&stream_name).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.max_messages, 5);
    assert_eq!((info.state.messages, info.state.first_sequence), (5, 4));
    b.shutdown().await;
    let b = Broker::start(config(&url, &cid, limited)).await.unwrap();
    let s = b.snapshot().await;
    let capped = channel(&s, "capped");
    assert_eq!((capped.msgs, capped.first_seq, capped.last_seq), (5, 4, 8));
    b.shutdown().await;
}

#[tokio::test]
async fn a_stream_of_another_kind_under_the_prefix_stops_the_start_with_its_name() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let jsc = async_nats::jetstream::new(common::nats(&url).await);
    let name = format!("STAN-{}-jobs", cid.replace('-', "_2d"));
    jsc.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec!["somewhere.else".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let err = within("start fails", Broker::start(config(&url, &cid, |_| {})))
        .await
        .err()
        .expect("the start fails")
        .to_string();
    assert!(
        err.contains(&name) && err.contains("cannot hold channel \"jobs\""),
        "{err}"
    );
}

#[tokio::test]
async fn jetstream_missing_or_too_few_servers_fail_the_start_clearly() {
    let Some(plain) = stan_test_support::start_nats_server().await else {
        return;
    };
    let err = within(
        "start fails",
        Broker::start(config(&plain.url, "c", |_| {})),
    )
    .await
    .err()
    .expect("no JetStream")
    .to_string();
    assert!(err.contains("JetStream is not available"), "{err}");

    let Some(js) = server().await else { return };
    let err = within(
        "start fails",
        Broker::start(config(&js.url(), "c", |cfg| {
            cfg.store = StoreKind::JetStream(JetStreamOptions {
                replicas: 3,
                ..JetStreamOptions::default()
            })
        })),
    )
    .await
    .err()
    .expect("3 replicas on one server")
    .to_string();
    assert!(err.contains("3 replica(s)"), "{err}");
}

#[tokio::test]
async fn a_second_broker_stands_by_until_the_first_one_stops() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let first = start(&url, &cid).await;
    let mut c = Conn::connect(&url, &cid, "p").await;
    c.publish("ch", b"1").await;
    let second = tokio::spawn({
        let url = url.clone();
        let cid = cid.clone();
        async move { start(&url, &cid).await }
    });
    // Two lease periods: the standby must still be waiting (the first one renews).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!second.is_finished(), "the standby became active too");
    first.shutdown().await;
    let second = within("takeover", second).await.unwrap();
    let s = second.snapshot().await;
    assert_eq!(channel(&s, "ch").last_seq, 1);
    c.publish("ch", b"2").await;
    assert_eq!(channel(&second.snapshot().await, "ch").last_seq, 2);
    second.shutdown().await;
}

#[tokio::test]
async fn a_broker_whose_lease_is_taken_stops_and_says_why() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let b = start(&url, &cid).await;
    let jsc = async_nats::jetstream::new(common::nats(&url).await);
    let lease = jsc
        .get_key_value(format!("STAN-{}-lease", cid.replace('-', "_2d")))
        .await
        .unwrap();
    lease.put("active", "someone else".into()).await.unwrap();
    stan_test_support::within_for(Duration::from_secs(10), "broker stops", b.closed()).await;
    let why = b.failure().expect("a failure");
    assert!(why.contains("lost the lease"), "{why}");
}

#[tokio::test]
async fn a_deleted_channel_leaves_no_stream_and_does_not_come_back() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let inactive = |cfg: &mut BrokerConfig| {
        cfg.limits.global.max_inactivity = Some(Duration::from_millis(300))
    };
    let b = Broker::start(config(&url, &cid, inactive)).await.unwrap();
    let mut c = Conn::connect(&url, &cid, "p").await;
    c.publish("short.lived", b"x").await;
    c.publish("kept", b"y").await;
    let mut keep = c.sub_req("kept");
    keep.durable_name = "k".into();
    let _keep = c.subscribe(keep).await.unwrap();
    common::wait_snapshot(&b, "the inactive channel deleted", |s| {
        !s.channels.iter().any(|c| c.name == "short.lived")
    })
    .await;
    let jsc = async_nats::jetstream::new(common::nats(&url).await);
    let stream = format!("STAN-{}-short_2elived", cid.replace('-', "_2d"));
    within("stream deleted", async {
        while jsc.get_stream(&stream).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    b.shutdown().await;
    let b = Broker::start(config(&url, &cid, inactive)).await.unwrap();
    let s = b.snapshot().await;
    assert!(!s.channels.iter().any(|c| c.name == "short.lived"));
    assert_eq!(channel(&s, "kept").msgs, 1);
    b.shutdown().await;
}

#[tokio::test]
async fn the_deduplication_window_survives_a_takeover() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let b = start(&url, &cid).await;
    let mut c = Conn::connect(&url, &cid, "c").await;
    let (g1, g2) = (new_nuid(), new_nuid());
    assert_eq!(c.publish_guid("ch", &g1, b"one").await.error, "");
    assert_eq!(c.publish_guid("ch", &g2, b"two").await.error, "");
    drop(c);
    b.shutdown().await;

    let b = start(&url, &cid).await;
    // Another registration re-sends both: acknowledged, not stored again.
    let mut c = Conn::connect(&url, &cid, "c2").await;
    for g in [&g2, &g1] {
        let ack = c.publish_guid("ch", g, b"again").await;
        assert_eq!((ack.guid.as_str(), ack.error.as_str()), (g.as_str(), ""));
    }
    assert_eq!(c.publish_guid("ch", &new_nuid(), b"three").await.error, "");
    let s = b.snapshot().await;
    assert_eq!((channel(&s, "ch").msgs, channel(&s, "ch").last_seq), (3, 3));
    b.shutdown().await;
}

#[tokio::test]
async fn a_write_jetstream_refuses_is_neither_acknowledged_nor_delivered_and_stops_the_broker() {
    let Some(js) = server().await else { return };
    let url = js.url();
    let cid = format!("c-{}", new_nuid());
    let b = start(&url, &cid).await;
    let mut c = Conn::connect(&url, &cid, "p").await;
    c.publish("ch", b"stored").await;
    let mut req = c.sub_req("ch");
    req.start_position = stan_protocol::pb::StartPosition::NewOnly as i32;
    let mut sub = c.subscribe(req).await.unwrap();
    // The channel's stream disappears behind the broker's back: its next write cannot succeed.
    let jsc = async_nats::jetstream::new(common::nats(&url).await);
    jsc.delete_stream(format!("STAN-{}-ch", cid.replace('-', "_2d")))
        .await
        .unwrap();
    let guid = c.publish_async("ch", b"lost").await;
    // The writes are retried (10 s), then the store gives up and the broker stops.
    stan_test_support::within_for(Duration::from_secs(30), "broker stops", b.closed()).await;
    assert!(b.failure().unwrap().contains("not stored"));
    let ack = c.next_pub_ack().await;
    assert_eq!(ack.guid, guid);
    assert!(ack.error.contains("not stored"), "{}", ack.error);
    // The failed batch's message was never delivered (its PubAck went out after the batch).
    sub.expect_nothing(Duration::from_millis(200)).await;
}

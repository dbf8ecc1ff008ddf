//! The core scenarios with the broker attached to an external `nats-server` (`-ns`).
//! Each test skips with a printed reason when `nats-server` is not installed.

mod common;

use std::time::Duration;

use common::*;
use stan_broker::config::{BrokerConfig, ExternalNats, NatsMode};
use stan_broker::{Broker, BrokerError};
use stan_protocol::pb;

macro_rules! nats_or_skip {
    () => {
        match start_nats_server().await {
            Some(n) => n,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_publish_subscribe_ack_durable_queue() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    assert_eq!(b.client_url(), n.url);
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "ext").await;
    for i in 1..=3u8 {
        c.publish("ch", &[i]).await;
    }
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::First as i32;
    req.durable_name = "dur".into();
    req.max_in_flight = 2;
    let mut s = c.subscribe(req.clone()).await.unwrap();
    assert_eq!(s.next_seqs(2).await, [1, 2]);
    s.expect_nothing(Duration::from_millis(50)).await;
    s.ack(1).await;
    assert_eq!(s.next().await.sequence, 3);
    assert_eq!(c.unsubscribe(&s, true).await, "");
    req.inbox = stan_protocol::subjects::new_inbox();
    let mut r = c.subscribe(req).await.unwrap();
    let m = r.next().await;
    assert_eq!((m.sequence, m.redelivered), (2, true));
    assert_eq!(r.next().await.sequence, 3);

    let mut q = c.sub_req("q");
    q.q_group = "g".into();
    let mut q1 = c.subscribe(q.clone()).await.unwrap();
    q.inbox = stan_protocol::subjects::new_inbox();
    let mut q2 = c.subscribe(q).await.unwrap();
    c.publish("q", b"a").await;
    c.publish("q", b"b").await;
    let got = [q1.next().await.sequence, q2.next().await.sequence];
    assert!(got == [1, 2] || got == [2, 1], "{got:?}");
    assert_eq!(c.close().await, "");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_redelivery_after_ack_wait() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "ext").await;
    let mut req = c.sub_req("ch");
    req.ack_wait_in_secs = -100;
    let mut s = c.subscribe(req).await.unwrap();
    c.publish("ch", b"x").await;
    assert!(!s.next().await.redelivered);
    let m = s.next().await;
    assert_eq!(
        (m.sequence, m.redelivered, m.redelivery_count),
        (1, true, 1)
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_heartbeats_and_duplicate_client() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    // No heartbeat inbox: no-responders counts as a failure.
    let _dead = Conn::try_connect(&b.client_url(), b.cluster_id(), "dead", Heartbeats::NoInbox)
        .await
        .unwrap();
    let alive = Conn::connect(&b.client_url(), b.cluster_id(), "alive").await;
    wait_snapshot(&b, "dead client removed", |s| s.clients.len() == 1).await;
    assert_eq!(
        Conn::try_connect(&b.client_url(), b.cluster_id(), "alive", Heartbeats::Answer)
            .await
            .err()
            .as_deref(),
        Some("stan: clientID already registered")
    );
    alive
        .answer_hb
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let new = Conn::connect(&b.client_url(), b.cluster_id(), "alive").await;
    assert!(alive.ping().await.contains("replaced"));
    assert_eq!(new.ping().await, "");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_second_server_with_same_cluster_id_is_refused() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    let mut cfg = BrokerConfig::for_tests();
    cfg.nats = NatsMode::External(ExternalNats {
        url: n.url.clone(),
        ..Default::default()
    });
    match Broker::start(cfg.clone()).await {
        Err(BrokerError::Startup(e)) => assert_eq!(
            e.to_string(),
            "discovered another streaming server with cluster ID \"test-cluster\""
        ),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("second server started"),
    }
    // The probe client was removed from the first server again.
    wait_snapshot(&b, "probe client closed", |s| s.clients.is_empty()).await;
    // Another cluster ID on the same NATS is fine.
    cfg.cluster_id = "other-cluster".into();
    let other = Broker::start(cfg).await.expect("other cluster starts");
    let c = Conn::connect(&other.client_url(), "other-cluster", "c").await;
    assert_eq!(c.close().await, "");
    other.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_shutdown_answers_pending_pub_acks() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "sd").await;
    let before = b.inbound_count();
    b.set_frozen(true);
    let mut guids = Vec::new();
    for i in 0..10u8 {
        guids.push(c.publish_async("ch", &[i]).await);
    }
    // Wait until all ten sit in the (frozen) engine's queue.
    within("publishes queued", async {
        while b.inbound_count() < before + 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    b.shutdown().await;
    for g in guids {
        let ack = c.next_pub_ack().await;
        assert_eq!((ack.guid, ack.error.as_str()), (g, ""));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_subscription_ordering() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "ord").await;
    c.publish("ch", b"1").await;
    c.publish("ch", b"2").await;
    check_subscribe_ordering(&c, "ch").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_acks_are_processed_before_a_later_close() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "ord").await;
    for round in 0..20u8 {
        let ch = format!("ch{round}");
        for i in 0..5u8 {
            c.publish(&ch, &[i]).await;
        }
        let mut req = c.sub_req(&ch);
        req.durable_name = "dur".into();
        req.start_position = pb::StartPosition::First as i32;
        let mut s = c.subscribe(req.clone()).await.unwrap();
        for seq in s.next_seqs(5).await {
            let ack = pb::Ack {
                subject: ch.clone(),
                sequence: seq,
            };
            c.nc.publish(
                s.ack_inbox.clone(),
                prost::Message::encode_to_vec(&ack).into(),
            )
            .await
            .unwrap();
        }
        // The acks were sent before the close on the same connection: none is pending.
        assert_eq!(c.unsubscribe(&s, true).await, "");
        let snap = b.snapshot().await;
        let sub = &snap.channels.iter().find(|x| x.name == ch).unwrap().subs[0];
        assert_eq!(sub.pending_count, 0, "round {round}");
        req.inbox = stan_protocol::subjects::new_inbox();
        let mut r = c.subscribe(req).await.unwrap();
        r.expect_nothing(Duration::from_millis(20)).await;
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_unreachable_nats_fails_start() {
    let port = free_port();
    let mut cfg = BrokerConfig::for_tests();
    cfg.nats = NatsMode::External(ExternalNats {
        url: format!("nats://127.0.0.1:{port}"),
        ..Default::default()
    });
    match Broker::start(cfg).await {
        Err(BrokerError::Nats(e)) => assert!(e.to_string().contains("unable to connect"), "{e}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started without NATS"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_shutdown_completes_when_nats_is_gone() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "gone").await;
    c.publish("ch", b"x").await;
    drop(c);
    // The NATS server goes away for good; the broker's connection keeps trying to reconnect.
    drop(n);
    let done = tokio::time::timeout(Duration::from_secs(20), b.shutdown()).await;
    assert!(done.is_ok(), "shutdown hangs while NATS is unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_subscribe_is_handled_after_earlier_publishes() {
    let n = nats_or_skip!();
    let b = start_external_broker(&n, |_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "ord").await;
    for round in 0..50u8 {
        let ch = format!("ch{round}");
        c.publish(&ch, b"old").await;
        // Published, and without waiting for its PubAck, a subscription from the last
        // received message: that is the message just published (sequence 2), not the old one.
        c.publish_async(&ch, b"new").await;
        let mut req = c.sub_req(&ch);
        req.start_position = pb::StartPosition::LastReceived as i32;
        let mut s = c.subscribe(req).await.unwrap();
        let m = s.next().await;
        assert_eq!((m.sequence, &m.data[..]), (2, &b"new"[..]), "round {round}");
        let ack = c.next_pub_ack().await;
        assert_eq!(ack.error, "", "round {round}");
    }
    b.shutdown().await;
}

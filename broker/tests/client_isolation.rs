//! Client isolation: acks, unsubscribes, subscription closes, subscribes and connection
//! closes about a client are accepted only from the core-NATS connection that client uses
//! (docs/operations.md, "Client isolation"); `trust_client_subjects` turns the checks off.
//!
//! The victim is a `stan-client` connection; the attacker is a raw STAN session on its own
//! NATS connection that knows the victim's client ID and ack inbox.

mod common;

use std::time::Duration;

use common::{request, start_broker, wait_snapshot, within, Conn};
use futures::StreamExt;
use prost::Message as _;
use stan_broker::Broker;
use stan_client::{ConnectOptions, Event, SubscribeOptions, Subscription};
use stan_protocol::{errors, pb};
use stan_test_support::Proxy;

const CH: &str = "iso";

async fn broker(trust: bool) -> Broker {
    start_broker(|cfg| cfg.trust_client_subjects = trust).await
}

async fn victim(b: &Broker, url: &str) -> stan_client::Client {
    ConnectOptions::new(b.cluster_id(), "victim")
        .nats_url(url)
        .connect()
        .await
        .expect("victim connects")
}

/// A manual-ack subscription of the victim (ack wait 1 s) and its ack inbox.
async fn victim_sub(b: &Broker, v: &stan_client::Client) -> (Subscription, String) {
    let sub = v
        .subscribe(
            CH,
            SubscribeOptions::new()
                .manual_acks(true)
                .ack_wait(Duration::from_secs(1)),
        )
        .await
        .expect("victim subscribes");
    let snap = b.snapshot().await;
    let ack_inbox = snap
        .clients
        .iter()
        .find(|c| c.id == "victim")
        .and_then(|c| c.subs.first())
        .map(|s| s.ack_inbox.clone())
        .expect("victim's subscription in the snapshot");
    (sub, ack_inbox)
}

async fn next(sub: &mut Subscription) -> stan_client::Message {
    within("a message", sub.next())
        .await
        .expect("subscription open")
        .expect("message")
}

async fn pending(b: &Broker) -> usize {
    b.snapshot()
        .await
        .clients
        .iter()
        .find(|c| c.id == "victim")
        .and_then(|c| c.subs.first())
        .map_or(0, |s| s.pending_count)
}

/// Sends an ack for `seq` on `ack_inbox` from the attacker's connection, then a request the
/// engine answers after it (same connection, so same order): the ack has been handled when
/// this returns.
async fn foreign_ack(attacker: &Conn, ack_inbox: &str, seq: u64) {
    let ack = pb::Ack {
        subject: CH.into(),
        sequence: seq,
    };
    attacker
        .nc
        .publish(ack_inbox.to_string(), ack.encode_to_vec().into())
        .await
        .unwrap();
    assert_eq!(attacker.ping().await, "");
}

async fn foreign_unsub(attacker: &Conn, ack_inbox: &str, close: bool) -> String {
    let req = pb::UnsubscribeRequest {
        client_id: "victim".into(),
        subject: CH.into(),
        inbox: ack_inbox.into(),
        ..Default::default()
    };
    let subject = if close {
        &attacker.resp.sub_close_requests
    } else {
        &attacker.resp.unsub_requests
    };
    let r: pb::SubscriptionResponse =
        request(&attacker.nc, subject, req.encode_to_vec().into()).await;
    r.error
}

async fn foreign_close(attacker: &Conn) -> String {
    let req = pb::CloseRequest {
        client_id: "victim".into(),
    };
    let r: pb::CloseResponse = request(
        &attacker.nc,
        &attacker.resp.close_requests,
        req.encode_to_vec().into(),
    )
    .await;
    r.error
}

async fn foreign_subscribe(attacker: &Conn) -> String {
    let mut req = attacker.sub_req(CH);
    req.client_id = "victim".into();
    let r: pb::SubscriptionResponse = request(
        &attacker.nc,
        &attacker.resp.sub_requests,
        req.encode_to_vec().into(),
    )
    .await;
    r.error
}

fn victim_sub_count(s: &stan_broker::snapshot::Snapshot) -> Option<usize> {
    s.clients
        .iter()
        .find(|c| c.id == "victim")
        .map(|c| c.subs.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ack_is_ignored_and_the_message_redelivered() {
    let b = broker(false).await;
    let v = victim(&b, &b.client_url()).await;
    let (mut sub, ack_inbox) = victim_sub(&b, &v).await;
    let attacker = Conn::connect(&b.client_url(), b.cluster_id(), "mallory").await;
    v.publish(CH, "m1").await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.sequence(), 1);
    foreign_ack(&attacker, &ack_inbox, 1).await;
    assert_eq!(pending(&b).await, 1, "the foreign ack must be ignored");
    assert_eq!(b.snapshot().await.foreign_requests, 1);
    let again = next(&mut sub).await;
    assert_eq!(again.sequence(), 1);
    assert!(again.redelivered());
    again.ack().await.unwrap();
    wait_snapshot(&b, "the victim's own ack", |s| {
        s.clients
            .iter()
            .any(|c| c.id == "victim" && c.subs.iter().all(|s| s.pending_count == 0))
    })
    .await;
    v.close().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_requests_about_a_client_are_refused() {
    let b = broker(false).await;
    let v = victim(&b, &b.client_url()).await;
    let (mut sub, ack_inbox) = victim_sub(&b, &v).await;
    let attacker = Conn::connect(&b.client_url(), b.cluster_id(), "mallory").await;

    assert_eq!(
        foreign_unsub(&attacker, &ack_inbox, false).await,
        errors::INVALID_UNSUB_REQ
    );
    assert_eq!(
        foreign_unsub(&attacker, &ack_inbox, true).await,
        errors::INVALID_UNSUB_REQ
    );
    assert_eq!(foreign_subscribe(&attacker).await, errors::UNKNOWN_CLIENT);
    assert_eq!(foreign_close(&attacker).await, errors::UNKNOWN_CLIENT);
    let snap = b.snapshot().await;
    assert_eq!(
        victim_sub_count(&snap),
        Some(1),
        "victim and its sub intact"
    );
    assert_eq!(snap.foreign_requests, 4);

    // The victim keeps working, and its own unsubscribe and close are accepted.
    v.publish(CH, "m1").await.unwrap();
    next(&mut sub).await.ack().await.unwrap();
    sub.unsubscribe().await.expect("own unsubscribe");
    v.close().await.expect("own close");
    wait_snapshot(&b, "victim gone", |s| victim_sub_count(s).is_none()).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_client_subjects_accepts_requests_from_any_connection() {
    let b = broker(true).await;
    let v = victim(&b, &b.client_url()).await;
    let (mut sub, ack_inbox) = victim_sub(&b, &v).await;
    let attacker = Conn::connect(&b.client_url(), b.cluster_id(), "mallory").await;
    v.publish(CH, "m1").await.unwrap();
    assert_eq!(next(&mut sub).await.sequence(), 1);
    foreign_ack(&attacker, &ack_inbox, 1).await;
    assert_eq!(pending(&b).await, 0, "the ack is accepted");

    assert_eq!(foreign_unsub(&attacker, &ack_inbox, true).await, "");
    let snap = b.snapshot().await;
    assert_eq!(victim_sub_count(&snap), Some(0));
    assert_eq!(foreign_subscribe(&attacker).await, "");
    assert_eq!(foreign_close(&attacker).await, "");
    let snap = b.snapshot().await;
    assert_eq!(victim_sub_count(&snap), None, "victim closed");
    assert_eq!(snap.foreign_requests, 0);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victim_keeps_acking_and_closing_after_a_nats_reconnect() {
    let b = broker(false).await;
    let addr = b
        .client_url()
        .trim_start_matches("nats://")
        .parse()
        .expect("socket address");
    let proxy = Proxy::start(addr).await;
    let v = victim(&b, &proxy.url()).await;
    let mut events = v.events();
    let (mut sub, ack_inbox) = victim_sub(&b, &v).await;
    let publisher = Conn::connect(&b.client_url(), b.cluster_id(), "pub").await;

    proxy.cut();
    within("disconnect", async {
        while events.next().await != Some(Event::NatsDisconnected) {}
    })
    .await;
    proxy.restore();
    within("reconnect", async {
        while events.next().await != Some(Event::NatsReconnected) {}
    })
    .await;

    // Only acks and closes from the victim's new connection: no ping or publish has bound it.
    let mut publisher = publisher;
    publisher.publish(CH, b"m1").await;
    let m = next(&mut sub).await;
    assert_eq!(m.sequence(), 1);
    m.ack().await.unwrap();
    wait_snapshot(&b, "ack after reconnect", |s| {
        s.clients
            .iter()
            .any(|c| c.id == "victim" && c.subs.iter().all(|s| s.pending_count == 0))
    })
    .await;

    // The new connection is the bound one now: others are still refused.
    assert_eq!(
        foreign_unsub(&publisher, &ack_inbox, false).await,
        errors::INVALID_UNSUB_REQ
    );
    sub.close().await.expect("own sub close after reconnect");
    v.close().await.expect("own close after reconnect");
    wait_snapshot(&b, "victim gone", |s| victim_sub_count(s).is_none()).await;
    b.shutdown().await;
}

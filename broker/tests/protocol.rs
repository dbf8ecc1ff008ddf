//! Connect, publish, subscribe (every start position), delivery, acks, flow control,
//! unsubscribe/close, connection close, shutdown (PROTOCOL.md §3.1, §3.3–§3.6, §3.11, §3.12).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use prost::Message;
use stan_protocol::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_returns_subjects_and_echoes_ping_settings() {
    let b = start_broker(|_| {}).await;
    let nc = nats(&b.client_url()).await;
    let cid = b.cluster_id();
    let mut req = connect_request("c1", "_INBOX.hb1");
    req.ping_interval = -100;
    req.ping_max_out = 7;
    let r: pb::ConnectResponse = request(
        &nc,
        &format!("_STAN.discover.{cid}"),
        req.encode_to_vec().into(),
    )
    .await;
    assert_eq!(r.error, "");
    assert_eq!(r.pub_prefix, format!("_STAN.pub.{cid}"));
    assert_eq!(r.sub_requests, format!("_STAN.sub.{cid}"));
    assert_eq!(r.unsub_requests, format!("_STAN.unsub.{cid}"));
    assert_eq!(r.sub_close_requests, format!("_STAN.subclose.{cid}"));
    assert_eq!(r.close_requests, format!("_STAN.close.{cid}"));
    assert_eq!(r.ping_requests, format!("_STAN.discover.{cid}.pings"));
    assert_eq!((r.ping_interval, r.ping_max_out, r.protocol), (-100, 7, 1));

    // Protocol 0: no ping settings.
    let mut req = connect_request("c2", "_INBOX.hb2");
    req.protocol = 0;
    let r: pb::ConnectResponse = request(
        &nc,
        &format!("_STAN.discover.{cid}"),
        req.encode_to_vec().into(),
    )
    .await;
    assert_eq!(r.error, "");
    assert_eq!(
        (r.ping_requests.as_str(), r.ping_interval, r.ping_max_out),
        ("", 0, 0)
    );
    let snap = b.snapshot().await;
    let ids: Vec<_> = snap.clients.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert_eq!(snap.clients[0].hb_inbox, "_INBOX.hb1");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_is_acked_stored_and_delivered_in_order() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "pub").await;
    let mut s = c.subscribe(c.sub_req("orders")).await.unwrap();
    let mut guids = Vec::new();
    for i in 0..20u8 {
        guids.push(c.publish_async("orders", &[i]).await);
    }
    for g in &guids {
        let ack = c.next_pub_ack().await;
        assert_eq!(&ack.guid, g, "PubAcks come in publish order");
        assert_eq!(ack.error, "");
    }
    let mut last_ts = 0;
    for i in 0..20u8 {
        let m = s.next().await;
        assert_eq!(m.sequence, i as u64 + 1);
        assert_eq!(m.subject, "orders");
        assert_eq!(m.data.as_ref(), &[i]);
        assert!(!m.redelivered);
        assert!(m.timestamp >= last_ts && m.timestamp > 0);
        last_ts = m.timestamp;
    }
    // A publish without reply subject is stored but not acked.
    let m = pb::PubMsg {
        client_id: "pub".into(),
        guid: "g-noreply".into(),
        subject: "orders".into(),
        data: Bytes::from_static(b"quiet"),
        ..Default::default()
    };
    c.nc.publish(
        format!("_STAN.pub.{}.orders", b.cluster_id()),
        m.encode_to_vec().into(),
    )
    .await
    .unwrap();
    assert_eq!(s.next().await.data.as_ref(), b"quiet");
    let snap = b.snapshot().await;
    assert_eq!(snap.in_msgs, 21);
    assert_eq!(snap.in_bytes, 25);
    assert_eq!(snap.out_msgs, 21);
    assert!(snap.out_bytes > 21);
    assert_eq!(snap.channels[0].name, "orders");
    assert_eq!(
        (
            snap.channels[0].first_seq,
            snap.channels[0].last_seq,
            snap.channels[0].msgs
        ),
        (1, 21, 21)
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_client_id_only_is_accepted() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "javaish").await;
    let nc = &c.nc;
    let m = pb::PubMsg {
        client_id: "javaish".into(),
        guid: "g1".into(),
        subject: "ch".into(),
        data: Bytes::from_static(b"x"),
        ..Default::default()
    };
    let subject = format!("_STAN.pub.{}.ch", b.cluster_id());
    let ack: pb::PubAck = request(nc, &subject, m.encode_to_vec().into()).await;
    assert_eq!((ack.guid.as_str(), ack.error.as_str()), ("g1", ""));
    b.shutdown().await;
}

async fn with_messages(n: u8) -> (stan_broker::Broker, Conn) {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "sp").await;
    for i in 1..=n {
        c.publish("ch", &[i]).await;
    }
    (b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_new_only_gets_only_later_messages() {
    let (b, mut c) = with_messages(3).await;
    let mut s = c.subscribe(c.sub_req("ch")).await.unwrap();
    s.expect_nothing(Duration::from_millis(50)).await;
    c.publish("ch", b"new").await;
    let m = s.next().await;
    assert_eq!((m.sequence, m.data.as_ref()), (4, &b"new"[..]));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_last_received_begins_with_last_message() {
    let (b, c) = with_messages(3).await;
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::LastReceived as i32;
    let mut s = c.subscribe(req).await.unwrap();
    assert_eq!(s.next().await.sequence, 3);
    s.expect_nothing(Duration::from_millis(50)).await;
    // On an empty channel it behaves like new-only.
    let mut req = c.sub_req("empty");
    req.start_position = pb::StartPosition::LastReceived as i32;
    let mut e = c.subscribe(req).await.unwrap();
    e.expect_nothing(Duration::from_millis(30)).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_first_gets_everything_stored() {
    let (b, c) = with_messages(3).await;
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::First as i32;
    let mut s = c.subscribe(req).await.unwrap();
    assert_eq!(s.next_seqs(3).await, [1, 2, 3]);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_sequence_in_range_below_first_and_beyond_last() {
    let b = start_broker(|cfg| cfg.limits.global.max_msgs = Some(3)).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "sp").await;
    // Empty channel, sequence 0: from the start.
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::SequenceStart as i32;
    let mut from_zero = c.subscribe(req).await.unwrap();
    for i in 1..=5u8 {
        c.publish("ch", &[i]).await;
    }
    assert_eq!(from_zero.next_seqs(5).await, [1, 2, 3, 4, 5]);
    // Stored: 3..=5.
    let sub_at = |seq: u64| {
        let mut r = c.sub_req("ch");
        r.start_position = pb::StartPosition::SequenceStart as i32;
        r.start_sequence = seq;
        r
    };
    let mut mid = c.subscribe(sub_at(4)).await.unwrap();
    assert_eq!(mid.next_seqs(2).await, [4, 5]);
    let mut below = c.subscribe(sub_at(1)).await.unwrap();
    assert_eq!(below.next_seqs(3).await, [3, 4, 5]);
    let mut beyond = c.subscribe(sub_at(99)).await.unwrap();
    beyond.expect_nothing(Duration::from_millis(50)).await;
    c.publish("ch", b"6").await;
    assert_eq!(beyond.next().await.sequence, 6);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_time_delta_selects_by_timestamp() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "sp").await;
    c.publish("ch", b"old").await;
    tokio::time::sleep(Duration::from_millis(1000)).await; // an age gap between the messages
    c.publish("ch", b"new").await;
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::TimeDeltaStart as i32;
    req.start_time_delta = Duration::from_millis(500).as_nanos() as i64;
    let mut s = c.subscribe(req).await.unwrap();
    let m = s.next().await;
    assert_eq!(m.data.as_ref(), b"new");
    s.expect_nothing(Duration::from_millis(30)).await;
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::TimeDeltaStart as i32;
    req.start_time_delta = Duration::from_secs(60).as_nanos() as i64;
    let mut all = c.subscribe(req).await.unwrap();
    assert_eq!(all.next_seqs(2).await, [1, 2]);
    // Empty channel: from the start.
    let mut req = c.sub_req("fresh");
    req.start_position = pb::StartPosition::TimeDeltaStart as i32;
    req.start_time_delta = 1_000_000;
    let mut fresh = c.subscribe(req).await.unwrap();
    c.publish("fresh", b"x").await;
    assert_eq!(fresh.next().await.sequence, 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_stalls_until_acked() {
    let (b, c) = with_messages(5).await;
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::First as i32;
    req.max_in_flight = 2;
    let mut s = c.subscribe(req).await.unwrap();
    assert_eq!(s.next_seqs(2).await, [1, 2]);
    s.expect_nothing(Duration::from_millis(50)).await;
    wait_snapshot(&b, "stalled", |sn| sn.channels[0].subs[0].is_stalled).await;
    s.ack(1).await;
    assert_eq!(s.next().await.sequence, 3);
    s.expect_nothing(Duration::from_millis(30)).await;
    // An ack for a sequence that is not pending changes nothing.
    s.ack(99).await;
    s.expect_nothing(Duration::from_millis(30)).await;
    s.ack(2).await;
    s.ack(3).await;
    assert_eq!(s.next_seqs(2).await, [4, 5]);
    let snap = b.snapshot().await;
    let sub = &snap.channels[0].subs[0];
    assert_eq!(
        (sub.pending_count, sub.last_sent, sub.max_inflight),
        (2, 5, 2)
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_and_close_remove_plain_subscriptions() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "u").await;
    let s1 = c.subscribe(c.sub_req("ch")).await.unwrap();
    let mut s2 = c.subscribe(c.sub_req("ch")).await.unwrap();
    assert_eq!(c.unsubscribe(&s1, false).await, "");
    assert_eq!(
        c.unsubscribe(&s1, false).await,
        "stan: invalid subscription"
    );
    assert_eq!(c.unsubscribe(&s2, true).await, "");
    assert_eq!(c.unsubscribe(&s2, true).await, "stan: invalid subscription");
    c.publish("ch", b"x").await;
    s2.expect_nothing(Duration::from_millis(50)).await;
    assert!(b.snapshot().await.channels[0].subs.is_empty());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_by_delivery_inbox_fallback() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "u").await;
    let s = c.subscribe(c.sub_req("ch")).await.unwrap();
    let req = pb::UnsubscribeRequest {
        client_id: "u".into(),
        subject: "ch".into(),
        inbox: s.inbox.clone(),
        ..Default::default()
    };
    let r: pb::SubscriptionResponse = request(
        &c.nc,
        &c.resp.sub_close_requests,
        req.encode_to_vec().into(),
    )
    .await;
    assert_eq!(r.error, "");
    assert!(b.snapshot().await.channels[0].subs.is_empty());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_errors() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "u").await;
    let s = c.subscribe(c.sub_req("ch")).await.unwrap();
    let send = |client: &str, subject: &str, inbox: &str, close: bool| {
        let req = pb::UnsubscribeRequest {
            client_id: client.into(),
            subject: subject.into(),
            inbox: inbox.into(),
            ..Default::default()
        };
        let subj = if close {
            c.resp.sub_close_requests.clone()
        } else {
            c.resp.unsub_requests.clone()
        };
        let nc = c.nc.clone();
        async move {
            let r: pb::SubscriptionResponse = request(&nc, &subj, req.encode_to_vec().into()).await;
            r.error
        }
    };
    assert_eq!(
        send("u", "nochannel", &s.ack_inbox, false).await,
        "stan: unknown channel"
    );
    assert_eq!(
        send("u", "ch", "_INBOX.nope", true).await,
        "stan: invalid subscription"
    );
    assert_eq!(
        send("other", "ch", &s.ack_inbox, false).await,
        "stan: unknown clientID"
    );
    for close in [false, true] {
        let r: pb::SubscriptionResponse = request(
            &c.nc,
            if close {
                &c.resp.sub_close_requests
            } else {
                &c.resp.unsub_requests
            },
            Bytes::from_static(&[0xff, 0xff, 0xff]),
        )
        .await;
        assert_eq!(r.error, "stan: invalid unsubscribe request");
    }
    // Still subscribed.
    assert_eq!(b.snapshot().await.channels[0].subs.len(), 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_removes_client_and_subscriptions() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "closer").await;
    let _s = c.subscribe(c.sub_req("ch")).await.unwrap();
    let mut d = c.sub_req("ch");
    d.durable_name = "dur".into();
    let _ds = c.subscribe(d).await.unwrap();
    c.publish("ch", b"x").await;
    assert_eq!(c.close().await, "");
    let snap = b.snapshot().await;
    assert!(snap.clients.is_empty());
    // Only the durable remains, offline.
    assert_eq!(snap.channels[0].subs.len(), 1);
    assert!(snap.channels[0].subs[0].is_offline);
    assert_eq!(c.close().await, "stan: unknown clientID");
    // Publishing with the closed connection's ID is refused.
    let guid = c.publish_async("ch", b"y").await;
    let ack = c.next_pub_ack().await;
    assert_eq!(
        (ack.guid, ack.error.as_str()),
        (guid, "stan: invalid publish request")
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_names_are_unique_ignoring_case() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "case").await;
    c.publish("foo", b"x").await;
    c.publish_async("Foo", b"x").await;
    let ack = c.next_pub_ack().await;
    assert_eq!(
        ack.error,
        "rejecting channel \"Foo\" because channel \"foo\" alreay exists (different cases not allowed)"
    );
    let err = c.subscribe(c.sub_req("FOO")).await.err().unwrap();
    assert!(err.contains("alreay exists"), "{err}");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_engine_queues_requests() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "fz").await;
    b.set_frozen(true);
    c.publish_async("ch", b"x").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), c.next_pub_ack())
            .await
            .is_err(),
        "no PubAck while frozen"
    );
    // Snapshots are still answered.
    assert_eq!(b.snapshot().await.clients.len(), 1);
    b.set_frozen(false);
    assert_eq!(c.next_pub_ack().await.error, "");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_pending_pub_acks() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "sd").await;
    let before = b.inbound_count();
    b.set_frozen(true);
    let mut guids = Vec::new();
    for i in 0..10u8 {
        guids.push(c.publish_async("ch", &[i]).await);
    }
    within("publishes queued", async {
        while b.inbound_count() < before + 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let b2 = b.clone();
    let done = tokio::spawn(async move { b2.shutdown().await });
    for g in guids {
        let ack = c.next_pub_ack().await;
        assert_eq!((ack.guid, ack.error.as_str()), (g, ""));
    }
    within("shutdown", done).await.unwrap();
    within("closed", b.closed()).await;
    // Idempotent.
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_listener_is_bound_when_configured() {
    let b = start_broker(|_| {}).await;
    assert_eq!(b.monitor_addr(), None);
    b.shutdown().await;
    let b = start_broker(|cfg| cfg.monitor = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = b.monitor_addr().expect("monitoring address");
    assert_ne!(addr.port(), 0);
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("monitoring accepts connections");
    // A port in use fails startup.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let mut cfg = stan_broker::config::BrokerConfig::for_tests();
    cfg.monitor = Some(addr);
    assert!(matches!(
        stan_broker::Broker::start(cfg).await,
        Err(stan_broker::BrokerError::Monitor { .. })
    ));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_is_refused() {
    let mut cfg = stan_broker::config::BrokerConfig::for_tests();
    cfg.cluster_id = "bad id".into();
    assert!(matches!(
        stan_broker::Broker::start(cfg).await,
        Err(stan_broker::BrokerError::Config(_))
    ));
    let mut cfg = stan_broker::config::BrokerConfig::for_tests();
    cfg.limits
        .channels
        .insert("foo.>.bar".into(), Default::default());
    assert!(matches!(
        stan_broker::Broker::start(cfg).await,
        Err(stan_broker::BrokerError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stan_session_survives_nats_reconnect() {
    if skip_on_jetstream("drops the clients of the embedded NATS server") {
        return;
    }
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "rc").await;
    let mut s = c.subscribe(c.sub_req("ch")).await.unwrap();
    b.disconnect_all_clients();
    // async-nats reconnects and re-subscribes its inboxes; the STAN session is unchanged.
    // (A publish written while the old socket dies is lost, as with any NATS client: retry.)
    within("publish after reconnect", async {
        loop {
            let guid = c.publish_async("ch", b"after").await;
            match tokio::time::timeout(Duration::from_millis(300), c.next_pub_ack()).await {
                Ok(ack) if ack.guid == guid => {
                    assert_eq!(ack.error, "");
                    return;
                }
                _ => continue,
            }
        }
    })
    .await;
    assert_eq!(s.next().await.data.as_ref(), b"after");
    assert_eq!(c.ping().await, "");
    assert_eq!(b.snapshot().await.clients.len(), 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_response_precedes_messages_and_ack_inbox_is_live() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "ord").await;
    c.publish("ch", b"1").await;
    c.publish("ch", b"2").await;
    check_subscribe_ordering(&c, "ch").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_auth_settings_are_applied() {
    if skip_on_jetstream("sets the embedded NATS server's authorization") {
        return;
    }
    let b = start_broker(|cfg| {
        if let stan_broker::config::NatsMode::Embedded(e) = &mut cfg.nats {
            e.auth_token = Some("s3cret".into());
        }
    })
    .await;
    assert!(async_nats::connect(b.client_url()).await.is_err());
    let nc = async_nats::ConnectOptions::with_token("s3cret".into())
        .connect(b.client_url())
        .await
        .expect("token accepted");
    let r: pb::ConnectResponse = request(
        &nc,
        "_STAN.discover.test-cluster",
        connect_request("tok", "_INBOX.hb").encode_to_vec().into(),
    )
    .await;
    assert_eq!(r.error, "");
    b.shutdown().await;

    let b = start_broker(|cfg| {
        if let stan_broker::config::NatsMode::Embedded(e) = &mut cfg.nats {
            e.user = Some("u".into());
            e.pass = Some("p".into());
        }
    })
    .await;
    assert!(
        async_nats::ConnectOptions::with_user_and_password("u".into(), "bad".into())
            .connect(b.client_url())
            .await
            .is_err()
    );
    async_nats::ConnectOptions::with_user_and_password("u".into(), "p".into())
        .connect(b.client_url())
        .await
        .expect("user/pass accepted");
    b.shutdown().await;
}

//! Redelivery, heartbeats, duplicate client IDs, pings (PROTOCOL.md §3.2, §3.7, §3.13) and
//! channel limits (§5). Intervals are short and configurable; every wait awaits an event.

mod common;

use std::time::Duration;

use common::*;
use prost::Message;
use stan_broker::config::ChannelLimits;
use stan_protocol::pb;

fn millis_ack_wait(c: &Conn, channel: &str, ms: i32) -> pb::SubscriptionRequest {
    let mut r = c.sub_req(channel);
    r.ack_wait_in_secs = -ms;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_message_is_redelivered_after_ack_wait() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "r").await;
    let mut s = c.subscribe(millis_ack_wait(&c, "ch", 100)).await.unwrap();
    c.publish("ch", b"1").await;
    c.publish("ch", b"2").await;
    assert_eq!(s.next_seqs(2).await, [1, 2]);
    s.ack(2).await;
    let r1 = s.next().await;
    assert_eq!(
        (r1.sequence, r1.redelivered, r1.redelivery_count),
        (1, true, 1)
    );
    let r2 = s.next().await;
    assert_eq!(
        (r2.sequence, r2.redelivered, r2.redelivery_count),
        (1, true, 2)
    );
    s.ack(1).await;
    s.expect_nothing(Duration::from_millis(250)).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_ack_wait_needs_the_test_option() {
    let b = start_broker(|cfg| cfg.ack_wait_millis_for_tests = false).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "r").await;
    let err = c.subscribe(millis_ack_wait(&c, "ch", 100)).await.err();
    assert_eq!(
        err.as_deref(),
        Some("stan: invalid ack wait time, should be >= 1s")
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_redelivery_may_go_to_another_member() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "r").await;
    let mut ra = millis_ack_wait(&c, "ch", 100);
    ra.q_group = "g".into();
    let mut a = c.subscribe(ra).await.unwrap();
    c.publish("ch", b"1").await;
    assert_eq!(a.next().await.sequence, 1);
    let mut rb = millis_ack_wait(&c, "ch", 5000);
    rb.q_group = "g".into();
    let mut bs = c.subscribe(rb).await.unwrap();
    // b has fewer pending messages: the expired message moves to b.
    let m = bs.next().await;
    assert_eq!(
        (m.sequence, m.redelivered, m.redelivery_count),
        (1, true, 1)
    );
    bs.ack(1).await;
    a.expect_nothing(Duration::from_millis(250)).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_failures_remove_a_dead_client() {
    for hb in [Heartbeats::NoInbox, Heartbeats::Ignore] {
        let b = start_broker(|_| {}).await;
        let c = Conn::try_connect(&b.client_url(), b.cluster_id(), "dead", hb)
            .await
            .unwrap();
        let mut d = c.sub_req("ch");
        d.durable_name = "dur".into();
        c.subscribe(d).await.unwrap();
        let alive = Conn::connect(&b.client_url(), b.cluster_id(), "alive").await;
        wait_snapshot(&b, "dead client removed", |s| {
            s.clients.len() == 1 && s.clients[0].id == "alive"
        })
        .await;
        // Its durable went offline.
        let snap = b.snapshot().await;
        assert!(snap.channels[0].subs[0].is_offline, "{hb:?}");
        assert_eq!(alive.ping().await, "");
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_heartbeats_keep_a_client() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "alive").await;
    // Wait through several heartbeat rounds (interval 200 ms, fail count 3).
    let mut hb = c.nc.subscribe(c.hb_inbox.clone()).await.unwrap();
    for _ in 0..5 {
        within("heartbeat", futures::StreamExt::next(&mut hb)).await;
    }
    assert_eq!(b.snapshot().await.clients.len(), 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_client_id_rejected_while_old_client_alive() {
    let b = start_broker(|_| {}).await;
    let _old = Conn::connect(&b.client_url(), b.cluster_id(), "dup").await;
    let err = Conn::try_connect(&b.client_url(), b.cluster_id(), "dup", Heartbeats::Answer)
        .await
        .err();
    assert_eq!(err.as_deref(), Some("stan: clientID already registered"));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_client_id_replaces_dead_client() {
    let b = start_broker(|cfg| cfg.hb_interval = Duration::from_secs(60)).await;
    let mut old = Conn::connect(&b.client_url(), b.cluster_id(), "dup").await;
    let s = old.subscribe(old.sub_req("ch")).await.unwrap();
    old.answer_hb
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut new = Conn::connect(&b.client_url(), b.cluster_id(), "dup").await;
    // The old session was closed: its plain subscription is gone.
    let snap = b.snapshot().await;
    assert_eq!(snap.clients.len(), 1);
    assert!(snap.channels[0].subs.is_empty());
    drop(s);
    // The replaced client learns it on its next ping; its connID is refused for publishes.
    assert_eq!(
        old.ping().await,
        "client has been replaced or is no longer registered"
    );
    old.publish_async("ch", b"x").await;
    assert_eq!(
        old.next_pub_ack().await.error,
        "stan: invalid publish request"
    );
    assert_eq!(new.ping().await, "");
    new.publish("ch", b"ok").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect_during_duplicate_check_is_rejected_at_once() {
    let b = start_broker(|cfg| {
        cfg.hb_interval = Duration::from_secs(60);
        cfg.duplicate_check_timeout = Duration::from_millis(500);
    })
    .await;
    let old = Conn::connect(&b.client_url(), b.cluster_id(), "dup").await;
    old.answer_hb
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let nc = nats(&b.client_url()).await;
    let req1 = connect_request("dup", "_INBOX.new1");
    let req2 = connect_request("dup", "_INBOX.new2");
    let discover = format!("_STAN.discover.{}", b.cluster_id());
    let mut hb = old.nc.subscribe(old.hb_inbox.clone()).await.unwrap();
    // The probe comes on another connection's behalf: this subscription must be live first.
    stan_test_support::server_synced(&old.nc).await;
    let first = {
        let (nc, discover) = (nc.clone(), discover.clone());
        tokio::spawn(async move { nc.request(discover, req1.encode_to_vec().into()).await })
    };
    // Make sure the first request reached the engine (a probe is sent to the old inbox).
    within("probe", futures::StreamExt::next(&mut hb)).await;
    let r2: pb::ConnectResponse = request(&nc, &discover, req2.encode_to_vec().into()).await;
    assert_eq!(r2.error, "stan: clientID already registered");
    let r1 = pb::ConnectResponse::decode(within("first", first).await.unwrap().unwrap().payload)
        .unwrap();
    assert_eq!(r1.error, "");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_unknown_conn_ids_told_replaced() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "p").await;
    assert_eq!(c.ping().await, "");
    let p = pb::Ping {
        conn_id: bytes::Bytes::from_static(b"unknown"),
    };
    let r: pb::PingResponse = request(&c.nc, &c.resp.ping_requests, p.encode_to_vec().into()).await;
    assert!(r.error.contains("replaced"));
    assert_eq!(c.close().await, "");
    assert_eq!(
        c.ping().await,
        "client has been replaced or is no longer registered"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_msgs_and_max_bytes_drop_oldest() {
    let b = start_broker(|cfg| {
        cfg.limits.global.max_msgs = Some(3);
        cfg.limits.channels.insert(
            "bytes.*".into(),
            ChannelLimits {
                // A stored record also holds the publish guid (about 25 bytes, for the dedup
                // window), so each 20-byte message takes about 70 bytes: at most one fits.
                max_bytes: Some(100),
                max_msgs: Some(0),
                ..Default::default()
            },
        );
    })
    .await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "l").await;
    for i in 1..=5u8 {
        c.publish("msgs", &[i]).await;
        c.publish("bytes.x", &[i; 20]).await;
    }
    let snap = b.snapshot().await;
    let by_name = |n: &str| snap.channels.iter().find(|c| c.name == n).unwrap().clone();
    let m = by_name("msgs");
    assert_eq!((m.msgs, m.first_seq, m.last_seq), (3, 3, 5));
    let x = by_name("bytes.x");
    assert!(x.bytes <= 100 && x.msgs >= 1 && x.msgs < 5, "{x:?}");
    assert_eq!(x.last_seq, 5);
    assert_eq!(x.limits.max_msgs, Some(0));
    assert_eq!(x.limits.max_bytes, Some(100));
    // Everything still stored is delivered from the first available.
    let mut req = c.sub_req("msgs");
    req.start_position = pb::StartPosition::First as i32;
    let mut s = c.subscribe(req).await.unwrap();
    assert_eq!(s.next_seqs(3).await, [3, 4, 5]);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_expires_messages_and_first_passes_last() {
    let b = start_broker(|cfg| cfg.limits.global.max_age = Some(Duration::from_millis(500))).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "l").await;
    // The channel exists before the clock of its first message starts: creating it may take
    // a while (a replicated stream on the JETSTREAM store).
    let s = c.subscribe(c.sub_req("ch")).await.unwrap();
    assert_eq!(c.unsubscribe(&s, false).await, "");
    c.publish("ch", b"1").await;
    c.publish("ch", b"2").await;
    assert_eq!(b.snapshot().await.channels[0].msgs, 2);
    wait_snapshot(&b, "expiry", |s| s.channels[0].msgs == 0).await;
    let ch = &b.snapshot().await.channels[0];
    assert_eq!((ch.first_seq, ch.last_seq, ch.bytes), (3, 2, 0));
    c.publish("ch", b"3").await;
    let ch = &b.snapshot().await.channels[0];
    assert_eq!((ch.first_seq, ch.last_seq, ch.msgs), (3, 3, 1));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_channels_refuses_new_channels() {
    let b = start_broker(|cfg| cfg.limits.max_channels = 2).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "l").await;
    c.publish("a", b"1").await;
    c.publish("b", b"1").await;
    c.publish_async("c", b"1").await;
    assert_eq!(c.next_pub_ack().await.error, "too many channels");
    assert_eq!(
        c.subscribe(c.sub_req("d")).await.err().as_deref(),
        Some("too many channels")
    );
    c.publish("a", b"2").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_subs_counts_every_stored_subscription() {
    let b = start_broker(|cfg| cfg.limits.global.max_subs = Some(2)).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "l").await;
    let mut d = c.sub_req("ch");
    d.durable_name = "dur".into();
    let ds = c.subscribe(d.clone()).await.unwrap();
    c.subscribe(c.sub_req("ch")).await.unwrap();
    assert_eq!(
        c.subscribe(c.sub_req("ch")).await.err().as_deref(),
        Some("too many subscriptions per channel")
    );
    // An offline durable still counts, but resuming it does not add one.
    assert_eq!(c.unsubscribe(&ds, true).await, "");
    assert!(c.subscribe(c.sub_req("ch")).await.is_err());
    d.inbox = stan_protocol::subjects::new_inbox();
    c.subscribe(d).await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_inactivity_deletes_idle_channels() {
    let b = start_broker(|cfg| {
        cfg.limits.channels.insert(
            "idle.>".into(),
            ChannelLimits {
                max_inactivity: Some(Duration::from_millis(150)),
                ..Default::default()
            },
        );
    })
    .await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "l").await;
    c.publish("idle.a", b"1").await;
    c.publish("busy", b"1").await;
    let s = c.subscribe(c.sub_req("idle.b")).await.unwrap();
    let mut d = c.sub_req("idle.a");
    d.durable_name = "dur".into();
    let ds = c.subscribe(d).await.unwrap();
    assert_eq!(c.unsubscribe(&ds, true).await, "");
    // idle.a has only an offline durable: deleted with it. idle.b has an active sub: kept.
    wait_snapshot(&b, "idle channel deleted", |s| {
        s.channels.iter().all(|c| c.name != "idle.a")
    })
    .await;
    let names: Vec<String> = b
        .snapshot()
        .await
        .channels
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["busy", "idle.b"]);
    // Unsubscribing the last active sub arms the timer.
    assert_eq!(c.unsubscribe(&s, false).await, "");
    wait_snapshot(&b, "second idle channel deleted", |s| s.channels.len() == 1).await;
    // A re-created channel starts at sequence 1 again.
    c.publish("idle.a", b"again").await;
    let snap = b.snapshot().await;
    let ch = snap.channels.iter().find(|c| c.name == "idle.a").unwrap();
    assert_eq!((ch.first_seq, ch.last_seq), (1, 1));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_client_gets_no_redelivery_until_heartbeats_answered() {
    let b = start_broker(|cfg| {
        cfg.hb_interval = Duration::from_millis(50);
        cfg.hb_timeout = Duration::from_millis(50);
        cfg.hb_fail_count = 1000;
    })
    .await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "f").await;
    let mut s = c.subscribe(millis_ack_wait(&c, "ch", 100)).await.unwrap();
    c.publish("ch", b"x").await;
    assert!(!s.next().await.redelivered);
    // Stop answering; once a heartbeat went unanswered the client is failing.
    c.answer_hb
        .store(false, std::sync::atomic::Ordering::SeqCst);
    wait_snapshot(&b, "a missed heartbeat", |sn| sn.clients[0].hb_failures > 0).await;
    // Drop what may have slipped through before the first failure was recorded.
    while tokio::time::timeout(
        Duration::from_millis(20),
        futures::StreamExt::next(&mut s.msgs),
    )
    .await
    .is_ok()
    {}
    s.expect_nothing(Duration::from_millis(400)).await;
    // Answer again (a ping also triggers a heartbeat at once): redelivery resumes.
    c.answer_hb.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(c.ping().await, "");
    let m = s.next().await;
    assert_eq!((m.sequence, m.redelivered), (1, true));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_message_dropped_by_limits_unstalls_the_subscription() {
    let b = start_broker(|cfg| cfg.limits.global.max_msgs = Some(2)).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "v").await;
    let mut plain = millis_ack_wait(&c, "plain", 100);
    plain.max_in_flight = 1;
    let mut queue = millis_ack_wait(&c, "queue", 100);
    queue.max_in_flight = 1;
    queue.q_group = "g".into();
    for req in [plain, queue] {
        let channel = req.subject.clone();
        let mut s = c.subscribe(req).await.unwrap();
        c.publish(&channel, b"1").await;
        assert_eq!(s.next().await.sequence, 1);
        // Stalled on seq 1, which max_msgs then drops.
        c.publish(&channel, b"2").await;
        c.publish(&channel, b"3").await;
        // Its ack wait expires: treated as acked, so the stored messages follow without
        // another publish (seq 1 may have been redelivered before it was dropped).
        let m = loop {
            let m = s.next().await;
            if m.sequence != 1 {
                break m;
            }
        };
        assert_eq!((m.sequence, m.redelivered), (2, false), "{channel}");
        s.ack(2).await;
        assert_eq!(s.next().await.sequence, 3, "{channel}");
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_member_relieved_by_a_redelivery_move_gets_waiting_messages() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "m").await;
    let mut ra = millis_ack_wait(&c, "ch", 100);
    ra.q_group = "g".into();
    ra.max_in_flight = 1;
    let mut a = c.subscribe(ra).await.unwrap();
    c.publish("ch", b"1").await;
    assert_eq!(a.next().await.sequence, 1);
    let mut rb = c.sub_req("ch");
    rb.q_group = "g".into();
    rb.max_in_flight = 1;
    let mut bs = c.subscribe(rb).await.unwrap();
    c.publish("ch", b"2").await;
    assert_eq!(bs.next().await.sequence, 2);
    // Both members stalled: seq 3 waits.
    c.publish("ch", b"3").await;
    // a's seq 1 expires; with every member stalled it goes to the head of the member list,
    // which alternates, so it soon moves to b. That frees a, which then gets seq 3 without
    // any further publish or ack.
    let m = loop {
        let m = a.next().await;
        if m.sequence != 1 {
            break m;
        }
    };
    assert_eq!((m.sequence, m.redelivered), (3, false));
    let moved = bs.next().await;
    assert_eq!((moved.sequence, moved.redelivered), (1, true));
    b.shutdown().await;
}

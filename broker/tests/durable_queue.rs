//! Durable subscriptions, queue groups and durable queue groups (PROTOCOL.md §3.8–§3.11).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use stan_protocol::pb;

fn durable(c: &Conn, channel: &str, name: &str) -> pb::SubscriptionRequest {
    let mut r = c.sub_req(channel);
    r.durable_name = name.into();
    r.start_position = pb::StartPosition::First as i32;
    r
}

fn queue(c: &Conn, channel: &str, group: &str, durable: &str) -> pb::SubscriptionRequest {
    let mut r = c.sub_req(channel);
    r.q_group = group.into();
    r.durable_name = durable.into();
    r.start_position = pb::StartPosition::First as i32;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_goes_offline_on_close_and_resumes_with_pending_first() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "d").await;
    for i in 1..=3u8 {
        c.publish("ch", &[i]).await;
    }
    let mut s = c.subscribe(durable(&c, "ch", "dur")).await.unwrap();
    assert_eq!(s.next_seqs(3).await, [1, 2, 3]);
    s.ack(1).await;
    wait_snapshot(&b, "ack processed", |sn| {
        sn.channels[0].subs[0].pending_count == 2
    })
    .await;
    assert_eq!(c.unsubscribe(&s, true).await, "");
    let snap = b.snapshot().await;
    let off = &snap.channels[0].subs[0];
    assert!(off.is_offline && off.is_durable);
    assert_eq!(
        (off.durable_name.as_str(), off.last_sent, off.pending_count),
        ("dur", 3, 2)
    );
    assert!(snap.clients[0].subs.is_empty());
    c.publish("ch", &[4]).await;

    // Resume: start position ignored, new ack inbox, pending redelivered first.
    let mut req = durable(&c, "ch", "dur");
    req.start_position = pb::StartPosition::NewOnly as i32;
    let mut r = c.subscribe(req).await.unwrap();
    assert_ne!(r.ack_inbox, s.ack_inbox);
    let m2 = r.next().await;
    let m3 = r.next().await;
    assert_eq!(
        (m2.sequence, m2.redelivered, m2.redelivery_count),
        (2, true, 1)
    );
    assert_eq!((m3.sequence, m3.redelivered), (3, true));
    let m4 = r.next().await;
    assert_eq!((m4.sequence, m4.redelivered), (4, false));
    // Acks on the new ack inbox work.
    for seq in [2, 3, 4] {
        r.ack(seq).await;
    }
    wait_snapshot(&b, "acks on new inbox", |sn| {
        sn.channels[0].subs[0].pending_count == 0
    })
    .await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_survives_connection_close_and_unsubscribe_deletes_it() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "d").await;
    c.publish("ch", b"1").await;
    let mut s = c.subscribe(durable(&c, "ch", "dur")).await.unwrap();
    assert_eq!(s.next().await.sequence, 1);
    s.ack(1).await;
    assert_eq!(c.close().await, "");
    c.publish_async("ch", b"ignored").await; // refused: connection closed
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "d").await;
    c.publish("ch", b"2").await;
    let mut s = c.subscribe(durable(&c, "ch", "dur")).await.unwrap();
    let m = s.next().await;
    assert_eq!((m.sequence, m.redelivered), (2, false));
    // Unsubscribe deletes the durable: a new one starts at its start position again.
    assert_eq!(c.unsubscribe(&s, false).await, "");
    assert!(b.snapshot().await.channels[0].subs.is_empty());
    let mut s = c.subscribe(durable(&c, "ch", "dur")).await.unwrap();
    assert_eq!(s.next_seqs(2).await, [1, 2]);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_durable_is_rejected() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "d").await;
    let _s = c.subscribe(durable(&c, "ch", "dur")).await.unwrap();
    let err = c.subscribe(durable(&c, "ch", "dur")).await.err();
    assert_eq!(err.as_deref(), Some("stan: duplicate durable registration"));
    // Same name on another channel or from another client is a different durable.
    c.subscribe(durable(&c, "other", "dur")).await.unwrap();
    let c2 = Conn::connect(&b.client_url(), b.cluster_id(), "d2").await;
    c2.subscribe(durable(&c2, "ch", "dur")).await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_durable_takes_over_the_active_one() {
    let b = start_broker(|cfg| cfg.replace_durable = true).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "d").await;
    c.publish("ch", b"1").await;
    let mut old = c.subscribe(durable(&c, "ch", "dur")).await.unwrap();
    assert_eq!(old.next().await.sequence, 1);
    let mut new = c.subscribe(durable(&c, "ch", "dur")).await.unwrap();
    let m = new.next().await;
    assert_eq!((m.sequence, m.redelivered), (1, true));
    c.publish("ch", b"2").await;
    assert_eq!(new.next().await.sequence, 2);
    old.expect_nothing(Duration::from_millis(30)).await;
    assert_eq!(b.snapshot().await.channels[0].subs.len(), 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_delivers_each_message_to_one_member() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "q").await;
    let mut a = c.subscribe(queue(&c, "ch", "grp", "")).await.unwrap();
    let mut m = c.subscribe(queue(&c, "ch", "grp", "")).await.unwrap();
    for i in 1..=10u8 {
        c.publish("ch", &[i]).await;
    }
    let mut seen = BTreeSet::new();
    let mut got_a = 0;
    let mut got_b = 0;
    while seen.len() < 10 {
        tokio::select! {
            x = a.next() => { assert!(seen.insert(x.sequence)); got_a += 1; }
            x = m.next() => { assert!(seen.insert(x.sequence)); got_b += 1; }
        }
    }
    assert!(
        got_a > 0 && got_b > 0,
        "both members used ({got_a}/{got_b})"
    );
    a.expect_nothing(Duration::from_millis(30)).await;
    m.expect_nothing(Duration::from_millis(1)).await;
    let snap = b.snapshot().await;
    assert!(snap.channels[0]
        .subs
        .iter()
        .all(|s| s.queue_name == "grp" && s.last_sent == 10));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_member_joining_later_ignores_start_position() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "q").await;
    c.publish("ch", b"1").await;
    let mut a = c.subscribe(queue(&c, "ch", "grp", "")).await.unwrap();
    assert_eq!(a.next().await.sequence, 1);
    // The second member asks for everything but joins at the group's position.
    let mut second = c.subscribe(queue(&c, "ch", "grp", "")).await.unwrap();
    second.expect_nothing(Duration::from_millis(50)).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_member_leaving_hands_pending_to_remaining_members() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "q").await;
    let mut ra = queue(&c, "ch", "grp", "");
    ra.max_in_flight = 10;
    let a = c.subscribe(ra).await.unwrap();
    // Member b stalls at once so everything goes to a.
    let mut rb = queue(&c, "ch", "grp", "");
    rb.max_in_flight = 1;
    let mut bsub = c.subscribe(rb).await.unwrap();
    for i in 1..=4u8 {
        c.publish("ch", &[i]).await;
    }
    // b (fewest pending) takes one message, then is stalled; a gets the rest.
    let first = bsub.next().await.sequence;
    wait_snapshot(&b, "a has pending", |sn| {
        sn.channels[0]
            .subs
            .iter()
            .map(|s| s.pending_count)
            .sum::<usize>()
            == 4
    })
    .await;
    bsub.ack(first).await;
    assert_eq!(c.unsubscribe(&a, false).await, "");
    // a's pending messages come to b, flagged redelivered.
    let mut got = BTreeSet::new();
    while got.len() < 3 {
        let m = bsub.next().await;
        assert!(
            m.redelivered,
            "handed-over message {} is redelivered",
            m.sequence
        );
        got.insert(m.sequence);
        bsub.ack(m.sequence).await;
    }
    let expected: BTreeSet<u64> = (1..=4).filter(|s| *s != first).collect();
    assert_eq!(got, expected);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_durable_queue_group_disappears_with_last_member() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "q").await;
    c.publish("ch", b"1").await;
    let mut a = c.subscribe(queue(&c, "ch", "grp", "")).await.unwrap();
    assert_eq!(a.next().await.sequence, 1);
    assert_eq!(c.unsubscribe(&a, true).await, "");
    // A new member creates a new group: its start position applies again.
    let mut n = c.subscribe(queue(&c, "ch", "grp", "")).await.unwrap();
    assert_eq!(n.next().await.sequence, 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_queue_name_cannot_contain_colon() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "q").await;
    let err = c.subscribe(queue(&c, "ch", "grp", "a:b")).await.err();
    assert_eq!(
        err.as_deref(),
        Some("stan: durable name of a durable queue subscriber can't contain the character ':'")
    );
    // Plain durables may contain ':'.
    c.subscribe(durable(&c, "ch", "a:b")).await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_queue_group_survives_close_of_last_member() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "q1").await;
    for i in 1..=3u8 {
        c.publish("ch", &[i]).await;
    }
    let mut m = c.subscribe(queue(&c, "ch", "grp", "dur")).await.unwrap();
    assert_eq!(m.next_seqs(3).await, [1, 2, 3]);
    m.ack(1).await;
    wait_snapshot(&b, "ack", |sn| sn.channels[0].subs[0].pending_count == 2).await;
    {
        let snap = b.snapshot().await;
        let s = &snap.channels[0].subs[0];
        assert_eq!(
            (s.queue_name.as_str(), s.durable_name.as_str(), s.is_durable),
            ("dur:grp", "", true)
        );
    }
    // The connection closes: the group stays offline.
    assert_eq!(c.close().await, "");
    let snap = b.snapshot().await;
    assert_eq!(snap.channels[0].subs.len(), 1);
    assert!(snap.channels[0].subs[0].is_offline);
    c.publish_async("ch", b"x").await; // refused, closed connection
                                       // Any client can take the group over; pending first, then new messages.
    let mut c2 = Conn::connect(&b.client_url(), b.cluster_id(), "q2").await;
    c2.publish("ch", &[4]).await;
    let mut req = queue(&c2, "ch", "grp", "dur");
    req.start_position = pb::StartPosition::NewOnly as i32;
    let mut m2 = c2.subscribe(req).await.unwrap();
    let a = m2.next().await;
    let bm = m2.next().await;
    assert_eq!(
        (a.sequence, a.redelivered, bm.sequence, bm.redelivered),
        (2, true, 3, true)
    );
    let n = m2.next().await;
    assert_eq!((n.sequence, n.redelivered), (4, false));
    // Last member unsubscribes: the group is destroyed.
    assert_eq!(c2.unsubscribe(&m2, false).await, "");
    assert!(b.snapshot().await.channels[0].subs.is_empty());
    let mut fresh = c2.subscribe(queue(&c2, "ch", "grp", "dur")).await.unwrap();
    assert_eq!(fresh.next().await.sequence, 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_queue_non_last_member_close_just_removes_it() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "q").await;
    let m1 = c.subscribe(queue(&c, "ch", "grp", "dur")).await.unwrap();
    let mut m2 = c.subscribe(queue(&c, "ch", "grp", "dur")).await.unwrap();
    assert_eq!(c.unsubscribe(&m1, true).await, "");
    let snap = b.snapshot().await;
    assert_eq!(snap.channels[0].subs.len(), 1);
    assert!(!snap.channels[0].subs[0].is_offline);
    c.publish("ch", b"1").await;
    assert_eq!(m2.next().await.sequence, 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_under_load_delivers_every_message_exactly_once() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "load").await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut r = queue(&c, "ch", "grp", "");
        r.max_in_flight = 7;
        members.push(c.subscribe(r).await.unwrap());
    }
    const N: u64 = 3000;
    let mut guids = Vec::new();
    for i in 0..N {
        guids.push(c.publish_async("ch", &i.to_be_bytes()).await);
    }
    for g in guids {
        assert_eq!(c.next_pub_ack().await.guid, g);
    }
    let mut seen = BTreeSet::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for mut m in members {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let msg = m.next().await;
                m.ack(msg.sequence).await;
                if tx.send(msg.sequence).is_err() {
                    return;
                }
            }
        });
    }
    while (seen.len() as u64) < N {
        let seq = within("load delivery", rx.recv()).await.unwrap();
        assert!(seen.insert(seq), "sequence {seq} delivered twice");
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>()
    );
    drop(rx);
    b.shutdown().await;
}

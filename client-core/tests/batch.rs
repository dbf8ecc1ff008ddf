//! Batch-shaped operations: `next_batch`, `Batch` taking and auto-acks, `Message::ack_many`,
//! `start_publish_batch`.

mod common;

use std::time::Duration;

use common::{assert_quiet, buffered, next_msg, publish_n, setup, within, TestServer};
use stan_client::{Batch, ErrorKind, Message, SubscribeOptions, Subscription};

async fn batch(sub: &mut Subscription, max: usize) -> Batch {
    within("a batch", sub.next_batch(max))
        .await
        .expect("subscription ended")
        .expect("batch")
}

fn seqs(batch: &Batch) -> Vec<u64> {
    batch.messages().iter().map(|m| m.sequence()).collect()
}

/// Manual acks with `ack_wait`, from the start of the channel.
fn manual(ack_wait_secs: u64) -> SubscribeOptions {
    SubscribeOptions::new()
        .deliver_all_available()
        .manual_acks(true)
        .ack_wait(Duration::from_secs(ack_wait_secs))
}

/// The in-process broker's view of `ch`: unacked messages of its subscriptions, and
/// redeliveries so far. `None` against an external server.
async fn server_view(srv: &TestServer, ch: &str) -> Option<(usize, u64)> {
    let snap = srv.broker()?.snapshot().await;
    let channel = snap
        .channels
        .iter()
        .find(|c| c.name == ch)
        .expect("channel");
    let pending = channel.subs.iter().map(|s| s.pending_count).sum();
    Some((pending, channel.counters.redeliveries))
}

/// Wait until the in-process broker holds no unacked message of `ch`, and check that it did
/// not redeliver any (the client acks a redelivered copy of an acked message by itself, so
/// only the server tells whether the first acks arrived). Nothing to check against an
/// external server.
async fn server_acked_all(srv: &TestServer, ch: &str) {
    within("the server to count every ack", async {
        while let Some((pending, redeliveries)) = server_view(srv, ch).await {
            assert_eq!(redeliveries, 0, "redelivered on {ch}");
            if pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn batches_hand_out_what_is_buffered_up_to_max_in_order() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 10).await;
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    buffered(&sub, 10).await;
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    for _ in 0..3 {
        let b = batch(&mut sub, 4).await;
        sizes.push(b.len());
        all.extend(b.map(|m| m.sequence()));
    }
    assert_eq!(sizes, vec![4, 4, 2]);
    assert_eq!(all, (1..=10).collect::<Vec<u64>>());
    assert!(sub.try_next_batch(4).is_none(), "nothing buffered: no wait");
    // A max of 0 counts as 1.
    client.publish(&ch, "m11").await.unwrap();
    let b = batch(&mut sub, 0).await;
    assert_eq!(seqs(&b), vec![11]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_ack_follows_taking_across_batch_edges_and_untaken_messages_stay_unacked() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 6).await;
    let opts = SubscribeOptions::durable("edges")
        .deliver_all_available()
        .ack_wait(Duration::from_secs(30));
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    buffered(&sub, 6).await;
    let first = batch(&mut sub, 3).await;
    assert_eq!(
        first.map(|m| m.sequence()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // Asking for the next batch acks #3, the message taken last.
    let mut second = batch(&mut sub, 3).await;
    assert_eq!(seqs(&second), vec![4, 5, 6]);
    let four = second.next().unwrap();
    assert_eq!(four.sequence(), 4);
    // #5 and #6 are read (as a binding copying a batch does) but never taken: dropping the
    // batch and every clone of them leaves them unacked.
    let unseen: Vec<_> = second.messages()[1..].to_vec();
    drop(second);
    drop(unseen);
    drop(four);
    sub.close().await.unwrap();
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    let again = next_msg(&mut sub).await;
    assert_eq!(
        again.sequence(),
        5,
        "#4 was taken (acked at close), #5 was not"
    );
    assert!(again.redelivered());
    client.close().await.unwrap();
}

#[tokio::test]
async fn mark_taken_acks_all_but_the_newest_which_close_acks() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 5).await;
    let opts = SubscribeOptions::durable("marks")
        .deliver_all_available()
        .ack_wait(Duration::from_secs(30));
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    buffered(&sub, 5).await;
    let mut b = batch(&mut sub, 5).await;
    b.mark_taken(3);
    assert_eq!(b.taken(), 3);
    b.mark_taken(1); // going back changes nothing
    assert_eq!(b.taken(), 3);
    assert_eq!(b.next().map(|m| m.sequence()), Some(4));
    drop(b);
    sub.close().await.unwrap();
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 5);
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_closed_subscription_hands_out_nothing_more_from_a_batch() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 5).await;
    let opts = SubscribeOptions::durable("partly")
        .deliver_all_available()
        .ack_wait(Duration::from_secs(30));
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    buffered(&sub, 5).await;
    let mut b = batch(&mut sub, 5).await;
    assert_eq!(b.next().map(|m| m.sequence()), Some(1));
    assert_eq!(b.next().map(|m| m.sequence()), Some(2));
    sub.handle().close().await.unwrap();
    assert!(b.next().is_none(), "nothing is handed out after close");
    // Too late to ack anything: reported after the close, #3 comes again.
    b.mark_taken(3);
    drop(b);
    assert!(sub.next_batch(5).await.is_none());
    drop(sub);
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    assert_eq!(
        next_msg(&mut sub).await.sequence(),
        3,
        "#2 was acked at close"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn back_pressure_keeps_batches_within_max_in_flight_and_loses_nothing() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 100).await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new()
                .deliver_all_available()
                .max_in_flight(10),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 100 {
        let b = batch(&mut sub, 256).await;
        assert!(b.len() <= 10, "a batch of {} with 10 in flight", b.len());
        for m in b {
            // The application is slower than the broker.
            tokio::task::yield_now().await;
            got.push(m.sequence());
        }
    }
    assert_eq!(got, (1..=100).collect::<Vec<u64>>());
    client.close().await.unwrap();
}

#[tokio::test]
async fn ack_many_acks_a_manual_batch_in_one_call() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 5).await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new()
                .deliver_all_available()
                .manual_acks(true)
                .ack_wait(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    buffered(&sub, 5).await;
    let b = batch(&mut sub, 5).await;
    assert_eq!(seqs(&b), vec![1, 2, 3, 4, 5]);
    stan_client::Message::ack_many(b.messages()).unwrap();
    stan_client::Message::ack_many(b.messages()).unwrap(); // twice is harmless
    drop(b);
    assert_quiet(&mut sub, Duration::from_millis(1600)).await;

    let mut auto = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    let b = batch(&mut auto, 5).await;
    let err = stan_client::Message::ack_many(b.messages()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    client.close().await.unwrap();
}

#[tokio::test]
async fn ack_many_acks_every_message_of_a_batch() {
    let (srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 50).await;
    // A long ack wait: only the acks of `ack_many` can empty the server's pending list in time.
    let mut sub = client.subscribe(&ch, manual(60)).await.unwrap();
    buffered(&sub, 50).await;
    let b = batch(&mut sub, 50).await;
    assert_eq!(seqs(&b), (1..=50).collect::<Vec<u64>>());
    Message::ack_many(b.messages()).unwrap();
    server_acked_all(&srv, &ch).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn ack_many_acks_the_messages_of_two_subscriptions_in_one_call() {
    let (srv, client, ch) = setup().await;
    let other = common::unique("ch");
    publish_n(&client, &ch, 1, 4).await;
    publish_n(&client, &other, 1, 4).await;
    let mut a = client.subscribe(&ch, manual(60)).await.unwrap();
    let mut b = client.subscribe(&other, manual(60)).await.unwrap();
    buffered(&a, 4).await;
    buffered(&b, 4).await;
    let (ba, bb) = (batch(&mut a, 4).await, batch(&mut b, 4).await);
    // Interleaved, and with a message of each acked before (skipped).
    ba.messages()[1].ack_now().unwrap();
    bb.messages()[2].ack_now().unwrap();
    let mixed: Vec<&Message> = ba
        .messages()
        .iter()
        .zip(bb.messages())
        .flat_map(|(x, y)| [x, y])
        .collect();
    Message::ack_many(mixed).unwrap();
    server_acked_all(&srv, &ch).await;
    server_acked_all(&srv, &other).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn ack_many_stops_at_a_message_of_an_auto_ack_subscription() {
    let (srv, client, ch) = setup().await;
    let other = common::unique("ch");
    publish_n(&client, &ch, 1, 3).await;
    publish_n(&client, &other, 1, 1).await;
    let mut sub = client.subscribe(&ch, manual(2)).await.unwrap();
    let mut auto = client
        .subscribe(&other, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    buffered(&sub, 3).await;
    let b = batch(&mut sub, 3).await;
    let auto_msg = next_msg(&mut auto).await;
    let m = b.messages();
    let err = Message::ack_many([&m[0], &m[1], &auto_msg, &m[2]]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), auto_msg.ack_now().unwrap_err().to_string());
    drop(b);
    // #1 and #2 were acked; #3, after the failing message, was not.
    let again = next_msg(&mut sub).await;
    assert_eq!((again.sequence(), again.redelivered()), (3, true));
    if let Some((_, redeliveries)) = server_view(&srv, &ch).await {
        assert_eq!(redeliveries, 1, "only #3 was redelivered");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn ack_many_stops_at_a_message_of_a_closed_subscription() {
    let (srv, client, ch) = setup().await;
    let other = common::unique("ch");
    publish_n(&client, &ch, 1, 2).await;
    publish_n(&client, &other, 1, 1).await;
    let mut open = client.subscribe(&ch, manual(2)).await.unwrap();
    let mut closed = client.subscribe(&other, manual(60)).await.unwrap();
    buffered(&open, 2).await;
    let b = batch(&mut open, 2).await;
    let gone = next_msg(&mut closed).await;
    closed.close().await.unwrap();
    let only_closed = Message::ack_many([&gone]).unwrap_err();
    assert_eq!(only_closed.kind(), ErrorKind::InvalidState);
    let m = b.messages();
    let err = Message::ack_many([&m[0], &gone, &m[1]]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), gone.ack_now().unwrap_err().to_string());
    drop(b);
    // #1 was acked; #2, after the failing message, was not.
    let again = next_msg(&mut open).await;
    assert_eq!((again.sequence(), again.redelivered()), (2, true));
    if let Some((_, redeliveries)) = server_view(&srv, &ch).await {
        assert_eq!(redeliveries, 1, "only #2 was redelivered");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn deferred_acks_go_out_at_flush_or_when_the_batch_is_dropped() {
    let (srv, client, ch) = setup().await;
    let other = common::unique("ch");
    publish_n(&client, &ch, 1, 40).await;
    let mut sub = client.subscribe(&ch, manual(60)).await.unwrap();
    buffered(&sub, 40).await;
    let mut b = batch(&mut sub, 40).await;
    for i in 0..20 {
        b.defer_ack(i).unwrap();
        b.defer_ack(i).unwrap(); // twice is a no-op
    }
    // Not sent yet: a publish on the same connection after them is stored first.
    publish_n(&client, &other, 1, 1).await;
    if let Some((pending, _)) = server_view(&srv, &ch).await {
        assert_eq!(pending, 40, "deferred acks were sent before the flush");
    }
    b.flush_acks().unwrap();
    b.flush_acks().unwrap(); // nothing left: harmless
    for i in 20..40 {
        b.defer_ack(i).unwrap();
    }
    drop(b); // the rest goes out with the batch
    server_acked_all(&srv, &ch).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn defer_ack_fails_at_once_as_ack_now_does() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 2).await;
    let mut auto = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    let mut b = batch(&mut auto, 1).await;
    let err = b.defer_ack(0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(
        err.to_string(),
        b.messages()[0].ack_now().unwrap_err().to_string()
    );
    drop(b);

    let mut sub = client.subscribe(&ch, manual(60)).await.unwrap();
    buffered(&sub, 2).await;
    let mut b = batch(&mut sub, 2).await;
    assert_eq!(
        b.defer_ack(7).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    sub.close().await.unwrap();
    let err = b.defer_ack(0).unwrap_err();
    assert_eq!(
        err.to_string(),
        b.messages()[0].ack_now().unwrap_err().to_string()
    );
    assert_eq!(err.kind(), ErrorKind::InvalidState);

    let mut sub = client.subscribe(&ch, manual(60)).await.unwrap();
    buffered(&sub, 2).await;
    let mut b = batch(&mut sub, 2).await;
    b.defer_ack(0).unwrap();
    client.close().await.unwrap();
    let err = b.defer_ack(1).unwrap_err();
    assert_eq!(
        err.to_string(),
        b.messages()[1].ack_now().unwrap_err().to_string()
    );
    // The ack deferred before the close has nowhere to go.
    assert_eq!(
        b.flush_acks().unwrap_err().kind(),
        ErrorKind::ConnectionClosed
    );
}

#[tokio::test]
async fn a_manual_batch_left_unacked_is_redelivered() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 3).await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new()
                .deliver_all_available()
                .manual_acks(true)
                .ack_wait(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    buffered(&sub, 3).await;
    let b = batch(&mut sub, 3).await;
    stan_client::Message::ack_many(&b.messages()[..1]).unwrap();
    drop(b);
    let again = batch(&mut sub, 3).await;
    assert_eq!(seqs(&again)[0], 2);
    assert!(again.messages()[0].redelivered());
    client.close().await.unwrap();
}

#[tokio::test]
async fn publish_batch_keeps_call_order_and_reports_every_ack() {
    let (_srv, client, ch) = setup().await;
    let items: Vec<(String, String)> = (0..200).map(|i| (ch.clone(), format!("p{i}"))).collect();
    let mut pb = client.start_publish_batch(items).unwrap();
    assert_eq!(pb.guids().len(), 200);
    let mut outcomes = vec![None; 200];
    let mut wakes = 0;
    while let Some(acks) = within("acks", pb.next_acks()).await {
        wakes += 1;
        for (i, outcome) in acks {
            assert!(outcomes[i].is_none(), "ack {i} reported twice");
            outcomes[i] = Some(outcome.unwrap());
        }
    }
    assert_eq!(pb.pending(), 0);
    assert!(wakes <= 200);
    for (i, guid) in outcomes.iter().enumerate() {
        assert_eq!(guid.as_deref(), Some(pb.guids()[i].as_str()));
    }
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    for i in 0..200 {
        let m = next_msg(&mut sub).await;
        assert_eq!(m.data(), format!("p{i}").as_bytes());
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn publish_batch_with_a_bad_channel_publishes_nothing() {
    let (_srv, client, ch) = setup().await;
    let items = vec![
        (ch.as_str(), "first"),
        ("bad..name", "x"),
        (ch.as_str(), "z"),
    ];
    let err = client.start_publish_batch(items).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("bad..name"), "{err}");
    client.publish(&ch, "marker").await.unwrap();
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!((m.sequence(), &m.data()[..]), (1, &b"marker"[..]));
    client.close().await.unwrap();
}

#[tokio::test]
async fn publish_batch_on_a_closed_client_fails_at_once() {
    let (_srv, client, ch) = setup().await;
    client.close().await.unwrap();
    let err = client
        .start_publish_batch([(ch.as_str(), "x")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
}

#[tokio::test]
async fn a_publish_batch_cut_short_by_close_still_reports_every_outcome() {
    let (_srv, client, ch) = setup().await;
    let items: Vec<(String, Vec<u8>)> = (0..2000).map(|_| (ch.clone(), vec![7u8; 64])).collect();
    let mut pb = client.start_publish_batch(items).unwrap();
    client.close().await.unwrap();
    let mut seen = vec![false; 2000];
    while let Some(acks) = within("outcomes after close", pb.next_acks()).await {
        for (i, outcome) in acks {
            assert!(!seen[i], "outcome {i} twice");
            seen[i] = true;
            if let Err(e) = outcome {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::ConnectionClosed | ErrorKind::ConnectionLost
                    ),
                    "{e}"
                );
            }
        }
    }
    assert!(seen.iter().all(|s| *s), "every publish got its outcome");
    assert!(pb.try_acks().is_empty());
}

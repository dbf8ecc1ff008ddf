//! Subscriptions: start positions, durables, queue groups, acks, flow control, close.

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use common::{assert_quiet, next_msg, next_msgs, publish_n, setup, unique, within};
use futures::StreamExt;
use stan_client::{ErrorKind, StartPosition, SubscribeOptions};
use stan_protocol::errors;

fn seqs(msgs: &[stan_client::Message]) -> Vec<u64> {
    msgs.iter().map(|m| m.sequence()).collect()
}

#[tokio::test]
async fn message_fields() {
    let (_srv, client, ch) = setup().await;
    let before = SystemTime::now() - Duration::from_secs(5);
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    client.publish(&ch, "payload").await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!(m.sequence(), 1);
    assert_eq!(m.subject(), ch);
    assert_eq!(&m.data()[..], b"payload");
    assert!(m.timestamp() > before && m.timestamp() < SystemTime::now() + Duration::from_secs(5));
    assert!(m.timestamp_nanos() > 0);
    assert!(!m.redelivered());
    assert_eq!(m.redelivery_count(), 0);
    assert_eq!(sub.subject(), ch);
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_new_only() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 2).await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new().start_at(StartPosition::NewOnly),
        )
        .await
        .unwrap();
    publish_n(&client, &ch, 3, 3).await;
    assert_eq!(next_msg(&mut sub).await.sequence(), 3);
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_last_received() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 3).await;
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().start_with_last_received())
        .await
        .unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!((m.sequence(), &m.data()[..]), (3, &b"m3"[..]));
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_all_available() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 3).await;
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    assert_eq!(seqs(&next_msgs(&mut sub, 3).await), vec![1, 2, 3]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_at_sequence() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 5).await;
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().start_at_sequence(3))
        .await
        .unwrap();
    assert_eq!(seqs(&next_msgs(&mut sub, 3).await), vec![3, 4, 5]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_at_time() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 2).await;
    let t = SystemTime::now();
    // Timestamps are the point of this test: leave a gap after `t`.
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_n(&client, &ch, 3, 4).await;
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().start_at_time(t))
        .await
        .unwrap();
    assert_eq!(seqs(&next_msgs(&mut sub, 2).await), vec![3, 4]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_at_time_delta() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    publish_n(&client, &ch, 3, 3).await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new().start_at_time_delta(Duration::from_millis(750)),
        )
        .await
        .unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 3);
    client.close().await.unwrap();
}

#[tokio::test]
async fn durable_resumes_where_it_stopped() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 3).await;
    let opts = SubscribeOptions::durable("dur").deliver_all_available();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    let got = next_msgs(&mut sub, 3).await;
    assert_eq!(seqs(&got), vec![1, 2, 3]);
    drop(got); // auto-ack: dropping the taken messages acks them
    sub.close().await.unwrap();
    publish_n(&client, &ch, 4, 5).await;
    // The start position is ignored on resume.
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    assert_eq!(seqs(&next_msgs(&mut sub, 2).await), vec![4, 5]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn duplicate_active_durable_is_rejected() {
    let (_srv, client, ch) = setup().await;
    let _sub = client
        .subscribe(&ch, SubscribeOptions::durable("dur"))
        .await
        .unwrap();
    let err = client
        .subscribe(&ch, SubscribeOptions::durable("dur"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerRejected);
    assert_eq!(err.message(), errors::DUPLICATE_DURABLE);
    client.close().await.unwrap();
}

#[tokio::test]
async fn queue_group_delivers_each_message_to_one_member() {
    let (srv, client, ch) = setup().await;
    let other = srv.options(&unique("c")).connect().await.unwrap();
    let mut a = client
        .subscribe(&ch, SubscribeOptions::queue("q"))
        .await
        .unwrap();
    let mut b = other
        .subscribe(&ch, SubscribeOptions::queue("q"))
        .await
        .unwrap();
    let n = 40;
    publish_n(&client, &ch, 1, n).await;
    let mut seen = HashSet::new();
    let (mut from_a, mut from_b) = (0, 0);
    while seen.len() < n {
        let m = within("queue message", async {
            tokio::select! {
                m = a.next() => { from_a += 1; m }
                m = b.next() => { from_b += 1; m }
            }
        })
        .await
        .unwrap()
        .unwrap();
        assert!(seen.insert(m.sequence()), "duplicate {}", m.sequence());
    }
    assert!(from_a > 0 && from_b > 0, "a={from_a} b={from_b}");
    assert_quiet(&mut a, Duration::from_millis(200)).await;
    client.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test]
async fn durable_queue_group_survives_its_last_member_closing() {
    let (srv, client, ch) = setup().await;
    let opts = SubscribeOptions::durable("dur")
        .queue_group("workers")
        .deliver_all_available();
    publish_n(&client, &ch, 1, 2).await;
    let mut m1 = client.subscribe(&ch, opts.clone()).await.unwrap();
    let got = next_msgs(&mut m1, 2).await;
    assert_eq!(seqs(&got), vec![1, 2]);
    drop(got);
    m1.close().await.unwrap();
    publish_n(&client, &ch, 3, 4).await;
    // Any client can take over the durable group.
    let other = srv.options(&unique("c")).connect().await.unwrap();
    let mut m2 = other.subscribe(&ch, opts.clone()).await.unwrap();
    assert_eq!(seqs(&next_msgs(&mut m2, 2).await), vec![3, 4]);
    // Unsubscribing the last member destroys the group: a new one starts over.
    m2.unsubscribe().await.unwrap();
    let mut m3 = other.subscribe(&ch, opts).await.unwrap();
    assert_eq!(next_msg(&mut m3).await.sequence(), 1);
    client.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test]
async fn manual_ack_redelivery_after_ack_wait() {
    let (_srv, client, ch) = setup().await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new()
                .manual_acks(true)
                .ack_wait(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(sub.manual_acks());
    client.publish(&ch, "needs ack").await.unwrap();
    let first = next_msg(&mut sub).await;
    assert!(!first.redelivered());
    // Not acked: the server sends it again after the ack wait.
    let again = next_msg(&mut sub).await;
    assert_eq!(again.sequence(), first.sequence());
    assert!(again.redelivered());
    assert!(again.redelivery_count() >= 1);
    again.ack().await.unwrap();
    first.ack().await.unwrap(); // acking twice is harmless
                                // Acked: no further redelivery.
    assert_quiet(&mut sub, Duration::from_millis(1600)).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn max_in_flight_limits_unacked_messages() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 4).await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new()
                .deliver_all_available()
                .manual_acks(true)
                .max_in_flight(2),
        )
        .await
        .unwrap();
    let two = next_msgs(&mut sub, 2).await;
    assert_eq!(seqs(&two), vec![1, 2]);
    assert_quiet(&mut sub, Duration::from_millis(400)).await;
    two[0].ack().await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 3);
    two[1].ack().await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 4);
    client.close().await.unwrap();
}

#[tokio::test]
async fn unsubscribe_removes_a_durable_close_keeps_it() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 2).await;
    let opts = SubscribeOptions::durable("d").deliver_all_available();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    drop(next_msgs(&mut sub, 2).await);
    sub.close().await.unwrap();
    // Close kept it: resuming sees only the new message.
    client.publish(&ch, "m3").await.unwrap();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!(m.sequence(), 3);
    drop(m);
    sub.unsubscribe().await.unwrap();
    // Unsubscribe deleted it: the same name starts over from the start position.
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 1);
    client.close().await.unwrap();
}

#[tokio::test]
async fn closing_twice_and_acking_after_close_are_invalid_state() {
    let (_srv, client, ch) = setup().await;
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().manual_acks(true))
        .await
        .unwrap();
    client.publish(&ch, "x").await.unwrap();
    let m = next_msg(&mut sub).await;
    sub.close().await.unwrap();
    assert!(within("end", sub.next()).await.is_none());
    let err = sub.close().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.message(), errors::INVALID_SUB);
    assert_eq!(
        sub.unsubscribe().await.unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    assert_eq!(m.ack().await.unwrap_err().kind(), ErrorKind::InvalidState);
    client.close().await.unwrap();
}

#[tokio::test]
async fn ack_in_auto_ack_mode_is_an_error() {
    let (_srv, client, ch) = setup().await;
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    client.publish(&ch, "x").await.unwrap();
    let m = next_msg(&mut sub).await;
    let err = m.ack().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.message(), errors::MANUAL_ACK_IN_AUTO_MODE);
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_ack_happens_on_next_request_and_not_on_a_crash() {
    let (_srv, client, ch) = setup().await;
    let opts = SubscribeOptions::durable("auto")
        .deliver_all_available()
        .ack_wait(Duration::from_secs(30));
    publish_n(&client, &ch, 1, 3).await;
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    let m1 = next_msg(&mut sub).await;
    assert_eq!(m1.sequence(), 1);
    let keep = m1.clone();
    drop(m1);
    // Asking for the next message acks m1 (a clone still held does not matter).
    let m2 = next_msg(&mut sub).await;
    assert_eq!(m2.sequence(), 2);
    drop(keep);
    // m2's handler crashes: it is dropped while panicking, so it stays unacked.
    let crashed = tokio::spawn(async move {
        let _m = m2;
        panic!("handler crashed");
    })
    .await;
    assert!(crashed.unwrap_err().is_panic());
    sub.close().await.unwrap();
    // The durable gets m2 again (and m3, never acked); m1 is not redelivered.
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    let again = next_msgs(&mut sub, 2).await;
    assert_eq!(seqs(&again), vec![2, 3]);
    assert!(again[0].redelivered());
    client.close().await.unwrap();
}

#[tokio::test]
async fn dropping_a_subscription_closes_it() {
    let (_srv, client, ch) = setup().await;
    let opts = SubscribeOptions::durable("dropped").deliver_all_available();
    publish_n(&client, &ch, 1, 1).await;
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    drop(next_msg(&mut sub).await);
    drop(sub);
    // The durable was closed (not active any more) and kept: resubscribing works and resumes.
    client.publish(&ch, "m2").await.unwrap();
    let mut sub = within("resubscribe", async {
        loop {
            match client.subscribe(&ch, opts.clone()).await {
                Ok(s) => return s,
                // The drop's close is asynchronous; it may not be processed yet.
                Err(e)
                    if e.kind() == ErrorKind::ServerRejected
                        && e.message() == errors::DUPLICATE_DURABLE =>
                {
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert_eq!(next_msg(&mut sub).await.sequence(), 2);
    client.close().await.unwrap();
}

#[tokio::test]
async fn subscribe_validates_options() {
    let (_srv, client, ch) = setup().await;
    let cases = [
        ("bad.*", SubscribeOptions::new()),
        (ch.as_str(), SubscribeOptions::new().max_in_flight(0)),
        (
            ch.as_str(),
            SubscribeOptions::new().ack_wait(Duration::from_millis(10)),
        ),
        (
            ch.as_str(),
            SubscribeOptions::durable("a:b").queue_group("q"),
        ),
    ];
    for (subject, opts) in cases {
        let err = client.subscribe(subject, opts).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_ack_close_acks_the_last_message_taken_even_if_still_held() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 5).await;
    let opts = SubscribeOptions::durable("held").deliver_all_available();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    // Take 3 and keep every one, as a garbage-collected host does until it collects them.
    let held = next_msgs(&mut sub, 3).await;
    assert_eq!(seqs(&held), vec![1, 2, 3]);
    sub.close().await.unwrap();
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    // #4 and #5 were sent to the closed subscription but never taken: #4 comes first
    // (flagged redelivered), nothing before it comes again.
    let m = next_msg(&mut sub).await;
    assert_eq!(m.sequence(), 4);
    drop(held);
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_ack_unsubscribe_of_a_queue_member_acks_the_last_message_taken() {
    let (srv, client, ch) = setup().await;
    let other = srv.options(&unique("c")).connect().await.unwrap();
    let opts = SubscribeOptions::queue("q").ack_wait(Duration::from_secs(1));
    let mut a = client.subscribe(&ch, opts.clone()).await.unwrap();
    client.publish(&ch, "only").await.unwrap();
    let held = next_msg(&mut a).await;
    let mut b = other.subscribe(&ch, opts).await.unwrap();
    a.unsubscribe().await.unwrap();
    // Unacked, the server would redeliver it to the remaining member after the ack wait.
    assert_quiet(&mut b, Duration::from_millis(1500)).await;
    drop(held);
    client.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test]
async fn auto_ack_drop_acks_the_last_message_taken_even_if_still_held() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 3).await;
    let opts = SubscribeOptions::durable("held-drop").deliver_all_available();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    let held = next_msgs(&mut sub, 2).await;
    drop(sub);
    let mut sub = within("resubscribe", async {
        loop {
            match client.subscribe(&ch, opts.clone()).await {
                Ok(s) => return s,
                // The drop's close is asynchronous; it may not be processed yet.
                Err(e)
                    if e.kind() == ErrorKind::ServerRejected
                        && e.message() == errors::DUPLICATE_DURABLE =>
                {
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    // #3 was sent to the dropped subscription but never taken: it is the first again.
    assert_eq!(next_msg(&mut sub).await.sequence(), 3);
    drop(held);
    client.close().await.unwrap();
}

#[tokio::test]
async fn handle_close_ends_a_pending_next_and_acks_the_last_message() {
    let (_srv, client, ch) = setup().await;
    let opts = SubscribeOptions::durable("handled").deliver_all_available();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    let handle = sub.handle();
    assert!(!handle.is_closed());
    assert_eq!(handle.subject(), ch);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    // The reader owns the stream and waits in next(); it passes clones out and keeps going.
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(m) = sub.next().await {
            seen_tx.send(m.unwrap()).unwrap();
            n += 1;
        }
        (n, sub.is_closed())
    });
    publish_n(&client, &ch, 1, 2).await;
    let first = within("first", seen_rx.recv()).await.unwrap();
    let second = within("second", seen_rx.recv()).await.unwrap();
    assert_eq!((first.sequence(), second.sequence()), (1, 2));
    // The reader now waits for a message that never comes; closing ends that wait.
    handle.clone().close().await.unwrap();
    let (n, closed) = within("reader end", reader).await.unwrap();
    assert_eq!(n, 2);
    assert!(closed);
    assert!(handle.is_closed());
    let err = handle.close().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(
        handle.unsubscribe().await.unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    // Both taken messages count as handled although clones are still held.
    client.publish(&ch, "m3").await.unwrap();
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!(m.sequence(), 3);
    assert!(!m.redelivered());
    drop((first, second));
    client.close().await.unwrap();
}

#[tokio::test]
async fn handle_unsubscribe_ends_a_pending_next() {
    let (_srv, client, ch) = setup().await;
    let opts = SubscribeOptions::durable("gone").deliver_all_available();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    let handle = sub.handle();
    let reader = tokio::spawn(async move { sub.next().await.is_none() });
    handle.unsubscribe().await.unwrap();
    assert!(within("reader end", reader).await.unwrap());
    // The durable is gone: the same name starts over from the start position.
    client.publish(&ch, "m1").await.unwrap();
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 1);
    client.close().await.unwrap();
}

#[tokio::test]
async fn is_closed_follows_close_and_client_close() {
    let (_srv, client, ch) = setup().await;
    let mut a = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    let b = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    let b_handle = b.handle();
    assert!(!a.is_closed() && !b.is_closed() && !b_handle.is_closed());
    a.close().await.unwrap();
    assert!(a.is_closed());
    assert!(a.try_next().is_none());
    assert!(!b.is_closed());
    client.close().await.unwrap();
    assert!(b.is_closed());
    assert!(b_handle.is_closed());
    assert_eq!(
        b_handle.close().await.unwrap_err().kind(),
        ErrorKind::ConnectionClosed
    );
}

#[tokio::test]
async fn try_next_takes_buffered_messages_without_waiting() {
    let (_srv, client, ch) = setup().await;
    let opts = SubscribeOptions::durable("try").deliver_all_available();
    let mut sub = client.subscribe(&ch, opts.clone()).await.unwrap();
    assert!(sub.try_next().is_none(), "nothing buffered yet");
    assert!(!sub.is_closed());
    publish_n(&client, &ch, 1, 3).await;
    // Wait for the arrival without taking anything through next().
    let mut held = Vec::new();
    within("buffered messages", async {
        while held.len() < 2 {
            match sub.try_next() {
                Some(m) => held.push(m.unwrap()),
                None => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert_eq!(seqs(&held), vec![1, 2]);
    // Same auto-ack rule as next(): taking #2 acked #1, closing acks #2 (clones are held).
    sub.close().await.unwrap();
    assert!(sub.try_next().is_none());
    let mut sub = client.subscribe(&ch, opts).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 3);
    client.close().await.unwrap();
}

#[tokio::test]
async fn ack_now_acks_without_a_future() {
    let (_srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 2).await;
    let mut sub = client
        .subscribe(
            &ch,
            SubscribeOptions::new()
                .deliver_all_available()
                .manual_acks(true)
                .max_in_flight(1),
        )
        .await
        .unwrap();
    let m1 = next_msg(&mut sub).await;
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    // With one message in flight, #2 only comes once the ack reached the server.
    m1.ack_now().unwrap();
    m1.ack_now().unwrap(); // acking twice is harmless
    let m2 = next_msg(&mut sub).await;
    assert_eq!(m2.sequence(), 2);
    sub.close().await.unwrap();
    assert_eq!(m2.ack_now().unwrap_err().kind(), ErrorKind::InvalidState);

    let mut auto = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    let m = next_msg(&mut auto).await;
    let err = m.ack_now().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.message(), errors::MANUAL_ACK_IN_AUTO_MODE);
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_ack_client_close_acks_the_last_message_taken() {
    let (srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 3).await;
    let id = unique("c");
    let opts = SubscribeOptions::durable("client-close").deliver_all_available();
    let consumer = srv.options(&id).connect().await.unwrap();
    let mut sub = consumer.subscribe(&ch, opts.clone()).await.unwrap();
    // Take all three and close the client without asking for more or closing the
    // subscription: the third was handed out, so it counts as handled.
    let held = next_msgs(&mut sub, 3).await;
    assert_eq!(seqs(&held), vec![1, 2, 3]);
    consumer.close().await.unwrap();
    publish_n(&client, &ch, 4, 4).await;
    let consumer = srv.options(&id).connect().await.unwrap();
    let mut sub = consumer.subscribe(&ch, opts).await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!(m.sequence(), 4);
    assert!(!m.redelivered());
    drop((held, sub));
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn batch_taken_messages_are_acked_by_client_close() {
    let (srv, client, ch) = setup().await;
    publish_n(&client, &ch, 1, 4).await;
    let id = unique("c");
    let opts = SubscribeOptions::durable("batch-client-close").deliver_all_available();
    let consumer = srv.options(&id).connect().await.unwrap();
    let mut sub = consumer.subscribe(&ch, opts.clone()).await.unwrap();
    let mut got = Vec::new();
    let mut batch = within("batch", async {
        loop {
            let mut b = sub.next_batch(8).await.unwrap().unwrap();
            if got.len() + b.len() >= 3 {
                return b;
            }
            got.extend(b.by_ref().map(|m| m.sequence()));
        }
    })
    .await;
    // Report the rest of the third message only; the fourth (if in this batch) stays untaken.
    let need = 3 - got.len();
    batch.mark_taken(need);
    got.extend(batch.messages()[..need].iter().map(|m| m.sequence()));
    assert_eq!(got, vec![1, 2, 3]);
    consumer.close().await.unwrap();
    drop(batch);
    let consumer = srv.options(&id).connect().await.unwrap();
    let mut sub = consumer.subscribe(&ch, opts).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 4);
    drop(sub);
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

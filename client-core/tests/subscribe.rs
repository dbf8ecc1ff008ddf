//! Subscriptions: start positions, durables, queue groups, acks, flow control, close.

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use common::{assert_quiet, next_msg, next_msgs, unique, within, TestServer};
use futures::StreamExt;
use stan_client::{Client, ErrorKind, StartPosition, SubscribeOptions};

async fn publish_n(client: &Client, ch: &str, from: usize, to: usize) {
    for i in from..=to {
        client.publish(ch, format!("m{i}")).await.unwrap();
    }
}

fn seqs(msgs: &[stan_client::Message]) -> Vec<u64> {
    msgs.iter().map(|m| m.sequence()).collect()
}

async fn setup() -> (TestServer, Client, String) {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    (srv, client, unique("ch"))
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
    assert_eq!(err.to_string(), "stan: duplicate durable registration");
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
    assert_eq!(err.to_string(), "stan: invalid subscription");
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
    assert_eq!(
        err.to_string(),
        "stan: cannot manually ack in auto-ack mode"
    );
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
                Err(e) if e.to_string() == "stan: duplicate durable registration" => {
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

//! What `Client::close` and dropping the last client handle do to subscriptions and to
//! publishes awaiting their acks.

mod common;

use common::{buffered, next_msg, publish_n, setup, unique, wait_event, within, TestServer};
use futures::StreamExt;
use stan_client::{ErrorKind, SubscribeOptions, Subscription};

/// After `Client::close` no way of taking hands out a message still buffered: each ends the
/// stream, as after `Subscription::close`.
#[tokio::test]
async fn messages_buffered_at_client_close_are_not_handed_out() {
    let (srv, publisher, ch) = setup().await;
    publish_n(&publisher, &ch, 1, 4).await;
    let consumer = srv.options(&unique("c")).connect().await.unwrap();
    let mut subs = Vec::new();
    for _ in 0..4 {
        let sub = consumer
            .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
            .await
            .unwrap();
        subs.push(sub);
    }
    for sub in &subs {
        buffered(sub, 4).await;
    }
    consumer.close().await.unwrap();
    let [mut a, mut b, mut c, mut d] = <[Subscription; 4]>::try_from(subs).unwrap();
    assert!(a.try_next().is_none(), "try_next after client close");
    assert!(
        within("next", b.next()).await.is_none(),
        "next after client close"
    );
    assert!(
        within("next_batch", c.next_batch(8)).await.is_none(),
        "next_batch after client close"
    );
    assert!(
        d.try_next_batch(8).is_none(),
        "try_next_batch after client close"
    );
    for sub in [&a, &b, &c, &d] {
        assert!(sub.is_closed());
    }
    // Once ended, always ended.
    assert!(within("next", a.next()).await.is_none());
    assert!(b.try_next_batch(8).is_none());
    publisher.close().await.unwrap();
}

/// In auto-ack mode `Client::close` still acks the message handed out last, and nothing
/// buffered behind it is handed out: a durable resumes right after the message taken last.
/// A batch taken before the close hands out nothing more either.
#[tokio::test]
async fn client_close_acks_the_last_message_taken_and_hands_out_no_more() {
    let (srv, publisher, ch) = setup().await;
    publish_n(&publisher, &ch, 1, 6).await;
    let id = unique("c");
    let durable = SubscribeOptions::durable("close-buffered").deliver_all_available();
    let consumer = srv.options(&id).connect().await.unwrap();
    let mut sub = consumer.subscribe(&ch, durable.clone()).await.unwrap();
    buffered(&sub, 6).await;
    assert_eq!(next_msg(&mut sub).await.sequence(), 1);
    let mut batch = sub.next_batch(2).await.unwrap().unwrap();
    assert_eq!(batch.next().map(|m| m.sequence()), Some(2));
    consumer.close().await.unwrap();
    assert!(
        batch.next().is_none(),
        "a batch hands out nothing after close"
    );
    assert!(sub.next().await.is_none());
    drop((batch, sub));

    let consumer = srv.options(&id).connect().await.unwrap();
    let mut sub = consumer.subscribe(&ch, durable).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 3);
    consumer.close().await.unwrap();
    publisher.close().await.unwrap();
}

/// A subscription handle's close after `Client::close` reports the closed client.
#[tokio::test]
async fn closing_a_subscription_of_a_closed_client_reports_the_closed_client() {
    let (_srv, client, ch) = setup().await;
    let sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    client.close().await.unwrap();
    let err = sub.close().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
}

/// Dropping the last handle of a client (every `Client` clone, and no subscription or message
/// left) closes it in the background: publishes still awaiting their acks fail with
/// `ConnectionClosed`, queued ones too, and the client emits `Closed`.
#[tokio::test]
async fn dropping_the_last_client_handle_fails_publishes_awaiting_acks() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let other = client.clone();
    let mut events = client.events();
    let ch = unique("ch");
    broker.set_frozen(true);
    let on_the_wire = client.publish_async(&ch, "a").await.unwrap();
    let queued = client.start_publish(&ch, "b").unwrap();
    drop(client);
    drop(other);
    for ack in [on_the_wire, queued] {
        let err = within("the publish outcome", ack).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionClosed, "{err}");
    }
    wait_event(&mut events, |e| *e == stan_client::Event::Closed).await;
    broker.set_frozen(false);
}

/// A subscription keeps the connection open: with every `Client` handle dropped, a publish
/// awaiting its ack still gets it.
#[tokio::test]
async fn a_subscription_keeps_the_connection_open_for_pending_publishes() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    broker.set_frozen(true);
    let ack = client.publish_async(&ch, "kept").await.unwrap();
    drop(client);
    broker.set_frozen(false);
    let guid = within("the ack", ack).await.unwrap();
    let msg = next_msg(&mut sub).await;
    assert_eq!(&msg.data()[..], b"kept");
    assert!(!guid.is_empty());
    sub.close().await.unwrap();
}

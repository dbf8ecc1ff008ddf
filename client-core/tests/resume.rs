//! Connection events and auto-resume: NATS disconnects, broker restart, replacement after a
//! network cut, the live-holder rule, pings exhausted.

mod common;

use std::time::Duration;

use common::{next_msg, unique, wait_event, within, TestServer};
use futures::{FutureExt, StreamExt};
use stan_client::{ErrorKind, Event, Events, LostReason, SubscribeOptions};
use stan_protocol::errors;
use stan_test_support::Proxy;

/// Events available right now, without waiting.
fn drain_now(events: &mut Events) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(Some(ev)) = events.next().now_or_never() {
        out.push(ev);
    }
    out
}

fn is_lost(e: &Event) -> bool {
    matches!(e, Event::ConnectionLost { .. })
}

#[tokio::test]
async fn nats_disconnect_emits_events_and_the_session_survives() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "drops the broker's client connections");
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    broker.disconnect_all_clients();
    wait_event(&mut events, |e| *e == Event::NatsDisconnected).await;
    wait_event(&mut events, |e| *e == Event::NatsReconnected).await;
    // Same session, same subscription.
    client.publish(&ch, "after blip").await.unwrap();
    assert_eq!(&next_msg(&mut sub).await.data()[..], b"after blip");
    assert!(!drain_now(&mut events).iter().any(is_lost));
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_resume_across_a_broker_restart() {
    let mut srv = TestServer::start().await;
    let _ = broker_or_skip!(srv, "restarts the broker");
    let client = srv
        .options(&unique("c"))
        .pings(Duration::from_secs(1), 3)
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut plain = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    let mut durable = client
        .subscribe(
            &ch,
            SubscribeOptions::durable("dur")
                .deliver_all_available()
                .manual_acks(true),
        )
        .await
        .unwrap();
    client.publish(&ch, "before-1").await.unwrap();
    client.publish(&ch, "before-2").await.unwrap();
    for _ in 0..2 {
        drop(next_msg(&mut plain).await);
        next_msg(&mut durable).await.ack().await.unwrap();
    }

    srv.restart().await;
    let lost = wait_event(&mut events, is_lost).await;
    assert!(
        matches!(
            lost,
            Event::ConnectionLost {
                reason: LostReason::ServerClosed,
                resuming: true,
                ..
            }
        ),
        "{lost:?}"
    );
    wait_event(&mut events, |e| matches!(e, Event::Resumed { .. })).await;

    // The restarted (memory) broker starts channels over; both subscriptions were re-created
    // and get the new message, even though it reuses sequence 1.
    client.publish(&ch, "after").await.unwrap();
    let p = next_msg(&mut plain).await;
    assert_eq!(&p.data()[..], b"after");
    let d = next_msg(&mut durable).await;
    assert_eq!(&d.data()[..], b"after");
    d.ack().await.unwrap();
    assert!(!client.is_closed());
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_resume_after_being_replaced_during_a_network_cut() {
    let srv = TestServer::start().await;
    let proxy = Proxy::start(srv.addr()).await;
    let id = unique("cut");
    let p1 = srv.options_via(&proxy.url(), &id).connect().await.unwrap();
    let mut events = p1.events();
    let publisher = srv.options(&unique("pub")).connect().await.unwrap();
    let ch = unique("ch");
    let mut durable = p1
        .subscribe(&ch, SubscribeOptions::durable("d").manual_acks(true))
        .await
        .unwrap();
    let mut plain = p1.subscribe(&ch, SubscribeOptions::new()).await.unwrap();
    publisher.publish(&ch, "m1").await.unwrap();
    next_msg(&mut durable).await.ack().await.unwrap();
    let m = next_msg(&mut plain).await;
    assert_eq!(m.sequence(), 1);
    drop(m);

    proxy.cut();
    wait_event(&mut events, |e| *e == Event::NatsDisconnected).await;
    // While p1 is cut off another process takes the ID (p1 cannot answer the probe)…
    let p2 = srv.options(&id).auto_resume(false).connect().await.unwrap();
    // …and goes away again.
    p2.close().await.unwrap();
    publisher.publish(&ch, "m2").await.unwrap();
    proxy.restore();

    let lost = wait_event(&mut events, is_lost).await;
    assert!(
        matches!(
            lost,
            Event::ConnectionLost {
                reason: LostReason::Replaced,
                resuming: true,
                ..
            }
        ),
        "{lost:?}"
    );
    let resumed = wait_event(&mut events, |e| matches!(e, Event::Resumed { .. })).await;
    assert_eq!(
        resumed,
        Event::Resumed {
            failed_subscriptions: 0
        }
    );
    // Nothing acked is delivered again, nothing is skipped.
    let d = next_msg(&mut durable).await;
    assert_eq!((d.sequence(), &d.data()[..]), (2, &b"m2"[..]));
    d.ack().await.unwrap();
    let p = next_msg(&mut plain).await;
    assert_eq!((p.sequence(), &p.data()[..]), (2, &b"m2"[..]));
    // Publishing works on the new session.
    p1.publish(&ch, "m3").await.unwrap();
    assert_eq!(next_msg(&mut durable).await.sequence(), 3);
    p1.close().await.unwrap();
    publisher.close().await.unwrap();
}

#[tokio::test]
async fn a_live_holder_keeps_the_client_id_no_replace_ping_pong() {
    let srv = TestServer::start().await;
    let proxy = Proxy::start(srv.addr()).await;
    let id = unique("pingpong");
    let p1 = srv.options_via(&proxy.url(), &id).connect().await.unwrap();
    let mut p1_events = p1.events();
    let ch = unique("ch");
    let mut p1_sub = p1.subscribe(&ch, SubscribeOptions::new()).await.unwrap();

    proxy.cut();
    wait_event(&mut p1_events, |e| *e == Event::NatsDisconnected).await;
    let p2 = srv.options(&id).connect().await.unwrap();
    let mut p2_events = p2.events();
    proxy.restore();

    let lost = wait_event(&mut p1_events, is_lost).await;
    assert!(
        matches!(
            lost,
            Event::ConnectionLost {
                reason: LostReason::Replaced,
                ..
            }
        ),
        "{lost:?}"
    );
    let failed = wait_event(&mut p1_events, |e| matches!(e, Event::ResumeFailed { .. })).await;
    assert_eq!(
        failed,
        Event::ResumeFailed {
            message: errors::CLIENT_ID_REGISTERED.into()
        }
    );
    wait_event(&mut p1_events, |e| *e == Event::Closed).await;
    // p1 is done: its stream ends with the reason, its publishes fail.
    let end = within("stream error", p1_sub.next()).await.unwrap();
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionLost);
    assert!(within("stream end", p1_sub.next()).await.is_none());
    let err = p1.publish(&ch, "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLost);
    assert!(p1.is_closed());
    // p2 was never replaced.
    p2.publish(&ch, "still mine").await.unwrap();
    assert!(!drain_now(&mut p2_events).iter().any(is_lost));
    p2.close().await.unwrap();
}

#[tokio::test]
async fn broker_restart_without_auto_resume_ends_the_client() {
    let mut srv = TestServer::start().await;
    let _ = broker_or_skip!(srv, "restarts the broker");
    let client = srv
        .options(&unique("c"))
        .pings(Duration::from_secs(1), 3)
        .auto_resume(false)
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    srv.restart().await;
    let lost = wait_event(&mut events, is_lost).await;
    assert!(
        matches!(
            lost,
            Event::ConnectionLost {
                resuming: false,
                ..
            }
        ),
        "{lost:?}"
    );
    wait_event(&mut events, |e| *e == Event::Closed).await;
    assert!(sub.is_closed());
    let end = within("stream error", sub.next()).await.unwrap();
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionLost);
    assert!(client.is_closed());
    // An event stream of the ended client ends at once.
    assert!(within("end of late events", client.events().next())
        .await
        .is_none());
    // The application decides: a new client with the same ID works on the new broker.
    let again = srv.options(client.client_id()).connect().await.unwrap();
    again.publish(&ch, "fresh").await.unwrap();
    again.close().await.unwrap();
}

#[tokio::test]
async fn pings_exhausted_without_auto_resume_loses_the_connection() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .ping_interval_millis_for_tests(100, 2)
        .auto_resume(false)
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    broker.set_frozen(true);
    let lost = wait_event(&mut events, is_lost).await;
    assert_eq!(
        lost,
        Event::ConnectionLost {
            reason: LostReason::PingsExhausted,
            message: errors::CONNECTION_LOST_PING.into(),
            resuming: false,
        }
    );
    wait_event(&mut events, |e| *e == Event::Closed).await;
    broker.set_frozen(false);
    let end = within("stream error", sub.next()).await.unwrap();
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionLost);
    assert!(within("stream end", sub.next()).await.is_none());
    assert_eq!(
        client.publish(&ch, "x").await.unwrap_err().kind(),
        ErrorKind::ConnectionLost
    );
    assert!(client.is_closed());
}

#[tokio::test]
async fn auto_resume_after_pings_exhausted() {
    // Without a de-duplication window (as with the official servers); with one, in-flight
    // publishes are re-sent instead (tests/exactly_once.rs).
    let srv = TestServer::start_with(|cfg| cfg.dedup_window = Duration::ZERO).await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .ping_interval_millis_for_tests(100, 2)
        .connect_wait(Duration::from_millis(500))
        .pub_ack_wait(Duration::from_secs(15))
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut durable = client
        .subscribe(&ch, SubscribeOptions::durable("d").manual_acks(true))
        .await
        .unwrap();
    client.publish(&ch, "m1").await.unwrap();
    next_msg(&mut durable).await.ack().await.unwrap();

    broker.set_frozen(true);
    let in_flight = client.publish_async(&ch, "in flight").await.unwrap();
    let lost = wait_event(&mut events, is_lost).await;
    assert!(
        matches!(
            lost,
            Event::ConnectionLost {
                reason: LostReason::PingsExhausted,
                resuming: true,
                ..
            }
        ),
        "{lost:?}"
    );
    // Publishes in flight when the session is lost fail; they are not retried.
    let err = within("in-flight ack", in_flight).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLost);
    broker.set_frozen(false);
    wait_event(&mut events, |e| matches!(e, Event::Resumed { .. })).await;

    client.publish(&ch, "m3").await.unwrap();
    // The durable continues after m1 (acked before the loss). The in-flight publish may or may
    // not have been stored; if it was, it comes first.
    let mut next = next_msg(&mut durable).await;
    if &next.data()[..] == b"in flight" {
        next.ack().await.unwrap();
        next = next_msg(&mut durable).await;
    }
    assert_eq!(&next.data()[..], b"m3");
    assert!(next.sequence() >= 2);
    client.close().await.unwrap();
}

#[tokio::test]
async fn borrowed_nats_connection_reports_disconnect_and_reconnect() {
    let srv = TestServer::start().await;
    let proxy = Proxy::start(srv.addr()).await;
    let nats = async_nats::connect(proxy.url()).await.unwrap();
    let client = srv
        .options_via(&proxy.url(), &unique("c"))
        .nats_client(nats)
        .ping_interval_millis_for_tests(50, 1000)
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    proxy.cut();
    wait_event(&mut events, |e| *e == Event::NatsDisconnected).await;
    proxy.restore();
    wait_event(&mut events, |e| *e == Event::NatsReconnected).await;
    client.publish(&ch, "back").await.unwrap();
    assert_eq!(&next_msg(&mut sub).await.data()[..], b"back");
    client.close().await.unwrap();
}

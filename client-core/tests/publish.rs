//! Publishing: acks, pipelining, back-pressure, timeouts, server errors, concurrency.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{next_msg, unique, within, TestServer};
use futures::FutureExt;
use stan_client::{ErrorKind, SubscribeOptions};
use stan_protocol::errors;

#[tokio::test]
async fn publish_resolves_with_guid_after_the_server_stored_it() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let ch = unique("ch");
    let g1 = client.publish(&ch, "one").await.unwrap();
    let g2 = client.publish(&ch, b"two".to_vec()).await.unwrap();
    assert_ne!(g1, g2);
    // Both are stored: a late "deliver all" subscriber sees them in order.
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    let a = next_msg(&mut sub).await;
    let b = next_msg(&mut sub).await;
    assert_eq!((a.sequence(), &a.data()[..]), (1, &b"one"[..]));
    assert_eq!((b.sequence(), &b.data()[..]), (2, &b"two"[..]));
    client.close().await.unwrap();
}

#[tokio::test]
async fn publish_async_keeps_thousands_in_flight() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let ch = unique("ch");
    let n = 5000;
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let ack = client.publish_async(&ch, format!("m{i}")).await.unwrap();
        assert_eq!(ack.guid().len(), 22);
        acks.push(ack);
    }
    let mut guids = HashSet::new();
    for ack in acks {
        let expected = ack.guid().to_string();
        let guid = within("pub ack", ack).await.unwrap();
        assert_eq!(guid, expected);
        guids.insert(guid);
    }
    assert_eq!(guids.len(), n);
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new().start_with_last_received())
        .await
        .unwrap();
    let last = next_msg(&mut sub).await;
    assert_eq!(last.sequence(), n as u64);
    assert_eq!(&last.data()[..], format!("m{}", n - 1).as_bytes());
    client.close().await.unwrap();
}

#[tokio::test]
async fn invalid_channel_is_invalid_argument() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    for bad in ["", "a.*", "a..b", ".a", "a b"] {
        let err = client.publish(bad, "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn server_side_publish_error_is_server_rejected() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let lower = unique("case").to_lowercase();
    let upper = lower.to_uppercase();
    client.publish(&lower, "first").await.unwrap();
    // Channel names are unique case-insensitively on the server.
    let err = client.publish(&upper, "clash").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerRejected);
    assert_eq!(err.code(), "SERVER_REJECTED");
    assert_eq!(err.message(), errors::channel_case_conflict(&upper, &lower));
    client.close().await.unwrap();
}

#[tokio::test]
async fn pub_ack_timeout_when_the_server_does_not_answer() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .pub_ack_wait(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let ch = unique("ch");
    client.publish(&ch, "before").await.unwrap();
    broker.set_frozen(true);
    let err = within("timeout", client.publish(&ch, "frozen"))
        .await
        .unwrap_err();
    broker.set_frozen(false);
    assert_eq!(err.kind(), ErrorKind::PublishAckTimeout);
    assert_eq!(err.message(), errors::PUB_ACK_TIMEOUT);
    assert!(err.kind().is_timeout());
    // Distinct from a server-side rejection, and the client keeps working.
    client.publish(&ch, "after").await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn reaching_max_pub_acks_in_flight_makes_publishers_wait() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .max_pub_acks_in_flight(3)
        .connect()
        .await
        .unwrap();
    let ch = unique("ch");
    broker.set_frozen(true);
    let mut acks = Vec::new();
    for i in 0..3 {
        acks.push(client.publish_async(&ch, format!("{i}")).await.unwrap());
    }
    // The fourth publisher waits for a free slot instead of failing.
    let c2 = client.clone();
    let ch2 = ch.clone();
    let mut fourth = Box::pin(async move { c2.publish_async(&ch2, "3").await });
    assert!(
        (&mut fourth).now_or_never().is_none(),
        "must wait, not fail"
    );
    tokio::task::yield_now().await;
    assert!((&mut fourth).now_or_never().is_none(), "still waiting");
    broker.set_frozen(false);
    let fourth_ack = within("fourth publish", fourth).await.unwrap();
    for ack in acks {
        within("ack", ack).await.unwrap();
    }
    within("fourth ack", fourth_ack).await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn one_client_used_from_many_tasks() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    let tasks = 16;
    let per_task = 50;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let c = client.clone();
        let ch = ch.clone();
        handles.push(tokio::spawn(async move {
            let mut guids = Vec::new();
            for i in 0..per_task {
                guids.push(c.publish(&ch, format!("{t}-{i}")).await.unwrap());
            }
            guids
        }));
    }
    let mut guids = HashSet::new();
    for h in handles {
        guids.extend(within("publisher task", h).await.unwrap());
    }
    assert_eq!(guids.len(), tasks * per_task);
    let mut payloads = HashSet::new();
    let mut last_seq = 0;
    for _ in 0..tasks * per_task {
        let m = next_msg(&mut sub).await;
        assert!(m.sequence() > last_seq, "in sequence order");
        last_seq = m.sequence();
        payloads.insert(String::from_utf8(m.data().to_vec()).unwrap());
    }
    assert_eq!(payloads.len(), tasks * per_task);
    client.close().await.unwrap();
}

#[tokio::test]
async fn pending_publishes_fail_with_connection_closed_on_close() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .connect_wait(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    broker.set_frozen(true);
    let ack = client.publish_async(&unique("ch"), "x").await.unwrap();
    // The close request times out (frozen) but the client is closed anyway.
    let close = client.close().await;
    broker.set_frozen(false);
    assert_eq!(close.unwrap_err().kind(), ErrorKind::RequestTimeout);
    let err = within("ack", ack).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
    assert!(client.is_closed());
}

#[tokio::test]
async fn unbounded_waits_do_not_overflow() {
    let srv = TestServer::start().await;
    let client = srv
        .options(&unique("c"))
        .pub_ack_wait(Duration::MAX)
        .connect_wait(Duration::MAX)
        .connect()
        .await
        .unwrap();
    let guid = within("publish", client.publish(&unique("ch"), "x"))
        .await
        .unwrap();
    assert_eq!(guid.len(), 22);
    let sub = within(
        "subscribe",
        client.subscribe(&unique("ch"), SubscribeOptions::new()),
    )
    .await
    .unwrap();
    within("close", sub.close()).await.unwrap();
    client.close().await.unwrap();
}

/// Read `n` messages of `ch` from the start and assert the payloads are `0..n` in sequence
/// order.
async fn assert_stored_in_order(client: &stan_client::Client, ch: &str, n: usize) {
    let mut sub = client
        .subscribe(ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    for i in 0..n {
        let m = next_msg(&mut sub).await;
        assert_eq!(m.sequence(), i as u64 + 1);
        assert_eq!(m.data().as_ref(), i.to_string().as_bytes(), "message #{i}");
    }
}

#[tokio::test]
async fn start_publish_puts_messages_on_the_wire_in_call_order() {
    let srv = TestServer::start().await;
    let client = srv
        .options(&unique("c"))
        .max_pub_acks_in_flight(4)
        .connect()
        .await
        .unwrap();
    let ch = unique("ch");
    let n = 300;
    // No await between the calls; only 4 acks may be outstanding, so most wait in the queue.
    let acks: Vec<_> = (0..n)
        .map(|i| client.start_publish(&ch, i.to_string()).unwrap())
        .collect();
    let expected: Vec<String> = acks.iter().map(|a| a.guid().to_string()).collect();
    // Await the acks in reverse: the order of awaiting does not matter.
    let mut guids = Vec::new();
    for ack in acks.into_iter().rev() {
        guids.push(within("ack", ack).await.unwrap());
    }
    guids.reverse();
    assert_eq!(guids, expected);
    assert_stored_in_order(&client, &ch, n).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_publish_waits_for_a_free_slot_and_keeps_the_order() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .max_pub_acks_in_flight(2)
        .connect()
        .await
        .unwrap();
    let ch = unique("ch");
    broker.set_frozen(true);
    let mut acks: Vec<_> = (0..6)
        .map(|i| client.start_publish(&ch, i.to_string()).unwrap())
        .collect();
    tokio::task::yield_now().await;
    for ack in &mut acks {
        assert!(ack.now_or_never().is_none(), "no ack while frozen");
    }
    broker.set_frozen(false);
    for ack in acks {
        within("ack", ack).await.unwrap();
    }
    assert_stored_in_order(&client, &ch, 6).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn start_publish_is_synchronous_and_fails_at_once_when_it_cannot_start() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let ch = unique("ch");
    let err = client.start_publish("bad.*", "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // Callable from a thread without an async runtime.
    let c = client.clone();
    let ch2 = ch.clone();
    let ack = std::thread::spawn(move || c.start_publish(&ch2, "from a plain thread"))
        .join()
        .unwrap()
        .unwrap();
    let guid = within("ack", ack).await.unwrap();
    assert!(!guid.is_empty());
    client.close().await.unwrap();
    let err = client.start_publish(&ch, "late").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
}

#[tokio::test]
async fn queued_publishes_fail_with_connection_closed_on_close() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .max_pub_acks_in_flight(1)
        .connect_wait(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    broker.set_frozen(true);
    let ch = unique("ch");
    // The first is on the wire awaiting its ack, the others wait in the queue.
    let acks: Vec<_> = (0..3)
        .map(|i| client.start_publish(&ch, i.to_string()).unwrap())
        .collect();
    let close = client.close().await;
    broker.set_frozen(false);
    assert_eq!(close.unwrap_err().kind(), ErrorKind::RequestTimeout);
    for ack in acks {
        let err = within("ack", ack).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
    }
}

//! The async-nats client against the embedded server.

mod common;

use async_nats::{client::RequestErrorKind, ConnectOptions, Event, HeaderMap};
use bytes::Bytes;
use common::{start, WAIT};
use futures::StreamExt;
use stan_test_support::server_synced;
use tokio::time::timeout;

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    timeout(WAIT, sub.next())
        .await
        .expect("message within timeout")
        .expect("subscription open")
}

#[tokio::test]
async fn connect_pub_sub() {
    let server = start().await;
    let client = async_nats::connect(server.client_url()).await.unwrap();
    assert_eq!(client.server_info().max_payload, 1024 * 1024);
    let mut sub = client.subscribe("greet.*").await.unwrap();
    server_synced(&client).await;
    let other = async_nats::connect(server.client_url()).await.unwrap();
    other
        .publish("greet.joe", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    other.publish("greet.joe.x", "skip".into()).await.unwrap();
    other.publish("greet.ann", "second".into()).await.unwrap();
    other.flush().await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.joe");
    assert_eq!(m.payload, "hello");
    let m = next(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.ann");
    assert_eq!(server.num_connections(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn request_reply_and_no_responders() {
    let server = start().await;
    let responder = async_nats::connect(server.client_url()).await.unwrap();
    let mut service = responder.subscribe("svc.echo").await.unwrap();
    server_synced(&responder).await;
    tokio::spawn(async move {
        while let Some(m) = service.next().await {
            if let Some(reply) = m.reply {
                let mut out = b"re:".to_vec();
                out.extend_from_slice(&m.payload);
                responder.publish(reply, out.into()).await.unwrap();
            }
        }
    });
    let client = async_nats::connect(server.client_url()).await.unwrap();
    for i in 0..5 {
        let resp = client
            .request("svc.echo", format!("m{i}").into())
            .await
            .unwrap();
        assert_eq!(resp.payload, format!("re:m{i}"));
    }
    let err = timeout(WAIT, client.request("svc.nobody", "x".into()))
        .await
        .expect("no-responders answer comes at once, not after the request timeout")
        .unwrap_err();
    assert_eq!(err.kind(), RequestErrorKind::NoResponders);
    server.shutdown().await;
}

#[tokio::test]
async fn queue_subscribers_share_messages() {
    let server = start().await;
    let a = async_nats::connect(server.client_url()).await.unwrap();
    let b = async_nats::connect(server.client_url()).await.unwrap();
    let mut qa = a.queue_subscribe("jobs", "workers".into()).await.unwrap();
    let mut qb = b.queue_subscribe("jobs", "workers".into()).await.unwrap();
    let mut all = b.subscribe("jobs").await.unwrap();
    server_synced(&a).await;
    server_synced(&b).await;
    const N: usize = 40;
    for i in 0..N {
        a.publish("jobs", format!("{i}").into()).await.unwrap();
    }
    a.flush().await.unwrap();
    for i in 0..N {
        assert_eq!(next(&mut all).await.payload, format!("{i}"));
    }
    // Both queue subscriptions are drained: their union is exactly the N messages.
    let mut got = Vec::new();
    while got.len() < N {
        tokio::select! {
            Some(m) = qa.next() => got.push(m.payload),
            Some(m) = qb.next() => got.push(m.payload),
            _ = tokio::time::sleep(WAIT) => panic!("missing queue messages: {}", got.len()),
        }
    }
    // And nothing more arrives: a round trip on each connection flushes the path.
    server_synced(&a).await;
    server_synced(&b).await;
    assert!(qa.next().now_or_never_none());
    assert!(qb.next().now_or_never_none());
    let mut sorted: Vec<usize> = got
        .iter()
        .map(|p| std::str::from_utf8(p).unwrap().parse().unwrap())
        .collect();
    sorted.sort();
    assert_eq!(sorted, (0..N).collect::<Vec<_>>());
    server.shutdown().await;
}

trait NowOrNever {
    fn now_or_never_none(self) -> bool;
}

impl<F: std::future::Future> NowOrNever for F {
    fn now_or_never_none(self) -> bool {
        futures::FutureExt::now_or_never(self).is_none()
    }
}

#[tokio::test]
async fn headers_round_trip() {
    let server = start().await;
    let client = async_nats::connect(server.client_url()).await.unwrap();
    let mut sub = client.subscribe("h.test").await.unwrap();
    client.flush().await.unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("X-Trace", "abc");
    headers.insert("X-Other", "1 2 3");
    client
        .publish_with_headers("h.test", headers, "body".into())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    let h = m.headers.expect("headers");
    assert_eq!(h.get("X-Trace").map(|v| v.as_str()), Some("abc"));
    assert_eq!(h.get("X-Other").map(|v| v.as_str()), Some("1 2 3"));
    assert_eq!(m.payload, "body");
    server.shutdown().await;
}

#[tokio::test]
async fn reconnect_resubscribes_after_disconnect_all() {
    let server = start().await;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let client = ConnectOptions::new()
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e);
            }
        })
        .connect(server.client_url())
        .await
        .unwrap();
    let mut sub = client.subscribe("after.reconnect").await.unwrap();
    client.flush().await.unwrap();
    // Drain the initial Connected event.
    let first = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert!(matches!(first, Event::Connected), "{first:?}");

    server.disconnect_all_clients();
    let mut saw_disconnect = false;
    loop {
        match timeout(WAIT, events.recv()).await.unwrap().unwrap() {
            Event::Disconnected => saw_disconnect = true,
            Event::Connected => break,
            _ => {}
        }
    }
    assert!(saw_disconnect);
    client.flush().await.unwrap();
    let local = server.connect_local("probe");
    // The re-sent SUB is registered once flush returns.
    assert!(local.has_interest("after.reconnect"));
    assert_eq!(local.publish("after.reconnect", None, "back".into()), 1);
    assert_eq!(next(&mut sub).await.payload, "back");
    server.shutdown().await;
}

//! In-process connections.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{start, Raw, WAIT};
use futures::StreamExt;
use stan_embedded_nats::{Error, Message};
use tokio::time::timeout;

#[tokio::test]
async fn local_to_local_with_publish_count_and_echo() {
    let server = start().await;
    let a = server.connect_local("a");
    let b = server.connect_local("b");
    assert_eq!(a.publish("x.y", None, "nobody".into()), 0);
    let mut s1 = a.subscribe("x.*", None).unwrap();
    let mut s2 = b.subscribe("x.>", None).unwrap();
    let _q1 = b.subscribe("x.y", Some("q")).unwrap();
    let _q2 = a.subscribe("x.y", Some("q")).unwrap();
    // Two plain subscriptions plus one member of the queue group.
    assert_eq!(a.publish("x.y", Some("r.1"), "hi".into()), 3);
    let m = s1.try_next().expect("delivered synchronously, echo on");
    assert_eq!(
        m,
        Message {
            subject: "x.y".into(),
            reply: Some("r.1".into()),
            headers: None,
            payload: Bytes::from_static(b"hi"),
            publisher: a.id(),
        }
    );
    assert_ne!(a.id(), b.id());
    assert_eq!(s2.next().await.unwrap().payload, "hi");
    assert_eq!(a.publish("x.y.z", None, "deep".into()), 1);
    assert!(s1.try_next().is_none());
    assert_eq!(s2.try_next().unwrap().subject, "x.y.z");
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_subjects_are_rejected() {
    let server = start().await;
    let c = server.connect_local("c");
    for bad in ["", "a..b", "a.>.b", "a b"] {
        assert!(
            matches!(c.subscribe(bad, None), Err(Error::InvalidSubject(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        c.subscribe("ok", Some("")),
        Err(Error::InvalidSubject(_))
    ));
    let h: Arc<dyn Fn(Message) + Send + Sync> = Arc::new(|_| {});
    assert!(c.subscribe_with("a..b", None, h).is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_with_handler_and_unsubscribe() {
    let server = start().await;
    let c = server.connect_local("engine");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let handle = c
        .subscribe_with(
            "_STAN.pub.cluster.>",
            None,
            Arc::new(move |m: Message| seen2.lock().unwrap().push(m)),
        )
        .unwrap();
    assert!(c.has_interest("_STAN.pub.cluster.foo"));
    assert!(!c.has_interest("_STAN.pub.other.foo"));
    assert_eq!(c.publish("_STAN.pub.cluster.foo", None, "1".into()), 1);
    assert_eq!(
        c.publish_with_headers(
            "_STAN.pub.cluster.bar",
            Some("inbox"),
            Some(Bytes::from_static(b"NATS/1.0\r\nA: b\r\n\r\n")),
            "2".into()
        ),
        1
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "handler runs on the publisher's path");
        assert_eq!(seen[1].subject, "_STAN.pub.cluster.bar");
        assert_eq!(seen[1].reply.as_deref(), Some("inbox"));
        assert_eq!(
            seen[1].headers.as_deref(),
            Some(&b"NATS/1.0\r\nA: b\r\n\r\n"[..])
        );
    }
    handle.unsubscribe();
    assert!(!c.has_interest("_STAN.pub.cluster.foo"));
    assert_eq!(c.publish("_STAN.pub.cluster.foo", None, "3".into()), 0);
    assert_eq!(seen.lock().unwrap().len(), 2);

    let sub = c.subscribe("plain", None).unwrap();
    assert!(c.has_interest("plain"));
    sub.unsubscribe();
    assert!(!c.has_interest("plain"));
    {
        let _dropped = c.subscribe("dropped", None).unwrap();
        assert!(c.has_interest("dropped"));
    }
    assert!(!c.has_interest("dropped"));
    assert_eq!(server.num_subscriptions(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn tcp_to_local_and_local_to_tcp() {
    let server = start().await;
    let local = server.connect_local("engine");
    let mut requests = local.subscribe("_STAN.pub.c.>", None).unwrap();
    let mut tcp = Raw::connect(&server).await;
    tcp.send("SUB _INBOX.acks 5\r\n").await;
    tcp.sync().await;
    assert!(local.has_interest("_INBOX.acks"));

    tcp.send("PUB _STAN.pub.c.orders _INBOX.acks 3\r\nabc\r\n")
        .await;
    let hdr = "NATS/1.0\r\nK: v\r\n\r\n";
    tcp.send(&format!(
        "HPUB _STAN.pub.c.orders {} {}\r\n{}xy\r\n",
        hdr.len(),
        hdr.len() + 2,
        hdr
    ))
    .await;
    let m = timeout(WAIT, requests.next()).await.unwrap().unwrap();
    assert_eq!(m.subject, "_STAN.pub.c.orders");
    assert_eq!(m.reply.as_deref(), Some("_INBOX.acks"));
    assert_eq!(m.payload, "abc");
    assert!(m.headers.is_none());
    let m = timeout(WAIT, requests.next()).await.unwrap().unwrap();
    assert_eq!(m.headers.as_deref(), Some(hdr.as_bytes()));
    assert_eq!(m.payload, "xy");

    // The reply goes straight into the TCP connection's outbound buffer.
    assert_eq!(local.publish("_INBOX.acks", None, "ack".into()), 1);
    let (line, _, p) = tcp.msg().await;
    assert_eq!(line, "MSG _INBOX.acks 5 3");
    assert_eq!(p, b"ack");
    assert_eq!(
        local.publish_with_headers(
            "_INBOX.acks",
            Some("r"),
            Some(Bytes::from_static(b"NATS/1.0\r\n\r\n")),
            "h".into()
        ),
        1
    );
    let (line, h, p) = tcp.msg().await;
    assert_eq!(line, "HMSG _INBOX.acks 5 r 12 13");
    assert_eq!(h, b"NATS/1.0\r\n\r\n");
    assert_eq!(p, b"h");

    // A TCP request to a local responder, with a multiplexed inbox.
    tcp.send("SUB _INBOX.m.* 6\r\n").await;
    tcp.sync().await;
    let echo_conn = local.clone();
    let _svc = local
        .subscribe_with(
            "svc",
            None,
            Arc::new(move |m: Message| {
                if let Some(r) = m.reply {
                    echo_conn.publish(&r, None, m.payload);
                }
            }),
        )
        .unwrap();
    tcp.send("PUB svc _INBOX.m.1 4\r\nping\r\n").await;
    let (line, _, p) = tcp.msg().await;
    assert_eq!(line, "MSG _INBOX.m.1 6 4");
    assert_eq!(p, b"ping");

    // Once the TCP client goes away, its interest is gone.
    drop(tcp);
    common::wait_for(|| !local.has_interest("_INBOX.acks")).await;
    assert_eq!(local.publish("_INBOX.acks", None, "x".into()), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_local_streams() {
    let server = start().await;
    let c = server.connect_local("c");
    let mut s = c.subscribe("a", None).unwrap();
    let mut stream_sub = c.subscribe("b", Some("q")).unwrap();
    assert_eq!(c.publish("a", None, "queued".into()), 1);
    server.shutdown().await;
    // Queued messages are still drained, then the stream ends.
    assert_eq!(s.next().await.unwrap().payload, "queued");
    assert!(timeout(WAIT, s.next()).await.unwrap().is_none());
    // The `Stream` implementation ends too.
    assert!(timeout(WAIT, StreamExt::next(&mut stream_sub))
        .await
        .unwrap()
        .is_none());
    assert!(matches!(c.subscribe("a", None), Err(Error::ShutDown)));
    assert_eq!(c.publish("a", None, "late".into()), 0);
}

#[tokio::test]
async fn concurrent_publishers_lose_nothing() {
    let server = start().await;
    let c = server.connect_local("c");
    let mut sub = c.subscribe("load.*", None).unwrap();
    const THREADS: usize = 4;
    const PER: usize = 2000;
    let mut joins = Vec::new();
    for t in 0..THREADS {
        let c = c.clone();
        joins.push(std::thread::spawn(move || {
            for i in 0..PER {
                assert_eq!(
                    c.publish(&format!("load.{t}"), None, format!("{i}").into()),
                    1
                );
                // Subscriptions churn concurrently without disturbing delivery.
                let extra = c.subscribe(&format!("churn.{t}.{i}"), None).unwrap();
                drop(extra);
            }
        }));
    }
    for j in joins {
        j.join().unwrap();
    }
    let mut last = [None::<usize>; THREADS];
    for _ in 0..THREADS * PER {
        let m = sub.try_next().expect("all delivered");
        let t: usize = m.subject["load.".len()..].parse().unwrap();
        let i: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
        assert_eq!(last[t].map_or(0, |p| p + 1), i, "per-publisher order kept");
        last[t] = Some(i);
    }
    assert!(sub.try_next().is_none());
    assert_eq!(server.num_subscriptions(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn panicking_handler_does_not_break_the_publisher() {
    let server = start().await;
    let local = server.connect_local("engine");
    let _bad = local
        .subscribe_with("boom", None, Arc::new(|_m: Message| panic!("handler bug")))
        .unwrap();
    let mut good = local.subscribe("boom", None).unwrap();
    let mut tcp = Raw::connect(&server).await;
    tcp.send("PUB boom 1\r\nx\r\n").await;
    tcp.sync().await;
    assert_eq!(
        timeout(WAIT, good.next()).await.unwrap().unwrap().payload,
        "x"
    );
    // Only the healthy subscription counts as a delivery.
    assert_eq!(local.publish("boom", None, "y".into()), 1);
    tcp.sync().await;
    server.shutdown().await;
}

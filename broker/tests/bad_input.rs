//! Bad input gets the documented error reply, or is dropped where there is no reply; the
//! broker stays up and good clients keep working (PROTOCOL.md §3, §4.4).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use prost::Message;
use stan_broker::Broker;
use stan_protocol::pb;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const GARBAGE: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f];

async fn no_reply(nc: &async_nats::Client, subject: &str, payload: Bytes) {
    let r = tokio::time::timeout(
        Duration::from_millis(150),
        nc.request(subject.to_string(), payload),
    )
    .await;
    match r {
        Err(_) => {}
        Ok(Err(e)) => assert!(
            matches!(
                e.kind(),
                async_nats::RequestErrorKind::TimedOut | async_nats::RequestErrorKind::NoResponders
            ),
            "{e}"
        ),
        Ok(Ok(m)) => panic!("unexpected reply on {subject}: {:?}", m.payload),
    }
}

async fn good_client_still_works(b: &Broker, id: &str) {
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), id).await;
    let mut req = c.sub_req("good");
    req.start_position = pb::StartPosition::First as i32;
    let mut s = c.subscribe(req).await.unwrap();
    c.publish("good", b"fine").await;
    let m = s.next().await;
    assert_eq!(m.data.as_ref(), b"fine");
    assert_eq!(c.ping().await, "");
    assert_eq!(c.close().await, "");
}

async fn connect_error(b: &Broker, nc: &async_nats::Client, payload: Bytes) -> String {
    let discover = format!("_STAN.discover.{}", b.cluster_id());
    let r: pb::ConnectResponse = request(nc, &discover, payload).await;
    assert!(r.pub_prefix.is_empty());
    r.error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connect_requests() {
    let b = start_broker(|_| {}).await;
    let nc = nats(&b.client_url()).await;
    assert_eq!(
        connect_error(&b, &nc, Bytes::from_static(GARBAGE)).await,
        "stan: invalid connection request"
    );
    let no_hb = connect_request("x", "");
    assert_eq!(
        connect_error(&b, &nc, no_hb.encode_to_vec().into()).await,
        "stan: invalid connection request"
    );
    for bad in ["", "a.b", "a b", "a*", "é"] {
        let r = connect_request(bad, "_INBOX.hb");
        assert_eq!(
            connect_error(&b, &nc, r.encode_to_vec().into()).await,
            "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed",
            "{bad:?}"
        );
    }
    // No reply subject: dropped.
    nc.publish(
        format!("_STAN.discover.{}", b.cluster_id()),
        Bytes::from_static(GARBAGE),
    )
    .await
    .unwrap();
    assert!(b.snapshot().await.clients.is_empty());
    good_client_still_works(&b, "good").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_publishes() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "p").await;
    let nc = &c.nc;
    let pub_ch = &format!("_STAN.pub.{}.ch", b.cluster_id());
    let base = pb::PubMsg {
        client_id: "p".into(),
        guid: "g".into(),
        subject: "ch".into(),
        data: Bytes::from_static(b"x"),
        conn_id: c.conn_id.clone(),
        ..Default::default()
    };
    let pub_err = |m: Bytes| async move {
        let a: pb::PubAck = request(nc, pub_ch, m).await;
        a.error
    };
    assert_eq!(
        pub_err(Bytes::from_static(GARBAGE)).await,
        "stan: invalid publish request"
    );
    let mut cases = Vec::new();
    cases.push(pb::PubMsg {
        guid: String::new(),
        ..base.clone()
    });
    for ch in ["", "foo.*", "foo.>", ">", "a..b", ".a", "a."] {
        cases.push(pb::PubMsg {
            subject: ch.into(),
            ..base.clone()
        });
    }
    cases.push(pb::PubMsg {
        conn_id: Bytes::from_static(b"nope"),
        ..base.clone()
    });
    cases.push(pb::PubMsg {
        conn_id: Bytes::new(),
        client_id: "unknown".into(),
        ..base.clone()
    });
    cases.push(pb::PubMsg {
        conn_id: Bytes::new(),
        client_id: String::new(),
        ..base.clone()
    });
    for m in cases {
        let desc = format!("{:?}/{:?}/{:?}", m.guid, m.subject, m.client_id);
        let a: pb::PubAck = request(nc, pub_ch, m.encode_to_vec().into()).await;
        assert_eq!(a.error, "stan: invalid publish request", "{desc}");
        assert_eq!(a.guid, m.guid);
    }
    // A legacy control message (spb.CtrlMsg{mtype: 1, serverID: "s"}) is ignored: no PubAck.
    let ctrl: &[u8] = &[0x08, 0x01, 0x12, 0x01, b's'];
    no_reply(nc, pub_ch, Bytes::from_static(ctrl)).await;
    // Without a reply subject: nothing stored, nothing sent.
    nc.publish(
        format!("_STAN.pub.{}.x", b.cluster_id()),
        Bytes::from_static(GARBAGE),
    )
    .await
    .unwrap();
    assert!(b.snapshot().await.channels.is_empty());
    good_client_still_works(&b, "good").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscription_requests() {
    let b = start_broker(|_| {}).await;
    let c = Conn::connect(&b.client_url(), b.cluster_id(), "s").await;
    let sub_subject = format!("_STAN.sub.{}", b.cluster_id());
    let sub_err = |r: Bytes| {
        let (nc, subject) = (c.nc.clone(), sub_subject.clone());
        async move {
            let resp: pb::SubscriptionResponse = request(&nc, &subject, r).await;
            assert!(resp.ack_inbox.is_empty());
            resp.error
        }
    };
    assert_eq!(
        sub_err(Bytes::from_static(GARBAGE)).await,
        "stan: invalid subscription request"
    );
    let base = c.sub_req("ch");
    let cases: Vec<(pb::SubscriptionRequest, &str)> = vec![
        (
            pb::SubscriptionRequest {
                client_id: String::new(),
                ..base.clone()
            },
            "stan: clientID missing",
        ),
        (
            pb::SubscriptionRequest {
                ack_wait_in_secs: 0,
                ..base.clone()
            },
            "stan: invalid ack wait time, should be >= 1s",
        ),
        (
            pb::SubscriptionRequest {
                max_in_flight: 0,
                ..base.clone()
            },
            "stan: invalid MaxInflight, should be >= 1",
        ),
        (
            pb::SubscriptionRequest {
                max_in_flight: -5,
                ..base.clone()
            },
            "stan: invalid MaxInflight, should be >= 1",
        ),
        (
            pb::SubscriptionRequest {
                start_position: 9,
                ..base.clone()
            },
            "stan: invalid start position",
        ),
        (
            pb::SubscriptionRequest {
                start_position: -1,
                ..base.clone()
            },
            "stan: invalid start position",
        ),
        (
            pb::SubscriptionRequest {
                subject: "foo.*".into(),
                ..base.clone()
            },
            "stan: invalid subject",
        ),
        (
            pb::SubscriptionRequest {
                subject: "foo.>".into(),
                ..base.clone()
            },
            "stan: invalid subject",
        ),
        (
            pb::SubscriptionRequest {
                subject: String::new(),
                ..base.clone()
            },
            "stan: invalid subject",
        ),
        (
            pb::SubscriptionRequest {
                client_id: "ghost".into(),
                ..base.clone()
            },
            "stan: unknown clientID",
        ),
        (
            pb::SubscriptionRequest {
                q_group: "g".into(),
                durable_name: "x:y".into(),
                ..base.clone()
            },
            "stan: durable name of a durable queue subscriber can't contain the character ':'",
        ),
    ];
    for (req, want) in cases {
        assert_eq!(sub_err(req.encode_to_vec().into()).await, want);
    }
    // Without reply subject: dropped.
    c.nc.publish(sub_subject, base.encode_to_vec().into())
        .await
        .unwrap();
    // A ping from the same connection is processed after it.
    assert_eq!(c.ping().await, "");
    assert!(b
        .snapshot()
        .await
        .channels
        .iter()
        .all(|ch| ch.subs.is_empty()));
    good_client_still_works(&b, "good").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_close_ping_and_ack_messages() {
    let b = start_broker(|_| {}).await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "x").await;
    let close = format!("_STAN.close.{}", b.cluster_id());
    let pings = format!("_STAN.discover.{}.pings", b.cluster_id());
    let r: pb::CloseResponse = request(&c.nc, &close, Bytes::from_static(GARBAGE)).await;
    assert_eq!(r.error, "stan: invalid close request");
    let ghost = pb::CloseRequest {
        client_id: "ghost".into(),
    };
    let r: pb::CloseResponse = request(&c.nc, &close, ghost.encode_to_vec().into()).await;
    assert_eq!(r.error, "stan: unknown clientID");
    // Empty or undecodable pings: no reply.
    no_reply(&c.nc, &pings, Bytes::new()).await;
    no_reply(&c.nc, &pings, Bytes::from_static(GARBAGE)).await;
    // Bad acks are dropped: garbage, wrong channel, unknown sequence.
    let mut req = c.sub_req("ch");
    req.max_in_flight = 1;
    let mut s = c.subscribe(req).await.unwrap();
    c.publish("ch", b"1").await;
    c.publish("ch", b"2").await;
    assert_eq!(s.next().await.sequence, 1);
    c.nc.publish(s.ack_inbox.clone(), Bytes::from_static(GARBAGE))
        .await
        .unwrap();
    let wrong = pb::Ack {
        subject: "other".into(),
        sequence: 1,
    };
    c.nc.publish(s.ack_inbox.clone(), wrong.encode_to_vec().into())
        .await
        .unwrap();
    s.ack(42).await;
    s.expect_nothing(Duration::from_millis(50)).await;
    // The real ack still works.
    s.ack(1).await;
    assert_eq!(s.next().await.sequence, 2);
    assert_eq!(c.ping().await, "");
    good_client_still_works(&b, "good").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_payload_is_refused_by_core_nats_and_broker_stays_up() {
    if skip_on_jetstream("sets the embedded NATS server's max_payload") {
        return;
    }
    let b = start_broker(|cfg| {
        if let stan_broker::config::NatsMode::Embedded(e) = &mut cfg.nats {
            e.max_payload = 1024;
        }
    })
    .await;
    let addr = b.client_url().trim_start_matches("nats://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let info = within("INFO", lines.next_line()).await.unwrap().unwrap();
    assert!(info.starts_with("INFO "), "{info}");
    w.write_all(b"CONNECT {\"verbose\":false}\r\nPUB _STAN.pub.test-cluster.big _INBOX.a 5000\r\n")
        .await
        .unwrap();
    let mut err = String::new();
    while let Ok(Some(l)) = within("-ERR", lines.next_line()).await {
        if l.starts_with("-ERR") {
            err = l;
            break;
        }
    }
    assert!(err.contains("Maximum Payload"), "{err}");
    good_client_still_works(&b, "good").await;
    assert!(b.snapshot().await.channels.iter().all(|c| c.name != "big"));
    b.shutdown().await;
}

//! Bad server input never panics the client: a scripted fake server answers with garbage.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{unique, within, TestServer};
use futures::StreamExt;
use prost::Message as _;
use stan_client::{ConnectOptions, ErrorKind, SubscribeOptions};
use stan_protocol::pb;
use stan_test_support::server_synced;

const GARBAGE: &[u8] = &[0xff, 0xff, 0xff, 0x0a, 0x50];

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    within("fake server input", sub.next()).await.unwrap()
}

#[tokio::test]
async fn garbage_from_the_server_is_an_error_never_a_panic() {
    let srv = TestServer::start().await;
    let cluster = unique("fake");
    let raw = async_nats::connect(srv.url()).await.unwrap();
    let mut discover = raw
        .subscribe(format!("_STAN.discover.{cluster}"))
        .await
        .unwrap();
    let mut fake_sub = raw.subscribe("FAKE.sub").await.unwrap();
    let mut fake_pub = raw.subscribe("FAKE.pub.>").await.unwrap();
    let mut fake_close = raw.subscribe("FAKE.close").await.unwrap();
    let mut fake_ping = raw.subscribe("FAKE.ping").await.unwrap();
    server_synced(&raw).await;

    // 1. An undecodable ConnectResponse is a protocol error.
    let opts = ConnectOptions::new(cluster.clone(), unique("c"))
        .nats_url(srv.url())
        .ping_interval_millis_for_tests(50, 1000);
    let attempt = tokio::spawn(opts.clone().connect());
    let req = next(&mut discover).await;
    raw.publish(req.reply.unwrap(), Bytes::from_static(GARBAGE))
        .await
        .unwrap();
    let err = within("connect", attempt).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);

    // 2. A valid answer connects; the client answers heartbeats.
    let attempt = tokio::spawn(opts.connect());
    let req = next(&mut discover).await;
    let creq = pb::ConnectRequest::decode(req.payload.clone()).unwrap();
    assert_eq!(creq.ping_interval, -50);
    let resp = pb::ConnectResponse {
        pub_prefix: "FAKE.pub".into(),
        sub_requests: "FAKE.sub".into(),
        unsub_requests: "FAKE.unsub".into(),
        close_requests: "FAKE.close".into(),
        sub_close_requests: "FAKE.subclose".into(),
        ping_requests: "FAKE.ping".into(),
        ping_interval: -50,
        ping_max_out: 1000,
        protocol: 1,
        ..Default::default()
    };
    raw.publish(req.reply.unwrap(), resp.encode_to_vec().into())
        .await
        .unwrap();
    let client = within("connect", attempt).await.unwrap().unwrap();
    let hb = within(
        "heartbeat answer",
        raw.request(creq.heartbeat_inbox.clone(), Bytes::from_static(GARBAGE)),
    )
    .await
    .unwrap();
    assert!(hb.payload.is_empty());

    // 3. Pings answered with garbage are ignored (counted as misses).
    for _ in 0..3 {
        let ping = next(&mut fake_ping).await;
        raw.publish(ping.reply.unwrap(), Bytes::from_static(GARBAGE))
            .await
            .unwrap();
    }

    // 4. Subscribe: garbage answer → protocol error; then a valid one.
    let c = client.clone();
    let attempt = tokio::spawn(async move { c.subscribe("ch", SubscribeOptions::new()).await });
    let req = next(&mut fake_sub).await;
    raw.publish(req.reply.unwrap(), Bytes::from_static(GARBAGE))
        .await
        .unwrap();
    let err = within("subscribe", attempt).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    let c = client.clone();
    let attempt = tokio::spawn(async move { c.subscribe("ch", SubscribeOptions::new()).await });
    let req = next(&mut fake_sub).await;
    let sreq = pb::SubscriptionRequest::decode(req.payload.clone()).unwrap();
    let sresp = pb::SubscriptionResponse {
        ack_inbox: "FAKE.ack".into(),
        error: String::new(),
    };
    raw.publish(req.reply.unwrap(), sresp.encode_to_vec().into())
        .await
        .unwrap();
    let mut sub = within("subscribe", attempt).await.unwrap().unwrap();
    // Garbage deliveries are dropped; the valid message comes through.
    raw.publish(sreq.inbox.clone(), Bytes::from_static(GARBAGE))
        .await
        .unwrap();
    let msg = pb::MsgProto {
        sequence: 7,
        subject: "ch".into(),
        data: Bytes::from_static(b"ok"),
        timestamp: -5,
        ..Default::default()
    };
    raw.publish(sreq.inbox.clone(), msg.encode_to_vec().into())
        .await
        .unwrap();
    let got = within("message", sub.next()).await.unwrap().unwrap();
    assert_eq!((got.sequence(), &got.data()[..]), (7, &b"ok"[..]));
    let _ = got.timestamp(); // a negative timestamp does not panic

    // 5. Publish: garbage and a foreign guid are ignored, the matching PubAck completes it.
    let c = client.clone();
    let publish = tokio::spawn(async move { c.publish("ch", "payload").await });
    let pubmsg = next(&mut fake_pub).await;
    let reply = pubmsg.reply.clone().unwrap();
    let pm = pb::PubMsg::decode(pubmsg.payload.clone()).unwrap();
    raw.publish(reply.clone(), Bytes::from_static(GARBAGE))
        .await
        .unwrap();
    let foreign = pb::PubAck {
        guid: "not-mine".into(),
        error: String::new(),
    };
    raw.publish(reply.clone(), foreign.encode_to_vec().into())
        .await
        .unwrap();
    let ack = pb::PubAck {
        guid: pm.guid.clone(),
        error: String::new(),
    };
    raw.publish(reply, ack.encode_to_vec().into())
        .await
        .unwrap();
    assert_eq!(within("publish", publish).await.unwrap().unwrap(), pm.guid);

    // 6. Close: a garbage CloseResponse is reported, the client is closed anyway.
    let c = client.clone();
    let close = tokio::spawn(async move { c.close().await });
    let req = next(&mut fake_close).await;
    raw.publish(req.reply.unwrap(), Bytes::from_static(GARBAGE))
        .await
        .unwrap();
    let err = within("close", close).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(client.is_closed());
    tokio::time::timeout(Duration::from_secs(5), async {
        while sub.next().await.is_some() {}
    })
    .await
    .unwrap();
}

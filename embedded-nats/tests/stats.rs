//! Monitoring statistics: server-wide counters, per-connection figures and the subject
//! index's statistics, driven by real TCP and in-process traffic.

mod common;

use std::time::{Duration, SystemTime};

use common::{opts, start, wait_for, Raw};
use stan_embedded_nats::{ConnectionInfo, Server, ServerOptions};

fn conn_named(server: &Server, name: &str) -> ConnectionInfo {
    server
        .connections()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("connection {name} listed"))
}

#[tokio::test]
async fn counters_follow_traffic() {
    let server = start().await;
    let before = server.varz_stats();
    assert_eq!((before.in_msgs, before.total_connections), (0, 0));

    let mut reader = Raw::connect_with(
        &server,
        r#"{"name":"reader","lang":"test","version":"9.9","headers":true}"#,
    )
    .await;
    reader.send("SUB s.* 7\r\n").await;
    reader.sync().await;
    let mut publisher = Raw::connect_with(&server, r#"{"name":"publisher"}"#).await;
    for _ in 0..3 {
        publisher.send("PUB s.a 5\r\nhello\r\n").await;
    }
    publisher.send("PUB nobody 2\r\nhi\r\n").await;
    publisher.sync().await;
    let local = server.connect_local("engine");
    assert_eq!(local.publish("s.b", None, "xy".into()), 1);
    for _ in 0..4 {
        reader.msg().await;
    }
    reader.sync().await;

    let v = server.varz_stats();
    assert_eq!(v.in_msgs, 5, "4 TCP publishes and 1 in-process: {v:?}");
    assert_eq!(v.in_bytes, 3 * 5 + 2 + 2);
    assert_eq!(v.out_msgs, 4, "the publish to `nobody` reached no one");
    assert_eq!(v.out_bytes, 3 * 5 + 2);
    assert_eq!((v.connections, v.total_connections), (2, 2));
    assert_eq!(v.subscriptions, 1);
    assert_eq!(v.slow_consumers, 0);
    assert!(v.start <= SystemTime::now());

    let r = conn_named(&server, "reader");
    assert_eq!((r.lang.as_str(), r.version.as_str()), ("test", "9.9"));
    assert_eq!((r.in_msgs, r.out_msgs, r.out_bytes), (0, 4, 17));
    assert_eq!(r.ip, "127.0.0.1");
    assert_ne!(r.port, 0);
    assert_eq!(r.pending_bytes, 0, "everything was read up to the PONG");
    assert!(r.start <= r.last_activity);
    assert_eq!(r.rtt, None, "no server PING answered yet");
    assert_eq!(r.subscriptions.len(), 1);
    let s = &r.subscriptions[0];
    assert_eq!(
        (s.subject.as_str(), s.sid.as_str(), s.msgs),
        ("s.*", "7", 4)
    );
    assert_eq!((s.cid, s.queue.as_deref(), s.max), (r.cid, None, None));
    let p = conn_named(&server, "publisher");
    assert_eq!((p.in_msgs, p.in_bytes, p.out_msgs), (4, 17, 0));
    assert!(p.lang.is_empty() && p.subscriptions.is_empty());
    assert!(
        server.connections().windows(2).all(|w| w[0].cid < w[1].cid),
        "ordered by cid"
    );

    let st = server.sublist_stats();
    assert_eq!(
        (st.num_subscriptions, st.num_inserts, st.num_removes),
        (1, 1, 0)
    );
    assert!(st.num_matches >= 5, "{st:?}");
    assert!(st.cache_hit_rate > 0.0 && st.cache_hit_rate < 1.0, "{st:?}");
    assert_eq!(st.max_fanout, 1);
    assert_eq!(server.subscriptions().len(), 1);

    reader.send("UNSUB 7\r\n").await;
    reader.sync().await;
    let st = server.sublist_stats();
    assert_eq!((st.num_subscriptions, st.num_removes), (0, 1));
    assert!(server.subscriptions().is_empty());
    assert!(conn_named(&server, "reader").subscriptions.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_subscriptions_are_listed() {
    let server = start().await;
    let local = server.connect_local("engine");
    let _sub = local.subscribe("work.>", Some("q")).unwrap();
    let subs = server.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].subject, "work.>");
    assert_eq!(subs[0].queue.as_deref(), Some("q"));
    assert_eq!(subs[0].cid, local.id());
    assert!(
        server.connections().is_empty(),
        "only TCP connections are listed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn async_nats_name_lang_version() {
    let server = start().await;
    let client = async_nats::ConnectOptions::new()
        .name("named-client")
        .connect(server.client_url())
        .await
        .unwrap();
    let _sub = client.subscribe("x.y").await.unwrap();
    stan_test_support::server_synced(&client).await;
    let c = conn_named(&server, "named-client");
    assert_eq!(c.lang, "rust");
    assert!(!c.version.is_empty());
    assert!(c.subscriptions.iter().any(|s| s.subject == "x.y"));
    server.shutdown().await;
}

#[tokio::test]
async fn rtt_is_measured_from_server_pings() {
    let server = Server::start(ServerOptions {
        ping_interval: Duration::from_millis(50),
        ..opts()
    })
    .await
    .unwrap();
    let mut raw = Raw::connect(&server).await;
    assert_eq!(server.connections()[0].rtt, None);
    loop {
        let line = raw.line().await;
        if line == "PING" {
            raw.send("PONG\r\n").await;
            break;
        }
    }
    wait_for(|| server.connections()[0].rtt.is_some()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn slow_consumers_are_counted() {
    let server = Server::start(ServerOptions {
        max_pending: 64 * 1024,
        max_pending_in_process: 64 * 1024,
        ..opts()
    })
    .await
    .unwrap();
    // Subscribes, then never reads.
    let mut slow = Raw::connect(&server).await;
    slow.send("SUB data 1\r\n").await;
    slow.sync().await;
    let local = server.connect_local("engine");
    let body = bytes::Bytes::from(vec![b'z'; 32 * 1024]);
    let mut published = 0;
    while server.num_connections() > 0 && published < 20_000 {
        local.publish("data", None, body.clone());
        published += 1;
        if published % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    wait_for(|| server.num_connections() == 0).await;
    assert_eq!(server.varz_stats().slow_consumers, 1);
    server.shutdown().await;
}

//! The web console over HTTP: its embedded assets and the `/streaming/msgsz` message browser
//! endpoint, against an in-process broker fed by the Rust client.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use stan_broker::config::BrokerConfig;
use stan_broker::{monitor, Broker};
use stan_client::{Client, ConnectOptions};
use stan_test_support::http::{get, post, Resp};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// The sequences of a `msgsz` page.
fn seqs(r: &Resp) -> Vec<u64> {
    r.json()["msgs"]
        .as_array()
        .expect("msgs array")
        .iter()
        .map(|m| m["sequence"].as_u64().expect("sequence"))
        .collect()
}

async fn start() -> (Broker, SocketAddr, Client) {
    start_with(None).await
}

async fn start_with(admin_token: Option<&str>) -> (Broker, SocketAddr, Client) {
    let mut cfg = BrokerConfig::for_tests();
    cfg.monitor = Some("127.0.0.1:0".parse().unwrap());
    cfg.console_admin_token = admin_token.map(String::from);
    let broker = timeout(WAIT, Broker::start(cfg))
        .await
        .unwrap()
        .expect("broker starts");
    let addr = broker.monitor_addr().expect("monitoring is on");
    let client = timeout(
        WAIT,
        ConnectOptions::new(broker.cluster_id(), "console-test")
            .nats_url(broker.client_url())
            .connect(),
    )
    .await
    .unwrap()
    .expect("client connects");
    (broker, addr, client)
}

/// Standard base64 decoding (test side; the server encodes).
fn unbase64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let n = chunk
            .iter()
            .map(|&c| if c == b'=' { 0 } else { val(c) })
            .fold(0u32, |acc, v| (acc << 6) | v);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

#[tokio::test]
async fn pages_through_a_channel_by_sequence() {
    let (broker, addr, client) = start().await;
    for i in 1..=25 {
        client.publish("orders", format!("m{i}")).await.unwrap();
    }

    let r = get(addr, "/streaming/msgsz?channel=orders&limit=10").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(
        (j["first_seq"].as_u64(), j["last_seq"].as_u64()),
        (Some(1), Some(25))
    );
    assert_eq!(seqs(&r), (1..=10).collect::<Vec<_>>());
    assert_eq!(j["next_seq"], 11);
    assert_eq!(j["count"], 10);
    let m1 = &j["msgs"][0];
    assert_eq!(unbase64(m1["data"].as_str().unwrap()), b"m1");
    assert_eq!(m1["size"], 2);
    assert_eq!(m1["truncated"], false);
    assert_eq!(m1["redelivered"], false);
    assert!(m1["timestamp"].as_str().unwrap().ends_with('Z'), "{m1}");

    let r = get(addr, "/streaming/msgsz?channel=orders&limit=10&seq=11").await;
    assert_eq!(seqs(&r), (11..=20).collect::<Vec<_>>());
    assert_eq!(
        unbase64(r.json()["msgs"][9]["data"].as_str().unwrap()),
        b"m20"
    );

    // The last page is short; the default page size is 20.
    let r = get(addr, "/streaming/msgsz?channel=orders&seq=21").await;
    assert_eq!(seqs(&r), (21..=25).collect::<Vec<_>>());
    assert_eq!(r.json()["next_seq"], 26);
    assert_eq!(r.json()["limit"], 20);

    // Past the end: an empty page that still says what is stored.
    let r = get(addr, "/streaming/msgsz?channel=orders&seq=1000").await;
    assert_eq!(r.status, 200);
    assert_eq!(seqs(&r), Vec::<u64>::new());
    let j = r.json();
    assert_eq!(
        (j["first_seq"].as_u64(), j["last_seq"].as_u64()),
        (Some(1), Some(25))
    );

    // seq=0 is the first stored message.
    let r = get(addr, "/streaming/msgsz?channel=orders&seq=0&limit=1").await;
    assert_eq!(seqs(&r), vec![1]);

    client.close().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn starts_at_a_time() {
    let (broker, addr, client) = start().await;
    for i in 1..=10 {
        client.publish("events", format!("e{i}")).await.unwrap();
    }
    let all = get(addr, "/streaming/msgsz?channel=events&limit=100")
        .await
        .json();
    let msgs = all["msgs"].as_array().unwrap();
    let ts: Vec<i64> = msgs
        .iter()
        .map(|m| m["timestamp_ns"].as_i64().unwrap())
        .collect();
    // The first message stored strictly later than the one before it: a time query for its
    // timestamp must start exactly there.
    let k = (1..ts.len())
        .find(|&i| ts[i] > ts[i - 1])
        .expect("publishes awaited one by one get increasing timestamps");
    let when = msgs[k]["timestamp"].as_str().unwrap();
    let r = get(
        addr,
        &format!("/streaming/msgsz?channel=events&time={when}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let want_first = msgs[k]["sequence"].as_u64().unwrap();
    assert_eq!(seqs(&r), (want_first..=10).collect::<Vec<_>>());
    assert_eq!(r.json()["start_seq"].as_u64(), Some(want_first));

    // A time zone offset names the same instant.
    let early = get(
        addr,
        "/streaming/msgsz?channel=events&time=2000-01-01T02:00:00%2B02:00",
    )
    .await;
    assert_eq!(seqs(&early), (1..=10).collect::<Vec<_>>());
    // After the last message: empty.
    let late = get(
        addr,
        "/streaming/msgsz?channel=events&time=2999-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(late.status, 200);
    assert_eq!(seqs(&late), Vec::<u64>::new());

    client.close().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn cuts_large_payloads_and_long_pages() {
    let (broker, addr, client) = start().await;
    let big = vec![b'x'; 100 * 1024];
    for _ in 0..20 {
        client.publish("big", big.clone()).await.unwrap();
    }
    let r = get(addr, "/streaming/msgsz?channel=big&limit=20").await;
    assert_eq!(r.status, 200);
    let j = r.json();
    let max = monitor::console::MAX_PAYLOAD;
    assert_eq!(j["max_payload"].as_u64(), Some(max as u64));
    let m = &j["msgs"][0];
    assert_eq!(m["size"].as_u64(), Some(100 * 1024));
    assert_eq!(m["truncated"], true);
    assert_eq!(unbase64(m["data"].as_str().unwrap()), vec![b'x'; max]);
    // The page stops once the payloads shown reach the page budget.
    let per_page = monitor::console::MAX_PAGE_BYTES.div_ceil(max) as u64;
    assert_eq!(seqs(&r), (1..=per_page).collect::<Vec<_>>());
    assert_eq!(j["next_seq"].as_u64(), Some(per_page + 1));

    client.close().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_a_json_error() {
    let (broker, addr, client) = start().await;
    client.publish("orders", "x").await.unwrap();
    let cases: &[(&str, u16, &str)] = &[
        ("", 400, "missing parameter: channel"),
        ("channel=", 400, "missing parameter: channel"),
        ("channel=nope", 404, "channel \"nope\" not found"),
        ("channel=orders&seq=abc", 400, "invalid seq \"abc\""),
        ("channel=orders&seq=-3", 400, "invalid seq \"-3\""),
        ("channel=orders&limit=101", 400, "limit 101 is too big"),
        ("channel=orders&limit=0", 400, "invalid limit \"0\""),
        ("channel=orders&limit=ten", 400, "invalid limit \"ten\""),
        (
            "channel=orders&time=yesterday",
            400,
            "invalid time \"yesterday\"",
        ),
        (
            "channel=orders&time=2026-02-30T00:00:00Z",
            400,
            "invalid time",
        ),
        (
            "channel=orders&seq=1&time=2026-01-01T00:00:00Z",
            400,
            "give seq or time, not both",
        ),
    ];
    for (query, status, message) in cases {
        let r = get(addr, &format!("/streaming/msgsz?{query}")).await;
        assert_eq!(r.status, *status, "{query}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{query}"
        );
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(err.starts_with(message), "{query}: {err:?}");
    }
    client.close().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn monitoring_served_by_hand_has_the_message_browser_too() {
    // The broker is the monitoring source, and the source gives the console its engine.
    let broker = Broker::start(BrokerConfig::for_tests()).await.unwrap();
    let addr = monitor::serve(broker.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let r = get(addr, "/streaming/msgsz?channel=orders").await;
    assert_eq!(r.status, 404, "unknown channel, answered by the engine");
    assert!(r.json()["error"].as_str().unwrap().contains("orders"));
    broker.shutdown().await;
}

#[tokio::test]
async fn serves_the_embedded_assets() {
    let (broker, addr, client) = start().await;
    let cases = [
        ("/console/", "text/html; charset=utf-8", "<!doctype html>"),
        (
            "/console/console.js",
            "text/javascript; charset=utf-8",
            "'use strict';",
        ),
        ("/console/console.css", "text/css; charset=utf-8", ":root"),
    ];
    for (path, content_type, start) in cases {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(
            r.header("content-security-policy")
                .is_some_and(|c| c.contains("script-src 'self'")),
            "{path}"
        );
        assert!(r.body.contains(start), "{path}: {}", &r.body[..80]);
    }
    let index = get(addr, "/console/").await.body;
    assert!(index.contains("href=\"./console.css\"") && index.contains("src=\"./console.js\""));
    // No asset is fetched from elsewhere.
    assert!(!index.contains("http://") && !index.contains("https://"));

    let r = get(addr, "/console").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/console/"));
    assert_eq!(get(addr, "/console/nope.js").await.status, 404);

    client.close().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn admin_actions_are_refused_without_the_flag() {
    let (broker, addr, client) = start().await;
    client.publish("orders", "x").await.unwrap();
    assert_eq!(
        get(addr, "/console/api/admin").await.json(),
        serde_json::json!({"enabled": false})
    );
    for path in [
        "/console/api/delete-channel?channel=orders",
        "/console/api/purge-channel?channel=orders",
        "/console/api/delete-durable?channel=orders&client=c&durable=d",
    ] {
        for auth in ["", "Authorization: Bearer anything\r\n"] {
            let r = post(addr, path, auth).await;
            assert_eq!(r.status, 403, "{path} {auth:?}");
            assert!(r.json()["error"]
                .as_str()
                .unwrap()
                .contains("--console_admin_token"));
        }
    }
    // Nothing changed; GET is not a way in either.
    assert_eq!(
        get(addr, "/streaming/msgsz?channel=orders").await.status,
        200
    );
    assert_eq!(
        get(addr, "/console/api/delete-channel?channel=orders")
            .await
            .status,
        405
    );
    client.close().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn admin_actions_with_the_token() {
    const AUTH: &str = "Authorization: Bearer s3cret\r\n";
    let (broker, addr, client) = start_with(Some("s3cret")).await;
    assert_eq!(
        get(addr, "/console/api/admin").await.json(),
        serde_json::json!({"enabled": true})
    );
    client.publish("orders", "x").await.unwrap();
    let sub = client
        .subscribe("orders", stan_client::SubscribeOptions::durable("audit"))
        .await
        .unwrap();
    let del_durable =
        "/console/api/delete-durable?channel=orders&client=console-test&durable=audit";
    let del_channel = "/console/api/delete-channel?channel=orders";

    let r = post(addr, del_durable, "").await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("missing admin token"));
    let r = post(addr, del_durable, "Authorization: Bearer s3creT\r\n").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "wrong admin token");

    let r = post(addr, del_durable, AUTH).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("is active"));
    let r = post(addr, del_channel, AUTH).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("1 subscription"));

    let r = post(
        addr,
        "/console/api/delete-durable?channel=orders&client=console-test",
        AUTH,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "missing parameter: durable");
    let r = post(addr, "/console/api/delete-channel?channel=nope", AUTH).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "channel \"nope\" not found");

    // Closed, the durable goes offline: now it can be deleted, then the channel.
    sub.close().await.unwrap();
    let r = post(addr, del_durable, AUTH).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ch = get(addr, "/streaming/channelsz?channel=orders&subs=1")
        .await
        .json();
    assert_eq!(ch["subs_count"], 0, "{ch}");
    assert_eq!(post(addr, del_durable, AUTH).await.status, 404);
    let r = post(addr, del_channel, AUTH).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        get(addr, "/streaming/msgsz?channel=orders").await.status,
        404
    );
    assert_eq!(
        get(addr, "/streaming/channelsz?channel=orders")
            .await
            .status,
        404
    );

    client.close().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn purge_removes_the_messages_and_keeps_channel_subscriptions_and_sequence() {
    const AUTH: &str = "Authorization: Bearer s3cret\r\n";
    let (broker, addr, client) = start_with(Some("s3cret")).await;
    let mut sub = client
        .subscribe(
            "orders",
            stan_client::SubscribeOptions::durable("audit").deliver_all_available(),
        )
        .await
        .unwrap();
    for i in 1..=3 {
        client.publish("orders", format!("m{i}")).await.unwrap();
        let m = timeout(WAIT, sub.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(m.sequence(), i);
    }
    let purge = "/console/api/purge-channel?channel=orders";
    assert_eq!(post(addr, purge, "").await.status, 401);
    let r = post(addr, "/console/api/purge-channel?channel=nope", AUTH).await;
    assert_eq!(r.status, 404);
    let r = post(addr, purge, AUTH).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let ch = get(addr, "/streaming/channelsz?channel=orders&subs=1")
        .await
        .json();
    assert_eq!(
        (ch["msgs"].clone(), ch["bytes"].clone()),
        (0.into(), 0.into()),
        "{ch}"
    );
    assert_eq!(
        (ch["first_seq"].clone(), ch["last_seq"].clone()),
        (4.into(), 3.into()),
        "{ch}"
    );
    assert_eq!(ch["subs_count"], 1, "{ch}");
    let page = get(addr, "/streaming/msgsz?channel=orders&seq=1")
        .await
        .json();
    assert_eq!(page["msgs"].as_array().map(Vec::len), Some(0), "{page}");

    // The sequence goes on and the durable keeps receiving.
    client.publish("orders", "after").await.unwrap();
    let m = timeout(WAIT, sub.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((m.sequence(), &m.data()[..]), (4, &b"after"[..]));
    client.close().await.unwrap();
    broker.shutdown().await;
}

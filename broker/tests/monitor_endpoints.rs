//! Monitoring endpoints over HTTP against a real broker with a client, a channel and a
//! durable subscription created through the STAN protocol.

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message;
use serde_json::Value;
use stan_broker::config::{BrokerConfig, ChannelLimits};
use stan_broker::{monitor, Broker};
use stan_protocol::pb;
use stan_test_support::http::{get, Resp};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn request<M: Message + Default>(
    nats: &async_nats::Client,
    subject: String,
    msg: impl Message,
) -> M {
    let reply = timeout(WAIT, nats.request(subject, msg.encode_to_vec().into()))
        .await
        .expect("reply in time")
        .expect("request");
    M::decode(reply.payload).expect("decode reply")
}

/// A broker with monitoring, one client `mon-client`, channel `foo.bar` holding one message,
/// and a durable subscription `dur` on it. The NATS connection that made them is returned, so
/// it stays open (and listed by `/connz`) for the test's duration.
async fn setup() -> (Broker, SocketAddr, async_nats::Client) {
    let mut cfg = BrokerConfig::for_tests();
    // Long heartbeats: the raw test client does not answer them.
    cfg.hb_interval = Duration::from_secs(3600);
    cfg.limits.channels.insert(
        "foo.*".into(),
        ChannelLimits {
            max_msgs: Some(7),
            ..Default::default()
        },
    );
    let broker = timeout(WAIT, Broker::start(cfg))
        .await
        .unwrap()
        .expect("broker starts");
    let addr = match broker.monitor_addr() {
        Some(a) => a,
        None => monitor::serve(broker.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("monitoring binds"),
    };

    let nats = timeout(WAIT, async_nats::connect(broker.client_url()))
        .await
        .unwrap()
        .expect("NATS connect");
    let cr: pb::ConnectResponse = request(
        &nats,
        format!("_STAN.discover.{}", broker.cluster_id()),
        pb::ConnectRequest {
            client_id: "mon-client".into(),
            heartbeat_inbox: "_INBOX.mon-client-hb".into(),
            protocol: 1,
            conn_id: stan_protocol::subjects::new_nuid().into_bytes().into(),
            ping_interval: 5,
            ping_max_out: 88,
            resends_publishes: false,
        },
    )
    .await;
    assert_eq!(cr.error, "");
    let ack: pb::PubAck = request(
        &nats,
        format!("{}.foo.bar", cr.pub_prefix),
        pb::PubMsg {
            client_id: "mon-client".into(),
            guid: "guid-1".into(),
            subject: "foo.bar".into(),
            data: bytes::Bytes::from_static(b"hello"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ack.error, "");
    let sr: pb::SubscriptionResponse = request(
        &nats,
        cr.sub_requests.clone(),
        pb::SubscriptionRequest {
            client_id: "mon-client".into(),
            subject: "foo.bar".into(),
            inbox: "_INBOX.mon-client-sub".into(),
            max_in_flight: 10,
            ack_wait_in_secs: 30,
            durable_name: "dur".into(),
            start_position: 0,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(sr.error, "");
    (broker, addr, nats)
}

fn assert_json_headers(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.body.starts_with("{\n  \""), "pretty JSON: {}", r.body);
}

#[tokio::test]
async fn streaming_endpoints() {
    let (broker, addr, _nats) = setup().await;

    let r = get(addr, "/streaming/serverz").await;
    assert_json_headers(&r);
    let v = r.json();
    assert_eq!(v["cluster_id"], broker.cluster_id());
    assert_eq!(v["state"], "STANDALONE");
    assert_eq!(
        (
            v["clients"].as_u64(),
            v["channels"].as_u64(),
            v["subscriptions"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(v["total_msgs"], 1);
    assert_eq!(v["in_msgs"], 1);
    assert!(v["now"].as_str().unwrap().ends_with('Z'));
    assert!(v["uptime"].as_str().unwrap().ends_with('s'));
    assert!(v.get("role").is_none());

    let v = get(addr, "/streaming/storez").await.json();
    assert_eq!(v["type"], "MEMORY");
    assert_eq!(v["limits"]["max_channels"], 100);
    assert_eq!(v["limits"]["channels"]["foo.*"]["max_msgs"], 7);
    assert_eq!(
        v["limits"]["channels"]["foo.*"]["max_bytes"],
        1_024_000_000u64
    );
    assert_eq!(v["total_msgs"], 1);

    let r = get(addr, "/streaming/clientsz").await;
    assert_json_headers(&r);
    let v = r.json();
    assert_eq!(
        (v["count"].as_u64(), v["total"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["clients"][0]["id"], "mon-client");
    assert_eq!(v["clients"][0]["hb_inbox"], "_INBOX.mon-client-hb");
    assert_eq!(v["clients"][0]["subs_count"], 1);
    assert!(v["clients"][0].get("subscriptions").is_none());

    let v = get(addr, "/streaming/clientsz?subs=1&offset=0&limit=10")
        .await
        .json();
    let s = &v["clients"][0]["subscriptions"]["foo.bar"][0];
    assert_eq!(s["durable_name"], "dur");
    assert_eq!(s["inbox"], "_INBOX.mon-client-sub");
    assert_eq!(
        (s["is_durable"].as_bool(), s["is_offline"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        (s["max_inflight"].as_u64(), s["ack_wait"].as_u64()),
        (Some(10), Some(30))
    );

    let v = get(addr, "/streaming/clientsz?offset=1").await.json();
    assert_eq!(
        (v["count"].as_u64(), v["total"].as_u64()),
        (Some(0), Some(1))
    );

    let v = get(addr, "/streaming/clientsz?client=mon-client&subs=1")
        .await
        .json();
    assert_eq!(v["id"], "mon-client");
    assert_eq!(v["subscriptions"]["foo.bar"][0]["durable_name"], "dur");

    let r = get(addr, "/streaming/clientsz?client=ghost").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "Client ghost not found\n");

    let v = get(addr, "/streaming/channelsz").await.json();
    assert_eq!(v["names"], serde_json::json!(["foo.bar"]));
    assert!(v.get("channels").is_none());

    let v = get(addr, "/streaming/channelsz?subs=1").await.json();
    assert!(v.get("names").is_none());
    assert_eq!(v["channels"][0]["name"], "foo.bar");
    assert_eq!(
        v["channels"][0]["subscriptions"][0]["client_id"],
        "mon-client"
    );

    let v = get(addr, "/streaming/channelsz?channel=foo.bar")
        .await
        .json();
    assert_eq!(
        (
            v["msgs"].as_u64(),
            v["first_seq"].as_u64(),
            v["last_seq"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(v["subs_count"], 1);
    assert!(v.get("subscriptions").is_none());

    let r = get(addr, "/streaming/channelsz?channel=nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "Channel nope not found\n");

    let r = get(addr, "/streaming/isFTActive").await;
    assert_eq!(r.status, 204);

    let r = get(addr, "/streaming").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    for link in ["serverz", "storez", "clientsz", "channelsz"] {
        assert!(r.body.contains(link), "{}", r.body);
    }

    broker.shutdown().await;
}

#[tokio::test]
async fn core_endpoints() {
    let (broker, addr, _nats) = setup().await;

    let r = get(addr, "/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "{\"status\":\"ok\"}");
    assert_eq!(r.header("content-type"), Some("application/json"));

    let v = get(addr, "/varz").await.json();
    let port: u16 = broker
        .client_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v["port"], port);
    assert_eq!(v["http_port"], addr.port());
    assert_eq!(v["max_payload"], 1_048_576);

    // The setup's one TCP connection (the raw STAN client).
    let v = get(addr, "/connz").await.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["connections"][0]["ip"], "127.0.0.1");

    let r = get(addr, "/streaming/serverz?callback=cb").await;
    assert_eq!(r.header("content-type"), Some("application/javascript"));
    assert!(
        r.body.starts_with("cb({") && r.body.ends_with("})"),
        "{}",
        r.body
    );

    let r = get(addr, "/no/such/path").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "404 page not found\n");

    broker.shutdown().await;
}

#[tokio::test]
async fn broker_starts_monitoring_from_config() {
    let mut cfg = BrokerConfig::for_tests();
    cfg.monitor = Some("127.0.0.1:0".parse().unwrap());
    let broker = timeout(WAIT, Broker::start(cfg))
        .await
        .unwrap()
        .expect("broker starts");
    let addr = broker.monitor_addr().expect("monitoring is on");
    assert_ne!(addr.port(), 0);
    let v = get(addr, "/streaming/serverz").await.json();
    assert_eq!(v["cluster_id"], broker.cluster_id());
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Core monitoring: /varz, /connz, /subsz with nats-server's fields.

/// A named async-nats client.
async fn named(broker: &Broker, name: &str) -> async_nats::Client {
    timeout(
        WAIT,
        async_nats::ConnectOptions::new()
            .name(name)
            .connect(broker.client_url()),
    )
    .await
    .unwrap()
    .expect("NATS connect")
}

/// `2026-12-07T08:31:56.813843323Z`: RFC 3339, UTC, optional fraction.
fn is_rfc3339(v: &Value) -> bool {
    let Some(s) = v.as_str() else {
        return false;
    };
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && s.ends_with('Z')
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1)))
}

/// A Go duration string: `0s`, `437µs`, `1.234ms`, `1m30s`.
fn is_go_duration(v: &Value) -> bool {
    let Some(s) = v.as_str() else {
        return false;
    };
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_digit())
        && ["ns", "µs", "ms", "s", "m", "h"]
            .iter()
            .any(|u| s.ends_with(u))
        && s.chars()
            .all(|c| c.is_ascii_digit() || "nsµmh.".contains(c))
}

fn is_uint(v: &Value) -> bool {
    v.is_u64()
}

async fn varz_json(addr: SocketAddr) -> Value {
    let r = get(addr, "/varz").await;
    assert_json_headers(&r);
    r.json()
}

#[tokio::test]
async fn varz_fields_and_counters() {
    let (broker, addr, _nats) = setup().await;
    let watcher = named(&broker, "watcher").await;
    let mut sub = watcher.subscribe("watch.>").await.unwrap();
    stan_test_support::server_synced(&watcher).await;

    let v1 = varz_json(addr).await;
    assert_eq!(v1["server_id"], watcher.server_info().server_id.as_str());
    assert_eq!(v1["server_name"], "stan-broker");
    assert_eq!(v1["version"], stan_embedded_nats::SERVER_VERSION);
    assert_eq!(v1["proto"], 1);
    assert!(v1["go"].is_string());
    assert_eq!(v1["host"], "127.0.0.1");
    assert_eq!(v1["port"], watcher.server_info().port);
    assert!(v1.get("auth_required").is_none() && v1.get("tls_required").is_none());
    assert!(is_uint(&v1["max_connections"]));
    assert_eq!(
        v1["ping_interval"], 120_000_000_000u64,
        "Go duration: nanoseconds"
    );
    assert_eq!(v1["ping_max"], 2);
    assert_eq!(v1["http_host"], "127.0.0.1");
    assert_eq!(v1["http_port"], addr.port());
    assert_eq!(v1["http_base_path"], "");
    assert_eq!(v1["https_port"], 0);
    assert_eq!(v1["auth_timeout"].as_f64(), Some(2.0));
    assert_eq!(v1["max_control_line"], 4096);
    assert_eq!(v1["max_payload"], 1_048_576);
    assert_eq!(v1["max_pending"], 64 * 1024 * 1024);
    for k in [
        "cluster",
        "gateway",
        "leaf",
        "mqtt",
        "websocket",
        "jetstream",
    ] {
        assert_eq!(v1[k], serde_json::json!({}), "{k}");
    }
    assert!(v1["tls_timeout"].is_number() && v1["write_deadline"].is_i64());
    for k in ["start", "now", "config_load_time"] {
        assert!(is_rfc3339(&v1[k]), "{k}: {}", v1[k]);
    }
    assert!(v1["uptime"].as_str().is_some_and(|u| u.ends_with('s')));
    assert!(v1["mem"].as_i64().is_some_and(|m| m > 0));
    assert!(v1["cores"].as_u64().is_some_and(|c| c >= 1));
    assert!(v1["gomaxprocs"].as_u64().is_some_and(|c| c >= 1));
    assert!(v1["cpu"].is_number());
    assert_eq!(v1["connections"], 2, "the setup's client and the watcher");
    assert_eq!(v1["total_connections"], 2);
    for k in ["routes", "remotes", "leafnodes", "slow_consumers"] {
        assert_eq!(v1[k], 0, "{k}");
    }
    for k in ["in_msgs", "out_msgs", "in_bytes", "out_bytes"] {
        assert!(is_uint(&v1[k]), "{k}");
    }
    assert!(v1["subscriptions"].as_u64().is_some_and(|n| n > 0));
    assert!(v1["http_req_stats"]["/varz"]
        .as_u64()
        .is_some_and(|n| n >= 1));
    assert_eq!(v1["config_digest"], "");
    assert_eq!(
        v1["slow_consumer_stats"],
        serde_json::json!({"clients": 0, "routes": 0, "gateways": 0, "leafs": 0})
    );

    for _ in 0..10 {
        watcher.publish("watch.a", "abc".into()).await.unwrap();
    }
    for _ in 0..10 {
        timeout(WAIT, futures::StreamExt::next(&mut sub))
            .await
            .expect("message in time");
    }
    let v2 = varz_json(addr).await;
    let grew = |k: &str| v2[k].as_u64().unwrap() - v1[k].as_u64().unwrap();
    assert!(
        grew("in_msgs") >= 10,
        "in_msgs {} → {}",
        v1["in_msgs"],
        v2["in_msgs"]
    );
    assert!(grew("in_bytes") >= 30);
    assert!(grew("out_msgs") >= 10);
    assert!(grew("out_bytes") >= 30);
    assert_eq!(
        v2["http_req_stats"]["/varz"].as_u64(),
        v1["http_req_stats"]["/varz"].as_u64().map(|n| n + 1)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn connz_fields_and_query_parameters() {
    let (broker, addr, _nats) = setup().await;
    let watcher = named(&broker, "watcher").await;
    let _s1 = watcher.subscribe("watch.>").await.unwrap();
    let _s2 = watcher.subscribe("watch.b").await.unwrap();
    for _ in 0..5 {
        watcher.publish("elsewhere", "abcd".into()).await.unwrap();
    }
    stan_test_support::server_synced(&watcher).await;
    let quiet = named(&broker, "quiet").await;
    stan_test_support::server_synced(&quiet).await;

    let r = get(addr, "/connz").await;
    assert_json_headers(&r);
    let c = r.json();
    assert_eq!(c["server_id"], watcher.server_info().server_id.as_str());
    assert!(is_rfc3339(&c["now"]));
    assert_eq!(
        (c["num_connections"].as_u64(), c["total"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        (c["offset"].as_u64(), c["limit"].as_u64()),
        (Some(0), Some(1024))
    );
    let conns = c["connections"].as_array().unwrap();
    let cids: Vec<u64> = conns.iter().map(|c| c["cid"].as_u64().unwrap()).collect();
    assert!(
        cids.windows(2).all(|w| w[0] < w[1]),
        "sorted by cid: {cids:?}"
    );
    let w = conns
        .iter()
        .find(|c| c["name"] == "watcher")
        .expect("watcher listed");
    assert_eq!(w["cid"].as_u64(), Some(watcher.server_info().client_id));
    assert_eq!(
        (&w["kind"], &w["type"]),
        (&Value::from("Client"), &Value::from("nats"))
    );
    assert_eq!(w["ip"], "127.0.0.1");
    assert!(w["port"].as_u64().is_some_and(|p| p > 0));
    assert!(is_rfc3339(&w["start"]) && is_rfc3339(&w["last_activity"]));
    // The server has not pinged yet (2 minute interval): nats-server then reports "0s".
    assert_eq!(w["rtt"], "0s");
    assert!(is_go_duration(&w["rtt"]));
    assert!(w["uptime"].as_str().is_some_and(|u| u.ends_with('s')));
    assert!(w["idle"].as_str().is_some_and(|u| u.ends_with('s')));
    assert!(is_uint(&w["pending_bytes"]));
    // 5 publishes plus the one of `server_synced`.
    assert_eq!(w["in_msgs"], 6);
    assert_eq!(w["in_bytes"], 20);
    assert!(w["out_msgs"].as_u64().is_some_and(|n| n >= 1));
    assert!(w["subscriptions"].as_u64().is_some_and(|n| n >= 2));
    assert_eq!(w["lang"], "rust");
    assert!(w["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(w.get("subscriptions_list").is_none());
    let q = conns.iter().find(|c| c["name"] == "quiet").unwrap();
    assert_eq!(q["in_msgs"], 1);

    // subs=1: subjects; subs=detail: details.
    let c = get(addr, "/connz?subs=1").await.json();
    let w = c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "watcher")
        .unwrap()
        .clone();
    let list: Vec<&str> = w["subscriptions_list"]
        .as_array()
        .expect("subscriptions_list with subs=1")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        list.contains(&"watch.>") && list.contains(&"watch.b"),
        "{list:?}"
    );
    let c = get(addr, &format!("/connz?subs=detail&cid={}", w["cid"]))
        .await
        .json();
    assert_eq!(c["total"], 1);
    let d = &c["connections"][0]["subscriptions_list_detail"];
    let b = d
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == "watch.b")
        .expect("detail of watch.b");
    assert!(b["sid"].is_string() && is_uint(&b["msgs"]));
    assert_eq!(b["cid"], w["cid"]);
    assert!(c["connections"][0].get("subscriptions_list").is_none());

    // Sort orders: each respected within the answer.
    let field_desc = [
        ("subs", "subscriptions"),
        ("pending", "pending_bytes"),
        ("msgs_to", "out_msgs"),
        ("msgs_from", "in_msgs"),
        ("bytes_to", "out_bytes"),
        ("bytes_from", "in_bytes"),
    ];
    for (sort, field) in field_desc {
        let c = get(addr, &format!("/connz?sort={sort}")).await.json();
        assert_eq!(c["total"], 3, "{sort}");
        let vals: Vec<u64> = c["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[field].as_u64().unwrap())
            .collect();
        assert!(
            vals.windows(2).all(|w| w[0] >= w[1]),
            "sort={sort}: {vals:?}"
        );
    }
    let c = get(addr, "/connz?sort=msgs_from").await.json();
    assert_eq!(c["connections"][0]["name"], "watcher", "published the most");
    for sort in ["cid", "start", "uptime"] {
        let c = get(addr, &format!("/connz?sort={sort}")).await.json();
        let got: Vec<u64> = c["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cid"].as_u64().unwrap())
            .collect();
        assert_eq!(got, cids, "sort={sort}: oldest first");
    }
    // last: most recent activity first; idle: least recent first.
    for (sort, newest_first) in [("last", true), ("idle", false)] {
        let c = get(addr, &format!("/connz?sort={sort}")).await.json();
        assert_eq!(c["total"], 3, "{sort}");
        let keys: Vec<(String, u32)> = c["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| activity_key(c["last_activity"].as_str().unwrap()))
            .collect();
        let ordered = keys.windows(2).all(|w| {
            if newest_first {
                w[0] >= w[1]
            } else {
                w[0] <= w[1]
            }
        });
        assert!(ordered, "sort={sort}: {keys:?}");
    }
    let c = get(addr, "/connz?sort=rtt").await.json();
    assert_eq!(c["total"], 3, "rtt");

    // Paging.
    let c = get(addr, "/connz?limit=1").await.json();
    assert_eq!(
        (c["num_connections"].as_u64(), c["total"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(c["connections"][0]["cid"].as_u64(), Some(cids[0]));
    let c = get(addr, "/connz?offset=1&limit=1").await.json();
    assert_eq!(c["connections"][0]["cid"].as_u64(), Some(cids[1]));
    assert_eq!(
        (c["offset"].as_u64(), c["limit"].as_u64()),
        (Some(1), Some(1))
    );
    let c = get(addr, "/connz?offset=2").await.json();
    assert_eq!(c["num_connections"], 1);
    let c = get(addr, "/connz?offset=9").await.json();
    assert_eq!(c["connections"], serde_json::json!([]));
    assert_eq!(c["total"], 3);

    // cid= and state=.
    let c = get(addr, &format!("/connz?cid={}", cids[1])).await.json();
    assert_eq!(c["connections"].as_array().unwrap().len(), 1);
    assert_eq!(c["connections"][0]["cid"].as_u64(), Some(cids[1]));
    let c = get(addr, "/connz?cid=999999").await.json();
    assert_eq!(c["connections"], serde_json::json!([]));
    assert_eq!(get(addr, "/connz?state=open").await.json()["total"], 3);
    assert_eq!(get(addr, "/connz?state=any").await.json()["total"], 3);
    let c = get(addr, "/connz?state=closed").await.json();
    assert_eq!(
        c["connections"],
        serde_json::json!([]),
        "closed connections are not kept"
    );

    // Bad parameters: 400 with nats-server's text.
    for (query, text) in [
        ("sort=bogus", "invalid sorting option: bogus"),
        ("sort=stop", "sort by stop only valid on closed connections"),
        ("limit=x", "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"),
        ("subs=maybe", "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        ("state=bad", "Error decoding state for bad"),
        ("cid=x", "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"x\": invalid syntax"),
    ] {
        let r = get(addr, &format!("/connz?{query}")).await;
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.body, text, "{query}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn subsz_shows_the_streaming_subjects() {
    let (broker, addr, _nats) = setup().await;
    let discover = format!("_STAN.discover.{}", broker.cluster_id());
    for path in ["/subsz", "/subscriptionsz"] {
        let r = get(addr, path).await;
        assert_json_headers(&r);
        let v = r.json();
        assert!(
            v["num_subscriptions"].as_u64().is_some_and(|n| n > 0),
            "the broker's streaming subjects: {v}"
        );
        for k in [
            "num_cache",
            "num_inserts",
            "num_removes",
            "num_matches",
            "max_fanout",
        ] {
            assert!(is_uint(&v[k]), "{k}");
        }
        assert!(v["cache_hit_rate"].is_f64() && v["avg_fanout"].is_f64());
        assert!(v["num_inserts"].as_u64() >= v["num_subscriptions"].as_u64());
        assert!(
            v["num_matches"].as_u64().is_some_and(|n| n > 0),
            "setup made requests"
        );
        assert!(v["server_id"].is_string() && is_rfc3339(&v["now"]));
        assert_eq!(
            (v["offset"].as_u64(), v["limit"].as_u64()),
            (Some(0), Some(1024))
        );
        assert!(v.get("subscriptions_list").is_none());
    }

    let all = get(addr, "/subsz?subs=1").await.json();
    let list = all["subscriptions_list"].as_array().unwrap().clone();
    assert_eq!(all["total"].as_u64(), Some(list.len() as u64));
    assert_eq!(all["num_subscriptions"].as_u64(), Some(list.len() as u64));
    let d = list
        .iter()
        .find(|s| s["subject"] == discover.as_str())
        .expect("discover subject listed");
    assert!(d["sid"].is_string() && is_uint(&d["msgs"]) && is_uint(&d["cid"]));
    assert!(
        d["msgs"].as_u64().is_some_and(|n| n >= 1),
        "the setup's connect request"
    );

    let page = get(addr, "/subsz?subs=1&offset=1&limit=2").await.json();
    assert_eq!(
        page["subscriptions_list"].as_array().unwrap()[..],
        list[1..3]
    );
    assert_eq!(
        page["total"], 2,
        "as nats-server: the subscriptions of the page"
    );

    let t = get(addr, &format!("/subsz?subs=1&test={discover}"))
        .await
        .json();
    let matched = t["subscriptions_list"].as_array().unwrap();
    assert!(matched.iter().any(|s| s["subject"] == discover.as_str()));
    assert!(
        matched.len() < list.len(),
        "only subscriptions matching the test subject"
    );
    let none = get(addr, "/subsz?subs=1&test=no.such.subject").await.json();
    assert!(none.get("subscriptions_list").is_none());
    assert_eq!(none["total"], 0);

    let r = get(addr, "/subsz?test=a.*").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "invalid test subject, must be valid publish subject: a.*"
    );
    broker.shutdown().await;
}

/// nats-server's own monitoring: `-m` on a free port; killed on drop.
struct MonitoredNats {
    child: std::process::Child,
    http: SocketAddr,
    url: String,
}

impl Drop for MonitoredNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn monitored_nats_server() -> Option<MonitoredNats> {
    let Some(bin) = stan_test_support::nats_server_binary() else {
        eprintln!("SKIPPED: nats-server is not installed");
        return None;
    };
    let (port, mport) = (
        stan_test_support::free_port(),
        stan_test_support::free_port(),
    );
    let child = std::process::Command::new(bin)
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &mport.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn nats-server");
    let server = MonitoredNats {
        child,
        http: SocketAddr::from(([127, 0, 0, 1], mport)),
        url: format!("nats://127.0.0.1:{port}"),
    };
    stan_test_support::within("nats-server monitoring", async {
        // nats-server has no readiness signal we can read: poll its monitoring listener.
        while tokio::net::TcpStream::connect(server.http).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    Some(server)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `theirs` is in `ours` with the same JSON type, recursively into objects and
/// the first element of arrays (compared with our element of the same subject, if any);
/// `except` lists keys nats-server has that we do not emit.
fn same_shape(path: &str, ours: &Value, theirs: &Value, except: &[&str]) {
    match (ours, theirs) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, tv) in t {
                if except.contains(&k.as_str()) {
                    continue;
                }
                let ov = o
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing: {ours}"));
                same_shape(&format!("{path}.{k}"), ov, tv, except);
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            // Their first element against ours for the same subject (the lists' orders
            // differ), else our first.
            if let Some(t) = t.first() {
                let same_subject = o
                    .iter()
                    .find(|e| t.get("subject").is_some() && e.get("subject") == t.get("subject"));
                if let Some(o) = same_subject.or(o.first()) {
                    same_shape(&format!("{path}[0]"), o, t, except);
                }
            }
        }
        _ => assert_eq!(kind(ours), kind(theirs), "{path}: {ours} vs {theirs}"),
    }
}

#[tokio::test]
async fn same_fields_and_types_as_nats_server() {
    let Some(nats) = monitored_nats_server().await else {
        return;
    };
    let (broker, addr, _nats) = setup().await;
    // The same traffic on both: a named client with a queue subscription and a plain one,
    // and a publish it receives.
    let mut clients = Vec::new();
    for url in [nats.url.clone(), broker.client_url()] {
        let c = timeout(
            WAIT,
            async_nats::ConnectOptions::new().name("shape").connect(url),
        )
        .await
        .unwrap()
        .unwrap();
        // A queue subscription, so that `qgroup` is compared too when nats-server lists it
        // first.
        let q = c.queue_subscribe("shape", "g".into()).await.unwrap();
        let p = c.subscribe("shape.>").await.unwrap();
        c.publish("shape", "x".into()).await.unwrap();
        stan_test_support::server_synced(&c).await;
        clients.push((c, q, p));
    }
    // Fields nats-server emits that have no counterpart here: accounts, its system account.
    let except = ["system_account", "account", "account_tag"];
    let theirs_cid = clients[0].0.server_info().client_id;
    let ours_cid = clients[1].0.server_info().client_id;
    for path in [
        "/varz",
        "/connz?subs=1&cid=",
        "/connz?subs=detail&cid=",
        "/connz?sort=idle&cid=",
        "/subsz?subs=1",
    ] {
        let (t, o) = if path.ends_with("cid=") {
            (format!("{path}{theirs_cid}"), format!("{path}{ours_cid}"))
        } else {
            (path.to_string(), path.to_string())
        };
        let theirs = get(nats.http, &t).await.json();
        let ours = get(addr, &o).await.json();
        same_shape(path, &ours, &theirs, &except);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn external_mode_serves_the_same_shapes_with_nothing_counted() {
    let Some(nats) = stan_test_support::start_nats_server().await else {
        return;
    };
    let broker = stan_test_support::start_external_broker(&nats.url, |cfg| {
        cfg.monitor = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let addr = broker.monitor_addr().unwrap();
    let v = varz_json(addr).await;
    assert_eq!(v["port"], nats.port());
    assert_eq!(v["connections"], 0);
    assert_eq!(v["in_msgs"], 0);
    assert_eq!(v["cluster"], serde_json::json!({}));
    assert!(is_rfc3339(&v["start"]));
    let c = get(addr, "/connz").await.json();
    assert_eq!(c["connections"], serde_json::json!([]));
    assert_eq!(c["total"], 0);
    let s = get(addr, "/subsz?subs=1").await.json();
    assert_eq!(s["num_subscriptions"], 0);
    assert_eq!(get(addr, "/connz?sort=bogus").await.status, 400);
    assert_eq!(get(addr, "/healthz").await.body, "{\"status\":\"ok\"}");
    broker.shutdown().await;
}

/// A `last_activity` time (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`, nats-server's format) as a
/// sortable key: the fixed-width date and time, then the fraction in nanoseconds.
fn activity_key(t: &str) -> (String, u32) {
    let t = t.strip_suffix('Z').expect("a UTC time");
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let nanos = format!("{frac:0<9}").parse().expect("nanoseconds");
    (secs.to_string(), nanos)
}

//! Monitoring endpoints over HTTP against a real broker with a client, a channel and a
//! durable subscription created through the STAN protocol.

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message;
use serde_json::Value;
use stan_broker::config::{BrokerConfig, ChannelLimits};
use stan_broker::{monitor, Broker};
use stan_protocol::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A minimal HTTP/1.1 GET over a raw TCP stream.
async fn get(addr: SocketAddr, path: &str) -> Resp {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let text = timeout(WAIT, fut).await.expect("HTTP response in time");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

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
/// and a durable subscription `dur` on it.
async fn setup() -> (Broker, SocketAddr) {
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
    (broker, addr)
}

fn assert_json_headers(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.body.starts_with("{\n  \""), "pretty JSON: {}", r.body);
}

#[tokio::test]
async fn streaming_endpoints() {
    let (broker, addr) = setup().await;

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
    let (broker, addr) = setup().await;

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

    let v = get(addr, "/connz").await.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["connections"][0]["name"], "mon-client");

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

//! `/metrics` over HTTP against a FILE-store broker after publishes, deliveries, acks and a
//! redelivery, parsed with a Prometheus text-format parser.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use stan_broker::config::StoreKind;
use stan_protocol::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics`: the `Content-Type` and the body.
async fn scrape(addr: SocketAddr) -> (String, String) {
    within("a /metrics answer", async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let content_type = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        (content_type, body.to_string())
    })
    .await
}

/// Parsed samples: `name{label=value,...}` → value (labels sorted; histogram buckets as
/// `name_bucket{le=...}`, plus `name_count` and `name_sum`).
struct Metrics {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
    body: String,
}

impl Metrics {
    fn parse(body: &str) -> Metrics {
        let lines = body.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
        let mut samples = HashMap::new();
        let mut types = HashMap::new();
        for s in scrape.samples {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let labels = labels.join(",");
            let key = |name: &str, labels: &str| {
                if labels.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}{{{labels}}}")
                }
            };
            match s.value {
                prometheus_parse::Value::Counter(v) => {
                    types.insert(s.metric.clone(), "counter".into());
                    samples.insert(key(&s.metric, &labels), v);
                }
                prometheus_parse::Value::Gauge(v) => {
                    types.insert(s.metric.clone(), "gauge".into());
                    samples.insert(key(&s.metric, &labels), v);
                }
                prometheus_parse::Value::Untyped(v) => {
                    samples.insert(key(&s.metric, &labels), v);
                }
                prometheus_parse::Value::Histogram(buckets) => {
                    types.insert(s.metric.clone(), "histogram".into());
                    for b in buckets {
                        samples.insert(
                            format!("{}_bucket{{le={}}}", s.metric, b.less_than),
                            b.count,
                        );
                    }
                }
                prometheus_parse::Value::Summary(_) => {}
            }
        }
        Metrics {
            samples,
            types,
            body: body.to_string(),
        }
    }

    fn get(&self, key: &str) -> f64 {
        match self.samples.get(key) {
            Some(v) => *v,
            None => {
                let mut keys: Vec<_> = self.samples.keys().collect();
                keys.sort();
                panic!("no sample {key}; samples: {keys:?}")
            }
        }
    }
}

#[tokio::test]
async fn metrics_reflect_traffic_acks_and_redeliveries() {
    let dir = fresh_store_dir();
    let broker = start_broker(|cfg| {
        cfg.monitor = Some("127.0.0.1:0".parse().unwrap());
        cfg.store = StoreKind::File(dir.clone());
        // The raw test client does not answer heartbeats.
        cfg.hb_interval = Duration::from_secs(3600);
    })
    .await;
    let addr = broker.monitor_addr().expect("monitoring on");

    let mut c = Conn::connect(&broker.client_url(), broker.cluster_id(), "metrics-client").await;
    for _ in 0..3 {
        c.publish("orders", b"hello").await;
    }
    c.publish("audit", b"x").await;

    // One subscription receives and acknowledges everything.
    let mut req = c.sub_req("orders");
    req.start_position = pb::StartPosition::First as i32;
    let mut all = c.subscribe(req).await.expect("subscribe");
    for seq in all.next_seqs(3).await {
        all.ack(seq).await;
    }
    // Another never acknowledges its one message in flight (max in flight 1, ack wait 50 ms):
    // it is redelivered and the subscription stays stalled.
    let mut req = c.sub_req("orders");
    req.start_position = pb::StartPosition::First as i32;
    req.max_in_flight = 1;
    req.ack_wait_in_secs = -50;
    let mut stuck = c.subscribe(req).await.expect("subscribe");
    let first = stuck.next().await;
    assert_eq!((first.sequence, first.redelivered), (1, false));
    let again = stuck.next().await;
    assert_eq!((again.sequence, again.redelivered), (1, true));

    // Scrape until the acks are processed (only the stuck message left pending).
    let (content_type, m) = within("acks reflected in /metrics", async {
        loop {
            let (ct, body) = scrape(addr).await;
            let m = Metrics::parse(&body);
            if m.samples
                .get("stan_channel_pending_msgs{channel=orders}")
                .is_some_and(|v| *v == 1.0)
            {
                return (ct, m);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );

    assert_eq!(m.get("stan_channel_in_msgs_total{channel=orders}"), 3.0);
    assert_eq!(m.get("stan_channel_in_bytes_total{channel=orders}"), 15.0);
    assert_eq!(m.get("stan_channel_in_msgs_total{channel=audit}"), 1.0);
    assert_eq!(m.get("stan_channel_in_bytes_total{channel=audit}"), 1.0);
    assert_eq!(m.get("stan_in_msgs_total"), 4.0);
    assert_eq!(m.get("stan_in_bytes_total"), 16.0);

    let redelivered = m.get("stan_channel_redeliveries_total{channel=orders}");
    assert!(redelivered >= 1.0, "{redelivered}");
    assert_eq!(m.get("stan_redeliveries_total"), redelivered);
    // 3 to the first subscription, 1 first delivery and the redeliveries to the second.
    assert_eq!(
        m.get("stan_channel_out_msgs_total{channel=orders}"),
        4.0 + redelivered
    );
    assert_eq!(m.get("stan_channel_out_msgs_total{channel=audit}"), 0.0);
    assert_eq!(m.get("stan_out_msgs_total"), 4.0 + redelivered);
    assert!(m.get("stan_channel_out_bytes_total{channel=orders}") > 4.0 * 5.0);

    assert_eq!(m.get("stan_channel_msgs{channel=orders}"), 3.0);
    assert_eq!(m.get("stan_channel_subscriptions{channel=orders}"), 2.0);
    assert_eq!(m.get("stan_channel_subscriptions{channel=audit}"), 0.0);
    assert_eq!(m.get("stan_channels"), 2.0);
    assert_eq!(m.get("stan_clients"), 1.0);
    assert_eq!(m.get("stan_subscriptions"), 2.0);
    assert_eq!(m.get("stan_pending_msgs"), 1.0);
    assert_eq!(m.get("stan_slow_consumers"), 1.0);
    assert_eq!(m.get("stan_store_msgs"), 4.0);
    assert_eq!(
        m.get("stan_store_bytes"),
        m.get("stan_channel_bytes{channel=orders}") + m.get("stan_channel_bytes{channel=audit}")
    );
    assert!(m.get("stan_store_bytes") >= 16.0);

    for (name, at_least) in [
        ("stan_publish_ack_latency_seconds", 4.0),
        ("stan_store_fsync_latency_seconds", 1.0),
    ] {
        assert_eq!(
            m.types.get(name).map(String::as_str),
            Some("histogram"),
            "{name}"
        );
        let count = m.get(&format!("{name}_count"));
        assert!(count >= at_least, "{name}_count = {count}");
        assert_eq!(m.get(&format!("{name}_bucket{{le=inf}}")), count, "{name}");
        assert!(m.get(&format!("{name}_sum")) > 0.0, "{name}");
    }
    // OpenMetrics names a counter family without its `_total` suffix (the parser, older
    // than that convention, leaves such samples untyped).
    assert!(
        m.body.contains("# TYPE stan_channel_in_msgs counter\n"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("# TYPE stan_redeliveries counter\n"),
        "{}",
        m.body
    );
    assert_eq!(
        m.types.get("stan_clients").map(String::as_str),
        Some("gauge")
    );
    assert!(m.body.ends_with("# EOF\n"), "{}", m.body);

    c.close().await;
    broker.shutdown().await;
}

//! Test harness: an in-process `stan-broker` on a free port, or an external server when
//! `STAN_TEST_SERVER_URL` (and optionally `STAN_TEST_CLUSTER_ID`) is set. Starting and
//! restarting the broker, timeouts, unique names and the network-cutting `Proxy` come from
//! `stan-test-support`; what stays here is about the client (options, messages, events).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use stan_broker::config::BrokerConfig;
use stan_broker::Broker;
use stan_client::{Client, ConnectOptions, Event, Events, Message, Subscription};
pub use stan_test_support::{unique, within};
use stan_test_support::{wait_until, InProcessBroker};

/// The server a test talks to.
pub struct TestServer {
    url: String,
    cluster_id: String,
    broker: Option<InProcessBroker>,
}

impl TestServer {
    /// Start an in-process broker with the test configuration, or use the external server.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), adjusting the in-process broker configuration first.
    pub async fn start_with(adjust: impl FnOnce(&mut BrokerConfig)) -> TestServer {
        if std::env::var_os("RUST_LOG").is_some() {
            stan_test_support::init_tracing();
        }
        if let Ok(url) = std::env::var("STAN_TEST_SERVER_URL") {
            let cluster_id =
                std::env::var("STAN_TEST_CLUSTER_ID").unwrap_or_else(|_| "test-cluster".into());
            return TestServer {
                url,
                cluster_id,
                broker: None,
            };
        }
        let broker = InProcessBroker::start_with(adjust).await;
        TestServer {
            url: broker.url(),
            cluster_id: broker.cluster_id().to_string(),
            broker: Some(broker),
        }
    }

    /// True when the tests run against an external server.
    pub fn is_external(&self) -> bool {
        self.broker.is_none()
    }

    /// NATS URL for clients.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Cluster ID.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The in-process broker, if any (its `set_frozen` freezes the engine).
    pub fn broker(&self) -> Option<&Broker> {
        self.broker.as_ref().map(InProcessBroker::broker)
    }

    /// `host:port` of the NATS listener.
    pub fn addr(&self) -> SocketAddr {
        let hostport = self
            .url
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("nats://");
        let hostport = hostport.rsplit('@').next().unwrap();
        hostport
            .replace("localhost", "127.0.0.1")
            .parse()
            .expect("host:port")
    }

    /// Connect options for `client_id` against this server.
    pub fn options(&self, client_id: &str) -> ConnectOptions {
        ConnectOptions::new(self.cluster_id.clone(), client_id).nats_url(self.url.clone())
    }

    /// Connect options for `client_id` using `url` (e.g. a `stan_test_support::Proxy`) instead of the server's.
    pub fn options_via(&self, url: &str, client_id: &str) -> ConnectOptions {
        ConnectOptions::new(self.cluster_id.clone(), client_id).nats_url(url)
    }

    /// Shut the in-process broker down and start a new one on the same port.
    pub async fn restart(&mut self) {
        let broker = self.broker.as_mut().expect("in-process broker");
        broker.restart().await;
        assert_eq!(broker.url(), self.url, "restarted on the same port");
    }
}

/// The in-process broker of `srv`, or print why the test is skipped and return.
#[macro_export]
macro_rules! broker_or_skip {
    ($srv:expr, $why:expr) => {
        match $srv.broker() {
            Some(b) => b.clone(),
            None => {
                println!("skipped against an external server: {}", $why);
                return;
            }
        }
    };
}

/// A started test server, a client connected to it and a fresh channel name.
pub async fn setup() -> (TestServer, Client, String) {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    (srv, client, unique("ch"))
}

/// Publish `m<from>`..=`m<to>` on `ch`, awaiting each ack.
pub async fn publish_n(client: &Client, ch: &str, from: usize, to: usize) {
    for i in from..=to {
        client.publish(ch, format!("m{i}")).await.unwrap();
    }
}

/// Wait until `n` deliveries are buffered in `sub`.
pub async fn buffered(sub: &Subscription, n: usize) {
    wait_until(&format!("{n} buffered messages"), || sub.buffered() >= n).await;
}

/// The next message of `sub` (fails the test on error, end, or timeout).
pub async fn next_msg(sub: &mut Subscription) -> Message {
    within("a message", sub.next())
        .await
        .expect("subscription ended")
        .expect("message")
}

/// `n` messages of `sub`.
pub async fn next_msgs(sub: &mut Subscription, n: usize) -> Vec<Message> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_msg(sub).await);
    }
    out
}

/// Assert that nothing arrives on `sub` for `quiet` (absence checks only).
pub async fn assert_quiet(sub: &mut Subscription, quiet: Duration) {
    if let Ok(item) = tokio::time::timeout(quiet, sub.next()).await {
        panic!("expected no message, got {item:?}");
    }
}

/// Wait for the first event matching `pred`, returning it.
pub async fn wait_event(events: &mut Events, pred: impl Fn(&Event) -> bool) -> Event {
    within("an event", async {
        loop {
            match events.next().await {
                Some(ev) if pred(&ev) => return ev,
                Some(_) => continue,
                None => panic!("event stream ended"),
            }
        }
    })
    .await
}

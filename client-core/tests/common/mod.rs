//! Test harness: an in-process `stan-broker` on a free port, or an external server when
//! `STAN_TEST_SERVER_URL` (and optionally `STAN_TEST_CLUSTER_ID`) is set.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use stan_broker::config::{BrokerConfig, NatsMode};
use stan_broker::Broker;
use stan_client::{ConnectOptions, Event, Events, Message, Subscription};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Generous upper bound for anything a test awaits.
pub const WAIT: Duration = Duration::from_secs(20);

/// The server a test talks to.
pub struct TestServer {
    url: String,
    cluster_id: String,
    broker: Option<Broker>,
    config: Option<BrokerConfig>,
}

impl TestServer {
    /// Start an in-process broker with the test configuration, or use the external server.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), adjusting the in-process broker configuration first.
    pub async fn start_with(adjust: impl FnOnce(&mut BrokerConfig)) -> TestServer {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        if let Ok(url) = std::env::var("STAN_TEST_SERVER_URL") {
            let cluster_id =
                std::env::var("STAN_TEST_CLUSTER_ID").unwrap_or_else(|_| "test-cluster".into());
            return TestServer {
                url,
                cluster_id,
                broker: None,
                config: None,
            };
        }
        let mut config = BrokerConfig::for_tests();
        adjust(&mut config);
        let broker = Broker::start(config.clone())
            .await
            .expect("in-process broker starts");
        TestServer {
            url: broker.client_url(),
            cluster_id: broker.cluster_id().to_string(),
            broker: Some(broker),
            config: Some(config),
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

    /// The in-process broker, if any.
    pub fn broker(&self) -> Option<&Broker> {
        self.broker.as_ref()
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

    /// Connect options for `client_id` using `url` (e.g. a [`Proxy`]) instead of the server's.
    pub fn options_via(&self, url: &str, client_id: &str) -> ConnectOptions {
        ConnectOptions::new(self.cluster_id.clone(), client_id).nats_url(url)
    }

    /// Shut the in-process broker down and start a new one on the same port.
    pub async fn restart(&mut self) {
        let broker = self.broker.take().expect("in-process broker");
        let port = self.addr().port();
        broker.shutdown().await;
        let mut config = self.config.clone().expect("config");
        if let NatsMode::Embedded(e) = &mut config.nats {
            e.port = port;
        }
        let mut last_err = None;
        for _ in 0..50 {
            match Broker::start(config.clone()).await {
                Ok(b) => {
                    self.broker = Some(b);
                    return;
                }
                Err(e) => {
                    last_err = Some(e);
                    // The port may still be held by the old listener for a moment.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("broker restart failed: {last_err:?}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { b.shutdown().await });
            }
        }
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

/// A unique name with a readable prefix.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", stan_protocol::subjects::new_nuid())
}

/// Await `fut` for at most [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
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

/// A TCP proxy in front of the NATS listener that can cut the network.
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Start forwarding a free local port to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let c = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if *c.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = c.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { addr, cut, task }
    }

    /// URL clients use to go through the proxy.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Drop every connection and refuse new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.task.abort();
    }
}

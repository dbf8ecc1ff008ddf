//! A `stan_broker::Broker` running in the test's own runtime.

use std::time::Duration;

use stan_broker::config::{BrokerConfig, ExternalNats, NatsMode};
use stan_broker::{Broker, BrokerError};

use crate::{free_port, port_of};

/// Starts an in-process broker with [`BrokerConfig::for_tests`] (embedded NATS on a free
/// loopback port, short heartbeats) adjusted by `f`. Panics if it does not start.
pub async fn start_broker(f: impl FnOnce(&mut BrokerConfig)) -> Broker {
    let mut config = BrokerConfig::for_tests();
    f(&mut config);
    Broker::start(config).await.expect("broker starts")
}

/// Starts an in-process broker attached to the core-NATS server at `nats_url` (for example a
/// [`NatsServer`](crate::NatsServer)), with the test configuration adjusted by `f`.
pub async fn start_external_broker(nats_url: &str, f: impl FnOnce(&mut BrokerConfig)) -> Broker {
    start_broker(|config| {
        config.nats = NatsMode::External(ExternalNats {
            url: nats_url.to_string(),
            ..Default::default()
        });
        f(config);
    })
    .await
}

/// An in-process broker that can be restarted on the same ports; shut down when dropped.
///
/// Freezing the engine (requests queue up unanswered, connections stay up) is
/// [`freeze`](Self::freeze); the process form's equivalent is
/// [`BrokerProcess::pause`](crate::BrokerProcess::pause).
pub struct InProcessBroker {
    broker: Option<Broker>,
    config: BrokerConfig,
}

impl InProcessBroker {
    /// Starts a broker with [`BrokerConfig::for_tests`].
    pub async fn start() -> InProcessBroker {
        InProcessBroker::start_with(|_| {}).await
    }

    /// Starts a broker with [`BrokerConfig::for_tests`] adjusted by `f`. Panics if it does not
    /// start.
    ///
    /// A client or monitoring port left at 0 is chosen with [`free_port`] (outside the
    /// ephemeral range, so that no outgoing connection can hold it when [`restart`](Self::restart)
    /// binds it again); if another process takes it first, other ports are tried.
    pub async fn start_with(f: impl FnOnce(&mut BrokerConfig)) -> InProcessBroker {
        let mut config = BrokerConfig::for_tests();
        f(&mut config);
        let pick_client = matches!(&config.nats, NatsMode::Embedded(e) if e.port == 0);
        let pick_monitor = config.monitor.is_some_and(|a| a.port() == 0);
        let mut attempts = 0;
        loop {
            let mut chosen = config.clone();
            if let (true, NatsMode::Embedded(e)) = (pick_client, &mut chosen.nats) {
                e.port = free_port();
            }
            if let (true, Some(addr)) = (pick_monitor, chosen.monitor.as_mut()) {
                addr.set_port(free_port());
            }
            match Broker::start(chosen.clone()).await {
                Ok(broker) => {
                    return InProcessBroker {
                        broker: Some(broker),
                        config: chosen,
                    };
                }
                Err(e) if attempts < 5 && (pick_client || pick_monitor) && port_taken(&e) => {
                    attempts += 1;
                }
                Err(e) => panic!("in-process broker starts: {e}"),
            }
        }
    }

    /// The running broker (a cheap clone handle).
    pub fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("the broker is running")
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        self.broker().client_url()
    }

    /// The cluster ID.
    pub fn cluster_id(&self) -> &str {
        &self.config.cluster_id
    }

    /// The client port (embedded NATS) or the external server's port.
    pub fn port(&self) -> u16 {
        port_of(&self.url()).expect("client URL with a port")
    }

    /// The monitoring base URL (`http://127.0.0.1:<port>`), if monitoring is on.
    pub fn monitoring_url(&self) -> Option<String> {
        self.broker().monitor_addr().map(|a| format!("http://{a}"))
    }

    /// Freezes (`true`) or thaws (`false`) the engine: while frozen it processes nothing and
    /// requests queue up, while the NATS connections stay up.
    pub fn freeze(&self, frozen: bool) {
        self.broker().set_frozen(frozen);
    }

    /// Shuts the broker down and starts a new one with the same configuration on the same
    /// client and monitoring ports (its memory store starts empty). Panics if that fails for
    /// about five seconds.
    pub async fn restart(&mut self) {
        let broker = self.broker.take().expect("the broker is running");
        if let NatsMode::Embedded(e) = &mut self.config.nats {
            e.port = port_of(&broker.client_url()).expect("client URL with a port");
        }
        if let Some(addr) = broker.monitor_addr() {
            self.config.monitor = Some(addr);
        }
        broker.shutdown().await;
        let mut last_err = None;
        for _ in 0..50 {
            match Broker::start(self.config.clone()).await {
                Ok(b) => {
                    self.broker = Some(b);
                    return;
                }
                Err(e) => {
                    last_err = Some(e);
                    // The old listener may hold the port for a moment.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("broker restart failed: {last_err:?}");
    }

    /// Shuts the broker down gracefully and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
    }
}

/// Whether the broker did not start because a port it was to listen on is in use.
fn port_taken(e: &BrokerError) -> bool {
    match e {
        BrokerError::NatsListen { source, .. } | BrokerError::Monitor { source, .. } => {
            source.kind() == std::io::ErrorKind::AddrInUse
        }
        _ => false,
    }
}

impl Drop for InProcessBroker {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { b.shutdown().await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::within;

    async fn accepts(port: u16) -> bool {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn restart_keeps_the_client_and_monitoring_ports() {
        let mut b = InProcessBroker::start_with(|c| {
            c.cluster_id = "ts-cluster".into();
            c.monitor = Some("127.0.0.1:0".parse().unwrap());
        })
        .await;
        assert_eq!(b.cluster_id(), "ts-cluster");
        let (url, port) = (b.url(), b.port());
        assert_eq!(url, format!("nats://127.0.0.1:{port}"));
        let monitoring = b.monitoring_url().expect("monitoring on");
        b.freeze(true);
        b.freeze(false);
        within("restart", b.restart()).await;
        assert_eq!(b.url(), url);
        assert_eq!(b.monitoring_url().as_deref(), Some(monitoring.as_str()));
        assert!(accepts(port).await);
        within("shutdown", b.shutdown()).await;
        assert!(!accepts(port).await);
    }

    #[tokio::test]
    async fn start_broker_applies_the_adjustment() {
        let b = start_broker(|c| c.cluster_id = "adjusted".into()).await;
        assert_eq!(b.cluster_id(), "adjusted");
        b.shutdown().await;
    }
}

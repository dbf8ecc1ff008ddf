//! Test support shared by the stan-rs crates (a dev-dependency only; not published).
//!
//! Generic helpers, always available:
//!
//! * [`within`], [`within_for`], [`wait_until`]: bounded waits that fail the test with a
//!   message saying what did not happen;
//! * [`free_port`], [`unique`], [`init_tracing`];
//! * [`NatsServer`] / [`start_nats_server`]: Debian's `nats-server` on a free port (`None`
//!   when it is not installed);
//! * [`Proxy`]: a TCP proxy that can cut the network between clients and a server;
//! * [`JsCluster`]: a cluster of JetStream-enabled `nats-server` nodes that can be killed and
//!   restarted (`None` when `nats-server` is not installed).
//!
//! With the `broker` feature (on by default):
//!
//! * [`InProcessBroker`], [`start_broker`], [`start_external_broker`]: a `stan_broker::Broker`
//!   in the test's own runtime, on free ports;
//! * [`BrokerProcess`]: the `stan-broker` binary as a child process, ready once it prints its
//!   ready line (`stan_broker::ready`), with kill, restart on the same ports, pause
//!   (SIGSTOP/SIGCONT) and stop on drop.
//!
//! `stan-embedded-nats` uses this crate with `default-features = false`: the broker depends on
//! it, so its tests must not pull the broker in.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use stan_test_support::{free_port, within};
//! let port = free_port();
//! let listener = within("bind", tokio::net::TcpListener::bind(("127.0.0.1", port))).await;
//! assert!(listener.is_ok());
//! # }
//! ```
#![warn(missing_docs)]

use std::future::Future;
use std::time::Duration;

pub mod http;
mod nats_cluster;
mod nats_server;
mod proxy;

#[cfg(feature = "broker")]
mod broker;
#[cfg(feature = "broker")]
mod process;

pub use nats_cluster::JsCluster;
pub use nats_server::{nats_server_binary, start_nats_server, NatsServer};
pub use proxy::Proxy;

#[cfg(feature = "broker")]
pub use broker::{start_broker, start_external_broker, InProcessBroker};
#[cfg(feature = "broker")]
pub use process::{broker_binary, BrokerProcess, ProcessOptions};

/// Generous upper bound for anything a test awaits (not a speed assertion).
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `fut` for at most [`WAIT`], panicking with `what` on timeout.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within_for(WAIT, what, fut).await
}

/// Awaits `fut` for at most `limit`, panicking with `what` on timeout.
///
/// For tests where the bound itself means something (the answer must come before some
/// server-side timeout would fire).
pub async fn within_for<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what} ({limit:?})"),
    }
}

/// Polls `cond` every few milliseconds until it holds, panicking with `what` after [`WAIT`].
///
/// For state that can only be observed by looking (connection counts, interest); prefer
/// awaiting an event where there is one.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// A loopback port that was free a moment ago (bound and released again), chosen below the
/// kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`) where there is room.
///
/// A port from the ephemeral range can be taken at any moment as the local port of some
/// outgoing connection, so a server that stops and starts again on its port (a restart test)
/// could find it in use for as long as that connection lives; ports below the range are only
/// ever taken by an explicit bind. Another process may still take it before the caller binds
/// it; prefer port 0 where nothing needs the port again.
pub fn free_port() -> u16 {
    let (low, _) = ephemeral_port_range();
    if low > 11_024 {
        // Candidates spread over the 10,000 ports below the range, in an order that differs
        // from process to process and call to call.
        let seed = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::process::id(),
        );
        for i in 0..64u64 {
            let port = low - 1 - ((seed.wrapping_add(i.wrapping_mul(7_919)) % 10_000) as u16);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// The kernel's range of ports for outgoing connections (Linux's default when unknown).
fn ephemeral_port_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

/// A unique name with a readable prefix (`"{prefix}-{nuid}"`): channels, client IDs, durables.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", nuid::next())
}

/// Sends `tracing` output to the test's captured output, filtered by `RUST_LOG` (shown with
/// `--nocapture` or when the test fails). Safe to call more than once.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Returns once the server has processed everything `nc` sent before, so the subscriptions it
/// made are live. `async_nats::Client::flush` only writes to the socket: a test that subscribes
/// on one connection and then makes traffic from another one needs this round trip in between.
pub async fn server_synced(nc: &async_nats::Client) {
    use futures::StreamExt;
    let inbox = nc.new_inbox();
    let mut echo = nc.subscribe(inbox.clone()).await.expect("subscribe");
    nc.publish(inbox, "".into()).await.expect("publish");
    within("server round trip", echo.next()).await;
}

/// The port of a URL such as `nats://127.0.0.1:4222` or `http://127.0.0.1:8222/`.
#[cfg(any(feature = "broker", test))]
pub(crate) fn port_of(url: &str) -> Option<u16> {
    let hostport = url.split("://").last()?.split('/').next()?;
    hostport.rsplit(':').next()?.parse().ok()
}

/// Removes the directories in `root` last modified more than `age` ago (left by earlier test
/// runs); errors are ignored.
pub fn remove_dirs_older_than(root: &std::path::Path, age: std::time::Duration) {
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|a| a > age);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn within_returns_the_value() {
        assert_eq!(within("a ready value", async { 7 }).await, 7);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out waiting for nothing")]
    async fn within_for_panics_with_what_on_timeout() {
        within_for(
            Duration::from_millis(10),
            "nothing",
            std::future::pending::<()>(),
        )
        .await;
    }

    #[tokio::test]
    async fn wait_until_polls_until_the_condition_holds() {
        let mut calls = 0;
        wait_until("third call", || {
            calls += 1;
            calls == 3
        })
        .await;
        assert_eq!(calls, 3);
    }

    #[test]
    fn free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }

    #[test]
    fn free_port_is_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_port_range();
        assert!(low <= high, "range {low}..={high}");
        if low > 11_024 {
            for _ in 0..20 {
                let port = free_port();
                assert!(
                    port < low,
                    "port {port} is in the ephemeral range {low}..={high}"
                );
            }
        }
    }

    #[test]
    fn unique_names_differ_and_keep_the_prefix() {
        let (a, b) = (unique("ch"), unique("ch"));
        assert_ne!(a, b);
        assert!(a.starts_with("ch-"), "{a}");
    }

    #[test]
    fn port_of_urls() {
        assert_eq!(port_of("nats://127.0.0.1:4222"), Some(4222));
        assert_eq!(port_of("http://127.0.0.1:8222/"), Some(8222));
        assert_eq!(port_of("nats://user:pw@localhost:14222"), Some(14222));
        assert_eq!(port_of("nats://127.0.0.1"), None);
    }
}

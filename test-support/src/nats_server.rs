//! Debian's `nats-server` as a child process, for tests against a real core-NATS server.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;

/// A `nats-server` child process on a loopback port; killed when dropped.
pub struct NatsServer {
    child: Child,
    port: u16,
    /// Its client URL, `nats://127.0.0.1:<port>`.
    pub url: String,
}

impl NatsServer {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `nats-server` binary (on `PATH`, or where Debian's package installs it), if installed.
pub fn nats_server_binary() -> Option<&'static str> {
    [
        "nats-server",
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
    ]
    .into_iter()
    .find(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// Starts `nats-server` on a free loopback port and returns once it accepts connections, or
/// returns `None` (printing `SKIPPED: ...`) when the binary is not installed.
///
/// Panics when the server does not come up (after a few tries on other ports).
pub async fn start_nats_server() -> Option<NatsServer> {
    let Some(bin) = nats_server_binary() else {
        eprintln!("SKIPPED: nats-server is not installed (apt-get install -y nats-server)");
        return None;
    };
    for _ in 0..5 {
        // The port may be taken between picking and binding: the server then exits and the
        // next round tries another one.
        let port = free_port();
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let mut server = NatsServer {
            child,
            port,
            url: format!("nats://127.0.0.1:{port}"),
        };
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            // Polling the listener: nats-server has no readiness signal we can read here.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("nats-server did not start");
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncBufReadExt;

    use super::*;

    #[tokio::test]
    async fn nats_server_starts_on_a_free_port_and_stops_on_drop() {
        let Some(server) = start_nats_server().await else {
            return;
        };
        assert_eq!(server.url, format!("nats://127.0.0.1:{}", server.port()));
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .unwrap();
        let mut line = String::new();
        crate::within(
            "INFO",
            tokio::io::BufReader::new(stream).read_line(&mut line),
        )
        .await
        .unwrap();
        assert!(line.starts_with("INFO {"), "{line}");
        let port = server.port();
        drop(server);
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err());
    }
}

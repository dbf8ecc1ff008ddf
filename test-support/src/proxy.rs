//! A TCP proxy that can cut the network between clients and a server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy on a free loopback port in front of a server (usually a NATS listener).
///
/// [`cut`](Self::cut) drops every proxied connection and refuses new ones, as a broken network
/// would; [`restore`](Self::restore) accepts connections again. Stopped when dropped.
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
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

    /// The proxy's own address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The NATS URL clients use to go through the proxy.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Drops every proxied connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Accepts connections again.
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::within;

    /// A server that echoes what it reads, on every connection.
    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn echo_round_trip(s: &mut TcpStream) -> std::io::Result<[u8; 4]> {
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn forwards_cuts_and_restores() {
        let proxy = Proxy::start(echo_server().await).await;
        assert_eq!(proxy.url(), format!("nats://{}", proxy.addr()));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            &within("echo", echo_round_trip(&mut s)).await.unwrap(),
            b"ping"
        );

        proxy.cut();
        // The proxied connection ends, and a new one is closed at once.
        assert!(within("cut", echo_round_trip(&mut s)).await.is_err());
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(within("refused", echo_round_trip(&mut refused))
            .await
            .is_err());

        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            &within("echo again", echo_round_trip(&mut again))
                .await
                .unwrap(),
            b"ping"
        );
    }
}

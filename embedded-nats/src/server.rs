//! The server: listener, accept loop, shared state and message routing.

use crate::Map;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::distr::{Alphanumeric, SampleString};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::client;
use crate::local::LocalConnection;
use crate::message::Outgoing;
use crate::options::ServerOptions;
use crate::outbound::{ClientShared, Producer};
use crate::stats::{ConnectionInfo, ServerCounters, SublistStats, SubscriptionInfo, VarzStats};
use crate::sublist::{lock, Sublist};
use crate::subscription::{Delivery, Subscription, Target};

/// State shared by the accept loop, connections and handles.
pub(crate) struct ServerInner {
    pub opts: ServerOptions,
    pub server_id: String,
    pub local_addr: SocketAddr,
    pub sublist: Sublist,
    pub clients: Mutex<Map<u64, Arc<ClientShared>>>,
    pub tracker: TaskTracker,
    /// Monitoring counters.
    pub stats: ServerCounters,
    next_id: AtomicU64,
    shutdown: CancellationToken,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl ServerInner {
    /// A fresh id for a connection or subscription.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Routes a message to every matching subscription; returns the number of deliveries.
    /// With `echo` false, subscriptions of the `publisher` connection are skipped. A TCP
    /// producer collects the connections its message pushed over their stall mark.
    pub(crate) fn route(
        &self,
        msg: &Outgoing<'_>,
        publisher: u64,
        echo: bool,
        mut from: Producer<'_>,
    ) -> usize {
        let size = msg.payload.len() + msg.headers.map_or(0, |h| h.len());
        let result = self.sublist.matches(msg.subject);
        if result.is_empty() {
            self.stats.routed(size, 0);
            return 0;
        }
        let mut delivered = 0;
        let mut finished: Vec<&Arc<Subscription>> = Vec::new();
        for sub in &result.psubs {
            if !echo && sub.conn_id == publisher {
                continue;
            }
            match sub.deliver(msg, &mut from) {
                Delivery::Skipped => {}
                Delivery::Delivered => delivered += 1,
                Delivery::DeliveredLast => {
                    delivered += 1;
                    finished.push(sub);
                }
            }
        }
        for (_, group) in &result.qsubs {
            let len = group.len();
            let start = if len > 1 {
                rand::random_range(0..len)
            } else {
                0
            };
            for i in 0..len {
                let sub = &group[(start + i) % len];
                if !echo && sub.conn_id == publisher {
                    continue;
                }
                match sub.deliver(msg, &mut from) {
                    Delivery::Skipped => continue,
                    Delivery::Delivered => {}
                    Delivery::DeliveredLast => finished.push(sub),
                }
                delivered += 1;
                break;
            }
        }
        for sub in finished {
            self.remove_sub(sub);
        }
        self.stats.routed(size, delivered);
        delivered
    }

    /// Removes a subscription from the index (and from its TCP connection's sid table).
    pub(crate) fn remove_sub(&self, sub: &Subscription) {
        sub.close();
        self.sublist.remove(sub);
        if let Target::Tcp { client, sid } = &sub.target {
            let mut subs = lock(&client.subs);
            if subs.get(sid).is_some_and(|s| s.id == sub.id) {
                subs.remove(sid);
            }
        }
    }

    /// `UNSUB <sid> [max]` of a TCP connection.
    pub(crate) fn unsubscribe_sid(&self, client: &ClientShared, sid: &[u8], max: Option<u64>) {
        let sub = lock(&client.subs).get(sid).cloned();
        let Some(sub) = sub else {
            return;
        };
        let remove = match max {
            None => true,
            Some(max) => sub.set_max(max),
        };
        if remove {
            self.remove_sub(&sub);
        }
    }

    /// Removes every subscription of a closing TCP connection.
    pub(crate) fn drop_client_subs(&self, client: &ClientShared) {
        let subs: Vec<_> = lock(&client.subs).drain().map(|(_, s)| s).collect();
        for sub in subs {
            sub.close();
            self.sublist.remove(&sub);
        }
    }
}

/// A running server. Cheap to clone. Dropping the handles does not stop it: call
/// [`shutdown`](Server::shutdown).
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use stan_embedded_nats::{Server, ServerOptions};
/// let server = Server::start(ServerOptions { port: 0, ..Default::default() }).await?;
/// println!("listening on {}", server.client_url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.inner.local_addr)
            .field("server_id", &self.inner.server_id)
            .finish()
    }
}

impl Server {
    /// Binds the listener (SO_REUSEADDR, so a restart can reuse the port at once) and spawns the
    /// accept loop on the current tokio runtime.
    pub async fn start(opts: ServerOptions) -> io::Result<Server> {
        let addr = tokio::net::lookup_host((opts.host.as_str(), opts.port))
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address for host"))?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        let local_addr = listener.local_addr()?;
        let server_id = format!(
            "N{}",
            Alphanumeric
                .sample_string(&mut rand::rng(), 55)
                .to_ascii_uppercase()
        );
        let inner = Arc::new(ServerInner {
            opts,
            server_id,
            local_addr,
            sublist: Sublist::default(),
            clients: Mutex::new(Map::default()),
            tracker: TaskTracker::new(),
            stats: ServerCounters::default(),
            next_id: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
            accept: Mutex::new(None),
        });
        let handle = tokio::spawn(accept_loop(inner.clone(), listener));
        *lock(&inner.accept) = Some(handle);
        info!(addr = %local_addr, "core NATS server listening");
        Ok(Server { inner })
    }

    /// Address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// `nats://<ip>:<port>` of the listener (the actual bound port), `tls://<ip>:<port>` when
    /// TLS is on.
    pub fn client_url(&self) -> String {
        let scheme = if self.inner.opts.tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        format!("{scheme}://{}", self.inner.local_addr)
    }

    /// The server id sent as `server_id` in INFO.
    pub fn server_id(&self) -> &str {
        &self.inner.server_id
    }

    /// The options the server runs with.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.opts
    }

    /// An in-process connection: no TCP, no encoding. Routing is synchronous.
    pub fn connect_local(&self, name: &str) -> LocalConnection {
        LocalConnection::new(self.inner.clone(), name)
    }

    /// Number of TCP client connections currently open.
    pub fn num_connections(&self) -> usize {
        lock(&self.inner.clients).len()
    }

    /// Number of subscriptions (TCP and local) currently registered.
    pub fn num_subscriptions(&self) -> usize {
        self.inner.sublist.count()
    }

    /// Server-wide counters and current counts, as `/varz` reports them.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// use stan_embedded_nats::{Server, ServerOptions};
    /// let server = Server::start(ServerOptions { port: 0, ..Default::default() }).await?;
    /// let v = server.varz_stats();
    /// println!("{} messages in, {} connections", v.in_msgs, v.connections);
    /// # Ok(()) }
    /// ```
    pub fn varz_stats(&self) -> VarzStats {
        crate::stats::varz(
            &self.inner.stats,
            self.num_connections(),
            self.num_subscriptions(),
        )
    }

    /// The open TCP connections, ordered by connection id.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let mut clients: Vec<_> = lock(&self.inner.clients).values().cloned().collect();
        clients.sort_by_key(|c| c.cid);
        clients.iter().map(|c| c.info()).collect()
    }

    /// Every registered subscription (TCP and in-process), ordered by connection id, then
    /// subject.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        let mut subs: Vec<SubscriptionInfo> =
            self.inner.sublist.all().iter().map(|s| s.info()).collect();
        subs.sort_by(|a, b| (a.cid, &a.subject, &a.sid).cmp(&(b.cid, &b.subject, &b.sid)));
        subs
    }

    /// Statistics of the subject index and its match cache, as `/subsz` reports them.
    pub fn sublist_stats(&self) -> SublistStats {
        self.inner.sublist.stats()
    }

    /// Stops accepting, closes every TCP connection (flushing what is buffered, best effort),
    /// ends every local subscription stream. Idempotent. The port is free when this returns.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutdown.cancel();
        let accept = lock(&inner.accept).take();
        if let Some(handle) = accept {
            let _ = handle.await;
        }
        drop(inner.sublist.close());
        let clients: Vec<_> = lock(&inner.clients).values().cloned().collect();
        for c in clients {
            c.close_graceful();
        }
        inner.tracker.close();
        inner.tracker.wait().await;
        debug!(addr = %inner.local_addr, "core NATS server shut down");
    }

    /// Closes all TCP client connections at once (the listener stays up); clients may
    /// reconnect.
    pub fn disconnect_all_clients(&self) {
        let clients: Vec<_> = lock(&self.inner.clients).values().cloned().collect();
        for c in clients {
            c.close_now();
        }
    }
}

async fn accept_loop(inner: Arc<ServerInner>, listener: TcpListener) {
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let cid = inner.next_id();
                    let client = Arc::new(ClientShared::new(
                        cid,
                        peer,
                        inner.opts.max_pending,
                        inner.opts.max_pending_in_process,
                    ));
                    lock(&inner.clients).insert(cid, client.clone());
                    inner.tracker.spawn(client::serve(inner.clone(), client, stream));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
        }
    }
}

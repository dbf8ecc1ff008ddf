//! A TCP client connection (plain or TLS): the reader loop and protocol handling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_rustls::server::TlsStream;
use tracing::{debug, warn};

use crate::error::proto_err;
use crate::info::{ConnectInfo, ServerInfo, SERVER_VERSION};
use crate::message::Outgoing;
use crate::options::Auth;
use crate::outbound::{write_loop, ClientShared, Producer, STALL_MAX, STALL_TOTAL};
use crate::parser::{parse, Limits, Op, Parsed};
use crate::readbuf::ReadBuf;
use crate::server::ServerInner;
use crate::sublist::{is_valid_pub_subject, is_valid_queue, is_valid_sub_subject, lock};
use crate::subscription::{Delivery, Subscription, Target};
use crate::tls;

/// How long a closing connection may take to flush what is buffered.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the reader stopped.
enum Stop {
    /// Send this `-ERR` text, then close.
    Fatal(&'static str),
    /// Close quietly.
    Quiet,
}

/// Per-connection protocol state owned by the reader.
struct Conn {
    server: Arc<ServerInner>,
    client: Arc<ClientShared>,
    limits: Limits,
    awaiting_auth: bool,
    verbose: bool,
    pedantic: bool,
    echo: bool,
    headers: bool,
    no_responders: bool,
    pings_out: u32,
    /// When the oldest unanswered server PING was sent (for the round-trip time).
    ping_sent: Option<Instant>,
    name: String,
    /// Readers over their stall mark that this connection's publishes reached.
    stalled: Vec<Arc<ClientShared>>,
    /// Time stalled since the last read of the socket.
    stalled_for: Duration,
}

/// Releases a connection's server-side state when its task ends, however it ends.
struct ConnGuard {
    server: Arc<ServerInner>,
    client: Arc<ClientShared>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.client.close_now();
        if self.client.stats.was_slow_consumer() {
            self.server.stats.slow_consumer();
        }
        self.server.drop_client_subs(&self.client);
        lock(&self.server.clients).remove(&self.client.cid);
    }
}

/// A connection's byte stream, split into a read half and a write half that the reader and
/// the writer task use independently. A plain socket splits without a lock; a TLS stream
/// shares its session between the halves ([`tokio::io::split`]).
pub(crate) trait Socket: Send + 'static {
    /// The read half.
    type Reader: AsyncRead + Unpin + Send + 'static;
    /// The write half.
    type Writer: AsyncWrite + Unpin + Send + 'static;
    /// Splits the stream.
    fn split(self) -> (Self::Reader, Self::Writer);
}

impl Socket for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;
    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

impl Socket for TlsStream<TcpStream> {
    type Reader = ReadHalf<Self>;
    type Writer = WriteHalf<Self>;
    fn split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

/// The INFO line for `client`.
fn info_line(server: &ServerInner, client: &ClientShared) -> Vec<u8> {
    let opts = &server.opts;
    let ip = client.peer.ip().to_string();
    let info = ServerInfo {
        server_id: &server.server_id,
        server_name: &opts.server_name,
        version: SERVER_VERSION,
        proto: 1,
        go: "go1.21.0",
        host: &opts.host,
        port: server.local_addr.port(),
        headers: true,
        max_payload: opts.max_payload,
        client_id: client.cid,
        client_ip: &ip,
        auth_required: opts.auth.is_some(),
        tls_required: opts.tls.is_some(),
        tls_verify: opts.tls.as_ref().is_some_and(|t| t.verify()),
    };
    info.to_line()
}

/// Runs an accepted TCP connection to its end. With TLS configured, INFO goes out in plaintext
/// and the client's handshake must follow; a connection that fails it is closed (logged at
/// debug level, or warn for a certificate problem) and the server goes on.
pub(crate) async fn serve(server: Arc<ServerInner>, client: Arc<ClientShared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let info = info_line(&server, &client);
    let Some(tls) = server.opts.tls.clone() else {
        client.enqueue_raw(&info);
        return run(server, client, stream).await;
    };
    let accepted = tokio::select! {
        biased;
        _ = client.closing.cancelled() => None,
        r = tls::accept(&tls, stream, &info) => Some(r),
    };
    match accepted {
        Some(Ok(stream)) => run(server, client, stream).await,
        failed => {
            match &failed {
                Some(Err(tls::Refused::Failed(e)))
                    if e.kind() == std::io::ErrorKind::InvalidData =>
                {
                    warn!(cid = client.cid, peer = %client.peer, error = %e, "TLS handshake failed")
                }
                Some(Err(why)) => debug!(cid = client.cid, peer = %client.peer, %why,
                    "closing connection before TLS was established"),
                _ => {}
            }
            // Releases what the accept loop registered.
            drop(ConnGuard { server, client });
        }
    }
}

/// Runs a connection (plain, or TLS once established; INFO is sent already or queued) to its
/// end.
async fn run<S: Socket>(server: Arc<ServerInner>, client: Arc<ClientShared>, stream: S) {
    let _guard = ConnGuard {
        server: server.clone(),
        client: client.clone(),
    };
    server.stats.connection_opened();
    let (mut rd, wr) = stream.split();
    let mut writer = server.tracker.spawn(write_loop(client.clone(), wr));
    let opts = &server.opts;
    debug!(cid = client.cid, peer = %client.peer, "client connected");

    let mut conn = Conn {
        limits: Limits {
            max_control_line: opts.max_control_line,
            max_payload: opts.max_payload,
        },
        awaiting_auth: opts.auth.is_some(),
        verbose: false,
        pedantic: false,
        echo: true,
        headers: false,
        no_responders: false,
        pings_out: 0,
        ping_sent: None,
        name: String::new(),
        stalled: Vec::new(),
        stalled_for: Duration::ZERO,
        server: server.clone(),
        client: client.clone(),
    };
    match conn.read_loop(&mut rd).await {
        Stop::Fatal(text) => {
            warn!(cid = client.cid, peer = %client.peer, name = %conn.name, error = text,
                "closing connection on protocol error");
            client.send_err(text);
        }
        Stop::Quiet => {}
    }
    client.close_graceful();
    server.drop_client_subs(&client);
    if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        client.close_now();
        let _ = writer.await;
    }
    drop(rd);
    debug!(cid = client.cid, peer = %client.peer, name = %conn.name, "client disconnected");
}

fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Conn {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Stop {
        let client = self.client.clone();
        let server = self.server.clone();
        let opts = &server.opts;
        let mut buf = ReadBuf::new();
        let mut need = 0usize;
        let ping_every = opts.ping_interval.max(Duration::from_millis(1));
        let mut ping = interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let auth_deadline = tokio::time::sleep(opts.auth_timeout);
        tokio::pin!(auth_deadline);
        loop {
            buf.prepare(need);
            tokio::select! {
                biased;
                _ = client.kill.cancelled() => return Stop::Quiet,
                _ = client.closing.cancelled() => return Stop::Quiet,
                _ = &mut auth_deadline, if self.awaiting_auth => {
                    return Stop::Fatal(proto_err::AUTH_TIMEOUT);
                }
                _ = ping.tick() => {
                    if self.pings_out + 1 > opts.max_pings_out {
                        return Stop::Fatal(proto_err::STALE_CONNECTION);
                    }
                    self.pings_out += 1;
                    self.ping_sent.get_or_insert_with(Instant::now);
                    client.enqueue_raw(b"PING\r\n");
                }
                r = buf.read_from(rd) => match r {
                    Ok(0) => return Stop::Quiet,
                    Err(e) => {
                        debug!(cid = client.cid, error = %e, "read failed");
                        return Stop::Quiet;
                    }
                    Ok(_) => {
                        self.stalled_for = Duration::ZERO;
                        client.stats.touch();
                    }
                },
            }
            loop {
                match parse(buf.bytes(), self.limits) {
                    Err(e) => return Stop::Fatal(e.text()),
                    Ok(Parsed::Incomplete(n)) => {
                        need = n;
                        break;
                    }
                    Ok(Parsed::Op(op)) => {
                        if let Err(stop) = self.handle(op) {
                            return stop;
                        }
                        if !self.stalled.is_empty() {
                            self.stall().await;
                        }
                    }
                }
            }
        }
    }

    /// Back-pressure: waits, briefly, for the readers this connection's last publish pushed
    /// over their stall mark to drain. Each wait is bounded, and so is their total between two
    /// reads of this connection's socket: a reader that stopped reading slows its producers
    /// only until it is cut as a slow consumer.
    async fn stall(&mut self) {
        let mut stalled = std::mem::take(&mut self.stalled);
        for reader in stalled.drain(..) {
            let budget = STALL_TOTAL.saturating_sub(self.stalled_for);
            if budget.is_zero() {
                continue;
            }
            let started = Instant::now();
            tokio::select! {
                biased;
                _ = self.client.kill.cancelled() => {}
                _ = reader.stall(budget.min(STALL_MAX)) => {}
            }
            self.stalled_for += started.elapsed();
        }
        // Keep the allocation for the next stall.
        self.stalled = stalled;
    }

    fn ok(&self) {
        if self.verbose {
            self.client.enqueue_raw(b"+OK\r\n");
        }
    }

    fn handle(&mut self, op: Op) -> Result<(), Stop> {
        if self.awaiting_auth && !matches!(op, Op::Connect(_)) {
            return Err(Stop::Fatal(proto_err::AUTH_VIOLATION));
        }
        match op {
            Op::Connect(json) => self.connect(&json),
            Op::Ping => {
                self.client.enqueue_raw(b"PONG\r\n");
                Ok(())
            }
            Op::Pong => {
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    self.client.stats.set_rtt(sent.elapsed());
                }
                Ok(())
            }
            Op::Ok | Op::Info => Ok(()),
            Op::Err(text) => {
                debug!(cid = self.client.cid, error = %String::from_utf8_lossy(&text),
                    "client reported an error");
                Ok(())
            }
            Op::Sub {
                subject,
                queue,
                sid,
            } => {
                self.subscribe(&subject, queue.as_deref(), sid);
                Ok(())
            }
            Op::Unsub { sid, max } => {
                self.server.unsubscribe_sid(&self.client, &sid, max);
                self.ok();
                Ok(())
            }
            Op::Pub {
                subject,
                reply,
                headers,
                payload,
            } => self.publish(&subject, reply.as_deref(), headers.as_ref(), &payload),
        }
    }

    fn connect(&mut self, json: &[u8]) -> Result<(), Stop> {
        let ci: ConnectInfo =
            serde_json::from_slice(json).map_err(|_| Stop::Fatal(proto_err::UNKNOWN_OP))?;
        if let Some(p) = ci.protocol {
            if !(0..=1).contains(&p) {
                return Err(Stop::Fatal(proto_err::INVALID_CLIENT_PROTOCOL));
            }
        }
        if ci.no_responders && !ci.headers {
            return Err(Stop::Fatal(proto_err::NO_RESPONDERS_REQUIRES_HEADERS));
        }
        let authorized = match &self.server.opts.auth {
            None => true,
            Some(Auth::UserPass { user, pass }) => {
                ct_eq(ci.user.as_deref().unwrap_or(""), user)
                    && ct_eq(ci.pass.as_deref().unwrap_or(""), pass)
            }
            Some(Auth::Token(token)) => ct_eq(ci.auth_token.as_deref().unwrap_or(""), token),
        };
        if !authorized {
            return Err(Stop::Fatal(proto_err::AUTH_VIOLATION));
        }
        self.awaiting_auth = false;
        self.verbose = ci.verbose;
        self.pedantic = ci.pedantic;
        self.echo = ci.echo.unwrap_or(true);
        self.headers = ci.headers;
        self.no_responders = ci.no_responders;
        self.client.set_headers(ci.headers);
        self.name = ci.name.clone().unwrap_or_default();
        self.client.stats.set_meta(
            ci.name.as_deref(),
            ci.lang.as_deref(),
            ci.version.as_deref(),
        );
        debug!(cid = self.client.cid, name = ?ci.name, lang = ?ci.lang, version = ?ci.version,
            "client CONNECT");
        self.ok();
        Ok(())
    }

    fn subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: Bytes) {
        let subject = std::str::from_utf8(subject)
            .ok()
            .filter(|s| is_valid_sub_subject(s));
        let queue = match queue {
            None => Ok(None),
            Some(q) => std::str::from_utf8(q)
                .ok()
                .filter(|q| is_valid_queue(q))
                .map(Some)
                .ok_or(()),
        };
        let (Some(subject), Ok(queue)) = (subject, queue) else {
            warn!(cid = self.client.cid, "invalid subscription subject");
            self.client.send_err(proto_err::INVALID_SUBJECT);
            return;
        };
        // The sid is kept for the subscription's lifetime: a copy, so that it does not keep
        // the read buffer it was parsed from alive.
        let sid = Bytes::copy_from_slice(&sid);
        let server = &self.server;
        {
            let subs = lock(&self.client.subs);
            if subs.get(&sid).is_some_and(|s| !s.is_closed()) {
                drop(subs);
                self.ok();
                return;
            }
        }
        let sub = Arc::new(Subscription::new(
            server.next_id(),
            self.client.cid,
            subject,
            queue,
            Target::Tcp {
                client: self.client.clone(),
                sid: sid.clone(),
            },
        ));
        if server.sublist.insert(sub.clone()).is_ok() {
            let old = lock(&self.client.subs).insert(sid, sub);
            if let Some(old) = old {
                server.sublist.remove(&old);
            }
        }
        self.ok();
    }

    fn publish(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) -> Result<(), Stop> {
        let subject =
            std::str::from_utf8(subject).map_err(|_| Stop::Fatal(proto_err::UNKNOWN_OP))?;
        let reply = match reply {
            None => None,
            Some(r) => {
                Some(std::str::from_utf8(r).map_err(|_| Stop::Fatal(proto_err::UNKNOWN_OP))?)
            }
        };
        if self.pedantic && !is_valid_pub_subject(subject) {
            self.client.send_err(proto_err::INVALID_PUB_SUBJECT);
            return Ok(());
        }
        self.ok();
        self.client
            .stats
            .received(payload.len() + headers.map_or(0, |h| h.len()));
        let msg = Outgoing {
            subject,
            reply,
            headers,
            payload,
            publisher: self.client.cid,
        };
        let delivered = self.server.route(
            &msg,
            self.client.cid,
            self.echo,
            Producer::Tcp(Some(&mut self.stalled)),
        );
        if delivered == 0 && self.headers && self.no_responders {
            if let Some(reply) = reply {
                self.no_responders(subject, reply);
            }
        }
        Ok(())
    }

    /// Sends the 503 status message on this connection's subscriptions matching `reply`.
    fn no_responders(&self, subject: &str, reply: &str) {
        let result = self.server.sublist.matches(reply);
        let headers = Bytes::from(format!("NATS/1.0 503\r\nNats-Subject: {subject}\r\n\r\n"));
        let payload = Bytes::new();
        let msg = Outgoing {
            subject: reply,
            reply: None,
            headers: Some(&headers),
            payload: &payload,
            publisher: self.client.cid,
        };
        let own = result
            .psubs
            .iter()
            .chain(result.qsubs.iter().flat_map(|(_, g)| g.iter()))
            .filter(|s| s.conn_id == self.client.cid);
        for sub in own {
            if sub.deliver(&msg, &mut Producer::Tcp(None)) == Delivery::DeliveredLast {
                self.server.remove_sub(sub);
            }
        }
    }
}

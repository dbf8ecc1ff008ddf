//! Transport over an async-nats connection to an external NATS server.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::{Inbound, Route, Sink, Transport, TransportError, TransportSubscription};
use crate::config::ExternalNats;

/// How long a flush waits for the server. While NATS is unreachable the client holds flushes
/// (and, once its buffer is full, publishes) until it reconnects, which may be never: shutdown
/// must not wait for that.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Cmd {
    Subscribe {
        id: u64,
        subject: String,
        route: Route,
    },
    Unsubscribe(u64),
    Publish {
        subject: String,
        reply: Option<String>,
        payload: Bytes,
    },
    Flush(oneshot::Sender<()>),
    /// Resolve `done` once every subscription but `except` has handed to the sink what it had
    /// received so far.
    Barrier {
        except: u64,
        done: oneshot::Sender<()>,
    },
}

/// A subscription's reader task and the channel that asks it to drain.
struct Reader {
    task: tokio::task::JoinHandle<()>,
    drain: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

/// Transport using an async-nats client. Subscribes and publishes are queued in order to
/// one writer task, so a subscription always reaches the server before a later publish.
///
/// async-nats hands each subscription its own queue, so messages of different subscriptions
/// can reach the sink out of arrival order. Subscribe, unsubscribe, subscription-close and
/// close requests must be handled after the acks and publishes that arrived before them (a
/// subscription starting at the last received message must see a message its client published
/// just before); their reader first has every other subscription drain what it already
/// received (a barrier, as the official server does with its NATS client), then forwards the
/// request.
pub struct ExternalTransport {
    client: async_nats::Client,
    cmds: mpsc::UnboundedSender<Cmd>,
    next_id: std::sync::atomic::AtomicU64,
}

struct ExternalSub {
    id: u64,
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl TransportSubscription for ExternalSub {}

impl Drop for ExternalSub {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Unsubscribe(self.id));
    }
}

impl ExternalTransport {
    /// Connects to the server(s) in `cfg.url` and starts the writer task.
    pub async fn connect(
        cfg: &ExternalNats,
        name: &str,
        sink: Sink,
    ) -> Result<Self, TransportError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(name)
            .subscription_capacity(1 << 20)
            .request_timeout(None);
        let shown = redact_credentials(&cfg.url);
        let urls: Vec<String> = cfg
            .url
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let addrs: Vec<async_nats::ServerAddr> = urls
            .iter()
            .map(|u| u.parse::<async_nats::ServerAddr>())
            .collect::<Result<_, _>>()
            .map_err(|source| TransportError::InvalidUrl {
                url: shown.clone(),
                source,
            })?;
        if addrs.is_empty() {
            return Err(TransportError::NoUrl);
        }
        // async-nats ignores user info in URLs: credentials of the first URL that has some
        // (`nats://user:pass@host`, or `nats://token@host`) win over the settings.
        let from_url = addrs.iter().find_map(|a| {
            a.username()
                .map(|u| (percent_decode(u), a.password().map(percent_decode)))
        });
        match from_url {
            Some((user, Some(pass))) => opts = opts.user_and_password(user, pass),
            Some((token, None)) => opts = opts.token(token),
            None => {
                if let (Some(u), Some(p)) = (&cfg.user, &cfg.pass) {
                    opts = opts.user_and_password(u.clone(), p.clone());
                }
                if let Some(t) = &cfg.auth_token {
                    opts = opts.token(t.clone());
                }
            }
        }
        // Any client TLS setting makes the connection require TLS, as the official server's
        // does; without a CA file the system's roots are trusted.
        if let Some(tls) = &cfg.tls {
            opts = opts.require_tls(true);
            if let Some(ca) = &tls.ca_file {
                opts = opts.add_root_certificates(ca.clone());
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                opts = opts.add_client_certificate(cert.clone(), key.clone());
            }
        }
        let client = opts
            .connect(addrs.as_slice())
            .await
            .map_err(|source| TransportError::Connect { url: shown, source })?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(client.clone(), rx, tx.downgrade(), sink));
        Ok(ExternalTransport {
            client,
            cmds: tx,
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }
}

impl ExternalTransport {
    /// The connection to the NATS server (shared with stores that use the same server).
    pub(crate) fn client(&self) -> async_nats::Client {
        self.client.clone()
    }
}

/// `url` (a comma-separated list) with the user info of each URL replaced by `***`, for
/// errors and logs.
pub(crate) fn redact_credentials(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s + 3 => format!("{}***{}", &u[..s + 3], &u[at..]),
            (None, Some(at)) => format!("***{}", &u[at..]),
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes the `%XX` escapes of a URL's user info (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn forward(sink: &Sink, route: Route, m: async_nats::Message) {
    sink(Inbound {
        route,
        subject: m.subject.to_string(),
        reply: m.reply.map(|r| r.to_string()),
        payload: m.payload,
        origin: None,
    });
}

async fn reader(
    id: u64,
    route: Route,
    mut sub: async_nats::Subscriber,
    sink: Sink,
    mut drains: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    cmds: mpsc::WeakUnboundedSender<Cmd>,
) {
    let ordered = matches!(
        route,
        Route::Subscribe | Route::Unsubscribe | Route::SubClose | Route::Close
    );
    loop {
        tokio::select! {
            biased;
            m = sub.next() => {
                let Some(m) = m else { break };
                if ordered {
                    let (tx, mut rx) = oneshot::channel();
                    let sent = cmds
                        .upgrade()
                        .is_some_and(|c| c.send(Cmd::Barrier { except: id, done: tx }).is_ok());
                    if sent {
                        // Answer other barriers meanwhile (without draining, which would
                        // overtake the message held here).
                        loop {
                            tokio::select! {
                                _ = &mut rx => break,
                                d = drains.recv() => match d {
                                    Some(done) => { let _ = done.send(()); }
                                    None => break,
                                },
                            }
                        }
                    }
                }
                forward(&sink, route, m);
            }
            d = drains.recv() => {
                let Some(done) = d else { break };
                // Unconstrained: the coop budget must not make a non-empty queue look empty.
                while let Some(Some(m)) = tokio::task::unconstrained(sub.next()).now_or_never() {
                    forward(&sink, route, m);
                }
                let _ = done.send(());
            }
        }
    }
}

async fn writer(
    client: async_nats::Client,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    cmds: mpsc::WeakUnboundedSender<Cmd>,
    sink: Sink,
) {
    let mut readers: HashMap<u64, Reader> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Subscribe { id, subject, route } => {
                match client.subscribe(subject.clone()).await {
                    Ok(sub) => {
                        let (drain, drains) = mpsc::unbounded_channel();
                        let task = tokio::spawn(reader(
                            id,
                            route,
                            sub,
                            sink.clone(),
                            drains,
                            cmds.clone(),
                        ));
                        readers.insert(id, Reader { task, drain });
                    }
                    Err(e) => tracing::error!(%subject, "subscribe failed: {e}"),
                }
            }
            Cmd::Unsubscribe(id) => {
                if let Some(r) = readers.remove(&id) {
                    r.task.abort();
                }
            }
            Cmd::Barrier { except, done } => {
                let waits: Vec<oneshot::Receiver<()>> = readers
                    .iter()
                    .filter(|(id, _)| **id != except)
                    .filter_map(|(_, r)| {
                        let (tx, rx) = oneshot::channel();
                        r.drain.send(tx).ok().map(|_| rx)
                    })
                    .collect();
                tokio::spawn(async move {
                    for w in waits {
                        let _ = w.await;
                    }
                    let _ = done.send(());
                });
            }
            Cmd::Publish {
                subject,
                reply,
                payload,
            } => {
                let r = match reply {
                    Some(r) => client.publish_with_reply(subject.clone(), r, payload).await,
                    None => client.publish(subject.clone(), payload).await,
                };
                if let Err(e) = r {
                    tracing::debug!(%subject, "publish failed: {e}");
                }
            }
            Cmd::Flush(done) => {
                // A request nobody answers comes back as "no responders" once the server has
                // processed everything sent before it (subscriptions included): a flush that
                // only wrote the socket would not say that.
                let synced = async {
                    let _ = client.flush().await;
                    let _ = client.request(client.new_inbox(), Bytes::new()).await;
                };
                let _ = tokio::time::timeout(FLUSH_WAIT, synced).await;
                let _ = done.send(());
            }
        }
    }
    for (_, r) in readers {
        r.task.abort();
    }
}

fn valid_subject(s: &str) -> bool {
    !s.is_empty() && !s.split('.').any(|t| t.is_empty()) && !s.chars().any(char::is_whitespace)
}

impl Transport for ExternalTransport {
    fn subscribe(
        &self,
        subject: &str,
        route: Route,
    ) -> Result<Box<dyn TransportSubscription>, TransportError> {
        if !valid_subject(subject) {
            return Err(TransportError::InvalidSubject(subject.to_string()));
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cmds
            .send(Cmd::Subscribe {
                id,
                subject: subject.to_string(),
                route,
            })
            .map_err(|_| TransportError::Closed)?;
        Ok(Box::new(ExternalSub {
            id,
            cmds: self.cmds.clone(),
        }))
    }

    fn publish(&self, subject: &str, reply: Option<&str>, payload: Bytes) {
        if !valid_subject(subject) {
            tracing::debug!(%subject, "dropping publish to an invalid subject");
            return;
        }
        let _ = self.cmds.send(Cmd::Publish {
            subject: subject.to_string(),
            reply: reply.map(str::to_string),
            payload,
        });
    }

    fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, Option<Bytes>> {
        let client = self.client.clone();
        let subject = subject.to_string();
        async move {
            if !valid_subject(&subject) {
                return None;
            }
            match tokio::time::timeout(timeout, client.request(subject, payload)).await {
                Ok(Ok(m)) if m.status.is_none() => Some(m.payload),
                _ => None,
            }
        }
        .boxed()
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Cmd::Flush(tx));
        async move {
            // The writer may itself be stuck on a publish while NATS is unreachable.
            let _ = tokio::time::timeout(FLUSH_WAIT, rx).await;
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let flush = self.flush();
        let client = self.client.clone();
        async move {
            flush.await;
            let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, redact_credentials};

    #[test]
    fn url_credentials_are_redacted_and_decoded() {
        assert_eq!(
            redact_credentials("nats://u:p@h:1, nats://h2:2,tok@h3:3"),
            "nats://***@h:1, nats://h2:2,***@h3:3"
        );
        assert_eq!(redact_credentials("nats://h:4222"), "nats://h:4222");
        assert_eq!(percent_decode("p%40ss%3Aw%2"), "p@ss:w%2");
        assert_eq!(percent_decode("plain"), "plain");
    }
}

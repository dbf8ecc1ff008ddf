//! Transport over an async-nats connection to an external NATS server.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::{Inbound, Route, Sink, Transport, TransportError, TransportSubscription};
use crate::config::ExternalNats;

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
}

/// Transport using an async-nats client. Subscribes and publishes are queued in order to
/// one writer task, so a subscription always reaches the server before a later publish.
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
        if let (Some(u), Some(p)) = (&cfg.user, &cfg.pass) {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &cfg.auth_token {
            opts = opts.token(t.clone());
        }
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
            .map_err(|e| TransportError::Connect(format!("invalid NATS URL {:?}: {e}", cfg.url)))?;
        if addrs.is_empty() {
            return Err(TransportError::Connect("no NATS URL given".into()));
        }
        let client = opts.connect(addrs.as_slice()).await.map_err(|e| {
            TransportError::Connect(format!("unable to connect to NATS {}: {e}", cfg.url))
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(client.clone(), rx, sink));
        Ok(ExternalTransport {
            client,
            cmds: tx,
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }
}

async fn writer(client: async_nats::Client, mut rx: mpsc::UnboundedReceiver<Cmd>, sink: Sink) {
    let mut readers: HashMap<u64, tokio::task::JoinHandle<()>> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Subscribe { id, subject, route } => {
                match client.subscribe(subject.clone()).await {
                    Ok(mut sub) => {
                        let sink = sink.clone();
                        readers.insert(
                            id,
                            tokio::spawn(async move {
                                while let Some(m) = sub.next().await {
                                    sink(Inbound {
                                        route,
                                        subject: m.subject.to_string(),
                                        reply: m.reply.map(|r| r.to_string()),
                                        payload: m.payload,
                                    });
                                }
                            }),
                        );
                    }
                    Err(e) => tracing::error!(%subject, "subscribe failed: {e}"),
                }
            }
            Cmd::Unsubscribe(id) => {
                if let Some(h) = readers.remove(&id) {
                    h.abort();
                }
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
                let _ = client.flush().await;
                let _ = done.send(());
            }
        }
    }
    for (_, h) in readers {
        h.abort();
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
            let _ = rx.await;
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

//! `NativeClient`: wraps [`stan_client::Client`] (a cheap clone is moved into every future).
//!
//! Publishes keep the order of the JavaScript calls: `publish()` puts the request in a queue
//! synchronously, and one task per client runs the first stage (`publish_async`: flow-control
//! permit, session wait, write) in that order; each promise then awaits its own ack, so many
//! acks are in flight at once.

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use stan_client::{ConnectOptions, PublishAckFuture, SubscribeOptions};
use tokio::sync::{mpsc, oneshot};

use crate::event::NativeEvents;
use crate::options::{NativeConnectOptions, NativeSubscribeOptions};
use crate::runtime::spawn;
use crate::subscription::NativeSubscription;

/// A connection to a NATS Streaming server.
#[napi]
pub struct NativeClient {
    inner: stan_client::Client,
    publishes: mpsc::UnboundedSender<PubRequest>,
}

/// One publish waiting for its turn in the client's queue.
struct PubRequest {
    subject: String,
    payload: Bytes,
    reply: oneshot::Sender<stan_client::Result<PublishAckFuture>>,
}

/// The queue task: stage 1 of each publish in call order. Ends when the `NativeClient` is gone.
async fn run_publish_queue(
    client: stan_client::Client,
    mut rx: mpsc::UnboundedReceiver<PubRequest>,
) {
    while let Some(req) = rx.recv().await {
        let started = client.publish_async(&req.subject, req.payload).await;
        let _ = req.reply.send(started);
    }
}

/// The error of a publish whose queue task is gone (the runtime is shutting down).
fn closed() -> stan_client::Error {
    stan_client::Error::new(
        stan_client::ErrorKind::ConnectionClosed,
        stan_protocol::errors::CONNECTION_CLOSED,
    )
}

impl NativeClient {
    fn new(inner: stan_client::Client) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        napi::bindgen_prelude::spawn(run_publish_queue(inner.clone(), rx));
        NativeClient {
            inner,
            publishes: tx,
        }
    }
}

/// Connect; resolves to a `NativeClient`.
#[napi]
pub fn connect<'env>(
    env: &'env Env,
    options: NativeConnectOptions,
) -> napi::Result<PromiseRaw<'env, NativeClient>> {
    spawn(
        env,
        async move {
            let options = ConnectOptions::try_from(options)?;
            stan_client::connect(options).await
        },
        |_, inner| Ok(NativeClient::new(inner)),
    )
}

#[napi]
impl NativeClient {
    /// The client ID.
    #[napi(getter)]
    pub fn client_id(&self) -> String {
        self.inner.client_id().to_string()
    }

    /// The cluster ID.
    #[napi(getter)]
    pub fn cluster_id(&self) -> String {
        self.inner.cluster_id().to_string()
    }

    /// True once the client is closed for good.
    #[napi(getter)]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Publish `data` (copied) on `subject`; resolves to the guid once the server acked it.
    #[napi]
    pub fn publish<'env>(
        &self,
        env: &'env Env,
        subject: String,
        data: Buffer,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let payload = Bytes::copy_from_slice(&data);
        let (reply, started) = oneshot::channel();
        // Enqueued now, on the JavaScript thread: this fixes the order on the wire.
        let queued = self
            .publishes
            .send(PubRequest {
                subject,
                payload,
                reply,
            })
            .is_ok();
        spawn(
            env,
            async move {
                if !queued {
                    // The queue task is gone (the runtime is shutting down).
                    return Err(closed());
                }
                match started.await {
                    Ok(ack) => ack?.await,
                    Err(_) => Err(closed()),
                }
            },
            |_, guid| Ok(guid),
        )
    }

    /// Subscribe; resolves to a `NativeSubscription`.
    #[napi]
    pub fn subscribe<'env>(
        &self,
        env: &'env Env,
        subject: String,
        options: NativeSubscribeOptions,
    ) -> napi::Result<PromiseRaw<'env, NativeSubscription>> {
        let client = self.inner.clone();
        spawn(
            env,
            async move {
                let options = SubscribeOptions::try_from(options)?;
                client.subscribe(&subject, options).await
            },
            |_, sub| Ok(NativeSubscription::new(sub)),
        )
    }

    /// Connection events from now on (an already ended stream once the client is closed: a
    /// receiver created after the `closed` event would otherwise wait forever).
    #[napi]
    pub fn events(&self) -> NativeEvents {
        let events = NativeEvents::new(self.inner.events());
        if self.inner.is_closed() {
            events.close();
        }
        events
    }

    /// Close the connection (a no-op when already closed).
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let client = self.inner.clone();
        spawn(env, async move { client.close().await }, |_, ()| Ok(()))
    }
}

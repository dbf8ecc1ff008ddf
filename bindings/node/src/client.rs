//! `NativeClient`: wraps [`stan_client::Client`] (a cheap clone is moved into every future).
//!
//! Publishes keep the order of the JavaScript calls: the TypeScript layer gathers the
//! publishes of one tick and `publishBatch` starts them with the core's synchronous
//! `start_publish_batch` on the JavaScript thread, which takes their places in the client's
//! publish queue; their acks come back in bursts (see `publish.rs`).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use stan_client::{ConnectOptions, SubscribeOptions};

use crate::error::{invalid_argument, to_node_error, Code};
use crate::event::NativeEvents;
use crate::options::{NativeConnectOptions, NativeSubscribeOptions};
use crate::publish::{self, AckHandler, NativeAckBurst, NativePublishStarted};
use crate::runtime::{guard, spawn};
use crate::subscription::NativeSubscription;

/// A connection to a NATS Streaming server.
#[napi]
pub struct NativeClient {
    inner: stan_client::Client,
    /// Where ack bursts go (`setAckHandler`).
    acks: Option<AckHandler>,
}

impl NativeClient {
    fn new(inner: stan_client::Client) -> Self {
        NativeClient { inner, acks: None }
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

    /// Set the function that receives every burst of publish outcomes (see `publishBatch`),
    /// called on the JavaScript thread. It keeps Node's event loop alive exactly while
    /// publishes await their outcome.
    #[napi]
    pub fn set_ack_handler(
        &mut self,
        handler: Function<'_, NativeAckBurst, ()>,
    ) -> napi::Result<()> {
        self.acks = Some(AckHandler::new(handler)?);
        Ok(())
    }

    /// Start many publishes in one call, in order: `runs[k]` consecutive publishes on
    /// `subjects[k]`, with `payloads` (copied once, into one buffer the messages share).
    /// Publishes on an invalid channel name are not started (their indices are returned);
    /// the outcomes of the others reach the ack handler in bursts tagged with `token`. Throws
    /// for a closed client or without an ack handler (nothing is started then).
    #[napi]
    pub fn publish_batch(
        &self,
        env: Env,
        subjects: Vec<String>,
        runs: Vec<u32>,
        payloads: Vec<BufferSlice<'_>>,
        token: u32,
    ) -> napi::Result<NativePublishStarted, Code> {
        guard(|| {
            let acks = self.acks.as_ref().ok_or_else(|| {
                to_node_error(invalid_argument("publishBatch before setAckHandler"))
            })?;
            let slices: Vec<&[u8]> = payloads.iter().map(|p| &**p).collect();
            let plan = publish::plan(&subjects, &runs, &slices)
                .map_err(|m| to_node_error(invalid_argument(m)))?;
            publish::start(&env, &self.inner, &subjects, plan, token, acks).map_err(to_node_error)
        })
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

    /// Connection events from now on (an already ended stream once the client is closed).
    #[napi]
    pub fn events(&self) -> NativeEvents {
        NativeEvents::new(self.inner.events())
    }

    /// Close the connection (a no-op when already closed).
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let client = self.inner.clone();
        spawn(env, async move { client.close().await }, |_, ()| Ok(()))
    }
}

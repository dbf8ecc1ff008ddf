//! `NativeClient`: wraps [`stan_client::Client`] (a cheap clone is moved into every future).
//!
//! Publishes keep the order of the JavaScript calls: `publish()` calls the core's synchronous
//! `start_publish` on the JavaScript thread, which takes the publish's place in the client's
//! publish queue; each promise then awaits its own ack, so many acks are in flight at once.

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use stan_client::{ConnectOptions, SubscribeOptions};

use crate::event::NativeEvents;
use crate::options::{NativeConnectOptions, NativeSubscribeOptions};
use crate::runtime::spawn;
use crate::subscription::NativeSubscription;

/// A connection to a NATS Streaming server.
#[napi]
pub struct NativeClient {
    inner: stan_client::Client,
}

impl NativeClient {
    fn new(inner: stan_client::Client) -> Self {
        NativeClient { inner }
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
        // Started now, on the JavaScript thread: this fixes the order on the wire.
        let started = self.inner.start_publish(&subject, payload);
        spawn(env, async move { started?.await }, |_, guid| Ok(guid))
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

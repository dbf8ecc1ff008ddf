//! `NativeMessage`: a delivered message (wraps [`stan_client::Message`]).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{to_node_error, Code};
use crate::runtime::{guard, spawn};

/// A message delivered to a subscription.
#[napi]
pub struct NativeMessage {
    inner: stan_client::Message,
}

impl NativeMessage {
    pub(crate) fn new(inner: stan_client::Message) -> Self {
        NativeMessage { inner }
    }
}

#[napi]
impl NativeMessage {
    /// The channel's sequence number (starts at 1).
    #[napi(getter)]
    pub fn sequence(&self) -> BigInt {
        BigInt::from(self.inner.sequence())
    }

    /// The channel the message was published on.
    #[napi(getter)]
    pub fn subject(&self) -> String {
        self.inner.subject().to_string()
    }

    /// The payload (a new `Buffer` holding a copy).
    #[napi(getter)]
    pub fn data(&self) -> Buffer {
        Buffer::from(self.inner.data().to_vec())
    }

    /// When the server stored the message, in nanoseconds since the Unix epoch.
    #[napi(getter)]
    pub fn timestamp_nanos(&self) -> BigInt {
        BigInt::from(self.inner.timestamp_nanos())
    }

    /// True when this is not the first delivery to this subscription.
    #[napi(getter)]
    pub fn redelivered(&self) -> bool {
        self.inner.redelivered()
    }

    /// How many times the server redelivered the message.
    #[napi(getter)]
    pub fn redelivery_count(&self) -> u32 {
        self.inner.redelivery_count()
    }

    /// Acknowledge without a promise (the core queues acks synchronously): always `true`
    /// (done; `false` would mean "use `ack()`"). Throws like `ack()` rejects.
    #[napi]
    pub fn ack_now(&self) -> napi::Result<bool, Code> {
        guard(|| self.inner.ack_now().map(|()| true).map_err(to_node_error))
    }

    /// Acknowledge (manual-ack subscriptions).
    #[napi]
    pub fn ack<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let msg = self.inner.clone();
        spawn(env, async move { msg.ack().await }, |_, ()| Ok(()))
    }
}

//! `NativeSubscription`: pulls messages from a [`stan_client::Subscription`].
//!
//! The core stream sits behind an async mutex so that `next()` can own it while waiting. A
//! close/unsubscribe goes through the core's subscription handle, which also ends a pending
//! `next()` (it resolves `null`): closing never waits behind a message that may never come, and
//! no promise is left pending (a pending promise would keep Node's event loop alive).

use std::sync::Arc;

use futures::StreamExt;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::error::{to_node_error, Code};
use crate::message::NativeMessage;
use crate::runtime::{guard, spawn};

struct SubInner {
    stream: Mutex<stan_client::Subscription>,
    handle: stan_client::SubscriptionHandle,
}

impl SubInner {
    async fn next(&self) -> stan_client::Result<Option<stan_client::Message>> {
        let mut stream = self.stream.lock().await;
        stream.next().await.transpose()
    }

    /// A message that is already received, taken without waiting (on the JavaScript thread):
    /// `Ok(None)` when none is ready, the stream is busy, or it ended (then the async `next`
    /// reports the end). Taking a message here is the same as the async `next`: in auto-ack
    /// mode it acks the previous one, exactly when the consumer asks for the next message.
    fn try_next(&self) -> stan_client::Result<Option<stan_client::Message>> {
        let Ok(mut stream) = self.stream.try_lock() else {
            return Ok(None);
        };
        stream.try_next().transpose()
    }

    async fn close(&self, unsubscribe: bool) -> stan_client::Result<()> {
        if unsubscribe {
            self.handle.unsubscribe().await
        } else {
            self.handle.close().await
        }
    }
}

/// A subscription: `next()` resolves to the next message or `null` at the end.
#[napi]
pub struct NativeSubscription {
    subject: String,
    manual_acks: bool,
    inner: Arc<SubInner>,
}

impl NativeSubscription {
    pub(crate) fn new(sub: stan_client::Subscription) -> Self {
        NativeSubscription {
            subject: sub.subject().to_string(),
            manual_acks: sub.manual_acks(),
            inner: Arc::new(SubInner {
                handle: sub.handle(),
                stream: Mutex::new(sub),
            }),
        }
    }
}

#[napi]
impl NativeSubscription {
    /// The channel this subscription reads.
    #[napi(getter)]
    pub fn subject(&self) -> String {
        self.subject.clone()
    }

    /// True when messages must be acknowledged with `ack()`.
    #[napi(getter)]
    pub fn manual_acks(&self) -> bool {
        self.manual_acks
    }

    /// True once the subscription is closed: `close()` or `unsubscribe()` was called, the
    /// client closed, or the subscription ended.
    #[napi(getter)]
    pub fn closing(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// The next message; `null` when the subscription ended or is being closed. Rejects once
    /// with the reason when the subscription cannot go on (then resolves `null`).
    #[napi]
    pub fn next<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<NativeMessage>>> {
        let inner = self.inner.clone();
        spawn(env, async move { inner.next().await }, |_, msg| {
            Ok(msg.map(NativeMessage::new))
        })
    }

    /// A message already received, without waiting (no promise): `null` when none is ready
    /// (or the subscription ended; `next()` then reports the end). Throws like `next()`
    /// rejects.
    #[napi]
    pub fn try_next(&self) -> napi::Result<Option<NativeMessage>, Code> {
        guard(|| {
            self.inner
                .try_next()
                .map(|m| m.map(NativeMessage::new))
                .map_err(to_node_error)
        })
    }

    /// Close the subscription (the server keeps a durable).
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        spawn(env, async move { inner.close(false).await }, |_, ()| Ok(()))
    }

    /// Remove the subscription on the server (a durable is deleted).
    #[napi]
    pub fn unsubscribe<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        spawn(env, async move { inner.close(true).await }, |_, ()| Ok(()))
    }
}

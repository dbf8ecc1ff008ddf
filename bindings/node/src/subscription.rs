//! `NativeSubscription`: pulls batches of messages from a [`stan_client::Subscription`].
//!
//! One call (and for `nextBatch` one promise) per batch: everything the core has buffered, up
//! to a maximum, crosses to JavaScript at once (see `batch.rs`). The core stream sits behind
//! an async mutex so that `nextBatch()` can own it while waiting. A
//! close/unsubscribe goes through the core's subscription handle, which also ends a pending
//! `next()` (it resolves `null`): closing never waits behind a message that may never come, and
//! no promise is left pending (a pending promise would keep Node's event loop alive).

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::batch::NativeReceived;
use crate::error::{to_node_error, Code};
use crate::runtime::{guard, spawn};

struct SubInner {
    stream: Mutex<stan_client::Subscription>,
    handle: stan_client::SubscriptionHandle,
}

impl SubInner {
    async fn next_batch(&self, max: usize) -> stan_client::Result<Option<stan_client::Batch>> {
        let mut stream = self.stream.lock().await;
        stream.next_batch(max).await.transpose()
    }

    /// The messages already received, taken without waiting (on the JavaScript thread):
    /// `Ok(None)` when none is ready, the stream is busy, or it ended (then the async
    /// `next_batch` reports the end). Asking here is the same as the async `next_batch`: in
    /// auto-ack mode it acks the message taken last, exactly when the consumer asks for more.
    fn try_next_batch(&self, max: usize) -> stan_client::Result<Option<stan_client::Batch>> {
        let Ok(mut stream) = self.stream.try_lock() else {
            return Ok(None);
        };
        stream.try_next_batch(max).transpose()
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

    /// The next batch (waits for at least one message, then takes up to `max` without waiting
    /// again); `null` when the subscription ended or is being closed. Rejects once with the
    /// reason when the subscription cannot go on (then resolves `null`).
    #[napi]
    pub fn next_batch<'env>(
        &self,
        env: &'env Env,
        max: u32,
    ) -> napi::Result<PromiseRaw<'env, Option<NativeReceived>>> {
        let inner = self.inner.clone();
        spawn(
            env,
            async move { inner.next_batch(max as usize).await },
            |_, batch| Ok(batch.map(NativeReceived::new)),
        )
    }

    /// The messages already received, up to `max`, without waiting (no promise): `null` when
    /// none is ready (or the subscription ended; `nextBatch()` then reports the end). Throws
    /// like `nextBatch()` rejects.
    #[napi]
    pub fn try_next_batch(&self, max: u32) -> napi::Result<Option<NativeReceived>, Code> {
        guard(|| {
            self.inner
                .try_next_batch(max as usize)
                .map(|b| b.map(NativeReceived::new))
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

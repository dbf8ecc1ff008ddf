//! `Subscription` and `Batch`: pull messages from a [`stan_client::Subscription`] in batches.
//!
//! The Python package crosses into Rust once per batch: `next_batch` hands over everything the
//! core has buffered (up to a maximum) as one [`PyBatch`], whose messages become Python objects
//! in one go on the event-loop thread. The package hands them out from its own buffer and
//! reports how many the application took with [`PyBatch::mark_taken`] (lazily: when the batch
//! is used up, and when the subscription is closed). A batch dropped with messages the
//! application never took leaves them unacknowledged (the server redelivers them): that is what
//! happens when a receive is cancelled while its batch is on its way to Python.
//!
//! The core stream sits behind an async mutex so that a waiting `next_batch` can own it. A
//! close/unsubscribe goes through the core's subscription handle, which also ends a pending
//! `next_batch` (the iteration stops): closing never waits behind a message that may never come.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use futures::FutureExt;
use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::{oneshot, Mutex};

use crate::error::{invalid_state, to_py_err, IntoPyResult};
use crate::message::PyMessage;
use crate::resolver::{self, CancelOnDone, Outcome, Resolver};
use crate::runtime::{self, lock, ProcessGuard};

/// The largest batch one `next_batch` call returns when the caller gives no maximum.
const DEFAULT_MAX_BATCH: usize = 256;

struct SubInner {
    stream: Mutex<stan_client::Subscription>,
    handle: stan_client::SubscriptionHandle,
}

impl SubInner {
    /// The next batch; `None` when the subscription ended or is being closed.
    async fn next_batch_core(&self, max: usize) -> Option<stan_client::Result<stan_client::Batch>> {
        self.stream.lock().await.next_batch(max).await
    }

    /// [`next_batch_core`](Self::next_batch_core) for Python.
    async fn next_batch(&self, max: usize) -> PyResult<Option<PyBatch>> {
        match self.next_batch_core(max).await {
            None => Ok(None),
            Some(Ok(batch)) => Ok(Some(PyBatch::new(batch))),
            Some(Err(e)) => Err(to_py_err(e)),
        }
    }

    /// Wait for the next batch on the runtime and resolve the asyncio `future` with it
    /// through `resolver`; stop (taking nothing) when `cancelled` fires first.
    async fn resolve_next_batch(
        self: Arc<Self>,
        max: usize,
        future: Py<PyAny>,
        resolver: Arc<Resolver>,
        cancelled: oneshot::Receiver<()>,
    ) {
        let outcome = tokio::select! {
            biased;
            _ = cancelled => return,
            got = AssertUnwindSafe(self.next_batch_core(max)).catch_unwind() => match got {
                Ok(None) => Outcome::Batch(None),
                Ok(Some(Ok(batch))) => Outcome::Batch(Some(PyBatch::new(batch))),
                Ok(Some(Err(e))) => Outcome::Failed(e),
                Err(_) => Outcome::Panicked("next_batch panicked".to_string()),
            },
        };
        resolver.complete(future, outcome);
    }

    /// A batch of messages already received (`None`: none is, the stream is busy, or it
    /// ended; the async `next_batch` then reports the end).
    fn next_batch_now(&self, max: usize) -> Option<PyResult<Option<PyBatch>>> {
        let mut stream = self.stream.try_lock().ok()?;
        match stream.try_next_batch(max)? {
            Ok(batch) => Some(Ok(Some(PyBatch::new(batch)))),
            Err(e) => Some(Err(to_py_err(e))),
        }
    }

    async fn close(&self, unsubscribe: bool) -> PyResult<()> {
        if unsubscribe {
            self.handle.unsubscribe().await.into_py()
        } else {
            self.handle.close().await.into_py()
        }
    }
}

/// The messages of one `next_batch` call. `messages()` converts them to Python at once;
/// `mark_taken(n)` records that the application has taken the first `n` (auto-ack mode: all
/// but the newest are acked now, the newest when more is taken or at close). Messages never
/// marked as taken are not acked when the batch is dropped.
#[pyclass(frozen, module = "stan_client._native", name = "Batch")]
pub(crate) struct PyBatch {
    guard: ProcessGuard,
    batch: StdMutex<Option<stan_client::Batch>>,
}

impl PyBatch {
    fn new(batch: stan_client::Batch) -> Self {
        PyBatch {
            guard: ProcessGuard::new(),
            batch: StdMutex::new(Some(batch)),
        }
    }
}

impl Drop for PyBatch {
    fn drop(&mut self) {
        let batch = lock(&self.batch).take();
        runtime::release(&self.guard, batch);
    }
}

#[pymethods]
impl PyBatch {
    /// Every message of the batch as a list of `Message` (taking none of them).
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.guard.check()?;
        let slot = lock(&self.batch);
        let batch = slot
            .as_ref()
            .ok_or_else(|| invalid_state("batch released"))?;
        let items = batch
            .messages()
            .iter()
            .map(|m| Bound::new(py, PyMessage::new(m.clone())))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Record that the application has taken the first `n` messages (see the class doc).
    fn mark_taken(&self, n: usize) -> PyResult<()> {
        self.guard.check()?;
        if let Some(batch) = lock(&self.batch).as_mut() {
            batch.mark_taken(n);
        }
        Ok(())
    }

    /// How many messages the application has taken (as reported with `mark_taken`).
    #[getter]
    fn taken(&self) -> usize {
        lock(&self.batch).as_ref().map_or(0, |b| b.taken())
    }

    fn __len__(&self) -> usize {
        lock(&self.batch).as_ref().map_or(0, |b| b.len())
    }

    fn __repr__(&self) -> String {
        let slot = lock(&self.batch);
        let (len, taken) = slot.as_ref().map_or((0, 0), |b| (b.len(), b.taken()));
        format!("Batch(len={len}, taken={taken})")
    }
}

/// A subscription: hands out its messages in batches.
#[pyclass(frozen, module = "stan_client._native", name = "Subscription")]
pub(crate) struct PySubscription {
    guard: ProcessGuard,
    subject: String,
    manual_acks: bool,
    inner: Option<Arc<SubInner>>,
}

impl PySubscription {
    pub(crate) fn new(sub: stan_client::Subscription) -> Self {
        PySubscription {
            guard: ProcessGuard::new(),
            subject: sub.subject().to_string(),
            manual_acks: sub.manual_acks(),
            inner: Some(Arc::new(SubInner {
                handle: sub.handle(),
                stream: Mutex::new(sub),
            })),
        }
    }

    fn inner(&self) -> PyResult<Arc<SubInner>> {
        self.guard.check()?;
        self.inner
            .clone()
            .ok_or_else(|| invalid_state("subscription handle released"))
    }
}

impl Drop for PySubscription {
    fn drop(&mut self) {
        runtime::release(&self.guard, self.inner.take());
    }
}

/// `max` as a batch size: at least 1.
fn batch_size(max: Option<usize>) -> usize {
    max.unwrap_or(DEFAULT_MAX_BATCH).max(1)
}

#[pymethods]
impl PySubscription {
    /// The channel this subscription reads.
    #[getter]
    fn subject(&self) -> &str {
        &self.subject
    }

    /// True when messages must be acknowledged with `Message.ack()`.
    #[getter]
    fn manual_acks(&self) -> bool {
        self.manual_acks
    }

    /// True once the subscription is closed: `close()` or `unsubscribe()` was called, the
    /// client closed, or the subscription ended.
    #[getter]
    fn closing(&self) -> PyResult<bool> {
        Ok(self.inner()?.handle.is_closed())
    }

    /// An awaitable of the next `Batch` (at least one message, at most `max`), or `None` once
    /// the subscription has ended. Messages already received come back in an already complete
    /// awaitable; otherwise an asyncio future of the running loop, resolved through the
    /// loop's resolver; cancelling it stops the wait and takes nothing (a batch
    /// already on its way is dropped unacknowledged).
    #[pyo3(signature = (max=None))]
    fn next_batch<'py>(&self, py: Python<'py>, max: Option<usize>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner()?;
        let max = batch_size(max);
        if let Some(now) = inner.next_batch_now(max) {
            return runtime::ready(py, now);
        }
        let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
        let resolver = resolver::for_loop(&event_loop)?;
        let future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
        // The future is done before the runtime resolved it only when it was cancelled: then
        // the wait stops, and what it would have taken stays in the subscription.
        let cancel_rx = CancelOnDone::watch(&future)?;
        runtime::runtime().spawn(inner.resolve_next_batch(
            max,
            future.clone().unbind(),
            resolver,
            cancel_rx,
        ));
        Ok(future)
    }

    /// The next batch, blocking (GIL released); `None` when the subscription ended. Raises
    /// the built-in `TimeoutError` when `timeout` passes first.
    #[pyo3(signature = (max=None, timeout=None))]
    fn next_batch_blocking(
        &self,
        py: Python<'_>,
        max: Option<usize>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<PyBatch>> {
        let inner = self.inner()?;
        let max = batch_size(max);
        if let Some(now) = inner.next_batch_now(max) {
            return now;
        }
        runtime::block_on(py, async move {
            match timeout {
                None => inner.next_batch(max).await,
                Some(t) => match tokio::time::timeout(t, inner.next_batch(max)).await {
                    Ok(r) => r,
                    Err(_) => Err(PyTimeoutError::new_err(format!(
                        "no message within {:.3}s",
                        t.as_secs_f64()
                    ))),
                },
            }
        })
    }

    /// Close the subscription (the server keeps a durable); returns an awaitable.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner()?;
        runtime::unit_future_into_py(py, async move { inner.close(false).await })
    }

    /// Remove the subscription on the server (a durable is deleted); returns an awaitable.
    fn unsubscribe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner()?;
        runtime::unit_future_into_py(py, async move { inner.close(true).await })
    }

    /// `close()`, blocking (GIL released).
    fn close_blocking(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner()?;
        runtime::block_on(py, async move { inner.close(false).await })
    }

    /// `unsubscribe()`, blocking (GIL released).
    fn unsubscribe_blocking(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner()?;
        runtime::block_on(py, async move { inner.close(true).await })
    }

    fn __repr__(&self) -> String {
        format!(
            "Subscription(subject={:?}, manual_acks={})",
            self.subject,
            if self.manual_acks { "True" } else { "False" }
        )
    }
}

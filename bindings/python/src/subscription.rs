//! `Subscription`: pulls messages from a [`stan_client::Subscription`].
//!
//! The core stream sits behind an async mutex so that `__anext__` can own it while waiting. A
//! close/unsubscribe first cancels any pending `__anext__` (which then ends the iteration), then
//! takes the stream and closes it: closing never waits behind a message that may never come.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use pyo3::exceptions::{PyStopAsyncIteration, PyTimeoutError};
use pyo3::prelude::*;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::{invalid_state, to_py_err, IntoPyResult};
use crate::message::PyMessage;
use crate::runtime::{self, ProcessGuard};

struct SubInner {
    stream: Mutex<stan_client::Subscription>,
    closing: CancellationToken,
}

impl SubInner {
    /// The next message; `None` when the subscription ended or is being closed.
    async fn next(&self) -> PyResult<Option<PyMessage>> {
        if self.closing.is_cancelled() {
            return Ok(None);
        }
        let mut stream = tokio::select! {
            biased;
            _ = self.closing.cancelled() => return Ok(None),
            guard = self.stream.lock() => guard,
        };
        tokio::select! {
            biased;
            _ = self.closing.cancelled() => Ok(None),
            item = stream.next() => match item {
                None => Ok(None),
                Some(Ok(msg)) => Ok(Some(PyMessage::new(msg))),
                Some(Err(e)) => Err(to_py_err(e)),
            },
        }
    }

    /// The next item if it is available right now (`None`: it is not, or the stream is busy).
    fn next_now(&self) -> Option<PyResult<Option<PyMessage>>> {
        if self.closing.is_cancelled() {
            return Some(Ok(None));
        }
        let mut stream = self.stream.try_lock().ok()?;
        match stream.next().now_or_never()? {
            None => Some(Ok(None)),
            Some(Ok(msg)) => Some(Ok(Some(PyMessage::new(msg)))),
            Some(Err(e)) => Some(Err(to_py_err(e))),
        }
    }

    async fn close(&self, unsubscribe: bool) -> PyResult<()> {
        self.closing.cancel();
        let stream = self.stream.lock().await;
        if unsubscribe {
            stream.unsubscribe().await.into_py()
        } else {
            stream.close().await.into_py()
        }
    }
}

/// A subscription: an async iterator of `Message`s.
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
                stream: Mutex::new(sub),
                closing: CancellationToken::new(),
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

    /// True once `close()` or `unsubscribe()` was called on this handle.
    #[getter]
    fn closing(&self) -> PyResult<bool> {
        Ok(self.inner()?.closing.is_cancelled())
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner()?;
        if let Some(now) = inner.next_now() {
            let item = now.and_then(|m| m.ok_or_else(|| PyStopAsyncIteration::new_err(())));
            return runtime::ready(py, item);
        }
        runtime::future_into_py(py, async move {
            match inner.next().await? {
                Some(msg) => Ok(msg),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    /// The next message, blocking (GIL released); `None` when the subscription ended. Raises
    /// the built-in `TimeoutError` when `timeout` passes first.
    #[pyo3(signature = (timeout=None))]
    fn next_blocking(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<PyMessage>> {
        let inner = self.inner()?;
        runtime::block_on(py, async move {
            match timeout {
                None => inner.next().await,
                Some(t) => match tokio::time::timeout(t, inner.next()).await {
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

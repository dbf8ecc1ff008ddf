//! `Subscription`: pulls messages from a [`stan_client::Subscription`].
//!
//! The core stream sits behind an async mutex so that `__anext__` can own it while waiting. A
//! close/unsubscribe goes through the core's subscription handle, which also ends a pending
//! `__anext__` (the iteration stops): closing never waits behind a message that may never come.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pyo3::exceptions::{PyStopAsyncIteration, PyTimeoutError};
use pyo3::prelude::*;
use tokio::sync::Mutex;

use crate::error::{invalid_state, to_py_err, IntoPyResult};
use crate::message::PyMessage;
use crate::runtime::{self, ProcessGuard};

struct SubInner {
    stream: Mutex<stan_client::Subscription>,
    handle: stan_client::SubscriptionHandle,
}

impl SubInner {
    /// The next message; `None` when the subscription ended or is being closed.
    async fn next(&self) -> PyResult<Option<PyMessage>> {
        let mut stream = self.stream.lock().await;
        match stream.next().await {
            None => Ok(None),
            Some(Ok(msg)) => Ok(Some(PyMessage::new(msg))),
            Some(Err(e)) => Err(to_py_err(e)),
        }
    }

    /// A message already received (`None`: none is, the stream is busy, or it ended; the
    /// async `next` then reports the end).
    fn next_now(&self) -> Option<PyResult<Option<PyMessage>>> {
        let mut stream = self.stream.try_lock().ok()?;
        match stream.try_next()? {
            Ok(msg) => Some(Ok(Some(PyMessage::new(msg)))),
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

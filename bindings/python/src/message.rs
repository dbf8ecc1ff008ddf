//! `Message`: a delivered message (wraps [`stan_client::Message`]).

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDelta, PyTzInfo};

use crate::error::{invalid_state, IntoPyResult};
use crate::runtime::{self, ProcessGuard};

/// A message delivered to a subscription.
#[pyclass(frozen, module = "stan_client._native", name = "Message")]
pub(crate) struct PyMessage {
    guard: ProcessGuard,
    inner: Option<stan_client::Message>,
}

impl PyMessage {
    pub(crate) fn new(msg: stan_client::Message) -> Self {
        PyMessage {
            guard: ProcessGuard::new(),
            inner: Some(msg),
        }
    }

    fn msg(&self) -> PyResult<&stan_client::Message> {
        self.guard.check()?;
        self.inner
            .as_ref()
            .ok_or_else(|| invalid_state("message handle released"))
    }
}

impl Drop for PyMessage {
    fn drop(&mut self) {
        runtime::release(&self.guard, self.inner.take());
    }
}

/// `datetime` (UTC) for nanoseconds since the Unix epoch, at microsecond precision.
fn datetime_from_nanos(py: Python<'_>, nanos: i64) -> PyResult<Bound<'_, PyAny>> {
    let micros = nanos.div_euclid(1_000);
    let secs = micros.div_euclid(1_000_000);
    let sub_micros = micros.rem_euclid(1_000_000) as i32;
    let days = i32::try_from(secs.div_euclid(86_400))
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("timestamp out of range"))?;
    let day_secs = secs.rem_euclid(86_400) as i32;
    let utc = PyTzInfo::utc(py)?;
    let epoch = PyDateTime::new(py, 1970, 1, 1, 0, 0, 0, 0, Some(&utc))?;
    let delta = PyDelta::new(py, days, day_secs, sub_micros, true)?;
    epoch.add(delta)
}

#[pymethods]
impl PyMessage {
    /// The channel's sequence number of this message (starts at 1).
    #[getter]
    fn sequence(&self) -> PyResult<u64> {
        Ok(self.msg()?.sequence())
    }

    /// The channel the message was published on.
    #[getter]
    fn subject(&self) -> PyResult<String> {
        Ok(self.msg()?.subject().to_string())
    }

    /// The payload.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.msg()?.data()))
    }

    /// When the server stored the message (timezone-aware UTC `datetime`).
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        datetime_from_nanos(py, self.msg()?.timestamp_nanos())
    }

    /// When the server stored the message, in nanoseconds since the Unix epoch.
    #[getter]
    fn timestamp_nanos(&self) -> PyResult<i64> {
        Ok(self.msg()?.timestamp_nanos())
    }

    /// True when this is not the first delivery of the message to this subscription.
    #[getter]
    fn redelivered(&self) -> PyResult<bool> {
        Ok(self.msg()?.redelivered())
    }

    /// How many times the server redelivered the message.
    #[getter]
    fn redelivery_count(&self) -> PyResult<u32> {
        Ok(self.msg()?.redelivery_count())
    }

    /// Acknowledge the message (manual-ack subscriptions); returns an awaitable.
    fn ack<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let msg = self.msg()?.clone();
        // Acking queues a command; it is normally complete at once.
        if let Some(done) = msg.ack().now_or_never() {
            return runtime::ready(py, done.into_py().map(|()| None::<bool>));
        }
        runtime::unit_future_into_py(py, async move { msg.ack().await.into_py() })
    }

    /// Acknowledge the message, blocking (GIL released).
    /// (Many at once: the module function `ack_many`.)
    fn ack_blocking(&self, py: Python<'_>) -> PyResult<()> {
        let msg = self.msg()?.clone();
        runtime::block_on(py, async move { msg.ack().await.into_py() })
    }

    fn __repr__(&self) -> PyResult<String> {
        let m = self.msg()?;
        Ok(format!(
            "Message(subject={:?}, sequence={}, data=<{} bytes>, redelivered={}, redelivery_count={})",
            m.subject(),
            m.sequence(),
            m.data().len(),
            if m.redelivered() { "True" } else { "False" },
            m.redelivery_count()
        ))
    }
}

/// Acknowledge many messages of manual-ack subscriptions in one call (GIL released while the
/// acks are queued). The messages may come from different subscriptions; acking one twice is
/// a no-op. Stops at the first message that cannot be acked (the ones before it are acked).
#[pyfunction]
pub(crate) fn ack_many(py: Python<'_>, messages: &Bound<'_, PyAny>) -> PyResult<()> {
    let mut msgs = Vec::new();
    for item in messages.try_iter()? {
        let item = item?;
        let msg = item.cast::<PyMessage>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "ack_many takes messages, got {}",
                item.get_type()
                    .name()
                    .map_or_else(|_| "?".to_string(), |n| n.to_string())
            ))
        })?;
        msgs.push(msg.get().msg()?.clone());
    }
    py.detach(|| stan_client::Message::ack_many(&msgs))
        .into_py()
}

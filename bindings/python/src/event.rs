//! Connection events: `Event` (plain data) and `Events` (an async iterator of them).

use std::sync::Arc;

use futures::StreamExt;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use stan_client::{Event, LostReason};
use tokio::sync::Mutex;

use crate::error::invalid_state;
use crate::runtime::{self, ProcessGuard};

/// One connection event, as plain data; `stan_client.events` turns it into a dataclass.
#[pyclass(frozen, module = "stan_client._native", name = "Event")]
pub(crate) struct PyEvent {
    /// `nats_disconnected`, `nats_reconnected`, `connection_lost`, `resumed`, `resume_failed`,
    /// `closed` (or `unknown` for an event kind this binding does not know yet).
    #[pyo3(get)]
    kind: &'static str,
    /// For `connection_lost`: `pings_exhausted`, `replaced`, `server_closed` (or `unknown`).
    #[pyo3(get)]
    reason: Option<&'static str>,
    /// For `connection_lost` and `resume_failed`: the error text.
    #[pyo3(get)]
    message: Option<String>,
    /// For `connection_lost`: whether auto-resume is trying to re-establish the session.
    #[pyo3(get)]
    resuming: bool,
    /// For `resumed`: subscriptions that could not be re-created.
    #[pyo3(get)]
    failed_subscriptions: usize,
}

fn reason_name(reason: LostReason) -> &'static str {
    match reason {
        LostReason::PingsExhausted => "pings_exhausted",
        LostReason::Replaced => "replaced",
        LostReason::ServerClosed => "server_closed",
        _ => "unknown",
    }
}

impl From<Event> for PyEvent {
    fn from(ev: Event) -> Self {
        let mut out = PyEvent {
            kind: "unknown",
            reason: None,
            message: None,
            resuming: false,
            failed_subscriptions: 0,
        };
        match ev {
            Event::NatsDisconnected => out.kind = "nats_disconnected",
            Event::NatsReconnected => out.kind = "nats_reconnected",
            Event::ConnectionLost {
                reason,
                message,
                resuming,
            } => {
                out.kind = "connection_lost";
                out.reason = Some(reason_name(reason));
                out.message = Some(message);
                out.resuming = resuming;
            }
            Event::Resumed {
                failed_subscriptions,
            } => {
                out.kind = "resumed";
                out.failed_subscriptions = failed_subscriptions;
            }
            Event::ResumeFailed { message } => {
                out.kind = "resume_failed";
                out.message = Some(message);
            }
            Event::Closed => out.kind = "closed",
            _ => {}
        }
        out
    }
}

#[pymethods]
impl PyEvent {
    fn __repr__(&self) -> String {
        format!(
            "Event(kind={:?}, reason={:?}, message={:?}, resuming={}, failed_subscriptions={})",
            self.kind, self.reason, self.message, self.resuming, self.failed_subscriptions
        )
    }
}

/// The connection events of a client from the moment this iterator was created; ends after
/// the `closed` event.
#[pyclass(frozen, module = "stan_client._native", name = "Events")]
pub(crate) struct PyEvents {
    guard: ProcessGuard,
    inner: Option<Arc<Mutex<stan_client::Events>>>,
}

impl PyEvents {
    pub(crate) fn new(events: stan_client::Events) -> Self {
        PyEvents {
            guard: ProcessGuard::new(),
            inner: Some(Arc::new(Mutex::new(events))),
        }
    }
}

impl Drop for PyEvents {
    fn drop(&mut self) {
        runtime::release(&self.guard, self.inner.take());
    }
}

#[pymethods]
impl PyEvents {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.guard.check()?;
        let inner = self
            .inner
            .clone()
            .ok_or_else(|| invalid_state("events handle released"))?;
        runtime::future_into_py(py, async move {
            match inner.lock().await.next().await {
                Some(ev) => Ok(PyEvent::from(ev)),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }
}

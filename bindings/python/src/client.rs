//! `Client`: wraps [`stan_client::Client`]; `connect`.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use stan_client::{Error, PublishAckFuture};

use crate::error::{invalid_state, IntoPyResult};
use crate::event::PyEvents;
use crate::options;
use crate::resolver::{Outcome, Resolver};
use crate::runtime::{self, ProcessGuard};
use crate::subscription::PySubscription;

/// Await the ack of a started publish and hand the outcome to the resolver.
async fn resolve_ack(
    started: Result<PublishAckFuture, Error>,
    future: Py<PyAny>,
    resolver: Arc<Resolver>,
) {
    let outcome = match started {
        Err(e) => Outcome::Failed(e),
        Ok(ack) => match AssertUnwindSafe(ack).catch_unwind().await {
            Ok(Ok(guid)) => Outcome::Value(guid),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => Outcome::Panicked("publish ack future panicked".to_string()),
        },
    };
    resolver.complete(future, outcome);
}

struct ClientInner {
    /// Publishes are started with the core's synchronous `start_publish`, which takes each
    /// publish's place in the client's publish queue: they reach the wire in the order Python
    /// made the calls (each awaitable then only waits for its own ack).
    client: stan_client::Client,
    /// Resolver of the event loop that publishes (replaced if another loop takes over).
    resolver: Mutex<Option<Arc<Resolver>>>,
}

impl ClientInner {
    fn resolver_for(&self, event_loop: &Bound<'_, PyAny>) -> Arc<Resolver> {
        let mut slot = crate::runtime::lock(&self.resolver);
        match &*slot {
            Some(r) if r.serves(event_loop) => r.clone(),
            _ => {
                let r = Resolver::new(event_loop.clone().unbind());
                *slot = Some(r.clone());
                r
            }
        }
    }
}

/// A connection to a streaming server.
#[pyclass(frozen, module = "stan_client._native", name = "Client")]
pub(crate) struct PyClient {
    guard: ProcessGuard,
    inner: Option<ClientInner>,
}

impl PyClient {
    fn new(client: stan_client::Client) -> Self {
        PyClient {
            guard: ProcessGuard::new(),
            inner: Some(ClientInner {
                client,
                resolver: Mutex::new(None),
            }),
        }
    }

    fn inner(&self) -> PyResult<&ClientInner> {
        self.guard.check()?;
        self.inner
            .as_ref()
            .ok_or_else(|| invalid_state("client handle released"))
    }

    /// Start a publish now (it takes its place in line); the returned future resolves to the
    /// guid once acked.
    fn start_publish(
        &self,
        subject: String,
        data: PyBackedBytes,
    ) -> PyResult<impl std::future::Future<Output = PyResult<String>> + Send + 'static> {
        let inner = self.inner()?;
        let started = inner
            .client
            .start_publish(&subject, Bytes::from_owner(data));
        Ok(async move { started.into_py()?.await.into_py() })
    }
}

impl Drop for PyClient {
    fn drop(&mut self) {
        runtime::release(&self.guard, self.inner.take());
    }
}

#[pymethods]
impl PyClient {
    /// The client ID.
    #[getter]
    fn client_id(&self) -> PyResult<String> {
        Ok(self.inner()?.client.client_id().to_string())
    }

    /// The cluster ID.
    #[getter]
    fn cluster_id(&self) -> PyResult<String> {
        Ok(self.inner()?.client.cluster_id().to_string())
    }

    /// True once the client is closed for good.
    #[getter]
    fn is_closed(&self) -> PyResult<bool> {
        Ok(self.inner()?.client.is_closed())
    }

    /// Publish `data` on `subject`. The publish is queued at once (in call order); the returned
    /// asyncio future of the running loop resolves to the guid once the server acknowledged
    /// it. Acks that complete together are resolved with one loop wake-up.
    fn publish<'py>(
        &self,
        py: Python<'py>,
        subject: String,
        data: PyBackedBytes,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner()?;
        let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
        let future = event_loop.call_method0("create_future")?;
        let resolver = inner.resolver_for(&event_loop);
        let started = inner
            .client
            .start_publish(&subject, Bytes::from_owner(data));
        runtime::runtime().spawn(resolve_ack(started, future.clone().unbind(), resolver));
        Ok(future)
    }

    /// Publish and wait for the ack, blocking (GIL released); returns the guid.
    fn publish_blocking(
        &self,
        py: Python<'_>,
        subject: String,
        data: PyBackedBytes,
    ) -> PyResult<String> {
        let fut = self.start_publish(subject, data)?;
        runtime::block_on(py, fut)
    }

    /// Subscribe to `subject` with a `SubscribeConfig`; returns an awaitable `Subscription`.
    fn subscribe<'py>(
        &self,
        py: Python<'py>,
        subject: String,
        config: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = options::subscribe_options(config)?;
        let client = self.inner()?.client.clone();
        runtime::future_into_py(py, async move {
            let sub = client.subscribe(&subject, opts).await.into_py()?;
            Ok(PySubscription::new(sub))
        })
    }

    /// `subscribe()`, blocking (GIL released).
    fn subscribe_blocking(
        &self,
        py: Python<'_>,
        subject: String,
        config: &Bound<'_, PyAny>,
    ) -> PyResult<PySubscription> {
        let opts = options::subscribe_options(config)?;
        let client = self.inner()?.client.clone();
        runtime::block_on(py, async move {
            let sub = client.subscribe(&subject, opts).await.into_py()?;
            Ok(PySubscription::new(sub))
        })
    }

    /// Connection events from now on.
    fn events(&self) -> PyResult<PyEvents> {
        Ok(PyEvents::new(self.inner()?.client.events()))
    }

    /// Close the connection; returns an awaitable.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner()?.client.clone();
        runtime::unit_future_into_py(py, async move { client.close().await.into_py() })
    }

    /// `close()`, blocking (GIL released).
    fn close_blocking(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.inner()?.client.clone();
        runtime::block_on(py, async move { client.close().await.into_py() })
    }

    fn __repr__(&self) -> PyResult<String> {
        let c = &self.inner()?.client;
        Ok(format!(
            "Client(cluster_id={:?}, client_id={:?}, closed={})",
            c.cluster_id(),
            c.client_id(),
            if c.is_closed() { "True" } else { "False" }
        ))
    }
}

/// Connect with a `ConnectConfig`; returns an awaitable `Client`.
#[pyfunction]
pub(crate) fn connect<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = options::connect_options(config)?;
    runtime::future_into_py(py, async move {
        let client = opts.connect().await.into_py()?;
        Ok(PyClient::new(client))
    })
}

/// `connect()`, blocking (GIL released).
#[pyfunction]
pub(crate) fn connect_blocking(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<PyClient> {
    let opts = options::connect_options(config)?;
    runtime::block_on(py, async move {
        let client = opts.connect().await.into_py()?;
        Ok(PyClient::new(client))
    })
}

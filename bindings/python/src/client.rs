//! `Client`: wraps [`stan_client::Client`]; `connect`.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use stan_client::{Error, PublishAckFuture};
use tokio::sync::{mpsc, oneshot};

use crate::error::{invalid_state, IntoPyResult};
use crate::event::PyEvents;
use crate::options;
use crate::runtime::{self, ProcessGuard};
use crate::subscription::PySubscription;

/// One publish handed to the publish queue.
struct PubRequest {
    subject: String,
    payload: Bytes,
    reply: oneshot::Sender<Result<PublishAckFuture, Error>>,
}

struct ClientInner {
    client: stan_client::Client,
    /// Publishes are started from one queue so they reach the core in the order Python made
    /// the calls (each awaitable runs as its own task, and tasks start in any order).
    publisher: mpsc::UnboundedSender<PubRequest>,
}

/// A connection to a streaming server.
#[pyclass(frozen, module = "stan_client._native", name = "Client")]
pub(crate) struct PyClient {
    guard: ProcessGuard,
    inner: Option<ClientInner>,
}

impl PyClient {
    fn new(client: stan_client::Client) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<PubRequest>();
        let core = client.clone();
        runtime::runtime().spawn(async move {
            while let Some(req) = rx.recv().await {
                let started = core.publish_async(&req.subject, req.payload).await;
                let _ = req.reply.send(started);
            }
        });
        PyClient {
            guard: ProcessGuard::new(),
            inner: Some(ClientInner {
                client,
                publisher: tx,
            }),
        }
    }

    fn inner(&self) -> PyResult<&ClientInner> {
        self.guard.check()?;
        self.inner
            .as_ref()
            .ok_or_else(|| invalid_state("client handle released"))
    }

    /// Queue a publish now; the returned future resolves to the guid once acked.
    fn start_publish(
        &self,
        subject: String,
        data: PyBackedBytes,
    ) -> PyResult<impl std::future::Future<Output = PyResult<String>> + Send + 'static> {
        let inner = self.inner()?;
        let (tx, rx) = oneshot::channel();
        let request = PubRequest {
            subject,
            payload: Bytes::from_owner(data),
            reply: tx,
        };
        // The queue only stops with the runtime; then publish directly.
        let unqueued = inner.publisher.send(request).err().map(|e| e.0);
        let client = inner.client.clone();
        Ok(async move {
            let ack = match unqueued {
                Some(req) => client.publish_async(&req.subject, req.payload).await,
                None => rx.await.unwrap_or_else(|_| {
                    Err(Error::new(
                        stan_client::ErrorKind::ConnectionClosed,
                        "publish queue stopped",
                    ))
                }),
            }
            .into_py()?;
            ack.await.into_py()
        })
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
    /// awaitable resolves to the guid once the server acknowledged it.
    fn publish<'py>(
        &self,
        py: Python<'py>,
        subject: String,
        data: PyBackedBytes,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fut = self.start_publish(subject, data)?;
        runtime::future_into_py(py, fut)
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

//! `Client`: wraps [`stan_client::Client`]; `connect`.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use stan_client::{Error, PublishAckFuture};
use tokio::sync::{mpsc, oneshot};

use crate::error::{invalid_state, IntoPyResult};
use crate::event::PyEvents;
use crate::options;
use crate::resolver::{Outcome, Resolver};
use crate::runtime::{self, ProcessGuard};
use crate::subscription::PySubscription;

/// Where the outcome of a queued publish goes.
enum Reply {
    /// Back to a waiting caller (blocking publish): the started publish, for its ack.
    Started(oneshot::Sender<Result<PublishAckFuture, Error>>),
    /// Into an asyncio future, through the loop's resolver (the guid or the error).
    Future {
        future: Py<PyAny>,
        resolver: Arc<Resolver>,
    },
}

/// One publish handed to the publish queue.
struct PubRequest {
    subject: String,
    payload: Bytes,
    reply: Reply,
}

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
    client: stan_client::Client,
    /// Publishes are started from one queue so they reach the core in the order Python made
    /// the calls (each awaitable runs as its own task, and tasks start in any order).
    publisher: mpsc::UnboundedSender<PubRequest>,
    /// Resolver of the event loop that publishes (replaced if another loop takes over).
    resolver: Mutex<Option<Arc<Resolver>>>,
}

impl ClientInner {
    fn resolver_for(&self, event_loop: &Bound<'_, PyAny>) -> Arc<Resolver> {
        let mut slot = self.resolver.lock().unwrap_or_else(|e| e.into_inner());
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
        let (tx, mut rx) = mpsc::unbounded_channel::<PubRequest>();
        let core = client.clone();
        runtime::runtime().spawn(async move {
            while let Some(req) = rx.recv().await {
                let started = AssertUnwindSafe(core.publish_async(&req.subject, req.payload))
                    .catch_unwind()
                    .await;
                match (req.reply, started) {
                    (Reply::Started(tx), Ok(started)) => {
                        let _ = tx.send(started);
                    }
                    (Reply::Started(_), Err(_)) => {} // the waiting caller sees the queue stop
                    (Reply::Future { future, resolver }, Ok(started)) => {
                        tokio::spawn(resolve_ack(started, future, resolver));
                    }
                    (Reply::Future { future, resolver }, Err(_)) => {
                        resolver.complete(future, Outcome::Panicked("publish panicked".into()));
                    }
                }
            }
        });
        PyClient {
            guard: ProcessGuard::new(),
            inner: Some(ClientInner {
                client,
                publisher: tx,
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
            reply: Reply::Started(tx),
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
        let request = PubRequest {
            subject,
            payload: Bytes::from_owner(data),
            reply: Reply::Future {
                future: future.clone().unbind(),
                resolver,
            },
        };
        if let Err(unqueued) = inner.publisher.send(request) {
            // The queue only stops with the runtime; then publish directly.
            let req = unqueued.0;
            let client = inner.client.clone();
            if let Reply::Future { future, resolver } = req.reply {
                runtime::runtime().spawn(async move {
                    let started = client.publish_async(&req.subject, req.payload).await;
                    resolve_ack(started, future, resolver).await;
                });
            }
        }
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

//! `Client`: wraps [`stan_client::Client`]; `connect`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use stan_client::{Error, PublishAckFuture, PublishBatch};

use crate::error::{invalid_state, IntoPyResult};
use crate::event::PyEvents;
use crate::future::{self, schedule_ready, Ready};
use crate::options;
use crate::resolver::{self, resolve, LoopTask, Outcome, Resolver};
use crate::runtime::{self, ProcessGuard};
use crate::subscription::PySubscription;

/// Await the ack of a started publish and hand the outcome to the resolver.
async fn resolve_ack<F>(started: F, future: Py<PyAny>, resolver: Arc<Resolver>, done: InFlight)
where
    F: Future<Output = Result<PublishAckFuture, Error>>,
{
    let outcome = match AssertUnwindSafe(async move { started.await?.await })
        .catch_unwind()
        .await
    {
        Ok(Ok(guid)) => Outcome::Value(guid),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => Outcome::Panicked("publish ack future panicked".to_string()),
    };
    done.finish(1);
    resolver.complete(future, outcome);
}

/// An awaited publish made while no other publish is in flight, polled on the event-loop
/// thread: first when it is made (which normally puts it on the wire at once: nothing can be
/// queued ahead of it), then whenever its waker fires (the ack arrived), through the
/// resolver. Should it not reach the connection at once (a session resume in progress), it
/// waits like any publish, and publishes made meanwhile may reach the server before it.
struct DirectPublish {
    resolver: Arc<Resolver>,
    state: Mutex<Option<DirectState>>,
}

type BoxedPublish = Pin<Box<dyn Future<Output = Result<String, Error>> + Send>>;

struct DirectState {
    future: Py<PyAny>,
    publish: BoxedPublish,
    done: InFlight,
}

impl DirectPublish {
    /// Poll the publish (on the loop thread); resolve its future once it is done, its done
    /// callbacks going to `ready`.
    fn poll(self: &Arc<Self>, py: Python<'_>, ready: &mut Ready) {
        let mut slot = runtime::lock(&self.state);
        let Some(state) = slot.as_mut() else {
            return;
        };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let polled = {
            let _runtime = runtime::runtime().enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| state.publish.as_mut().poll(&mut cx)))
        };
        let outcome = match polled {
            Ok(Poll::Pending) => return,
            Ok(Poll::Ready(Ok(guid))) => Outcome::Value(guid),
            Ok(Poll::Ready(Err(e))) => Outcome::Failed(e),
            Err(_) => Outcome::Panicked("publish future panicked".to_string()),
        };
        if let Some(state) = slot.take() {
            drop(slot);
            state.done.finish(1);
            resolve(state.future.bind(py), outcome, ready);
        }
    }
}

impl Wake for DirectPublish {
    fn wake(self: Arc<Self>) {
        let resolver = self.resolver.clone();
        resolver.woken(self);
    }
}

impl LoopTask for DirectPublish {
    fn poll_on_loop(self: Arc<Self>, py: Python<'_>, ready: &mut Ready) {
        self.poll(py, ready);
    }
}

/// The in-flight count of a client, decremented when outcomes are known.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// `n` more publishes are in flight.
    fn start(count: &Arc<AtomicUsize>, n: usize) -> Self {
        count.fetch_add(n, Ordering::SeqCst);
        InFlight(count.clone())
    }

    /// `n` of them have their outcome.
    fn finish(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::SeqCst);
    }
}

struct ClientInner {
    /// Publishes are started with the core's synchronous `start_publish`, which takes each
    /// publish's place in the client's publish queue: they reach the wire in the order Python
    /// made the calls (each awaitable then only waits for its own ack). An awaited publish
    /// made while no other publish is in flight goes on the wire directly instead (see
    /// `publish`).
    client: stan_client::Client,
    /// Publishes whose outcome has not reached the resolver yet.
    in_flight: Arc<AtomicUsize>,
}

/// Await the acks of a publish batch and hand them to the resolver, one burst at a time.
async fn resolve_batch(
    mut batch: PublishBatch,
    mut futures: Vec<Option<Py<PyAny>>>,
    resolver: Arc<Resolver>,
    done: InFlight,
) {
    let mut left = futures.len();
    loop {
        match AssertUnwindSafe(batch.next_acks()).catch_unwind().await {
            Ok(Some(acks)) => {
                done.finish(acks.len());
                left -= acks.len();
                resolver.complete_many(acks.into_iter().filter_map(|(index, outcome)| {
                    let future = futures.get_mut(index)?.take()?;
                    let outcome = match outcome {
                        Ok(guid) => Outcome::Value(guid),
                        Err(e) => Outcome::Failed(e),
                    };
                    Some((future, outcome))
                }))
            }
            Ok(None) => return,
            Err(_) => {
                done.finish(left);
                resolver.complete_many(futures.iter_mut().filter_map(Option::take).map(|f| {
                    (
                        f,
                        Outcome::Panicked("publish ack future panicked".to_string()),
                    )
                }));
                return;
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
                in_flight: Arc::new(AtomicUsize::new(0)),
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
        let resolver = resolver::for_loop(&event_loop)?;
        let future = future::pending_publish_future(py, event_loop.unbind())?.into_any();
        let data = Bytes::from_owner(data);
        let idle = inner.in_flight.load(Ordering::SeqCst) == 0;
        let done = InFlight::start(&inner.in_flight, 1);
        let rt = runtime::runtime();
        let fut = future.clone().unbind();
        if idle {
            // Nothing else in flight, so nothing is queued ahead of this publish: put it on
            // the wire from this thread and poll its ack here, woken through the resolver. No
            // runtime task and no queue hop: one wake-up of the connection, one of the loop.
            let client = inner.client.clone();
            let publish = Box::pin(async move { client.publish(&subject, data).await });
            let direct = Arc::new(DirectPublish {
                resolver,
                state: Mutex::new(Some(DirectState {
                    future: fut,
                    publish,
                    done,
                })),
            });
            // Called by the application, not from the loop: callbacks of an immediate outcome
            // are scheduled, as asyncio does.
            let mut ready = Ready::new();
            direct.poll(py, &mut ready);
            schedule_ready(py, ready);
        } else {
            let started = inner.client.start_publish(&subject, data);
            rt.spawn(resolve_ack(async { started }, fut, resolver, done));
        }
        Ok(future)
    }

    /// Publish many messages in one call: `subjects[i]` and `payloads[i]` are a message and
    /// `futures[i]` the asyncio future of the running loop that receives its outcome (the
    /// guid, or the error). The publishes take their places in the publish queue in order;
    /// acks arriving together resolve with one loop wake-up. A bad channel name fails only its
    /// own future (the others are published, in order).
    fn publish_many(
        &self,
        py: Python<'_>,
        subjects: Vec<String>,
        payloads: Vec<PyBackedBytes>,
        futures: Vec<Py<PyAny>>,
    ) -> PyResult<()> {
        if subjects.len() != futures.len() || payloads.len() != futures.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "publish_many needs one subject, one payload and one future per message",
            ));
        }
        let inner = self.inner()?;
        let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
        let resolver = resolver::for_loop(&event_loop)?;
        let items: Vec<(String, Bytes)> = subjects
            .into_iter()
            .zip(payloads.into_iter().map(Bytes::from_owner))
            .collect();
        let queued = py.detach(|| {
            inner
                .client
                .start_publish_batch(items.iter().map(|(s, d)| (s.as_str(), d.clone())))
        });
        let rt = runtime::runtime();
        match queued {
            Ok(batch) => {
                let done = InFlight::start(&inner.in_flight, futures.len());
                // Outside Tokio's cooperative budget: once a task has used its budget, every
                // receiver it polls reports "not ready" and wakes itself, and the batch's set
                // of pending acks would spin re-polling them (most of the CPU of a large
                // burst, measured), starving the connection's own tasks.
                rt.spawn(tokio::task::coop::unconstrained(resolve_batch(
                    batch,
                    futures.into_iter().map(Some).collect(),
                    resolver,
                    done,
                )));
            }
            // One bad item (or a closed client): each publish on its own, each with its own
            // outcome, still in call order.
            Err(_) => {
                for ((subject, data), future) in items.into_iter().zip(futures) {
                    let started = inner.client.start_publish(&subject, data);
                    let done = InFlight::start(&inner.in_flight, 1);
                    rt.spawn(resolve_ack(
                        async { started },
                        future,
                        resolver.clone(),
                        done,
                    ));
                }
            }
        }
        Ok(())
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

//! Resolving many asyncio futures with one event-loop wake-up, without the GIL on runtime
//! threads.
//!
//! Publish acks and waiting receives complete on runtime threads, often in bursts; so do the
//! rarer awaitables of `runtime::future_into_py` (connect, subscribe, close, events). The
//! [`Resolver`] of an event loop (one per loop, shared by every client and subscription used
//! from it) collects the outcomes for that loop's futures in a plain Rust queue and wakes the
//! loop by writing one byte to a socket pair whose read end the loop watches
//! (`loop.add_reader`); only the outcome that finds the queue empty writes. The loop then runs
//! one [`Drain`] callback for everything that completed meanwhile. A runtime thread therefore
//! never waits for the GIL (it would stall the connection's I/O while Python runs) and costs
//! the loop exactly one wake-up per burst, with no extra thread hand-off in between.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use tokio::sync::oneshot;

use crate::error::{panic_err, to_py_err, ErrorParts};
use crate::future::{run_ready, Failure, PublishFuture, Ready};
use crate::runtime::lock;
use crate::subscription::PyBatch;

/// The resolvers of the event loops in use: one per loop, shared by every client and
/// subscription used from it (two file descriptors per loop, however many handles).
static RESOLVERS: Mutex<Vec<Arc<Resolver>>> = Mutex::new(Vec::new());

/// The resolver of `event_loop` (called on its thread), created on first use. Creating one
/// also forgets those of closed loops (a closed loop has dropped its reader already).
pub(crate) fn for_loop(event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Resolver>> {
    let mut all = lock(&RESOLVERS);
    if let Some(r) = all.iter().find(|r| r.serves(event_loop)) {
        return Ok(r.clone());
    }
    let py = event_loop.py();
    all.retain(|r| {
        !r.event_loop
            .bind(py)
            .call_method0("is_closed")
            .and_then(|c| c.is_truthy())
            .unwrap_or(true)
    });
    let r = Resolver::new(event_loop)?;
    all.push(r.clone());
    Ok(r)
}

/// The outcome of one operation, converted to Python on the loop thread.
pub(crate) enum Outcome {
    /// The value (a publish guid).
    Value(String),
    /// A received batch, or `None` at the end of the subscription.
    Batch(Option<PyBatch>),
    /// A core error.
    Failed(stan_client::Error),
    /// The Rust side panicked.
    Panicked(String),
    /// Any result: converted to a Python object, or raised, on the loop thread.
    Object(ToPython),
}

/// Builds the result of an awaitable (or the exception it raises) on the loop thread.
pub(crate) type ToPython = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// Work a future left for its event loop.
enum Pending {
    /// Resolve this asyncio future with this outcome.
    Done(Py<PyAny>, Outcome),
    /// A Rust future polled on the loop thread was woken: poll it again.
    Woken(Arc<dyn LoopTask>),
}

/// A Rust future that is polled on the event-loop thread (under the GIL) instead of in a
/// runtime task: its waker queues it on the loop's [`Resolver`], so whatever completes it
/// (usually a runtime thread delivering a reply) costs one loop wake-up and no task hand-off.
pub(crate) trait LoopTask: Send + Sync {
    /// Poll the future again (on the loop thread); it resolves its asyncio future when done.
    /// The done callbacks of a [`PublishFuture`] it completes go to `ready`.
    fn poll_on_loop(self: Arc<Self>, py: Python<'_>, ready: &mut Ready);
}

/// Pending outcomes of the futures of one event loop, and the socket pair that wakes it.
pub(crate) struct Resolver {
    event_loop: Py<PyAny>,
    pending: Mutex<Vec<Pending>>,
    /// Written (one byte) when an outcome finds `pending` empty.
    wake_tx: UnixStream,
    /// Watched by the loop (`add_reader`); drained by [`Drain`].
    wake_rx: UnixStream,
}

impl Resolver {
    /// A resolver for `event_loop` (called on its thread): registers the wake-up socket with
    /// the loop.
    pub(crate) fn new(event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Self>> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let resolver = Arc::new(Resolver {
            event_loop: event_loop.clone().unbind(),
            pending: Mutex::new(Vec::new()),
            wake_tx,
            wake_rx,
        });
        let drain = Bound::new(
            event_loop.py(),
            Drain {
                resolver: resolver.clone(),
            },
        )?;
        event_loop.call_method1("add_reader", (resolver.wake_rx.as_raw_fd(), drain))?;
        Ok(resolver)
    }

    /// True when this resolver serves `event_loop`.
    pub(crate) fn serves(&self, event_loop: &Bound<'_, PyAny>) -> bool {
        self.event_loop.bind(event_loop.py()).is(event_loop)
    }

    /// Record the outcome of `future` (from any thread, without the GIL).
    pub(crate) fn complete(&self, future: Py<PyAny>, outcome: Outcome) {
        self.complete_many(std::iter::once((future, outcome)));
    }

    /// Record several outcomes at once: at most one loop wake-up for all of them.
    pub(crate) fn complete_many(&self, outcomes: impl IntoIterator<Item = (Py<PyAny>, Outcome)>) {
        self.push(outcomes.into_iter().map(|(f, o)| Pending::Done(f, o)));
    }

    /// Have `task` polled again on the loop (from its waker, on any thread).
    pub(crate) fn woken(&self, task: Arc<dyn LoopTask>) {
        self.push(std::iter::once(Pending::Woken(task)));
    }

    fn push(&self, items: impl Iterator<Item = Pending>) {
        let wake = {
            let mut pending = lock(&self.pending);
            let was_empty = pending.is_empty();
            pending.extend(items);
            was_empty && !pending.is_empty()
        };
        if wake {
            // A full socket already holds a wake-up; a closed loop resolves nothing anyway.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }
}

/// The loop's reader callback: resolves everything pending.
#[pyclass(frozen, module = "stan_client._native", name = "Drain")]
pub(crate) struct Drain {
    resolver: Arc<Resolver>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        // Empty the socket first, then take the queue: an outcome queued after the take finds
        // the queue empty and writes a new byte, so none is left behind without a wake-up.
        let mut buf = [0u8; 64];
        loop {
            match (&self.resolver.wake_rx).read(&mut buf) {
                Ok(n) if n > 0 => continue,
                Err(e) if e.kind() == IoErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        let batch = std::mem::take(&mut *lock(&self.resolver.pending));
        let mut ready = Ready::new();
        for item in batch {
            let (future, outcome) = match item {
                Pending::Done(future, outcome) => (future, outcome),
                Pending::Woken(task) => {
                    task.poll_on_loop(py, &mut ready);
                    continue;
                }
            };
            resolve(future.bind(py), outcome, &mut ready);
        }
        run_ready(self.resolver.event_loop.bind(py), ready)
    }
}

/// Resolve the asyncio `future` or [`PublishFuture`] (on its loop's thread) with `outcome`,
/// unless it is done already (cancelled): then the outcome is dropped. A `PublishFuture`'s done
/// callbacks go to `ready`, for the caller to run or schedule.
pub(crate) fn resolve(future: &Bound<'_, PyAny>, outcome: Outcome, ready: &mut Ready) {
    if let Ok(future) = future.cast::<PublishFuture>() {
        let outcome = match outcome {
            Outcome::Value(guid) => Ok(guid),
            Outcome::Failed(e) => Err(Failure::Stan(ErrorParts::from(&e))),
            Outcome::Panicked(text) => Err(Failure::Panicked(text)),
            Outcome::Batch(_) | Outcome::Object(_) => Err(Failure::Panicked(
                "a publish future got another operation's outcome".to_string(),
            )),
        };
        PublishFuture::complete(future, outcome, ready);
        return;
    }
    let py = future.py();
    let done = pyo3::intern!(py, "done");
    let set_result = pyo3::intern!(py, "set_result");
    let set_exception = pyo3::intern!(py, "set_exception");
    if future
        .call_method0(done)
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return;
    }
    let _ = match outcome {
        Outcome::Value(v) => future.call_method1(set_result, (v,)),
        Outcome::Batch(b) => future.call_method1(set_result, (b,)),
        Outcome::Failed(e) => future.call_method1(set_exception, (to_py_err(e).into_value(py),)),
        Outcome::Panicked(text) => future.call_method1(
            set_exception,
            (panic_err(&text as &(dyn std::any::Any + Send)).into_value(py),),
        ),
        Outcome::Object(make) => match make(py) {
            Ok(v) => future.call_method1(set_result, (v,)),
            Err(e) => future.call_method1(set_exception, (e.into_value(py),)),
        },
    };
}

/// The done callback of an asyncio future that a runtime task resolves through the
/// [`Resolver`]: when the future is done first (cancelled), the task is told to stop.
#[pyclass(frozen, module = "stan_client._native", name = "CancelOnDone")]
pub(crate) struct CancelOnDone {
    tx: Mutex<Option<oneshot::Sender<()>>>,
}

impl CancelOnDone {
    /// Registers the callback on `future`; the returned receiver fires once the future is
    /// done (after the task resolved it, nobody listens any more).
    pub(crate) fn watch(future: &Bound<'_, PyAny>) -> PyResult<oneshot::Receiver<()>> {
        let (tx, rx) = oneshot::channel();
        let on_done = Bound::new(
            future.py(),
            CancelOnDone {
                tx: Mutex::new(Some(tx)),
            },
        )?;
        future.call_method1(pyo3::intern!(future.py(), "add_done_callback"), (on_done,))?;
        Ok(rx)
    }
}

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, _future: &Bound<'_, PyAny>) {
        if let Some(tx) = lock(&self.tx).take() {
            let _ = tx.send(());
        }
    }
}

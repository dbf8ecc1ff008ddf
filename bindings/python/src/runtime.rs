//! The one decision about where core futures run: a lazily created Tokio runtime owned by this
//! module, plus the glue that turns a Rust future into a Python awaitable (and blocks on one for
//! the synchronous facade).
//!
//! # `fork()`
//!
//! Tokio's worker threads do not survive `fork()`: a child inheriting the parent's runtime would
//! hang on every await. The runtime is therefore tied to the process that created it. The first
//! use in a forked child creates a fresh runtime (the parent's one is leaked, never dropped,
//! because dropping would try to stop threads that do not exist in the child). Handles created
//! before the fork (clients, subscriptions, messages) belong to the parent's connection: in the
//! child every call on them raises `InvalidStateError`, and dropping them leaks their Rust side
//! instead of running destructors that would talk to the parent's dead tasks. Create new clients
//! in the child. The process is told apart by its pid, cached (a system call per handle call
//! would be measurable) and refreshed by an `os.register_at_fork` hook, so forks made through
//! `os.fork()` (and `multiprocessing`) are seen.
//!
//! # Interpreter exit
//!
//! Runtime threads touch Python only to build the exceptions of failed operations; awaitables
//! are resolved on their loop's thread (see `resolver.rs`). `stan_client` registers
//! [`_shutdown`] with `atexit`; from then on no runtime thread enters the interpreter (pending
//! awaitables stay unresolved), and `_shutdown` waits for those inside to leave, because a thread
//! that takes the GIL of a finalizing interpreter is terminated mid-Rust-frame by CPython.
//!
//! # Cost per awaitable
//!
//! [`future_into_py`] costs a runtime task; it serves the rare calls (connect, subscribe,
//! close). Results known at call time use [`ready`] instead (an already complete awaitable).
//! Every outcome goes through `resolver.rs`: outcomes are queued without the GIL and the loop
//! is woken once per burst through a socket it watches, and resolves the asyncio futures
//! itself (so no reference to them is ever released off the interpreter once they hold a
//! result); an awaited publish is even polled on the loop thread itself, so its ack costs one
//! loop wake-up and no runtime task.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::error::{invalid_state, panic_err};
use crate::resolver::{self, CancelOnDone, Outcome, ToPython};

/// The pid of this process, cached: `std::process::id()` is a system call, and every call on
/// a handle checks it. Refreshed in a forked child by [`_after_fork_in_child`], which
/// `stan_client` registers with `os.register_at_fork` (so forks made through `os.fork()`,
/// including `multiprocessing`'s, are seen).
static PID: AtomicU32 = AtomicU32::new(0);

/// The pid of this process (see [`PID`]).
fn current_pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// Registered with `os.register_at_fork(after_in_child=...)` by `stan_client/__init__.py`:
/// the child's pid replaces the parent's cached one.
#[pyfunction]
pub(crate) fn _after_fork_in_child() {
    PID.store(std::process::id(), Ordering::Relaxed);
}

/// The runtime of this process: (pid that created it, runtime).
static RUNTIME: Mutex<Option<(u32, &'static tokio::runtime::Runtime)>> = Mutex::new(None);

/// Set by `_shutdown()` (an `atexit` hook): from then on runtime threads never attach to the
/// interpreter, which is about to finalize. A thread that takes the GIL of a finalizing
/// interpreter is terminated by CPython in the middle of Rust frames, which aborts the process.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Runtime threads currently inside (or about to enter) the interpreter.
static ATTACHED_RUNTIME_THREADS: AtomicUsize = AtomicUsize::new(0);

/// How long `_shutdown()` waits for runtime threads to leave the interpreter.
const SHUTDOWN_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// True once the interpreter is shutting down (see [`_shutdown`]).
pub(crate) fn shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::SeqCst)
}

/// Run `f` attached to the interpreter from a runtime thread, unless the interpreter is shutting
/// down (then `None`). [`_shutdown`] waits for every such section to end.
pub(crate) fn attach_from_runtime<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    ATTACHED_RUNTIME_THREADS.fetch_add(1, Ordering::SeqCst);
    let result = if shutting_down() {
        None
    } else {
        Some(Python::attach(f))
    };
    ATTACHED_RUNTIME_THREADS.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Called from `atexit` (registered by `stan_client/__init__.py`): stop resolving Python
/// futures from runtime threads and wait (GIL released) until none is inside the interpreter.
/// Awaitables still pending at exit are never resolved; their Rust side is dropped without
/// touching Python.
#[pyfunction]
pub(crate) fn _shutdown(py: Python<'_>) {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = std::time::Instant::now() + SHUTDOWN_DRAIN_LIMIT;
        while ATTACHED_RUNTIME_THREADS.load(Ordering::SeqCst) > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// How often a blocking wait wakes up to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The runtime of the current process, created on first use (and again in a forked child).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    let pid = current_pid();
    let mut slot = lock(&RUNTIME);
    match *slot {
        Some((owner, rt)) if owner == pid => rt,
        _ => {
            // A runtime of another pid is the parent's, inherited through fork(): leak it.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("stan-client-py")
                .build()
                .unwrap_or_else(|e| panic!("cannot start the tokio runtime: {e}"));
            let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
            *slot = Some((pid, rt));
            rt
        }
    }
}

/// Remembers which process created a handle, to refuse its use in a forked child.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProcessGuard {
    pid: u32,
}

impl ProcessGuard {
    /// A guard for a handle created now, in this process.
    pub(crate) fn new() -> Self {
        ProcessGuard { pid: current_pid() }
    }

    /// True when the handle was created in this process (not inherited through `fork()`).
    pub(crate) fn is_current(&self) -> bool {
        self.pid == current_pid()
    }

    /// `Err(InvalidStateError)` in a forked child.
    pub(crate) fn check(&self) -> PyResult<()> {
        if self.is_current() {
            Ok(())
        } else {
            Err(invalid_state(
                "this handle was created in the parent process before fork(); \
                 create a new client in the child",
            ))
        }
    }
}

/// Locks `m`, taking the data even when a panic elsewhere poisoned the lock (every critical
/// section here leaves its data consistent, and Python callers must keep being served).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drops `value` normally in the process that created it and leaks it in a forked child.
pub(crate) fn release<T>(guard: &ProcessGuard, value: T) {
    if guard.is_current() {
        drop(value);
    } else {
        // On purpose: its tasks and locks belong to the parent's runtime threads, which do not
        // exist in the child; running its destructors here could block forever.
        #[allow(clippy::mem_forget)]
        std::mem::forget(value);
    }
}

/// Run `fut` on the runtime and return a Python awaitable (an `asyncio.Future` of the running
/// loop) for its result. The future starts at once, whether or not Python awaits it. A panic
/// inside becomes `stan_client.errors.PanicError`; cancelling the Python future drops `fut`.
///
/// The outcome goes through the loop's [`Resolver`](crate::resolver::Resolver): the asyncio
/// future is resolved on the loop thread, and the runtime's reference to it is released there,
/// before the code awaiting it resumes. A reference released on a runtime thread would only be
/// queued until some thread next enters the interpreter, and until then keep the future, and
/// so its result, alive: a client that the application dropped right after `connect` would
/// then stay open (its pending publishes not failed) for as long as nothing else runs Rust
/// code of this module.
pub(crate) fn future_into_py<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
    let resolver = resolver::for_loop(&event_loop)?;
    let future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let cancelled = CancelOnDone::watch(&future)?;
    let target = future.clone().unbind();
    runtime().spawn(async move {
        let result = tokio::select! {
            biased;
            r = AssertUnwindSafe(fut).catch_unwind() => match r {
                Ok(result) => result,
                Err(panic) => Err(panic_err(panic.as_ref())),
            },
            // Cancelled (the future holds no result): the work is dropped.
            Ok(()) = cancelled => return,
        };
        let make: ToPython = Box::new(move |py| result.and_then(|v| v.into_py_any(py)));
        resolver.complete(target, Outcome::Object(make));
    });
    Ok(future)
}

/// [`future_into_py`] for a future without a value: the awaitable resolves to `None` (a Rust
/// `()` would become an empty tuple).
pub(crate) fn unit_future_into_py<'py, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<()>> + Send + 'static,
{
    future_into_py(py, async move { fut.await.map(|()| None::<bool>) })
}

/// An awaitable that is already complete: awaiting it returns the value (or raises the error)
/// at once, without a task or a thread handoff. Used when the result is known when the call
/// is made (a message already buffered, an ack that only queues a command).
#[pyclass(frozen, module = "stan_client._native", name = "Ready")]
pub(crate) struct Ready {
    result: Mutex<Option<PyResult<Py<PyAny>>>>,
}

#[pymethods]
impl Ready {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self) -> PyResult<Py<PyAny>> {
        let taken = lock(&self.result).take();
        match taken {
            Some(Ok(value)) => Err(pyo3::exceptions::PyStopIteration::new_err((value,))),
            Some(Err(err)) => Err(err),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this awaitable was already awaited",
            )),
        }
    }
}

/// A [`Ready`] awaitable for `result`.
pub(crate) fn ready<'py, T>(py: Python<'py>, result: PyResult<T>) -> PyResult<Bound<'py, PyAny>>
where
    T: IntoPyObject<'py>,
{
    let result = result.and_then(|v| v.into_py_any(py));
    Ok(Bound::new(
        py,
        Ready {
            result: Mutex::new(Some(result)),
        },
    )?
    .into_any())
}

/// Block the calling thread on `fut` with the GIL released, waking up regularly to let Python
/// run signal handlers (so Ctrl-C interrupts a blocking wait). A panic becomes `PanicError`.
pub(crate) fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    let rt = runtime();
    let mut fut = std::pin::pin!(AssertUnwindSafe(fut).catch_unwind());
    loop {
        let step = py.detach(|| {
            rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK_INTERVAL, &mut fut).await })
        });
        match step {
            Ok(Ok(result)) => return result,
            Ok(Err(panic)) => return Err(panic_err(panic.as_ref())),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}

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
//! in the child.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{ContextExt, Runtime};
use pyo3_async_runtimes::TaskLocals;

use crate::error::{invalid_state, panic_err};

/// The runtime of this process: (pid that created it, runtime).
static RUNTIME: Mutex<Option<(u32, &'static tokio::runtime::Runtime)>> = Mutex::new(None);

/// How often a blocking wait wakes up to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The runtime of the current process, created on first use (and again in a forked child).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
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
        ProcessGuard {
            pid: std::process::id(),
        }
    }

    /// True when the handle was created in this process (not inherited through `fork()`).
    pub(crate) fn is_current(&self) -> bool {
        self.pid == std::process::id()
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

/// Drops `value` normally in the process that created it and leaks it in a forked child.
pub(crate) fn release<T>(guard: &ProcessGuard, value: T) {
    if guard.is_current() {
        drop(value);
    } else {
        std::mem::forget(value);
    }
}

/// The [`pyo3_async_runtimes`] runtime adapter for [`runtime()`].
pub(crate) struct StanRuntime;

tokio::task_local! {
    static TASK_LOCALS: std::cell::OnceCell<TaskLocals>;
}

fn handle() -> tokio::runtime::Handle {
    tokio::runtime::Handle::try_current().unwrap_or_else(|_| runtime().handle().clone())
}

impl Runtime for StanRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        handle().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        handle().spawn_blocking(f)
    }
}

impl ContextExt for StanRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// Run `fut` on the runtime and return a Python awaitable (an `asyncio.Future` of the running
/// loop) for its result. The future starts at once, whether or not Python awaits it. A panic
/// inside becomes `stan_client.errors.PanicError`; cancelling the Python future drops `fut`.
pub(crate) fn future_into_py<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let guarded = async move {
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(panic_err(panic.as_ref())),
        }
    };
    pyo3_async_runtimes::generic::future_into_py::<StanRuntime, _, T>(py, guarded)
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

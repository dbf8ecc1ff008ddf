//! `PublishFuture`: the awaitable that `Client.publish_async` returns, an asyncio-compatible
//! future implemented natively.
//!
//! It follows asyncio's future protocol (`_asyncio_future_blocking`, `get_loop`,
//! `add_done_callback`, `result`, `exception`, `cancel`, ...), so `await`, `asyncio.gather`,
//! `wait_for`, `shield`, `wait` and tasks treat it as they treat `asyncio.Future`. Unlike an
//! `asyncio.Future`, the one `publish_async` makes ([`pending_publish_future`]) is not tracked
//! by the garbage collector: a pipelined burst keeps hundreds of thousands of them alive at
//! once, and the collector's passes over them were the largest cost of the Python thread (30 %
//! of it in `py-spy`). The collector never sees inside any `#[pyclass]` without
//! `__traverse__` anyway, so what matters is that it never keeps a reference cycle alive: its
//! done callbacks (which may refer back to it through a task) are released once it is done,
//! and every publish is done eventually (acked, timed out, or failed by closing the client); a
//! failure is kept as data (or as an exception copied without its traceback) and raised as a
//! new exception each time, so no traceback (and no frame holding the future) hangs off it.

use pyo3::exceptions::{PyKeyboardInterrupt, PyStopIteration, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::error::{panic_err, ErrorParts};

/// Why a publish failed, kept as data: each `result()` / `exception()` builds a new exception.
pub(crate) enum Failure {
    /// A core error.
    Stan(ErrorParts),
    /// The Rust side panicked, with this text.
    Panicked(String),
    /// An exception given to `set_exception` (only the package's own code does that, when
    /// handing a batch to the client core failed unexpectedly), copied without its traceback.
    Python(Py<PyAny>),
}

impl Failure {
    fn to_exception(&self, py: Python<'_>) -> Py<PyAny> {
        match self {
            Failure::Stan(parts) => parts.to_py_err(py).into_value(py).into_any(),
            Failure::Panicked(text) => panic_err(&text.clone() as &(dyn std::any::Any + Send))
                .into_value(py)
                .into_any(),
            // A copy, so that the traceback of this raise does not hang off the future.
            Failure::Python(exc) => copy_exception(exc.bind(py)).unbind(),
        }
    }
}

/// A copy of `exception` without its traceback, cause and context (`copy.copy` keeps only the
/// arguments and attributes); the exception itself if it cannot be copied.
fn copy_exception<'py>(exception: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
    exception
        .py()
        .import("copy")
        .and_then(|copy| copy.call_method1("copy", (exception,)))
        .unwrap_or_else(|_| exception.clone())
}

enum State {
    Pending,
    Done(String),
    Failed(Failure),
    Cancelled(Option<String>),
}

/// A done callback and the `contextvars.Context` to run it in (the caller's, copied when it
/// was added, unless one was given), as asyncio's futures keep them.
type Callback = (Py<PyAny>, Py<PyAny>);

/// The done callbacks of futures the client completed, to run from the event loop (see
/// [`run_ready`]).
pub(crate) type Ready = Vec<(Callback, Py<PublishFuture>)>;

/// `contextvars.copy_context`.
static COPY_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn context_or_current(py: Python<'_>, context: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    match context {
        Some(c) => Ok(c),
        None => Ok(COPY_CONTEXT
            .import(py, "contextvars", "copy_context")?
            .call0()?
            .unbind()),
    }
}

/// The future of one `publish_async`: resolves to the publish's guid, or raises why the
/// publish failed. Cancelling it does not cancel the publish.
#[pyclass(module = "stan_client._native", name = "PublishFuture", weakref)]
pub(crate) struct PublishFuture {
    event_loop: Py<PyAny>,
    state: State,
    callbacks: Vec<Callback>,
    /// asyncio's marker of a future-like object: set while a task waits for it.
    #[pyo3(get, set, name = "_asyncio_future_blocking")]
    blocking: bool,
}

/// A pending [`PublishFuture`] of `event_loop` that the garbage collector does not track (what
/// `publish_async` uses; see the module documentation for why that is safe).
#[pyfunction]
pub(crate) fn pending_publish_future(
    py: Python<'_>,
    event_loop: Py<PyAny>,
) -> PyResult<Bound<'_, PublishFuture>> {
    let future = Bound::new(py, PublishFuture::new(event_loop))?;
    untrack(future.as_any());
    Ok(future)
}

/// Take `object` off the garbage collector's lists.
#[allow(unsafe_code)]
fn untrack(object: &Bound<'_, PyAny>) {
    // SAFETY: `object` is alive and of a GC type (every `#[pyclass]` is), and the `Bound` proves
    // the thread is attached to the interpreter. Untracking is allowed at any point of an
    // object's life, and `PyObject_GC_UnTrack` does nothing to an untracked object (the
    // deallocator calls it again).
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) }
}

impl PublishFuture {
    /// Complete the future (on its loop's thread) unless it is done already (cancelled): then
    /// the outcome is dropped. Its done callbacks are added to `ready`, for the caller to run
    /// with [`run_ready`] once it has completed its whole batch.
    pub(crate) fn complete(
        slf: &Bound<'_, Self>,
        outcome: Result<String, Failure>,
        ready: &mut Ready,
    ) {
        let state = match outcome {
            Ok(guid) => State::Done(guid),
            Err(f) => State::Failed(f),
        };
        if let Some(callbacks) = Self::settle(slf, state) {
            ready.extend(callbacks);
        }
    }

    /// Completed by the application (`cancel`, `set_result`, `set_exception`): the callbacks
    /// are scheduled with `call_soon`, as asyncio does.
    fn finish(slf: &Bound<'_, Self>, state: State) -> PyResult<()> {
        let callbacks =
            Self::settle(slf, state).ok_or_else(|| invalid_state(slf.py(), "invalid state"))?;
        schedule_ready(slf.py(), callbacks);
        Ok(())
    }

    /// Move a pending future to `state`, handing back its done callbacks; `None` when it was
    /// done already.
    fn settle(slf: &Bound<'_, Self>, state: State) -> Option<Ready> {
        let callbacks = {
            let mut this = slf.borrow_mut();
            if !matches!(this.state, State::Pending) {
                return None;
            }
            this.state = state;
            std::mem::take(&mut this.callbacks)
        };
        let future = slf.clone().unbind();
        Some(
            callbacks
                .into_iter()
                .map(|c| (c, future.clone_ref(slf.py())))
                .collect(),
        )
    }
}

/// Schedule the done callbacks in `ready` with their futures' loops (`call_soon`), for a
/// completion that did not happen in a loop callback of the client's.
pub(crate) fn schedule_ready(py: Python<'_>, ready: Ready) {
    for ((callback, context), future) in ready {
        let event_loop = future.borrow(py).event_loop.clone_ref(py);
        // A closed loop runs nothing any more, as with asyncio's own futures.
        let _ = call_soon(event_loop.bind(py), callback, future.bind(py), context);
    }
}

fn call_soon(
    event_loop: &Bound<'_, PyAny>,
    callback: Py<PyAny>,
    future: &Bound<'_, PublishFuture>,
    context: Py<PyAny>,
) -> PyResult<()> {
    let py = event_loop.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item(pyo3::intern!(py, "context"), context)?;
    event_loop.call_method(
        pyo3::intern!(py, "call_soon"),
        (callback, future),
        Some(&kwargs),
    )?;
    Ok(())
}

/// Run the done callbacks of futures the client completed, each in its context. The caller is
/// itself a callback of the event loop (the resolver's), so they run from the loop as asyncio
/// runs them, without one loop callback each: at a burst of acks that scheduling was most of
/// the cost of resolving a future. An exception in a callback goes to the loop's exception
/// handler, as from any loop callback; `SystemExit` and `KeyboardInterrupt` propagate, once
/// the callbacks not run yet are scheduled with `call_soon`.
pub(crate) fn run_ready(event_loop: &Bound<'_, PyAny>, ready: Ready) -> PyResult<()> {
    let py = event_loop.py();
    let run = pyo3::intern!(py, "run");
    let mut ready = ready.into_iter();
    while let Some(((callback, context), future)) = ready.next() {
        let Err(err) = context.bind(py).call_method1(run, (&callback, &future)) else {
            continue;
        };
        if err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py) {
            for ((callback, context), future) in ready {
                let _ = call_soon(event_loop, callback, future.bind(py), context);
            }
            return Err(err);
        }
        let report = PyDict::new(py);
        let reported = report
            .set_item(
                "message",
                format!(
                    "Exception in callback {}({})",
                    callback
                        .bind(py)
                        .repr()
                        .map(|r| r.to_string())
                        .unwrap_or_default(),
                    future.bind(py).borrow().__repr__()
                ),
            )
            .and_then(|()| report.set_item("exception", err.value(py)))
            .and_then(|()| report.set_item("future", &future))
            .and_then(|()| event_loop.call_method1("call_exception_handler", (report,)));
        if reported.is_err() {
            // No handler to take it (a closed loop): print it, as for an unraisable error.
            err.print(py);
        }
    }
    Ok(())
}

fn asyncio_error(py: Python<'_>, name: &str, message: Option<&str>) -> PyErr {
    let made = py
        .import("asyncio")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| match message {
            Some(m) => cls.call1((m,)),
            None => cls.call0(),
        });
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

fn invalid_state(py: Python<'_>, message: &str) -> PyErr {
    asyncio_error(py, "InvalidStateError", Some(message))
}

#[pymethods]
impl PublishFuture {
    /// A pending future of `event_loop`.
    #[new]
    fn new(event_loop: Py<PyAny>) -> Self {
        PublishFuture {
            event_loop,
            state: State::Pending,
            callbacks: Vec::new(),
            blocking: false,
        }
    }

    /// The event loop the future belongs to.
    fn get_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.event_loop.clone_ref(py)
    }

    /// True once it has a result or an exception, or was cancelled.
    fn done(&self) -> bool {
        !matches!(self.state, State::Pending)
    }

    /// True if it was cancelled.
    fn cancelled(&self) -> bool {
        matches!(self.state, State::Cancelled(_))
    }

    /// The guid; raises the publish's error, `CancelledError`, or `InvalidStateError` while
    /// pending.
    fn result(&self, py: Python<'_>) -> PyResult<String> {
        match &self.state {
            State::Pending => Err(invalid_state(py, "Result is not set.")),
            State::Done(guid) => Ok(guid.clone()),
            State::Failed(f) => Err(PyErr::from_value(f.to_exception(py).into_bound(py))),
            State::Cancelled(msg) => Err(asyncio_error(py, "CancelledError", msg.as_deref())),
        }
    }

    /// The publish's error (`None` after success); raises `CancelledError`, or
    /// `InvalidStateError` while pending.
    fn exception(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match &self.state {
            State::Pending => Err(invalid_state(py, "Exception is not set.")),
            State::Done(_) => Ok(None),
            State::Failed(f) => Ok(Some(f.to_exception(py))),
            State::Cancelled(msg) => Err(asyncio_error(py, "CancelledError", msg.as_deref())),
        }
    }

    /// Run `fn(future)` from the loop once the future is done (at the next loop turn when it
    /// is done already).
    #[pyo3(signature = (r#fn, *, context = None))]
    fn add_done_callback(
        slf: &Bound<'_, Self>,
        r#fn: Py<PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let context = context_or_current(slf.py(), context)?;
        let done = {
            let mut this = slf.borrow_mut();
            if matches!(this.state, State::Pending) {
                this.callbacks.push((r#fn, context));
                return Ok(());
            }
            this.event_loop.clone_ref(slf.py())
        };
        call_soon(done.bind(slf.py()), r#fn, slf, context)
    }

    /// Remove every registration of `fn`; returns how many were removed.
    fn remove_done_callback(slf: &Bound<'_, Self>, r#fn: &Bound<'_, PyAny>) -> PyResult<usize> {
        let callbacks = std::mem::take(&mut slf.borrow_mut().callbacks);
        let before = callbacks.len();
        let mut kept = Vec::with_capacity(before);
        for (callback, context) in callbacks {
            if !callback.bind(slf.py()).eq(r#fn)? {
                kept.push((callback, context));
            }
        }
        let removed = before - kept.len();
        let mut this = slf.borrow_mut();
        // Callbacks added meanwhile (by an `__eq__`) stay after the kept ones.
        kept.append(&mut this.callbacks);
        this.callbacks = kept;
        Ok(removed)
    }

    /// Cancel the future (not the publish, which goes on). False if it was done already.
    #[pyo3(signature = (msg = None))]
    fn cancel(slf: &Bound<'_, Self>, msg: Option<String>) -> bool {
        Self::finish(slf, State::Cancelled(msg)).is_ok()
    }

    /// Set the result (asyncio's future API; the client resolves its futures itself).
    fn set_result(slf: &Bound<'_, Self>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        let guid: String = result
            .extract()
            .map_err(|_| PyTypeError::new_err("a PublishFuture's result is a str (the guid)"))?;
        Self::finish(slf, State::Done(guid))
    }

    /// Set the exception (asyncio's future API; the client resolves its futures itself).
    fn set_exception(slf: &Bound<'_, Self>, exception: &Bound<'_, PyAny>) -> PyResult<()> {
        // Kept without its traceback: its frames may hold this future (a cycle the collector
        // could not see).
        let exception = if exception.is_instance_of::<pyo3::types::PyType>() {
            exception.call0()?
        } else {
            copy_exception(exception)
        };
        Self::finish(slf, State::Failed(Failure::Python(exception.unbind())))
    }

    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Yields the future itself to the awaiting task until done, then returns the result.
    fn __next__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let result = {
            let mut this = slf.borrow_mut();
            if matches!(this.state, State::Pending) {
                this.blocking = true;
                None
            } else {
                Some(this.result(slf.py()))
            }
        };
        match result {
            None => Ok(slf),
            Some(Ok(guid)) => Err(PyStopIteration::new_err((guid,))),
            Some(Err(e)) => Err(e),
        }
    }

    fn __repr__(&self) -> String {
        let state = match &self.state {
            State::Pending => "pending".to_string(),
            State::Done(guid) => format!("finished result={guid:?}"),
            State::Failed(_) => "finished exception".to_string(),
            State::Cancelled(_) => "cancelled".to_string(),
        };
        format!("<PublishFuture {state}>")
    }
}

//! Resolving many asyncio futures with one event-loop wake-up.
//!
//! Publish acks complete on runtime threads, often in bursts. Resolving each asyncio future on
//! its own costs a thread hand-off and a loop wake-up per ack. A [`Resolver`] collects the
//! outcomes of one event loop's futures and schedules a single [`Drain`] callback on that loop
//! (`call_soon_threadsafe`) for everything that completed meanwhile.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use crate::error::{panic_err, to_py_err};
use crate::runtime;

/// The outcome of one operation, converted to Python on the loop thread.
pub(crate) enum Outcome {
    /// The value (a publish guid).
    Value(String),
    /// A core error.
    Failed(stan_client::Error),
    /// The Rust side panicked.
    Panicked(String),
}

/// Pending outcomes of the futures of one event loop.
pub(crate) struct Resolver {
    event_loop: Py<PyAny>,
    pending: Mutex<Vec<(Py<PyAny>, Outcome)>>,
}

impl Resolver {
    /// A resolver for `event_loop`.
    pub(crate) fn new(event_loop: Py<PyAny>) -> Arc<Self> {
        Arc::new(Resolver {
            event_loop,
            pending: Mutex::new(Vec::new()),
        })
    }

    /// True when this resolver serves `event_loop`.
    pub(crate) fn serves(&self, event_loop: &Bound<'_, PyAny>) -> bool {
        self.event_loop.bind(event_loop.py()).is(event_loop)
    }

    /// Record the outcome of `future` (from any thread). The first outcome of a batch
    /// schedules a drain on the loop; later ones ride along.
    pub(crate) fn complete(self: &Arc<Self>, future: Py<PyAny>, outcome: Outcome) {
        let first = {
            let mut pending = crate::runtime::lock(&self.pending);
            pending.push((future, outcome));
            pending.len() == 1
        };
        if first {
            let this = self.clone();
            runtime::runtime().spawn_blocking(move || {
                // A closed loop cannot run the drain; its futures can no longer be awaited.
                let _ = runtime::attach_from_runtime(|py| -> PyResult<()> {
                    let drain = Bound::new(
                        py,
                        Drain {
                            resolver: this.clone(),
                        },
                    )?;
                    this.event_loop
                        .bind(py)
                        .call_method1("call_soon_threadsafe", (drain,))?;
                    Ok(())
                });
            });
        }
    }
}

/// The loop callback that resolves a batch.
#[pyclass(frozen, module = "stan_client._native", name = "Drain")]
pub(crate) struct Drain {
    resolver: Arc<Resolver>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        let batch = std::mem::take(&mut *crate::runtime::lock(&self.resolver.pending));
        for (future, outcome) in batch {
            let future = future.bind(py);
            // A cancelled future is done already; its outcome is dropped.
            if future
                .call_method0("done")
                .and_then(|d| d.is_truthy())
                .unwrap_or(true)
            {
                continue;
            }
            let _ = match outcome {
                Outcome::Value(v) => future.call_method1("set_result", (v,)),
                Outcome::Failed(e) => {
                    future.call_method1("set_exception", (to_py_err(e).into_value(py),))
                }
                Outcome::Panicked(text) => future.call_method1(
                    "set_exception",
                    (panic_err(&text as &(dyn std::any::Any + Send)).into_value(py),),
                ),
            };
        }
    }
}

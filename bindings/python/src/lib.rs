//! Python bindings of `stan-client`, the module `stan_client._native`.
//!
//! This crate only converts types, maps errors, adapts async and manages handle lifetimes; the
//! idiomatic API lives in the Python package (`python/stan_client`). One file per domain
//! object, matching the core crate: `client.rs`, `subscription.rs`, `message.rs`, `event.rs`,
//! `options.rs`, `error.rs`, and `runtime.rs` (where futures run; fork handling).
#![warn(missing_docs)]

mod client;
mod error;
mod event;
mod future;
mod message;
mod options;
mod resolver;
mod runtime;
mod subscription;

use pyo3::prelude::*;

/// Test helper (feature `test-hooks`): panics (PyO3 turns it into
/// `pyo3_runtime.PanicException`).
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _panic_blocking(message: &str) -> PyResult<()> {
    panic!("{message}")
}

/// Test helper (feature `test-hooks`): an awaitable whose Rust future panics (raises
/// `PanicError`).
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _panic_async<'py>(py: Python<'py>, message: String) -> PyResult<Bound<'py, PyAny>> {
    runtime::unit_future_into_py(py, async move {
        if !message.is_empty() {
            panic!("{message}");
        }
        Ok(())
    })
}

/// The native module `stan_client._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<future::PublishFuture>()?;
    m.add_function(wrap_pyfunction!(future::pending_publish_future, m)?)?;
    m.add_class::<subscription::PySubscription>()?;
    m.add_class::<subscription::PyBatch>()?;
    m.add_class::<message::PyMessage>()?;
    m.add_function(wrap_pyfunction!(message::ack_many, m)?)?;
    m.add_class::<event::PyEvent>()?;
    m.add_class::<event::PyEvents>()?;
    m.add_function(wrap_pyfunction!(client::connect, m)?)?;
    m.add_function(wrap_pyfunction!(client::connect_blocking, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_after_fork_in_child, m)?)?;
    #[cfg(feature = "test-hooks")]
    add_test_hooks(m)?;
    Ok(())
}

/// The test-only functions (feature `test-hooks`; absent from release builds).
#[cfg(feature = "test-hooks")]
fn add_test_hooks(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(error::_error_kind_codes, m)?)?;
    m.add_function(wrap_pyfunction!(error::_error_for_code, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_blocking, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_async, m)?)?;
    Ok(())
}

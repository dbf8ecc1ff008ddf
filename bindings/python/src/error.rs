//! The one conversion point from core errors to Python exceptions.
//!
//! The exception classes are defined in Python (`stan_client/errors.py`) and imported here by
//! name; each carries the stable `code` of the core [`ErrorKind`]. The core error's source
//! chain becomes the exception's `__cause__` chain.

use std::error::Error as _;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use stan_client::{Error, ErrorKind};

/// The Python module defining the exception classes.
const ERRORS_MODULE: &str = "stan_client.errors";

/// Name of the class in `stan_client.errors` raised for `kind`.
///
/// `ErrorKind` is non-exhaustive: a kind added to the core later maps to the base `StanError`
/// (still with the right `code`) until it gets its own class; the binding test that walks
/// `ErrorKind::ALL` fails until then.
pub(crate) fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ConnectTimeout => "ConnectTimeoutError",
        ErrorKind::RequestTimeout => "RequestTimeoutError",
        ErrorKind::PublishAckTimeout => "PublishAckTimeoutError",
        ErrorKind::ConnectionClosed => "ConnectionClosedError",
        ErrorKind::ConnectionLost => "ConnectionLostError",
        ErrorKind::ServerRejected => "ServerRejectedError",
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::InvalidState => "InvalidStateError",
        ErrorKind::NotSupported => "NotSupportedError",
        ErrorKind::Protocol => "ProtocolError",
        ErrorKind::Transport => "TransportError",
        _ => "StanError",
    }
}

/// Instantiate `stan_client.errors.<class>(message, code=code)`.
fn instantiate(py: Python<'_>, class: &str, message: &str, code: &str) -> PyResult<PyErr> {
    let cls = py.import(ERRORS_MODULE)?.getattr(class)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("code", code)?;
    let exc = cls.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(exc))
}

/// Convert a core error into the matching `stan_client.errors` exception, keeping the source
/// chain as `__cause__`.
pub(crate) fn to_py_err(err: Error) -> PyErr {
    let parts = ErrorParts::from(&err);
    // At interpreter exit nobody sees the error; a plain lazy exception needs no interpreter.
    crate::runtime::attach_from_runtime(|py| parts.to_py_err(py))
        .unwrap_or_else(|| PyException::new_err(parts.text))
}

/// What a Python exception is made of, taken from a core error: kept instead of the exception
/// where one error is raised more than once (each raise gets a new exception, with no
/// traceback of an earlier raise attached).
pub(crate) struct ErrorParts {
    kind: ErrorKind,
    text: String,
    /// The texts of the source chain, outermost first.
    causes: Vec<String>,
}

impl From<&Error> for ErrorParts {
    fn from(err: &Error) -> Self {
        let mut causes = Vec::new();
        let mut source = err.source();
        while let Some(s) = source {
            causes.push(s.to_string());
            source = s.source();
        }
        ErrorParts {
            kind: err.kind(),
            text: err.to_string(),
            causes,
        }
    }
}

impl ErrorParts {
    /// A new exception of the matching `stan_client.errors` class, with the source chain as
    /// `__cause__`.
    pub(crate) fn to_py_err(&self, py: Python<'_>) -> PyErr {
        let py_err = instantiate(py, class_name(self.kind), &self.text, self.kind.code())
            .unwrap_or_else(|import_failed| import_failed);
        // Build the cause chain from the innermost source outwards.
        let mut cause: Option<PyErr> = None;
        for text in self.causes.iter().rev() {
            let e = PyException::new_err(text.clone());
            e.set_cause(py, cause.take());
            cause = Some(e);
        }
        if cause.is_some() {
            py_err.set_cause(py, cause);
        }
        py_err
    }
}

/// `stan_client.errors.InvalidStateError` raised by the binding itself (handle misuse that the
/// core cannot see, such as a handle inherited through `fork()`).
pub(crate) fn invalid_state(message: &str) -> PyErr {
    to_py_err(Error::new(ErrorKind::InvalidState, message))
}

/// `stan_client.errors.PanicError` for a panic caught at the boundary.
pub(crate) fn panic_err(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    let text = format!("rust panic: {text}");
    crate::runtime::attach_from_runtime(|py| {
        instantiate(py, "PanicError", &text, "PANIC").unwrap_or_else(|import_failed| import_failed)
    })
    .unwrap_or_else(|| PyException::new_err(text))
}

/// Extension: `result.map_err(to_py_err)` as a method.
pub(crate) trait IntoPyResult<T> {
    /// Convert the error side with [`to_py_err`].
    fn into_py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn into_py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}

/// Test helper (feature `test-hooks`): the codes of every core error kind, in `ErrorKind::ALL`
/// order.
#[cfg(feature = "test-hooks")]
#[pyfunction]
pub(crate) fn _error_kind_codes() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.code()).collect()
}

/// Test helper (feature `test-hooks`): the exception `to_py_err` produces for a core error of
/// kind `code`.
#[cfg(feature = "test-hooks")]
#[pyfunction]
pub(crate) fn _error_for_code(code: &str, message: &str) -> PyResult<Py<PyAny>> {
    let kind = ErrorKind::ALL
        .iter()
        .copied()
        .find(|k| k.code() == code)
        .ok_or_else(|| {
            to_py_err(Error::new(
                ErrorKind::InvalidArgument,
                format!("unknown error code {code:?}"),
            ))
        })?;
    let source = std::io::Error::other("underlying cause");
    let err = Error::with_source(kind, message, source);
    Python::attach(|py| Ok(to_py_err(err).into_value(py).into_any()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_has_its_own_class() {
        let names: HashSet<&str> = ErrorKind::ALL.iter().map(|k| class_name(*k)).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert!(!names.contains("StanError"));
    }
}

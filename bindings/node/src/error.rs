//! The one conversion point from core errors to JavaScript `Error`s.
//!
//! Every error carries the stable code of the core [`ErrorKind`] as `err.code` (a napi custom
//! status), the core message followed by one `Caused by: …` line per source, and the same
//! chain as nested `err.cause` errors. Panics caught at the boundary get the code `PANIC`.

use std::error::Error as _;

use napi::bindgen_prelude::*;
#[cfg(feature = "test-hooks")]
use napi_derive::napi;
use stan_client::{Error as CoreError, ErrorKind};

/// The code of errors raised for a Rust panic caught at the boundary.
pub(crate) const PANIC_CODE: &str = "PANIC";

/// A napi custom status: the JavaScript `err.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// A napi error whose status is a stable error code.
pub(crate) type NodeError = napi::Error<Code>;

/// The `err.code` of a core error kind (`ErrorKind` is non-exhaustive; every kind, including
/// ones added later, has its own stable code in the core).
pub(crate) fn code_of(kind: ErrorKind) -> &'static str {
    kind.code()
}

/// Convert a core error: code, message with its `Caused by:` lines, and the cause chain.
pub(crate) fn to_node_error(err: CoreError) -> NodeError {
    let mut causes = Vec::new();
    let mut source = err.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let mut message = err.to_string();
    for c in &causes {
        message.push_str("\nCaused by: ");
        message.push_str(c);
    }
    let mut out = napi::Error::new(Code(code_of(err.kind())), message);
    // Innermost first, so each cause links to the next one down.
    let mut cause: Option<napi::Error> = None;
    for text in causes.into_iter().rev() {
        let mut e = napi::Error::new(Status::GenericFailure, text);
        if let Some(inner) = cause.take() {
            e.set_cause(inner);
        }
        cause = Some(e);
    }
    if let Some(c) = cause {
        out.set_cause(c);
    }
    out
}

/// An error raised by the binding itself for a value JavaScript passed in that cannot be
/// converted (a negative duration, an unknown start position).
pub(crate) fn invalid_argument(message: impl Into<String>) -> CoreError {
    CoreError::new(ErrorKind::InvalidArgument, message)
}

/// The error for a panic payload caught at the boundary.
pub(crate) fn panic_error(payload: &(dyn std::any::Any + Send)) -> NodeError {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    napi::Error::new(Code(PANIC_CODE), format!("rust panic: {text}"))
}

/// Build the JavaScript error object on the JS thread and wrap it so a promise rejects with
/// exactly that object (napi keeps a reference and hands it back verbatim). This is how
/// asynchronous functions keep the custom `code`: napi's own promise path only knows
/// [`Status`] codes.
pub(crate) fn rejection(env: &Env, err: NodeError) -> napi::Error {
    let value = JsError::from(err).into_unknown(*env);
    napi::Error::from(value)
}

/// Test helper (feature `test-hooks`): the code of every core error kind, in `ErrorKind::ALL`
/// order.
#[cfg(feature = "test-hooks")]
#[napi]
pub fn error_kind_codes() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| code_of(*k)).collect()
}

#[cfg(any(test, feature = "test-hooks"))]
fn sample_error(code: &str, message: &str) -> std::result::Result<CoreError, NodeError> {
    let kind = ErrorKind::ALL
        .iter()
        .copied()
        .find(|k| k.code() == code)
        .ok_or_else(|| to_node_error(invalid_argument(format!("unknown error code {code:?}"))))?;
    let root = std::io::Error::other("root cause");
    let middle = CoreError::with_source(ErrorKind::Transport, "underlying cause", root);
    Ok(CoreError::with_source(kind, message, middle))
}

/// Test helper (feature `test-hooks`): throws (synchronously) the error the binding produces
/// for a core error of kind `code` with `message` and a two-level source chain.
#[cfg(feature = "test-hooks")]
#[napi]
pub fn throw_error_for_code(code: String, message: String) -> napi::Result<(), Code> {
    Err(to_node_error(sample_error(&code, &message)?))
}

/// Test helper (feature `test-hooks`): a promise rejected with the error the binding produces
/// for a core error of kind `code` (the asynchronous path every API call takes).
#[cfg(feature = "test-hooks")]
#[napi]
pub fn reject_error_for_code<'env>(
    env: &'env Env,
    code: String,
    message: String,
) -> napi::Result<PromiseRaw<'env, ()>> {
    crate::runtime::spawn(
        env,
        async move {
            match sample_error(&code, &message) {
                Ok(e) => Err(e),
                Err(_) => Err(invalid_argument(format!("unknown error code {code:?}"))),
            }
        },
        |_, ()| Ok(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_has_its_own_code() {
        let codes: HashSet<&str> = ErrorKind::ALL.iter().map(|k| code_of(*k)).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert!(!codes.contains(PANIC_CODE));
    }

    #[test]
    fn message_carries_the_cause_chain() {
        let e = to_node_error(sample_error("PUBLISH_ACK_TIMEOUT", "top").unwrap());
        assert_eq!(e.status.as_ref(), "PUBLISH_ACK_TIMEOUT");
        assert_eq!(
            e.reason,
            "top\nCaused by: underlying cause\nCaused by: root cause"
        );
        let cause = e.cause.as_ref().expect("cause");
        assert_eq!(cause.reason, "underlying cause");
        assert_eq!(cause.cause.as_ref().expect("root").reason, "root cause");
    }

    #[test]
    fn unknown_code_is_an_invalid_argument() {
        let e = sample_error("NOPE", "x").unwrap_err();
        assert_eq!(e.status.as_ref(), "INVALID_ARGUMENT");
    }
}

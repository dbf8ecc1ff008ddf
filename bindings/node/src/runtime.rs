//! The one decision about where core futures run: napi's built-in Tokio runtime (feature
//! `tokio_rt`), through [`spawn`], which also turns core errors and panics into rejected
//! promises with a stable `err.code`.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use napi::bindgen_prelude::*;
#[cfg(feature = "test-hooks")]
use napi_derive::napi;

use crate::error::{panic_error, rejection, to_node_error, Code};

/// The runtime the addon's futures run on, set up when the addon is loaded: a multi-thread
/// Tokio runtime with `STAN_CLIENT_WORKER_THREADS` workers (default 1). One worker owns the
/// socket, the client's tasks and the futures of every promise, so a round trip from
/// JavaScript wakes one thread on the way in and the JavaScript thread on the way out, instead
/// of handing work between two workers competing for the same cores as Node.
#[napi_derive::module_init]
fn init_runtime() {
    let workers = std::env::var("STAN_CLIENT_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("stan-client")
        .enable_all()
        .build()
    {
        create_custom_tokio_runtime(rt);
    }
}

/// Run `fut` on the runtime and return a promise of its result, converted on the JavaScript
/// thread by `convert`. A core error rejects the promise with the mapped error; a panic in
/// `fut` or in `convert` rejects it with code `PANIC` instead of unwinding into Node.
pub(crate) fn spawn<'env, T, V, F, C>(
    env: &'env Env,
    fut: F,
    convert: C,
) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    F: Future<Output = stan_client::Result<T>> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<V> + 'static,
{
    let guarded = async move { Ok(AssertUnwindSafe(fut).catch_unwind().await) };
    env.spawn_future_with_callback(guarded, move |env, outcome| match outcome {
        Ok(Ok(value)) => match std::panic::catch_unwind(AssertUnwindSafe(|| convert(env, value))) {
            Ok(converted) => converted,
            Err(payload) => Err(rejection(env, panic_error(&*payload))),
        },
        Ok(Err(err)) => Err(rejection(env, to_node_error(err))),
        Err(payload) => Err(rejection(env, panic_error(&*payload))),
    })
}

/// Run synchronous binding code that calls into the core, turning a panic into an error with
/// code `PANIC` instead of unwinding into Node.
pub(crate) fn guard<T>(f: impl FnOnce() -> napi::Result<T, Code>) -> napi::Result<T, Code> {
    std::panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(panic_error(&*payload)))
}

/// Test helper (feature `test-hooks`): a promise whose Rust future panics with `message`
/// (rejects with code `PANIC`).
#[cfg(feature = "test-hooks")]
#[napi]
pub fn panic_async_for_test<'env>(
    env: &'env Env,
    message: String,
) -> napi::Result<PromiseRaw<'env, ()>> {
    spawn(
        env,
        async move {
            if !message.is_empty() {
                panic!("{message}");
            }
            Ok(())
        },
        |_, ()| Ok(()),
    )
}

/// Test helper (feature `test-hooks`): panics synchronously with `message`, caught at the
/// boundary and thrown as an `Error` with code `PANIC` (never a crash).
#[cfg(feature = "test-hooks")]
#[napi]
pub fn panic_sync_for_test(message: String) -> napi::Result<(), Code> {
    guard(|| {
        if !message.is_empty() {
            panic!("{message}");
        }
        Ok(())
    })
}

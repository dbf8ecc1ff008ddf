//! Where core futures run: every async export is driven on Tokio.
//!
//! UniFFI polls exported futures from the foreign side; the core needs a Tokio reactor (timers,
//! sockets, `tokio::spawn`). `async_runtime = "tokio"` makes UniFFI wrap each future so that it
//! runs inside a Tokio context, and forgetting it panics with "there is no reactor running" at
//! the first call. So nothing in this crate uses `#[uniffi::export]` directly: every exported
//! item goes through [`export!`], which always adds the attribute. UniFFI refuses the attribute
//! on items without an `async fn`, so each exported impl block keeps at least one.
//!
//! Which runtime: UniFFI wraps each future in `async_compat::Compat`, which enters the caller's
//! Tokio runtime or, from a Kotlin thread, its own global one. That global runtime is
//! current-thread (one thread for every client's connection task and NATS I/O) unless
//! async-compat's `multi-thread` feature is on, so this crate turns it on (`Cargo.toml`): the
//! core's tasks then run on worker threads, one per core.
//!
//! If UniFFI drops the attribute (uniffi-rs issue #1726), this is the one place to change: spawn
//! on a runtime handle here and await the `JoinHandle` instead.

/// Export the items to UniFFI with `async_runtime = "tokio"`.
///
/// ```text
/// export! {
///     impl NativeThing {
///         /// Doc comments carry into the generated Kotlin.
///         pub async fn work(&self) -> Result<(), StanError> { Ok(()) }
///     }
/// }
/// ```
macro_rules! export {
    ($($item:item)*) => {
        $(
            #[uniffi::export(async_runtime = "tokio")]
            $item
        )*
    };
}

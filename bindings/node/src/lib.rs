//! Node.js bindings of `stan-client`: the native layer of the npm package `stan-client`.
//!
//! This crate only converts types, maps errors, adapts async and manages handle lifetimes; the
//! idiomatic TypeScript API lives in `node/src` and wraps the generated `native.js`. One file
//! per domain object, matching the core crate: `client.rs`, `publish.rs` (publishes started in
//! batches, acks reported in bursts), `subscription.rs`, `batch.rs` (received messages, a
//! batch per call), `event.rs`, `options.rs`, `error.rs`, and `runtime.rs` (where futures run;
//! panics become rejected promises).
//!
//! Every exported class is named `Native…`; the TypeScript layer never re-exports them.
//!
//! The test helpers (`errorKindCodes`, `throwErrorForCode`, `rejectErrorForCode`,
//! `panicAsyncForTest`, `panicSyncForTest`) exist only with the cargo feature `test-hooks`,
//! which also makes the connect option `pingIntervalMsForTests` work; release builds of the
//! addon have neither.
#![warn(missing_docs)]

mod batch;
mod client;
mod error;
mod event;
mod options;
mod publish;
mod runtime;
mod subscription;

pub use batch::{NativeBatch, NativeReceived};
pub use client::{connect, NativeClient};
#[cfg(feature = "test-hooks")]
pub use error::{error_kind_codes, reject_error_for_code, throw_error_for_code};
pub use event::{NativeEvent, NativeEvents};
pub use options::{NativeConnectOptions, NativeSubscribeOptions, NativeTlsOptions};
pub use publish::{NativeAckBurst, NativePublishStarted};
#[cfg(feature = "test-hooks")]
pub use runtime::{panic_async_for_test, panic_sync_for_test};
pub use subscription::NativeSubscription;

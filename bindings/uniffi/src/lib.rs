//! UniFFI bindings of `stan-client`, the native layer of the Kotlin package `io.stanrs`.
//!
//! This crate only converts types, maps errors and manages handle lifetimes; every behaviour
//! (validation, defaults, acks, timeouts, resume) lives in `stan-client`. The idiomatic Kotlin
//! API (`StanClient`, `Flow`s, option builders) wraps these `Native…` objects in
//! `kotlin/src/main/kotlin/io/stanrs`.
//!
//! One file per domain object, matching the core crate: `client.rs`, `subscription.rs`,
//! `message.rs`, `event.rs`, `options.rs`, `error.rs`, `buffer.rs` (payloads in bulk), and
//! `runtime.rs` (the one export macro that puts every async function on Tokio).
//!
//! The test helpers (`error_kind_codes`, `error_for_code`) exist only with the cargo feature
//! `test-hooks`, which also makes the connect option `ping_interval_millis_for_tests` work;
//! release builds of the library have neither.
#![warn(missing_docs)]

#[macro_use]
mod runtime;

mod buffer;
mod client;
mod error;
mod event;
mod message;
mod options;
mod subscription;

pub use buffer::NativeBuffer;
pub use client::{NativeClient, PublishOutcome};
pub use error::StanError;
#[cfg(feature = "test-hooks")]
pub use error::{error_for_code, error_kind_codes};
pub use event::{Event, LostReason, NativeEvents};
pub use message::{DeliveryBatch, NativeAcker};
pub use options::{
    ClientCertificate, ConnectConfig, NativeStartPosition, SubscribeConfig, TlsConfig,
};
pub use subscription::NativeSubscription;

uniffi::setup_scaffolding!();

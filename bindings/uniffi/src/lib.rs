//! UniFFI bindings of `stan-client`, the native layer of the Kotlin package `io.stanrs`.
//!
//! This crate only converts types, maps errors and manages handle lifetimes; every behaviour
//! (validation, defaults, acks, timeouts, resume) lives in `stan-client`. The idiomatic Kotlin
//! API (`StanClient`, `Flow`s, option builders) wraps these `Native…` objects in
//! `kotlin/src/main/kotlin/io/stanrs`.
//!
//! One file per domain object, matching the core crate: `client.rs`, `subscription.rs`,
//! `message.rs`, `event.rs`, `options.rs`, `error.rs`, and `runtime.rs` (the one export macro
//! that puts every async function on Tokio).
#![warn(missing_docs)]

#[macro_use]
mod runtime;

mod client;
mod error;
mod event;
mod message;
mod options;
mod subscription;

pub use client::{NativeClient, NativePublishAck};
pub use error::{error_for_code, error_kind_codes, StanError};
pub use event::{Event, LostReason, NativeEvents};
pub use message::{Delivery, NativeMessage};
pub use options::{
    ClientCertificate, ConnectConfig, NativeStartPosition, SubscribeConfig, TlsConfig,
};
pub use subscription::NativeSubscription;

uniffi::setup_scaffolding!();

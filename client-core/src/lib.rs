#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod connection;
pub mod error;
mod event;
mod message;
mod options;
mod subscription;

pub use client::{Client, PublishAckFuture};
pub use error::{Error, ErrorKind, Result};
pub use event::{Event, Events, LostReason};
pub use message::Message;
pub use options::{ConnectOptions, StartPosition, SubscribeOptions, TlsOptions};
pub use subscription::Subscription;

/// Connect with `options` (same as [`ConnectOptions::connect`]).
///
/// ```no_run
/// # async fn demo() -> stan_client::Result<()> {
/// let client = stan_client::connect(
///     stan_client::ConnectOptions::new("test-cluster", "me").nats_url("nats://127.0.0.1:4222"),
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn connect(options: ConnectOptions) -> Result<Client> {
    client::connect(options).await
}

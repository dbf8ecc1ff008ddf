#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod acked;
mod client;
mod command;
mod connection;
pub mod error;
mod event;
mod lock;
mod options;
mod publish_ack;
mod subscription;

pub use client::Client;
pub use error::{Error, ErrorKind, Result};
pub use event::{Event, Events, LostReason};
pub use options::{ConnectOptions, StartPosition, SubscribeOptions, TlsOptions};
pub use publish_ack::{BatchOutcomes, PublishAckFuture, PublishBatch};
pub use subscription::{Batch, Message, Subscription, SubscriptionHandle};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync_static<T: Send + Sync + 'static>() {}
    fn send_static<T: Send + 'static>() {}

    #[test]
    fn handles_cross_threads_and_ffi_boundaries() {
        send_sync_static::<Client>();
        send_sync_static::<Subscription>();
        send_sync_static::<SubscriptionHandle>();
        send_sync_static::<Message>();
        send_sync_static::<Batch>();
        send_sync_static::<Error>();
        send_sync_static::<ConnectOptions>();
        send_sync_static::<SubscribeOptions>();
        send_sync_static::<Event>();
        send_sync_static::<PublishAckFuture>();
        send_static::<PublishBatch>();
        send_static::<Events>();
    }
}

//! [`NativeClient`]: connect, publish, subscribe, events, close.

use std::sync::Arc;

use stan_client::{Client, PublishBatch};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Mutex};

use crate::buffer::{unpack_publishes, NativeBuffer};
use crate::error::StanError;
use crate::event::NativeEvents;
use crate::options::{ConnectConfig, SubscribeConfig};
use crate::subscription::NativeSubscription;

/// A connection to a NATS Streaming server (wraps the core `Client`).
///
/// Closing the Kotlin object (`close()`/`use {}`) only releases this handle; call
/// [`close_connection`](Self::close_connection) first to unregister from the server.
#[derive(uniffi::Object)]
pub struct NativeClient {
    inner: Client,
    /// The runtime the client's tasks run on (sync exports have no runtime context).
    runtime: Handle,
    /// The outcomes of every [`start_publish_batch`](Self::start_publish_batch), in one queue
    /// so that one reader receives all acks that arrived together, whatever their batch.
    outcomes_tx: mpsc::UnboundedSender<Vec<PublishOutcome>>,
    outcomes_rx: Mutex<mpsc::UnboundedReceiver<Vec<PublishOutcome>>>,
}

/// The outcome of one publish of a [`NativeClient::start_publish_batch`].
#[derive(uniffi::Record)]
pub struct PublishOutcome {
    /// The batch id given to `start_publish_batch`.
    pub batch: u64,
    /// The publish's index in its batch.
    pub index: u32,
    /// The publish guid when the server stored the message (empty on error).
    pub guid: String,
    /// `null` when the server stored the message; else the error's code
    /// (`PUBLISH_ACK_TIMEOUT`, …, as `StanException.code`).
    pub error_code: Option<String>,
    /// The error's message (empty when stored).
    pub error_message: String,
}

/// Forward the outcomes of `acks` (batch `batch`) to the client's outcome queue, in bursts.
async fn forward_outcomes(
    batch: u64,
    mut acks: PublishBatch,
    tx: mpsc::UnboundedSender<Vec<PublishOutcome>>,
) {
    while let Some(done) = acks.next_acks().await {
        let outcomes = done
            .into_iter()
            .map(|(index, result)| {
                let (guid, error_code, error_message) = match result {
                    Ok(guid) => (guid, None, String::new()),
                    Err(e) => {
                        let (code, message) = StanError::from(e).code_and_message();
                        (String::new(), Some(code), message)
                    }
                };
                PublishOutcome {
                    batch,
                    index: index as u32,
                    guid,
                    error_code,
                    error_message,
                }
            })
            .collect();
        if tx.send(outcomes).is_err() {
            return; // the client handle is gone
        }
    }
}

export! {
    impl NativeClient {
        /// Connect and register with the streaming server.
        #[uniffi::constructor]
        pub async fn connect(config: ConnectConfig) -> Result<Arc<Self>, StanError> {
            let inner = stan_client::connect(config.try_into()?).await?;
            let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
            Ok(Arc::new(NativeClient {
                inner,
                runtime: Handle::current(),
                outcomes_tx,
                outcomes_rx: Mutex::new(outcomes_rx),
            }))
        }

        /// The client ID.
        pub fn client_id(&self) -> String {
            self.inner.client_id().to_string()
        }

        /// The cluster ID.
        pub fn cluster_id(&self) -> String {
            self.inner.cluster_id().to_string()
        }

        /// True once the client is closed for good.
        pub fn is_closed(&self) -> bool {
            self.inner.is_closed()
        }

        /// Publish and wait until the server stored the message; returns the publish guid.
        pub async fn publish(&self, subject: String, data: Vec<u8>) -> Result<String, StanError> {
            Ok(self.inner.publish(&subject, data).await?)
        }

        /// [`publish`](Self::publish) with the payload in `buffer` (taken, leaving it empty):
        /// for larger payloads, which cross in one copy this way instead of byte by byte.
        pub async fn publish_buffer(
            &self,
            subject: String,
            buffer: Arc<NativeBuffer>,
        ) -> Result<String, StanError> {
            let data = buffer.take();
            Ok(self.inner.publish(&subject, data).await?)
        }

        /// Check a channel name as publishing does: an `InvalidArgument` error when it is not a
        /// valid channel name.
        pub fn check_channel(&self, subject: String) -> Result<(), StanError> {
            if stan_protocol::validate::is_valid_channel(&subject) {
                Ok(())
            } else {
                Err(stan_client::Error::new(
                    stan_client::ErrorKind::InvalidArgument,
                    format!("invalid channel name {subject:?}"),
                )
                .into())
            }
        }

        /// Publish `count` messages in call order without waiting. They are laid out in `buffer`
        /// (the publish layout of `buffer.rs`: per message the index of its channel in
        /// `channels` and its payload length, then the payloads); the call takes the buffer's
        /// bytes, leaving it empty. All channel names are checked first (on a bad one, or a
        /// layout that does not fit the buffer, nothing is published), then every message takes
        /// its place in the client's publish queue. Their outcomes, tagged with `batch` (any id
        /// the caller chooses), come from [`next_publish_outcomes`](Self::next_publish_outcomes).
        pub fn start_publish_batch(
            &self,
            batch: u64,
            channels: Vec<String>,
            count: u32,
            buffer: Arc<NativeBuffer>,
        ) -> Result<(), StanError> {
            let bytes = buffer.take();
            let messages = unpack_publishes(&bytes, count, &channels)?;
            drop(bytes);
            let acks = self.inner.start_publish_batch(messages)?;
            self.runtime
                .spawn(forward_outcomes(batch, acks, self.outcomes_tx.clone()));
            Ok(())
        }

        /// Wait until at least one publish started by
        /// [`start_publish_batch`](Self::start_publish_batch) has its outcome, then return every
        /// outcome available now (of any batch). Waits for ever while nothing is pending.
        pub async fn next_publish_outcomes(&self) -> Vec<PublishOutcome> {
            let mut rx = self.outcomes_rx.lock().await;
            let mut all = match rx.recv().await {
                Some(first) => first,
                None => return Vec::new(),
            };
            while let Ok(more) = rx.try_recv() {
                all.extend(more);
            }
            all
        }

        /// Subscribe to a channel.
        pub async fn subscribe(
            &self,
            subject: String,
            config: SubscribeConfig,
        ) -> Result<Arc<NativeSubscription>, StanError> {
            let sub = self.inner.subscribe(&subject, config.into()).await?;
            Ok(Arc::new(NativeSubscription::new(sub)))
        }

        /// Connection events from now on.
        pub fn events(&self) -> Arc<NativeEvents> {
            Arc::new(NativeEvents::new(self.inner.events()))
        }

        /// Close the connection: fail pending publishes, end every subscription, unregister
        /// from the server. Closing a closed client does nothing.
        pub async fn close_connection(&self) -> Result<(), StanError> {
            Ok(self.inner.close().await?)
        }
    }
}

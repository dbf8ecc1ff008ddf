//! [`NativeClient`]: connect, publish, subscribe, events, close.

use std::sync::Arc;

use stan_client::{Client, PublishAckFuture};
use tokio::sync::Mutex;

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
}

/// The pending acknowledgement of a [`NativeClient::publish_async`].
#[derive(uniffi::Object)]
pub struct NativePublishAck {
    guid: String,
    state: Mutex<AckState>,
}

enum AckState {
    Pending(PublishAckFuture),
    Done(Result<String, StanError>),
}

export! {
    impl NativeClient {
        /// Connect and register with the streaming server.
        #[uniffi::constructor]
        pub async fn connect(config: ConnectConfig) -> Result<Arc<Self>, StanError> {
            let inner = stan_client::connect(config.try_into()?).await?;
            Ok(Arc::new(NativeClient { inner }))
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

        /// Publish without waiting for the ack; await the returned handle for it.
        pub async fn publish_async(
            &self,
            subject: String,
            data: Vec<u8>,
        ) -> Result<Arc<NativePublishAck>, StanError> {
            let future = self.inner.publish_async(&subject, data).await?;
            Ok(Arc::new(NativePublishAck {
                guid: future.guid().to_string(),
                state: Mutex::new(AckState::Pending(future)),
            }))
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

    impl NativePublishAck {
        /// The guid of the publish (known before the ack arrives).
        pub fn guid(&self) -> String {
            self.guid.clone()
        }

        /// Wait for the ack; returns the guid. Waiting again returns the same outcome.
        pub async fn wait(&self) -> Result<String, StanError> {
            let mut state = self.state.lock().await;
            match &mut *state {
                AckState::Pending(future) => {
                    let result = future.await.map_err(StanError::from);
                    *state = AckState::Done(result.clone());
                    result
                }
                AckState::Done(result) => result.clone(),
            }
        }
    }
}

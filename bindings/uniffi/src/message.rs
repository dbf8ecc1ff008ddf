//! [`NativeMessage`]: a delivered message and its acknowledgement.

use std::time::SystemTime;

use stan_client::Message;

use crate::error::StanError;

/// A message delivered to a subscription (wraps the core `Message`).
///
/// In auto-ack mode the message is acked when the next one is requested or when this object
/// is released; in manual-ack mode call [`ack`](Self::ack).
#[derive(uniffi::Object)]
pub struct NativeMessage {
    inner: Message,
}

impl NativeMessage {
    pub(crate) fn new(inner: Message) -> Self {
        NativeMessage { inner }
    }
}

export! {
    impl NativeMessage {
        /// The channel's sequence number of the message (starts at 1).
        pub fn sequence(&self) -> u64 {
            self.inner.sequence()
        }

        /// The channel the message was published on.
        pub fn subject(&self) -> String {
            self.inner.subject().to_string()
        }

        /// The payload.
        pub fn data(&self) -> Vec<u8> {
            self.inner.data().to_vec()
        }

        /// When the server stored the message.
        pub fn timestamp(&self) -> SystemTime {
            self.inner.timestamp()
        }

        /// True when this is not the first delivery of the message to this subscription.
        pub fn redelivered(&self) -> bool {
            self.inner.redelivered()
        }

        /// How many times the server redelivered the message.
        pub fn redelivery_count(&self) -> u32 {
            self.inner.redelivery_count()
        }

        /// Acknowledge the message (manual-ack subscriptions only; acking twice is a no-op).
        pub async fn ack(&self) -> Result<(), StanError> {
            Ok(self.inner.ack().await?)
        }
    }
}

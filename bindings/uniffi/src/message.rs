//! [`Delivery`]: a delivered message as plain data plus its [`NativeMessage`] (for acks).

use std::sync::Arc;
use std::time::SystemTime;

use stan_client::Message;

use crate::error::StanError;

/// One delivered message: its fields as plain data (one crossing of the boundary per message)
/// and the message object, which acks.
#[derive(uniffi::Record)]
pub struct Delivery {
    /// The message object (ack, auto-ack bookkeeping).
    pub message: Arc<NativeMessage>,
    /// The channel's sequence number of the message (starts at 1).
    pub sequence: u64,
    /// The channel the message was published on.
    pub subject: String,
    /// The payload.
    pub data: Vec<u8>,
    /// When the server stored the message.
    pub timestamp: SystemTime,
    /// True when this is not the first delivery of the message to this subscription.
    pub redelivered: bool,
    /// How many times the server redelivered the message.
    pub redelivery_count: u32,
}

impl From<Message> for Delivery {
    fn from(m: Message) -> Self {
        Delivery {
            sequence: m.sequence(),
            subject: m.subject().to_string(),
            data: m.data().to_vec(),
            timestamp: m.timestamp(),
            redelivered: m.redelivered(),
            redelivery_count: m.redelivery_count(),
            message: Arc::new(NativeMessage { inner: m }),
        }
    }
}

/// A message delivered to a subscription (wraps the core `Message`).
///
/// In auto-ack mode the message is acked when the next one is requested, when the subscription
/// is closed, or when this object is released; in manual-ack mode call [`ack`](Self::ack).
#[derive(uniffi::Object)]
pub struct NativeMessage {
    inner: Message,
}

export! {
    impl NativeMessage {
        /// Acknowledge the message (manual-ack subscriptions only; acking twice is a no-op).
        pub async fn ack(&self) -> Result<(), StanError> {
            Ok(self.inner.ack().await?)
        }
    }
}

//! [`Delivery`] and [`DeliveryBatch`]: the messages of one batch as plain data, and
//! [`NativeAcker`], which acks them in manual-ack mode.

use std::sync::Arc;

use stan_client::{Error, ErrorKind, Message};

use crate::error::StanError;

/// One delivered message as plain data. A whole batch of them crosses the boundary in one
/// buffer; the channel is the subscription's, so it is not repeated per message.
#[derive(uniffi::Record)]
pub struct Delivery {
    /// The channel's sequence number of the message (starts at 1).
    pub sequence: u64,
    /// The payload.
    pub data: Vec<u8>,
    /// When the server stored the message, in nanoseconds since the Unix epoch.
    pub timestamp_nanos: i64,
    /// True when this is not the first delivery of the message to this subscription.
    pub redelivered: bool,
    /// How many times the server redelivered the message.
    pub redelivery_count: u32,
}

impl From<&Message> for Delivery {
    fn from(m: &Message) -> Self {
        Delivery {
            sequence: m.sequence(),
            data: m.data().to_vec(),
            timestamp_nanos: m.timestamp_nanos(),
            redelivered: m.redelivered(),
            redelivery_count: m.redelivery_count(),
        }
    }
}

/// The messages of one [`NativeSubscription::next_batch`](crate::NativeSubscription::next_batch),
/// in order.
#[derive(uniffi::Record)]
pub struct DeliveryBatch {
    /// Identifies the batch in later calls that report how many of its messages were taken.
    pub id: u64,
    /// The messages, in order.
    pub messages: Vec<Delivery>,
    /// Manual-ack subscriptions: acks messages of this batch by index. `null` in auto-ack
    /// mode.
    pub acker: Option<Arc<NativeAcker>>,
}

/// Acks the messages of one batch of a manual-ack subscription, by their index in the batch.
#[derive(uniffi::Object)]
pub struct NativeAcker {
    messages: Vec<Message>,
}

impl NativeAcker {
    pub(crate) fn new(messages: Vec<Message>) -> Self {
        NativeAcker { messages }
    }
}

export! {
    impl NativeAcker {
        /// Acknowledge the messages at `indices` of the batch, in one call (acking one twice
        /// is a no-op). Stops at the first error; the messages before it are acked.
        pub fn ack(&self, indices: Vec<u32>) -> Result<(), StanError> {
            let mut picked = Vec::with_capacity(indices.len());
            for i in indices {
                let msg = self.messages.get(i as usize).ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("no message {i} in a batch of {}", self.messages.len()),
                    )
                })?;
                picked.push(msg);
            }
            Ok(Message::ack_many(picked)?)
        }

        /// How many messages the batch holds (async only because `runtime.rs` needs one
        /// async function per exported block).
        pub async fn size(&self) -> u32 {
            self.messages.len() as u32
        }
    }
}

//! [`DeliveryBatch`]: the messages of one batch in the subscription's buffer, and
//! [`NativeAcker`], which acks them in manual-ack mode.

use std::sync::Arc;

use stan_client::{Error, ErrorKind, Message};

use crate::error::StanError;

/// The messages of one [`NativeSubscription::next_batch`](crate::NativeSubscription::next_batch),
/// in order, packed in the subscription's delivery buffer (the delivery layout of `buffer.rs`).
///
/// The subscription refills that one buffer for every batch instead of handing out a
/// [`NativeBuffer`](crate::NativeBuffer) each time (no allocation, handle or release call per
/// batch), so the bytes at `address`, and the large payloads they point to, are valid only until
/// the next `next_batch` / `try_next_batch` call on the subscription or until its handle is
/// closed: the caller reads them before either (the Kotlin `Subscription` reads under a lock that its `close()` takes).
#[derive(uniffi::Record)]
pub struct DeliveryBatch {
    /// Identifies the batch in later calls that report how many of its messages were taken.
    pub id: u64,
    /// How many messages the batch holds.
    pub count: u32,
    /// Where the batch's headers and payloads are in memory.
    pub address: u64,
    /// How many bytes the batch takes at `address` (headers and payloads).
    pub len: u64,
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
        /// Acknowledge the messages `start` (inclusive) to `end` (exclusive) of the batch, in
        /// one call (acking one twice is a no-op). Stops at the first error; the messages before
        /// it are acked.
        pub fn ack_range(&self, start: u32, end: u32) -> Result<(), StanError> {
            let picked = self
                .messages
                .get(start as usize..end as usize)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "no messages {start}..{end} in a batch of {}",
                            self.messages.len()
                        ),
                    )
                })?;
            Ok(Message::ack_many(picked)?)
        }

        /// How many messages the batch holds (async only because `runtime.rs` needs one
        /// async function per exported block).
        pub async fn size(&self) -> u32 {
            self.messages.len() as u32
        }
    }
}

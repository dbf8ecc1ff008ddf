//! [`NativeSubscription`]: a pull-based subscription (`next()` returns `null` at the end).

use futures::StreamExt;
use stan_client::{Subscription, SubscriptionHandle};
use tokio::sync::Mutex;

use crate::error::StanError;
use crate::message::Delivery;

/// A subscription (wraps the core `Subscription`).
///
/// [`next`](Self::next) hands out messages one at a time; it returns `null` once the
/// subscription ended and throws when it cannot go on. [`close_subscription`](Self::close_subscription)
/// and [`unsubscribe`](Self::unsubscribe) also end a `next()` that is waiting. Closing the Kotlin
/// object (`close()`) drops the subscription, which closes it on the server without waiting
/// (a durable is kept).
#[derive(uniffi::Object)]
pub struct NativeSubscription {
    stream: Mutex<Subscription>,
    /// Closes without the stream, ending a `next()` that is waiting.
    handle: SubscriptionHandle,
    subject: String,
    manual_acks: bool,
}

impl NativeSubscription {
    pub(crate) fn new(sub: Subscription) -> Self {
        NativeSubscription {
            subject: sub.subject().to_string(),
            manual_acks: sub.manual_acks(),
            handle: sub.handle(),
            stream: Mutex::new(sub),
        }
    }

    async fn end(&self, unsubscribe: bool) -> Result<(), StanError> {
        let result = if unsubscribe {
            self.handle.unsubscribe().await
        } else {
            self.handle.close().await
        };
        Ok(result?)
    }
}

export! {
    impl NativeSubscription {
        /// The channel this subscription reads.
        pub fn subject(&self) -> String {
            self.subject.clone()
        }

        /// True when the subscription uses manual acks.
        pub fn manual_acks(&self) -> bool {
            self.manual_acks
        }

        /// The next message; `null` when the subscription ended (closed, unsubscribed, client
        /// closed). Throws the reason when the subscription cannot go on (then ends). In auto-ack
        /// mode asking for the next message acks the previous one.
        pub async fn next(&self) -> Result<Option<Delivery>, StanError> {
            let mut stream = self.stream.lock().await;
            match stream.next().await {
                Some(Ok(msg)) => Ok(Some(msg.into())),
                Some(Err(e)) => Err(e.into()),
                None => Ok(None),
            }
        }

        /// True once the subscription is closed (closed, unsubscribed, client closed, ended).
        pub fn is_closed(&self) -> bool {
            self.handle.is_closed()
        }

        /// Close the subscription; the server keeps a durable so a later subscribe with the same
        /// durable name resumes where it stopped.
        pub async fn close_subscription(&self) -> Result<(), StanError> {
            self.end(false).await
        }

        /// Remove the subscription on the server; a durable is deleted with it.
        pub async fn unsubscribe(&self) -> Result<(), StanError> {
            self.end(true).await
        }
    }
}

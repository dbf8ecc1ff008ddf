//! Connection events: [`Event`] (plain data) and [`NativeEvents`] (pull them with `next()`).

use futures::StreamExt;
use stan_client::Events;
use tokio::sync::Mutex;

/// Why the streaming session was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum LostReason {
    /// More pings than `ping_max_out` went unanswered.
    PingsExhausted,
    /// The server no longer knows this connection (another client took the client ID, or the
    /// server dropped this client after missed heartbeats).
    Replaced,
    /// The server ended the session (restarted without this client's registration, or the
    /// NATS connection was closed for good).
    ServerClosed,
    /// A reason this version of the bindings does not know yet.
    Unknown,
}

impl From<stan_client::LostReason> for LostReason {
    fn from(r: stan_client::LostReason) -> Self {
        match r {
            stan_client::LostReason::PingsExhausted => LostReason::PingsExhausted,
            stan_client::LostReason::Replaced => LostReason::Replaced,
            stan_client::LostReason::ServerClosed => LostReason::ServerClosed,
            _ => LostReason::Unknown,
        }
    }
}

/// Something that happened to the connection.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Event {
    /// The NATS connection dropped; it reconnects by itself and the session normally survives.
    NatsDisconnected,
    /// The NATS connection is back.
    NatsReconnected,
    /// The streaming session is gone; publishes awaiting acks failed with `ConnectionLost`.
    ConnectionLost {
        /// Why.
        reason: LostReason,
        /// The error text.
        message: String,
        /// True when auto-resume is trying to re-establish the session.
        resuming: bool,
    },
    /// Auto-resume registered again and re-created every subscription it could.
    Resumed {
        /// Subscriptions that could not be re-created (their message flows ended with an
        /// error).
        failed_subscriptions: u64,
    },
    /// Auto-resume gave up.
    ResumeFailed {
        /// The reason.
        message: String,
    },
    /// The client is closed (the last event).
    Closed,
    /// An event this version of the bindings does not know yet.
    Unknown {
        /// Its debug description.
        description: String,
    },
}

impl From<stan_client::Event> for Event {
    fn from(ev: stan_client::Event) -> Self {
        use stan_client::Event as E;
        match ev {
            E::NatsDisconnected => Event::NatsDisconnected,
            E::NatsReconnected => Event::NatsReconnected,
            E::ConnectionLost {
                reason,
                message,
                resuming,
            } => Event::ConnectionLost {
                reason: reason.into(),
                message,
                resuming,
            },
            E::Resumed {
                failed_subscriptions,
            } => Event::Resumed {
                failed_subscriptions: failed_subscriptions as u64,
            },
            E::ResumeFailed { message } => Event::ResumeFailed { message },
            E::Closed => Event::Closed,
            other => Event::Unknown {
                description: format!("{other:?}"),
            },
        }
    }
}

/// The connection events emitted after this object was created; `next()` returns `null` after
/// the `Closed` event.
#[derive(uniffi::Object)]
pub struct NativeEvents {
    stream: Mutex<Events>,
}

impl NativeEvents {
    pub(crate) fn new(events: Events) -> Self {
        NativeEvents {
            stream: Mutex::new(events),
        }
    }
}

export! {
    impl NativeEvents {
        /// The next event, or `null` once the client is closed.
        pub async fn next(&self) -> Option<Event> {
            self.stream.lock().await.next().await.map(Into::into)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_convert() {
        let ev = Event::from(stan_client::Event::ConnectionLost {
            reason: stan_client::LostReason::PingsExhausted,
            message: "gone".into(),
            resuming: true,
        });
        assert_eq!(
            ev,
            Event::ConnectionLost {
                reason: LostReason::PingsExhausted,
                message: "gone".into(),
                resuming: true
            }
        );
        assert_eq!(
            Event::from(stan_client::Event::Resumed {
                failed_subscriptions: 2
            }),
            Event::Resumed {
                failed_subscriptions: 2
            }
        );
        assert_eq!(Event::from(stan_client::Event::Closed), Event::Closed);
        assert_eq!(
            LostReason::from(stan_client::LostReason::Replaced),
            LostReason::Replaced
        );
        assert_eq!(
            LostReason::from(stan_client::LostReason::ServerClosed),
            LostReason::ServerClosed
        );
    }
}

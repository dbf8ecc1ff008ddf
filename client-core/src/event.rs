//! Connection events: [`Event`], [`LostReason`] and the [`Events`] stream.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::broadcast;

/// Why the streaming session was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// More pings than `ping_max_out` went unanswered.
    PingsExhausted,
    /// The server no longer knows this connection and the NATS server is the same one: another
    /// client registered with the same client ID, or the server dropped this client after
    /// missed heartbeats (for example during a network cut).
    Replaced,
    /// The server ended the session: it restarted without this client's registration (the NATS
    /// server changed too), or the NATS connection was closed for good.
    ServerClosed,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LostReason::PingsExhausted => "pings exhausted",
            LostReason::Replaced => "replaced by another client with the same ID",
            LostReason::ServerClosed => "server closed the session",
        })
    }
}

/// Something that happened to the connection. See [`Client::events`](crate::Client::events).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The NATS connection dropped; the NATS library reconnects by itself. The streaming
    /// session normally survives this.
    NatsDisconnected,
    /// The NATS connection is back.
    NatsReconnected,
    /// The streaming session is gone. Publishes awaiting acks failed with
    /// [`ErrorKind::ConnectionLost`](crate::ErrorKind::ConnectionLost).
    ConnectionLost {
        /// Why.
        reason: LostReason,
        /// The error text (for example `stan: connection lost due to PING failure`).
        message: String,
        /// True when auto-resume is trying to re-establish the session.
        resuming: bool,
    },
    /// Auto-resume registered again and re-created every subscription it could.
    Resumed {
        /// Subscriptions that could not be re-created (their streams ended with an error).
        failed_subscriptions: usize,
    },
    /// Auto-resume gave up (for example another live process holds the client ID).
    ResumeFailed {
        /// The reason, e.g. `stan: clientID already registered`.
        message: String,
    },
    /// The client is closed: by [`Client::close`](crate::Client::close), or after a lost
    /// session that is not resumed.
    Closed,
}

/// A stream of [`Event`]s, from [`Client::events`](crate::Client::events).
///
/// Each `Events` gets every event emitted after it was created. A listener that falls more than
/// 256 events behind skips the oldest ones. The stream ends after [`Event::Closed`].
pub struct Events {
    inner: Pin<Box<dyn Stream<Item = Event> + Send>>,
}

impl Events {
    /// A stream of what `rx` receives, up to and including [`Event::Closed`]; `ended`: a
    /// stream that ends at once (the client is closed already, `Closed` will not come again).
    pub(crate) fn new(rx: broadcast::Receiver<Event>, ended: bool) -> Self {
        let s = futures::stream::unfold((rx, ended), |(mut rx, done)| async move {
            if done {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        let last = ev == Event::Closed;
                        return Some((ev, (rx, last)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Events { inner: Box::pin(s) }
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.inner.as_mut().poll_next(cx)
    }
}

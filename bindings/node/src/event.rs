//! Connection events: `NativeEvent` (plain data) and `NativeEvents` (pulled with `next()`).

use std::sync::Arc;

use futures::StreamExt;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use stan_client::{Event, LostReason};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::runtime::spawn;

/// One connection event as plain data; the TypeScript layer turns it into a tagged union.
#[napi(object)]
pub struct NativeEvent {
    /// `natsDisconnected`, `natsReconnected`, `connectionLost`, `resumed`, `resumeFailed`,
    /// `closed` (or `unknown` for a kind this binding does not know yet).
    pub kind: String,
    /// For `connectionLost`: `pingsExhausted`, `replaced`, `serverClosed` (or `unknown`).
    pub reason: Option<String>,
    /// For `connectionLost` and `resumeFailed`: the error text.
    pub message: Option<String>,
    /// For `connectionLost`: whether auto-resume is trying to re-establish the session.
    pub resuming: Option<bool>,
    /// For `resumed`: subscriptions that could not be re-created.
    pub failed_subscriptions: Option<u32>,
}

fn reason_name(reason: LostReason) -> &'static str {
    match reason {
        LostReason::PingsExhausted => "pingsExhausted",
        LostReason::Replaced => "replaced",
        LostReason::ServerClosed => "serverClosed",
        _ => "unknown",
    }
}

impl From<Event> for NativeEvent {
    fn from(ev: Event) -> Self {
        let mut out = NativeEvent {
            kind: "unknown".into(),
            reason: None,
            message: None,
            resuming: None,
            failed_subscriptions: None,
        };
        match ev {
            Event::NatsDisconnected => out.kind = "natsDisconnected".into(),
            Event::NatsReconnected => out.kind = "natsReconnected".into(),
            Event::ConnectionLost {
                reason,
                message,
                resuming,
            } => {
                out.kind = "connectionLost".into();
                out.reason = Some(reason_name(reason).into());
                out.message = Some(message);
                out.resuming = Some(resuming);
            }
            Event::Resumed {
                failed_subscriptions,
            } => {
                out.kind = "resumed".into();
                out.failed_subscriptions =
                    Some(u32::try_from(failed_subscriptions).unwrap_or(u32::MAX));
            }
            Event::ResumeFailed { message } => {
                out.kind = "resumeFailed".into();
                out.message = Some(message);
            }
            Event::Closed => out.kind = "closed".into(),
            _ => {}
        }
        out
    }
}

/// A stream of connection events: `next()` resolves to the next event or `null` at the end
/// (after `closed`, or after `close()` on this handle).
#[napi]
pub struct NativeEvents {
    stream: Arc<Mutex<stan_client::Events>>,
    closing: CancellationToken,
}

impl NativeEvents {
    pub(crate) fn new(events: stan_client::Events) -> Self {
        NativeEvents {
            stream: Arc::new(Mutex::new(events)),
            closing: CancellationToken::new(),
        }
    }
}

#[napi]
impl NativeEvents {
    /// The next event, or `null` at the end.
    #[napi]
    pub fn next<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<NativeEvent>>> {
        let stream = self.stream.clone();
        let closing = self.closing.clone();
        spawn(
            env,
            async move {
                if closing.is_cancelled() {
                    return Ok(None);
                }
                let mut stream = tokio::select! {
                    biased;
                    _ = closing.cancelled() => return Ok(None),
                    guard = stream.lock() => guard,
                };
                Ok(tokio::select! {
                    biased;
                    _ = closing.cancelled() => None,
                    ev = stream.next() => ev,
                })
            },
            |_, ev| Ok(ev.map(NativeEvent::from)),
        )
    }

    /// Stop listening: a pending `next()` resolves `null`, and so does every later one.
    #[napi]
    pub fn close(&self) {
        self.closing.cancel();
    }
}

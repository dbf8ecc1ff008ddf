//! Publishing in batches: `NativeClient.publishBatch` starts the publishes of one JavaScript
//! tick with one call, and their outcomes come back in bursts through one threadsafe function
//! per client ([`AckSink`]): one call of the JavaScript handler for every set of acks that
//! arrived together, not one promise per publish or per burst.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use stan_protocol::validate;

use crate::error::{panic_error, to_node_error, Code, NodeError, PANIC_CODE};

/// What `publishBatch` returns at once.
#[napi(object, object_from_js = false)]
pub struct NativePublishStarted {
    /// The guids of the started publishes, in order, joined by `,`.
    pub guids: String,
    /// The indices (in the call) of the publishes that were not started because their channel
    /// name is invalid; every other publish was started, in call order.
    pub invalid: Uint32Array,
}

/// Every publish outcome that reached the client since the handler last ran, in arrival
/// order: `okTokens[i]`/`ok[i]` is publish `ok[i]` of the `publishBatch` call with token
/// `okTokens[i]`, likewise for the failures and their `errors`.
#[napi(object, object_from_js = false)]
pub struct NativeAckBurst {
    /// The `publishBatch` token of each stored publish.
    pub ok_tokens: Uint32Array,
    /// The index (in its call) of each stored publish.
    pub ok: Uint32Array,
    /// The `publishBatch` token of each failed publish.
    pub failed_tokens: Uint32Array,
    /// The index (in its call) of each failed publish.
    pub failed: Uint32Array,
    /// The error of each failed publish.
    #[napi(ts_type = "Array<Error>")]
    pub errors: Vec<NodeError>,
}

/// Outcomes waiting for the JavaScript thread.
#[derive(Default)]
struct Outbox {
    ok_tokens: Vec<u32>,
    ok: Vec<u32>,
    failed_tokens: Vec<u32>,
    failed: Vec<u32>,
    errors: Vec<NodeError>,
}

/// Where the ack tasks of one client leave outcomes. At most one call of the threadsafe
/// function is queued at a time: outcomes arriving while one is queued ride along with it, so
/// the JavaScript thread wakes once per burst however the acks trickle in.
struct Mailbox {
    outbox: Mutex<Outbox>,
    /// A call of the threadsafe function is queued and has not started draining yet.
    scheduled: AtomicBool,
}

impl Mailbox {
    /// Add outcomes; `wake` the JavaScript thread unless a wake-up is already on its way.
    fn post(&self, wake: impl FnOnce(), fill: impl FnOnce(&mut Outbox)) {
        fill(&mut lock(&self.outbox));
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            wake();
        }
    }

    /// On the JavaScript thread: everything posted so far.
    fn drain(&self) -> Outbox {
        // Cleared first: an outcome posted after the swap below schedules a new call.
        self.scheduled.store(false, Ordering::Release);
        std::mem::take(&mut *lock(&self.outbox))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The JavaScript handler of ack bursts as a threadsafe function, callable from any thread
/// (its value is only a wake-up: the outcomes are in the [`Mailbox`]).
type AckSink = ThreadsafeFunction<(), (), NativeAckBurst, Status, false, true>;

/// The ack handler of one client: a threadsafe function that keeps Node's event loop alive
/// exactly while publishes await their outcome (it is created weak; the first pending publish
/// refs it, the burst that settles the last one unrefs it, both on the JavaScript thread).
pub(crate) struct AckHandler {
    sink: Arc<AckSink>,
    mailbox: Arc<Mailbox>,
    /// Publishes whose outcome has not reached JavaScript yet (only touched on the JavaScript
    /// thread: in `publishBatch` and in the threadsafe function's callback).
    pending: Arc<AtomicUsize>,
}

impl AckHandler {
    pub(crate) fn new(handler: Function<'_, NativeAckBurst, ()>) -> napi::Result<Self> {
        let pending = Arc::new(AtomicUsize::new(0));
        let raw = Arc::new(AtomicPtr::new(std::ptr::null_mut()));
        let mailbox = Arc::new(Mailbox {
            outbox: Mutex::new(Outbox::default()),
            scheduled: AtomicBool::new(false),
        });
        let (pending_cb, raw_cb, mailbox_cb) = (pending.clone(), raw.clone(), mailbox.clone());
        let sink: AckSink = handler
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(move |ctx| {
                let out = mailbox_cb.drain();
                let done = out.ok.len() + out.failed.len();
                if done > 0 && pending_cb.fetch_sub(done, Ordering::Relaxed) == done {
                    // Only fails while the environment shuts down; the outcomes go out anyway.
                    let _ = hold_open(&ctx.env, raw_cb.load(Ordering::Relaxed), false);
                }
                Ok(NativeAckBurst {
                    ok_tokens: out.ok_tokens.into(),
                    ok: out.ok.into(),
                    failed_tokens: out.failed_tokens.into(),
                    failed: out.failed.into(),
                    errors: out.errors,
                })
            })?;
        raw.store(sink.handle.get_raw(), Ordering::Relaxed);
        Ok(AckHandler {
            sink: Arc::new(sink),
            mailbox,
            pending,
        })
    }

    /// `n` more publishes await their outcome (on the JavaScript thread). Ref'ing the
    /// threadsafe function only fails while the environment shuts down, when there is no
    /// event loop left to keep alive.
    fn add_pending(&self, env: &Env, n: usize) {
        if n > 0 && self.pending.fetch_add(n, Ordering::Relaxed) == 0 {
            let _ = hold_open(env, self.sink.handle.get_raw(), true);
        }
    }
}

/// Whether the threadsafe function `raw` keeps Node's event loop alive.
fn hold_open(env: &Env, raw: napi::sys::napi_threadsafe_function, hold: bool) -> napi::Result<()> {
    if raw.is_null() {
        return Ok(());
    }
    // SAFETY: called on the JavaScript thread of the environment that created the threadsafe
    // function, which stays alive as long as an `AckSink` (held by the caller) does.
    let status = unsafe {
        if hold {
            napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
        } else {
            napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
        }
    };
    if status == napi::sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            Status::from(status),
            "could not change whether pending publishes keep Node running",
        ))
    }
}

/// The publishes of one `publishBatch` call, checked and laid out.
#[derive(Debug)]
pub(crate) struct Plan {
    /// (index in `subjects`, payload) of each publish to start, in call order.
    pub(crate) start: Vec<(usize, Bytes)>,
    /// The index in the call of each publish in `start`.
    pub(crate) started: Vec<u32>,
    /// The indices in the call of the publishes whose channel name is invalid.
    pub(crate) invalid: Vec<u32>,
}

/// Split `subjects`/`runs` (a channel and how many consecutive publishes use it) and
/// `payloads` into the publishes to start and those with an invalid channel name. Payloads are
/// copied once, into one buffer that the messages share.
pub(crate) fn plan(
    subjects: &[String],
    runs: &[u32],
    payloads: &[&[u8]],
) -> std::result::Result<Plan, String> {
    let total: usize = runs.iter().map(|&r| r as usize).sum();
    if subjects.len() != runs.len() || total != payloads.len() {
        return Err(format!(
            "publishBatch: {} channels with {} runs covering {total} publishes, {} payloads",
            subjects.len(),
            runs.len(),
            payloads.len()
        ));
    }
    let mut buf = BytesMut::with_capacity(payloads.iter().map(|p| p.len()).sum());
    for p in payloads {
        buf.extend_from_slice(p);
    }
    let all = buf.freeze();
    let mut out = Plan {
        start: Vec::with_capacity(payloads.len()),
        started: Vec::with_capacity(payloads.len()),
        invalid: Vec::new(),
    };
    let (mut i, mut offset) = (0usize, 0usize);
    for (k, (s, &run)) in subjects.iter().zip(runs).enumerate() {
        let ok = validate::is_valid_channel(s);
        for _ in 0..run {
            let end = offset + payloads[i].len();
            if ok {
                out.start.push((k, all.slice(offset..end)));
                out.started.push(i as u32);
            } else {
                out.invalid.push(i as u32);
            }
            offset = end;
            i += 1;
        }
    }
    Ok(out)
}

/// Start the publishes of `plan` on `client`, in order, and report their outcomes to `acks`
/// (a task on the runtime waits for them).
pub(crate) fn start(
    env: &Env,
    client: &stan_client::Client,
    subjects: &[String],
    plan: Plan,
    token: u32,
    acks: &AckHandler,
) -> stan_client::Result<NativePublishStarted> {
    let mut guids = String::new();
    if !plan.start.is_empty() {
        let items = plan
            .start
            .into_iter()
            .map(|(k, payload)| (subjects[k].as_str(), payload));
        let batch = client.start_publish_batch(items)?;
        guids = batch.guids().join(",");
        acks.add_pending(env, batch.guids().len());
        napi::bindgen_prelude::spawn(report(
            batch,
            plan.started,
            token,
            acks.sink.clone(),
            acks.mailbox.clone(),
        ));
    }
    Ok(NativePublishStarted {
        guids,
        invalid: plan.invalid.into(),
    })
}

/// Post every burst of outcomes of `batch` to the mailbox. A panic while waiting fails the
/// publishes not reported yet with code `PANIC` (never unwinds into the runtime).
async fn report(
    mut batch: stan_client::PublishBatch,
    started: Vec<u32>,
    token: u32,
    sink: Arc<AckSink>,
    mailbox: Arc<Mailbox>,
) {
    let mut reported = vec![false; started.len()];
    let wake = || {
        sink.call((), ThreadsafeFunctionCallMode::NonBlocking);
    };
    loop {
        match AssertUnwindSafe(batch.next_acks()).catch_unwind().await {
            Ok(Some(acks)) => mailbox.post(wake, |out| {
                for (i, outcome) in acks {
                    reported[i] = true;
                    match outcome {
                        Ok(_) => {
                            out.ok_tokens.push(token);
                            out.ok.push(started[i]);
                        }
                        Err(e) => {
                            out.failed_tokens.push(token);
                            out.failed.push(started[i]);
                            out.errors.push(to_node_error(e));
                        }
                    }
                }
            }),
            Ok(None) => return,
            Err(payload) => {
                let reason = panic_error(&*payload).reason;
                mailbox.post(wake, |out| {
                    for (i, _) in reported.iter().enumerate().filter(|(_, r)| !**r) {
                        out.failed_tokens.push(token);
                        out.failed.push(started[i]);
                        out.errors
                            .push(NodeError::new(Code(PANIC_CODE), reason.clone()));
                    }
                });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_keeps_order_and_sets_aside_invalid_channels() {
        let subjects = vec!["a".to_string(), "bad.*".to_string(), "b".to_string()];
        let payloads: Vec<&[u8]> = vec![b"1", b"22", b"333", b"4444"];
        let p = plan(&subjects, &[2, 1, 1], &payloads).unwrap();
        assert_eq!(p.started, vec![0, 1, 3]);
        assert_eq!(p.invalid, vec![2]);
        let got: Vec<(usize, &[u8])> = p.start.iter().map(|(k, b)| (*k, &b[..])).collect();
        assert_eq!(
            got,
            vec![(0, &b"1"[..]), (0, &b"22"[..]), (2, &b"4444"[..])]
        );
    }

    #[test]
    fn mailbox_wakes_once_per_drain() {
        let mailbox = Mailbox {
            outbox: Mutex::new(Outbox::default()),
            scheduled: AtomicBool::new(false),
        };
        let wakes = std::cell::Cell::new(0);
        let wake = || wakes.set(wakes.get() + 1);
        mailbox.post(wake, |o| o.ok.push(1));
        mailbox.post(wake, |o| o.ok.push(2));
        assert_eq!(wakes.get(), 1, "a wake-up is already on its way");
        assert_eq!(mailbox.drain().ok, vec![1, 2]);
        assert!(mailbox.drain().ok.is_empty());
        mailbox.post(wake, |o| o.failed.push(3));
        assert_eq!(wakes.get(), 2, "posted after a drain: wake again");
        assert_eq!(mailbox.drain().failed, vec![3]);
    }

    #[test]
    fn plan_rejects_mismatched_lengths() {
        let subjects = vec!["a".to_string()];
        assert!(plan(&subjects, &[2], &[b"x"]).is_err());
        assert!(plan(&subjects, &[1, 1], &[b"x", b"y"]).is_err());
    }
}

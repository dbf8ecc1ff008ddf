//! Running a benchmark: the publishers, subscribers and requesters, and the progress display.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use stan_client::{
    Client, ConnectOptions, PublishAckFuture, SubscribeOptions, Subscription, TlsOptions,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::{msgs_per_client, Amount, Config, Mode};
use crate::stats::{new_histogram, E2eSource, Group, LatencyHistogram, Report, Sample};

/// How progress is shown on stderr while the benchmark runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif progress bar (for a terminal).
    Bar,
    /// One plain line per second.
    Lines,
    /// Nothing.
    Off,
}

/// Messages done so far, for the progress display.
#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    received: AtomicU64,
}

/// Runs the benchmark `config` describes against its server and returns what it measured.
///
/// # Errors
/// A message when a client cannot connect or subscribe, or a publish, ack, request or
/// subscription fails.
pub async fn run(config: &Config, progress: ProgressMode) -> Result<Report, String> {
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let display = (progress != ProgressMode::Off).then(|| {
        tokio::spawn(show_progress(
            config.clone(),
            progress,
            counters.clone(),
            stop_rx,
        ))
    });
    let outcome = match config.mode {
        Mode::Streaming => run_streaming(config, &counters).await,
        Mode::CoreRequestReply => run_request_reply(config, &counters).await,
    };
    let _ = stop_tx.send(true);
    if let Some(display) = display {
        let _ = display.await;
    }
    outcome
}

fn settings(config: &Config) -> serde_json::Value {
    json!({
        "mode": match config.mode { Mode::Streaming => "streaming", Mode::CoreRequestReply => "core-request-reply" },
        "server": config.server,
        "cluster": config.cluster,
        "subject": config.subject,
        "publishers": config.publishers,
        "subscribers": config.subscribers,
        "msgs": match config.amount { Amount::Messages(n) => Some(n), Amount::Duration(_) => None },
        "duration_secs": match config.amount { Amount::Duration(d) => Some(d.as_secs_f64()), Amount::Messages(_) => None },
        "size": config.size,
        "sync": config.sync,
        "max_pub_acks": config.max_pub_acks,
        "queue_group": config.queue_group,
        "channel_per_publisher": config.channel_per_publisher,
        "ignore_old": config.ignore_old,
    })
}

/// A payload of `size` bytes; from 8 bytes on it starts with the publish time (nanoseconds since
/// the Unix epoch, little endian), which subscribers read back for the end-to-end latency.
fn payload(size: usize) -> Bytes {
    let mut buf = vec![0u8; size];
    if size >= 8 {
        buf[..8].copy_from_slice(&unix_nanos(SystemTime::now()).to_le_bytes());
    }
    Bytes::from(buf)
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn record(h: &mut LatencyHistogram, ns: u64) {
    h.saturating_record(ns.max(1));
}

/// What stops a publisher.
#[derive(Clone, Copy)]
enum Until {
    Count(u64),
    Deadline(Instant),
}

impl Until {
    fn more(self, done: u64) -> bool {
        match self {
            Until::Count(n) => done < n,
            Until::Deadline(d) => Instant::now() < d,
        }
    }
}

fn per_publisher(config: &Config, start: Instant) -> Vec<Until> {
    match config.amount {
        Amount::Messages(n) => msgs_per_client(n, config.publishers)
            .into_iter()
            .map(Until::Count)
            .collect(),
        Amount::Duration(d) => vec![Until::Deadline(start + d); config.publishers],
    }
}

fn stan_options(config: &Config, client_id: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(&config.cluster, client_id)
        .nats_url(&config.server)
        .max_pub_acks_in_flight(config.max_pub_acks);
    if let Some((u, p)) = &config.user {
        o = o.user_and_password(u, p);
    }
    if let Some(tls) = &config.tls {
        let mut t = TlsOptions::default();
        for root in &tls.roots {
            t = t.root_certificate(root);
        }
        if let Some((cert, key)) = &tls.client {
            t = t.client_certificate(cert, key);
        }
        o = o.tls(t);
    }
    o
}

async fn run_streaming(config: &Config, counters: &Arc<Counters>) -> Result<Report, String> {
    let t0 = Instant::now();
    // One target per channel (a single entry without --channel-per-publisher).
    let (target_tx, target_rx) = watch::channel(config.initial_channel_targets());
    // Per channel: the queue group's received count and its "done" signal.
    let groups: Vec<QueueShare> = (0..config.channel_count())
        .map(|_| {
            let (done_tx, done_rx) = watch::channel(false);
            (Arc::new(AtomicU64::new(0)), Arc::new(done_tx), done_rx)
        })
        .collect();
    let e2e = E2eSource::for_size(config.size);

    // Subscribers first, each subscribed before any publisher starts.
    let mut sub_clients = Vec::new();
    let mut sub_tasks: Vec<JoinHandle<Result<Sample, String>>> = Vec::new();
    for i in 0..config.subscribers {
        let id = format!("{}-sub-{i}", config.client_id);
        let client = stan_options(config, &id)
            .connect()
            .await
            .map_err(|e| format!("subscriber {id} cannot connect: {e}"))?;
        let mut opts = SubscribeOptions::new();
        if !config.ignore_old {
            opts = opts.deliver_all_available();
        }
        if let Some(q) = &config.queue_group {
            opts = opts.queue_group(q);
        }
        let channel = config.subscriber_channel(i);
        let sub = client
            .subscribe(&config.channel_name(channel), opts)
            .await
            .map_err(|e| format!("subscriber {id} cannot subscribe: {e}"))?;
        let ctx = SubContext {
            id,
            t0,
            e2e,
            target: target_rx.clone(),
            channel,
            queue: config
                .queue_group
                .is_some()
                .then(|| groups[channel].clone()),
            counters: counters.clone(),
        };
        sub_tasks.push(tokio::spawn(subscribe_loop(sub, ctx)));
        sub_clients.push(client);
    }

    // Publishers: all connected, then all started.
    let mut pub_clients = Vec::new();
    for i in 0..config.publishers {
        let id = format!("{}-pub-{i}", config.client_id);
        let client = stan_options(config, &id)
            .connect()
            .await
            .map_err(|e| format!("publisher {id} cannot connect: {e}"))?;
        pub_clients.push((id, client));
    }
    let start = Instant::now();
    let mut pub_tasks = Vec::new();
    for (i, ((id, client), until)) in pub_clients
        .iter()
        .zip(per_publisher(config, start))
        .enumerate()
    {
        let ctx = PubContext {
            id: id.clone(),
            client: client.clone(),
            subject: config.channel_name(config.publisher_channel(i)),
            size: config.size,
            sync: config.sync,
            until,
            t0,
            counters: counters.clone(),
        };
        pub_tasks.push(tokio::spawn(publish_loop(ctx)));
    }
    let mut pubs = Vec::new();
    for task in pub_tasks {
        pubs.push(
            task.await
                .map_err(|e| format!("a publisher failed: {e}"))??,
        );
    }
    if matches!(config.amount, Amount::Duration(_)) {
        let published: Vec<u64> = pubs.iter().map(|s| s.msgs).collect();
        let _ = target_tx.send(config.published_channel_targets(&published));
    }
    let mut subs = Vec::new();
    for task in sub_tasks {
        subs.push(
            task.await
                .map_err(|e| format!("a subscriber failed: {e}"))??,
        );
    }
    for (_, c) in &pub_clients {
        let _ = c.close().await;
    }
    for c in &sub_clients {
        let _ = c.close().await;
    }
    drop(target_tx);
    Ok(Report {
        name: "NATS Streaming".into(),
        run_id: nuid::next().to_string(),
        pubs: Group::new(pubs),
        subs: Group::new(subs),
        msg_size: config.size,
        e2e_source: e2e,
        pub_latency_label: "publish→ack".into(),
        settings: settings(config),
    })
}

struct PubContext {
    id: String,
    client: Client,
    subject: String,
    size: usize,
    sync: bool,
    until: Until,
    t0: Instant,
    counters: Arc<Counters>,
}

async fn publish_loop(ctx: PubContext) -> Result<Sample, String> {
    let fail = |e: stan_client::Error| format!("publisher {} failed: {e}", ctx.id);
    let start = ctx.t0.elapsed();
    let (msgs, hist) = if ctx.sync {
        let mut hist = new_histogram();
        let mut n = 0u64;
        while ctx.until.more(n) {
            let t = Instant::now();
            ctx.client
                .publish(&ctx.subject, payload(ctx.size))
                .await
                .map_err(fail)?;
            record(&mut hist, t.elapsed().as_nanos() as u64);
            n += 1;
            ctx.counters.published.fetch_add(1, Ordering::Relaxed);
        }
        (n, hist)
    } else {
        // Acks of one connection come back in publish order: after each publish, the acks
        // already in are taken from the front of the queue (timed now, within microseconds of
        // their arrival), and the rest are awaited in order at the end.
        let mut hist = new_histogram();
        let mut pending: VecDeque<(Instant, PublishAckFuture)> = VecDeque::new();
        let mut n = 0u64;
        while ctx.until.more(n) {
            let t = Instant::now();
            let ack = ctx
                .client
                .publish_async(&ctx.subject, payload(ctx.size))
                .await
                .map_err(fail)?;
            pending.push_back((t, ack));
            n += 1;
            while let Some((t, ack)) = pending.front_mut() {
                let Some(outcome) = ack.now_or_never() else {
                    break;
                };
                outcome.map_err(fail)?;
                record(&mut hist, t.elapsed().as_nanos() as u64);
                ctx.counters.published.fetch_add(1, Ordering::Relaxed);
                pending.pop_front();
            }
        }
        for (t, ack) in pending {
            ack.await.map_err(fail)?;
            record(&mut hist, t.elapsed().as_nanos() as u64);
            ctx.counters.published.fetch_add(1, Ordering::Relaxed);
        }
        (n, hist)
    };
    let end = ctx.t0.elapsed();
    let mut sample = Sample::new(ctx.id.clone(), msgs, msgs * ctx.size as u64, start, end);
    sample.latency = hist;
    Ok(sample)
}

/// A subscriber that receives nothing for this long gives up with an error instead of waiting
/// forever (for example for messages that were never published).
const STALL_LIMIT: Duration = Duration::from_secs(60);

type QueueShare = (
    Arc<AtomicU64>,
    Arc<watch::Sender<bool>>,
    watch::Receiver<bool>,
);

struct SubContext {
    id: String,
    t0: Instant,
    e2e: E2eSource,
    /// How many messages to wait for, per channel (`u64::MAX` until the publishers of a timed
    /// run are done).
    target: watch::Receiver<Vec<u64>>,
    /// The index of this subscriber's channel in `target`.
    channel: usize,
    /// For queue members: the received count and "done" signal of the channel's group.
    queue: Option<QueueShare>,
    counters: Arc<Counters>,
}

impl SubContext {
    /// The number of messages this subscriber's channel is to deliver.
    fn target(&self) -> u64 {
        self.target.borrow()[self.channel]
    }

    fn done(&self, received: u64) -> bool {
        let target = self.target();
        match &self.queue {
            Some((total, _, _)) => total.load(Ordering::Acquire) >= target,
            None => received >= target,
        }
    }
}

async fn subscribe_loop(mut sub: Subscription, mut ctx: SubContext) -> Result<Sample, String> {
    let mut hist = new_histogram();
    let mut received = 0u64;
    let mut bytes = 0u64;
    let mut first: Option<Duration> = None;
    let mut last = Duration::ZERO;
    let mut group_done = ctx.queue.as_ref().map(|(_, _, rx)| rx.clone());
    while !ctx.done(received) {
        let batch = tokio::select! {
            b = sub.next_batch(1024) => b,
            _ = ctx.target.changed() => continue,
            _ = wait_true(&mut group_done) => continue,
            _ = tokio::time::sleep(STALL_LIMIT) => {
                let target = ctx.target();
                let expected = if target == u64::MAX { "?".to_string() } else { target.to_string() };
                return Err(format!(
                    "subscriber {}: no message for {} s after {received} of {expected}",
                    ctx.id,
                    STALL_LIMIT.as_secs()
                ));
            }
        };
        let batch = match batch {
            Some(Ok(b)) => b,
            Some(Err(e)) => return Err(format!("subscriber {} failed: {e}", ctx.id)),
            None => return Err(format!("subscriber {}: the subscription ended", ctx.id)),
        };
        let now = SystemTime::now();
        let at = ctx.t0.elapsed();
        first.get_or_insert(at);
        last = at;
        let mut n = 0u64;
        for msg in batch {
            let sent = match ctx.e2e {
                E2eSource::Payload if msg.data().len() >= 8 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&msg.data()[..8]);
                    u64::from_le_bytes(b)
                }
                _ => msg.timestamp_nanos().max(0) as u64,
            };
            record(&mut hist, unix_nanos(now).saturating_sub(sent));
            bytes += msg.data().len() as u64;
            n += 1;
        }
        received += n;
        ctx.counters.received.fetch_add(n, Ordering::Relaxed);
        if let Some((total, done, _)) = &ctx.queue {
            let t = total.fetch_add(n, Ordering::AcqRel) + n;
            if t >= ctx.target() {
                let _ = done.send(true);
            }
        }
    }
    let _ = sub.close().await;
    let start = first.unwrap_or(last);
    let mut sample = Sample::new(ctx.id, received, bytes, start, last);
    sample.latency = hist;
    Ok(sample)
}

/// Resolves once the flag is true; never for `None`.
async fn wait_true(rx: &mut Option<watch::Receiver<bool>>) {
    match rx {
        Some(rx) => {
            if rx.wait_for(|v| *v).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn nats_options(config: &Config) -> async_nats::ConnectOptions {
    let mut o = async_nats::ConnectOptions::new().name("stan-bench");
    if let Some((u, p)) = &config.user {
        o = o.user_and_password(u.clone(), p.clone());
    }
    if let Some(tls) = &config.tls {
        for root in &tls.roots {
            o = o.add_root_certificates(root.clone());
        }
        if let Some((cert, key)) = &tls.client {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
    }
    o
}

async fn run_request_reply(config: &Config, counters: &Arc<Counters>) -> Result<Report, String> {
    let t0 = Instant::now();
    let responder = nats_options(config)
        .connect(config.server.as_str())
        .await
        .map_err(|e| format!("the responder cannot connect: {e}"))?;
    let mut sub = responder
        .subscribe(config.subject.clone())
        .await
        .map_err(|e| format!("the responder cannot subscribe: {e}"))?;
    let replier = responder.clone();
    let serve = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                if replier.publish(reply, msg.payload).await.is_err() {
                    break;
                }
            }
        }
    });
    // A round trip through the responder itself: its subscription is now known to the server.
    responder
        .request(config.subject.clone(), Bytes::new())
        .await
        .map_err(|e| format!("the responder does not answer: {e}"))?;

    let mut requesters = Vec::new();
    for i in 0..config.publishers {
        let nc = nats_options(config)
            .connect(config.server.as_str())
            .await
            .map_err(|e| format!("requester {i} cannot connect: {e}"))?;
        requesters.push(nc);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (nc, until)) in requesters
        .iter()
        .zip(per_publisher(config, start))
        .enumerate()
    {
        let nc = nc.clone();
        let subject = config.subject.clone();
        let size = config.size;
        let counters = counters.clone();
        let id = format!("{}-req-{i}", config.client_id);
        tasks.push(tokio::spawn(async move {
            let begin = t0.elapsed();
            let mut hist = new_histogram();
            let mut n = 0u64;
            while until.more(n) {
                let t = Instant::now();
                nc.request(subject.clone(), payload(size))
                    .await
                    .map_err(|e| format!("requester {id} failed: {e}"))?;
                record(&mut hist, t.elapsed().as_nanos() as u64);
                n += 1;
                counters.published.fetch_add(1, Ordering::Relaxed);
            }
            let mut s = Sample::new(id, n, n * size as u64, begin, t0.elapsed());
            s.latency = hist;
            Ok::<Sample, String>(s)
        }));
    }
    let mut pubs = Vec::new();
    for task in tasks {
        pubs.push(
            task.await
                .map_err(|e| format!("a requester failed: {e}"))??,
        );
    }
    serve.abort();
    Ok(Report {
        name: "Core NATS request/reply".into(),
        run_id: nuid::next().to_string(),
        pubs: Group::new(pubs),
        subs: Group::default(),
        msg_size: config.size,
        e2e_source: E2eSource::for_size(config.size),
        pub_latency_label: "request→reply".into(),
        settings: settings(config),
    })
}

async fn show_progress(
    config: Config,
    mode: ProgressMode,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let (len, by_time) = match config.amount {
        Amount::Messages(n) if config.publishers > 0 => (n, false),
        Amount::Messages(n) => (n.saturating_mul(config.subscribers as u64), false),
        Amount::Duration(d) => (d.as_millis() as u64, true),
    };
    let bar = (mode == ProgressMode::Bar).then(|| {
        let bar = ProgressBar::new(len);
        let template = if by_time {
            "{elapsed_precise} [{wide_bar}] {msg}"
        } else {
            "{elapsed_precise} [{wide_bar}] {pos}/{len} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let tick = if bar.is_some() {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(1)
    };
    let mut interval = tokio::time::interval(tick);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|v| *v) => break,
        }
        let published = counters.published.load(Ordering::Relaxed);
        let received = counters.received.load(Ordering::Relaxed);
        let pos = if by_time {
            started.elapsed().as_millis() as u64
        } else if config.publishers > 0 {
            published
        } else {
            received
        };
        let verb = if config.mode == Mode::CoreRequestReply {
            "requests"
        } else {
            "published"
        };
        let msg = format!("{published} {verb}, {received} received");
        match &bar {
            Some(bar) => {
                bar.set_position(pos.min(len));
                bar.set_message(msg);
            }
            None => eprintln!("stan-bench: {:.1}s {msg}", started.elapsed().as_secs_f64()),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_the_publish_time_from_eight_bytes_on() {
        let before = unix_nanos(SystemTime::now());
        let p = payload(16);
        let after = unix_nanos(SystemTime::now());
        assert_eq!(p.len(), 16);
        let stamp = u64::from_le_bytes(p[..8].try_into().unwrap());
        assert!(before <= stamp && stamp <= after);
        assert!(p[8..].iter().all(|&b| b == 0));
        assert_eq!(payload(4).as_ref(), &[0, 0, 0, 0]);
        assert!(payload(0).is_empty());
    }

    #[test]
    fn counts_and_deadlines_stop_publishers() {
        assert!(Until::Count(2).more(1));
        assert!(!Until::Count(2).more(2));
        assert!(!Until::Deadline(Instant::now()).more(0));
        assert!(Until::Deadline(Instant::now() + Duration::from_secs(60)).more(1_000_000));
    }
}

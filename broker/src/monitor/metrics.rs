//! `/metrics`: the engine state in the Prometheus (OpenMetrics) text format.
//!
//! Almost everything is read at scrape time from the same [`Snapshot`] that
//! `/streaming/channelsz` and `/streaming/serverz` use, so the hot paths carry no extra cost.
//! The two latency histograms are the exception: [`PUBLISH_ACK_LATENCY`] (publish batch path
//! of the engine) and [`FSYNC_LATENCY`] (FILE store) are recorded with relaxed atomics, no
//! lock, as the events happen. They are process-wide: several brokers started in one process
//! (tests) share them.
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `stan_channel_in_msgs_total`, `stan_channel_in_bytes_total` | counter | `channel` |
//! | `stan_channel_out_msgs_total`, `stan_channel_out_bytes_total` | counter | `channel` |
//! | `stan_channel_redeliveries_total` | counter | `channel` |
//! | `stan_channel_msgs`, `stan_channel_bytes` (stored) | gauge | `channel` |
//! | `stan_channel_subscriptions`, `stan_channel_pending_msgs` | gauge | `channel` |
//! | `stan_in_msgs_total`, `stan_in_bytes_total`, `stan_out_msgs_total`, `stan_out_bytes_total` | counter | |
//! | `stan_redeliveries_total` | counter | |
//! | `stan_foreign_requests_total` (refused by client isolation) | counter | |
//! | `stan_clients`, `stan_channels`, `stan_subscriptions`, `stan_pending_msgs` | gauge | |
//! | `stan_store_msgs`, `stan_store_bytes` | gauge | |
//! | `stan_slow_consumers` (subscriptions with pending ≥ max in flight) | gauge | |
//! | `stan_publish_ack_latency_seconds` | histogram | |
//! | `stan_store_fsync_latency_seconds` | histogram | |

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::snapshot::Snapshot;

/// The `Content-Type` of a `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the latency histogram buckets, `+Inf` excluded.
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A latency histogram with fixed [`BUCKETS`], recorded with atomics only.
pub struct LatencyHistogram {
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        LatencyHistogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn read(&self) -> HistogramValues {
        let buckets = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect::<Vec<_>>();
        HistogramValues {
            // The count is the sum of the buckets read, so the exposition is consistent
            // even while observations come in.
            count: buckets.iter().map(|(_, n)| n).sum(),
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            buckets,
        }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

/// Time from the engine taking a PubMsg to sending its PubAck (after the batch's store flush).
pub static PUBLISH_ACK_LATENCY: LatencyHistogram = LatencyHistogram::new();

/// Duration of each sync (`fsync`/`fdatasync`) of the FILE store.
pub static FSYNC_LATENCY: LatencyHistogram = LatencyHistogram::new();

/// The values of a histogram at scrape time.
#[derive(Debug)]
struct HistogramValues {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for HistogramValues {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

type Labels = Vec<(String, String)>;

fn channel_label(name: &str) -> Labels {
    vec![("channel".to_string(), name.to_string())]
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

fn gauge(v: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    g
}

/// Per-channel families, filled from the snapshot.
#[derive(Default)]
struct ChannelFamilies {
    in_msgs: Family<Labels, Counter>,
    in_bytes: Family<Labels, Counter>,
    out_msgs: Family<Labels, Counter>,
    out_bytes: Family<Labels, Counter>,
    redeliveries: Family<Labels, Counter>,
    msgs: Family<Labels, Gauge>,
    bytes: Family<Labels, Gauge>,
    subs: Family<Labels, Gauge>,
    pending: Family<Labels, Gauge>,
}

/// The `/metrics` body for `snap` (OpenMetrics text, ending with `# EOF`).
pub fn render(snap: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("stan");
    let fam = ChannelFamilies::default();
    let (mut store_msgs, mut store_bytes, mut subs, mut pending, mut slow) = (0, 0, 0, 0, 0);
    for ch in &snap.channels {
        let l = channel_label(&ch.name);
        let c = &ch.counters;
        fam.in_msgs.get_or_create(&l).inc_by(c.in_msgs);
        fam.in_bytes.get_or_create(&l).inc_by(c.in_bytes);
        fam.out_msgs.get_or_create(&l).inc_by(c.out_msgs);
        fam.out_bytes.get_or_create(&l).inc_by(c.out_bytes);
        fam.redeliveries.get_or_create(&l).inc_by(c.redeliveries);
        fam.msgs.get_or_create(&l).set(ch.msgs as i64);
        fam.bytes.get_or_create(&l).set(ch.bytes as i64);
        let active = ch.subs.iter().filter(|s| !s.is_offline).count() as u64;
        let ch_pending: u64 = ch.subs.iter().map(|s| s.pending_count as u64).sum();
        fam.subs.get_or_create(&l).set(active as i64);
        fam.pending.get_or_create(&l).set(ch_pending as i64);
        store_msgs += ch.msgs;
        store_bytes += ch.bytes;
        subs += active;
        pending += ch_pending;
        slow += ch
            .subs
            .iter()
            .filter(|s| !s.is_offline && s.is_stalled)
            .count() as u64;
    }
    reg.register(
        "channel_in_msgs",
        "Messages published to the channel",
        fam.in_msgs,
    );
    reg.register(
        "channel_in_bytes",
        "Payload bytes published to the channel",
        fam.in_bytes,
    );
    reg.register(
        "channel_out_msgs",
        "Messages delivered from the channel (redeliveries included)",
        fam.out_msgs,
    );
    reg.register(
        "channel_out_bytes",
        "Bytes delivered from the channel",
        fam.out_bytes,
    );
    reg.register(
        "channel_redeliveries",
        "Messages redelivered from the channel",
        fam.redeliveries,
    );
    reg.register("channel_msgs", "Messages stored in the channel", fam.msgs);
    reg.register("channel_bytes", "Bytes stored in the channel", fam.bytes);
    reg.register(
        "channel_subscriptions",
        "Active subscriptions of the channel",
        fam.subs,
    );
    reg.register(
        "channel_pending_msgs",
        "Delivered, unacknowledged messages of the channel's subscriptions",
        fam.pending,
    );
    reg.register("in_msgs", "Messages published", counter(snap.in_msgs));
    reg.register(
        "in_bytes",
        "Payload bytes published",
        counter(snap.in_bytes),
    );
    reg.register(
        "out_msgs",
        "Messages delivered (redeliveries included)",
        counter(snap.out_msgs),
    );
    reg.register("out_bytes", "Bytes delivered", counter(snap.out_bytes));
    reg.register(
        "redeliveries",
        "Messages redelivered",
        counter(snap.redeliveries),
    );
    reg.register(
        "foreign_requests",
        "Requests refused and acks dropped by client isolation",
        counter(snap.foreign_requests),
    );
    reg.register(
        "clients",
        "Registered clients",
        gauge(snap.clients.len() as u64),
    );
    reg.register("channels", "Channels", gauge(snap.channels.len() as u64));
    reg.register("subscriptions", "Active subscriptions", gauge(subs));
    reg.register(
        "pending_msgs",
        "Delivered, unacknowledged messages",
        gauge(pending),
    );
    reg.register("store_msgs", "Messages in the store", gauge(store_msgs));
    reg.register("store_bytes", "Bytes in the store", gauge(store_bytes));
    reg.register(
        "slow_consumers",
        "Subscriptions with as many unacknowledged messages as their max in flight",
        gauge(slow),
    );
    reg.register_with_unit(
        "publish_ack_latency",
        "Time from receiving a PubMsg to sending its PubAck",
        Unit::Seconds,
        PUBLISH_ACK_LATENCY.read(),
    );
    reg.register_with_unit(
        "store_fsync_latency",
        "Duration of each sync of the FILE store",
        Unit::Seconds,
        FSYNC_LATENCY.read(),
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_sum() {
        let h = LatencyHistogram::new();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let v = h.read();
        assert_eq!(v.count, 3);
        assert!((v.sum - 60.00305).abs() < 1e-9, "{}", v.sum);
        let count_at = |le: f64| v.buckets.iter().find(|(b, _)| *b == le).map(|(_, n)| *n);
        assert_eq!(count_at(0.0001), Some(1));
        assert_eq!(count_at(0.005), Some(1));
        assert_eq!(count_at(f64::INFINITY), Some(1));
        assert_eq!(v.buckets.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}

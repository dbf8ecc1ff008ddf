//! The arithmetic of a run and its rendering: per-client samples, their aggregation by role,
//! rates, latency percentiles, and the text, CSV and JSON reports.
//!
//! Rates follow the Go tool's definitions: a sample's rate is its message count divided by its
//! duration, truncated to whole messages per second; a group's duration runs from its earliest
//! start to its latest end; the Pub/Sub line counts the messages of both roles over the span of
//! the whole run.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Latency values in nanoseconds, from 1 ns to one hour, with 3 significant digits.
pub type LatencyHistogram = Histogram<u64>;

/// An empty [`LatencyHistogram`].
pub fn new_histogram() -> LatencyHistogram {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// What one client (publisher or subscriber) did.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Client id.
    pub client_id: String,
    /// Messages published (acked) or received.
    pub msgs: u64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// Start, from the start of the run.
    pub start: Duration,
    /// End, from the start of the run.
    pub end: Duration,
    /// Publish→ack latencies (publishers) or publish→receive latencies (subscribers).
    pub latency: LatencyHistogram,
}

impl Sample {
    /// A sample without latencies.
    pub fn new(
        client_id: impl Into<String>,
        msgs: u64,
        bytes: u64,
        start: Duration,
        end: Duration,
    ) -> Self {
        Sample {
            client_id: client_id.into(),
            msgs,
            bytes,
            start,
            end,
            latency: new_histogram(),
        }
    }

    /// How long the client was active.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// Messages per second, truncated (0 for an empty duration).
    pub fn rate(&self) -> u64 {
        rate(self.msgs, self.duration())
    }

    /// Payload bytes per second (0 for an empty duration).
    pub fn throughput(&self) -> f64 {
        per_second(self.bytes as f64, self.duration())
    }
}

fn per_second(amount: f64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        amount / s
    } else {
        0.0
    }
}

/// `msgs / d` in whole messages per second (0 for an empty duration).
pub fn rate(msgs: u64, d: Duration) -> u64 {
    per_second(msgs as f64, d) as u64
}

/// The samples of one role and their aggregate.
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// One sample per client, in client order.
    pub samples: Vec<Sample>,
}

impl Group {
    /// A group of these samples.
    pub fn new(samples: Vec<Sample>) -> Self {
        Group { samples }
    }

    /// Whether the group has no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Messages of all clients.
    pub fn msgs(&self) -> u64 {
        self.samples.iter().map(|s| s.msgs).sum()
    }

    /// Payload bytes of all clients.
    pub fn bytes(&self) -> u64 {
        self.samples.iter().map(|s| s.bytes).sum()
    }

    /// Earliest start.
    pub fn start(&self) -> Duration {
        self.samples
            .iter()
            .map(|s| s.start)
            .min()
            .unwrap_or_default()
    }

    /// Latest end.
    pub fn end(&self) -> Duration {
        self.samples.iter().map(|s| s.end).max().unwrap_or_default()
    }

    /// From the earliest start to the latest end.
    pub fn duration(&self) -> Duration {
        self.end().saturating_sub(self.start())
    }

    /// Aggregate messages per second.
    pub fn rate(&self) -> u64 {
        rate(self.msgs(), self.duration())
    }

    /// Aggregate payload bytes per second.
    pub fn throughput(&self) -> f64 {
        per_second(self.bytes() as f64, self.duration())
    }

    /// Min, average (truncated), max and population standard deviation of the clients' rates.
    pub fn rate_stats(&self) -> RateStats {
        let rates: Vec<u64> = self.samples.iter().map(Sample::rate).collect();
        if rates.is_empty() {
            return RateStats::default();
        }
        let avg = rates.iter().sum::<u64>() / rates.len() as u64;
        let var = rates
            .iter()
            .map(|&r| (r as f64 - avg as f64).powi(2))
            .sum::<f64>()
            / rates.len() as f64;
        RateStats {
            min: rates.iter().copied().min().unwrap_or(0),
            avg,
            max: rates.iter().copied().max().unwrap_or(0),
            stddev: var.sqrt(),
        }
    }

    /// Every client's latencies together.
    pub fn latency(&self) -> LatencyHistogram {
        let mut all = new_histogram();
        for s in &self.samples {
            all.add(&s.latency)
                .expect("histograms with the same bounds");
        }
        all
    }
}

/// Spread of the per-client rates of a [`Group`], in msgs/s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateStats {
    /// Lowest client rate.
    pub min: u64,
    /// Mean client rate (truncated).
    pub avg: u64,
    /// Highest client rate.
    pub max: u64,
    /// Population standard deviation of the client rates.
    pub stddev: f64,
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
}

impl LatencySummary {
    /// The percentiles of a histogram of nanoseconds, in µs (all 0 when it is empty).
    pub fn of(h: &LatencyHistogram) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        LatencySummary {
            count: h.len(),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "p50": round3(self.p50),
            "p90": round3(self.p90),
            "p99": round3(self.p99),
            "p99_9": round3(self.p999),
            "max": round3(self.max),
        })
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Where the end-to-end latency of received messages is measured from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E2eSource {
    /// The publish time the publisher wrote in the first 8 payload bytes.
    Payload,
    /// The server's timestamp of the message (payloads shorter than 8 bytes).
    ServerTimestamp,
}

impl E2eSource {
    /// For a payload size.
    pub fn for_size(size: usize) -> Self {
        if size >= 8 {
            E2eSource::Payload
        } else {
            E2eSource::ServerTimestamp
        }
    }

    fn name(self) -> &'static str {
        match self {
            E2eSource::Payload => "publish",
            E2eSource::ServerTimestamp => "server timestamp",
        }
    }
}

/// Everything a run measured, ready to render.
#[derive(Clone, Debug)]
pub struct Report {
    /// Name in the headline ("NATS Streaming" or "Core NATS request/reply").
    pub name: String,
    /// Identifier of this run (first CSV column).
    pub run_id: String,
    /// Publishers (requesters in request/reply mode).
    pub pubs: Group,
    /// Subscribers.
    pub subs: Group,
    /// Message size.
    pub msg_size: usize,
    /// Where the subscribers' latency is measured from.
    pub e2e_source: E2eSource,
    /// The label of the publishers' latency row.
    pub pub_latency_label: String,
    /// Settings echoed in the JSON output.
    pub settings: Value,
}

impl Report {
    /// Span of the whole run: earliest start to latest end over both roles.
    pub fn duration(&self) -> Duration {
        let groups = [&self.pubs, &self.subs];
        let present = groups.iter().filter(|g| !g.is_empty());
        let start = present.clone().map(|g| g.start()).min().unwrap_or_default();
        let end = present.map(|g| g.end()).max().unwrap_or_default();
        end.saturating_sub(start)
    }

    /// Messages of both roles.
    pub fn msgs(&self) -> u64 {
        self.pubs.msgs() + self.subs.msgs()
    }

    /// Payload bytes of both roles.
    pub fn bytes(&self) -> u64 {
        self.pubs.bytes() + self.subs.bytes()
    }

    /// Messages of both roles per second of the whole run.
    pub fn rate(&self) -> u64 {
        rate(self.msgs(), self.duration())
    }

    /// Payload bytes of both roles per second of the whole run.
    pub fn throughput(&self) -> f64 {
        per_second(self.bytes() as f64, self.duration())
    }

    /// The text report: the Go tool's summary lines, then the latency table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.pubs.is_empty() && self.subs.is_empty() {
            return "No publisher or subscribers. Nothing to report.\n".into();
        }
        let mut indent = "";
        if !self.pubs.is_empty() && !self.subs.is_empty() {
            out += &format!(
                "{} Pub/Sub stats: {}\n",
                self.name,
                rate_line(self.rate(), self.throughput())
            );
            indent = " ";
        }
        for (label, group) in [("Pub", &self.pubs), ("Sub", &self.subs)] {
            if group.is_empty() {
                continue;
            }
            out += &format!(
                "{indent}{label} stats: {}\n",
                rate_line(group.rate(), group.throughput())
            );
            if group.samples.len() > 1 {
                for (i, s) in group.samples.iter().enumerate() {
                    out += &format!(
                        "{indent} [{}] {} ({} msgs)\n",
                        i + 1,
                        rate_line(s.rate(), s.throughput()),
                        s.msgs
                    );
                }
                let st = group.rate_stats();
                out += &format!(
                    "{indent} min {} | avg {} | max {} | stddev {} msgs\n",
                    comma(st.min),
                    comma(st.avg),
                    comma(st.max),
                    comma(st.stddev as u64)
                );
            }
        }
        out += "\n";
        out += &self.latency_table();
        out
    }

    /// The latency rows, one per role that has values.
    fn latency_rows(&self) -> Vec<(String, LatencySummary)> {
        let mut rows = Vec::new();
        if !self.pubs.is_empty() {
            rows.push((
                self.pub_latency_label.clone(),
                LatencySummary::of(&self.pubs.latency()),
            ));
        }
        if !self.subs.is_empty() {
            rows.push((
                format!("{}→receive", self.e2e_source.name()),
                LatencySummary::of(&self.subs.latency()),
            ));
        }
        rows
    }

    /// The latency table (µs).
    pub fn latency_table(&self) -> String {
        let mut out = format!(
            "{:<26} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
            "latency (us)", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for (label, l) in self.latency_rows() {
            out += &format!(
                "{:<26} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
                label,
                l.count,
                fmt_us(l.p50),
                fmt_us(l.p90),
                fmt_us(l.p99),
                fmt_us(l.p999),
                fmt_us(l.max)
            );
        }
        out
    }

    /// The CSV report: the Go tool's columns (subscribers first, then publishers, ids `S0`,
    /// `P0`, ...; MsgCount is the benchmark's message count), then the client's latency
    /// percentiles in µs.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,\
             P50us,P90us,P99us,P999us,MaxUs\n",
        );
        for (prefix, group) in [("S", &self.subs), ("P", &self.pubs)] {
            for (i, s) in group.samples.iter().enumerate() {
                let l = LatencySummary::of(&s.latency);
                out += &format!(
                    "{},{prefix}{i},{},{},{},{:.6},{:.6},{:.3},{:.3},{:.3},{:.3},{:.3}\n",
                    csv_field(&self.run_id),
                    s.msgs,
                    s.bytes,
                    s.rate(),
                    s.throughput(),
                    s.duration().as_secs_f64(),
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max
                );
            }
        }
        out
    }

    /// The JSON report.
    pub fn to_json(&self) -> Value {
        let group = |g: &Group, latency_label: String| {
            let st = g.rate_stats();
            json!({
                "count": g.samples.len(),
                "msgs": g.msgs(),
                "bytes": g.bytes(),
                "seconds": g.duration().as_secs_f64(),
                "msgs_per_sec": g.rate(),
                "bytes_per_sec": g.throughput(),
                "rate_min": st.min,
                "rate_avg": st.avg,
                "rate_max": st.max,
                "rate_stddev": st.stddev,
                "latency_from": latency_label,
                "latency_us": LatencySummary::of(&g.latency()).to_json(),
                "clients": g.samples.iter().map(|s| json!({
                    "client_id": s.client_id,
                    "msgs": s.msgs,
                    "bytes": s.bytes,
                    "seconds": s.duration().as_secs_f64(),
                    "msgs_per_sec": s.rate(),
                    "bytes_per_sec": s.throughput(),
                    "latency_us": LatencySummary::of(&s.latency).to_json(),
                })).collect::<Vec<_>>(),
            })
        };
        json!({
            "tool": "stan-bench",
            "name": self.name,
            "run_id": self.run_id,
            "settings": self.settings,
            "msg_size": self.msg_size,
            "total": {
                "msgs": self.msgs(),
                "bytes": self.bytes(),
                "seconds": self.duration().as_secs_f64(),
                "msgs_per_sec": self.rate(),
                "bytes_per_sec": self.throughput(),
            },
            "publishers": group(&self.pubs, self.pub_latency_label.clone()),
            "subscribers": group(&self.subs, format!("{}→receive", self.e2e_source.name())),
        })
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `"12,345 msgs/sec ~ 1.51 MB/sec"`.
pub fn rate_line(rate: u64, bytes_per_sec: f64) -> String {
    format!(
        "{} msgs/sec ~ {}/sec",
        comma(rate),
        human_bytes(bytes_per_sec)
    )
}

/// Thousands separators: `1234567` → `"1,234,567"`.
pub fn comma(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in powers of 1024 with two decimals: `"512.00 B"`, `"1.50 KB"`, `"15.07 MB"`.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["KB", "MB", "GB", "TB", "PB", "EB"];
    if bytes.is_nan() || bytes < 1024.0 {
        return format!("{:.2} B", bytes.max(0.0));
    }
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit - 1])
}

/// A latency in µs for the table: three significant figures below 10 µs, whole µs above.
pub fn fmt_us(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        comma(us.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn sample(id: &str, msgs: u64, start: f64, end: f64) -> Sample {
        Sample::new(id, msgs, msgs * 100, secs(start), secs(end))
    }

    #[test]
    fn sample_rates() {
        let s = sample("a", 1000, 1.0, 3.0);
        assert_eq!(s.rate(), 500);
        assert_eq!(s.throughput(), 50_000.0);
        let empty = sample("b", 10, 2.0, 2.0);
        assert_eq!((empty.rate(), empty.throughput()), (0, 0.0));
        // An end before the start (clock oddities) is an empty duration, not a panic.
        assert_eq!(sample("c", 10, 3.0, 2.0).rate(), 0);
    }

    #[test]
    fn groups_span_earliest_start_to_latest_end() {
        let g = Group::new(vec![
            sample("a", 1000, 0.0, 1.0),
            sample("b", 3000, 0.5, 2.0),
        ]);
        assert_eq!(g.msgs(), 4000);
        assert_eq!(g.bytes(), 400_000);
        assert_eq!(g.duration(), secs(2.0));
        assert_eq!(g.rate(), 2000);
        let st = g.rate_stats();
        assert_eq!((st.min, st.avg, st.max), (1000, 1500, 2000));
        assert!((st.stddev - 500.0).abs() < 1e-9);
        assert_eq!(Group::default().rate_stats(), RateStats::default());
    }

    #[test]
    fn the_pub_sub_line_covers_both_roles() {
        let r = report(
            vec![sample("p0", 1000, 0.0, 1.0)],
            vec![sample("s0", 1000, 0.25, 2.0)],
        );
        assert_eq!(r.duration(), secs(2.0));
        assert_eq!(r.msgs(), 2000);
        assert_eq!(r.rate(), 1000);
    }

    fn report(pubs: Vec<Sample>, subs: Vec<Sample>) -> Report {
        Report {
            name: "NATS Streaming".into(),
            run_id: "RID".into(),
            pubs: Group::new(pubs),
            subs: Group::new(subs),
            msg_size: 100,
            e2e_source: E2eSource::Payload,
            pub_latency_label: "publish→ack".into(),
            settings: json!({"np": 1}),
        }
    }

    #[test]
    fn text_report_has_the_go_tools_lines_and_the_latency_table() {
        let mut p0 = sample("p0", 1000, 0.0, 1.0);
        for us in 1..=100 {
            p0.latency.record(us * 1_000).unwrap();
        }
        let r = report(
            vec![p0, sample("p1", 500, 0.0, 1.0)],
            vec![sample("s0", 1500, 0.0, 2.0)],
        );
        let text = r.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NATS Streaming Pub/Sub stats: 1,500 msgs/sec ~ 146.48 KB/sec"
        );
        assert_eq!(lines[1], " Pub stats: 1,500 msgs/sec ~ 146.48 KB/sec");
        assert_eq!(lines[2], "  [1] 1,000 msgs/sec ~ 97.66 KB/sec (1000 msgs)");
        assert_eq!(lines[3], "  [2] 500 msgs/sec ~ 48.83 KB/sec (500 msgs)");
        assert_eq!(
            lines[4],
            "  min 500 | avg 750 | max 1,000 | stddev 250 msgs"
        );
        assert_eq!(lines[5], " Sub stats: 750 msgs/sec ~ 73.24 KB/sec");
        assert!(lines[7].starts_with("latency (us)"));
        let pub_row: Vec<&str> = lines[8].split_whitespace().collect();
        assert_eq!(
            pub_row,
            ["publish→ack", "100", "50.0", "90.0", "99.0", "100", "100"]
        );
        assert!(lines[9].starts_with("publish→receive"));
    }

    #[test]
    fn publishers_only_report_has_no_indent() {
        let text = report(vec![sample("p0", 10, 0.0, 1.0)], vec![]).to_text();
        assert!(
            text.starts_with("Pub stats: 10 msgs/sec ~ 1000.00 B/sec\n"),
            "{text}"
        );
        assert!(!text.contains("Sub stats"));
        assert!(!text.contains("receive"));
    }

    #[test]
    fn csv_lists_subscribers_then_publishers() {
        let csv = report(
            vec![sample("p0", 100, 0.0, 1.0), sample("p1", 100, 0.0, 2.0)],
            vec![sample("s0", 200, 0.0, 2.0)],
        )
        .to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with(
            "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,P50us"
        ));
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("RID,S0,200,20000,100,10000.000000,2.000000,"));
        assert!(lines[2].starts_with("RID,P0,100,10000,100,"));
        assert!(lines[3].starts_with("RID,P1,100,10000,50,"));
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn json_has_counts_rates_and_percentiles() {
        let mut s0 = sample("s0", 4, 0.0, 2.0);
        // Below 2048 ns the histogram is exact.
        for ns in [1_000, 1_500, 2_000, 2_040] {
            s0.latency.record(ns).unwrap();
        }
        let v = report(vec![sample("p0", 4, 0.0, 1.0)], vec![s0]).to_json();
        assert_eq!(v["publishers"]["msgs"], 4);
        assert_eq!(v["publishers"]["msgs_per_sec"], 4);
        assert_eq!(v["subscribers"]["msgs"], 4);
        assert_eq!(v["subscribers"]["clients"][0]["client_id"], "s0");
        assert_eq!(v["subscribers"]["latency_us"]["count"], 4);
        assert_eq!(v["subscribers"]["latency_us"]["p50"], 1.5);
        assert_eq!(v["subscribers"]["latency_us"]["max"], 2.04);
        assert_eq!(v["total"]["msgs"], 8);
        assert_eq!(v["settings"]["np"], 1);
    }

    #[test]
    fn percentiles_of_an_empty_histogram_are_zero() {
        assert_eq!(
            LatencySummary::of(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(comma(0), "0");
        assert_eq!(comma(999), "999");
        assert_eq!(comma(1000), "1,000");
        assert_eq!(comma(1_234_567), "1,234,567");
        assert_eq!(human_bytes(0.0), "0.00 B");
        assert_eq!(human_bytes(1023.0), "1023.00 B");
        assert_eq!(human_bytes(1536.0), "1.50 KB");
        assert_eq!(human_bytes(15.0 * 1024.0 * 1024.0), "15.00 MB");
        assert_eq!(human_bytes(f64::NAN), "0.00 B");
        assert_eq!(fmt_us(1.234), "1.23");
        assert_eq!(fmt_us(12.34), "12.3");
        assert_eq!(fmt_us(1234.4), "1,234");
    }
}

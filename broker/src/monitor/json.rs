//! Pure functions from a [`Snapshot`] to the JSON bodies of the monitoring endpoints.
//!
//! Field names, types and omission rules follow the official server's `/streaming/*`
//! endpoints. Times are RFC 3339 with nanoseconds (as Go prints `time.Time`), limit durations
//! are integer nanoseconds.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{ChannelLimits, StoreLimits};
use crate::snapshot::{ChannelSnapshot, ClientSnapshot, Snapshot, SubSnapshot};

/// Default and maximum page size when `limit` is absent or ≤ 0.
pub const DEFAULT_LIST_LIMIT: i64 = 1024;

/// Process-level numbers that are not part of the engine snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Open file descriptors (0 = unknown; omitted).
    pub open_fds: u64,
    /// File descriptor limit (0 = unknown; omitted).
    pub max_fds: u64,
}

/// `/streaming/serverz`.
#[derive(Clone, Debug, Serialize)]
pub struct Serverz {
    /// Cluster ID.
    pub cluster_id: String,
    /// Server ID.
    pub server_id: String,
    /// Server version.
    pub version: String,
    /// Runtime version.
    pub go: String,
    /// `STANDALONE` (no fault tolerance or clustering).
    pub state: String,
    /// Clustering role (never set here).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Clustering node ID (never set here).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    /// Time of the response.
    pub now: String,
    /// Start time.
    pub start_time: String,
    /// Uptime, e.g. `1d2h3m4s`.
    pub uptime: String,
    /// Registered clients.
    pub clients: u64,
    /// Subscriptions, including offline durables and offline durable queue groups.
    pub subscriptions: u64,
    /// Channels.
    pub channels: u64,
    /// Stored messages, all channels.
    pub total_msgs: u64,
    /// Stored bytes, all channels.
    pub total_bytes: u64,
    /// Publishes received.
    pub in_msgs: u64,
    /// Bytes received.
    pub in_bytes: u64,
    /// Deliveries sent.
    pub out_msgs: u64,
    /// Bytes sent.
    pub out_bytes: u64,
    /// Open file descriptors.
    #[serde(skip_serializing_if = "is_zero")]
    pub open_fds: u64,
    /// File descriptor limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_fds: u64,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Limits of one channel as `/streaming/storez` shows them (0 = unlimited).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ChannelLimitsz {
    /// Max messages.
    pub max_msgs: u64,
    /// Max bytes.
    pub max_bytes: u64,
    /// Max age in nanoseconds.
    pub max_age: u64,
    /// Max subscriptions.
    pub max_subscriptions: u64,
    /// Max inactivity in nanoseconds.
    pub max_inactivity: u64,
}

/// The `limits` object of `/streaming/storez`.
#[derive(Clone, Debug, Serialize)]
pub struct StoreLimitsz {
    /// Max channels.
    pub max_channels: u64,
    /// Global limits, flattened.
    #[serde(flatten)]
    pub global: ChannelLimitsz,
    /// Per-channel limits after inheritance.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, ChannelLimitsz>,
}

/// `/streaming/storez`.
#[derive(Clone, Debug, Serialize)]
pub struct Storez {
    /// Cluster ID.
    pub cluster_id: String,
    /// Server ID.
    pub server_id: String,
    /// Time of the response.
    pub now: String,
    /// `MEMORY` or `FILE`.
    #[serde(rename = "type")]
    pub store_type: String,
    /// Limits.
    pub limits: StoreLimitsz,
    /// Stored messages, all channels.
    pub total_msgs: u64,
    /// Stored bytes, all channels.
    pub total_bytes: u64,
}

/// One subscription.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Subscriptionz {
    /// Owner (for offline entries, the last owner).
    pub client_id: String,
    /// Delivery inbox.
    pub inbox: String,
    /// Ack inbox.
    pub ack_inbox: String,
    /// Durable name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub durable_name: String,
    /// Queue name (`dur:grp` for durable queue groups).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub queue_name: String,
    /// Durable.
    pub is_durable: bool,
    /// Offline durable.
    pub is_offline: bool,
    /// Max in flight.
    pub max_inflight: i64,
    /// Ack wait in seconds.
    pub ack_wait: i64,
    /// Last sent sequence.
    pub last_sent: u64,
    /// Unacknowledged messages.
    pub pending_count: u64,
    /// Stalled.
    pub is_stalled: bool,
}

/// One client.
#[derive(Clone, Debug, Serialize)]
pub struct Clientz {
    /// Client ID.
    pub id: String,
    /// Heartbeat inbox.
    pub hb_inbox: String,
    /// Active subscriptions.
    pub subs_count: u64,
    /// Heartbeats in a row the client has not answered; present only when not 0 (beyond the
    /// official server's fields: the console shows it).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub hb_failures: u32,
    /// Channel → subscriptions (only with `subs=1`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subscriptions: BTreeMap<String, Vec<Subscriptionz>>,
}

/// `/streaming/clientsz`.
#[derive(Clone, Debug, Serialize)]
pub struct Clientsz {
    /// Cluster ID.
    pub cluster_id: String,
    /// Server ID.
    pub server_id: String,
    /// Time of the response.
    pub now: String,
    /// Offset used.
    pub offset: i64,
    /// Limit used.
    pub limit: i64,
    /// Clients returned.
    pub count: u64,
    /// Clients in total.
    pub total: u64,
    /// The page of clients.
    pub clients: Vec<Clientz>,
}

/// One channel.
#[derive(Clone, Debug, Serialize)]
pub struct Channelz {
    /// Name.
    pub name: String,
    /// Stored messages.
    pub msgs: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// First sequence.
    pub first_seq: u64,
    /// Last sequence.
    pub last_seq: u64,
    /// Subscriptions, including offline durables and offline durable queue groups.
    pub subs_count: u64,
    /// Subscriptions (only with `subs=1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<Subscriptionz>,
}

/// `/streaming/channelsz`.
#[derive(Clone, Debug, Serialize)]
pub struct Channelsz {
    /// Cluster ID.
    pub cluster_id: String,
    /// Server ID.
    pub server_id: String,
    /// Time of the response.
    pub now: String,
    /// Offset used.
    pub offset: i64,
    /// Limit used.
    pub limit: i64,
    /// Entries returned.
    pub count: u64,
    /// Channels in total.
    pub total: u64,
    /// Channel names (without `subs=1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Channels (with `subs=1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channelz>,
}

/// Paging and detail options of the list endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `offset` (negative → 0).
    pub offset: i64,
    /// `limit` (≤ 0 → 1024).
    pub limit: i64,
    /// `subs=1`.
    pub subs: bool,
}

impl ListQuery {
    /// Reads `offset`, `limit` and `subs` the way Go's `strconv.Atoi` would (bad numbers are 0).
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let num = |k: &str| get(k).map_or(0, |v| atoi(&v));
        let offset = num("offset").max(0);
        let limit = match num("limit") {
            l if l <= 0 => DEFAULT_LIST_LIMIT,
            l => l,
        };
        ListQuery {
            offset,
            limit,
            subs: num("subs") == 1,
        }
    }

    fn range(&self, total: usize) -> std::ops::Range<usize> {
        let total_i = total as i64;
        let start = self.offset.min(total_i);
        let end = self.offset.saturating_add(self.limit).min(total_i);
        start as usize..end as usize
    }
}

/// Go's `strconv.Atoi`, returning 0 on error.
pub fn atoi(s: &str) -> i64 {
    s.parse::<i64>().unwrap_or(0)
}

/// Formats a time as Go's `time.Time` JSON: RFC 3339, UTC, nanoseconds without trailing zeros.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use stan_broker::monitor::json::rfc3339_nanos;
/// assert_eq!(rfc3339_nanos(UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000)), "2023-11-14T22:13:20.12Z");
/// assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00Z");
/// ```
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Uptime as the official server prints it: `7s`, `5m6s`, `1h2m3s`, `1d2h3m4s`, `1y2d3h4m5s`.
///
/// ```
/// use std::time::Duration;
/// use stan_broker::monitor::json::uptime;
/// assert_eq!(uptime(Duration::from_secs(7)), "7s");
/// assert_eq!(uptime(Duration::from_secs(93784)), "1d2h3m4s");
/// ```
pub fn uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hrs, days) = (secs / 60, secs / 3600, secs / 86_400);
    let years = days / 365;
    if years > 0 {
        format!(
            "{years}y{}d{}h{}m{}s",
            days % 365,
            hrs % 24,
            mins % 60,
            secs % 60
        )
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hrs % 24, mins % 60, secs % 60)
    } else if hrs > 0 {
        format!("{hrs}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

fn totals(snap: &Snapshot) -> (u64, u64) {
    snap.channels
        .iter()
        .fold((0, 0), |(m, b), c| (m + c.msgs, b + c.bytes))
}

/// `/streaming/serverz`.
pub fn serverz(snap: &Snapshot, now: SystemTime, process: &ProcessInfo) -> Serverz {
    let (total_msgs, total_bytes) = totals(snap);
    Serverz {
        cluster_id: snap.cluster_id.clone(),
        server_id: snap.server_id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        go: "rust".to_string(),
        state: "STANDALONE".to_string(),
        role: String::new(),
        node_id: String::new(),
        now: rfc3339_nanos(now),
        start_time: rfc3339_nanos(snap.start_time),
        uptime: uptime(
            now.duration_since(snap.start_time)
                .unwrap_or(Duration::ZERO),
        ),
        clients: snap.clients.len() as u64,
        subscriptions: snap.channels.iter().map(|c| c.subs.len() as u64).sum(),
        channels: snap.channels.len() as u64,
        total_msgs,
        total_bytes,
        in_msgs: snap.in_msgs,
        in_bytes: snap.in_bytes,
        out_msgs: snap.out_msgs,
        out_bytes: snap.out_bytes,
        open_fds: process.open_fds,
        max_fds: process.max_fds,
    }
}

fn nanos(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A [`ChannelLimits`] with every field set (unset fields count as unlimited, 0).
pub fn channel_limitsz(l: &ChannelLimits) -> ChannelLimitsz {
    ChannelLimitsz {
        max_msgs: l.max_msgs.unwrap_or(0) as u64,
        max_bytes: l.max_bytes.unwrap_or(0),
        max_age: nanos(l.max_age),
        max_subscriptions: l.max_subs.unwrap_or(0) as u64,
        max_inactivity: nanos(l.max_inactivity),
    }
}

/// `/streaming/storez`; `per_channel` holds the per-channel entries after inheritance.
pub fn storez(
    snap: &Snapshot,
    limits: &StoreLimits,
    per_channel: &BTreeMap<String, ChannelLimits>,
    now: SystemTime,
) -> Storez {
    let (total_msgs, total_bytes) = totals(snap);
    Storez {
        cluster_id: snap.cluster_id.clone(),
        server_id: snap.server_id.clone(),
        now: rfc3339_nanos(now),
        store_type: snap.store_type.to_string(),
        limits: StoreLimitsz {
            max_channels: limits.max_channels as u64,
            global: channel_limitsz(&limits.global),
            channels: per_channel
                .iter()
                .map(|(k, v)| (k.clone(), channel_limitsz(v)))
                .collect(),
        },
        total_msgs,
        total_bytes,
    }
}

/// One subscription as JSON.
pub fn subscriptionz(s: &SubSnapshot) -> Subscriptionz {
    Subscriptionz {
        client_id: s.client_id.clone(),
        inbox: s.inbox.clone(),
        ack_inbox: s.ack_inbox.clone(),
        durable_name: s.durable_name.clone(),
        queue_name: s.queue_name.clone(),
        is_durable: s.is_durable,
        is_offline: s.is_offline,
        max_inflight: i64::from(s.max_inflight),
        ack_wait: i64::from(s.ack_wait_secs),
        last_sent: s.last_sent,
        pending_count: s.pending_count as u64,
        is_stalled: s.is_stalled,
    }
}

/// One client; with `subs`, its subscriptions grouped by channel.
pub fn clientz(snap: &Snapshot, c: &ClientSnapshot, subs: bool) -> Clientz {
    let mut subscriptions: BTreeMap<String, Vec<Subscriptionz>> = BTreeMap::new();
    if subs {
        for s in &c.subs {
            let channel = snap
                .channels
                .iter()
                .find(|ch| {
                    ch.subs
                        .iter()
                        .any(|x| x.ack_inbox == s.ack_inbox && x.inbox == s.inbox)
                })
                .map(|ch| ch.name.clone())
                .unwrap_or_default();
            subscriptions
                .entry(channel)
                .or_default()
                .push(subscriptionz(s));
        }
    }
    Clientz {
        id: c.id.clone(),
        hb_inbox: c.hb_inbox.clone(),
        subs_count: c.subs.len() as u64,
        hb_failures: c.hb_failures,
        subscriptions,
    }
}

/// `/streaming/clientsz?client=<id>`; `None` if unknown.
pub fn one_client(snap: &Snapshot, id: &str, subs: bool) -> Option<Clientz> {
    snap.clients
        .iter()
        .find(|c| c.id == id)
        .map(|c| clientz(snap, c, subs))
}

/// `/streaming/clientsz`.
pub fn clientsz(snap: &Snapshot, q: &ListQuery, now: SystemTime) -> Clientsz {
    let mut sorted: Vec<&ClientSnapshot> = snap.clients.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let page: Vec<Clientz> = sorted[q.range(sorted.len())]
        .iter()
        .map(|c| clientz(snap, c, q.subs))
        .collect();
    Clientsz {
        cluster_id: snap.cluster_id.clone(),
        server_id: snap.server_id.clone(),
        now: rfc3339_nanos(now),
        offset: q.offset,
        limit: q.limit,
        count: page.len() as u64,
        total: sorted.len() as u64,
        clients: page,
    }
}

/// One channel; subscriptions only with `subs`.
pub fn channelz(c: &ChannelSnapshot, subs: bool) -> Channelz {
    Channelz {
        name: c.name.clone(),
        msgs: c.msgs,
        bytes: c.bytes,
        first_seq: c.first_seq,
        last_seq: c.last_seq,
        subs_count: c.subs.len() as u64,
        subscriptions: if subs {
            c.subs.iter().map(subscriptionz).collect()
        } else {
            Vec::new()
        },
    }
}

/// `/streaming/channelsz?channel=<name>`; `None` if unknown.
pub fn one_channel(snap: &Snapshot, name: &str, subs: bool) -> Option<Channelz> {
    snap.channels
        .iter()
        .find(|c| c.name == name)
        .map(|c| channelz(c, subs))
}

/// `/streaming/channelsz`.
pub fn channelsz(snap: &Snapshot, q: &ListQuery, now: SystemTime) -> Channelsz {
    let mut sorted: Vec<&ChannelSnapshot> = snap.channels.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let page = &sorted[q.range(sorted.len())];
    let (names, channels) = if q.subs {
        (Vec::new(), page.iter().map(|c| channelz(c, true)).collect())
    } else {
        (page.iter().map(|c| c.name.clone()).collect(), Vec::new())
    };
    Channelsz {
        cluster_id: snap.cluster_id.clone(),
        server_id: snap.server_id.clone(),
        now: rfc3339_nanos(now),
        offset: q.offset,
        limit: q.limit,
        count: page.len() as u64,
        total: sorted.len() as u64,
        names,
        channels,
    }
}

/// Pretty JSON (two-space indent, as the official server's output).
pub fn to_pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sub(client: &str, inbox: &str, offline: bool) -> SubSnapshot {
        SubSnapshot {
            client_id: client.into(),
            inbox: inbox.into(),
            ack_inbox: format!("ack.{inbox}"),
            durable_name: String::new(),
            queue_name: String::new(),
            is_durable: false,
            is_offline: offline,
            max_inflight: 1024,
            ack_wait_secs: 30,
            last_sent: 3,
            pending_count: 1,
            is_stalled: false,
        }
    }

    fn snapshot() -> Snapshot {
        let s1 = sub("c1", "in1", false);
        let mut s2 = sub("c2", "in2", false);
        s2.durable_name = "dur".into();
        s2.is_durable = true;
        let mut off = sub("c9", "in9", true);
        off.durable_name = "gone".into();
        off.is_durable = true;
        Snapshot {
            server_id: "SID".into(),
            cluster_id: "test-cluster".into(),
            start_time: UNIX_EPOCH + Duration::from_secs(1_000),
            store_type: "MEMORY",
            in_msgs: 5,
            in_bytes: 50,
            out_msgs: 6,
            out_bytes: 60,
            redeliveries: 0,
            foreign_requests: 0,
            clients: vec![
                ClientSnapshot {
                    id: "c2".into(),
                    hb_inbox: "hb2".into(),
                    hb_failures: 2,
                    subs: vec![s2.clone()],
                },
                ClientSnapshot {
                    id: "c1".into(),
                    hb_inbox: "hb1".into(),
                    hb_failures: 0,
                    subs: vec![s1.clone()],
                },
            ],
            channels: vec![
                ChannelSnapshot {
                    name: "foo".into(),
                    msgs: 2,
                    bytes: 20,
                    first_seq: 1,
                    last_seq: 2,
                    subs: vec![s1, s2, off],
                    limits: ChannelLimits::default(),
                    counters: Default::default(),
                },
                ChannelSnapshot {
                    name: "bar".into(),
                    msgs: 0,
                    bytes: 0,
                    first_seq: 4,
                    last_seq: 3,
                    subs: vec![],
                    limits: ChannelLimits::default(),
                    counters: Default::default(),
                },
            ],
        }
    }

    fn to_value<T: Serialize>(v: &T) -> Value {
        serde_json::from_str(&to_pretty(v)).unwrap()
    }

    const NOW: Duration = Duration::from_secs(1_000 + 93_784);

    #[test]
    fn serverz_fields() {
        let v = to_value(&serverz(
            &snapshot(),
            UNIX_EPOCH + NOW,
            &ProcessInfo::default(),
        ));
        assert_eq!(v["cluster_id"], "test-cluster");
        assert_eq!(v["server_id"], "SID");
        assert_eq!(v["state"], "STANDALONE");
        assert_eq!(v["uptime"], "1d2h3m4s");
        assert_eq!(v["start_time"], "1970-01-01T00:16:40Z");
        assert_eq!(v["clients"], 2);
        assert_eq!(v["subscriptions"], 3);
        assert_eq!(v["channels"], 2);
        assert_eq!(v["total_msgs"], 2);
        assert_eq!(v["total_bytes"], 20);
        assert_eq!(
            (v["in_msgs"].clone(), v["out_bytes"].clone()),
            (json!(5), json!(60))
        );
        for omitted in ["role", "node_id", "open_fds", "max_fds"] {
            assert!(v.get(omitted).is_none(), "{omitted} should be omitted");
        }
        let v = to_value(&serverz(
            &snapshot(),
            UNIX_EPOCH + NOW,
            &ProcessInfo {
                open_fds: 9,
                max_fds: 1024,
            },
        ));
        assert_eq!(
            (v["open_fds"].clone(), v["max_fds"].clone()),
            (json!(9), json!(1024))
        );
    }

    #[test]
    fn storez_limits() {
        let mut limits = StoreLimits::default();
        limits.global.max_age = Some(Duration::from_secs(1));
        let v = to_value(&storez(&snapshot(), &limits, &BTreeMap::new(), UNIX_EPOCH));
        assert_eq!(v["type"], "MEMORY");
        assert_eq!(
            v["limits"],
            json!({"max_channels": 100, "max_msgs": 1000000, "max_bytes": 1024000000u64,
                   "max_age": 1000000000u64, "max_subscriptions": 1000, "max_inactivity": 0})
        );
        let mut per = BTreeMap::new();
        per.insert(
            "foo.*".to_string(),
            ChannelLimits {
                max_subs: Some(1),
                max_msgs: Some(0),
                max_bytes: Some(2),
                max_age: Some(Duration::from_millis(3)),
                max_inactivity: Some(Duration::ZERO),
            },
        );
        let v = to_value(&storez(&snapshot(), &limits, &per, UNIX_EPOCH));
        assert_eq!(
            v["limits"]["channels"]["foo.*"],
            json!({"max_msgs": 0, "max_bytes": 2, "max_age": 3000000, "max_subscriptions": 1, "max_inactivity": 0})
        );
        assert_eq!(
            (v["total_msgs"].clone(), v["total_bytes"].clone()),
            (json!(2), json!(20))
        );
    }

    #[test]
    fn clientsz_sorted_paged_and_detailed() {
        let snap = snapshot();
        let q = ListQuery::from_params(|_| None);
        assert_eq!((q.offset, q.limit, q.subs), (0, 1024, false));
        let v = to_value(&clientsz(&snap, &q, UNIX_EPOCH));
        assert_eq!(
            (v["count"].clone(), v["total"].clone()),
            (json!(2), json!(2))
        );
        assert_eq!(v["clients"][0]["id"], "c1");
        assert_eq!(v["clients"][0]["hb_inbox"], "hb1");
        assert_eq!(v["clients"][0]["subs_count"], 1);
        assert!(v["clients"][0].get("subscriptions").is_none());
        // Unanswered heartbeats are shown only when there are some.
        assert!(v["clients"][0].get("hb_failures").is_none());
        assert_eq!(v["clients"][1]["hb_failures"], 2);

        let q = ListQuery::from_params(|k| match k {
            "offset" => Some("1".into()),
            "limit" => Some("5".into()),
            "subs" => Some("1".into()),
            _ => None,
        });
        let v = to_value(&clientsz(&snap, &q, UNIX_EPOCH));
        assert_eq!(
            (v["offset"].clone(), v["limit"].clone(), v["count"].clone()),
            (json!(1), json!(5), json!(1))
        );
        assert_eq!(v["clients"][0]["id"], "c2");
        let s = &v["clients"][0]["subscriptions"]["foo"][0];
        assert_eq!(s["durable_name"], "dur");
        assert_eq!(s["is_durable"], true);
        assert!(s.get("queue_name").is_none());
        assert_eq!(s["ack_wait"], 30);
        assert_eq!(s["max_inflight"], 1024);

        let q = ListQuery::from_params(|k| (k == "offset").then(|| "7".into()));
        let v = to_value(&clientsz(&snap, &q, UNIX_EPOCH));
        assert_eq!(
            (v["count"].clone(), v["total"].clone()),
            (json!(0), json!(2))
        );
        assert_eq!(v["clients"], json!([]));

        assert!(one_client(&snap, "nope", false).is_none());
        let c = to_value(&one_client(&snap, "c1", true).unwrap());
        assert_eq!(c["subscriptions"]["foo"][0]["inbox"], "in1");
    }

    #[test]
    fn query_parsing_like_go() {
        let q = ListQuery::from_params(|k| match k {
            "offset" => Some("-4".into()),
            "limit" => Some("0".into()),
            "subs" => Some("yes".into()),
            _ => None,
        });
        assert_eq!((q.offset, q.limit, q.subs), (0, 1024, false));
        let q = ListQuery::from_params(|k| (k == "limit").then(|| "abc".into()));
        assert_eq!(q.limit, 1024);
    }

    #[test]
    fn channelsz_names_or_channels() {
        let snap = snapshot();
        let v = to_value(&channelsz(
            &snap,
            &ListQuery::from_params(|_| None),
            UNIX_EPOCH,
        ));
        assert_eq!(v["names"], json!(["bar", "foo"]));
        assert!(v.get("channels").is_none());
        assert_eq!(v["total"], 2);

        let subs = ListQuery::from_params(|k| (k == "subs").then(|| "1".into()));
        let v = to_value(&channelsz(&snap, &subs, UNIX_EPOCH));
        assert!(v.get("names").is_none());
        let bar = &v["channels"][0];
        assert_eq!(bar["name"], "bar");
        assert_eq!(
            (bar["first_seq"].clone(), bar["last_seq"].clone()),
            (json!(4), json!(3))
        );
        assert!(bar.get("subscriptions").is_none());
        let foo = &v["channels"][1];
        assert_eq!(foo["subs_count"], 3);
        assert_eq!(foo["subscriptions"][2]["is_offline"], true);
        assert_eq!(foo["subscriptions"][2]["client_id"], "c9");

        let empty = Snapshot {
            channels: vec![],
            ..snapshot()
        };
        let v = to_value(&channelsz(
            &empty,
            &ListQuery::from_params(|_| None),
            UNIX_EPOCH,
        ));
        assert!(v.get("names").is_none() && v.get("channels").is_none());
        assert_eq!(v["count"], 0);

        let c = to_value(&one_channel(&snap, "foo", false).unwrap());
        assert_eq!(c["subs_count"], 3);
        assert!(c.get("subscriptions").is_none());
        assert!(one_channel(&snap, "zzz", true).is_none());
    }

    #[test]
    fn times_and_uptimes() {
        assert_eq!(
            rfc3339_nanos(UNIX_EPOCH + Duration::new(951_782_400, 1)),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339_nanos(UNIX_EPOCH + Duration::new(4_102_444_799, 999_999_999)),
            "2099-12-31T23:59:59.999999999Z"
        );
        assert_eq!(uptime(Duration::from_secs(0)), "0s");
        assert_eq!(uptime(Duration::from_secs(306)), "5m6s");
        assert_eq!(uptime(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(
            uptime(Duration::from_secs(365 * 86_400 + 2 * 86_400 + 5)),
            "1y2d0h0m5s"
        );
    }

    #[test]
    fn pretty_output_uses_two_spaces() {
        let text = to_pretty(&one_channel(&snapshot(), "bar", false).unwrap());
        assert!(text.starts_with("{\n  \"name\": \"bar\""), "{text}");
    }
}

//! Core-NATS monitoring bodies: `/varz`, `/connz` and `/subsz` with the field names and JSON
//! types of nats-server, so tools written for it (prometheus-nats-exporter, test harnesses)
//! read them unchanged. Pure functions from a [`CoreView`] and the query to a body.
//!
//! Fields for features the broker has no part of (cluster, gateway, leaf nodes, MQTT,
//! websocket, JetStream) are present with nats-server's empty values: `{}` objects and zeros.
//! Durations are Go's: `ping_interval` and `write_deadline` are integer nanoseconds, `rtt` a
//! Go duration string (`"1.234ms"`, `"0s"` until measured); times are RFC 3339 strings.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use stan_embedded_nats::{ConnectionInfo, SublistStats, SubscriptionInfo, VarzStats};

use super::json::{rfc3339_nanos, uptime};

/// Default (and largest sensible) page of `/connz` and `/subsz`, as in nats-server.
pub const DEFAULT_LIMIT: usize = 1024;

/// What the core endpoints report, gathered once per request.
#[derive(Clone, Debug)]
pub struct CoreView {
    /// Server id (the INFO `server_id` in embedded mode).
    pub server_id: String,
    /// Server name.
    pub server_name: String,
    /// Version advertised to clients.
    pub version: String,
    /// Client listener host.
    pub host: String,
    /// Client listener port.
    pub port: u16,
    /// Whether clients must authenticate.
    pub auth_required: bool,
    /// Whether clients must use TLS.
    pub tls_required: bool,
    /// Server PING interval.
    pub ping_interval: Duration,
    /// Unanswered PINGs before a connection is stale.
    pub ping_max: u32,
    /// Time a client has to authenticate.
    pub auth_timeout: Duration,
    /// Longest control line.
    pub max_control_line: usize,
    /// Largest payload.
    pub max_payload: usize,
    /// Outbound bytes a connection may have pending.
    pub max_pending: usize,
    /// Server-wide counters (all zero in external mode).
    pub stats: VarzStats,
    /// Open TCP connections (empty in external mode).
    pub connections: Vec<ConnectionInfo>,
    /// Subject index statistics (all zero in external mode).
    pub sublist: SublistStats,
}

impl CoreView {
    /// A view with nothing to report (external mode: the core server is someone else's),
    /// started at `start`.
    pub fn empty(start: SystemTime) -> CoreView {
        CoreView {
            server_id: String::new(),
            server_name: String::new(),
            version: String::new(),
            host: String::new(),
            port: 0,
            auth_required: false,
            tls_required: false,
            ping_interval: Duration::ZERO,
            ping_max: 0,
            auth_timeout: Duration::ZERO,
            max_control_line: 0,
            max_payload: 0,
            max_pending: 0,
            stats: VarzStats {
                start,
                in_msgs: 0,
                in_bytes: 0,
                out_msgs: 0,
                out_bytes: 0,
                slow_consumers: 0,
                total_connections: 0,
                connections: 0,
                subscriptions: 0,
            },
            connections: Vec::new(),
            sublist: SublistStats {
                num_subscriptions: 0,
                num_cache: 0,
                num_inserts: 0,
                num_removes: 0,
                num_matches: 0,
                cache_hit_rate: 0.0,
                max_fanout: 0,
                avg_fanout: 0.0,
            },
        }
    }
}

/// A Go `time.Duration` as its `String()` prints it: `0s`, `850ns`, `1.5µs`, `1.234ms`,
/// `2.5s`, `1m30s`, `1h0m0s`.
///
/// ```
/// use std::time::Duration;
/// use stan_broker::monitor::core::go_duration;
/// assert_eq!(go_duration(Duration::ZERO), "0s");
/// assert_eq!(go_duration(Duration::from_micros(1234)), "1.234ms");
/// assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
/// ```
pub fn go_duration(d: Duration) -> String {
    fn frac(whole: u128, rem: u128, digits: usize) -> String {
        if rem == 0 {
            return whole.to_string();
        }
        let f = format!("{rem:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000 {
        return format!("{n}ns");
    }
    if n < 1_000_000 {
        return format!("{}µs", frac(n / 1_000, n % 1_000, 3));
    }
    if n < 1_000_000_000 {
        return format!("{}ms", frac(n / 1_000_000, n % 1_000_000, 6));
    }
    let secs = n / 1_000_000_000;
    let sub = n % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let s = format!("{}s", frac(s, sub, 9));
    if h > 0 {
        format!("{h}h{m}m{s}")
    } else if m > 0 {
        format!("{m}m{s}")
    } else {
        s
    }
}

/// An empty JSON object (`{}`), for option groups of features the broker does not have.
#[derive(Serialize, Default, Clone, Debug)]
pub struct Empty {}

/// `slow_consumer_stats` of `/varz`.
#[derive(Serialize, Default, Clone, Debug)]
pub struct SlowConsumersStats {
    /// Client connections closed as slow consumers.
    pub clients: u64,
    /// Always 0: no routes.
    pub routes: u64,
    /// Always 0: no gateways.
    pub gateways: u64,
    /// Always 0: no leaf nodes.
    pub leafs: u64,
}

/// Process figures for `/varz`.
#[derive(Clone, Debug, Default)]
pub struct ProcessUsage {
    /// Resident memory in bytes.
    pub mem: i64,
    /// CPU use in percent (average since the process started).
    pub cpu: f64,
    /// Logical CPUs.
    pub cores: usize,
}

/// The `/varz` body, field for field as nats-server emits it.
#[derive(Serialize, Clone, Debug)]
#[allow(missing_docs)]
pub struct Varz {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: i32,
    pub go: String,
    pub host: String,
    pub port: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    pub max_connections: i64,
    /// Nanoseconds.
    pub ping_interval: i64,
    pub ping_max: u32,
    pub http_host: String,
    pub http_port: u16,
    pub http_base_path: String,
    pub https_port: u16,
    /// Seconds.
    pub auth_timeout: f64,
    pub max_control_line: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub cluster: Empty,
    pub gateway: Empty,
    pub leaf: Empty,
    pub mqtt: Empty,
    pub websocket: Empty,
    pub jetstream: Empty,
    /// Seconds.
    pub tls_timeout: f64,
    /// Nanoseconds.
    pub write_deadline: i64,
    pub start: String,
    pub now: String,
    pub uptime: String,
    pub mem: i64,
    pub cores: usize,
    pub gomaxprocs: usize,
    pub cpu: f64,
    pub connections: usize,
    pub total_connections: u64,
    pub routes: u64,
    pub remotes: u64,
    pub leafnodes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    pub subscriptions: usize,
    pub http_req_stats: BTreeMap<String, u64>,
    pub config_load_time: String,
    pub config_digest: String,
    pub slow_consumer_stats: SlowConsumersStats,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The `/varz` body. `http` is the monitoring listener's (host, port).
pub fn varz(
    view: &CoreView,
    http: (String, u16),
    process: &ProcessUsage,
    http_req_stats: BTreeMap<String, u64>,
    now: SystemTime,
) -> Varz {
    let s = &view.stats;
    Varz {
        server_id: view.server_id.clone(),
        server_name: view.server_name.clone(),
        version: view.version.clone(),
        proto: 1,
        go: "n/a".into(),
        host: view.host.clone(),
        port: view.port,
        auth_required: view.auth_required,
        tls_required: view.tls_required,
        // No connection limit is enforced.
        max_connections: 0,
        ping_interval: nanos(view.ping_interval),
        ping_max: view.ping_max,
        http_host: http.0,
        http_port: http.1,
        http_base_path: String::new(),
        https_port: 0,
        auth_timeout: view.auth_timeout.as_secs_f64(),
        max_control_line: view.max_control_line,
        max_payload: view.max_payload,
        max_pending: view.max_pending,
        cluster: Empty {},
        gateway: Empty {},
        leaf: Empty {},
        mqtt: Empty {},
        websocket: Empty {},
        jetstream: Empty {},
        tls_timeout: 0.0,
        write_deadline: 0,
        start: rfc3339_nanos(s.start),
        now: rfc3339_nanos(now),
        uptime: uptime(now.duration_since(s.start).unwrap_or_default()),
        mem: process.mem,
        cores: process.cores,
        gomaxprocs: process.cores,
        cpu: process.cpu,
        connections: s.connections,
        total_connections: s.total_connections,
        routes: 0,
        remotes: 0,
        leafnodes: 0,
        in_msgs: s.in_msgs,
        out_msgs: s.out_msgs,
        in_bytes: s.in_bytes,
        out_bytes: s.out_bytes,
        slow_consumers: s.slow_consumers,
        subscriptions: s.subscriptions,
        http_req_stats,
        config_load_time: rfc3339_nanos(s.start),
        config_digest: String::new(),
        slow_consumer_stats: SlowConsumersStats {
            clients: s.slow_consumers,
            ..Default::default()
        },
    }
}

/// A query parameter error: the `400 Bad Request` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// How `subs` asks for subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SubsDetail {
    /// Not listed.
    #[default]
    None,
    /// Subjects only (`subs=1`).
    Subjects,
    /// Full details (`subs=detail`).
    Detail,
}

/// Sort orders of `/connz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortOpt {
    /// Connection id, ascending (default).
    #[default]
    Cid,
    /// Start time, oldest first.
    Start,
    /// Subscriptions, most first.
    Subs,
    /// Pending bytes, most first.
    Pending,
    /// Messages sent to the client, most first.
    MsgsTo,
    /// Messages received from the client, most first.
    MsgsFrom,
    /// Bytes sent to the client, most first.
    BytesTo,
    /// Bytes received from the client, most first.
    BytesFrom,
    /// Last activity, most recent first.
    Last,
    /// Idle time, longest first.
    Idle,
    /// Uptime, longest first.
    Uptime,
    /// Round-trip time, longest first.
    Rtt,
    /// Stop time (closed connections only).
    Stop,
    /// Close reason (closed connections only).
    Reason,
}

impl SortOpt {
    fn parse(s: &str) -> Result<SortOpt, BadRequest> {
        Ok(match s {
            "" | "cid" => SortOpt::Cid,
            "start" => SortOpt::Start,
            "subs" => SortOpt::Subs,
            "pending" => SortOpt::Pending,
            "msgs_to" => SortOpt::MsgsTo,
            "msgs_from" => SortOpt::MsgsFrom,
            "bytes_to" => SortOpt::BytesTo,
            "bytes_from" => SortOpt::BytesFrom,
            "last" => SortOpt::Last,
            "idle" => SortOpt::Idle,
            "uptime" => SortOpt::Uptime,
            "rtt" => SortOpt::Rtt,
            "stop" => SortOpt::Stop,
            "reason" => SortOpt::Reason,
            other => return Err(BadRequest(format!("invalid sorting option: {other}"))),
        })
    }
}

/// Which connections `/connz` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConnState {
    /// Open connections (default).
    #[default]
    Open,
    /// Closed connections: none are kept, so the list is empty.
    Closed,
    /// Open and closed (`any` or `all`).
    Any,
}

fn bool_param(name: &str, v: &str) -> Result<bool, BadRequest> {
    match v {
        "" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(BadRequest(format!(
            "Error decoding boolean for '{name}': strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

fn int_param(name: &str, v: Option<&str>) -> Result<i64, BadRequest> {
    match v {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<i64>().map_err(|_| {
            BadRequest(format!(
                "Error decoding int for '{name}': strconv.Atoi: parsing {v:?}: invalid syntax"
            ))
        }),
    }
}

fn subs_param(v: Option<&str>) -> Result<SubsDetail, BadRequest> {
    match v {
        Some("detail") => Ok(SubsDetail::Detail),
        Some(v) if bool_param("subs", v)? => Ok(SubsDetail::Subjects),
        _ => Ok(SubsDetail::None),
    }
}

fn page(offset: i64, limit: i64) -> (usize, usize) {
    let offset = usize::try_from(offset.max(0)).unwrap_or(0);
    let limit = match limit {
        l if l <= 0 => DEFAULT_LIMIT,
        l => usize::try_from(l).unwrap_or(usize::MAX),
    };
    (offset, limit)
}

/// The query of `/connz`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnzQuery {
    /// `sort`.
    pub sort: SortOpt,
    /// `subs`.
    pub subs: SubsDetail,
    /// `offset`.
    pub offset: usize,
    /// `limit` (default 1024).
    pub limit: usize,
    /// `cid`: only this connection.
    pub cid: Option<u64>,
    /// `state`.
    pub state: ConnState,
}

impl ConnzQuery {
    /// Parses the query parameters; a bad value is a [`BadRequest`] with nats-server's text.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<ConnzQuery, BadRequest> {
        let sort = SortOpt::parse(get("sort").as_deref().unwrap_or(""))?;
        let subs = subs_param(get("subs").as_deref())?;
        let (offset, limit) = page(
            int_param("offset", get("offset").as_deref())?,
            int_param("limit", get("limit").as_deref())?,
        );
        let cid = match get("cid").as_deref() {
            None | Some("") => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                BadRequest(format!(
                    "Error decoding uint64 for 'cid': strconv.ParseUint: parsing {v:?}: invalid syntax"
                ))
            })?),
        };
        let state = match get("state").as_deref() {
            None | Some("") | Some("open") => ConnState::Open,
            Some("closed") => ConnState::Closed,
            Some("any") | Some("all") => ConnState::Any,
            Some(v) => return Err(BadRequest(format!("Error decoding state for {v}"))),
        };
        if matches!(sort, SortOpt::Stop | SortOpt::Reason) && state == ConnState::Open {
            let by = if sort == SortOpt::Stop {
                "stop"
            } else {
                "reason"
            };
            return Err(BadRequest(format!(
                "sort by {by} only valid on closed connections"
            )));
        }
        Ok(ConnzQuery {
            sort,
            subs,
            offset,
            limit,
            cid,
            state,
        })
    }
}

/// One subscription in `subscriptions_list_detail` / `/subsz` `subscriptions_list`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SubDetail {
    pub subject: String,
    #[serde(rename = "qgroup", skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    pub sid: String,
    pub msgs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    pub cid: u64,
}

impl From<&SubscriptionInfo> for SubDetail {
    fn from(s: &SubscriptionInfo) -> Self {
        SubDetail {
            subject: s.subject.clone(),
            queue: s.queue.clone(),
            sid: s.sid.clone(),
            msgs: s.msgs,
            max: s.max,
            cid: s.cid,
        }
    }
}

/// One connection of `/connz`.
#[derive(Serialize, Clone, Debug)]
#[allow(missing_docs)]
pub struct ConnInfo {
    pub cid: u64,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub kind_type: &'static str,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    pub pending_bytes: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
}

/// The `/connz` body.
#[derive(Serialize, Clone, Debug)]
#[allow(missing_docs)]
pub struct Connz {
    pub server_id: String,
    pub now: String,
    pub num_connections: usize,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub connections: Vec<ConnInfo>,
}

fn since(now: SystemTime, t: SystemTime) -> Duration {
    now.duration_since(t).unwrap_or_default()
}

/// The `/connz` body for `q`.
pub fn connz(view: &CoreView, q: &ConnzQuery, now: SystemTime) -> Connz {
    let mut conns: Vec<&ConnectionInfo> = match q.state {
        ConnState::Closed => Vec::new(),
        ConnState::Open | ConnState::Any => view.connections.iter().collect(),
    };
    if let Some(cid) = q.cid {
        conns.retain(|c| c.cid == cid);
    }
    conns.sort_by_key(|c| c.cid);
    match q.sort {
        SortOpt::Cid | SortOpt::Stop | SortOpt::Reason => {}
        SortOpt::Start => conns.sort_by_key(|c| c.start),
        SortOpt::Subs => conns.sort_by_key(|c| Reverse(c.subscriptions.len())),
        SortOpt::Pending => conns.sort_by_key(|c| Reverse(c.pending_bytes)),
        SortOpt::MsgsTo => conns.sort_by_key(|c| Reverse(c.out_msgs)),
        SortOpt::MsgsFrom => conns.sort_by_key(|c| Reverse(c.in_msgs)),
        SortOpt::BytesTo => conns.sort_by_key(|c| Reverse(c.out_bytes)),
        SortOpt::BytesFrom => conns.sort_by_key(|c| Reverse(c.in_bytes)),
        SortOpt::Last => conns.sort_by_key(|c| Reverse(c.last_activity)),
        // Longest idle and longest up: earliest activity and earliest start first.
        SortOpt::Idle => conns.sort_by_key(|c| c.last_activity),
        SortOpt::Uptime => conns.sort_by_key(|c| c.start),
        SortOpt::Rtt => conns.sort_by_key(|c| Reverse(c.rtt)),
    }
    let total = conns.len();
    let start = q.offset.min(total);
    let end = q.offset.saturating_add(q.limit).min(total);
    let connections: Vec<ConnInfo> = conns[start..end]
        .iter()
        .map(|c| ConnInfo {
            cid: c.cid,
            kind: "Client",
            kind_type: "nats",
            ip: c.ip.clone(),
            port: c.port,
            start: rfc3339_nanos(c.start),
            last_activity: rfc3339_nanos(c.last_activity),
            rtt: go_duration(c.rtt.unwrap_or_default()),
            uptime: uptime(since(now, c.start)),
            idle: uptime(since(now, c.last_activity)),
            pending_bytes: c.pending_bytes,
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            subscriptions: c.subscriptions.len(),
            name: c.name.clone(),
            lang: c.lang.clone(),
            version: c.version.clone(),
            subscriptions_list: if q.subs == SubsDetail::Subjects {
                c.subscriptions.iter().map(|s| s.subject.clone()).collect()
            } else {
                Vec::new()
            },
            subscriptions_list_detail: if q.subs == SubsDetail::Detail {
                c.subscriptions.iter().map(SubDetail::from).collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    Connz {
        server_id: view.server_id.clone(),
        now: rfc3339_nanos(now),
        num_connections: connections.len(),
        total,
        offset: q.offset,
        limit: q.limit,
        connections,
    }
}

/// The query of `/subsz`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubszQuery {
    /// `subs=1`: list subscriptions.
    pub subs: bool,
    /// `offset`.
    pub offset: usize,
    /// `limit` (default 1024).
    pub limit: usize,
    /// `test=<subject>`: list only subscriptions matching this literal subject.
    pub test: Option<String>,
}

impl SubszQuery {
    /// Parses the query parameters; a bad value is a [`BadRequest`] with nats-server's text.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<SubszQuery, BadRequest> {
        let subs = bool_param("subs", get("subs").as_deref().unwrap_or(""))?;
        let (offset, limit) = page(
            int_param("offset", get("offset").as_deref())?,
            int_param("limit", get("limit").as_deref())?,
        );
        let test = match get("test") {
            None => None,
            Some(t) if is_literal_subject(&t) => Some(t),
            Some(t) => {
                return Err(BadRequest(format!(
                    "invalid test subject, must be valid publish subject: {t}"
                )))
            }
        };
        Ok(SubszQuery {
            subs,
            offset,
            limit,
            test,
        })
    }
}

fn is_literal_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.bytes().any(|b| b.is_ascii_whitespace())
        })
}

/// The `/subsz` body.
#[derive(Serialize, Clone, Debug)]
#[allow(missing_docs)]
pub struct Subsz {
    pub server_id: String,
    pub now: String,
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hit_rate: f64,
    pub max_fanout: u64,
    pub avg_fanout: f64,
    /// Subscriptions in `subscriptions_list` (nats-server counts the page, not all).
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<SubDetail>,
}

/// The `/subsz` body for `q`; `subs` are every subscription (read only with `subs=1`).
pub fn subsz(
    view: &CoreView,
    subs: impl FnOnce() -> Vec<SubscriptionInfo>,
    q: &SubszQuery,
    now: SystemTime,
) -> Subsz {
    let st = &view.sublist;
    let (total, list) = if q.subs {
        let mut all = subs();
        if let Some(t) = &q.test {
            all.retain(|s| stan_embedded_nats::subject_matches(&s.subject, t));
        }
        let start = q.offset.min(all.len());
        let end = q.offset.saturating_add(q.limit).min(all.len());
        // As nats-server does, `total` counts the subscriptions of the page.
        (
            end - start,
            all[start..end].iter().map(SubDetail::from).collect(),
        )
    } else {
        (0, Vec::new())
    };
    Subsz {
        server_id: view.server_id.clone(),
        now: rfc3339_nanos(now),
        num_subscriptions: st.num_subscriptions,
        num_cache: st.num_cache,
        num_inserts: st.num_inserts,
        num_removes: st.num_removes,
        num_matches: st.num_matches,
        cache_hit_rate: st.cache_hit_rate,
        max_fanout: st.max_fanout,
        avg_fanout: st.avg_fanout,
        total,
        offset: q.offset,
        limit: q.limit,
        subscriptions_list: list,
    }
}

/// Resident memory and average CPU use of this process (Linux `/proc`; zeros elsewhere).
pub fn process_usage(started: SystemTime) -> ProcessUsage {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let page = 4096i64;
    let mem = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map_or(0, |pages| pages * page);
    // utime and stime (fields 14 and 15, in clock ticks of 100 Hz on Linux).
    let cpu_secs = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0);
    let up = SystemTime::now()
        .duration_since(started)
        .unwrap_or_default()
        .as_secs_f64();
    let cpu = if up > 0.0 {
        (cpu_secs / up * 1000.0).round() / 10.0
    } else {
        0.0
    };
    ProcessUsage { mem, cpu, cores }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_nanos(1_234_567)), "1.234567ms");
        assert_eq!(go_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3661)), "1h1m1s");
    }

    fn q<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn connz_query() {
        let d = ConnzQuery::parse(q(&[])).unwrap();
        assert_eq!((d.sort, d.limit, d.offset), (SortOpt::Cid, 1024, 0));
        let p = ConnzQuery::parse(q(&[("sort", "bytes_to"), ("subs", "detail"), ("cid", "3")]))
            .unwrap();
        assert_eq!(
            (p.sort, p.subs, p.cid),
            (SortOpt::BytesTo, SubsDetail::Detail, Some(3))
        );
        assert_eq!(
            ConnzQuery::parse(q(&[("sort", "x")])).unwrap_err().0,
            "invalid sorting option: x"
        );
        assert!(ConnzQuery::parse(q(&[("sort", "stop")])).is_err());
        assert!(ConnzQuery::parse(q(&[("sort", "stop"), ("state", "closed")])).is_ok());
        assert!(ConnzQuery::parse(q(&[("subs", "maybe")])).is_err());
        assert!(ConnzQuery::parse(q(&[("limit", "x")])).is_err());
        assert!(ConnzQuery::parse(q(&[("state", "x")])).is_err());
    }

    #[test]
    fn subsz_query_and_matching() {
        assert!(SubszQuery::parse(q(&[("test", "a.*")])).is_err());
        assert!(SubszQuery::parse(q(&[("test", "a.b")])).is_ok());
        let m = stan_embedded_nats::subject_matches;
        assert!(m("a.*", "a.b") && m(">", "a.b"));
        assert!(!m("a.*", "a.b.c"));
    }

    #[test]
    fn empty_view_serialises_like_nats_server() {
        let view = CoreView::empty(SystemTime::now());
        let v = serde_json::to_value(varz(
            &view,
            ("127.0.0.1".into(), 8222),
            &ProcessUsage::default(),
            BTreeMap::new(),
            SystemTime::now(),
        ))
        .unwrap();
        for k in [
            "cluster",
            "gateway",
            "leaf",
            "mqtt",
            "websocket",
            "jetstream",
        ] {
            assert_eq!(v[k], serde_json::json!({}), "{k}");
        }
        assert!(v.get("auth_required").is_none() && v.get("tls_required").is_none());
        assert_eq!(v["slow_consumer_stats"]["leafs"], 0);
        let c =
            serde_json::to_value(connz(&view, &ConnzQuery::default(), SystemTime::now())).unwrap();
        assert_eq!(c["connections"], serde_json::json!([]));
    }
}

//! The web console (`/console/`) and its message browser endpoint (`/streaming/msgsz`).
//!
//! The console is three static assets embedded in the binary (HTML, CSS and one small
//! script, no framework, no network access beyond this server). The pages read the
//! `/streaming/*` JSON endpoints; only the message browser needs [`msgsz`](self#msgsz), which
//! reads a channel's stored messages through the engine.
//!
//! # msgsz
//!
//! `GET /streaming/msgsz?channel=NAME[&seq=N | &time=RFC3339][&limit=K]`
//!
//! | Parameter | Meaning |
//! |---|---|
//! | `channel` | channel name (required) |
//! | `seq` | first sequence of the page; below the first stored one starts there; absent or 0: the first stored |
//! | `time` | start at the first message stored at or after this RFC 3339 time (not with `seq`) |
//! | `limit` | messages per page, 1 to [`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]) |
//!
//! Payloads are cut at [`MAX_PAYLOAD`] bytes (`truncated: true`, `size` is the full size) and
//! a page ends early once the payloads shown reach [`MAX_PAGE_BYTES`]; `next_seq` is where
//! the next page starts. A bad request answers 4xx with `{"error": "..."}`.
//!
//! The endpoint needs the engine: the monitoring [`Source`](super::Source) hands the router
//! a [`ConsoleBackend`] (the broker does). Without one `msgsz` answers 503.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;

use super::json;

/// Messages per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 100;
/// Payload bytes shown per message; longer payloads are cut (`truncated: true`).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Payload bytes shown per page: a page ends early once its payloads reach this.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// Where a page of messages starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgStart {
    /// The first stored message.
    First,
    /// This sequence (or the first stored one, if it is older).
    Sequence(u64),
    /// The first message stored at or after this time (Unix nanoseconds).
    Time(i64),
}

/// A request for one page of a channel's stored messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgQuery {
    /// Channel name.
    pub channel: String,
    /// Where the page starts.
    pub start: MsgStart,
    /// At most this many messages.
    pub limit: usize,
    /// Payload bytes shown per message.
    pub max_payload: usize,
    /// Payload bytes shown per page (at least one message is always given).
    pub max_page_bytes: usize,
}

/// One stored message, its payload possibly cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMsg {
    /// Sequence.
    pub sequence: u64,
    /// Server receive time, Unix nanoseconds.
    pub timestamp: i64,
    /// Full payload size in bytes.
    pub size: usize,
    /// The payload, at most [`MsgQuery::max_payload`] bytes of it.
    pub data: Bytes,
    /// `data` is shorter than the payload.
    pub truncated: bool,
    /// Highest redelivery count a subscription holds for this message while it waits for
    /// its ack (0: not redelivered, or acknowledged since).
    pub redelivery_count: u32,
}

/// One page of stored messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgPage {
    /// Channel name.
    pub channel: String,
    /// First stored sequence (`last_seq + 1` when nothing is stored).
    pub first_seq: u64,
    /// Last assigned sequence.
    pub last_seq: u64,
    /// The sequence the query asked for (from `seq`, or the one `time` gave).
    pub start_seq: u64,
    /// Where the next page starts.
    pub next_seq: u64,
    /// The messages, oldest first.
    pub msgs: Vec<StoredMsg>,
}

/// Why a page could not be given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrowseError {
    /// No channel of that name.
    #[error("channel {0:?} not found")]
    UnknownChannel(String),
}

/// A change made from the console (only with `--console_admin_token`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminAction {
    /// Delete a channel with its messages; refused while it has subscriptions.
    DeleteChannel {
        /// Channel name.
        channel: String,
    },
    /// Remove every stored message of a channel; the channel, its subscriptions and its
    /// sequence numbering stay (new messages go on from the last sequence).
    PurgeChannel {
        /// Channel name.
        channel: String,
    },
    /// Delete an offline plain durable subscription; refused while it is active.
    DeleteDurable {
        /// Channel name.
        channel: String,
        /// The client ID the durable belongs to.
        client_id: String,
        /// Durable name.
        durable: String,
    },
}

/// Why an [`AdminAction`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No channel of that name.
    #[error("channel {0:?} not found")]
    UnknownChannel(String),
    /// No such durable on the channel.
    #[error("durable {durable:?} of client {client_id:?} not found on channel {channel:?}")]
    UnknownDurable {
        /// Channel name.
        channel: String,
        /// Client ID.
        client_id: String,
        /// Durable name.
        durable: String,
    },
    /// The durable has a subscriber.
    #[error("durable {0:?} is active: its client must close it first")]
    DurableActive(String),
    /// The store refused the change.
    #[error("store: {0}")]
    Store(String),
    /// The channel still has subscriptions.
    #[error("channel {channel:?} has {subs} subscription(s): delete or close them first")]
    ChannelInUse {
        /// Channel name.
        channel: String,
        /// Its stored subscriptions.
        subs: usize,
    },
}

/// What answers the console's engine requests: the broker.
pub trait ConsoleBackend: Send + Sync + 'static {
    /// One page of stored messages; `None` when the engine has stopped.
    fn messages(&self, query: MsgQuery) -> BoxFuture<'_, Option<Result<MsgPage, BrowseError>>>;
    /// The token admin requests must carry; `None`: admin actions are off.
    fn admin_token(&self) -> Option<String>;
    /// Performs an admin action (the token is checked before); `None` when the engine has
    /// stopped.
    fn admin(&self, action: AdminAction) -> BoxFuture<'_, Option<Result<(), AdminError>>>;
}

#[derive(Clone)]
struct ConsoleState {
    backend: Option<Arc<dyn ConsoleBackend>>,
}

/// The console's routes (`/console`, `/console/`, its assets, `/streaming/msgsz`), merged
/// into the monitoring router. Without a `backend` (monitoring served by hand, without a
/// broker) the message browser and admin actions answer 503.
pub fn router<T: Clone + Send + Sync + 'static>(
    backend: Option<Arc<dyn ConsoleBackend>>,
) -> Router<T> {
    Router::new()
        .route("/console", get(redirect))
        .route(
            "/console/",
            get(|| asset(INDEX_HTML, "text/html; charset=utf-8")),
        )
        .route(
            "/console/console.css",
            get(|| asset(CONSOLE_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/console/console.js",
            get(|| asset(CONSOLE_JS, "text/javascript; charset=utf-8")),
        )
        .route("/streaming/msgsz", get(msgsz))
        .route("/console/api/admin", get(admin_state))
        .route("/console/api/delete-channel", post(delete_channel))
        .route("/console/api/purge-channel", post(purge_channel))
        .route("/console/api/delete-durable", post(delete_durable))
        .with_state(ConsoleState { backend })
}

const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_CSS: &str = include_str!("console/console.css");
const CONSOLE_JS: &str = include_str!("console/console.js");

/// Scripts, styles and images only from this server; nothing inline (payloads are shown
/// as text, and even markup that slipped through would not run).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn redirect() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/console/"));
    r
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn json_answer<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut r = Response::new(Body::from(json::to_pretty(value)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error_answer(status: StatusCode, message: impl Into<String>) -> Response {
    json_answer(status, &serde_json::json!({ "error": message.into() }))
}

/// The `msgsz` answer.
#[derive(Serialize)]
struct Msgsz {
    channel: String,
    first_seq: u64,
    last_seq: u64,
    start_seq: u64,
    next_seq: u64,
    limit: usize,
    count: usize,
    max_payload: usize,
    msgs: Vec<Msgz>,
}

#[derive(Serialize)]
struct Msgz {
    sequence: u64,
    timestamp: String,
    timestamp_ns: i64,
    size: usize,
    redelivered: bool,
    redelivery_count: u32,
    truncated: bool,
    /// Base64 (standard alphabet, padded).
    data: String,
}

async fn msgsz(
    State(state): State<ConsoleState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let p = match query {
        Ok(Query(p)) => p,
        Err(e) => return error_answer(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let query = match parse_query(&p) {
        Ok(q) => q,
        Err(e) => return error_answer(StatusCode::BAD_REQUEST, e),
    };
    let Some(source) = state.backend.clone() else {
        return error_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "message browsing is not available on this listener",
        );
    };
    let limit = query.limit;
    let max_payload = query.max_payload;
    match source.messages(query).await {
        None => error_answer(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"),
        Some(Err(e @ BrowseError::UnknownChannel(_))) => {
            error_answer(StatusCode::NOT_FOUND, e.to_string())
        }
        Some(Ok(page)) => {
            let msgs: Vec<Msgz> = page
                .msgs
                .into_iter()
                .map(|m| Msgz {
                    sequence: m.sequence,
                    timestamp: json::rfc3339_nanos(
                        UNIX_EPOCH + Duration::from_nanos(m.timestamp.max(0) as u64),
                    ),
                    timestamp_ns: m.timestamp,
                    size: m.size,
                    redelivered: m.redelivery_count > 0,
                    redelivery_count: m.redelivery_count,
                    truncated: m.truncated,
                    data: base64(&m.data),
                })
                .collect();
            let body = Msgsz {
                channel: page.channel,
                first_seq: page.first_seq,
                last_seq: page.last_seq,
                start_seq: page.start_seq,
                next_seq: page.next_seq,
                limit,
                count: msgs.len(),
                max_payload,
                msgs,
            };
            json_answer(StatusCode::OK, &body)
        }
    }
}

async fn admin_state(State(state): State<ConsoleState>) -> Response {
    let enabled = state
        .backend
        .clone()
        .is_some_and(|s| s.admin_token().is_some());
    json_answer(StatusCode::OK, &serde_json::json!({ "enabled": enabled }))
}

/// Equal strings, compared in time that does not depend on where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks the admin token and runs `action` (4xx with a message when refused).
async fn run_admin(
    state: ConsoleState,
    headers: &HeaderMap,
    action: Result<AdminAction, String>,
) -> Response {
    let Some(source) = state.backend.clone() else {
        return error_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "admin actions are not available on this listener",
        );
    };
    let Some(token) = source.admin_token() else {
        return error_answer(
            StatusCode::FORBIDDEN,
            "admin actions are off: start the broker with --console_admin_token",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => {
            return error_answer(
                StatusCode::UNAUTHORIZED,
                "missing admin token (header Authorization: Bearer TOKEN)",
            )
        }
        Some(g) if !same_token(g, &token) => {
            return error_answer(StatusCode::UNAUTHORIZED, "wrong admin token")
        }
        Some(_) => {}
    }
    let action = match action {
        Ok(a) => a,
        Err(e) => return error_answer(StatusCode::BAD_REQUEST, e),
    };
    match source.admin(action).await {
        None => error_answer(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"),
        Some(Ok(())) => json_answer(StatusCode::OK, &serde_json::json!({ "ok": true })),
        Some(Err(e)) => {
            let status = match e {
                AdminError::UnknownChannel(_) | AdminError::UnknownDurable { .. } => {
                    StatusCode::NOT_FOUND
                }
                AdminError::DurableActive(_) | AdminError::ChannelInUse { .. } => {
                    StatusCode::CONFLICT
                }
                AdminError::Store(_) => StatusCode::UNPROCESSABLE_ENTITY,
            };
            error_answer(status, e.to_string())
        }
    }
}

fn required(p: &HashMap<String, String>, key: &str) -> Result<String, String> {
    match p.get(key).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(format!("missing parameter: {key}")),
    }
}

async fn delete_channel(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let action = channel_param(query).map(|channel| AdminAction::DeleteChannel { channel });
    run_admin(state, &headers, action).await
}

async fn purge_channel(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let action = channel_param(query).map(|channel| AdminAction::PurgeChannel { channel });
    run_admin(state, &headers, action).await
}

/// The `channel` parameter of an admin request; the error is the message the client is shown.
fn channel_param(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<String, String> {
    query
        .map_err(|e| e.body_text())
        .and_then(|Query(p)| required(&p, "channel"))
}

async fn delete_durable(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let action = query.map_err(|e| e.body_text()).and_then(|Query(p)| {
        Ok(AdminAction::DeleteDurable {
            channel: required(&p, "channel")?,
            client_id: required(&p, "client")?,
            durable: required(&p, "durable")?,
        })
    });
    run_admin(state, &headers, action).await
}

/// Reads the `msgsz` parameters; the error is the message the client is shown.
pub fn parse_query(p: &HashMap<String, String>) -> Result<MsgQuery, String> {
    let channel = match p.get("channel").map(|c| c.trim()) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => return Err("missing parameter: channel".into()),
    };
    let seq =
        match p.get("seq").map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                format!("invalid seq {s:?}: expected a sequence number (0 or more)")
            })?),
        };
    let time = match p.get("time").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(t) => Some(parse_rfc3339(t).ok_or_else(|| {
            format!("invalid time {t:?}: expected RFC 3339, e.g. 2026-01-02T15:04:05Z")
        })?),
    };
    let start = match (seq, time) {
        (Some(_), Some(_)) => return Err("give seq or time, not both".into()),
        (Some(0), None) | (None, None) => MsgStart::First,
        (Some(s), None) => MsgStart::Sequence(s),
        (None, Some(t)) => MsgStart::Time(t),
    };
    let limit = match p.get("limit").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n >= 1 && n as u64 <= MAX_LIMIT as u64 => n as usize,
            Ok(n) if n > MAX_LIMIT as i64 => {
                return Err(format!(
                    "limit {n} is too big: at most {MAX_LIMIT} messages per page"
                ))
            }
            _ => {
                return Err(format!(
                    "invalid limit {l:?}: expected a number from 1 to {MAX_LIMIT}"
                ))
            }
        },
    };
    Ok(MsgQuery {
        channel,
        start,
        limit,
        max_payload: MAX_PAYLOAD,
        max_page_bytes: MAX_PAGE_BYTES,
    })
}

/// Parses an RFC 3339 time (`2026-01-02T15:04:05[.fraction](Z|±hh:mm)`) into Unix
/// nanoseconds (saturating outside the range an `i64` holds).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &s[r];
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if rest.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_secs;
    // Beyond what nanoseconds in an i64 can hold (years before 1678 or after 2262): the
    // earliest or latest time there is, which compares the same with every stored message.
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn rfc3339_round_trips_with_the_json_formatter() {
        for nanos in [0i64, 1_700_000_000_120_000_000, 951_782_400_000_000_001] {
            let t = UNIX_EPOCH + Duration::from_nanos(nanos as u64);
            assert_eq!(parse_rfc3339(&json::rfc3339_nanos(t)), Some(nanos));
        }
        assert_eq!(
            parse_rfc3339("1970-01-01T01:00:00+01:00"),
            Some(0),
            "offsets are applied"
        );
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00.5-00:30"),
            Some(1_800_500_000_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T24:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    fn params(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parameters() {
        let q = parse_query(&params(&[("channel", "a"), ("seq", "7"), ("limit", "100")])).unwrap();
        assert_eq!(q.start, MsgStart::Sequence(7));
        assert_eq!(q.limit, 100);
        let q = parse_query(&params(&[("channel", "a")])).unwrap();
        assert_eq!((q.start, q.limit), (MsgStart::First, DEFAULT_LIMIT));
        let err = |kv: &[(&str, &str)]| parse_query(&params(kv)).unwrap_err();
        assert_eq!(err(&[]), "missing parameter: channel");
        assert!(err(&[("channel", "a"), ("seq", "-1")]).starts_with("invalid seq"));
        assert!(err(&[("channel", "a"), ("limit", "101")]).contains("too big"));
        assert!(err(&[("channel", "a"), ("limit", "0")]).starts_with("invalid limit"));
        assert!(err(&[
            ("channel", "a"),
            ("seq", "1"),
            ("time", "1970-01-01T00:00:00Z")
        ])
        .contains("not both"));
    }
}

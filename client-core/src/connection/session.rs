//! One registration with the server: registering, and the subjects it gives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use prost::Message as _;
use rustc_hash::FxHashMap;
use stan_protocol::errors;
use stan_protocol::pb;

use super::nats::{read_response, request};
use crate::error::{Error, ErrorKind, Result};
use crate::lock::lock;
use crate::options::Resolved;

/// One registration with the server.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) epoch: u64,
    pub(crate) conn_id: Bytes,
    pub(crate) pub_prefix: String,
    pub(crate) sub_requests: String,
    pub(crate) unsub_requests: String,
    pub(crate) sub_close_requests: String,
    pub(crate) close_requests: String,
    pub(crate) ping_requests: String,
    /// (interval, max out) when pinging.
    pub(crate) ping: Option<(Duration, u32)>,
    /// How long the server remembers the guids of stored publishes (zero: it does not, as
    /// the official servers): in-flight publishes are re-sent on resume only when it does.
    pub(crate) dedup_window: Duration,
    /// `<pub_prefix>.<channel>` of the channels published to, built once each.
    pub_subjects: Mutex<FxHashMap<Box<str>, Subject>>,
}

/// Channels whose publish subjects a session keeps (it starts over when more are used).
const PUB_SUBJECTS_KEPT: usize = 1024;

impl Session {
    /// The subject a publish to `channel` is sent to.
    pub(crate) fn pub_subject(&self, channel: &str) -> Subject {
        let mut subjects = lock(&self.pub_subjects);
        if let Some(s) = subjects.get(channel) {
            return s.clone();
        }
        if subjects.len() >= PUB_SUBJECTS_KEPT {
            subjects.clear();
        }
        let s = Subject::from(format!("{}.{channel}", self.pub_prefix));
        subjects.insert(channel.into(), s.clone());
        s
    }
}

/// The session as seen by publishers and other callers.
#[derive(Clone, Debug)]
pub(crate) enum SessionState {
    Active(Arc<Session>),
    Resuming,
    Closed(ErrorKind, String),
}

/// What registering needs; cloned into the resume future.
#[derive(Clone)]
pub(crate) struct RegisterCtx {
    pub(crate) nats: async_nats::Client,
    pub(crate) client_id: String,
    pub(crate) resolved: Resolved,
    pub(crate) inbox_base: String,
}

impl RegisterCtx {
    pub(crate) fn hb_inbox(&self, id: u64) -> String {
        format!("{}.hb.{id}", self.inbox_base)
    }

    /// Send one ConnectRequest; returns the response and the connID used.
    pub(crate) async fn register(&self, hb_id: u64) -> Result<(pb::ConnectResponse, Bytes)> {
        let conn_id = Bytes::from(stan_protocol::subjects::new_nuid());
        let req = pb::ConnectRequest {
            client_id: self.client_id.clone(),
            heartbeat_inbox: self.hb_inbox(hb_id),
            protocol: stan_protocol::defaults::PROTOCOL_VERSION,
            conn_id: conn_id.clone(),
            ping_interval: self.resolved.ping_interval_wire,
            ping_max_out: self.resolved.ping_max_out,
            resends_publishes: self.resolved.auto_resume,
        };
        let result = request(
            &self.nats,
            self.resolved.discover_subject.clone(),
            req.encode_to_vec(),
            self.resolved.connect_wait,
        )
        .await;
        let resp: pb::ConnectResponse = read_response(
            result,
            Error::new(ErrorKind::ConnectTimeout, errors::CONNECT_REQ_TIMEOUT),
            "nats: connect request failed",
            "stan: malformed connect response",
        )?;
        Ok((resp, conn_id))
    }
}

/// Build a session from a successful ConnectResponse.
pub(crate) fn session_from(epoch: u64, resp: pb::ConnectResponse, conn_id: Bytes) -> Session {
    let ping = if resp.protocol >= 1 && resp.ping_interval != 0 && !resp.ping_requests.is_empty() {
        let interval = if resp.ping_interval > 0 {
            Duration::from_secs(resp.ping_interval as u64)
        } else {
            Duration::from_millis(resp.ping_interval.unsigned_abs() as u64)
        };
        Some((interval, resp.ping_max_out.max(1) as u32))
    } else {
        None
    };
    Session {
        epoch,
        conn_id,
        pub_prefix: resp.pub_prefix,
        sub_requests: resp.sub_requests,
        unsub_requests: resp.unsub_requests,
        sub_close_requests: resp.sub_close_requests,
        close_requests: resp.close_requests,
        ping_requests: resp.ping_requests,
        ping,
        dedup_window: Duration::from_millis(resp.dedup_window_ms),
        pub_subjects: Mutex::default(),
    }
}

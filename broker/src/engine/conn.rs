//! Connect, duplicate client IDs, connection close, heartbeats and client pings.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use stan_protocol::{pb, validate};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::state::Client;
use super::timers::{later, TimerKey};
use super::{Engine, Event, RequestError};
use crate::store::ClientRecord;
use crate::transport::{Inbound, Transport};

/// Sends an empty request to `inbox` on a spawned task and queues the event `report` makes of
/// whether it was answered within `timeout`: the engine never waits for the network.
fn probe(
    transport: &dyn Transport,
    events: &mpsc::UnboundedSender<Event>,
    inbox: &str,
    timeout: Duration,
    report: impl FnOnce(bool) -> Event + Send + 'static,
) {
    let answer = transport.request(inbox, Bytes::new(), timeout);
    let events = events.clone();
    tokio::spawn(async move {
        let answered = answer.await.is_some();
        let _ = events.send(report(answered));
    });
}

impl Engine {
    fn connect_error(&mut self, reply: &str, error: &RequestError) {
        self.hold_reply(
            Some(reply),
            &pb::ConnectResponse {
                error: error.to_string(),
                ..Default::default()
            },
        );
    }

    /// §3.1.
    pub(crate) fn handle_connect(&mut self, m: Inbound) {
        let Some(reply) = m.reply else {
            tracing::debug!("connect request without reply subject dropped");
            return;
        };
        if let Err(e) = self.process_connect(m.payload, &reply, m.origin) {
            self.connect_error(&reply, &e);
        }
    }

    /// Validates a connect request and registers the client; when the client ID is taken,
    /// probes the old client first (its answer comes back as [`Event::Duplicate`]).
    fn process_connect(
        &mut self,
        payload: Bytes,
        reply: &str,
        origin: Option<u64>,
    ) -> Result<(), RequestError> {
        let req = match pb::ConnectRequest::decode(payload) {
            Ok(r) if !r.heartbeat_inbox.is_empty() => r,
            _ => return Err(RequestError::InvalidConnRequest),
        };
        if !validate::is_valid_client_id(&req.client_id) {
            return Err(RequestError::InvalidClientId);
        }
        let Some(c) = self.clients.get_mut(&req.client_id) else {
            return self.register_client(req, reply, origin);
        };
        if c.dup_check {
            return Err(RequestError::ClientIdRegistered);
        }
        c.dup_check = true;
        let old_registration = c.registration;
        let reply = reply.to_string();
        probe(
            &*self.transport,
            &self.events,
            &c.hb_inbox,
            self.cfg.duplicate_check_timeout,
            move |answered| Event::Duplicate {
                old_registration,
                req: Box::new(req),
                reply,
                origin,
                answered,
            },
        );
        Ok(())
    }

    /// §3.2: outcome of the probe of the old client.
    pub(crate) fn duplicate_result(
        &mut self,
        old_registration: u64,
        req: pb::ConnectRequest,
        reply: String,
        origin: Option<u64>,
        answered: bool,
    ) {
        let result = match self.clients.get_mut(&req.client_id) {
            Some(c) if c.registration == old_registration => {
                c.dup_check = false;
                if answered {
                    Err(RequestError::ClientIdRegistered)
                } else {
                    tracing::debug!(client = %req.client_id, "replacing unresponsive client");
                    self.close_client(&req.client_id);
                    self.register_client(req, &reply, origin)
                }
            }
            Some(_) => Err(RequestError::ClientIdRegistered),
            None => self.register_client(req, &reply, origin),
        };
        if let Err(e) = result {
            self.connect_error(&reply, &e);
        }
    }

    /// Records the client and answers the connect request.
    fn register_client(
        &mut self,
        req: pb::ConnectRequest,
        reply: &str,
        origin: Option<u64>,
    ) -> Result<(), RequestError> {
        let record = ClientRecord {
            id: req.client_id.clone(),
            hb_inbox: req.heartbeat_inbox.clone(),
            conn_id: req.conn_id.clone(),
            protocol: req.protocol,
            ping_interval: req.ping_interval,
            ping_max_out: req.ping_max_out,
            resends_publishes: req.resends_publishes,
        };
        self.store.add_client(&record)?;
        self.add_client_state(&record);
        if let Some(c) = self.clients.get_mut(&req.client_id) {
            c.origin = origin;
        }
        let mut resp = pb::ConnectResponse {
            pub_prefix: self.subjects.publish.clone(),
            sub_requests: self.subjects.subscribe.clone(),
            unsub_requests: self.subjects.unsubscribe.clone(),
            close_requests: self.subjects.close.clone(),
            sub_close_requests: self.subjects.sub_close.clone(),
            protocol: stan_protocol::defaults::PROTOCOL_VERSION,
            dedup_window_ms: u64::try_from(self.cfg.dedup_window.as_millis()).unwrap_or(u64::MAX),
            ..Default::default()
        };
        if req.protocol >= 1 {
            resp.ping_requests = self.subjects.pings.clone();
            resp.ping_interval = req.ping_interval;
            resp.ping_max_out = req.ping_max_out;
        }
        tracing::debug!(client = %req.client_id, "client connected");
        self.hold_reply(Some(reply), &resp);
        Ok(())
    }

    /// Registers a client in memory and arms its heartbeat.
    pub(crate) fn add_client_state(&mut self, record: &ClientRecord) {
        if !record.conn_id.is_empty() {
            self.conn_ids
                .insert(record.conn_id.clone(), record.id.clone());
        }
        self.registrations += 1;
        self.clients.insert(
            record.id.clone(),
            Client {
                id: record.id.clone(),
                hb_inbox: record.hb_inbox.clone(),
                conn_id: record.conn_id.clone(),
                registration: self.registrations,
                subs: Vec::new(),
                hb_failures: 0,
                hb_in_flight: false,
                dup_check: false,
                origin: None,
            },
        );
        self.timers.set(
            TimerKey::Heartbeat(record.id.clone()),
            later(Instant::now(), self.cfg.hb_interval),
        );
    }

    /// §3.12: unregisters a client; its subscriptions are closed (durables go offline).
    pub(crate) fn close_client(&mut self, client_id: &str) {
        let Some(client) = self.clients.remove(client_id) else {
            return;
        };
        if self.conn_ids.get(&client.conn_id).map(String::as_str) == Some(client_id) {
            self.conn_ids.remove(&client.conn_id);
        }
        self.timers
            .cancel(&TimerKey::Heartbeat(client_id.to_string()));
        if let Err(e) = self.store.delete_client(client_id) {
            tracing::error!(client = %client_id, "unable to delete client from store: {e}");
        }
        for sub in client.subs {
            self.remove_sub(sub, false);
        }
        tracing::debug!(client = %client_id, "client closed");
    }

    /// Connection close request.
    pub(crate) fn handle_close(&mut self, m: Inbound) {
        let result = self.process_close(m.payload, m.origin);
        self.hold_reply(
            m.reply.as_deref(),
            &pb::CloseResponse {
                error: RequestError::wire_text(&result),
            },
        );
    }

    fn process_close(&mut self, payload: Bytes, origin: Option<u64>) -> Result<(), RequestError> {
        let req =
            pb::CloseRequest::decode(payload).map_err(|_| RequestError::InvalidCloseRequest)?;
        if !self.clients.contains_key(&req.client_id) {
            return Err(RequestError::UnknownClient);
        }
        if !self.sent_by_owner(&req.client_id, origin, "close") {
            return Err(RequestError::UnknownClient);
        }
        self.close_client(&req.client_id);
        Ok(())
    }

    /// §3.13: client pings.
    pub(crate) fn handle_ping(&mut self, m: Inbound) {
        if m.payload.is_empty() {
            return;
        }
        let Ok(ping) = pb::Ping::decode(m.payload) else {
            return;
        };
        self.bind_by_conn_id(&ping.conn_id, m.origin);
        let result = self.process_ping(&ping.conn_id);
        self.reply(
            m.reply.as_deref(),
            &pb::PingResponse {
                error: RequestError::wire_text(&result),
            },
        );
    }

    /// A ping from a registered connection hurries the next heartbeat of a failing client.
    fn process_ping(&mut self, conn_id: &Bytes) -> Result<(), RequestError> {
        match self.conn_ids.get(conn_id) {
            Some(id) if !conn_id.is_empty() => {
                if let Some(c) = self.clients.get(id) {
                    if c.hb_failures > 0 && !c.hb_in_flight {
                        self.timers
                            .set(TimerKey::Heartbeat(id.clone()), Instant::now());
                    }
                }
                Ok(())
            }
            _ => Err(RequestError::ClientReplaced),
        }
    }

    /// Heartbeat timer: send one heartbeat request.
    pub(crate) fn send_heartbeat(&mut self, client_id: &str) {
        let Some(c) = self.clients.get_mut(client_id) else {
            return;
        };
        if c.hb_in_flight {
            return;
        }
        c.hb_in_flight = true;
        let client_id = c.id.clone();
        let registration = c.registration;
        probe(
            &*self.transport,
            &self.events,
            &c.hb_inbox,
            self.cfg.hb_timeout,
            move |answered| Event::Heartbeat {
                client_id,
                registration,
                answered,
            },
        );
    }

    /// Outcome of a heartbeat.
    pub(crate) fn heartbeat_result(&mut self, client_id: &str, registration: u64, answered: bool) {
        let fail_count = self.cfg.hb_fail_count;
        let Some(c) = self.clients.get_mut(client_id) else {
            return;
        };
        if c.registration != registration {
            // The answer of a probe of an earlier registration of this client ID.
            return;
        }
        c.hb_in_flight = false;
        if answered {
            c.hb_failures = 0;
        } else {
            c.hb_failures += 1;
            tracing::debug!(client = %client_id, failures = c.hb_failures, "heartbeat missed");
            if c.hb_failures > fail_count {
                tracing::info!(client = %client_id, "client unresponsive, closing");
                self.close_client(client_id);
                return;
            }
        }
        self.timers.set(
            TimerKey::Heartbeat(client_id.to_string()),
            later(Instant::now(), self.cfg.hb_interval),
        );
    }

    /// Client isolation: whether a request about `client_id`'s client (`what`: for the log)
    /// that came from core-NATS connection `origin` is accepted. Accepted when isolation is
    /// off, the sender is unknown (external transport), the client is not bound to a
    /// connection (recovered from the store, not seen since), or it comes from the bound
    /// connection; also when the bound connection is gone, and the client is then bound to
    /// the sender. Refusals are counted and logged at debug level.
    pub(crate) fn sent_by_owner(
        &mut self,
        client_id: &str,
        origin: Option<u64>,
        what: &'static str,
    ) -> bool {
        if self.cfg.trust_client_subjects {
            return true;
        }
        let Some(origin) = origin else {
            return true;
        };
        let bound = match self.clients.get(client_id) {
            Some(c) => c.origin,
            None => return true,
        };
        match bound {
            None => true,
            Some(b) if b == origin => true,
            Some(b) if !self.transport.origin_open(b) => {
                tracing::debug!(client = %client_id, "client moved to a new core-NATS connection");
                if let Some(c) = self.clients.get_mut(client_id) {
                    c.origin = Some(origin);
                }
                true
            }
            Some(_) => {
                self.stats.foreign_requests += 1;
                tracing::debug!(
                    client = %client_id,
                    request = what,
                    "request from another client's core-NATS connection refused"
                );
                false
            }
        }
    }

    /// Client isolation: a request carrying a registered connection ID (ping, publish) binds
    /// that client to the core-NATS connection it came from (a reconnected client).
    pub(crate) fn bind_by_conn_id(&mut self, conn_id: &Bytes, origin: Option<u64>) {
        let Some(origin) = origin else {
            return;
        };
        if conn_id.is_empty() {
            return;
        }
        let Some(id) = self.conn_ids.get(conn_id) else {
            return;
        };
        if let Some(c) = self.clients.get_mut(id) {
            if c.origin != Some(origin) {
                tracing::debug!(client = %c.id, "client bound to a new core-NATS connection");
                c.origin = Some(origin);
            }
        }
    }

    /// True when the client is failing heartbeats.
    pub(crate) fn client_failing(&self, client_id: &str) -> bool {
        self.clients
            .get(client_id)
            .is_some_and(|c| c.hb_failures > 0)
    }
}

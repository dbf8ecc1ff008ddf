//! Connect, duplicate client IDs, connection close, heartbeats and client pings.

use bytes::Bytes;
use prost::Message;
use stan_protocol::{errors, pb, validate};
use tokio::time::Instant;

use super::state::Client;
use super::timers::{later, TimerKey};
use super::{Engine, Event};
use crate::store::ClientRecord;
use crate::transport::Inbound;

impl Engine {
    fn connect_error(&self, reply: &str, error: &str) {
        self.reply(
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
        let req = match pb::ConnectRequest::decode(m.payload) {
            Ok(r) if !r.heartbeat_inbox.is_empty() => r,
            _ => return self.connect_error(&reply, errors::INVALID_CONN_REQ),
        };
        if !validate::is_valid_client_id(&req.client_id) {
            return self.connect_error(&reply, errors::INVALID_CLIENT_ID);
        }
        if let Some(c) = self.clients.get_mut(&req.client_id) {
            if c.dup_check {
                return self.connect_error(&reply, errors::CLIENT_ID_REGISTERED);
            }
            c.dup_check = true;
            let probe =
                self.transport
                    .request(&c.hb_inbox, Bytes::new(), self.cfg.duplicate_check_timeout);
            let old_conn_id = c.conn_id.clone();
            let events = self.events.clone();
            tokio::spawn(async move {
                let answered = probe.await.is_some();
                let _ = events.send(Event::Duplicate {
                    old_conn_id,
                    req,
                    reply,
                    answered,
                });
            });
            return;
        }
        self.register_client(req, &reply);
    }

    /// §3.2: outcome of the probe of the old client.
    pub(crate) fn duplicate_result(
        &mut self,
        old_conn_id: Bytes,
        req: pb::ConnectRequest,
        reply: String,
        answered: bool,
    ) {
        match self.clients.get_mut(&req.client_id) {
            Some(c) if c.conn_id == old_conn_id => {
                c.dup_check = false;
                if answered {
                    return self.connect_error(&reply, errors::CLIENT_ID_REGISTERED);
                }
                tracing::debug!(client = %req.client_id, "replacing unresponsive client");
                self.close_client(&req.client_id);
                self.register_client(req, &reply);
            }
            Some(_) => self.connect_error(&reply, errors::CLIENT_ID_REGISTERED),
            None => self.register_client(req, &reply),
        }
    }

    fn register_client(&mut self, req: pb::ConnectRequest, reply: &str) {
        let record = ClientRecord {
            id: req.client_id.clone(),
            hb_inbox: req.heartbeat_inbox.clone(),
            conn_id: req.conn_id.clone(),
            protocol: req.protocol,
            ping_interval: req.ping_interval,
            ping_max_out: req.ping_max_out,
        };
        if let Err(e) = self.store.add_client(&record) {
            return self.connect_error(reply, &e.to_string());
        }
        self.add_client_state(&record);
        let mut resp = pb::ConnectResponse {
            pub_prefix: self.subjects.publish.clone(),
            sub_requests: self.subjects.subscribe.clone(),
            unsub_requests: self.subjects.unsubscribe.clone(),
            close_requests: self.subjects.close.clone(),
            sub_close_requests: self.subjects.sub_close.clone(),
            protocol: stan_protocol::defaults::PROTOCOL_VERSION,
            ..Default::default()
        };
        if req.protocol >= 1 {
            resp.ping_requests = self.subjects.pings.clone();
            resp.ping_interval = req.ping_interval;
            resp.ping_max_out = req.ping_max_out;
        }
        tracing::debug!(client = %req.client_id, "client connected");
        self.reply(Some(reply), &resp);
    }

    /// Registers a client in memory and arms its heartbeat.
    pub(crate) fn add_client_state(&mut self, record: &ClientRecord) {
        if !record.conn_id.is_empty() {
            self.conn_ids
                .insert(record.conn_id.clone(), record.id.clone());
        }
        self.clients.insert(
            record.id.clone(),
            Client {
                id: record.id.clone(),
                hb_inbox: record.hb_inbox.clone(),
                conn_id: record.conn_id.clone(),
                subs: Vec::new(),
                hb_failures: 0,
                hb_in_flight: false,
                dup_check: false,
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
        let reply = m.reply.as_deref();
        let Ok(req) = pb::CloseRequest::decode(m.payload) else {
            return self.reply(
                reply,
                &pb::CloseResponse {
                    error: errors::INVALID_CLOSE_REQ.into(),
                },
            );
        };
        if !self.clients.contains_key(&req.client_id) {
            return self.reply(
                reply,
                &pb::CloseResponse {
                    error: errors::UNKNOWN_CLIENT.into(),
                },
            );
        }
        self.close_client(&req.client_id);
        self.reply(reply, &pb::CloseResponse::default());
    }

    /// §3.13: client pings.
    pub(crate) fn handle_ping(&mut self, m: Inbound) {
        if m.payload.is_empty() {
            return;
        }
        let Ok(ping) = pb::Ping::decode(m.payload) else {
            return;
        };
        let mut error = String::new();
        match self.conn_ids.get(&ping.conn_id).cloned() {
            Some(id) if !ping.conn_id.is_empty() => {
                if let Some(c) = self.clients.get(&id) {
                    if c.hb_failures > 0 && !c.hb_in_flight {
                        self.timers
                            .set(TimerKey::Heartbeat(id.clone()), Instant::now());
                    }
                }
            }
            _ => error = errors::CLIENT_REPLACED.to_string(),
        }
        self.reply(m.reply.as_deref(), &pb::PingResponse { error });
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
        let probe = self
            .transport
            .request(&c.hb_inbox, Bytes::new(), self.cfg.hb_timeout);
        let events = self.events.clone();
        let client_id = c.id.clone();
        let conn_id = c.conn_id.clone();
        tokio::spawn(async move {
            let answered = probe.await.is_some();
            let _ = events.send(Event::Heartbeat {
                client_id,
                conn_id,
                answered,
            });
        });
    }

    /// Outcome of a heartbeat.
    pub(crate) fn heartbeat_result(&mut self, client_id: &str, conn_id: &Bytes, answered: bool) {
        let fail_count = self.cfg.hb_fail_count;
        let Some(c) = self.clients.get_mut(client_id) else {
            return;
        };
        if c.conn_id != *conn_id {
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

    /// True when the client is failing heartbeats.
    pub(crate) fn client_failing(&self, client_id: &str) -> bool {
        self.clients
            .get(client_id)
            .is_some_and(|c| c.hb_failures > 0)
    }
}

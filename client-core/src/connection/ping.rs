//! Pings to the server and the state of the NATS connection, in the connection task.

use bytes::Bytes;
use prost::Message as _;
use stan_protocol::errors;
use stan_protocol::pb;
use tracing::{info, warn};

use super::task::Task;
use crate::event::{Event, LostReason};

impl Task {
    pub(super) async fn on_ping_tick(&mut self) {
        if !self.owns_nats {
            self.check_borrowed_nats_state();
        }
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some((_, max_out)) = session.ping else {
            return;
        };
        self.pings_out += 1;
        if self.pings_out > max_out {
            self.on_lost(
                LostReason::PingsExhausted,
                errors::CONNECTION_LOST_PING.into(),
            )
            .await;
            return;
        }
        self.ping_now_sync();
    }

    /// Send a ping without counting it (after a reconnect, or on suspicion).
    pub(super) fn ping_now_sync(&self) {
        let Some(session) = &self.session else { return };
        if session.ping.is_none() {
            return;
        }
        let ping = pb::Ping {
            conn_id: session.conn_id.clone(),
        };
        let nats = self.shared.nats.clone();
        let subject = session.ping_requests.clone();
        let reply = self.ping_subject.clone();
        // The NATS client queues the publish; don't hold the task on it.
        tokio::spawn(async move {
            let _ = nats
                .publish_with_reply(subject, reply, Bytes::from(ping.encode_to_vec()))
                .await;
        });
    }

    pub(super) async fn on_ping_response(&mut self, m: async_nats::Message) {
        if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return; // counts as a miss
        }
        let Ok(resp) = pb::PingResponse::decode(m.payload) else {
            return;
        };
        if resp.error.is_empty() {
            self.pings_out = 0;
            return;
        }
        let now_id = self.shared.nats.server_info().server_id;
        let reason = if !self.server_id.is_empty() && now_id != self.server_id {
            LostReason::ServerClosed
        } else {
            LostReason::Replaced
        };
        self.on_lost(reason, resp.error).await;
    }

    pub(super) fn check_borrowed_nats_state(&mut self) {
        let connected = matches!(
            self.shared.nats.connection_state(),
            async_nats::connection::State::Connected
        );
        if connected != self.nats_connected {
            self.nats_connected = connected;
            if connected {
                self.shared.emit(Event::NatsReconnected);
                self.ping_now_sync();
            } else {
                self.shared.emit(Event::NatsDisconnected);
            }
        }
    }

    pub(super) async fn on_nats_event(&mut self, ev: async_nats::Event) {
        match ev {
            async_nats::Event::Disconnected if self.nats_connected => {
                self.nats_connected = false;
                info!("NATS disconnected");
                self.shared.emit(Event::NatsDisconnected);
            }
            async_nats::Event::Connected if !self.nats_connected => {
                self.nats_connected = true;
                info!("NATS reconnected");
                self.shared.emit(Event::NatsReconnected);
                self.ping_now_sync();
            }
            async_nats::Event::Closed if !self.stopped => {
                self.nats_closed().await;
            }
            async_nats::Event::SlowConsumer(sid) => {
                // The NATS library dropped messages of a full subscription queue: PubAcks
                // (the publishes time out) or deliveries (the server redelivers them).
                warn!(sid, "NATS dropped messages for a full subscription queue");
            }
            _ => {}
        }
    }
}

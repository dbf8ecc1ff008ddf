//! The client's inbox, in the connection task: heartbeats, ping responses and deliveries.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use prost::Message as _;
use stan_protocol::pb;
use tracing::warn;

use super::task::Task;

impl Task {
    /// Handles a message of the client's inbox; hands back a ping response, whose handling
    /// may need waiting (see [`Task::on_ping_response`]).
    pub(super) fn on_inbox(&mut self, m: async_nats::Message) -> Option<async_nats::Message> {
        // Anything else than `<inbox>.<head>.<tail>` is not ours: dropped (None: handled).
        let rest = m
            .subject
            .as_str()
            .strip_prefix(self.ctx.inbox_base.as_str())
            .and_then(|r| r.strip_prefix('.'))?;
        let (head, tail) = rest.split_once('.')?;
        match head {
            "hb" => {
                let current = self.hb_current.load(Ordering::Acquire).to_string();
                if tail == current {
                    if let Some(reply) = m.reply {
                        self.outgoing.push((reply, Bytes::new()));
                    }
                }
            }
            "ping" => {
                if tail == self.epoch.to_string() && self.session.is_some() {
                    return Some(m);
                }
            }
            id => {
                if let (Ok(id), Ok(gen)) = (id.parse::<u64>(), tail.parse::<u64>()) {
                    self.on_delivery(id, gen, m.payload);
                }
            }
        }
        None
    }

    pub(super) fn on_delivery(&mut self, sub_id: u64, gen: u64, payload: Bytes) {
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            return;
        };
        if sub.gen != gen {
            return;
        }
        let proto = match pb::MsgProto::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "dropping undecodable message");
                return;
            }
        };
        if sub.acked.contains(proto.sequence, proto.timestamp) {
            // Acked by the application before; the server did not get that ack in time.
            let seq = proto.sequence;
            self.send_ack(sub_id, seq);
            return;
        }
        sub.unacked.insert(proto.sequence);
        if !proto.redelivered {
            sub.last_received = proto.sequence;
        }
        let _ = sub.tx.send(Ok(proto));
    }

    pub(super) fn send_ack(&mut self, sub_id: u64, seq: u64) {
        self.send_acks(sub_id, &[seq]);
    }

    /// Queue the acks of `seqs` in order (sent once the current wake is handled), or keep
    /// them until the subscription's ack inbox is known.
    pub(super) fn send_acks(&mut self, sub_id: u64, seqs: &[u64]) {
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            return;
        };
        match &sub.ack_inbox {
            Some(inbox) => {
                for &seq in seqs {
                    let ack = self.shared.encoder.ack(&sub.spec.channel, seq);
                    self.outgoing.push((inbox.clone(), ack));
                }
            }
            None => sub.queued_acks.extend_from_slice(seqs),
        }
    }
}

//! PubAcks and their timeouts, in the connection task.

use prost::Message as _;
use stan_protocol::errors;
use stan_protocol::pb;
use tokio::time::Instant;
use tracing::warn;

use super::task::Task;
use crate::error::{Error, ErrorKind};
use crate::lock::lock;

impl Task {
    pub(super) fn arm_pub_timer(&mut self) {
        let front = lock(&self.shared.pending).order.front().map(|(d, _)| *d);
        match front {
            Some(deadline) => {
                self.pub_sleep.as_mut().reset(deadline);
                self.pub_armed = true;
            }
            None => self.pub_armed = false,
        }
    }

    pub(super) fn sweep_pub_timeouts(&mut self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut p = lock(&self.shared.pending);
            while let Some((deadline, _)) = p.order.front() {
                if *deadline > now {
                    break;
                }
                if let Some((_, guid)) = p.order.pop_front() {
                    if let Some(entry) = p.map.remove(&guid) {
                        expired.push(entry);
                    }
                }
            }
        }
        for entry in expired {
            let _ = entry.tx.send(Err(Error::new(
                ErrorKind::PublishAckTimeout,
                errors::PUB_ACK_TIMEOUT,
            )));
        }
        self.arm_pub_timer();
    }

    pub(super) fn on_pub_ack(&mut self, m: async_nats::Message) {
        let ack = match pb::PubAck::decode(m.payload) {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "dropping undecodable PubAck");
                return;
            }
        };
        let entry = lock(&self.shared.pending).remove(&ack.guid);
        let Some(entry) = entry else { return };
        if ack.error.is_empty() {
            let _ = entry.tx.send(Ok(ack.guid));
        } else {
            if ack.error == errors::INVALID_PUB_REQ {
                // Our connID may no longer be registered: find out now rather than at the next
                // ping.
                self.ping_now_sync();
            }
            let _ = entry
                .tx
                .send(Err(Error::new(ErrorKind::ServerRejected, ack.error)));
        }
    }
}

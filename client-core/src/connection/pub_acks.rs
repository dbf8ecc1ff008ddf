//! PubAcks and their timeouts, in the connection task.

use prost::Message as _;
use stan_protocol::errors;
use stan_protocol::pb;
use tokio::time::Instant;
use tracing::warn;

use super::deadline::deadline_after;
use super::task::Task;
use crate::error::{Error, ErrorKind};
use crate::lock::lock;

impl Task {
    /// A publisher asked for the pub-ack timer: set it at the earliest deadline, or, when the
    /// acks came in meanwhile, at the deadline a publish made now would get (no later entry
    /// can expire before it). Staying set while the table is empty spares the publishers of
    /// an idle client from waking the task (see [`PendingPubs::timer_armed`]); the timer then
    /// fires once, finds nothing and is unset.
    ///
    /// [`PendingPubs::timer_armed`]: super::pending::PendingPubs::timer_armed
    pub(super) fn arm_pub_timer(&mut self) {
        let deadline = {
            let mut p = lock(&self.shared.pending);
            p.timer_armed = true;
            p.front_deadline()
                .unwrap_or_else(|| deadline_after(self.shared.pub_ack_wait))
        };
        self.pub_sleep.as_mut().reset(deadline);
        self.pub_armed = true;
    }

    /// After the timer fired: set it at the earliest deadline left, or unset it.
    fn rearm_pub_timer(&mut self) {
        let front = {
            let mut p = lock(&self.shared.pending);
            let front = p.front_deadline();
            p.timer_armed = front.is_some();
            front
        };
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
            while let Some(entry) = p.pop_expired(now) {
                expired.push(entry);
            }
        }
        for entry in expired {
            let _ = entry.tx.send(Err(Error::new(
                ErrorKind::PublishAckTimeout,
                errors::PUB_ACK_TIMEOUT,
            )));
        }
        self.rearm_pub_timer();
    }

    /// True for the first publish of the current session refused for its connID (one ping
    /// checks the session; the others need none).
    fn first_refusal_of_session(&self) -> bool {
        let mut p = lock(&self.shared.pending);
        let first = p.conn_probe_epoch != self.epoch;
        p.conn_probe_epoch = self.epoch;
        first
    }

    pub(super) fn on_pub_ack(&mut self, m: async_nats::Message) {
        let ack = match pb::PubAck::decode(m.payload) {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "dropping undecodable PubAck");
                return;
            }
        };
        let unknown_conn = ack.error == errors::INVALID_PUB_REQ;
        let entry = lock(&self.shared.pending).take_for_ack(&ack.guid, unknown_conn);
        let Some(entry) = entry else {
            if unknown_conn && self.first_refusal_of_session() {
                // Kept for a re-send: find out at once whether the session is gone.
                self.ping_now_sync();
            }
            return;
        };
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stan_test_support::{unique, within, InProcessBroker};

    use crate::{ConnectOptions, ErrorKind};

    /// Publishes awaited one after the other leave the pub-ack timer set between them (they do
    /// not wake the connection task); it fires once idle and is unset. Timeouts still come,
    /// both for a publish while it is set (at an earlier deadline) and after it was unset.
    #[tokio::test]
    async fn pub_ack_timeouts_while_the_timer_is_set_idle_and_after_it_was_unset() {
        let broker = InProcessBroker::start().await;
        let wait = Duration::from_millis(200);
        let client = ConnectOptions::new(broker.cluster_id(), unique("c"))
            .nats_url(broker.url())
            .pub_ack_wait(wait)
            .connect()
            .await
            .unwrap();
        let ch = unique("ch");
        for i in 0..3 {
            client.publish(&ch, format!("m{i}")).await.unwrap();
        }
        // The timer is still set (idle, for the first publish's deadline).
        broker.freeze(true);
        let err = within("a pub-ack timeout", client.publish(&ch, "frozen 1"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PublishAckTimeout);
        broker.freeze(false);
        client.publish(&ch, "thawed").await.unwrap();
        // Nothing can be awaited for "the idle timer fired and was unset": let it fire.
        tokio::time::sleep(wait * 3).await;
        broker.freeze(true);
        let err = within("a pub-ack timeout", client.publish(&ch, "frozen 2"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PublishAckTimeout);
        broker.freeze(false);
        client.publish(&ch, "after").await.unwrap();
        client.close().await.unwrap();
    }
}

//! Engine-side records of clients, channels, subscriptions and queue groups.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::store::{ChannelStore, SubRecord};
use crate::transport::TransportSubscription;

/// A registered client.
pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) hb_inbox: String,
    pub(crate) conn_id: Bytes,
    /// Which registration of this client ID this is (unique in the server's lifetime):
    /// late answers to probes of an earlier registration are told apart by it, also for
    /// clients that send no connID.
    pub(crate) registration: u64,
    /// Active subscriptions owned by this client.
    pub(crate) subs: Vec<u64>,
    /// Consecutive unanswered heartbeats.
    pub(crate) hb_failures: u32,
    /// A heartbeat request is out.
    pub(crate) hb_in_flight: bool,
    /// A duplicate-client probe is out.
    pub(crate) dup_check: bool,
    /// Core-NATS connection the client is bound to (client isolation); `None` until known.
    pub(crate) origin: Option<u64>,
}

/// A subscription (active, offline durable, or offline durable queue group state).
pub(crate) struct Sub {
    pub(crate) id: u64,
    pub(crate) channel: String,
    pub(crate) client_id: String,
    pub(crate) inbox: String,
    pub(crate) ack_inbox: String,
    /// Durable name of a plain durable (empty for queue members).
    pub(crate) durable_name: String,
    /// Queue group name (`durable:group` for durable queue groups).
    pub(crate) q_group: String,
    pub(crate) is_durable: bool,
    pub(crate) max_in_flight: i32,
    /// Ack wait as requested (negative: milliseconds, test option).
    pub(crate) ack_wait_raw: i32,
    pub(crate) ack_wait: Duration,
    pub(crate) last_sent: u64,
    /// Delivered, unacknowledged sequences with their expiry.
    pub(crate) pending: BTreeMap<u64, Instant>,
    /// Redelivery counts of plain subscriptions (queue groups keep theirs on the group).
    pub(crate) redeliveries: HashMap<u64, u32>,
    pub(crate) offline: bool,
    pub(crate) ack_sub: Option<Box<dyn TransportSubscription>>,
}

impl Sub {
    /// Pending ≥ max in flight.
    pub(crate) fn stalled(&self) -> bool {
        self.pending.len() >= self.max_in_flight.max(1) as usize
    }

    /// The persisted form.
    pub(crate) fn record(&self) -> SubRecord {
        SubRecord {
            id: self.id,
            client_id: self.client_id.clone(),
            q_group: self.q_group.clone(),
            inbox: self.inbox.clone(),
            ack_inbox: self.ack_inbox.clone(),
            max_in_flight: self.max_in_flight,
            ack_wait_in_secs: self.ack_wait_raw,
            durable_name: self.durable_name.clone(),
            last_sent: self.last_sent,
            is_durable: self.is_durable,
            is_closed: self.offline,
        }
    }
}

/// A queue group of one channel.
pub(crate) struct QueueGroup {
    /// Active members, in choice order.
    pub(crate) members: Vec<u64>,
    /// Shared last sent sequence.
    pub(crate) last_sent: u64,
    /// Redelivery counts, shared by the members.
    pub(crate) redeliveries: HashMap<u64, u32>,
    /// Durable queue group.
    pub(crate) durable: bool,
    /// State kept while a durable group has no member.
    pub(crate) offline: Option<u64>,
}

impl QueueGroup {
    /// A group without members yet, starting after `last_sent`.
    pub(crate) fn new(last_sent: u64, durable: bool) -> Self {
        QueueGroup {
            members: Vec::new(),
            last_sent,
            redeliveries: HashMap::new(),
            durable,
            offline: None,
        }
    }
}

/// A channel.
pub(crate) struct Channel {
    pub(crate) name: String,
    pub(crate) store: ChannelStore,
    /// Plain subscriptions, including offline durables.
    pub(crate) subs: Vec<u64>,
    /// Plain durables by (client ID, durable name).
    pub(crate) durables: HashMap<(String, String), u64>,
    /// Queue groups by name.
    pub(crate) queues: BTreeMap<String, QueueGroup>,
    /// Last publish or subscription activity (for max_inactivity).
    pub(crate) last_activity: Instant,
    /// The max_age timer is armed.
    pub(crate) age_timer: bool,
    /// Index of the channel in the pending batch's touched channels, if it is one of them.
    pub(crate) batch_slot: Option<usize>,
}

impl Channel {
    /// Every stored subscription: plain ones, queue members, offline durable groups.
    pub(crate) fn all_sub_ids(&self) -> Vec<u64> {
        let mut v = self.subs.clone();
        for g in self.queues.values() {
            v.extend(g.members.iter().copied());
            v.extend(g.offline);
        }
        v
    }

    /// Number of stored subscriptions (the `max_subs` count).
    pub(crate) fn stored_sub_count(&self) -> usize {
        self.subs.len()
            + self
                .queues
                .values()
                .map(|g| g.members.len() + usize::from(g.offline.is_some()))
                .sum::<usize>()
    }

    /// Effective max_inactivity (zero = unlimited).
    pub(crate) fn max_inactivity(&self) -> Duration {
        self.store.limits.max_inactivity.unwrap_or(Duration::ZERO)
    }

    /// Effective max_age (zero = unlimited).
    pub(crate) fn max_age(&self) -> Duration {
        self.store.limits.max_age.unwrap_or(Duration::ZERO)
    }
}

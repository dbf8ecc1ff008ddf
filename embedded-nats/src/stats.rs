//! Statistics for monitoring: counters kept with relaxed atomics on the hot paths, and the
//! plain snapshot structs [`Server`](crate::Server) hands out (`varz_stats`, `connections`,
//! `subscriptions`, `sublist_stats`).

//!
//! A leaf module: the connection and subscription types build their own reports from these
//! structs, so nothing here depends on them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Nanoseconds since the Unix epoch of `t` (0 before it).
fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn from_unix_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Server-wide counters.
pub(crate) struct ServerCounters {
    start: SystemTime,
    in_msgs: AtomicU64,
    in_bytes: AtomicU64,
    out_msgs: AtomicU64,
    out_bytes: AtomicU64,
    slow_consumers: AtomicU64,
    total_connections: AtomicU64,
}

impl Default for ServerCounters {
    fn default() -> Self {
        ServerCounters {
            start: SystemTime::now(),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            slow_consumers: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
        }
    }
}

impl ServerCounters {
    /// A message of `size` bytes was published (by any connection, TCP or in-process), and
    /// handed to `delivered` subscriptions.
    pub(crate) fn routed(&self, size: usize, delivered: usize) {
        let size = size as u64;
        add(&self.in_msgs, 1);
        add(&self.in_bytes, size);
        if delivered > 0 {
            add(&self.out_msgs, delivered as u64);
            add(&self.out_bytes, size * delivered as u64);
        }
    }

    /// A TCP connection was accepted.
    pub(crate) fn connection_opened(&self) {
        add(&self.total_connections, 1);
    }

    /// A TCP connection was closed as a slow consumer.
    pub(crate) fn slow_consumer(&self) {
        add(&self.slow_consumers, 1);
    }
}

/// Name, language and version a client gave in its CONNECT.
#[derive(Default, Clone)]
struct ConnMeta {
    name: String,
    lang: String,
    version: String,
}

/// Counters of one TCP connection.
pub(crate) struct ConnCounters {
    start: SystemTime,
    in_msgs: AtomicU64,
    in_bytes: AtomicU64,
    out_msgs: AtomicU64,
    out_bytes: AtomicU64,
    /// Unix nanoseconds of the last read from or completed write to the socket.
    last_activity: AtomicU64,
    /// Last measured round trip of a server PING, in nanoseconds; 0 = not measured yet.
    rtt: AtomicU64,
    slow_consumer: AtomicBool,
    meta: Mutex<ConnMeta>,
}

impl Default for ConnCounters {
    fn default() -> Self {
        let start = SystemTime::now();
        ConnCounters {
            start,
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            last_activity: AtomicU64::new(unix_nanos(start)),
            rtt: AtomicU64::new(0),
            slow_consumer: AtomicBool::new(false),
            meta: Mutex::new(ConnMeta::default()),
        }
    }
}

impl ConnCounters {
    /// The connection published a message of `size` bytes.
    pub(crate) fn received(&self, size: usize) {
        add(&self.in_msgs, 1);
        add(&self.in_bytes, size as u64);
    }

    /// A message of `size` bytes was queued to the connection.
    pub(crate) fn sent(&self, size: usize) {
        add(&self.out_msgs, 1);
        add(&self.out_bytes, size as u64);
    }

    /// The socket was read from or written to now.
    pub(crate) fn touch(&self) {
        self.last_activity
            .store(unix_nanos(SystemTime::now()), Ordering::Relaxed);
    }

    /// Records the round trip of a server PING.
    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.rtt.store(nanos, Ordering::Relaxed);
    }

    /// Marks the connection as closed for being a slow consumer; true the first time.
    pub(crate) fn mark_slow_consumer(&self) -> bool {
        !self.slow_consumer.swap(true, Ordering::Relaxed)
    }

    /// True once the connection was closed as a slow consumer.
    pub(crate) fn was_slow_consumer(&self) -> bool {
        self.slow_consumer.load(Ordering::Relaxed)
    }

    /// Records what the client's CONNECT said about it.
    pub(crate) fn set_meta(&self, name: Option<&str>, lang: Option<&str>, version: Option<&str>) {
        *lock(&self.meta) = ConnMeta {
            name: name.unwrap_or_default().to_string(),
            lang: lang.unwrap_or_default().to_string(),
            version: version.unwrap_or_default().to_string(),
        };
    }
}

/// Counters of the subject index.
#[derive(Default)]
pub(crate) struct SublistCounters {
    pub inserts: AtomicU64,
    pub removes: AtomicU64,
    pub matches: AtomicU64,
    pub cache_hits: AtomicU64,
}

impl SublistCounters {
    /// Bumps one counter by one.
    pub(crate) fn bump(counter: &AtomicU64) {
        add(counter, 1);
    }
}

/// Server-wide figures, as `/varz` reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct VarzStats {
    /// When the server started.
    pub start: SystemTime,
    /// Messages published by all connections (TCP and in-process).
    pub in_msgs: u64,
    /// Payload bytes (headers included) of those messages.
    pub in_bytes: u64,
    /// Messages handed to subscriptions (one per receiving subscription).
    pub out_msgs: u64,
    /// Payload bytes (headers included) of those deliveries.
    pub out_bytes: u64,
    /// TCP connections closed as slow consumers so far.
    pub slow_consumers: u64,
    /// TCP connections accepted since the start.
    pub total_connections: u64,
    /// TCP connections open now.
    pub connections: usize,
    /// Subscriptions (TCP and in-process) registered now.
    pub subscriptions: usize,
}

/// One subscription, as `/connz?subs=detail` and `/subsz?subs=1` list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// Subject (may hold wildcards).
    pub subject: String,
    /// Queue group, if any.
    pub queue: Option<String>,
    /// The client's subscription id (TCP), or the server-wide subscription id (in-process).
    pub sid: String,
    /// Messages delivered to it so far.
    pub msgs: u64,
    /// Auto-unsubscribe limit, if one was set.
    pub max: Option<u64>,
    /// Id of the owning connection (TCP cid, or the in-process connection's id).
    pub cid: u64,
}

/// One open TCP connection, as `/connz` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionInfo {
    /// Connection id (the `client_id` of its INFO).
    pub cid: u64,
    /// Remote IP address.
    pub ip: String,
    /// Remote port.
    pub port: u16,
    /// When the connection was accepted.
    pub start: SystemTime,
    /// Last read from or completed write to its socket.
    pub last_activity: SystemTime,
    /// Round trip of the last answered server PING; `None` until one was answered.
    pub rtt: Option<Duration>,
    /// Outbound bytes buffered or being written.
    pub pending_bytes: usize,
    /// Messages it published.
    pub in_msgs: u64,
    /// Bytes (payload and headers) it published.
    pub in_bytes: u64,
    /// Messages queued to it.
    pub out_msgs: u64,
    /// Bytes (payload and headers) queued to it.
    pub out_bytes: u64,
    /// Its subscriptions, ordered by subject.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// `name` of its CONNECT (empty when not given).
    pub name: String,
    /// `lang` of its CONNECT (empty when not given).
    pub lang: String,
    /// `version` of its CONNECT (empty when not given).
    pub version: String,
}

/// Subject index figures, as `/subsz` reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct SublistStats {
    /// Subscriptions registered now.
    pub num_subscriptions: u64,
    /// Match results held in the cache now.
    pub num_cache: u64,
    /// Subscriptions inserted since the start.
    pub num_inserts: u64,
    /// Subscriptions removed since the start.
    pub num_removes: u64,
    /// Subject look-ups since the start (one per publish, plus interest checks).
    pub num_matches: u64,
    /// Share of look-ups answered from the cache (0 to 1).
    pub cache_hit_rate: f64,
    /// Largest fan-out (plain subscriptions plus queue groups) of a cached result.
    pub max_fanout: u64,
    /// Average fan-out of the cached results.
    pub avg_fanout: f64,
}

impl SublistCounters {
    /// A snapshot, given the live figures only the index knows (count and the fan-out of
    /// each cached result).
    pub(crate) fn snapshot(
        &self,
        count: usize,
        fanouts: impl ExactSizeIterator<Item = usize>,
    ) -> SublistStats {
        let num_cache = fanouts.len();
        let (mut max, mut total) = (0usize, 0usize);
        for f in fanouts {
            max = max.max(f);
            total += f;
        }
        let matches = get(&self.matches);
        let hits = get(&self.cache_hits);
        SublistStats {
            num_subscriptions: count as u64,
            num_cache: num_cache as u64,
            num_inserts: get(&self.inserts),
            num_removes: get(&self.removes),
            num_matches: matches,
            cache_hit_rate: if matches == 0 {
                0.0
            } else {
                hits as f64 / matches as f64
            },
            max_fanout: max as u64,
            avg_fanout: if num_cache == 0 {
                0.0
            } else {
                total as f64 / num_cache as f64
            },
        }
    }
}

/// The server-wide figures.
pub(crate) fn varz(counters: &ServerCounters, connections: usize, subs: usize) -> VarzStats {
    VarzStats {
        start: counters.start,
        in_msgs: get(&counters.in_msgs),
        in_bytes: get(&counters.in_bytes),
        out_msgs: get(&counters.out_msgs),
        out_bytes: get(&counters.out_bytes),
        slow_consumers: get(&counters.slow_consumers),
        total_connections: get(&counters.total_connections),
        connections,
        subscriptions: subs,
    }
}

impl ConnCounters {
    /// The report of the connection `cid` from `peer`, given its pending bytes and its
    /// subscriptions (sorted here by subject).
    pub(crate) fn report(
        &self,
        cid: u64,
        peer: SocketAddr,
        pending_bytes: usize,
        mut subscriptions: Vec<SubscriptionInfo>,
    ) -> ConnectionInfo {
        let meta = lock(&self.meta).clone();
        subscriptions.sort_by(|a, b| a.subject.cmp(&b.subject).then(a.sid.cmp(&b.sid)));
        let rtt = get(&self.rtt);
        ConnectionInfo {
            cid,
            ip: peer.ip().to_string(),
            port: peer.port(),
            start: self.start,
            last_activity: from_unix_nanos(get(&self.last_activity)),
            rtt: (rtt > 0).then(|| Duration::from_nanos(rtt)),
            pending_bytes,
            in_msgs: get(&self.in_msgs),
            in_bytes: get(&self.in_bytes),
            out_msgs: get(&self.out_msgs),
            out_bytes: get(&self.out_bytes),
            subscriptions,
            name: meta.name,
            lang: meta.lang,
            version: meta.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_counters_add_up() {
        let c = ServerCounters::default();
        c.routed(10, 0);
        c.routed(5, 3);
        c.connection_opened();
        c.slow_consumer();
        let v = varz(&c, 1, 2);
        assert_eq!((v.in_msgs, v.in_bytes), (2, 15));
        assert_eq!((v.out_msgs, v.out_bytes), (3, 15));
        assert_eq!((v.total_connections, v.slow_consumers), (1, 1));
        assert_eq!((v.connections, v.subscriptions), (1, 2));
        assert!(v.start <= SystemTime::now());
    }

    #[test]
    fn sublist_snapshot_rates() {
        let c = SublistCounters::default();
        let empty = c.snapshot(0, std::iter::empty::<usize>());
        assert_eq!(empty.cache_hit_rate, 0.0);
        assert_eq!(empty.avg_fanout, 0.0);
        for _ in 0..4 {
            SublistCounters::bump(&c.matches);
        }
        SublistCounters::bump(&c.cache_hits);
        let s = c.snapshot(7, [1usize, 3, 2].into_iter());
        assert_eq!(s.num_subscriptions, 7);
        assert_eq!(s.num_cache, 3);
        assert_eq!(s.num_matches, 4);
        assert_eq!(s.cache_hit_rate, 0.25);
        assert_eq!(s.max_fanout, 3);
        assert_eq!(s.avg_fanout, 2.0);
    }

    #[test]
    fn conn_counters() {
        let c = ConnCounters::default();
        c.received(4);
        c.sent(6);
        c.sent(1);
        assert_eq!(get(&c.in_msgs), 1);
        assert_eq!((get(&c.out_msgs), get(&c.out_bytes)), (2, 7));
        c.set_rtt(Duration::ZERO);
        assert_eq!(get(&c.rtt), 1, "a measured rtt is never 'not measured'");
        assert!(c.mark_slow_consumer());
        assert!(!c.mark_slow_consumer());
        assert!(c.was_slow_consumer());
    }
}

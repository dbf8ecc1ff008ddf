//! Plain option structs with builder methods: [`ConnectOptions`], [`SubscribeOptions`],
//! [`StartPosition`], [`TlsOptions`].
//!
//! Every field is public plain data; `None` means "the core default" (the `stan.go` values in
//! [`stan_protocol::defaults`]). Bindings fill the fields directly; Rust code usually chains the
//! builder methods.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use stan_protocol::defaults;
use stan_protocol::subjects::DEFAULT_DISCOVER_PREFIX;
use stan_protocol::validate;

use crate::error::{Error, Result};

/// TLS settings for the NATS connection (passed through to the NATS library).
///
/// ```no_run
/// # async fn demo() -> stan_client::Result<()> {
/// use stan_client::{ConnectOptions, TlsOptions};
/// let tls = TlsOptions::default()
///     .require_tls(true)
///     .root_certificate("/etc/ssl/ca.pem")
///     .client_certificate("/etc/ssl/client.pem", "/etc/ssl/client.key");
/// let client = ConnectOptions::new("test-cluster", "me")
///     .nats_url("tls://127.0.0.1:4222")
///     .tls(tls)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Require TLS even when the server does not ask for it.
    pub require_tls: bool,
    /// PEM files with extra root certificates to trust.
    pub root_certificates: Vec<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

impl TlsOptions {
    /// Require TLS.
    pub fn require_tls(mut self, require: bool) -> Self {
        self.require_tls = require;
        self
    }

    /// Trust the root certificate(s) in a PEM file.
    pub fn root_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates.push(path.into());
        self
    }

    /// Present a client certificate.
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some((cert.into(), key.into()));
        self
    }
}

/// Everything [`connect`](ConnectOptions::connect) needs.
///
/// Defaults (used when a field is `None`): NATS URL `nats://127.0.0.1:4222`, connect wait 2 s,
/// pub-ack wait 30 s, 16384 publishes awaiting acks, pings every 5 s with 88 allowed misses,
/// discover prefix `_STAN.discover`, auto-resume on.
///
/// ```no_run
/// # async fn demo() -> stan_client::Result<()> {
/// use std::time::Duration;
/// use stan_client::ConnectOptions;
///
/// let client = ConnectOptions::new("test-cluster", "orders-service")
///     .nats_url("nats://127.0.0.1:4222")
///     .user_and_password("app", "secret")
///     .pub_ack_wait(Duration::from_secs(10))
///     .pings(Duration::from_secs(5), 88)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Cluster ID of the streaming server (required).
    pub cluster_id: String,
    /// Client ID (required; letters, digits, `-` and `_`).
    pub client_id: String,
    /// NATS server URLs; empty means `nats://127.0.0.1:4222`. Ignored when
    /// [`nats_client`](Self::nats_client) is set.
    pub nats_urls: Vec<String>,
    /// An existing NATS connection to use instead of opening one.
    ///
    /// This is the one place where a dependency type (`async_nats::Client`) appears in the public
    /// API, by design: applications that already hold a NATS connection can share it. The
    /// client then does not close that connection, and the NATS disconnect/reconnect events are
    /// derived from its state (checked at every ping) instead of being reported at once. The
    /// connection's `subscription_capacity` bounds how many PubAcks and deliveries can wait
    /// for the client (async-nats drops the rest): set it above `max_pub_acks_in_flight` and
    /// the subscriptions' max in flight (a connection the client opens itself queues at least
    /// 1,048,576, and twice `max_pub_acks_in_flight`).
    pub nats_client: Option<async_nats::Client>,
    /// NATS user name (with [`password`](Self::password)).
    pub user: Option<String>,
    /// NATS password.
    pub password: Option<String>,
    /// NATS token.
    pub token: Option<String>,
    /// TLS settings for the NATS connection.
    pub tls: Option<TlsOptions>,
    /// How long to wait for the connect, subscribe, unsubscribe and close replies (2 s).
    pub connect_wait: Option<Duration>,
    /// How long to wait for a publish to be acknowledged (30 s).
    pub pub_ack_wait: Option<Duration>,
    /// Publishes awaiting an ack before further publishers wait (16384).
    pub max_pub_acks_in_flight: Option<usize>,
    /// Interval between pings to the server (5 s; at least 1 s, whole seconds).
    pub ping_interval: Option<Duration>,
    /// Unanswered pings before the session counts as lost (88; at least 2).
    pub ping_max_out: Option<u32>,
    /// Discover prefix of the server (`_STAN.discover`).
    pub discover_prefix: Option<String>,
    /// Re-register and re-create subscriptions when the session is lost (on by default).
    pub auto_resume: Option<bool>,
    /// Test-only (cargo feature `test-hooks`): ping interval in milliseconds, sent as a negative
    /// value (servers echo it). Overrides [`ping_interval`](Self::ping_interval) and skips its
    /// 1 s minimum.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub ping_interval_millis_for_tests: Option<u32>,
}

impl ConnectOptions {
    /// Options for `cluster_id` and `client_id`, everything else default.
    ///
    /// ```no_run
    /// # async fn demo() -> stan_client::Result<()> {
    /// let client = stan_client::ConnectOptions::new("test-cluster", "me").connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn new(cluster_id: impl Into<String>, client_id: impl Into<String>) -> Self {
        ConnectOptions {
            cluster_id: cluster_id.into(),
            client_id: client_id.into(),
            ..Default::default()
        }
    }

    /// Add a NATS server URL (may be called several times for a cluster; a comma-separated
    /// list, `nats://a:4222,nats://b:4222`, adds each of its URLs).
    pub fn nats_url(mut self, url: impl Into<String>) -> Self {
        self.nats_urls.push(url.into());
        self
    }

    /// Use an existing NATS connection (see the field docs: the caller keeps ownership).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let client = stan_client::ConnectOptions::new("test-cluster", "me")
    ///     .nats_client(nats.clone())
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn nats_client(mut self, client: async_nats::Client) -> Self {
        self.nats_client = Some(client);
        self
    }

    /// Authenticate to NATS with a user name and password.
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user = Some(user.into());
        self.password = Some(password.into());
        self
    }

    /// Authenticate to NATS with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// TLS settings for the NATS connection.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Wait for connect/subscribe/unsubscribe/close replies.
    pub fn connect_wait(mut self, wait: Duration) -> Self {
        self.connect_wait = Some(wait);
        self
    }

    /// Wait for publish acks.
    pub fn pub_ack_wait(mut self, wait: Duration) -> Self {
        self.pub_ack_wait = Some(wait);
        self
    }

    /// Publishes awaiting an ack before publishers wait.
    pub fn max_pub_acks_in_flight(mut self, max: usize) -> Self {
        self.max_pub_acks_in_flight = Some(max);
        self
    }

    /// Ping interval (≥ 1 s, whole seconds) and unanswered pings allowed (≥ 2).
    pub fn pings(mut self, interval: Duration, max_out: u32) -> Self {
        self.ping_interval = Some(interval);
        self.ping_max_out = Some(max_out);
        self
    }

    /// Discover prefix of the server.
    pub fn discover_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.discover_prefix = Some(prefix.into());
        self
    }

    /// Turn auto-resume on (default) or off.
    pub fn auto_resume(mut self, on: bool) -> Self {
        self.auto_resume = Some(on);
        self
    }

    /// Test-only (cargo feature `test-hooks`): ping every `millis` milliseconds (sent as a
    /// negative interval).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn ping_interval_millis_for_tests(mut self, millis: u32, max_out: u32) -> Self {
        self.ping_interval_millis_for_tests = Some(millis);
        self.ping_max_out = Some(max_out);
        self
    }

    /// For bindings: sets the test-only ping interval when `millis` is given. A build without
    /// the `test-hooks` feature refuses a value with [`ErrorKind::InvalidArgument`]
    /// (`option` names it as the host language spells it), so a release package never
    /// silently ignores it.
    ///
    /// [`ErrorKind::InvalidArgument`]: crate::ErrorKind::InvalidArgument
    #[doc(hidden)]
    pub fn with_test_ping_interval(self, millis: Option<u32>, option: &str) -> Result<Self> {
        let Some(millis) = millis else {
            return Ok(self);
        };
        #[cfg(feature = "test-hooks")]
        {
            let _ = option;
            let mut o = self;
            o.ping_interval_millis_for_tests = Some(millis);
            Ok(o)
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            let _ = millis;
            Err(Error::invalid_argument(format!(
                "{option} is a test hook: this build was compiled without the `test-hooks` \
                 feature"
            )))
        }
    }

    /// The test-only ping interval override (the field `ping_interval_millis_for_tests`);
    /// always `None` without the `test-hooks` feature, so callers need no `cfg` of their own.
    pub(crate) fn ping_interval_override(&self) -> Option<Duration> {
        #[cfg(feature = "test-hooks")]
        {
            self.ping_interval_millis_for_tests
                .map(|ms| Duration::from_millis(u64::from(ms)))
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            None
        }
    }

    /// Check the options and fill in defaults.
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        if self.cluster_id.is_empty() {
            return Err(Error::invalid_argument("cluster ID must not be empty"));
        }
        if !validate::is_valid_client_id(&self.client_id) {
            return Err(Error::invalid_argument(format!(
                "invalid client ID {:?}: only alphanumeric and `-` or `_` characters allowed",
                self.client_id
            )));
        }
        let connect_wait = positive(self.connect_wait, defaults::CONNECT_WAIT, "connect wait")?;
        let pub_ack_wait = positive(self.pub_ack_wait, defaults::PUB_ACK_WAIT, "pub ack wait")?;
        let max_pub_acks = self
            .max_pub_acks_in_flight
            .unwrap_or(defaults::MAX_PUB_ACKS_IN_FLIGHT);
        if max_pub_acks == 0 || max_pub_acks > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(Error::invalid_argument(
                "max pub acks in flight must be at least 1",
            ));
        }
        let ping_max_out = self.ping_max_out.unwrap_or(defaults::PING_MAX_OUT as u32);
        if ping_max_out < 2 || ping_max_out > i32::MAX as u32 {
            return Err(Error::invalid_argument("ping max out must be at least 2"));
        }
        let ping_interval_wire = if let Some(interval) = self.ping_interval_override() {
            // Sent as a negative number of milliseconds (servers in test mode echo it).
            let ms = i32::try_from(interval.as_millis())
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| {
                    Error::invalid_argument("test ping interval must be at least 1 ms")
                })?;
            -ms
        } else {
            let interval = self
                .ping_interval
                .unwrap_or(Duration::from_secs(defaults::PING_INTERVAL_SECS as u64));
            if interval < Duration::from_secs(1) {
                return Err(Error::invalid_argument(
                    "ping interval must be at least 1 second",
                ));
            }
            i32::try_from(interval.as_secs())
                .map_err(|_| Error::invalid_argument("ping interval too large"))?
        };
        let discover_prefix = self
            .discover_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_DISCOVER_PREFIX.to_string());
        if discover_prefix.is_empty() || discover_prefix.contains(char::is_whitespace) {
            return Err(Error::invalid_argument("invalid discover prefix"));
        }
        if self.password.is_some() != self.user.is_some() {
            return Err(Error::invalid_argument(
                "user and password must be given together",
            ));
        }
        Ok(Resolved {
            connect_wait,
            pub_ack_wait,
            max_pub_acks,
            ping_interval_wire,
            ping_max_out: ping_max_out as i32,
            discover_subject: format!("{discover_prefix}.{}", self.cluster_id),
            auto_resume: self.auto_resume.unwrap_or(true),
        })
    }
}

fn positive(value: Option<Duration>, default: Duration, what: &str) -> Result<Duration> {
    let v = value.unwrap_or(default);
    if v.is_zero() {
        return Err(Error::invalid_argument(format!("{what} must be positive")));
    }
    Ok(v)
}

/// Connect options after validation, with defaults applied.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) connect_wait: Duration,
    pub(crate) pub_ack_wait: Duration,
    pub(crate) max_pub_acks: usize,
    /// As sent on the wire: seconds, or negative milliseconds (tests).
    pub(crate) ping_interval_wire: i32,
    pub(crate) ping_max_out: i32,
    pub(crate) discover_subject: String,
    pub(crate) auto_resume: bool,
}

/// Where a new subscription starts. Ignored when a durable subscription resumes or a queue
/// member joins an existing group.
///
/// ```
/// use std::time::Duration;
/// use stan_client::{StartPosition, SubscribeOptions};
/// let opts = SubscribeOptions::new().start_at(StartPosition::TimeDelta(Duration::from_secs(60)));
/// assert_eq!(opts.start_position, Some(StartPosition::TimeDelta(Duration::from_secs(60))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// Only messages published after the subscription (the default).
    #[default]
    NewOnly,
    /// Start with the last stored message.
    LastReceived,
    /// Everything the channel still stores ("deliver all available").
    First,
    /// Start at this sequence (below the first stored: from the first; beyond the last: new only).
    Sequence(u64),
    /// Start with the first message stored at or after this time.
    Time(SystemTime),
    /// Start with the first message not older than this.
    TimeDelta(Duration),
}

impl StartPosition {
    /// (wire position, start sequence, start time delta in ns).
    pub(crate) fn to_wire(self) -> (stan_protocol::StartPosition, u64, i64) {
        use stan_protocol::StartPosition as W;
        match self {
            StartPosition::NewOnly => (W::NewOnly, 0, 0),
            StartPosition::LastReceived => (W::LastReceived, 0, 0),
            StartPosition::First => (W::First, 0, 0),
            StartPosition::Sequence(s) => (W::SequenceStart, s, 0),
            StartPosition::Time(t) => {
                let delta = match SystemTime::now().duration_since(t) {
                    Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                    Err(future) => -i64::try_from(future.duration().as_nanos()).unwrap_or(i64::MAX),
                };
                (W::TimeDeltaStart, 0, delta)
            }
            StartPosition::TimeDelta(d) => (
                W::TimeDeltaStart,
                0,
                i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            ),
        }
    }
}

/// Options of [`Client::subscribe`](crate::Client::subscribe).
///
/// Defaults: no queue group, not durable, [`StartPosition::NewOnly`], max in flight 1024,
/// ack wait 30 s, automatic acks.
///
/// ```no_run
/// # async fn demo(client: stan_client::Client) -> stan_client::Result<()> {
/// use std::time::Duration;
/// use futures::StreamExt;
/// use stan_client::{StartPosition, SubscribeOptions};
///
/// let opts = SubscribeOptions::durable("audit")
///     .start_at(StartPosition::First)
///     .max_in_flight(64)
///     .ack_wait(Duration::from_secs(10))
///     .manual_acks(true);
/// let mut sub = client.subscribe("orders", opts).await?;
/// while let Some(msg) = sub.next().await {
///     let msg = msg?;
///     println!("{}: {:?}", msg.sequence(), msg.data());
///     msg.ack().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Queue group: each message goes to one member of the group.
    pub queue_group: Option<String>,
    /// Durable name: the server remembers the position across closes and reconnects.
    pub durable_name: Option<String>,
    /// Where a new subscription starts (default [`StartPosition::NewOnly`]).
    pub start_position: Option<StartPosition>,
    /// Unacknowledged messages the server sends before waiting for acks (1024).
    pub max_in_flight: Option<u32>,
    /// How long the server waits for an ack before redelivering (30 s; whole seconds, ≥ 1 s).
    pub ack_wait: Option<Duration>,
    /// The application acks each message with [`Message::ack`](crate::Message::ack). Otherwise
    /// a message is acked when the next one is requested or the message is dropped.
    pub manual_acks: bool,
}

impl SubscribeOptions {
    /// Default options (new only, auto acks).
    pub fn new() -> Self {
        SubscribeOptions::default()
    }

    /// Options for a durable subscription named `name`.
    pub fn durable(name: impl Into<String>) -> Self {
        SubscribeOptions::new().durable_name(name)
    }

    /// Options for a member of queue group `group`.
    pub fn queue(group: impl Into<String>) -> Self {
        SubscribeOptions::new().queue_group(group)
    }

    /// Set the queue group.
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = Some(group.into());
        self
    }

    /// Set the durable name.
    pub fn durable_name(mut self, name: impl Into<String>) -> Self {
        self.durable_name = Some(name.into());
        self
    }

    /// Set the start position.
    pub fn start_at(mut self, position: StartPosition) -> Self {
        self.start_position = Some(position);
        self
    }

    /// Start with everything the channel still stores.
    pub fn deliver_all_available(self) -> Self {
        self.start_at(StartPosition::First)
    }

    /// Start with the last stored message.
    pub fn start_with_last_received(self) -> Self {
        self.start_at(StartPosition::LastReceived)
    }

    /// Start at a sequence.
    pub fn start_at_sequence(self, sequence: u64) -> Self {
        self.start_at(StartPosition::Sequence(sequence))
    }

    /// Start at a point in time.
    pub fn start_at_time(self, time: SystemTime) -> Self {
        self.start_at(StartPosition::Time(time))
    }

    /// Start with messages not older than `delta`.
    pub fn start_at_time_delta(self, delta: Duration) -> Self {
        self.start_at(StartPosition::TimeDelta(delta))
    }

    /// Set max in flight.
    pub fn max_in_flight(mut self, max: u32) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// Set the ack wait.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = Some(wait);
        self
    }

    /// Turn manual acks on or off.
    pub fn manual_acks(mut self, manual: bool) -> Self {
        self.manual_acks = manual;
        self
    }

    /// Validate and return (max in flight, ack wait seconds).
    pub(crate) fn resolve(&self, channel: &str) -> Result<(i32, i32)> {
        if !validate::is_valid_channel(channel) {
            return Err(Error::invalid_argument(format!(
                "invalid channel name {channel:?}"
            )));
        }
        let mif = self.max_in_flight.unwrap_or(defaults::MAX_IN_FLIGHT as u32);
        let mif = i32::try_from(mif)
            .ok()
            .filter(|m| *m >= 1)
            .ok_or_else(|| Error::invalid_argument("max in flight must be at least 1"))?;
        let wait = self.ack_wait.unwrap_or(defaults::ACK_WAIT);
        let secs = i32::try_from(wait.as_secs())
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| Error::invalid_argument("ack wait must be at least 1 second"))?;
        if let Some(q) = &self.queue_group {
            if q.is_empty() || q.contains(char::is_whitespace) {
                return Err(Error::invalid_argument("invalid queue group name"));
            }
            if let Some(d) = &self.durable_name {
                if !validate::is_valid_durable_queue_name(d) {
                    return Err(Error::invalid_argument(
                        "durable name of a durable queue subscriber can't contain ':'",
                    ));
                }
            }
        }
        if matches!(&self.durable_name, Some(d) if d.is_empty()) {
            return Err(Error::invalid_argument("durable name must not be empty"));
        }
        Ok((mif, secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn connect_defaults_follow_stan_go() {
        let r = ConnectOptions::new("c", "me").resolve().unwrap();
        assert_eq!(r.connect_wait, Duration::from_secs(2));
        assert_eq!(r.pub_ack_wait, Duration::from_secs(30));
        assert_eq!(r.max_pub_acks, 16384);
        assert_eq!(r.ping_interval_wire, 5);
        assert_eq!(r.ping_max_out, 88);
        assert_eq!(r.discover_subject, "_STAN.discover.c");
        assert!(r.auto_resume);
    }

    #[test]
    fn connect_validation() {
        let bad = [
            ConnectOptions::new("", "me"),
            ConnectOptions::new("c", "a.b"),
            ConnectOptions::new("c", ""),
            ConnectOptions::new("c", "me").pings(Duration::from_millis(500), 5),
            ConnectOptions::new("c", "me").pings(Duration::from_secs(1), 1),
            ConnectOptions::new("c", "me").max_pub_acks_in_flight(0),
            ConnectOptions::new("c", "me").pub_ack_wait(Duration::ZERO),
        ];
        for o in bad {
            assert_eq!(
                o.resolve().unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{o:?}"
            );
        }
    }

    #[cfg(feature = "test-hooks")]
    #[test]
    fn bindings_set_the_test_ping_interval_only_when_given() {
        let set = ConnectOptions::new("c", "me")
            .with_test_ping_interval(Some(50), "opt")
            .unwrap();
        assert_eq!(set.resolve().unwrap().ping_interval_wire, -50);
        let unset = ConnectOptions::new("c", "me")
            .with_test_ping_interval(None, "opt")
            .unwrap();
        assert!(unset.resolve().unwrap().ping_interval_wire > 0);
    }

    #[cfg(feature = "test-hooks")]
    #[test]
    fn test_ping_interval_in_millis() {
        let ms = ConnectOptions::new("c", "me")
            .ping_interval_millis_for_tests(50, 3)
            .resolve()
            .unwrap();
        assert_eq!(ms.ping_interval_wire, -50);
        assert_eq!(ms.ping_max_out, 3);
        let zero = ConnectOptions::new("c", "me").ping_interval_millis_for_tests(0, 3);
        assert_eq!(
            zero.resolve().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn subscribe_validation_and_defaults() {
        assert_eq!(SubscribeOptions::new().resolve("foo").unwrap(), (1024, 30));
        let bad = [
            ("foo.*", SubscribeOptions::new()),
            ("foo", SubscribeOptions::new().max_in_flight(0)),
            (
                "foo",
                SubscribeOptions::new().ack_wait(Duration::from_millis(900)),
            ),
            ("foo", SubscribeOptions::durable("a:b").queue_group("q")),
            ("foo", SubscribeOptions::durable("")),
        ];
        for (ch, o) in bad {
            assert_eq!(
                o.resolve(ch).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        }
    }

    #[test]
    fn start_positions_to_wire() {
        use stan_protocol::StartPosition as W;
        assert_eq!(StartPosition::default().to_wire().0, W::NewOnly);
        assert_eq!(
            StartPosition::Sequence(7).to_wire(),
            (W::SequenceStart, 7, 0)
        );
        assert_eq!(
            StartPosition::TimeDelta(Duration::from_secs(2)).to_wire(),
            (W::TimeDeltaStart, 0, 2_000_000_000)
        );
        let (_, _, d) = StartPosition::Time(SystemTime::now() - Duration::from_secs(10)).to_wire();
        assert!(d >= 10_000_000_000);
    }
}

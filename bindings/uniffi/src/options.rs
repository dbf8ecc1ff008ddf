//! Option records crossing the boundary, converted field by field into the core option
//! structs. `None` stays `None`: defaults and validation live in the core only.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use stan_client::{ConnectOptions, StartPosition, SubscribeOptions, TlsOptions};

/// TLS settings for the NATS connection (mirror of the core `TlsOptions`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TlsConfig {
    /// Require TLS even when the server does not ask for it.
    pub require_tls: bool,
    /// PEM files with extra root certificates to trust.
    pub root_certificates: Vec<String>,
    /// Client certificate and key, for servers that verify clients.
    pub client_certificate: Option<ClientCertificate>,
}

/// A PEM client certificate file and its PEM key file.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ClientCertificate {
    /// The certificate file.
    pub cert: String,
    /// The key file.
    pub key: String,
}

/// Everything `connect` needs (mirror of the core `ConnectOptions`; `null` means the core
/// default).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ConnectConfig {
    /// Cluster ID of the streaming server.
    pub cluster_id: String,
    /// Client ID (letters, digits, `-` and `_`).
    pub client_id: String,
    /// NATS server URLs; empty means `nats://127.0.0.1:4222`.
    pub nats_urls: Vec<String>,
    /// NATS user name (with `password`).
    pub user: Option<String>,
    /// NATS password.
    pub password: Option<String>,
    /// NATS token.
    pub token: Option<String>,
    /// TLS settings.
    pub tls: Option<TlsConfig>,
    /// How long to wait for connect, subscribe, unsubscribe and close replies (2 s).
    pub connect_wait: Option<Duration>,
    /// How long to wait for a publish to be acknowledged (30 s).
    pub pub_ack_wait: Option<Duration>,
    /// Publishes awaiting an ack before further publishers wait (16384).
    pub max_pub_acks_in_flight: Option<u64>,
    /// Interval between pings (5 s; whole seconds, at least 1 s).
    pub ping_interval: Option<Duration>,
    /// Unanswered pings before the session counts as lost (88; at least 2).
    pub ping_max_out: Option<u32>,
    /// Discover prefix of the server (`_STAN.discover`).
    pub discover_prefix: Option<String>,
    /// Re-register and re-create subscriptions when the session is lost (on by default).
    pub auto_resume: Option<bool>,
    /// Test only: ping interval in milliseconds (overrides `ping_interval` and its minimum).
    /// Works only in libraries built with the `test-hooks` feature (the Kotlin package's test
    /// build); others reject it with `InvalidArgument`.
    pub ping_interval_millis_for_tests: Option<u32>,
}

impl TryFrom<ConnectConfig> for ConnectOptions {
    type Error = stan_client::Error;

    fn try_from(c: ConnectConfig) -> Result<Self, stan_client::Error> {
        let mut o = ConnectOptions::new(c.cluster_id, c.client_id);
        o.nats_urls = c.nats_urls;
        o.user = c.user;
        o.password = c.password;
        o.token = c.token;
        o.tls = c.tls.map(Into::into);
        o.connect_wait = c.connect_wait;
        o.pub_ack_wait = c.pub_ack_wait;
        o.max_pub_acks_in_flight = c
            .max_pub_acks_in_flight
            .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        o.ping_interval = c.ping_interval;
        o.ping_max_out = c.ping_max_out;
        o.discover_prefix = c.discover_prefix;
        o.auto_resume = c.auto_resume;
        o.with_test_ping_interval(
            c.ping_interval_millis_for_tests,
            "pingIntervalMillisForTests",
        )
    }
}

impl From<TlsConfig> for TlsOptions {
    fn from(t: TlsConfig) -> Self {
        TlsOptions {
            require_tls: t.require_tls,
            root_certificates: t.root_certificates.into_iter().map(PathBuf::from).collect(),
            client_certificate: t
                .client_certificate
                .map(|c| (PathBuf::from(c.cert), PathBuf::from(c.key))),
        }
    }
}

/// Where a new subscription starts (mirror of the core `StartPosition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum NativeStartPosition {
    /// Only messages published after the subscription (the default).
    NewOnly,
    /// Start with the last stored message.
    LastReceived,
    /// Everything the channel still stores.
    First,
    /// Start at this sequence.
    Sequence {
        /// The first sequence wanted.
        sequence: u64,
    },
    /// Start with the first message stored at or after this time.
    Time {
        /// The point in time.
        time: SystemTime,
    },
    /// Start with the first message not older than this.
    TimeDelta {
        /// The maximum age.
        delta: Duration,
    },
}

impl From<NativeStartPosition> for StartPosition {
    fn from(p: NativeStartPosition) -> Self {
        match p {
            NativeStartPosition::NewOnly => StartPosition::NewOnly,
            NativeStartPosition::LastReceived => StartPosition::LastReceived,
            NativeStartPosition::First => StartPosition::First,
            NativeStartPosition::Sequence { sequence } => StartPosition::Sequence(sequence),
            NativeStartPosition::Time { time } => StartPosition::Time(time),
            NativeStartPosition::TimeDelta { delta } => StartPosition::TimeDelta(delta),
        }
    }
}

/// Subscription options (mirror of the core `SubscribeOptions`; `null` means the core
/// default).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SubscribeConfig {
    /// Queue group: each message goes to one member of the group.
    pub queue_group: Option<String>,
    /// Durable name: the server remembers the position across closes and reconnects.
    pub durable_name: Option<String>,
    /// Where a new subscription starts (new only).
    pub start_position: Option<NativeStartPosition>,
    /// Unacknowledged messages the server sends before waiting for acks (1024).
    pub max_in_flight: Option<u32>,
    /// How long the server waits for an ack before redelivering (30 s; whole seconds).
    pub ack_wait: Option<Duration>,
    /// The application acks each message itself.
    pub manual_acks: bool,
}

impl From<SubscribeConfig> for SubscribeOptions {
    fn from(c: SubscribeConfig) -> Self {
        SubscribeOptions {
            queue_group: c.queue_group,
            durable_name: c.durable_name,
            start_position: c.start_position.map(Into::into),
            max_in_flight: c.max_in_flight,
            ack_wait: c.ack_wait,
            manual_acks: c.manual_acks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_config_maps_every_field() {
        let c = ConnectConfig {
            cluster_id: "c".into(),
            client_id: "me".into(),
            nats_urls: vec!["nats://a:1".into(), "nats://b:2".into()],
            user: Some("u".into()),
            password: Some("p".into()),
            token: Some("t".into()),
            tls: Some(TlsConfig {
                require_tls: true,
                root_certificates: vec!["/ca.pem".into()],
                client_certificate: Some(ClientCertificate {
                    cert: "/c.pem".into(),
                    key: "/c.key".into(),
                }),
            }),
            connect_wait: Some(Duration::from_secs(3)),
            pub_ack_wait: Some(Duration::from_secs(4)),
            max_pub_acks_in_flight: Some(5),
            ping_interval: Some(Duration::from_secs(6)),
            ping_max_out: Some(7),
            discover_prefix: Some("_X".into()),
            auto_resume: Some(false),
            ping_interval_millis_for_tests: Some(50),
        };
        // Without the feature the test hook is rejected; the rest maps the same.
        #[cfg(not(feature = "test-hooks"))]
        let c = {
            let e = ConnectOptions::try_from(c.clone()).unwrap_err();
            assert_eq!(e.kind(), stan_client::ErrorKind::InvalidArgument);
            ConnectConfig {
                ping_interval_millis_for_tests: None,
                ..c
            }
        };
        let o = ConnectOptions::try_from(c).unwrap();
        assert_eq!((o.cluster_id.as_str(), o.client_id.as_str()), ("c", "me"));
        assert_eq!(o.nats_urls, ["nats://a:1", "nats://b:2"]);
        assert_eq!(o.user.as_deref(), Some("u"));
        assert_eq!(o.password.as_deref(), Some("p"));
        assert_eq!(o.token.as_deref(), Some("t"));
        let tls = o.tls.unwrap();
        assert!(tls.require_tls);
        assert_eq!(tls.root_certificates, [PathBuf::from("/ca.pem")]);
        assert_eq!(
            tls.client_certificate,
            Some(("/c.pem".into(), "/c.key".into()))
        );
        assert_eq!(o.connect_wait, Some(Duration::from_secs(3)));
        assert_eq!(o.pub_ack_wait, Some(Duration::from_secs(4)));
        assert_eq!(o.max_pub_acks_in_flight, Some(5));
        assert_eq!(o.ping_interval, Some(Duration::from_secs(6)));
        assert_eq!(o.ping_max_out, Some(7));
        assert_eq!(o.discover_prefix.as_deref(), Some("_X"));
        assert_eq!(o.auto_resume, Some(false));
        #[cfg(feature = "test-hooks")]
        assert_eq!(o.ping_interval_millis_for_tests, Some(50));
    }

    #[test]
    fn subscribe_config_and_start_positions_map() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let cases = [
            (NativeStartPosition::NewOnly, StartPosition::NewOnly),
            (
                NativeStartPosition::LastReceived,
                StartPosition::LastReceived,
            ),
            (NativeStartPosition::First, StartPosition::First),
            (
                NativeStartPosition::Sequence { sequence: 9 },
                StartPosition::Sequence(9),
            ),
            (
                NativeStartPosition::Time { time: t },
                StartPosition::Time(t),
            ),
            (
                NativeStartPosition::TimeDelta {
                    delta: Duration::from_secs(2),
                },
                StartPosition::TimeDelta(Duration::from_secs(2)),
            ),
        ];
        for (native, core) in cases {
            let o = SubscribeOptions::from(SubscribeConfig {
                queue_group: Some("q".into()),
                durable_name: Some("d".into()),
                start_position: Some(native),
                max_in_flight: Some(3),
                ack_wait: Some(Duration::from_secs(5)),
                manual_acks: true,
            });
            assert_eq!(
                o,
                SubscribeOptions::durable("d")
                    .queue_group("q")
                    .start_at(core)
                    .max_in_flight(3)
                    .ack_wait(Duration::from_secs(5))
                    .manual_acks(true)
            );
        }
    }
}

//! Option records crossing the boundary (`#[napi(object)]`, camelCase in JavaScript), converted
//! field by field into the core option structs. An absent field stays `None`: defaults and
//! validation live in the core only. This module only converts JavaScript numbers into
//! `Duration`s, `SystemTime`s and integers, rejecting values that are not representable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::BigInt;
use napi_derive::napi;
use stan_client::{ConnectOptions, StartPosition, SubscribeOptions, TlsOptions};

use crate::error::invalid_argument;

/// TLS settings for the NATS connection.
#[napi(object)]
pub struct NativeTlsOptions {
    /// Require TLS even when the server does not ask for it.
    pub require_tls: Option<bool>,
    /// PEM files with extra root certificates to trust.
    pub root_certificates: Option<Vec<String>>,
    /// PEM client certificate file (with `clientKey`).
    pub client_certificate: Option<String>,
    /// PEM client key file (with `clientCertificate`).
    pub client_key: Option<String>,
}

/// Connect options; mirrors `stan_client::ConnectOptions`.
#[napi(object)]
pub struct NativeConnectOptions {
    /// Cluster ID of the streaming server.
    pub cluster_id: String,
    /// Client ID.
    pub client_id: String,
    /// NATS server URLs.
    pub nats_urls: Option<Vec<String>>,
    /// NATS user name.
    pub user: Option<String>,
    /// NATS password.
    pub password: Option<String>,
    /// NATS token.
    pub token: Option<String>,
    /// TLS settings.
    pub tls: Option<NativeTlsOptions>,
    /// Wait for connect/subscribe/close replies, in milliseconds.
    pub connect_wait_ms: Option<f64>,
    /// Wait for publish acks, in milliseconds.
    pub pub_ack_wait_ms: Option<f64>,
    /// Publishes awaiting acks before publishers wait.
    pub max_pub_acks_in_flight: Option<f64>,
    /// Ping interval in milliseconds.
    pub ping_interval_ms: Option<f64>,
    /// Unanswered pings before the session counts as lost.
    pub ping_max_out: Option<f64>,
    /// Discover prefix of the server.
    pub discover_prefix: Option<String>,
    /// Re-register and re-create subscriptions after a lost session.
    pub auto_resume: Option<bool>,
    /// Test only: ping interval in milliseconds, below the 1 s minimum. Works only in addons
    /// built with the `test-hooks` feature (the package's test build); others reject it.
    pub ping_interval_ms_for_tests: Option<f64>,
}

/// Subscribe options; mirrors `stan_client::SubscribeOptions`.
#[napi(object)]
pub struct NativeSubscribeOptions {
    /// Queue group.
    pub queue_group: Option<String>,
    /// Durable name.
    pub durable_name: Option<String>,
    /// `newOnly`, `lastReceived`, `first`, `sequence`, `time` or `timeDelta`.
    pub start_at: Option<String>,
    /// For `sequence`: the start sequence.
    pub start_sequence: Option<BigInt>,
    /// For `time`: milliseconds since the Unix epoch.
    pub start_time_ms: Option<f64>,
    /// For `timeDelta`: how far back, in milliseconds.
    pub start_time_delta_ms: Option<f64>,
    /// Unacknowledged messages in flight.
    pub max_in_flight: Option<f64>,
    /// Ack wait in milliseconds.
    pub ack_wait_ms: Option<f64>,
    /// Manual acks.
    pub manual_acks: Option<bool>,
}

/// A non-negative duration from milliseconds.
pub(crate) fn duration_ms(ms: f64, what: &str) -> stan_client::Result<Duration> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(invalid_argument(format!(
            "{what} must be a non-negative number of milliseconds, got {ms}"
        )));
    }
    Duration::try_from_secs_f64(ms / 1000.0)
        .map_err(|_| invalid_argument(format!("{what} is too large: {ms} ms")))
}

fn opt_duration(ms: Option<f64>, what: &str) -> stan_client::Result<Option<Duration>> {
    ms.map(|v| duration_ms(v, what)).transpose()
}

/// A non-negative integer that fits in `T`.
fn integer<T: TryFrom<u64>>(v: f64, what: &str) -> stan_client::Result<T> {
    if !v.is_finite() || v < 0.0 || v.fract() != 0.0 || v > u64::MAX as f64 {
        return Err(invalid_argument(format!(
            "{what} must be a non-negative integer, got {v}"
        )));
    }
    T::try_from(v as u64).map_err(|_| invalid_argument(format!("{what} is too large: {v}")))
}

fn opt_integer<T: TryFrom<u64>>(v: Option<f64>, what: &str) -> stan_client::Result<Option<T>> {
    v.map(|x| integer(x, what)).transpose()
}

/// A point in time from milliseconds since the Unix epoch (may be negative).
pub(crate) fn time_ms(ms: f64) -> stan_client::Result<SystemTime> {
    let magnitude = duration_ms(ms.abs(), "start time")?;
    let t = if ms >= 0.0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.ok_or_else(|| invalid_argument(format!("start time out of range: {ms}")))
}

impl TryFrom<NativeConnectOptions> for ConnectOptions {
    type Error = stan_client::Error;

    fn try_from(o: NativeConnectOptions) -> stan_client::Result<Self> {
        let mut out = ConnectOptions::new(o.cluster_id, o.client_id);
        out.nats_urls = o.nats_urls.unwrap_or_default();
        out.user = o.user;
        out.password = o.password;
        out.token = o.token;
        if let Some(t) = o.tls {
            let client_certificate = match (t.client_certificate, t.client_key) {
                (Some(c), Some(k)) => Some((c.into(), k.into())),
                (None, None) => None,
                _ => {
                    return Err(invalid_argument(
                        "tls.clientCertificate and tls.clientKey must be given together",
                    ))
                }
            };
            out.tls = Some(TlsOptions {
                require_tls: t.require_tls.unwrap_or(false),
                root_certificates: t
                    .root_certificates
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                client_certificate,
            });
        }
        out.connect_wait = opt_duration(o.connect_wait_ms, "connectWaitMs")?;
        out.pub_ack_wait = opt_duration(o.pub_ack_wait_ms, "pubAckWaitMs")?;
        out.max_pub_acks_in_flight = opt_integer(o.max_pub_acks_in_flight, "maxPubAcksInFlight")?;
        out.ping_interval = opt_duration(o.ping_interval_ms, "pingIntervalMs")?;
        out.ping_max_out = opt_integer(o.ping_max_out, "pingMaxOut")?;
        out.discover_prefix = o.discover_prefix;
        out.auto_resume = o.auto_resume;
        let test_ping: Option<u32> =
            opt_integer(o.ping_interval_ms_for_tests, "pingIntervalMsForTests")?;
        out.with_test_ping_interval(test_ping, "pingIntervalMsForTests")
    }
}

impl TryFrom<NativeSubscribeOptions> for SubscribeOptions {
    type Error = stan_client::Error;

    fn try_from(o: NativeSubscribeOptions) -> stan_client::Result<Self> {
        let start_position = match o.start_at.as_deref() {
            None => None,
            Some("newOnly") => Some(StartPosition::NewOnly),
            Some("lastReceived") => Some(StartPosition::LastReceived),
            Some("first") => Some(StartPosition::First),
            Some("sequence") => {
                let b = o
                    .start_sequence
                    .ok_or_else(|| invalid_argument("startAt sequence needs a sequence"))?;
                let (negative, value, lossless) = b.get_u64();
                if negative || !lossless {
                    return Err(invalid_argument(
                        "start sequence must be a non-negative 64-bit integer",
                    ));
                }
                Some(StartPosition::Sequence(value))
            }
            Some("time") => {
                let ms = o
                    .start_time_ms
                    .ok_or_else(|| invalid_argument("startAt time needs a time"))?;
                Some(StartPosition::Time(time_ms(ms)?))
            }
            Some("timeDelta") => {
                let ms = o
                    .start_time_delta_ms
                    .ok_or_else(|| invalid_argument("startAt timeDelta needs timeDeltaMs"))?;
                Some(StartPosition::TimeDelta(duration_ms(ms, "timeDeltaMs")?))
            }
            Some(other) => {
                return Err(invalid_argument(format!(
                    "unknown start position {other:?} (expected newOnly, lastReceived, first, \
                     sequence, time or timeDelta)"
                )))
            }
        };
        Ok(SubscribeOptions {
            queue_group: o.queue_group,
            durable_name: o.durable_name,
            start_position,
            max_in_flight: opt_integer(o.max_in_flight, "maxInFlight")?,
            ack_wait: opt_duration(o.ack_wait_ms, "ackWaitMs")?,
            manual_acks: o.manual_acks.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stan_client::ErrorKind;

    #[test]
    fn durations_and_integers() {
        assert_eq!(
            duration_ms(1500.0, "x").unwrap(),
            Duration::from_millis(1500)
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                duration_ms(bad, "x").unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        }
        assert_eq!(integer::<u32>(7.0, "x").unwrap(), 7);
        assert!(integer::<u32>(-1.0, "x").is_err());
        assert!(integer::<u32>(1.5, "x").is_err());
        assert!(integer::<u32>(5e9, "x").is_err());
        assert_eq!(
            time_ms(-1000.0).unwrap(),
            UNIX_EPOCH - Duration::from_secs(1)
        );
    }

    #[test]
    fn start_positions() {
        let base = || NativeSubscribeOptions {
            queue_group: None,
            durable_name: None,
            start_at: None,
            start_sequence: None,
            start_time_ms: None,
            start_time_delta_ms: None,
            max_in_flight: None,
            ack_wait_ms: None,
            manual_acks: None,
        };
        let o: SubscribeOptions = NativeSubscribeOptions {
            start_at: Some("sequence".into()),
            start_sequence: Some(BigInt::from(42u64)),
            ..base()
        }
        .try_into()
        .unwrap();
        assert_eq!(o.start_position, Some(StartPosition::Sequence(42)));
        let o: SubscribeOptions = NativeSubscribeOptions {
            start_at: Some("timeDelta".into()),
            start_time_delta_ms: Some(2000.0),
            ack_wait_ms: Some(3000.0),
            ..base()
        }
        .try_into()
        .unwrap();
        assert_eq!(
            o.start_position,
            Some(StartPosition::TimeDelta(Duration::from_secs(2)))
        );
        assert_eq!(o.ack_wait, Some(Duration::from_secs(3)));
        let bad = SubscribeOptions::try_from(NativeSubscribeOptions {
            start_at: Some("yesterday".into()),
            ..base()
        });
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidArgument);
        let defaults = SubscribeOptions::try_from(base()).unwrap();
        assert_eq!(defaults, SubscribeOptions::default());
    }
}

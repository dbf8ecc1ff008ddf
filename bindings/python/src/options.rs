//! Option records crossing the boundary: Python dataclasses (`stan_client._config`) extracted
//! attribute by attribute into core option structs. `None` stays `None`: defaults live in the
//! core only.

use std::time::{Duration, SystemTime};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDateTime, PyDelta, PyInt, PyString};
use stan_client::{ConnectOptions, ErrorKind, StartPosition, SubscribeOptions, TlsOptions};

use crate::error::to_py_err;

/// Mirror of `stan_client._config.TlsConfig`.
#[derive(FromPyObject)]
pub(crate) struct TlsConfig {
    require_tls: bool,
    root_certificates: Vec<std::path::PathBuf>,
    client_certificate: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Mirror of `stan_client._config.ConnectConfig`.
#[derive(FromPyObject)]
pub(crate) struct ConnectConfig {
    cluster_id: String,
    client_id: String,
    nats_urls: Vec<String>,
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    tls: Option<TlsConfig>,
    connect_wait: Option<Duration>,
    pub_ack_wait: Option<Duration>,
    max_pub_acks_in_flight: Option<usize>,
    ping_interval: Option<Duration>,
    ping_max_out: Option<u32>,
    discover_prefix: Option<String>,
    auto_resume: Option<bool>,
    /// Test hook: honoured with the `test-hooks` feature, rejected when set without it.
    ping_interval_millis_for_tests: Option<u32>,
}

impl TryFrom<ConnectConfig> for ConnectOptions {
    type Error = stan_client::Error;

    fn try_from(c: ConnectConfig) -> Result<Self, stan_client::Error> {
        let mut o = ConnectOptions::new(c.cluster_id, c.client_id);
        o.nats_urls = c.nats_urls;
        o.user = c.user;
        o.password = c.password;
        o.token = c.token;
        o.tls = c.tls.map(|t| TlsOptions {
            require_tls: t.require_tls,
            root_certificates: t.root_certificates,
            client_certificate: t.client_certificate,
        });
        o.connect_wait = c.connect_wait;
        o.pub_ack_wait = c.pub_ack_wait;
        o.max_pub_acks_in_flight = c.max_pub_acks_in_flight;
        o.ping_interval = c.ping_interval;
        o.ping_max_out = c.ping_max_out;
        o.discover_prefix = c.discover_prefix;
        o.auto_resume = c.auto_resume;
        o.with_test_ping_interval(
            c.ping_interval_millis_for_tests,
            "ping_interval_millis_for_tests",
        )
    }
}

/// Mirror of `stan_client._config.SubscribeConfig`.
#[derive(FromPyObject)]
pub(crate) struct SubscribeConfig {
    queue_group: Option<String>,
    durable_name: Option<String>,
    start_at: Option<StartAt>,
    max_in_flight: Option<u32>,
    ack_wait: Option<Duration>,
    manual_acks: bool,
}

impl From<SubscribeConfig> for SubscribeOptions {
    fn from(c: SubscribeConfig) -> Self {
        SubscribeOptions {
            queue_group: c.queue_group,
            durable_name: c.durable_name,
            start_position: c.start_at.map(|s| s.0),
            max_in_flight: c.max_in_flight,
            ack_wait: c.ack_wait,
            manual_acks: c.manual_acks,
        }
    }
}

/// `start_at=`: a `StartPosition` member (a `str` enum), an `int` sequence, an aware `datetime`
/// or a `timedelta`.
struct StartAt(StartPosition);

impl<'a, 'py> FromPyObject<'a, 'py> for StartAt {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let pos = if obj.is_instance_of::<PyString>() {
            let name: String = obj.extract()?;
            match name.as_str() {
                "new_only" => StartPosition::NewOnly,
                "last_received" => StartPosition::LastReceived,
                "first" => StartPosition::First,
                other => {
                    return Err(PyTypeError::new_err(format!(
                        "unknown start position {other:?}"
                    )))
                }
            }
        } else if obj.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err("start_at must not be a bool"));
        } else if obj.is_instance_of::<PyInt>() {
            StartPosition::Sequence(obj.extract()?)
        } else if obj.is_instance_of::<PyDateTime>() {
            StartPosition::Time(obj.extract::<SystemTime>()?)
        } else if obj.is_instance_of::<PyDelta>() {
            StartPosition::TimeDelta(obj.extract()?)
        } else {
            return Err(PyTypeError::new_err(
                "start_at must be a StartPosition, an int sequence, a datetime or a timedelta",
            ));
        };
        Ok(StartAt(pos))
    }
}

/// A config value the core cannot represent (negative durations, numbers out of range, unknown
/// start positions) is an `InvalidArgumentError` like the core's own checks; the extraction
/// error is kept as the cause.
pub(crate) fn invalid_config(py: Python<'_>, e: PyErr) -> PyErr {
    let err = to_py_err(stan_client::Error::new(
        ErrorKind::InvalidArgument,
        e.value(py).to_string(),
    ));
    err.set_cause(py, Some(e));
    err
}

/// Extract a [`ConnectConfig`] (see [`invalid_config`]).
pub(crate) fn connect_options(obj: &Bound<'_, PyAny>) -> PyResult<ConnectOptions> {
    obj.extract::<ConnectConfig>()
        .map_err(|e| invalid_config(obj.py(), e))?
        .try_into()
        .map_err(to_py_err)
}

/// Extract a [`SubscribeConfig`] (see [`invalid_config`]).
pub(crate) fn subscribe_options(obj: &Bound<'_, PyAny>) -> PyResult<SubscribeOptions> {
    obj.extract::<SubscribeConfig>()
        .map(Into::into)
        .map_err(|e| invalid_config(obj.py(), e))
}

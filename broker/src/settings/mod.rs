//! Every setting that flags or config files can give ([`Settings`]), and how they become the
//! broker configuration ([`build`]).
//!
//! The command line ([`crate::cli`]) and config files ([`crate::conf`]) each fill a
//! [`Settings`]; [`Settings::overlay`] lets the command line win; [`build`] validates the result
//! and turns it into a [`BrokerConfig`] and [`LogOptions`]. [`units`] holds the value syntaxes
//! both sources share (sizes, Go durations, Go booleans).
//!
//! ```
//! use stan_broker::settings::{build, Settings};
//! let file = Settings { cluster_id: Some("from-file".into()), max_msgs: Some(10), ..Settings::default() };
//! let flags = Settings { cluster_id: Some("from-flags".into()), ..Settings::default() };
//! let (cfg, _log) = build(&file.overlay(flags)).unwrap();
//! assert_eq!(cfg.cluster_id, "from-flags");
//! assert_eq!(cfg.limits.global.max_msgs, Some(10));
//! ```

pub mod units;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    BrokerConfig, ChannelLimits, ClientTls, EmbeddedNats, ExternalNats, FileStoreOptions,
    JetStreamOptions, NatsMode, ServerTls, StoreKind,
};

/// Default embedded listen host of the binary.
const DEFAULT_HOST: &str = "127.0.0.1";

/// Every setting that flags or config files can give; `None` = not given.
///
/// Config files fill one `Settings`, the command line another, and [`Settings::overlay`] lets
/// the command line win.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// `-cid`.
    pub cluster_id: Option<String>,
    /// Config `discover_prefix`.
    pub discover_prefix: Option<String>,
    /// `-st` (`MEMORY`, `FILE`, `SQL`; any case).
    pub store: Option<String>,
    /// `--dir`.
    pub dir: Option<PathBuf>,
    /// `--file_sync`.
    pub file_sync: Option<bool>,
    /// `--js_replicas`.
    pub js_replicas: Option<i64>,
    /// `--js_prefix`.
    pub js_prefix: Option<String>,
    /// `--js_lease_ttl`.
    pub js_lease_ttl: Option<Duration>,
    /// `--file_auto_sync`.
    pub file_auto_sync: Option<Duration>,
    /// `--file_slice_max_msgs`.
    pub file_slice_max_msgs: Option<i64>,
    /// `--file_slice_max_bytes`.
    pub file_slice_max_bytes: Option<i64>,
    /// `--file_slice_max_age`.
    pub file_slice_max_age: Option<Duration>,
    /// `--file_compact_enabled`.
    pub file_compact_enabled: Option<bool>,
    /// `--file_compact_frag` (percent).
    pub file_compact_frag: Option<i64>,
    /// `--file_compact_interval` (seconds).
    pub file_compact_interval: Option<i64>,
    /// `--file_compact_min_size`.
    pub file_compact_min_size: Option<i64>,
    /// `--file_fds_limit`.
    pub file_fds_limit: Option<i64>,
    /// `--file_crc`.
    pub file_crc: Option<bool>,
    /// `-mc`.
    pub max_channels: Option<i64>,
    /// `-msu`.
    pub max_subs: Option<i64>,
    /// `-mm`.
    pub max_msgs: Option<i64>,
    /// `-mb`.
    pub max_bytes: Option<i64>,
    /// `-ma`.
    pub max_age: Option<Duration>,
    /// `-mi`.
    pub max_inactivity: Option<Duration>,
    /// Per-channel limits (config files only).
    pub channels: Option<BTreeMap<String, ChannelLimits>>,
    /// `-ns`.
    pub nats_server: Option<String>,
    /// `-hbi`.
    pub hb_interval: Option<Duration>,
    /// `-hbt`.
    pub hb_timeout: Option<Duration>,
    /// `-hbf`.
    pub hb_fail_count: Option<i64>,
    /// `--replace_durable`.
    pub replace_durable: Option<bool>,
    /// `--trust_client_subjects` (client isolation off).
    pub trust_client_subjects: Option<bool>,
    /// `--io_batch_size`.
    pub io_batch_size: Option<i64>,
    /// `--dedup_window`.
    pub dedup_window: Option<Duration>,
    /// `-a`.
    pub addr: Option<String>,
    /// `-p` (0 or -1: any free port).
    pub port: Option<i64>,
    /// Monitoring host (config `http: "host:port"`); defaults to the listen host.
    pub http_host: Option<String>,
    /// `-m` (0 or -1: any free port).
    pub http_port: Option<i64>,
    /// `--console_admin_token`: turns on the web console's admin actions.
    pub console_admin_token: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--pass`.
    pub pass: Option<String>,
    /// `--auth`.
    pub auth: Option<String>,
    /// Config `max_payload`.
    pub max_payload: Option<i64>,
    /// `--tls` (a config `tls { }` block sets it too).
    pub tls: Option<bool>,
    /// `--tlscert` (config `tls { cert_file }`).
    pub tls_cert: Option<PathBuf>,
    /// `--tlskey` (config `tls { key_file }`).
    pub tls_key: Option<PathBuf>,
    /// `--tlscacert` (config `tls { ca_file }`).
    pub tls_ca_cert: Option<PathBuf>,
    /// `--tlsverify` (config `tls { verify }`).
    pub tls_verify: Option<bool>,
    /// Config `tls { timeout }`: handshake timeout.
    pub tls_timeout: Option<Duration>,
    /// `--tls_client_cert` (streaming config `tls { client_cert }`).
    pub tls_client_cert: Option<PathBuf>,
    /// `--tls_client_key` (streaming config `tls { client_key }`).
    pub tls_client_key: Option<PathBuf>,
    /// `--tls_client_cacert` (streaming config `tls { client_ca }`).
    pub tls_client_cacert: Option<PathBuf>,
    /// `-SD`.
    pub stan_debug: Option<bool>,
    /// `-SV`.
    pub stan_trace: Option<bool>,
    /// `-D`.
    pub debug: Option<bool>,
    /// `-V`.
    pub trace: Option<bool>,
    /// `-T`.
    pub logtime: Option<bool>,
    /// `-l`.
    pub log_file: Option<PathBuf>,
    /// `--log_format` (`text` or `json`).
    pub log_format: Option<String>,
}

macro_rules! overlay_fields {
    ($base:ident, $top:ident; $($field:ident),* $(,)?) => {
        $( if $top.$field.is_some() { $base.$field = $top.$field; } )*
    };
}

impl Settings {
    /// Returns `self` with every value that `top` sets replaced by `top`'s.
    pub fn overlay(mut self, top: Settings) -> Settings {
        let base = &mut self;
        overlay_fields!(base, top; file_sync, file_auto_sync, file_slice_max_msgs,
            file_slice_max_bytes, file_slice_max_age, file_compact_enabled, file_compact_frag,
            file_compact_interval, file_compact_min_size, file_fds_limit, file_crc);
        overlay_fields!(base, top; js_replicas, js_prefix, js_lease_ttl);
        overlay_fields!(base, top; cluster_id, discover_prefix, store, dir, max_channels, max_subs,
            max_msgs, max_bytes, max_age, max_inactivity, channels, nats_server, hb_interval,
            hb_timeout, hb_fail_count, replace_durable, trust_client_subjects, io_batch_size, dedup_window,
            addr, port,
            http_host, http_port, console_admin_token, user, pass, auth, max_payload, stan_debug, stan_trace, debug,
            trace, logtime, log_file, log_format);
        overlay_fields!(base, top; tls, tls_cert, tls_key, tls_ca_cert, tls_verify, tls_timeout,
            tls_client_cert, tls_client_key, tls_client_cacert);
        self
    }

    /// Whether any setting of the embedded server's TLS is given (`--tls*`, config `tls`).
    pub fn has_server_tls(&self) -> bool {
        self.tls.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_ca_cert.is_some()
            || self.tls_verify.is_some()
            || self.tls_timeout.is_some()
    }

    /// Whether any setting of the TLS towards an external server is given (`--tls_client_*`).
    pub fn has_client_tls(&self) -> bool {
        self.tls_client_cert.is_some()
            || self.tls_client_key.is_some()
            || self.tls_client_cacert.is_some()
    }
}

/// Logging setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Default level (`RUST_LOG`, when set, takes precedence).
    pub level: tracing::Level,
    /// Log to this file instead of standard error.
    pub file: Option<PathBuf>,
    /// Timestamp log lines.
    pub timestamps: bool,
    /// Log line format.
    pub format: LogFormat,
}

/// The format of log lines (`--log_format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `message` and the event's fields).
    Json,
}

impl LogFormat {
    /// Parses `text` or `json` (any case).
    pub fn parse(s: &str) -> Result<LogFormat, SettingsError> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => invalid(format!("invalid log format {s:?} (expected text or json)")),
        }
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            level: tracing::Level::INFO,
            file: None,
            timestamps: true,
            format: LogFormat::Text,
        }
    }
}

/// Settings that cannot make a valid configuration (an invalid value or combination).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, SettingsError> {
    Err(SettingsError(msg.into()))
}

fn non_negative(what: &str, v: Option<i64>) -> Result<Option<i64>, SettingsError> {
    match v {
        Some(n) if n < 0 => invalid(format!("{what} cannot be negative ({n})")),
        other => Ok(other),
    }
}

fn port(what: &str, v: i64) -> Result<u16, SettingsError> {
    match v {
        -1 | 0 => Ok(0),
        1..=65535 => Ok(v as u16),
        _ => invalid(format!("invalid {what} {v}")),
    }
}

fn socket_addr(host: &str, port: u16) -> Result<SocketAddr, SettingsError> {
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return invalid(format!("invalid monitoring host {host:?}: {e}")),
    };
    match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
        Some(a) => Ok(*a),
        None => invalid(format!("invalid monitoring host {host:?}")),
    }
}

fn non_empty(flag: &str, p: &Option<PathBuf>) -> Result<Option<PathBuf>, SettingsError> {
    match p {
        Some(p) if p.as_os_str().is_empty() => invalid(format!("{flag} cannot be empty")),
        other => Ok(other.clone()),
    }
}

/// The embedded server's TLS: on with `--tls`, `--tlsverify`, a certificate or a key (or a
/// config `tls` block), unless `--tls=false`; it then needs a certificate and a key, and
/// client verification needs a CA. The files are read when the broker starts.
fn server_tls(s: &Settings) -> Result<Option<ServerTls>, SettingsError> {
    let cert = non_empty("--tlscert", &s.tls_cert)?;
    let key = non_empty("--tlskey", &s.tls_key)?;
    let ca = non_empty("--tlscacert", &s.tls_ca_cert)?;
    let verify = s.tls_verify.unwrap_or(false);
    let on = match s.tls {
        Some(on) => on,
        None => verify || cert.is_some() || key.is_some(),
    };
    if !on {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file)) = (cert, key) else {
        return invalid(
            "TLS needs a server certificate (--tlscert, config tls.cert_file) and its private \
             key (--tlskey, config tls.key_file)",
        );
    };
    if verify && ca.is_none() {
        return invalid(
            "TLS client verification (--tlsverify) needs a CA certificate (--tlscacert, config \
             tls.ca_file)",
        );
    }
    Ok(Some(ServerTls {
        cert_file,
        key_file,
        ca_file: ca,
        verify,
        timeout: s.tls_timeout,
    }))
}

/// TLS towards an external NATS server: any `--tls_client_*` given; a certificate needs its
/// key and a key its certificate.
fn client_tls(s: &Settings) -> Result<Option<ClientTls>, SettingsError> {
    let cert_file = non_empty("--tls_client_cert", &s.tls_client_cert)?;
    let key_file = non_empty("--tls_client_key", &s.tls_client_key)?;
    let ca_file = non_empty("--tls_client_cacert", &s.tls_client_cacert)?;
    match (&cert_file, &key_file) {
        (Some(_), None) => return invalid("--tls_client_cert needs --tls_client_key"),
        (None, Some(_)) => return invalid("--tls_client_key needs --tls_client_cert"),
        _ => {}
    }
    if cert_file.is_none() && ca_file.is_none() {
        return Ok(None);
    }
    Ok(Some(ClientTls {
        cert_file,
        key_file,
        ca_file,
    }))
}

/// The FILE store settings (defaults for what is not given).
fn file_options(s: &Settings) -> Result<FileStoreOptions, SettingsError> {
    let mut f = FileStoreOptions::default();
    if let Some(v) = s.file_sync {
        f.sync = v;
    }
    if let Some(v) = s.file_auto_sync {
        f.auto_sync = v;
    }
    if let Some(v) = non_negative("file slice max msgs", s.file_slice_max_msgs)? {
        f.slice_max_msgs = v as u64;
    }
    if let Some(v) = non_negative("file slice max bytes", s.file_slice_max_bytes)? {
        f.slice_max_bytes = v as u64;
    }
    if let Some(v) = s.file_slice_max_age {
        f.slice_max_age = v;
    }
    if let Some(v) = s.file_compact_enabled {
        f.compact_enabled = v;
    }
    if let Some(v) = non_negative("file compact fragmentation", s.file_compact_frag)? {
        if v > 100 {
            return invalid(format!("file compact fragmentation must be 0..100 ({v})"));
        }
        f.compact_frag = v as u32;
    }
    if let Some(v) = non_negative("file compact interval", s.file_compact_interval)? {
        f.compact_interval = Duration::from_secs(v as u64);
    }
    if let Some(v) = non_negative("file compact min size", s.file_compact_min_size)? {
        f.compact_min_size = v as u64;
    }
    if let Some(v) = non_negative("file descriptors limit", s.file_fds_limit)? {
        f.fds_limit = v as u64;
    }
    if let Some(v) = s.file_crc {
        f.crc = v;
    }
    Ok(f)
}

/// The JETSTREAM store settings (defaults for what is not given). The store needs an external
/// NATS server (`-ns`): JetStream is not part of the embedded server.
fn jetstream_options(s: &Settings) -> Result<JetStreamOptions, SettingsError> {
    if s.nats_server.is_none() {
        return invalid(
            "the JETSTREAM store needs a NATS server with JetStream enabled (-ns nats://host:port)",
        );
    }
    let mut j = JetStreamOptions::default();
    if let Some(v) = s.js_replicas {
        if !(1..=5).contains(&v) {
            return invalid(format!("JetStream replicas must be 1 to 5 ({v})"));
        }
        j.replicas = v as usize;
    }
    if let Some(p) = &s.js_prefix {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return invalid(format!(
                "invalid JetStream prefix {p:?} (letters, digits and '_' only)"
            ));
        }
        j.prefix = p.clone();
    }
    if let Some(v) = s.js_lease_ttl {
        if v < std::time::Duration::from_millis(500) {
            return invalid(format!(
                "the JetStream lease TTL must be at least 500ms ({v:?})"
            ));
        }
        j.lease_ttl = v;
    }
    Ok(j)
}

/// Turns merged settings into the broker configuration and logging options.
pub fn build(s: &Settings) -> Result<(BrokerConfig, LogOptions), SettingsError> {
    let mut cfg = BrokerConfig::default();

    if let Some(cid) = &s.cluster_id {
        if cid.is_empty()
            || cid
                .chars()
                .any(|c| c.is_whitespace() || c == '*' || c == '>')
        {
            return invalid(format!("invalid cluster ID {cid:?}"));
        }
        cfg.cluster_id = cid.clone();
    }
    if let Some(p) = &s.discover_prefix {
        if p.is_empty() || p.chars().any(char::is_whitespace) {
            return invalid(format!("invalid discover prefix {p:?}"));
        }
        cfg.discover_prefix = p.clone();
    }

    cfg.store = match s.store.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("MEMORY") => StoreKind::Memory,
        Some("FILE") => match &s.dir {
            Some(dir) if !dir.as_os_str().is_empty() => StoreKind::File(dir.clone()),
            _ => return invalid("the FILE store needs a directory (--dir)"),
        },
        Some("JETSTREAM") => StoreKind::JetStream(jetstream_options(s)?),
        Some("SQL") => return invalid("SQL store not supported (use -st MEMORY)"),
        Some(_) => {
            return invalid(format!(
                "unknown store type: {} (expected MEMORY, FILE or JETSTREAM)",
                s.store.as_deref().unwrap_or_default()
            ))
        }
    };

    cfg.file = file_options(s)?;

    let limits = &mut cfg.limits;
    if let Some(v) = non_negative("max channels limit", s.max_channels)? {
        limits.max_channels = v as usize;
    }
    if let Some(v) = non_negative("max subscriptions limit", s.max_subs)? {
        limits.global.max_subs = Some(v as usize);
    }
    if let Some(v) = non_negative("max messages limit", s.max_msgs)? {
        limits.global.max_msgs = Some(v as usize);
    }
    if let Some(v) = non_negative("max bytes limit", s.max_bytes)? {
        limits.global.max_bytes = Some(v as u64);
    }
    if let Some(v) = s.max_age {
        limits.global.max_age = Some(v);
    }
    if let Some(v) = s.max_inactivity {
        limits.global.max_inactivity = Some(v);
    }
    if let Some(channels) = &s.channels {
        for name in channels.keys() {
            if !stan_protocol::validate::is_valid_channel_limits_key(name) {
                return invalid(format!("invalid channel name {name:?} in channel limits"));
            }
        }
        let literals = channels
            .keys()
            .filter(|n| !n.split('.').any(|t| t == "*" || t == ">"))
            .count();
        if limits.max_channels > 0 && literals > limits.max_channels {
            return invalid(format!(
                "too many channels defined ({literals}). The max channels limit is set to {}",
                limits.max_channels
            ));
        }
        limits.channels = channels.clone();
    }

    if let Some(v) = s.hb_interval {
        cfg.hb_interval = v;
    }
    if let Some(v) = s.dedup_window {
        cfg.dedup_window = v;
    }
    if let Some(v) = s.hb_timeout {
        cfg.hb_timeout = v;
    }
    if let Some(v) = non_negative("heartbeat fail count", s.hb_fail_count)? {
        cfg.hb_fail_count = u32::try_from(v)
            .or_else(|_| invalid(format!("heartbeat fail count too large ({v})")))?;
    }
    if let Some(v) = s.replace_durable {
        cfg.replace_durable = v;
    }
    if let Some(v) = s.trust_client_subjects {
        cfg.trust_client_subjects = v;
    }
    if let Some(v) = non_negative("I/O batch size", s.io_batch_size)? {
        cfg.io_batch_size = v as usize;
    }

    let host = s.addr.clone().unwrap_or_else(|| DEFAULT_HOST.to_string());
    if host.is_empty() {
        return invalid("the listen address (-a) cannot be empty");
    }
    cfg.nats = match &s.nats_server {
        Some(url) if url.is_empty() => return invalid("the NATS server URL (-ns) cannot be empty"),
        Some(url) => NatsMode::External(ExternalNats {
            url: url.clone(),
            user: s.user.clone(),
            pass: s.pass.clone(),
            auth_token: s.auth.clone(),
            tls: client_tls(s)?,
        }),
        None => {
            let mut e = EmbeddedNats {
                host: host.clone(),
                user: s.user.clone(),
                pass: s.pass.clone(),
                auth_token: s.auth.clone(),
                tls: server_tls(s)?,
                ..EmbeddedNats::default()
            };
            if let Some(p) = s.port {
                e.port = port("port", p)?;
            }
            if let Some(mp) = non_negative("max payload", s.max_payload)? {
                if mp == 0 {
                    return invalid("max payload cannot be 0");
                }
                e.max_payload = mp as usize;
            }
            NatsMode::Embedded(e)
        }
    };
    if let Some(p) = s.http_port {
        let http_host = s.http_host.clone().unwrap_or(host);
        cfg.monitor = Some(socket_addr(&http_host, port("monitoring port", p)?)?);
    }
    if let Some(t) = &s.console_admin_token {
        if t.trim().is_empty() {
            return invalid("the console admin token cannot be empty");
        }
        cfg.console_admin_token = Some(t.clone());
    }

    let trace = s.trace.unwrap_or(false) || s.stan_trace.unwrap_or(false);
    let debug = s.debug.unwrap_or(false) || s.stan_debug.unwrap_or(false);
    let log = LogOptions {
        level: if trace {
            tracing::Level::TRACE
        } else if debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        },
        file: s.log_file.clone(),
        timestamps: s.logtime.unwrap_or(true),
        format: match &s.log_format {
            Some(f) => LogFormat::parse(f)?,
            None => LogFormat::Text,
        },
    };
    Ok((cfg, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_values() {
        let with = |f: &str| Settings {
            log_format: Some(f.into()),
            ..Settings::default()
        };
        assert_eq!(build(&with("json")).unwrap().1.format, LogFormat::Json);
        assert_eq!(build(&with("TEXT")).unwrap().1.format, LogFormat::Text);
        assert_eq!(
            build(&Settings::default()).unwrap().1.format,
            LogFormat::Text
        );
        assert_eq!(
            build(&with("yaml")).unwrap_err().to_string(),
            "invalid log format \"yaml\" (expected text or json)"
        );
    }
}

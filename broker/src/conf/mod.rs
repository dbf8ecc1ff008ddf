//! Configuration files: NATS config syntax ([`parser`]) mapped onto [`Settings`]; every
//! problem is a [`ConfError`] naming the file and line.
//!
//! A core (NATS) file (`-c`) sets the listen address, port, monitoring port, authorization and
//! TLS (`tls { cert_file, key_file, ca_file, verify, timeout }`); a streaming file (`-sc`) sets
//! the streaming keys (its `tls { client_cert, client_key, client_ca }` is the TLS of the
//! connection to an external NATS server), either at the top level or inside a
//! `streaming { }` block (if the block exists only its content is used). When only one of the
//! two files is given it is used for both, as the official server does. Keys are
//! case-insensitive. Keys that neither part knows are reported as warnings and ignored.

mod error;
pub mod parser;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::ChannelLimits;
use crate::settings::units::parse_go_duration;
use crate::settings::Settings;
pub use error::ConfError;
use parser::{Item, Map, Value};

/// Which parts of the configuration a file provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// Core NATS keys (listen address, monitoring, authorization, logging).
    pub core: bool,
    /// Streaming keys.
    pub streaming: bool,
}

/// Reads `path` and applies the selected parts to `settings`; returns warnings for ignored keys.
pub fn load_file(
    path: &Path,
    parts: Parts,
    settings: &mut Settings,
) -> Result<Vec<String>, ConfError> {
    let doc = parser::parse_file(path)?;
    apply(&doc, path, parts, settings)
}

/// Applies a parsed document (see [`load_file`]).
pub fn apply(
    doc: &Map,
    path: &Path,
    parts: Parts,
    settings: &mut Settings,
) -> Result<Vec<String>, ConfError> {
    let mut ctx = Ctx {
        file: path,
        warnings: Vec::new(),
    };
    if parts.core {
        ctx.apply_core(doc, settings)?;
    }
    let streaming_block = doc.get("streaming");
    if parts.streaming {
        match streaming_block {
            Some(Item {
                value: Value::Map(m),
                ..
            }) => ctx.apply_streaming(m, settings, true)?,
            Some(item) => {
                return Err(ctx.type_error("streaming", item, "a map"));
            }
            None => ctx.apply_streaming(doc, settings, false)?,
        }
    }
    // Top-level keys nobody uses.
    for (key, item) in &doc.entries {
        let k = key.to_ascii_lowercase();
        let known = k == "streaming"
            || CORE_KEYS.contains(&k.as_str())
            || (streaming_block.is_none()
                && (STREAMING_KEYS.contains(&k.as_str())
                    || STREAMING_IGNORED.contains(&k.as_str())));
        if !known {
            ctx.warn(item, format!("key {key:?} is not supported and is ignored"));
        }
    }
    Ok(ctx.warnings)
}

const CORE_KEYS: &[&str] = &[
    "port",
    "host",
    "net",
    "listen",
    "http_port",
    "monitor_port",
    "http",
    "authorization",
    "max_payload",
    "debug",
    "trace",
    "logtime",
    "log_file",
    "logfile",
    "log_format",
    "tls",
];

/// Keys of the streaming `tls` block.
const CLIENT_TLS_KEYS: &[&str] = &["client_cert", "client_key", "client_ca", "client_cacert"];

const STREAMING_KEYS: &[&str] = &[
    "id",
    "cid",
    "cluster_id",
    "discover_prefix",
    "st",
    "store_type",
    "store",
    "storetype",
    "dir",
    "datastore",
    "sd",
    "stan_debug",
    "sv",
    "stan_trace",
    "ns",
    "nats_server",
    "nats_server_url",
    "limits",
    "store_limits",
    "storelimits",
    "hbi",
    "hb_interval",
    "server_to_client_hb_interval",
    "hbt",
    "hb_timeout",
    "server_to_client_hb_timeout",
    "hbf",
    "hb_fail_count",
    "server_to_client_hb_fail_count",
    "username",
    "user",
    "password",
    "pass",
    "token",
    "replace_durable",
    "replace_durables",
    "replace_duplicate_durable",
    "replace_duplicate_durables",
    "trust_client_subjects",
    "io_batch_size",
    "dedup_window",
    "file",
    "file_options",
    "jetstream",
    "jetstream_options",
    "tls",
];

/// Official streaming keys that are accepted and ignored (with a warning).
const STREAMING_IGNORED: &[&str] = &[
    "credentials",
    "secure",
    "sql",
    "sql_options",
    "ft_group",
    "ft_group_name",
    "partitioning",
    "cluster",
    "syslog_name",
    "encrypt",
    "encryption_cipher",
    "encryption_key",
    "nkey_seed_file",
    "io_sleep_time",
];

struct Ctx<'a> {
    file: &'a Path,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn error(&self, line: usize, message: impl Into<String>) -> ConfError {
        ConfError::at(self.file, line, message)
    }

    fn type_error(&self, key: &str, item: &Item, expected: &str) -> ConfError {
        self.error(
            item.line,
            format!(
                "{key:?} must be {expected}, got a {}",
                item.value.type_name()
            ),
        )
    }

    fn warn(&mut self, item: &Item, message: String) {
        self.warnings
            .push(format!("{}:{}: {message}", self.file.display(), item.line));
    }

    fn string(&self, key: &str, item: &Item) -> Result<String, ConfError> {
        match &item.value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.type_error(key, item, "a string")),
        }
    }

    fn int(&self, key: &str, item: &Item) -> Result<i64, ConfError> {
        match &item.value {
            Value::Int { value, .. } => Ok(*value),
            _ => Err(self.type_error(key, item, "an integer")),
        }
    }

    fn non_negative(&self, key: &str, item: &Item) -> Result<i64, ConfError> {
        let v = self.int(key, item)?;
        if v < 0 {
            return Err(self.error(item.line, format!("{key:?} cannot be negative ({v})")));
        }
        Ok(v)
    }

    fn boolean(&self, key: &str, item: &Item) -> Result<bool, ConfError> {
        match &item.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.type_error(key, item, "a boolean")),
        }
    }

    /// A duration: a string such as `"10s"`; an unquoted `1m` (lexed as a size) or `0` is
    /// accepted too by reading the text as written.
    fn duration(&self, key: &str, item: &Item) -> Result<Duration, ConfError> {
        let text = match &item.value {
            Value::Str(s) => s.as_str(),
            Value::Int { raw, .. } => raw.as_str(),
            _ => return Err(self.type_error(key, item, "a duration string such as \"10s\"")),
        };
        parse_go_duration(text).map_err(|e| self.error(item.line, format!("{key:?}: {e}")))
    }

    fn map<'m>(&self, key: &str, item: &'m Item) -> Result<&'m Map, ConfError> {
        match &item.value {
            Value::Map(m) => Ok(m),
            _ => Err(self.type_error(key, item, "a map")),
        }
    }

    fn port(&self, key: &str, item: &Item) -> Result<i64, ConfError> {
        let v = self.int(key, item)?;
        if !(-1..=65535).contains(&v) {
            return Err(self.error(item.line, format!("{key:?}: invalid port {v}")));
        }
        Ok(v)
    }

    fn apply_core(&mut self, doc: &Map, s: &mut Settings) -> Result<(), ConfError> {
        for (key, item) in &doc.entries {
            match key.to_ascii_lowercase().as_str() {
                "port" => s.port = Some(self.port(key, item)?),
                "host" | "net" => s.addr = Some(self.string(key, item)?),
                "listen" => {
                    let (host, port) = self.host_port(key, item)?;
                    if let Some(h) = host {
                        s.addr = Some(h);
                    }
                    s.port = Some(port);
                }
                "http_port" | "monitor_port" => s.http_port = Some(self.port(key, item)?),
                "http" => {
                    let (host, port) = self.host_port(key, item)?;
                    s.http_host = host;
                    s.http_port = Some(port);
                }
                "max_payload" => s.max_payload = Some(self.non_negative(key, item)?),
                "debug" => s.debug = Some(self.boolean(key, item)?),
                "trace" => s.trace = Some(self.boolean(key, item)?),
                "logtime" => s.logtime = Some(self.boolean(key, item)?),
                "log_file" | "logfile" => s.log_file = Some(PathBuf::from(self.string(key, item)?)),
                "log_format" => s.log_format = Some(self.string(key, item)?),
                "tls" => {
                    let m = self.map(key, item)?;
                    self.apply_server_tls(m, s)?;
                }
                "authorization" => {
                    let auth = self.map(key, item)?;
                    for (k, v) in &auth.entries {
                        match k.to_ascii_lowercase().as_str() {
                            "user" | "username" => s.user = Some(self.string(k, v)?),
                            "pass" | "password" => s.pass = Some(self.string(k, v)?),
                            "token" => s.auth = Some(self.string(k, v)?),
                            _ => self.warn(
                                v,
                                format!("authorization key {k:?} is not supported and is ignored"),
                            ),
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `"host:port"`, `":port"` or a bare port number.
    fn host_port(&self, key: &str, item: &Item) -> Result<(Option<String>, i64), ConfError> {
        if let Value::Int { .. } = item.value {
            return Ok((None, self.port(key, item)?));
        }
        let text = self.string(key, item)?;
        let bad = || {
            self.error(
                item.line,
                format!("{key:?}: expected \"host:port\", got {text:?}"),
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: i64 = port.parse().map_err(|_| bad())?;
        if !(-1..=65535).contains(&port) {
            return Err(bad());
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(((!host.is_empty()).then(|| host.to_string()), port))
    }

    fn apply_streaming(
        &mut self,
        doc: &Map,
        s: &mut Settings,
        in_block: bool,
    ) -> Result<(), ConfError> {
        for (key, item) in &doc.entries {
            let k = key.to_ascii_lowercase();
            match k.as_str() {
                "id" | "cid" | "cluster_id" => s.cluster_id = Some(self.string(key, item)?),
                "discover_prefix" => s.discover_prefix = Some(self.string(key, item)?),
                "st" | "store_type" | "store" | "storetype" => {
                    s.store = Some(self.string(key, item)?)
                }
                "dir" | "datastore" => s.dir = Some(PathBuf::from(self.string(key, item)?)),
                "sd" | "stan_debug" => s.stan_debug = Some(self.boolean(key, item)?),
                "sv" | "stan_trace" => s.stan_trace = Some(self.boolean(key, item)?),
                "ns" | "nats_server" | "nats_server_url" => {
                    s.nats_server = Some(self.string(key, item)?)
                }
                "username" | "user" => s.user = Some(self.string(key, item)?),
                "password" | "pass" => s.pass = Some(self.string(key, item)?),
                "token" => s.auth = Some(self.string(key, item)?),
                "hbi" | "hb_interval" | "server_to_client_hb_interval" => {
                    s.hb_interval = Some(self.duration(key, item)?)
                }
                "hbt" | "hb_timeout" | "server_to_client_hb_timeout" => {
                    s.hb_timeout = Some(self.duration(key, item)?)
                }
                "hbf" | "hb_fail_count" | "server_to_client_hb_fail_count" => {
                    s.hb_fail_count = Some(self.non_negative(key, item)?)
                }
                "replace_durable"
                | "replace_durables"
                | "replace_duplicate_durable"
                | "replace_duplicate_durables" => {
                    s.replace_durable = Some(self.boolean(key, item)?)
                }
                "trust_client_subjects" => s.trust_client_subjects = Some(self.boolean(key, item)?),
                "io_batch_size" => s.io_batch_size = Some(self.non_negative(key, item)?),
                "dedup_window" => s.dedup_window = Some(self.duration(key, item)?),
                "limits" | "store_limits" | "storelimits" => {
                    let m = self.map(key, item)?;
                    self.apply_store_limits(m, s)?;
                }
                "file" | "file_options" => {
                    let m = self.map(key, item)?;
                    self.apply_file_options(m, s)?;
                }
                "jetstream" | "jetstream_options" => {
                    let m = self.map(key, item)?;
                    self.apply_jetstream_options(m, s)?;
                }
                "tls" => {
                    let m = self.map(key, item)?;
                    self.apply_client_tls(m, s, in_block)?;
                }
                _ if in_block || STREAMING_IGNORED.contains(&k.as_str()) => {
                    self.warn(
                        item,
                        format!("streaming key {key:?} is not supported and is ignored"),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_store_limits(&mut self, m: &Map, s: &mut Settings) -> Result<(), ConfError> {
        for (key, item) in &m.entries {
            match key.to_ascii_lowercase().as_str() {
                "mc" | "max_channels" | "maxchannels" => {
                    s.max_channels = Some(self.non_negative(key, item)?)
                }
                "channels" | "channels_limits" | "channelslimits" | "per_channel"
                | "per_channel_limits" => {
                    let channels = self.map(key, item)?;
                    let map = s.channels.get_or_insert_with(BTreeMap::new);
                    for (name, limits) in &channels.entries {
                        if !stan_protocol::validate::is_valid_channel_limits_key(name) {
                            return Err(
                                self.error(limits.line, format!("invalid channel name {name:?}"))
                            );
                        }
                        let lm = self.map(name, limits)?;
                        let mut cl = ChannelLimits::default();
                        for (k, v) in &lm.entries {
                            if !self.apply_channel_limit(&mut cl, k, v)? {
                                self.warn(
                                    v,
                                    format!("channel limit {k:?} is not supported and is ignored"),
                                );
                            }
                        }
                        map.insert(name.clone(), cl);
                    }
                }
                _ => {
                    let mut global = ChannelLimits::default();
                    if self.apply_channel_limit(&mut global, key, item)? {
                        if global.max_subs.is_some() {
                            s.max_subs = global.max_subs.map(|v| v as i64);
                        }
                        if global.max_msgs.is_some() {
                            s.max_msgs = global.max_msgs.map(|v| v as i64);
                        }
                        if global.max_bytes.is_some() {
                            s.max_bytes = global.max_bytes.map(|v| v as i64);
                        }
                        if global.max_age.is_some() {
                            s.max_age = global.max_age;
                        }
                        if global.max_inactivity.is_some() {
                            s.max_inactivity = global.max_inactivity;
                        }
                    } else {
                        self.warn(
                            item,
                            format!("store limit {key:?} is not supported and is ignored"),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// The core `tls` block: the embedded server's TLS. The streaming block's keys
    /// (`client_*`) are left to [`Self::apply_client_tls`] (one file may serve both parts).
    fn apply_server_tls(&mut self, m: &Map, s: &mut Settings) -> Result<(), ConfError> {
        for (key, item) in &m.entries {
            let k = key.to_ascii_lowercase();
            match k.as_str() {
                "cert_file" => s.tls_cert = Some(PathBuf::from(self.string(key, item)?)),
                "key_file" => s.tls_key = Some(PathBuf::from(self.string(key, item)?)),
                "ca_file" => s.tls_ca_cert = Some(PathBuf::from(self.string(key, item)?)),
                "verify" => s.tls_verify = Some(self.boolean(key, item)?),
                "timeout" => {
                    let secs = match &item.value {
                        Value::Int { value, .. } => *value as f64,
                        Value::Float(f) => *f,
                        _ => return Err(self.type_error(key, item, "a number of seconds")),
                    };
                    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
                        return Err(self.error(
                            item.line,
                            format!("{key:?}: invalid TLS timeout {secs} (seconds, 0 < t <= 3600)"),
                        ));
                    }
                    s.tls_timeout = Some(Duration::from_secs_f64(secs));
                }
                _ if CLIENT_TLS_KEYS.contains(&k.as_str()) => {}
                _ => self.warn(
                    item,
                    format!("tls key {key:?} is not supported and is ignored"),
                ),
            }
        }
        Ok(())
    }

    /// The streaming `tls` block: the TLS of the connection to an external NATS server. At
    /// the top level of a file the core keys are the core part's business.
    fn apply_client_tls(
        &mut self,
        m: &Map,
        s: &mut Settings,
        in_block: bool,
    ) -> Result<(), ConfError> {
        for (key, item) in &m.entries {
            let k = key.to_ascii_lowercase();
            match k.as_str() {
                "client_cert" => s.tls_client_cert = Some(PathBuf::from(self.string(key, item)?)),
                "client_key" => s.tls_client_key = Some(PathBuf::from(self.string(key, item)?)),
                "client_ca" | "client_cacert" => {
                    s.tls_client_cacert = Some(PathBuf::from(self.string(key, item)?))
                }
                // At the top level, the core part reports keys it does not know.
                _ if !in_block => {}
                _ => self.warn(
                    item,
                    format!("streaming tls key {key:?} is not supported and is ignored"),
                ),
            }
        }
        Ok(())
    }

    /// The `jetstream_options` block (the `--js_*` flags without their prefix).
    fn apply_jetstream_options(&mut self, m: &Map, s: &mut Settings) -> Result<(), ConfError> {
        for (key, item) in &m.entries {
            match key.to_ascii_lowercase().as_str() {
                "replicas" => s.js_replicas = Some(self.non_negative(key, item)?),
                "prefix" => s.js_prefix = Some(self.string(key, item)?),
                "lease_ttl" => s.js_lease_ttl = Some(self.duration(key, item)?),
                _ => self.warn(
                    item,
                    format!("jetstream_options key {key:?} is not supported and is ignored"),
                ),
            }
        }
        Ok(())
    }

    /// The `file_options` block (official key spellings).
    fn apply_file_options(&mut self, m: &Map, s: &mut Settings) -> Result<(), ConfError> {
        for (key, item) in &m.entries {
            match key.to_ascii_lowercase().as_str() {
                "compact" | "compact_enabled" => {
                    s.file_compact_enabled = Some(self.boolean(key, item)?)
                }
                "compact_fragmentation" | "compact_frag" => {
                    s.file_compact_frag = Some(self.non_negative(key, item)?)
                }
                "compact_interval" => s.file_compact_interval = Some(self.non_negative(key, item)?),
                "compact_min_size" => s.file_compact_min_size = Some(self.non_negative(key, item)?),
                "crc" | "do_crc" => s.file_crc = Some(self.boolean(key, item)?),
                "sync" | "do_sync" | "sync_on_flush" => {
                    s.file_sync = Some(self.boolean(key, item)?)
                }
                "auto_sync" => s.file_auto_sync = Some(self.duration(key, item)?),
                "slice_max_msgs" | "slice_max_count" | "slice_msgs" | "slice_count" => {
                    s.file_slice_max_msgs = Some(self.non_negative(key, item)?)
                }
                "slice_max_bytes" | "slice_max_size" | "slice_bytes" | "slice_size" => {
                    s.file_slice_max_bytes = Some(self.non_negative(key, item)?)
                }
                "slice_max_age" | "slice_age" | "slice_max_time" | "slice_time_limit" => {
                    s.file_slice_max_age = Some(self.duration(key, item)?)
                }
                "file_descriptors_limit" | "fds_limit" => {
                    s.file_fds_limit = Some(self.non_negative(key, item)?)
                }
                _ => self.warn(
                    item,
                    format!("file_options key {key:?} is not supported and is ignored"),
                ),
            }
        }
        Ok(())
    }

    /// Sets one limit; `Ok(false)` if the key is not a channel limit. An explicit 0 means
    /// unlimited, which [`ChannelLimits`] spells `Some(0)` (`None` would mean "inherit").
    fn apply_channel_limit(
        &self,
        cl: &mut ChannelLimits,
        key: &str,
        item: &Item,
    ) -> Result<bool, ConfError> {
        match key.to_ascii_lowercase().as_str() {
            "msu" | "max_subs" | "max_subscriptions" | "maxsubscriptions" => {
                cl.max_subs = Some(self.non_negative(key, item)? as usize)
            }
            "mm" | "max_msgs" | "maxmsgs" | "max_count" | "maxcount" => {
                cl.max_msgs = Some(self.non_negative(key, item)? as usize)
            }
            "mb" | "max_bytes" | "maxbytes" => {
                cl.max_bytes = Some(self.non_negative(key, item)? as u64)
            }
            "ma" | "max_age" | "maxage" => cl.max_age = Some(self.duration(key, item)?),
            "mi" | "max_inactivity" | "maxinactivity" => {
                cl.max_inactivity = Some(self.duration(key, item)?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Parses `data` as a configuration file and applies it to default [`Settings`], for fuzzing
/// and for replaying fuzz inputs in tests. Errors are expected; only a panic, a hang or an
/// unbounded allocation is a defect.
///
/// Inputs that mention `include` are skipped: an include names a file to read (an absolute path
/// or `\x2f` escapes can reach any file, `/dev/zero` among them), which is the trusted
/// operator's business rather than the parser's.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let path = Path::new("/nonexistent/stan-fuzz/fuzz.conf");
    let Ok(doc) = parser::parse_str(&text, path) else {
        return;
    };
    for (core, streaming) in [(true, true), (false, true), (true, false)] {
        let mut settings = Settings::default();
        let _ = apply(&doc, path, Parts { core, streaming }, &mut settings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Parts = Parts {
        core: true,
        streaming: true,
    };

    fn load(text: &str, parts: Parts) -> Result<(Settings, Vec<String>), ConfError> {
        let path = Path::new("t.conf");
        let doc = parser::parse_str(text, path)?;
        let mut s = Settings::default();
        let w = apply(&doc, path, parts, &mut s)?;
        Ok((s, w))
    }

    #[test]
    fn top_level_streaming_keys() {
        let (s, w) = load(
            "id: c1\nstore: memory\nhbi: \"5s\"\nhbt: 2s\nhbf: 3\nns: \"nats://127.0.0.1:1\"\ndiscover_prefix: _X\nreplace_durable: true\ntrust_client_subjects: true\n",
            BOTH,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.cluster_id.as_deref(), Some("c1"));
        assert_eq!(s.store.as_deref(), Some("memory"));
        assert_eq!(s.hb_interval, Some(Duration::from_secs(5)));
        assert_eq!(s.hb_timeout, Some(Duration::from_secs(2)));
        assert_eq!(s.hb_fail_count, Some(3));
        assert_eq!(s.nats_server.as_deref(), Some("nats://127.0.0.1:1"));
        assert_eq!(s.discover_prefix.as_deref(), Some("_X"));
        assert_eq!(s.replace_durable, Some(true));
        assert_eq!(s.trust_client_subjects, Some(true));
    }

    #[test]
    fn streaming_block_wins_over_top_level() {
        let (s, _) = load(
            "id: top\nport: 5000\nstreaming {\n  cluster_id: inner\n}\n",
            BOTH,
        )
        .unwrap();
        assert_eq!(s.cluster_id.as_deref(), Some("inner"));
        assert_eq!(s.port, Some(5000));
    }

    #[test]
    fn store_limits_global_and_per_channel() {
        let text = r#"
streaming {
  store_limits {
    max_channels: 10
    msu: 20
    max_msgs: 30
    mb: 1MB
    ma: "1h30m"
    mi: 10s
    channels {
      "foo": { mm: 0, max_bytes: 0 }        # explicit 0 = unlimited
      "bar.*" { max_age: "0s", msu: 5 }
      "baz.>" { mi: "1m" }
      qux { }
    }
  }
}
"#;
        let (s, w) = load(text, BOTH).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.max_channels, Some(10));
        assert_eq!(s.max_subs, Some(20));
        assert_eq!(s.max_msgs, Some(30));
        assert_eq!(s.max_bytes, Some(1 << 20));
        assert_eq!(s.max_age, Some(Duration::from_secs(5400)));
        assert_eq!(s.max_inactivity, Some(Duration::from_secs(10)));
        let ch = s.channels.unwrap();
        assert_eq!(
            ch["foo"],
            ChannelLimits {
                max_msgs: Some(0),
                max_bytes: Some(0),
                ..Default::default()
            }
        );
        assert_eq!(
            ch["bar.*"],
            ChannelLimits {
                max_age: Some(Duration::ZERO),
                max_subs: Some(5),
                ..Default::default()
            }
        );
        assert_eq!(ch["baz.>"].max_inactivity, Some(Duration::from_secs(60)));
        assert_eq!(ch["qux"], ChannelLimits::default());
    }

    #[test]
    fn unquoted_one_m_is_a_minute_for_durations() {
        // Limits are only read inside store_limits.
        let (s, w) = load("ma: 1m\n", BOTH).unwrap();
        assert_eq!(s.max_age, None);
        assert_eq!(w.len(), 1, "{w:?}");
        let (s, _) = load("store_limits { ma: 1m, mi: 0 }\n", BOTH).unwrap();
        assert_eq!(s.max_age, Some(Duration::from_secs(60)));
        assert_eq!(s.max_inactivity, Some(Duration::ZERO));
    }

    #[test]
    fn core_keys() {
        let text = "listen: 127.0.0.2:4333\nhttp: \"127.0.0.3:8333\"\nauthorization { user: u, password: p, token: \"t\" }\nmax_payload: 2MB\ndebug: true\nlogtime: false\nlog_file: \"/tmp/x.log\"\n";
        let (s, w) = load(
            text,
            Parts {
                core: true,
                streaming: false,
            },
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.addr.as_deref(), Some("127.0.0.2"));
        assert_eq!(s.port, Some(4333));
        assert_eq!(s.http_host.as_deref(), Some("127.0.0.3"));
        assert_eq!(s.http_port, Some(8333));
        assert_eq!(s.user.as_deref(), Some("u"));
        assert_eq!(s.pass.as_deref(), Some("p"));
        assert_eq!(s.auth.as_deref(), Some("t"));
        assert_eq!(s.max_payload, Some(2 << 20));
        assert_eq!(s.debug, Some(true));
        assert_eq!(s.logtime, Some(false));
        assert_eq!(s.log_file, Some(PathBuf::from("/tmp/x.log")));

        let (s, _) = load("port = 4555\nhost = 0.0.0.0\nmonitor_port: 8555\n", BOTH).unwrap();
        assert_eq!(
            (s.addr.as_deref(), s.port, s.http_port),
            (Some("0.0.0.0"), Some(4555), Some(8555))
        );
    }

    #[test]
    fn parts_are_respected() {
        let (s, _) = load(
            "port: 1\nid: x\n",
            Parts {
                core: false,
                streaming: true,
            },
        )
        .unwrap();
        assert_eq!((s.port, s.cluster_id.as_deref()), (None, Some("x")));
        let (s, _) = load(
            "port: 1\nid: x\n",
            Parts {
                core: true,
                streaming: false,
            },
        )
        .unwrap();
        assert_eq!((s.port, s.cluster_id.as_deref()), (Some(1), None));
    }

    #[test]
    fn file_options_block() {
        let (s, w) = load(
            "streaming {\n store: file\n dir: \"/tmp/d\"\n file_options {\n  sync_on_flush: false\n  auto_sync: \"2s\"\n  slice_max_msgs: 10\n  slice_max_bytes: 1KB\n  slice_max_age: \"1h\"\n  compact: false\n  compact_fragmentation: 30\n  compact_interval: 7\n  compact_min_size: 2KB\n  crc: false\n  fds_limit: 9\n }\n}\n",
            BOTH,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.store.as_deref(), Some("file"));
        assert_eq!(s.file_sync, Some(false));
        assert_eq!(s.file_auto_sync, Some(Duration::from_secs(2)));
        assert_eq!(s.file_slice_max_msgs, Some(10));
        assert_eq!(s.file_slice_max_bytes, Some(1024));
        assert_eq!(s.file_slice_max_age, Some(Duration::from_secs(3600)));
        assert_eq!(s.file_compact_enabled, Some(false));
        assert_eq!(s.file_compact_frag, Some(30));
        assert_eq!(s.file_compact_interval, Some(7));
        assert_eq!(s.file_compact_min_size, Some(2048));
        assert_eq!(s.file_crc, Some(false));
        assert_eq!(s.file_fds_limit, Some(9));
    }

    #[test]
    fn jetstream_options_block() {
        let (s, w) = load(
            "streaming {\n store: jetstream\n ns: \"nats://a:4222\"\n jetstream_options {\n  replicas: 3\n  prefix: ACME\n  lease_ttl: \"2s\"\n }\n}\n",
            BOTH,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.store.as_deref(), Some("jetstream"));
        assert_eq!(s.js_replicas, Some(3));
        assert_eq!(s.js_prefix.as_deref(), Some("ACME"));
        assert_eq!(s.js_lease_ttl, Some(Duration::from_secs(2)));
    }

    #[test]
    fn unknown_and_unsupported_keys_warn() {
        let (_, w) = load(
            "bogus: 1\nstreaming { file_options { buffer_size: 1MB }\n nope: 2 }\n",
            BOTH,
        )
        .unwrap();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(
            w[0].contains("t.conf:2") && w[0].contains("file_options"),
            "{w:?}"
        );
        assert!(w[1].contains("t.conf:3") && w[1].contains("nope"), "{w:?}");
        assert!(w[2].contains("t.conf:1") && w[2].contains("bogus"), "{w:?}");
    }

    #[test]
    fn type_and_value_errors_name_file_and_line() {
        let e = load("port: 1\nhbf: \"three\"\n", BOTH).unwrap_err();
        assert_eq!((e.line(), e.file()), (2, Path::new("t.conf")));
        assert!(
            e.problem().contains("hbf") && e.problem().contains("integer"),
            "{e}"
        );
        assert!(e.to_string().starts_with("t.conf:2: "), "{e}");

        let e = load("\nstore_limits {\n  max_msgs: -1\n}\n", BOTH).unwrap_err();
        assert_eq!(e.line(), 3);
        assert!(e.problem().contains("negative"), "{e}");

        let e = load("hbi: 10\n", BOTH).unwrap_err();
        assert!(e.problem().contains("duration"), "{e}");

        let e = load("store_limits { channels { \"a..b\": { mm: 1 } } }\n", BOTH).unwrap_err();
        assert!(e.problem().contains("invalid channel name"), "{e}");

        let e = load("store_limits { channels { \"a\": 5 } }\n", BOTH).unwrap_err();
        assert!(e.problem().contains("map"), "{e}");

        let e = load("streaming: 5\n", BOTH).unwrap_err();
        assert!(e.problem().contains("map"), "{e}");

        let e = load("sd: maybe\n", BOTH).unwrap_err();
        assert!(e.problem().contains("boolean"), "{e}");

        let e = load("port: 70000\n", BOTH).unwrap_err();
        assert!(e.problem().contains("port"), "{e}");

        let e = load("listen: \"nope\"\n", BOTH).unwrap_err();
        assert!(e.problem().contains("host:port"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let mut s = Settings::default();
        let e = load_file(Path::new("/nonexistent/dir/x.conf"), BOTH, &mut s).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/dir/x.conf: cannot read"),
            "{e}"
        );
    }
}

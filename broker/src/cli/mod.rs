//! The command line of `stan-broker`: flags compatible with the official
//! `nats-streaming-server`, config files, and the resulting [`BrokerConfig`].
//!
//! ```
//! use stan_broker::cli;
//! let cli = cli::parse_args(["-cid", "prod", "-p", "0", "-mb", "1GB"]).unwrap();
//! let opts = cli.load().unwrap();
//! assert_eq!(opts.broker.cluster_id, "prod");
//! assert_eq!(opts.broker.limits.global.max_bytes, Some(1 << 30));
//! ```

pub mod flags;
pub mod logging;
pub mod units;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::conf::{self, ConfError, Parts};
use crate::config::{BrokerConfig, ChannelLimits, EmbeddedNats, ExternalNats, NatsMode, StoreKind};
use flags::{Kind, Section, FLAGS};

/// Whether the FILE store can be selected. Until it exists, `-st FILE` is a clear error.
const FILE_STORE_AVAILABLE: bool = false;

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
    /// `--io_batch_size`.
    pub io_batch_size: Option<i64>,
    /// `-a`.
    pub addr: Option<String>,
    /// `-p` (0 or -1: any free port).
    pub port: Option<i64>,
    /// Monitoring host (config `http: "host:port"`); defaults to the listen host.
    pub http_host: Option<String>,
    /// `-m` (0 or -1: any free port).
    pub http_port: Option<i64>,
    /// `--user`.
    pub user: Option<String>,
    /// `--pass`.
    pub pass: Option<String>,
    /// `--auth`.
    pub auth: Option<String>,
    /// Config `max_payload`.
    pub max_payload: Option<i64>,
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
        overlay_fields!(base, top; cluster_id, discover_prefix, store, dir, max_channels, max_subs,
            max_msgs, max_bytes, max_age, max_inactivity, channels, nats_server, hb_interval,
            hb_timeout, hb_fail_count, replace_durable, io_batch_size, addr, port, http_host,
            http_port, user, pass, auth, max_payload, stan_debug, stan_trace, debug, trace,
            logtime, log_file);
        self
    }
}

/// The parsed command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cli {
    /// Values given on the command line.
    pub settings: Settings,
    /// `-c`: core (NATS) config file.
    pub config_file: Option<PathBuf>,
    /// `-sc`: streaming config file.
    pub stan_config_file: Option<PathBuf>,
    /// Flags given that are accepted but ignored (canonical names).
    pub ignored: Vec<String>,
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
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            level: tracing::Level::INFO,
            file: None,
            timestamps: true,
        }
    }
}

/// Everything the binary needs to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// The broker configuration.
    pub broker: BrokerConfig,
    /// Logging setup.
    pub log: LogOptions,
    /// Things to log as warnings once logging is up (ignored flags and config keys).
    pub warnings: Vec<String>,
}

/// An invalid configuration.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A config file could not be read or has an error.
    #[error(transparent)]
    Config(#[from] ConfError),
    /// An invalid combination or value.
    #[error("{0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, CliError> {
    Err(CliError::Invalid(msg.into()))
}

/// The clap command built from [`flags::FLAGS`]; it expects normalised arguments.
pub fn command() -> Command {
    let mut cmd = Command::new("stan-broker")
        .version(env!("CARGO_PKG_VERSION"))
        .about("NATS Streaming server")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
        .override_help(flags::help_text());
    for f in FLAGS {
        let arg = Arg::new(f.id).long(f.id);
        let arg = match f.kind {
            Kind::Action if f.id == "help" => arg.action(ArgAction::Help),
            Kind::Action => arg.action(ArgAction::Version),
            Kind::Bool => arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_parser(units::parse_go_bool),
            Kind::Str => arg.allow_hyphen_values(true),
            Kind::Int => arg
                .allow_hyphen_values(true)
                .value_parser(clap::value_parser!(i64)),
            Kind::Size => arg
                .allow_hyphen_values(true)
                .value_parser(units::parse_size),
            Kind::Duration => arg
                .allow_hyphen_values(true)
                .value_parser(units::parse_go_duration),
        };
        let arg = match f.kind {
            Kind::Bool | Kind::Action => arg,
            k => arg.value_name(k.value_name()),
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Parses command-line arguments (without the program name).
///
/// `Err` covers `--help` and `--version` too: call [`clap::Error::exit`], which prints to
/// stdout and exits 0 for those, or prints the usage error and exits 2.
pub fn parse_args<I, S>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let normalized = flags::normalize_args(args).map_err(|flags::UnknownFlag(name)| {
        command().error(ErrorKind::UnknownArgument, format!("unknown flag '{name}'"))
    })?;
    let matches = command()
        .try_get_matches_from(std::iter::once("stan-broker".to_string()).chain(normalized))?;
    Ok(from_matches(&matches))
}

fn from_matches(m: &ArgMatches) -> Cli {
    let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    let string = |id: &str| m.get_one::<String>(id).filter(|_| given(id)).cloned();
    let int = |id: &str| m.get_one::<i64>(id).filter(|_| given(id)).copied();
    let dur = |id: &str| m.get_one::<Duration>(id).filter(|_| given(id)).copied();
    let boolean = |id: &str| m.get_one::<bool>(id).filter(|_| given(id)).copied();
    let or = |a: Option<bool>, b: Option<bool>| match (a, b) {
        (Some(x), Some(y)) => Some(x || y),
        (x, y) => x.or(y),
    };
    let sdv = boolean("SDV");
    let dv = boolean("DV");
    let vv = or(boolean("VV"), boolean("DVV"));
    let settings = Settings {
        cluster_id: string("cluster_id"),
        store: string("store"),
        dir: string("dir").map(PathBuf::from),
        max_channels: int("max_channels"),
        max_subs: int("max_subs"),
        max_msgs: int("max_msgs"),
        max_bytes: int("max_bytes"),
        max_age: dur("max_age"),
        max_inactivity: dur("max_inactivity"),
        nats_server: string("nats_server"),
        hb_interval: dur("hb_interval"),
        hb_timeout: dur("hb_timeout"),
        hb_fail_count: int("hb_fail_count"),
        replace_durable: boolean("replace_durable"),
        io_batch_size: int("io_batch_size"),
        addr: string("addr"),
        port: int("port"),
        http_port: int("http_port"),
        user: string("user"),
        pass: string("pass"),
        auth: string("auth"),
        stan_debug: or(boolean("stan_debug"), sdv),
        stan_trace: or(boolean("stan_trace"), sdv),
        debug: or(or(boolean("debug"), dv), boolean("DVV")),
        trace: or(or(boolean("trace"), dv), vv),
        logtime: boolean("logtime"),
        log_file: string("log").map(PathBuf::from),
        ..Settings::default()
    };
    let ignored = FLAGS
        .iter()
        .filter(|f| f.section == Section::Ignored && given(f.id))
        .map(|f| f.id.to_string())
        .collect();
    Cli {
        settings,
        config_file: string("config").map(PathBuf::from),
        stan_config_file: string("stan_config").map(PathBuf::from),
        ignored,
    }
}

impl Cli {
    /// Reads the config files, applies the command line over them and validates the result.
    pub fn load(&self) -> Result<Options, CliError> {
        let mut warnings: Vec<String> = self
            .ignored
            .iter()
            .map(|f| format!("flag --{f} is accepted for compatibility but not supported; ignored"))
            .collect();
        let mut file_settings = Settings::default();
        match (&self.config_file, &self.stan_config_file) {
            (None, None) => {}
            (Some(one), None) | (None, Some(one)) => {
                let parts = Parts {
                    core: true,
                    streaming: true,
                };
                warnings.extend(conf::load_file(one, parts, &mut file_settings)?);
            }
            (Some(core), Some(stan)) => {
                let core_parts = Parts {
                    core: true,
                    streaming: false,
                };
                let stan_parts = Parts {
                    core: false,
                    streaming: true,
                };
                warnings.extend(conf::load_file(core, core_parts, &mut file_settings)?);
                warnings.extend(conf::load_file(stan, stan_parts, &mut file_settings)?);
            }
        }
        let settings = file_settings.overlay(self.settings.clone());
        let (broker, log) = build(&settings)?;
        Ok(Options {
            broker,
            log,
            warnings,
        })
    }
}

fn non_negative(what: &str, v: Option<i64>) -> Result<Option<i64>, CliError> {
    match v {
        Some(n) if n < 0 => invalid(format!("{what} cannot be negative ({n})")),
        other => Ok(other),
    }
}

fn port(what: &str, v: i64) -> Result<u16, CliError> {
    match v {
        -1 | 0 => Ok(0),
        1..=65535 => Ok(v as u16),
        _ => invalid(format!("invalid {what} {v}")),
    }
}

fn socket_addr(host: &str, port: u16) -> Result<SocketAddr, CliError> {
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return invalid(format!("invalid monitoring host {host:?}: {e}")),
    };
    match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
        Some(a) => Ok(*a),
        None => invalid(format!("invalid monitoring host {host:?}")),
    }
}

/// Turns merged settings into the broker configuration and logging options.
pub fn build(s: &Settings) -> Result<(BrokerConfig, LogOptions), CliError> {
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
        Some("FILE") => {
            if !FILE_STORE_AVAILABLE {
                return invalid("file store not supported yet (use -st MEMORY)");
            }
            match &s.dir {
                Some(dir) => StoreKind::File(dir.clone()),
                None => return invalid("the FILE store needs a directory (--dir)"),
            }
        }
        Some("SQL") => return invalid("SQL store not supported (use -st MEMORY)"),
        Some(_) => {
            return invalid(format!(
                "unknown store type: {} (expected MEMORY or FILE)",
                s.store.as_deref().unwrap_or_default()
            ))
        }
    };

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
        }),
        None => {
            let mut e = EmbeddedNats {
                host: host.clone(),
                user: s.user.clone(),
                pass: s.pass.clone(),
                auth_token: s.auth.clone(),
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
    };
    Ok((cfg, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn cli(args: &[&str]) -> Cli {
        parse_args(args.iter().copied()).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn load(args: &[&str]) -> Options {
        cli(args).load().unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn load_err(args: &[&str]) -> String {
        cli(args).load().expect_err("expected an error").to_string()
    }

    fn parse_err(args: &[&str]) -> clap::Error {
        parse_args(args.iter().copied()).expect_err("expected a usage error")
    }

    fn embedded(cfg: &BrokerConfig) -> &EmbeddedNats {
        match &cfg.nats {
            NatsMode::Embedded(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_arguments_is_the_default_setup() {
        let o = load(&[]);
        assert_eq!(o.broker, BrokerConfig::default());
        let e = embedded(&o.broker);
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 4222));
        assert_eq!(o.broker.cluster_id, "test-cluster");
        assert_eq!(o.broker.store, StoreKind::Memory);
        assert_eq!(o.broker.monitor, None);
        assert_eq!(o.log, LogOptions::default());
        assert!(o.warnings.is_empty());
    }

    #[test]
    fn cluster_id_in_every_form() {
        for args in [
            &["-cid", "test"][..],
            &["--cid=test"],
            &["-cluster_id", "test"],
            &["--cluster_id=test"],
        ] {
            assert_eq!(load(args).broker.cluster_id, "test", "{args:?}");
        }
        // The last one wins, as with Go flags.
        assert_eq!(
            load(&["-cid", "a", "--cluster_id", "b"]).broker.cluster_id,
            "b"
        );
    }

    #[test]
    fn listen_and_monitoring() {
        let o = load(&["-a", "127.0.0.1", "-p", "4333", "-m", "8333"]);
        assert_eq!(embedded(&o.broker).port, 4333);
        assert_eq!(
            o.broker.monitor,
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8333))
        );
        assert_eq!(embedded(&load(&["-p", "0"]).broker).port, 0);
        assert_eq!(embedded(&load(&["--port=-1"]).broker).port, 0);
        assert_eq!(
            load(&["-m", "-1"]).broker.monitor.map(|a| a.port()),
            Some(0)
        );
        assert_eq!(
            embedded(&load(&["--addr", "0.0.0.0"]).broker).host,
            "0.0.0.0"
        );
        assert!(load_err(&["-p", "70000"]).contains("invalid port 70000"));
        assert!(load_err(&["-m", "-5"]).contains("invalid monitoring port"));
    }

    #[test]
    fn store_selection() {
        assert_eq!(load(&["-st", "MEMORY"]).broker.store, StoreKind::Memory);
        assert_eq!(load(&["--store=memory"]).broker.store, StoreKind::Memory);
        assert_eq!(load(&["-st", "Memory"]).broker.store, StoreKind::Memory);
        let e = load_err(&["-st", "FILE", "--dir", "/tmp/x"]);
        assert!(e.contains("file store not supported yet"), "{e}");
        assert!(load_err(&["-st", "file"]).contains("file store not supported yet"));
        assert!(load_err(&["-st", "SQL"]).contains("SQL store not supported"));
        assert!(load_err(&["-st", "disk"]).contains("unknown store type: disk"));
    }

    #[test]
    fn limits() {
        let o = load(&[
            "-mc", "5", "-msu", "6", "-mm", "7", "-mb", "1GB", "-ma", "1h30m", "-mi", "10s",
        ]);
        let l = &o.broker.limits;
        assert_eq!(l.max_channels, 5);
        assert_eq!(l.global.max_subs, Some(6));
        assert_eq!(l.global.max_msgs, Some(7));
        assert_eq!(l.global.max_bytes, Some(1 << 30));
        assert_eq!(l.global.max_age, Some(Duration::from_secs(5400)));
        assert_eq!(l.global.max_inactivity, Some(Duration::from_secs(10)));
        let o = load(&["--max_bytes=500MB", "--max_channels=0"]);
        assert_eq!(o.broker.limits.global.max_bytes, Some(500 << 20));
        assert_eq!(o.broker.limits.max_channels, 0);
        assert_eq!(
            load(&["-mb", "1024"]).broker.limits.global.max_bytes,
            Some(1024)
        );
        assert!(load_err(&["-mm", "-1"]).contains("max messages limit cannot be negative"));
        assert!(load_err(&["-mc", "-1"]).contains("cannot be negative"));
    }

    #[test]
    fn heartbeats_and_durables() {
        let o = load(&[
            "-hbi",
            "1s",
            "-hbt",
            "500ms",
            "-hbf",
            "2",
            "--replace_durable",
        ]);
        assert_eq!(o.broker.hb_interval, Duration::from_secs(1));
        assert_eq!(o.broker.hb_timeout, Duration::from_millis(500));
        assert_eq!(o.broker.hb_fail_count, 2);
        assert!(o.broker.replace_durable);
        assert!(load(&["--replace_durable=true"]).broker.replace_durable);
        assert!(!load(&["--replace_durable=false"]).broker.replace_durable);
        assert!(load(&["-replace_durable=1"]).broker.replace_durable);
        assert_eq!(load(&["--io_batch_size", "10"]).broker.io_batch_size, 10);
    }

    #[test]
    fn external_nats_and_auth() {
        let o = load(&["-ns", "nats://127.0.0.1:4999", "--user", "u", "--pass", "p"]);
        assert_eq!(
            o.broker.nats,
            NatsMode::External(ExternalNats {
                url: "nats://127.0.0.1:4999".into(),
                user: Some("u".into()),
                pass: Some("p".into()),
                auth_token: None,
            })
        );
        let o = load(&["--auth", "s3cr3t", "--user=a", "--pass=-dash"]);
        let e = embedded(&o.broker);
        assert_eq!(e.auth_token.as_deref(), Some("s3cr3t"));
        assert_eq!(e.user.as_deref(), Some("a"));
        assert_eq!(e.pass.as_deref(), Some("-dash"));
    }

    #[test]
    fn logging_flags() {
        use tracing::Level;
        let level = |args: &[&str]| load(args).log.level;
        assert_eq!(level(&[]), Level::INFO);
        assert_eq!(level(&["-D"]), Level::DEBUG);
        assert_eq!(level(&["-SD"]), Level::DEBUG);
        assert_eq!(level(&["--stan_debug=true"]), Level::DEBUG);
        assert_eq!(level(&["-V"]), Level::TRACE);
        assert_eq!(level(&["-SV"]), Level::TRACE);
        assert_eq!(level(&["-SDV"]), Level::TRACE);
        assert_eq!(level(&["-DV"]), Level::TRACE);
        assert_eq!(level(&["-D=false"]), Level::INFO);
        assert_eq!(level(&["-SDV=false"]), Level::INFO);
        let o = load(&["-l", "/tmp/stan.log", "-T=false"]);
        assert_eq!(o.log.file, Some(PathBuf::from("/tmp/stan.log")));
        assert!(!o.log.timestamps);
    }

    #[test]
    fn ignored_flags_warn() {
        let o = load(&[
            "--clustered",
            "--cluster_node_id",
            "a",
            "-secure",
            "--file_sync=false",
            "-ms",
            "8443",
            "--encrypt",
        ]);
        assert_eq!(o.warnings.len(), 6, "{:?}", o.warnings);
        assert!(o.warnings.iter().any(|w| w.contains("--clustered")));
        assert!(o.warnings.iter().any(|w| w.contains("--https_port")));
        assert_eq!(o.broker, BrokerConfig::default());
    }

    #[test]
    fn every_flag_in_every_spelling_parses() {
        for f in FLAGS.iter().filter(|f| f.kind != Kind::Action) {
            let value = match f.kind {
                Kind::Bool => "true",
                Kind::Str => "x",
                Kind::Int => "1",
                Kind::Size => "1KB",
                Kind::Duration => "1s",
                Kind::Action => unreachable!(),
            };
            for name in f.aliases.iter().chain(std::iter::once(&f.id)) {
                let mut forms: Vec<Vec<String>> = vec![
                    vec![format!("-{name}={value}")],
                    vec![format!("--{name}={value}")],
                ];
                if f.kind == Kind::Bool {
                    forms.push(vec![format!("-{name}")]);
                    forms.push(vec![format!("--{name}")]);
                } else {
                    forms.push(vec![format!("-{name}"), value.to_string()]);
                    forms.push(vec![format!("--{name}"), value.to_string()]);
                }
                for args in forms {
                    let cli = parse_args(args.clone()).unwrap_or_else(|e| panic!("{args:?}: {e}"));
                    if f.section == Section::Ignored {
                        assert_eq!(cli.ignored, [f.id], "{args:?}");
                    } else {
                        assert!(cli.ignored.is_empty(), "{args:?}");
                        assert_ne!(cli, Cli::default(), "{args:?} had no effect");
                    }
                }
            }
        }
    }

    #[test]
    fn usage_errors() {
        let e = parse_err(&["-foo"]);
        assert_eq!(e.kind(), ErrorKind::UnknownArgument);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("'-foo'"), "{e}");

        let e = parse_err(&["-p", "abc"]);
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("abc"), "{e}");

        let e = parse_err(&["-mb", "lots"]);
        assert!(e.to_string().contains("invalid size"), "{e}");

        let e = parse_err(&["-ma", "10"]);
        assert!(e.to_string().contains("invalid duration"), "{e}");

        let e = parse_err(&["--replace_durable=maybe"]);
        assert!(e.to_string().contains("invalid boolean"), "{e}");

        let e = parse_err(&["-cid"]);
        assert_eq!(e.exit_code(), 2);

        let e = parse_err(&["stray"]);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("stray"), "{e}");

        // A Go boolean never takes the next argument.
        let e = parse_err(&["--replace_durable", "true"]);
        assert!(e.to_string().contains("true"), "{e}");
    }

    #[test]
    fn help_and_version_are_not_errors() {
        let e = parse_err(&["-h"]);
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert_eq!(e.exit_code(), 0);
        assert!(e.to_string().contains("-cid, --cluster_id"), "{e}");
        assert_eq!(parse_err(&["--help"]).kind(), ErrorKind::DisplayHelp);
        let e = parse_err(&["--version"]);
        assert_eq!(e.kind(), ErrorKind::DisplayVersion);
        assert!(e.to_string().contains(env!("CARGO_PKG_VERSION")), "{e}");
        assert_eq!(parse_err(&["-v"]).kind(), ErrorKind::DisplayVersion);
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stan-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn config_files_and_flag_precedence() {
        let stan = temp_file(
            "stan.conf",
            "streaming {\n  cluster_id: from_file\n  hb_interval: \"7s\"\n  store_limits {\n    max_msgs: 100\n    channels { \"orders.>\": { max_msgs: 0 }, \"x\": { mb: 1KB } }\n  }\n}\n",
        );
        let stan_s = stan.to_str().unwrap();
        let o = load(&["-sc", stan_s]);
        assert_eq!(o.broker.cluster_id, "from_file");
        assert_eq!(o.broker.hb_interval, Duration::from_secs(7));
        assert_eq!(o.broker.limits.global.max_msgs, Some(100));
        assert_eq!(o.broker.limits.channels["orders.>"].max_msgs, Some(0));
        assert_eq!(o.broker.limits.channels["orders.>"].max_bytes, None);
        assert_eq!(o.broker.limits.channels["x"].max_bytes, Some(1024));

        let o = load(&["-sc", stan_s, "-cid", "from_flag", "-mm", "5"]);
        assert_eq!(o.broker.cluster_id, "from_flag");
        assert_eq!(o.broker.limits.global.max_msgs, Some(5));
        assert_eq!(o.broker.hb_interval, Duration::from_secs(7));

        let core = temp_file(
            "core.conf",
            "port: 4999\nhttp_port: 8999\nauthorization { user: u, password: p }\nid: core_only\n",
        );
        let core_s = core.to_str().unwrap();
        // -c alone is used for both parts.
        let o = load(&["-c", core_s]);
        assert_eq!(embedded(&o.broker).port, 4999);
        assert_eq!(o.broker.monitor.map(|a| a.port()), Some(8999));
        assert_eq!(embedded(&o.broker).user.as_deref(), Some("u"));
        assert_eq!(o.broker.cluster_id, "core_only");
        // With both, each file provides only its part.
        let o = load(&["-c", core_s, "-sc", stan_s, "-p", "0"]);
        assert_eq!(o.broker.cluster_id, "from_file");
        assert_eq!(embedded(&o.broker).port, 0);
    }

    #[test]
    fn config_file_errors_are_located() {
        let bad = temp_file("bad.conf", "port: 1\n\nstreaming {\n  hbf: \"x\"\n}\n");
        let e = load_err(&["-sc", bad.to_str().unwrap()]);
        assert!(e.contains("bad.conf:4:"), "{e}");
        let too_many = temp_file(
            "many.conf",
            "store_limits { max_channels: 1, channels { a: {}, b: {}, \"c.*\": {} } }\n",
        );
        let e = load_err(&["-c", too_many.to_str().unwrap()]);
        assert!(e.contains("too many channels defined (2)"), "{e}");
        let e = load_err(&["-c", "/nonexistent/file.conf"]);
        assert!(
            e.contains("/nonexistent/file.conf") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn store_file_in_config_is_rejected_clearly() {
        let f = temp_file("file.conf", "store: file\ndir: /tmp/x\n");
        assert!(load_err(&["-sc", f.to_str().unwrap()]).contains("file store not supported yet"));
        // The command line wins over the file.
        assert_eq!(
            load(&["-sc", f.to_str().unwrap(), "-st", "memory"])
                .broker
                .store,
            StoreKind::Memory
        );
    }
}

//! The one table of command-line flags, and argv normalisation.
//!
//! The official server uses Go's `flag` package: `-flag` and `--flag` are the same, values are
//! given as `-flag value` or `-flag=value`, booleans as `-flag` or `-flag=false`. Clap wants
//! single-letter short flags and `--long` flags, so [`normalize_args`] first rewrites every known
//! flag, whatever its spelling, to `--<id>=<value>` (or `--<id>` for a bare boolean). Clap then
//! only ever sees long flags.

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `-flag` or `-flag=<bool>`; never consumes the next argument.
    Bool,
    /// A string.
    Str,
    /// A signed integer.
    Int,
    /// A size: `1024`, `500MB`, `1GB`.
    Size,
    /// A Go duration: `10s`, `1h30m`.
    Duration,
    /// `--help` / `--version`.
    Action,
}

impl Kind {
    /// Placeholder shown in the help text.
    pub fn value_name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Str => "string",
            Kind::Int => "int",
            Kind::Size => "size",
            Kind::Duration => "duration",
            Kind::Action => "",
        }
    }

    /// Whether `-flag value` takes the next argument as the value.
    pub fn takes_value(self) -> bool {
        !matches!(self, Kind::Bool | Kind::Action)
    }
}

/// Help-text section of a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Streaming server options.
    Streaming,
    /// FILE store options.
    FileStore,
    /// JETSTREAM store options.
    JetStreamStore,
    /// TLS of the streaming server's own connection to an external NATS server.
    StreamingTls,
    /// Streaming logging options.
    StreamingLogging,
    /// Embedded NATS server options.
    Nats,
    /// NATS logging options.
    Logging,
    /// Authorization of the embedded NATS server.
    Auth,
    /// TLS of the embedded NATS server's client port.
    Tls,
    /// Help and version.
    Common,
    /// Official flags accepted for compatibility and ignored with a warning.
    Ignored,
}

/// One flag of the command line.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Canonical name: the clap argument id and the `--<id>` form produced by normalisation.
    pub id: &'static str,
    /// Other accepted names (without dashes), shown with one dash in the help text.
    pub aliases: &'static [&'static str],
    /// Value syntax.
    pub kind: Kind,
    /// Help-text section.
    pub section: Section,
    /// One-line description.
    pub help: &'static str,
}

const fn flag(
    id: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    section: Section,
    help: &'static str,
) -> Flag {
    Flag {
        id,
        aliases,
        kind,
        section,
        help,
    }
}

const fn ignored(id: &'static str, aliases: &'static [&'static str], kind: Kind) -> Flag {
    Flag {
        id,
        aliases,
        kind,
        section: Section::Ignored,
        help: "",
    }
}

use Kind::*;
use Section::*;

/// Every accepted flag. Names are case-sensitive (`-V` is trace, `-v` is version).
pub const FLAGS: &[Flag] = &[
    // Streaming server.
    flag("cluster_id", &["cid"], Str, Streaming, "Cluster ID (default: test-cluster)"),
    flag("store", &["st"], Str, Streaming, "Store type: MEMORY|FILE|JETSTREAM (default: MEMORY)"),
    flag("dir", &[], Str, Streaming, "For the FILE store, the root directory"),
    flag("max_channels", &["mc"], Int, Streaming, "Max number of channels (0 for unlimited, default 100)"),
    flag("max_subs", &["msu"], Int, Streaming, "Max number of subscriptions per channel (0 for unlimited, default 1000)"),
    flag("max_msgs", &["mm"], Int, Streaming, "Max number of messages per channel (0 for unlimited, default 1000000)"),
    flag("max_bytes", &["mb"], Size, Streaming, "Max total size of messages per channel, e.g. 1GB (0 for unlimited)"),
    flag("max_age", &["ma"], Duration, Streaming, "Max duration a message is stored, e.g. 24h (0 for unlimited)"),
    flag("max_inactivity", &["mi"], Duration, Streaming, "Max inactivity (no message, no subscription) before a channel is deleted (0 for unlimited)"),
    flag("nats_server", &["ns"], Str, Streaming, "Connect to this external NATS server URL (embedded otherwise)"),
    flag("stan_config", &["sc"], Str, Streaming, "Streaming server configuration file"),
    flag("hb_interval", &["hbi"], Duration, Streaming, "Interval at which the server sends heartbeats to a client (default 30s)"),
    flag("hb_timeout", &["hbt"], Duration, Streaming, "How long the server waits for a heartbeat response (default 10s)"),
    flag("hb_fail_count", &["hbf"], Int, Streaming, "Failed heartbeats before the server closes the client connection (default 10)"),
    flag("replace_durable", &[], Bool, Streaming, "Replace an active durable subscription instead of reporting a duplicate"),
    flag("trust_client_subjects", &[], Bool, Streaming, "Turn client isolation off: accept acks, unsubscribes and closes from any NATS connection"),
    flag("io_batch_size", &[], Int, Streaming, "Max number of requests processed in one batch (default 1024)"),
    flag("dedup_window", &[], Duration, Streaming, "How long the guids of stored publishes are remembered: a publish re-sent with such a guid is acknowledged again, not stored twice (at most 100000 guids per channel, about 100 bytes each; default 2m, 0 for off)"),
    // FILE store.
    flag("file_sync", &[], Bool, FileStore, "Sync every write before acknowledging (default: true)"),
    flag("file_auto_sync", &[], Duration, FileStore, "Sync unsynced files this often: all written ones with file_sync=false, index files otherwise (default 1m, 0 = never)"),
    flag("file_slice_max_msgs", &[], Int, FileStore, "Max messages per file slice (0 for unlimited)"),
    flag("file_slice_max_bytes", &[], Size, FileStore, "Max size of a file slice (default 64MB, 0 for unlimited)"),
    flag("file_slice_max_age", &[], Duration, FileStore, "Max age of a file slice's first message (0 for unlimited)"),
    flag("file_compact_enabled", &[], Bool, FileStore, "Compact subscription and client logs (default: true)"),
    flag("file_compact_frag", &[], Int, FileStore, "Percentage of dead records that triggers a compaction (default 50)"),
    flag("file_compact_interval", &[], Int, FileStore, "Minimum seconds between compactions of a log (default 300)"),
    flag("file_compact_min_size", &[], Size, FileStore, "Minimum log size for a compaction (default 1MB)"),
    flag("file_fds_limit", &[], Int, FileStore, "File descriptors budget (accepted; 0 for unlimited)"),
    flag("file_crc", &[], Bool, FileStore, "Check CRCs of records read back (default: true)"),
    // JETSTREAM store.
    flag("js_replicas", &[], Int, JetStreamStore, "Replicas of the JETSTREAM store's streams and buckets (1 to 5, default 1)"),
    flag("js_prefix", &[], Str, JetStreamStore, "First part of the JETSTREAM store's stream and bucket names (default STAN)"),
    flag("js_lease_ttl", &[], Duration, JetStreamStore, "How long the active broker's lease lasts without renewal; a standby takes over about this long after the active one died (default 5s)"),
    // TLS of the connection to an external NATS server (-ns).
    flag("tls_client_cert", &[], Str, StreamingTls, "Client certificate for the connection to the NATS server (-ns), with --tls_client_key"),
    flag("tls_client_key", &[], Str, StreamingTls, "Private key of the client certificate (PEM)"),
    flag("tls_client_cacert", &[], Str, StreamingTls, "CA certificate(s) to trust for the NATS server's certificate (PEM)"),
    // Streaming logging.
    flag("stan_debug", &["SD"], Bool, StreamingLogging, "Enable streaming debug output"),
    flag("stan_trace", &["SV"], Bool, StreamingLogging, "Trace the raw streaming protocol"),
    flag("SDV", &[], Bool, StreamingLogging, "Debug and trace streaming"),
    // Embedded NATS.
    flag("addr", &["a", "net"], Str, Nats, "Bind to host address (default: 127.0.0.1)"),
    flag("port", &["p"], Int, Nats, "Use port for clients (default: 4222; 0 or -1: any free port)"),
    flag("http_port", &["m"], Int, Nats, "Use port for HTTP monitoring (0 or -1: any free port)"),
    flag("console_admin_token", &[], Str, Nats, "Turn on the web console's admin actions (delete a durable, delete a channel) for requests carrying this token (default: read-only console)"),
    flag("config", &["c"], Str, Nats, "Configuration file"),
    flag("ports_file_dir", &[], Str, Nats, "Write <dir>/stan-broker_<pid>.ports (JSON: client and monitoring URLs) once ready"),
    // Logging.
    flag("log", &["l"], Str, Logging, "File to redirect log output"),
    flag("log_format", &[], Str, Logging, "Log line format: text|json (json: one object per line with timestamp, level, message and fields; default: text)"),
    flag("logtime", &["T"], Bool, Logging, "Timestamp log entries (default: true)"),
    flag("debug", &["D"], Bool, Logging, "Enable debugging output"),
    flag("trace", &["V"], Bool, Logging, "Trace the raw protocol"),
    flag("DV", &[], Bool, Logging, "Debug and trace"),
    flag("VV", &[], Bool, Logging, "Verbose trace"),
    flag("DVV", &[], Bool, Logging, "Debug and verbose trace"),
    // Authorization.
    flag("user", &[], Str, Auth, "User required for connections"),
    flag("pass", &[], Str, Auth, "Password required for connections"),
    flag("auth", &[], Str, Auth, "Authorization token required for connections"),
    // TLS.
    flag("tls", &[], Bool, Tls, "Enable TLS on the client port, do not verify clients (needs --tlscert and --tlskey)"),
    flag("tlscert", &[], Str, Tls, "Server certificate file (PEM; implies --tls)"),
    flag("tlskey", &[], Str, Tls, "Private key for the server certificate (PEM; implies --tls)"),
    flag("tlsverify", &[], Bool, Tls, "Enable TLS, require client certificates signed by --tlscacert"),
    flag("tlscacert", &[], Str, Tls, "Client certificate CA for verification (PEM)"),
    // Help and version.
    flag("help", &["h"], Action, Common, "Show this message"),
    flag("version", &["v"], Action, Common, "Show version"),
    // Accepted for compatibility, ignored with a warning.
    ignored("https_port", &["ms"], Int),
    ignored("pid", &["P"], Str),
    ignored("name", &["n", "server_name"], Str),
    ignored("syslog", &["s"], Bool),
    ignored("remote_syslog", &["r"], Str),
    ignored("syslog_name", &[], Str),
    ignored("io_sleep_time", &[], Int),
    ignored("ft_group", &[], Str),
    ignored("encrypt", &[], Bool),
    ignored("encryption_cipher", &[], Str),
    ignored("encryption_key", &[], Str),
    ignored("clustered", &[], Bool),
    ignored("cluster_node_id", &[], Str),
    ignored("cluster_bootstrap", &[], Bool),
    ignored("cluster_peers", &[], Str),
    ignored("cluster_log_path", &[], Str),
    ignored("cluster_log_cache_size", &[], Int),
    ignored("cluster_log_snapshots", &[], Int),
    ignored("cluster_trailing_logs", &[], Int),
    ignored("cluster_sync", &[], Bool),
    ignored("cluster_raft_logging", &[], Bool),
    ignored("cluster_proceed_on_restore_failure", &[], Bool),
    ignored("cluster_allow_add_remove_node", &[], Bool),
    ignored("file_buffer_size", &[], Size),
    ignored("file_read_buffer_size", &[], Size),
    ignored("file_crc_poly", &[], Int),
    ignored("file_slice_archive_script", &[], Str),
    ignored("file_parallel_recovery", &[], Int),
    ignored("file_truncate_bad_eof", &[], Bool),
    ignored("sql_driver", &[], Str),
    ignored("sql_source", &[], Str),
    ignored("sql_no_caching", &[], Bool),
    ignored("sql_max_open_conns", &[], Int),
    ignored("sql_bulk_insert_limit", &[], Int),
    ignored("secure", &[], Bool),
    ignored("routes", &[], Str),
    ignored("cluster", &["cluster_listen"], Str),
    ignored("cluster_name", &[], Str),
    ignored("cluster_advertise", &[], Str),
    ignored("no_advertise", &[], Bool),
    ignored("connect_retries", &[], Int),
];

/// Finds a flag by any of its names (without dashes).
pub fn lookup(name: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.id == name || f.aliases.contains(&name))
}

/// An argument that is not a known flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFlag(pub String);

/// Rewrites argv (without the program name) so that every known flag reads `--<id>[=<value>]`.
///
/// `-cid x`, `--cid x`, `-cid=x`, `--cluster_id=x` all become `--cluster_id=x`; a value flag takes
/// the next argument as its value even if it starts with `-` (as Go does). Arguments that are not
/// flags, and everything after `--`, are passed through for clap to judge. An unknown flag is an
/// error naming it as written.
///
/// ```
/// use stan_broker::cli::flags::normalize_args;
/// let out = normalize_args(["-cid", "x", "-SDV", "--port=0", "-ma", "1h"]).unwrap();
/// assert_eq!(out, ["--cluster_id=x", "--SDV", "--port=0", "--max_age=1h"]);
/// ```
pub fn normalize_args<I, S>(args: I) -> Result<Vec<String>, UnknownFlag>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        let Some(body) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|b| !b.is_empty() && !b.starts_with('-'))
        else {
            out.push(arg);
            continue;
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(flag) = lookup(name) else {
            return Err(UnknownFlag(
                arg.split_once('=')
                    .map_or(arg.as_str(), |(n, _)| n)
                    .to_string(),
            ));
        };
        match value {
            Some(v) => out.push(format!("--{}={v}", flag.id)),
            None if flag.kind.takes_value() => match args.next() {
                Some(v) => out.push(format!("--{}={v}", flag.id)),
                None => out.push(format!("--{}", flag.id)),
            },
            None => out.push(format!("--{}", flag.id)),
        }
    }
    Ok(out)
}

/// `--name`, or `-NAME` for the official all-capitals combinations (`-SDV`, `-DV`).
fn display_id(id: &str) -> String {
    if id.chars().all(|c| c.is_ascii_uppercase()) {
        format!("-{id}")
    } else {
        format!("--{id}")
    }
}

/// The help text, built from [`FLAGS`].
pub fn help_text() -> String {
    let sections = [
        (Streaming, "Streaming Server Options:"),
        (FileStore, "File Store Options:"),
        (JetStreamStore, "JetStream Store Options:"),
        (StreamingTls, "Streaming Server TLS Options (with -ns):"),
        (StreamingLogging, "Streaming Server Logging Options:"),
        (Nats, "Embedded NATS Server Options:"),
        (Logging, "Logging Options:"),
        (Auth, "Authorization Options:"),
        (Tls, "TLS Options:"),
        (Common, "Common Options:"),
    ];
    let mut text = String::from("Usage: stan-broker [options]\n");
    for (section, title) in sections {
        text.push('\n');
        text.push_str(title);
        text.push('\n');
        for f in FLAGS.iter().filter(|f| f.section == section) {
            let mut names: Vec<String> = f.aliases.iter().map(|a| format!("-{a}")).collect();
            names.push(display_id(f.id));
            let mut left = names.join(", ");
            if f.kind != Action {
                if f.kind == Bool {
                    left.push_str("[=<bool>]");
                } else {
                    left.push_str(&format!(" <{}>", f.kind.value_name()));
                }
            }
            text.push_str(&format!("    {left:<38} {}\n", f.help));
        }
    }
    text.push_str(
        "\nAccepted for compatibility with nats-streaming-server, ignored with a warning:\n",
    );
    let mut line = String::from("   ");
    for f in FLAGS.iter().filter(|f| f.section == Ignored) {
        let mut names: Vec<String> = f.aliases.iter().map(|a| format!("-{a}")).collect();
        names.push(format!("--{}", f.id));
        let item = format!(" {}", names.join("/"));
        if line.len() + item.len() > 96 {
            text.push_str(&line);
            text.push('\n');
            line = String::from("   ");
        }
        line.push_str(&item);
    }
    text.push_str(&line);
    text.push_str(
        "\n\nFlags may be written -flag or --flag, with values as -flag value or -flag=value;\n\
         booleans as -flag or -flag=false. Command-line flags override config-file values.\n",
    );
    text.push_str(
        "\nMonitoring (-m) serves /streaming/* (JSON), /healthz and /metrics (Prometheus text).\n\
         Signals: SIGTERM and SIGINT stop the server; SIGHUP re-reads the config files (-c, -sc)\n\
         and applies channel limits and the log level; other changes are logged as needing a\n\
         restart. See docs/operations.md.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().copied()).unwrap()
    }

    #[test]
    fn every_spelling_of_a_value_flag() {
        for args in [
            &["-cid", "test"][..],
            &["--cid", "test"],
            &["-cid=test"],
            &["--cid=test"],
            &["-cluster_id", "test"],
            &["--cluster_id", "test"],
            &["-cluster_id=test"],
            &["--cluster_id=test"],
        ] {
            assert_eq!(norm(args), ["--cluster_id=test"], "{args:?}");
        }
    }

    #[test]
    fn single_letter_flags() {
        assert_eq!(norm(&["-p", "4222"]), ["--port=4222"]);
        assert_eq!(norm(&["-p=4222"]), ["--port=4222"]);
        assert_eq!(norm(&["--p", "4222"]), ["--port=4222"]);
        assert_eq!(norm(&["-a", "0.0.0.0"]), ["--addr=0.0.0.0"]);
        assert_eq!(norm(&["--net", "0.0.0.0"]), ["--addr=0.0.0.0"]);
        assert_eq!(norm(&["-m", "8222"]), ["--http_port=8222"]);
        assert_eq!(norm(&["-l", "/tmp/x.log"]), ["--log=/tmp/x.log"]);
        assert_eq!(norm(&["-c", "a.conf"]), ["--config=a.conf"]);
    }

    #[test]
    fn booleans_never_take_the_next_argument() {
        assert_eq!(
            norm(&["--replace_durable", "-SD"]),
            ["--replace_durable", "--stan_debug"]
        );
        assert_eq!(
            norm(&["--replace_durable=true"]),
            ["--replace_durable=true"]
        );
        assert_eq!(norm(&["-D=false"]), ["--debug=false"]);
        assert_eq!(norm(&["-SV"]), ["--stan_trace"]);
        assert_eq!(norm(&["-SDV"]), ["--SDV"]);
        assert_eq!(norm(&["-DV"]), ["--DV"]);
        assert_eq!(norm(&["-V"]), ["--trace"]);
        // Case matters: -v is version, -V is trace.
        assert_eq!(norm(&["-v"]), ["--version"]);
        assert_eq!(norm(&["-h"]), ["--help"]);
        assert_eq!(norm(&["-help"]), ["--help"]);
    }

    #[test]
    fn value_flags_take_the_next_argument_even_with_a_dash() {
        assert_eq!(norm(&["-p", "-1"]), ["--port=-1"]);
        assert_eq!(norm(&["--pass", "-secret-"]), ["--pass=-secret-"]);
        assert_eq!(
            norm(&["-mb", "1GB", "-ma", "1h30m"]),
            ["--max_bytes=1GB", "--max_age=1h30m"]
        );
        // Values may contain '='.
        assert_eq!(norm(&["--auth=a=b"]), ["--auth=a=b"]);
        // A value flag at the end is left for clap to reject.
        assert_eq!(norm(&["-cid"]), ["--cluster_id"]);
    }

    #[test]
    fn every_short_name_maps_to_its_long_flag() {
        let cases = [
            ("cid", "cluster_id"),
            ("st", "store"),
            ("mc", "max_channels"),
            ("msu", "max_subs"),
            ("mm", "max_msgs"),
            ("mb", "max_bytes"),
            ("ma", "max_age"),
            ("mi", "max_inactivity"),
            ("ns", "nats_server"),
            ("sc", "stan_config"),
            ("hbi", "hb_interval"),
            ("hbt", "hb_timeout"),
            ("hbf", "hb_fail_count"),
            ("ms", "https_port"),
            ("P", "pid"),
        ];
        for (short, long) in cases {
            assert_eq!(norm(&[&format!("-{short}"), "1"]), [format!("--{long}=1")]);
        }
    }

    #[test]
    fn unknown_flags_are_named_as_written() {
        assert_eq!(normalize_args(["-foo"]), Err(UnknownFlag("-foo".into())));
        assert_eq!(
            normalize_args(["-p", "1", "--bogus=3"]),
            Err(UnknownFlag("--bogus".into()))
        );
        // Case-sensitive: -CID is not -cid.
        assert_eq!(
            normalize_args(["-CID", "x"]),
            Err(UnknownFlag("-CID".into()))
        );
    }

    #[test]
    fn positionals_and_terminator_pass_through() {
        assert_eq!(norm(&["extra"]), ["extra"]);
        assert_eq!(norm(&["-"]), ["-"]);
        assert_eq!(norm(&["---x"]), ["---x"]);
        assert_eq!(norm(&["--", "-cid"]), ["--", "-cid"]);
    }

    #[test]
    fn table_has_no_duplicate_names() {
        let mut seen = std::collections::HashSet::new();
        for f in FLAGS {
            assert!(seen.insert(f.id), "duplicate {}", f.id);
            for a in f.aliases {
                assert!(seen.insert(a), "duplicate {a}");
            }
        }
    }

    #[test]
    fn help_lists_official_forms() {
        let help = help_text();
        for needle in [
            "-cid, --cluster_id <string>",
            "-mb, --max_bytes <size>",
            "    -SDV[=<bool>]",
            "    -DV[=<bool>]",
            "--replace_durable[=<bool>]",
            "--file_sync",
            "    --tlscert <string>",
            "    --tlsverify[=<bool>]",
            "    --tls_client_cacert <string>",
        ] {
            assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
        }
    }
}

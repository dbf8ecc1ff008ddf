//! Command-line flags: the flag table, Go-style argv normalisation, and the checked [`Config`].
//!
//! The Go benchmark tool parses its flags with Go's `flag` package: `-np 4`, `-np=4`,
//! `--np 4` are the same, booleans are `-sync` or `-sync=false`. Clap wants `--long` flags, so
//! [`normalize_args`] first rewrites every known flag, in any of those spellings and under any
//! of its names, to `--<id>=<value>` (or `--<id>` for a bare boolean). Clap then only ever sees
//! long flags, and scripts can swap the Go tool for this one without changing their arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};

/// One flag of the command line.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Canonical name: the clap argument's long name and the `--<id>` form normalisation makes.
    pub id: &'static str,
    /// Other accepted names, without dashes (the Go tool's names among them).
    pub aliases: &'static [&'static str],
    /// Whether `-flag value` takes the next argument as the value (false for booleans).
    pub takes_value: bool,
}

const fn value(id: &'static str, aliases: &'static [&'static str]) -> Flag {
    Flag {
        id,
        aliases,
        takes_value: true,
    }
}

const fn switch(id: &'static str, aliases: &'static [&'static str]) -> Flag {
    Flag {
        id,
        aliases,
        takes_value: false,
    }
}

/// Every accepted flag. Names are case-sensitive.
pub const FLAGS: &[Flag] = &[
    value("server", &["s"]),
    value("cluster", &["c", "cid", "cluster_id"]),
    value("client-id", &["id"]),
    value("publishers", &["np"]),
    value("subscribers", &["ns"]),
    value("msgs", &["n"]),
    value("size", &["ms"]),
    switch("sync", &[]),
    switch("ignore-old", &["io"]),
    value("max-pub-acks", &["mpa"]),
    value("csv", &[]),
    value("qgroup", &["queue-group"]),
    value("user", &["u"]),
    value("password", &["pw"]),
    value("creds", &[]),
    value("cert-dir", &["cd"]),
    value("cert", &["cf"]),
    value("key", &["ck"]),
    value("tls-ca", &[]),
    switch("json", &[]),
    value("duration", &[]),
    switch("core-request-reply", &[]),
    switch("channel-per-publisher", &["cpp"]),
    switch("quiet", &["q"]),
    switch("help", &["h"]),
    switch("version", &["V"]),
];

/// The flag named `name` (canonical name or alias, without dashes).
pub fn lookup(name: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.id == name || f.aliases.contains(&name))
}

/// Rewrites every flag to `--<id>=<value>` or `--<id>` (see the module docs). Arguments that
/// are not flags (the subject) pass through unchanged, and so does everything after `--`.
///
/// # Errors
/// A message naming the first unknown flag.
///
/// ```
/// let args = stan_bench::cli::normalize_args(["stan-bench", "-np", "4", "-sync", "foo"]).unwrap();
/// assert_eq!(args, ["stan-bench", "--publishers=4", "--sync", "foo"]);
/// ```
pub fn normalize_args<I, S>(args: I) -> Result<Vec<String>, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut out: Vec<String> = args.next().into_iter().collect();
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
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(flag) = lookup(name) else {
            return Err(format!(
                "unknown flag -{name} (see stan-bench --help for the flags)"
            ));
        };
        match inline {
            Some(v) => out.push(format!("--{}={v}", flag.id)),
            None if flag.takes_value => match args.next() {
                Some(v) => out.push(format!("--{}={v}", flag.id)),
                None => return Err(format!("flag -{name} needs a value")),
            },
            None => out.push(format!("--{}", flag.id)),
        }
    }
    Ok(out)
}

/// Parses a duration: Go syntax (`10s`, `1m30s`, `250ms`, `1.5h`; units `ns`, `us`, `µs`, `ms`,
/// `s`, `m`, `h`) or a plain number of seconds (`10`).
///
/// # Errors
/// A message quoting the text.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(stan_bench::cli::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (examples: 10s, 1m30s, 500ms)");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total / 1e9).map_err(|_| bad())
}

/// The arguments as clap sees them after [`normalize_args`]. The Go tool's names are in
/// brackets in each help line.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "stan-bench",
    version,
    about = "Benchmark a NATS Streaming server: publishers, subscribers, queue groups, latency",
    after_help = "Every flag also accepts one dash and the Go tool's short names: \
                  -s -c -id -np -ns -n -ms -sync -io -mpa -csv -qgroup -u -pw -cd -cf -ck, \
                  and -cpp for --channel-per-publisher.\n\
                  Values may follow as the next argument or after '='."
)]
pub struct Args {
    /// NATS URL(s) of the server, comma separated [-s]
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub server: String,
    /// Cluster id of the streaming server [-c, -cluster]
    #[arg(long, default_value = "test-cluster")]
    pub cluster: String,
    /// Prefix of the client ids: PREFIX-pub-N, PREFIX-sub-N [-id]
    #[arg(long = "client-id", default_value = "benchmark")]
    pub client_id: String,
    /// Number of concurrent publishers [-np]
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Number of concurrent subscribers [-ns]
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// Number of messages to publish, spread over the publishers [-n]
    #[arg(long, default_value_t = 100_000)]
    pub msgs: u64,
    /// Message size in bytes [-ms]
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Publish synchronously: wait for each ack before the next publish [-sync]
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = false,
          default_missing_value = "true")]
    pub sync: bool,
    /// Subscribers only receive new messages (not the channel's stored ones) [-io]
    #[arg(long = "ignore-old", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    pub ignore_old: bool,
    /// Max number of publishes awaiting their ack, per publisher [-mpa]
    #[arg(long = "max-pub-acks", default_value_t = 512)]
    pub max_pub_acks: usize,
    /// Also write the per-client figures to this CSV file [-csv]
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Subscribers join this queue group [-qgroup]
    #[arg(long)]
    pub qgroup: Option<String>,
    /// NATS user [-u]
    #[arg(long)]
    pub user: Option<String>,
    /// NATS password [-pw]
    #[arg(long)]
    pub password: Option<String>,
    /// NATS credentials file (not supported; accepted so the flag is recognised) [-creds]
    #[arg(long)]
    pub creds: Option<PathBuf>,
    /// Directory of PEM root certificates (*.pem) to trust [-cd]
    #[arg(long = "cert-dir")]
    pub cert_dir: Option<PathBuf>,
    /// PEM client certificate [-cf]
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// PEM key of the client certificate [-ck]
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A PEM root certificate to trust
    #[arg(long = "tls-ca")]
    pub tls_ca: Option<PathBuf>,
    /// Print the results as one JSON document on stdout instead of the text report
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = false,
          default_missing_value = "true")]
    pub json: bool,
    /// Publish for this long (e.g. 10s, 1m) instead of a message count
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Measure core-NATS request/reply instead (one responder, -np requesters, -n requests)
    #[arg(long = "core-request-reply", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    pub core_request_reply: bool,
    /// One channel per publisher: publisher i publishes on SUBJECT.i (i from 0), subscriber j
    /// subscribes to SUBJECT.(j mod -np), so the subscribers spread round-robin over the
    /// publishers' channels; with -qgroup, the subscribers of one channel form its group.
    /// Not available with --core-request-reply [-cpp]
    #[arg(long = "channel-per-publisher", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    pub channel_per_publisher: bool,
    /// No progress output on stderr
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = false,
          default_missing_value = "true")]
    pub quiet: bool,
    /// The channel (subject) to use
    #[arg(default_value = "stan-bench")]
    pub subject: String,
}

/// What a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Streaming publishers and subscribers through the streaming server.
    Streaming,
    /// Core-NATS request/reply round trips (one responder, the publishers as requesters).
    CoreRequestReply,
}

/// When the publishers stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// This many messages in all, spread over the publishers.
    Messages(u64),
    /// Publish until this much time has passed.
    Duration(Duration),
}

/// TLS files for the connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Root certificates to trust.
    pub roots: Vec<PathBuf>,
    /// Client certificate and key.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A checked benchmark configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// What is measured.
    pub mode: Mode,
    /// NATS URL(s).
    pub server: String,
    /// Streaming cluster id.
    pub cluster: String,
    /// Client id prefix.
    pub client_id: String,
    /// Channel (or core subject).
    pub subject: String,
    /// Number of publishers (requesters in core request/reply mode).
    pub publishers: usize,
    /// Number of subscribers.
    pub subscribers: usize,
    /// Message count or duration.
    pub amount: Amount,
    /// Payload size in bytes.
    pub size: usize,
    /// Publish synchronously.
    pub sync: bool,
    /// Subscribers only get new messages.
    pub ignore_old: bool,
    /// Max publishes awaiting acks per publisher.
    pub max_pub_acks: usize,
    /// Queue group of the subscribers.
    pub queue_group: Option<String>,
    /// One channel per publisher (`<subject>.<i>`) instead of one channel for all.
    pub channel_per_publisher: bool,
    /// CSV output file.
    pub csv: Option<PathBuf>,
    /// JSON output instead of text.
    pub json: bool,
    /// No progress output.
    pub quiet: bool,
    /// NATS user and password.
    pub user: Option<(String, String)>,
    /// TLS files, when any was given.
    pub tls: Option<TlsFiles>,
}

/// Why the command line was not accepted.
#[derive(Debug)]
pub enum CliError {
    /// Clap's own outcome: a parse error, or `--help`/`--version` (print it, exit with its code).
    Clap(clap::Error),
    /// A bad flag or a bad combination, with a message.
    Invalid(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Clap(e) => write!(f, "{e}"),
            CliError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

impl Config {
    /// Normalises and parses a full argv (program name first) and checks it.
    ///
    /// # Errors
    /// [`CliError::Clap`] for clap's parse errors and for `--help`/`--version`;
    /// [`CliError::Invalid`] for unknown flags and bad combinations.
    ///
    /// ```
    /// use stan_bench::cli::{Amount, Config};
    /// let c = Config::from_argv(["stan-bench", "-np", "1", "-ns", "1", "-n", "200", "ch"]).unwrap();
    /// assert_eq!((c.publishers, c.subscribers, c.amount), (1, 1, Amount::Messages(200)));
    /// ```
    pub fn from_argv<I, S>(argv: I) -> Result<Config, CliError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let normalized = normalize_args(argv).map_err(CliError::Invalid)?;
        let args = Args::try_parse_from(normalized).map_err(CliError::Clap)?;
        Config::from_args(args).map_err(CliError::Invalid)
    }

    /// Checks parsed arguments.
    ///
    /// # Errors
    /// A message for a bad combination (no publisher and no subscriber, `--duration` without
    /// publishers, a zero count, `-mpa 0`, a key without a certificate, `-creds`,
    /// `--channel-per-publisher` with `--core-request-reply` or without publishers, ...).
    pub fn from_args(args: Args) -> Result<Config, String> {
        let mode = if args.core_request_reply {
            Mode::CoreRequestReply
        } else {
            Mode::Streaming
        };
        let amount = match args.duration {
            Some(d) if d.is_zero() => return Err("--duration must be more than 0".into()),
            Some(d) => Amount::Duration(d),
            None if args.msgs == 0 => return Err("-n (messages) must be at least 1".into()),
            None => Amount::Messages(args.msgs),
        };
        if args.publishers == 0 && args.subscribers == 0 {
            return Err("nothing to do: -np and -ns are both 0".into());
        }
        if args.publishers == 0 && matches!(amount, Amount::Duration(_)) {
            return Err("--duration needs at least one publisher (-np)".into());
        }
        if mode == Mode::CoreRequestReply && args.publishers == 0 {
            return Err("--core-request-reply needs at least one requester (-np)".into());
        }
        if args.channel_per_publisher && mode == Mode::CoreRequestReply {
            return Err("--channel-per-publisher (-cpp) is for streaming runs; \
                 --core-request-reply always uses the one subject"
                .into());
        }
        if args.channel_per_publisher && args.publishers == 0 {
            return Err("--channel-per-publisher (-cpp) needs at least one publisher (-np)".into());
        }
        if args.max_pub_acks == 0 {
            return Err("-mpa (max pub acks in flight) must be at least 1".into());
        }
        if args.creds.is_some() {
            return Err("-creds (NATS credentials files) is not supported; use -u/-pw".into());
        }
        if args.subject.is_empty() {
            return Err("the subject must not be empty".into());
        }
        let user = match (args.user, args.password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => return Err("-u and -pw go together".into()),
        };
        let mut tls = TlsFiles::default();
        if let Some(dir) = &args.cert_dir {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| format!("cannot read the certificate directory {dir:?}: {e}"))?;
            let mut pems: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                .collect();
            if pems.is_empty() {
                return Err(format!(
                    "no *.pem file in the certificate directory {dir:?}"
                ));
            }
            pems.sort();
            tls.roots.extend(pems);
        }
        tls.roots.extend(args.tls_ca);
        tls.client = match (args.cert, args.key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err("-cf (certificate) and -ck (key) go together".into()),
        };
        let tls = (tls != TlsFiles::default()).then_some(tls);
        Ok(Config {
            mode,
            server: args.server,
            cluster: args.cluster,
            client_id: args.client_id,
            subject: args.subject,
            publishers: args.publishers,
            subscribers: if mode == Mode::CoreRequestReply {
                0
            } else {
                args.subscribers
            },
            amount,
            size: args.size,
            sync: args.sync,
            ignore_old: args.ignore_old,
            max_pub_acks: args.max_pub_acks,
            queue_group: args.qgroup.filter(|q| !q.is_empty()),
            channel_per_publisher: args.channel_per_publisher,
            csv: args.csv,
            json: args.json,
            quiet: args.quiet,
            user,
            tls,
        })
    }
}

impl Config {
    /// Number of channels the run uses: one per publisher with `--channel-per-publisher`,
    /// otherwise one.
    pub fn channel_count(&self) -> usize {
        if self.channel_per_publisher {
            self.publishers.max(1)
        } else {
            1
        }
    }

    /// The name of channel `index` (`0..channel_count()`): `<subject>.<index>` with
    /// `--channel-per-publisher`, otherwise the subject.
    pub fn channel_name(&self, index: usize) -> String {
        if self.channel_per_publisher {
            format!("{}.{index}", self.subject)
        } else {
            self.subject.clone()
        }
    }

    /// The channel index publisher `publisher` publishes on.
    pub fn publisher_channel(&self, publisher: usize) -> usize {
        if self.channel_per_publisher {
            publisher
        } else {
            0
        }
    }

    /// The channel index subscriber `subscriber` subscribes to: `subscriber % publishers`
    /// with `--channel-per-publisher` (round-robin over the publishers' channels), otherwise 0.
    ///
    /// ```
    /// use stan_bench::cli::Config;
    /// let c = Config::from_argv(["stan-bench", "-cpp", "-np", "3", "-ns", "4", "ch"]).unwrap();
    /// let channels: Vec<usize> = (0..4).map(|j| c.subscriber_channel(j)).collect();
    /// assert_eq!(channels, [0, 1, 2, 0]);
    /// assert_eq!(c.channel_name(2), "ch.2");
    /// ```
    pub fn subscriber_channel(&self, subscriber: usize) -> usize {
        subscriber % self.channel_count()
    }

    /// How many messages a subscriber of each channel waits for, before any publisher ran:
    /// with a message count, the channel's publisher's share of it ([`msgs_per_client`]), or
    /// the whole count for the single channel; with `--duration`, `u64::MAX` (not known yet).
    pub fn initial_channel_targets(&self) -> Vec<u64> {
        match self.amount {
            Amount::Messages(n) if self.channel_per_publisher => {
                msgs_per_client(n, self.channel_count())
            }
            Amount::Messages(n) => vec![n],
            Amount::Duration(_) => vec![u64::MAX; self.channel_count()],
        }
    }

    /// How many messages a subscriber of each channel waits for, given how many each
    /// publisher published (`published[i]` for publisher `i`): the sum over the channel's
    /// publishers.
    pub fn published_channel_targets(&self, published: &[u64]) -> Vec<u64> {
        let mut targets = vec![0u64; self.channel_count()];
        for (i, n) in published.iter().enumerate() {
            targets[self.publisher_channel(i)] += n;
        }
        targets
    }
}

/// Splits `total` messages over `clients` as evenly as possible, the first ones getting one
/// more when it does not divide (what the Go tool does too).
///
/// ```
/// assert_eq!(stan_bench::cli::msgs_per_client(10, 4), vec![3, 3, 2, 2]);
/// ```
pub fn msgs_per_client(total: u64, clients: usize) -> Vec<u64> {
    if clients == 0 {
        return Vec::new();
    }
    let n = clients as u64;
    (0..n)
        .map(|i| total / n + u64::from(i < total % n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["stan-bench"];
        argv.extend_from_slice(args);
        Config::from_argv(argv).map_err(|e| e.to_string())
    }

    #[test]
    fn go_spellings_become_long_flags() {
        let out = normalize_args([
            "stan-bench",
            "-s",
            "nats://h:1",
            "-np=4",
            "--ns",
            "2",
            "-sync",
            "-io=false",
            "-qgroup",
            "g",
            "-cluster",
            "c1",
            "subj",
        ])
        .unwrap();
        assert_eq!(
            out,
            [
                "stan-bench",
                "--server=nats://h:1",
                "--publishers=4",
                "--subscribers=2",
                "--sync",
                "--ignore-old=false",
                "--qgroup=g",
                "--cluster=c1",
                "subj"
            ]
        );
    }

    #[test]
    fn after_double_dash_nothing_is_rewritten() {
        let out = normalize_args(["x", "--", "-np"]).unwrap();
        assert_eq!(out, ["x", "--", "-np"]);
    }

    #[test]
    fn unknown_flags_and_missing_values_are_errors() {
        assert!(normalize_args(["x", "-bogus"])
            .unwrap_err()
            .contains("-bogus"));
        assert!(normalize_args(["x", "-np"])
            .unwrap_err()
            .contains("needs a value"));
    }

    #[test]
    fn go_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.server, "nats://127.0.0.1:4222");
        assert_eq!(c.cluster, "test-cluster");
        assert_eq!(c.client_id, "benchmark");
        assert_eq!((c.publishers, c.subscribers), (10, 0));
        assert_eq!(c.amount, Amount::Messages(100_000));
        assert_eq!((c.size, c.max_pub_acks), (128, 512));
        assert!(!c.sync && !c.ignore_old && !c.json);
        assert_eq!(c.mode, Mode::Streaming);
        assert_eq!(c.tls, None);
    }

    #[test]
    fn official_command_line_parses() {
        let c = config(&[
            "-s",
            "nats://127.0.0.1:4333",
            "-c",
            "cl",
            "-id",
            "me",
            "-np",
            "4",
            "-ns",
            "4",
            "-n",
            "1000",
            "-ms",
            "16",
            "-sync",
            "-mpa",
            "64",
            "-qgroup",
            "q",
            "-csv",
            "/tmp/x.csv",
            "ch",
        ])
        .unwrap();
        assert_eq!(c.server, "nats://127.0.0.1:4333");
        assert_eq!((c.cluster.as_str(), c.client_id.as_str()), ("cl", "me"));
        assert_eq!((c.publishers, c.subscribers), (4, 4));
        assert_eq!(c.amount, Amount::Messages(1000));
        assert_eq!((c.size, c.max_pub_acks, c.sync), (16, 64, true));
        assert_eq!(c.queue_group.as_deref(), Some("q"));
        assert_eq!(c.csv, Some(PathBuf::from("/tmp/x.csv")));
        assert_eq!(c.subject, "ch");
    }

    #[test]
    fn long_forms_parse() {
        let c = config(&[
            "--publishers",
            "2",
            "--subscribers=1",
            "--duration",
            "1m30s",
            "--json",
            "--sync=false",
        ])
        .unwrap();
        assert_eq!((c.publishers, c.subscribers), (2, 1));
        assert_eq!(c.amount, Amount::Duration(Duration::from_secs(90)));
        assert!(c.json && !c.sync);
    }

    #[test]
    fn bad_values_and_combinations_are_clear_errors() {
        assert!(config(&["-np", "x"]).unwrap_err().contains("publishers"));
        assert!(config(&["-np", "0", "-ns", "0"])
            .unwrap_err()
            .contains("nothing to do"));
        assert!(config(&["-n", "0"]).unwrap_err().contains("-n"));
        assert!(config(&["-mpa", "0"]).unwrap_err().contains("-mpa"));
        assert!(config(&["-np", "0", "-ns", "1", "--duration", "1s"])
            .unwrap_err()
            .contains("publisher"));
        assert!(config(&["--duration", "soon"])
            .unwrap_err()
            .contains("soon"));
        assert!(config(&["-u", "me"]).unwrap_err().contains("-pw"));
        assert!(config(&["-cf", "c.pem"]).unwrap_err().contains("-ck"));
        assert!(config(&["-creds", "x"])
            .unwrap_err()
            .contains("not supported"));
        assert!(config(&["-cd", "/nonexistent-dir-for-stan-bench"])
            .unwrap_err()
            .contains("certificate directory"));
    }

    #[test]
    fn core_request_reply_has_no_subscribers() {
        let c = config(&["--core-request-reply", "-np", "2", "-ns", "3"]).unwrap();
        assert_eq!(c.mode, Mode::CoreRequestReply);
        assert_eq!(c.subscribers, 0);
    }

    #[test]
    fn channel_per_publisher_flag_and_alias() {
        assert!(!config(&[]).unwrap().channel_per_publisher);
        for spelling in [
            &["--channel-per-publisher"][..],
            &["-channel-per-publisher"],
            &["-cpp"],
            &["--cpp"],
            &["-cpp=true"],
            &["--channel-per-publisher", "true"],
        ] {
            let mut args = spelling.to_vec();
            args.extend_from_slice(&["-np", "2", "ch"]);
            let c = config(&args).unwrap();
            assert!(c.channel_per_publisher, "{spelling:?}");
            assert_eq!(c.subject, "ch", "{spelling:?}");
        }
        assert!(!config(&["-cpp=false"]).unwrap().channel_per_publisher);
        assert_eq!(
            normalize_args(["x", "-cpp", "-np", "3"]).unwrap(),
            ["x", "--channel-per-publisher", "--publishers=3"]
        );
    }

    #[test]
    fn channel_per_publisher_refuses_request_reply_and_no_publishers() {
        let e = config(&["-cpp", "--core-request-reply", "-np", "2"]).unwrap_err();
        assert!(e.contains("--channel-per-publisher") && e.contains("--core-request-reply"));
        let e = config(&["-cpp", "-np", "0", "-ns", "2"]).unwrap_err();
        assert!(e.contains("-cpp") && e.contains("-np"), "{e}");
    }

    #[test]
    fn one_channel_is_the_subject_with_the_whole_target() {
        let c = config(&["-np", "3", "-ns", "4", "-n", "10", "ch"]).unwrap();
        assert_eq!(c.channel_count(), 1);
        assert_eq!(c.channel_name(0), "ch");
        assert!((0..3).all(|i| c.publisher_channel(i) == 0));
        assert!((0..4).all(|j| c.subscriber_channel(j) == 0));
        assert_eq!(c.initial_channel_targets(), [10]);
        assert_eq!(c.published_channel_targets(&[4, 3, 3]), [10]);
        let c = config(&["-np", "0", "-ns", "2", "-n", "7", "ch"]).unwrap();
        assert_eq!(c.initial_channel_targets(), [7]);
        let c = config(&["-np", "2", "--duration", "1s", "ch"]).unwrap();
        assert_eq!(c.initial_channel_targets(), [u64::MAX]);
        assert_eq!(c.published_channel_targets(&[5, 8]), [13]);
    }

    #[test]
    fn per_publisher_channels_split_the_count_and_spread_the_subscribers() {
        // More subscribers than publishers: round-robin, channel 0 gets the extra one.
        let c = config(&["-cpp", "-np", "3", "-ns", "4", "-n", "301", "ch"]).unwrap();
        assert_eq!(c.channel_count(), 3);
        let names: Vec<String> = (0..3).map(|i| c.channel_name(i)).collect();
        assert_eq!(names, ["ch.0", "ch.1", "ch.2"]);
        assert_eq!(
            (0..3).map(|i| c.publisher_channel(i)).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            (0..4).map(|j| c.subscriber_channel(j)).collect::<Vec<_>>(),
            [0, 1, 2, 0]
        );
        assert_eq!(c.initial_channel_targets(), [101, 100, 100]);
        // Fewer subscribers than publishers: the last channels have no subscriber.
        let c = config(&["-cpp", "-np", "4", "-ns", "2", "-n", "10", "ch"]).unwrap();
        assert_eq!(
            (0..2).map(|j| c.subscriber_channel(j)).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(c.initial_channel_targets(), [3, 3, 2, 2]);
        // Fewer messages than publishers: some channels get none.
        let c = config(&["-cpp", "-np", "3", "-n", "2", "ch"]).unwrap();
        assert_eq!(c.initial_channel_targets(), [1, 1, 0]);
        // A timed run: unknown until the publishers are done, then each publisher's own count.
        let c = config(&["-cpp", "-np", "3", "-ns", "5", "--duration", "1s", "ch"]).unwrap();
        assert_eq!(c.initial_channel_targets(), [u64::MAX; 3]);
        assert_eq!(c.published_channel_targets(&[7, 0, 9]), [7, 0, 9]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(
            parse_duration("1m1s500ms"),
            Ok(Duration::from_millis(61_500))
        );
        for bad in ["", "s", "10x", "-1s", "1s-", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn messages_are_spread_evenly() {
        assert_eq!(msgs_per_client(100, 1), vec![100]);
        assert_eq!(msgs_per_client(10, 3), vec![4, 3, 3]);
        assert_eq!(msgs_per_client(2, 4), vec![1, 1, 0, 0]);
        assert!(msgs_per_client(5, 0).is_empty());
        assert_eq!(msgs_per_client(1_000_001, 4).iter().sum::<u64>(), 1_000_001);
    }
}

//! The command line of `stan-broker`: flags compatible with the official
//! `nats-streaming-server`, parsed into a [`Cli`] whose [`Settings`] the loader
//! ([`crate::options::Options::load`]) lays over the config files.
//!
//! ```
//! use stan_broker::cli;
//! use stan_broker::options::Options;
//! let cli = cli::parse_args(["-cid", "prod", "-p", "0", "-mb", "1GB"]).unwrap();
//! let opts = Options::load(&cli).unwrap();
//! assert_eq!(opts.broker.cluster_id, "prod");
//! assert_eq!(opts.broker.limits.global.max_bytes, Some(1 << 30));
//! ```

pub mod flags;
pub mod logging;

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::settings::{units, Settings};
use flags::{Kind, Section, FLAGS};

/// The parsed command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cli {
    /// Values given on the command line.
    pub settings: Settings,
    /// `-c`: core (NATS) config file.
    pub config_file: Option<PathBuf>,
    /// `-sc`: streaming config file.
    pub stan_config_file: Option<PathBuf>,
    /// `--ports_file_dir`: where to write the ports file once ready.
    pub ports_file_dir: Option<PathBuf>,
    /// Flags given that are accepted but ignored (canonical names).
    pub ignored: Vec<String>,
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
        file_sync: boolean("file_sync"),
        js_replicas: int("js_replicas"),
        js_prefix: string("js_prefix"),
        js_lease_ttl: dur("js_lease_ttl"),
        file_auto_sync: dur("file_auto_sync"),
        file_slice_max_msgs: int("file_slice_max_msgs"),
        file_slice_max_bytes: int("file_slice_max_bytes"),
        file_slice_max_age: dur("file_slice_max_age"),
        file_compact_enabled: boolean("file_compact_enabled"),
        file_compact_frag: int("file_compact_frag"),
        file_compact_interval: int("file_compact_interval"),
        file_compact_min_size: int("file_compact_min_size"),
        file_fds_limit: int("file_fds_limit"),
        file_crc: boolean("file_crc"),
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
        trust_client_subjects: boolean("trust_client_subjects"),
        io_batch_size: int("io_batch_size"),
        dedup_window: dur("dedup_window"),
        addr: string("addr"),
        port: int("port"),
        http_port: int("http_port"),
        console_admin_token: string("console_admin_token"),
        user: string("user"),
        pass: string("pass"),
        auth: string("auth"),
        tls: boolean("tls"),
        tls_cert: string("tlscert").map(PathBuf::from),
        tls_key: string("tlskey").map(PathBuf::from),
        tls_ca_cert: string("tlscacert").map(PathBuf::from),
        tls_verify: boolean("tlsverify"),
        tls_client_cert: string("tls_client_cert").map(PathBuf::from),
        tls_client_key: string("tls_client_key").map(PathBuf::from),
        tls_client_cacert: string("tls_client_cacert").map(PathBuf::from),
        stan_debug: or(boolean("stan_debug"), sdv),
        stan_trace: or(boolean("stan_trace"), sdv),
        debug: or(or(boolean("debug"), dv), boolean("DVV")),
        trace: or(or(boolean("trace"), dv), vv),
        logtime: boolean("logtime"),
        log_file: string("log").map(PathBuf::from),
        log_format: string("log_format"),
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
        ports_file_dir: string("ports_file_dir").map(PathBuf::from),
        ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(args: &[&str]) -> clap::Error {
        parse_args(args.iter().copied()).expect_err("expected a usage error")
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
}

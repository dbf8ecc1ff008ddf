//! Everything the binary needs to start ([`Options`]), loaded from a parsed command line.
//!
//! The one place where the two sources of [`Settings`] meet: [`Options::load`] reads the config
//! files named by the [`Cli`] ([`crate::conf`]), lays the command line over them
//! ([`Settings::overlay`]) and validates the result ([`settings::build`]). `cli` and `conf`
//! never use each other.
//!
//! ```
//! use stan_broker::{cli, options::Options};
//! let opts = Options::load(&cli::parse_args(["-cid", "prod"]).unwrap()).unwrap();
//! assert_eq!(opts.broker.cluster_id, "prod");
//! ```

use std::path::PathBuf;

use crate::cli::Cli;
use crate::conf::{self, ConfError, Parts};
use crate::config::BrokerConfig;
use crate::settings::{self, LogOptions, Settings, SettingsError};

/// Everything the binary needs to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// The broker configuration.
    pub broker: BrokerConfig,
    /// Logging setup.
    pub log: LogOptions,
    /// Things to log as warnings once logging is up (ignored flags and config keys).
    pub warnings: Vec<String>,
    /// `--ports_file_dir`: where to write the ports file once ready.
    pub ports_file_dir: Option<PathBuf>,
}

/// An invalid configuration.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A config file could not be read or has an error.
    #[error(transparent)]
    Config(#[from] ConfError),
    /// An invalid combination or value.
    #[error(transparent)]
    Invalid(#[from] SettingsError),
}

impl Options {
    /// Reads the config files of `cli`, applies the command line over them and validates the
    /// result.
    pub fn load(cli: &Cli) -> Result<Options, LoadError> {
        let mut warnings: Vec<String> = cli
            .ignored
            .iter()
            .map(|f| format!("flag --{f} is accepted for compatibility but not supported; ignored"))
            .collect();
        let mut file_settings = Settings::default();
        match (&cli.config_file, &cli.stan_config_file) {
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
        let settings = file_settings.overlay(cli.settings.clone());
        let (broker, log) = settings::build(&settings)?;
        if settings.nats_server.is_some() && settings.has_server_tls() {
            warnings.push(
                "the client-port TLS settings (--tls, --tlscert, --tlskey, --tlscacert, \
                 --tlsverify, config tls) do not apply with --nats_server (there is no embedded \
                 server); ignored"
                    .into(),
            );
        }
        if settings.nats_server.is_none() && settings.has_client_tls() {
            warnings.push(
                "--tls_client_cert, --tls_client_key and --tls_client_cacert apply only with \
                 --nats_server (the broker reaches its embedded server in-process); ignored"
                    .into(),
            );
        }
        Ok(Options {
            broker,
            log,
            warnings,
            ports_file_dir: cli.ports_file_dir.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::cli::parse_args;
    use crate::config::{EmbeddedNats, ExternalNats, NatsMode, StoreKind};

    fn cli(args: &[&str]) -> Cli {
        parse_args(args.iter().copied()).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn load(args: &[&str]) -> Options {
        Options::load(&cli(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn load_err(args: &[&str]) -> String {
        Options::load(&cli(args))
            .expect_err("expected an error")
            .to_string()
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
    fn jetstream_store_selection() {
        let o = load(&["-st", "JETSTREAM", "-ns", "nats://a:4222,nats://b:4222"]);
        assert_eq!(
            o.broker.store,
            StoreKind::JetStream(crate::config::JetStreamOptions::default())
        );
        let o = load(&[
            "-st",
            "jetstream",
            "-ns",
            "nats://a:4222",
            "--js_replicas",
            "3",
            "--js_prefix",
            "ACME_1",
            "--js_lease_ttl",
            "2s",
        ]);
        let StoreKind::JetStream(j) = &o.broker.store else {
            panic!("{:?}", o.broker.store)
        };
        assert_eq!(
            (j.replicas, j.prefix.as_str(), j.lease_ttl),
            (3, "ACME_1", std::time::Duration::from_secs(2))
        );
        assert!(load_err(&["-st", "JETSTREAM"]).contains("needs a NATS server with JetStream"));
        let ns = ["-st", "JETSTREAM", "-ns", "nats://a:4222"];
        let with = |extra: &[&str]| load_err(&[&ns[..], extra].concat());
        assert!(with(&["--js_replicas", "0"]).contains("replicas must be 1 to 5 (0)"));
        assert!(with(&["--js_replicas", "7"]).contains("replicas must be 1 to 5 (7)"));
        assert!(with(&["--js_prefix", "a.b"]).contains("invalid JetStream prefix"));
        assert!(with(&["--js_lease_ttl", "100ms"]).contains("at least 500ms"));
        assert!(load_err(&["-st", "CASSANDRA"]).contains("expected MEMORY, FILE or JETSTREAM"));
    }

    #[test]
    fn store_selection() {
        assert_eq!(load(&["-st", "MEMORY"]).broker.store, StoreKind::Memory);
        assert_eq!(load(&["--store=memory"]).broker.store, StoreKind::Memory);
        assert_eq!(load(&["-st", "Memory"]).broker.store, StoreKind::Memory);
        let o = load(&["-st", "FILE", "--dir", "/tmp/x", "--file_sync=false"]);
        assert_eq!(o.broker.store, StoreKind::File("/tmp/x".into()));
        assert!(!o.broker.file.sync);
        let o = load(&[
            "-st",
            "file",
            "--dir=/tmp/y",
            "--file_slice_max_msgs",
            "5",
            "--file_slice_max_bytes",
            "1KB",
            "--file_auto_sync",
            "5s",
            "--file_compact_frag",
            "20",
            "--file_compact_interval",
            "3",
            "--file_compact_min_size",
            "2KB",
            "--file_compact_enabled=false",
            "--file_crc=false",
            "--file_fds_limit",
            "100",
            "--file_slice_max_age",
            "1m",
        ]);
        let f = &o.broker.file;
        assert!(f.sync);
        assert_eq!((f.slice_max_msgs, f.slice_max_bytes), (5, 1024));
        assert_eq!(f.auto_sync, std::time::Duration::from_secs(5));
        assert_eq!(f.slice_max_age, std::time::Duration::from_secs(60));
        assert_eq!((f.compact_frag, f.compact_min_size), (20, 2048));
        assert_eq!(f.compact_interval, std::time::Duration::from_secs(3));
        assert!(!f.compact_enabled && !f.crc);
        assert_eq!(f.fds_limit, 100);
        assert!(load_err(&["-st", "file"]).contains("needs a directory (--dir)"));
        assert!(
            load_err(&["-st", "file", "--dir", "/x", "--file_compact_frag", "101"])
                .contains("fragmentation")
        );
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
        assert!(!load(&[]).broker.trust_client_subjects);
        assert!(
            load(&["--trust_client_subjects"])
                .broker
                .trust_client_subjects
        );
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
                tls: None,
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
            "--file_crc_poly=3",
            "-ms",
            "8443",
            "--encrypt",
        ]);
        assert_eq!(o.warnings.len(), 6, "{:?}", o.warnings);
        assert!(o.warnings.iter().any(|w| w.contains("--clustered")));
        assert!(o.warnings.iter().any(|w| w.contains("--https_port")));
        assert_eq!(o.broker, BrokerConfig::default());
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
    fn tls_flags() {
        use crate::config::{ClientTls, ServerTls};
        let tls = |args: &[&str]| embedded(&load(args).broker).tls.clone();
        let server = |ca: Option<&str>, verify: bool| ServerTls {
            cert_file: "s.pem".into(),
            key_file: "k.pem".into(),
            ca_file: ca.map(PathBuf::from),
            verify,
            timeout: None,
        };
        assert_eq!(tls(&[]), None);
        assert_eq!(
            tls(&["--tlscert", "s.pem", "--tlskey", "k.pem"]),
            Some(server(None, false))
        );
        assert_eq!(
            tls(&[
                "-tls",
                "-tlscert=s.pem",
                "-tlskey=k.pem",
                "-tlscacert",
                "ca.pem"
            ]),
            Some(server(Some("ca.pem"), false))
        );
        assert_eq!(
            tls(&[
                "--tlsverify",
                "--tlscert",
                "s.pem",
                "--tlskey",
                "k.pem",
                "--tlscacert",
                "ca.pem"
            ]),
            Some(server(Some("ca.pem"), true))
        );
        assert_eq!(
            tls(&["--tls=false", "--tlscert", "s.pem", "--tlskey", "k.pem"]),
            None
        );
        let e = load_err(&["--tls"]);
        assert!(e.contains("--tlscert") && e.contains("--tlskey"), "{e}");
        let e = load_err(&["--tlscert", "s.pem"]);
        assert!(e.contains("--tlskey"), "{e}");
        let e = load_err(&["--tlsverify", "--tlscert", "s.pem", "--tlskey", "k.pem"]);
        assert!(e.contains("--tlscacert"), "{e}");
        assert!(load_err(&["--tlscert", ""]).contains("--tlscert cannot be empty"));

        let o = load(&[
            "-ns",
            "tls://127.0.0.1:4999",
            "--tls_client_cacert",
            "ca.pem",
        ]);
        let NatsMode::External(x) = &o.broker.nats else {
            panic!("{:?}", o.broker.nats)
        };
        assert_eq!(
            x.tls,
            Some(ClientTls {
                ca_file: Some("ca.pem".into()),
                ..ClientTls::default()
            })
        );
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        let e = load_err(&["-ns", "nats://h:1", "--tls_client_cert", "c.pem"]);
        assert!(
            e.contains("--tls_client_cert needs --tls_client_key"),
            "{e}"
        );
        let e = load_err(&["-ns", "nats://h:1", "--tls_client_key", "k.pem"]);
        assert!(
            e.contains("--tls_client_key needs --tls_client_cert"),
            "{e}"
        );

        // Settings of the other mode are ignored with a warning.
        let o = load(&["--tls_client_cacert", "ca.pem"]);
        assert_eq!(embedded(&o.broker).tls, None);
        assert!(
            o.warnings.iter().any(|w| w.contains("--tls_client_cacert")),
            "{:?}",
            o.warnings
        );
        let o = load(&[
            "-ns",
            "nats://h:1",
            "--tlscert",
            "s.pem",
            "--tlskey",
            "k.pem",
        ]);
        assert!(
            o.warnings.iter().any(|w| w.contains("--tlscert")),
            "{:?}",
            o.warnings
        );
    }

    #[test]
    fn tls_in_config_files() {
        use crate::config::ClientTls;
        let core = temp_file(
            "tls.conf",
            "port: 0\ntls {\n  cert_file: \"s.pem\"\n  key_file: \"k.pem\"\n  ca_file: \"ca.pem\"\n  verify: true\n  timeout: 0.5\n  cipher_suites: []\n}\n",
        );
        let core_s = core.to_str().unwrap();
        let o = load(&["-c", core_s]);
        let t = embedded(&o.broker).tls.clone().expect("TLS on");
        assert_eq!(t.cert_file, PathBuf::from("s.pem"));
        assert_eq!(t.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(t.verify);
        assert_eq!(t.timeout, Some(Duration::from_millis(500)));
        assert!(
            o.warnings.iter().any(|w| w.contains("cipher_suites")),
            "{:?}",
            o.warnings
        );
        // Flags win over the file.
        let o = load(&["-c", core_s, "--tlscert", "other.pem", "--tlsverify=false"]);
        let t = embedded(&o.broker).tls.clone().expect("TLS on");
        assert_eq!(t.cert_file, PathBuf::from("other.pem"));
        assert!(!t.verify);
        assert_eq!(
            embedded(&load(&["-c", core_s, "--tls=false"]).broker).tls,
            None
        );

        let stan = temp_file(
            "stan-tls.conf",
            "streaming {\n  ns: \"tls://127.0.0.1:4999\"\n  tls {\n    client_cert: \"c.pem\"\n    client_key: \"ck.pem\"\n    client_ca: \"ca.pem\"\n  }\n}\n",
        );
        let o = load(&["-sc", stan.to_str().unwrap()]);
        let NatsMode::External(x) = &o.broker.nats else {
            panic!("{:?}", o.broker.nats)
        };
        assert_eq!(
            x.tls,
            Some(ClientTls {
                cert_file: Some("c.pem".into()),
                key_file: Some("ck.pem".into()),
                ca_file: Some("ca.pem".into()),
            })
        );
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        let bad = temp_file("bad-tls.conf", "tls { timeout: \"soon\" }\n");
        let e = load_err(&["-c", bad.to_str().unwrap()]);
        assert!(
            e.contains("bad-tls.conf:1:") && e.contains("timeout"),
            "{e}"
        );
    }

    #[test]
    fn store_file_in_config() {
        let f = temp_file("file.conf", "store: file\ndir: /tmp/x\n");
        assert_eq!(
            load(&["-sc", f.to_str().unwrap()]).broker.store,
            StoreKind::File("/tmp/x".into())
        );
        // The command line wins over the file.
        assert_eq!(
            load(&["-sc", f.to_str().unwrap(), "-st", "memory"])
                .broker
                .store,
            StoreKind::Memory
        );
    }
}

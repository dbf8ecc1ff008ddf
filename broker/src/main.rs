//! `stan-broker`: a NATS Streaming server compatible with `nats-streaming-server`'s command line.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use stan_broker::cli::logging::LogHandle;
use stan_broker::cli::{self, Cli};
use stan_broker::config::{BrokerConfig, NatsMode, StoreKind};
use stan_broker::options::Options;
use stan_broker::ready::Ports;
use stan_broker::Broker;

/// The broker allocates with mimalloc: musl's allocator serializes threads, and glibc's spends
/// a large share of the publish path consolidating and splitting free chunks (the per-message
/// buffers are short-lived and of mixed sizes).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for the whole process, before anything is allocated in earnest.
///
/// mimalloc asks the kernel for huge pages on its segments (`madvise(MADV_HUGEPAGE)`), so each
/// first touch of a segment faults in and zeroes 2 MiB at once, and with the common
/// `defrag=madvise` setting the fault may compact memory first. For a store that keeps filling
/// memory with messages that made the cost of a message jump between runs (at 1 KiB: 430 to
/// 1,170 ms of broker CPU for the same 200,000 messages) and doubled its median; with 4 KiB
/// pages the runs are steady (docs/benchmarks.md, "Huge pages"). The Go runtime of
/// `nats-streaming-server` does not ask for huge pages either.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        // Only a kernel without the setting refuses; the broker works the same without it.
        eprintln!("stan-broker: could not turn transparent huge pages off: {e}");
    }
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().map(String::as_str) == Some("check") {
        return check(&args[1..]);
    }
    let parsed = match cli::parse_args(args) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let opts = match Options::load(&parsed) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stan-broker: {e}");
            return ExitCode::from(1);
        }
    };
    let log = match cli::logging::init(&opts.log) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("stan-broker: {e}");
            return ExitCode::from(1);
        }
    };
    for w in &opts.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stan-broker: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(parsed, opts, log))
}

async fn run(cli: Cli, opts: Options, log: LogHandle) -> ExitCode {
    // Install the signal handlers before anything is announced, so a signal sent as soon as
    // the broker says it is ready is always handled.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stan-broker: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!("Starting stan-broker version {}", env!("CARGO_PKG_VERSION"));
    let broker = match Broker::start(opts.broker.clone()).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("startup failed: {e}");
            eprintln!("stan-broker: {e}");
            return ExitCode::from(1);
        }
    };
    banner(&broker);
    if let Err(e) = announce(&broker, opts.ports_file_dir.as_deref()) {
        tracing::error!("{e}");
        eprintln!("stan-broker: {e}");
        broker.shutdown().await;
        return ExitCode::from(1);
    }

    let mut running = opts;
    loop {
        tokio::select! {
            sig = signals.next() => match sig {
                Some(name) => {
                    tracing::info!("received {name}, shutting down");
                    break;
                }
                None => reload(&cli, &broker, &log, &mut running).await,
            },
            _ = broker.closed() => {
                if let Some(why) = broker.failure() {
                    eprintln!("stan-broker: stopped: {why}");
                    return ExitCode::from(1);
                }
                tracing::info!("broker closed");
                break;
            }
        }
    }
    // A second signal while shutting down stops at once.
    tokio::select! {
        _ = broker.shutdown() => ExitCode::SUCCESS,
        name = signals.recv() => {
            tracing::warn!("received {name} again, exiting without a clean shutdown");
            ExitCode::from(1)
        }
    }
}

/// SIGHUP: re-reads the config files and applies the channel limits and the log level; any
/// other change is reported as needing a restart. A bad file leaves everything as it is.
async fn reload(cli: &Cli, broker: &Broker, log: &LogHandle, running: &mut Options) {
    if cli.config_file.is_none() && cli.stan_config_file.is_none() {
        tracing::warn!(
            "received SIGHUP, but no configuration file was given (-c, -sc): nothing to reload"
        );
        return;
    }
    tracing::info!("received SIGHUP, reloading the configuration");
    let new = match Options::load(cli) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("configuration reload failed, keeping the running configuration: {e}");
            return;
        }
    };
    // Warnings already given at startup (ignored flags, unchanged keys) are not repeated.
    for w in new
        .warnings
        .iter()
        .filter(|w| !running.warnings.contains(w))
    {
        tracing::warn!("{w}");
    }
    for what in needs_restart(&running.broker, &new.broker) {
        tracing::warn!("configuration reload: the change of {what} needs a restart; not applied");
    }
    let (old_log, new_log) = (&running.log, &new.log);
    for (what, changed) in [
        ("log_file", old_log.file != new_log.file),
        ("logtime", old_log.timestamps != new_log.timestamps),
        ("log_format", old_log.format != new_log.format),
    ] {
        if changed {
            tracing::warn!(
                "configuration reload: the change of {what} needs a restart; not applied"
            );
        }
    }
    if new.broker.limits != running.broker.limits {
        match broker.set_limits(new.broker.limits.clone()).await {
            Ok(()) => {
                tracing::info!("configuration reload: channel limits applied");
                running.broker.limits = new.broker.limits.clone();
            }
            Err(e) => tracing::error!(
                "configuration reload: new channel limits refused, keeping the running ones: {e}"
            ),
        }
    }
    if new.log.level != running.log.level {
        match log.set_level(new.log.level) {
            Ok(()) => {
                running.log.level = new.log.level;
                tracing::info!("configuration reload: log level set to {}", new.log.level);
            }
            Err(e) => tracing::error!("configuration reload: {e}"),
        }
    }
    tracing::info!("configuration reloaded");
}

/// The settings other than the limits that differ between `old` and `new` (a reload does not
/// apply them).
fn needs_restart(old: &BrokerConfig, new: &BrokerConfig) -> Vec<&'static str> {
    [
        ("cluster_id", old.cluster_id != new.cluster_id),
        (
            "discover_prefix",
            old.discover_prefix != new.discover_prefix,
        ),
        (
            "the NATS settings (listen address, port, authorization, TLS, max_payload, nats_server)",
            old.nats != new.nats,
        ),
        ("the store type or directory", old.store != new.store),
        ("the file store options", old.file != new.file),
        ("hb_interval", old.hb_interval != new.hb_interval),
        ("hb_timeout", old.hb_timeout != new.hb_timeout),
        ("hb_fail_count", old.hb_fail_count != new.hb_fail_count),
        (
            "replace_durable",
            old.replace_durable != new.replace_durable,
        ),
        (
            "trust_client_subjects",
            old.trust_client_subjects != new.trust_client_subjects,
        ),
        ("io_batch_size", old.io_batch_size != new.io_batch_size),
        ("dedup_window", old.dedup_window != new.dedup_window),
        ("the monitoring address", old.monitor != new.monitor),
    ]
    .into_iter()
    .filter_map(|(what, changed)| changed.then_some(what))
    .collect()
}

const CHECK_USAGE: &str = "usage: stan-broker check --dir PATH [--repair]\n\n\
Verifies every file of a FILE store directory (CRC of every record, indexes against the data)\n\
without starting the server, and prints what it found and what a repair cuts. With --repair,\n\
torn tails are cut and indexes rebuilt. Exit status: 0 sound (or repaired), 1 problems left,\n\
2 usage error.";

/// `stan-broker check --dir PATH [--repair]`: the offline check of a FILE store.
fn check(args: &[String]) -> ExitCode {
    let mut dir = None;
    let mut repair = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.trim_start_matches('-');
        match a.split_once('=') {
            Some(("dir", v)) => dir = Some(v.to_string()),
            Some(("repair", v)) => {
                repair = !matches!(v, "false" | "0" | "f" | "F" | "FALSE" | "False")
            }
            _ if a == "dir" => dir = it.next().cloned(),
            _ if a == "repair" => repair = true,
            _ if a == "h" || a == "help" => {
                println!("{CHECK_USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("stan-broker check: unknown argument {a:?}\n{CHECK_USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = dir.filter(|d| !d.is_empty()) else {
        eprintln!("stan-broker check: --dir is required\n{CHECK_USAGE}");
        return ExitCode::from(2);
    };
    match stan_broker::store::file::check::check(Path::new(&dir), repair) {
        Ok(report) => {
            print!("{}", report.text);
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("stan-broker check: {e}");
            ExitCode::from(1)
        }
    }
}

/// Startup banner. The `Listening for client connections on` and `Monitoring on` lines carry
/// the bound addresses (useful with port 0).
fn banner(broker: &Broker) {
    let cfg = broker.config();
    let store = match &cfg.store {
        StoreKind::Memory => "MEMORY".to_string(),
        StoreKind::File(dir) => format!("FILE ({})", dir.display()),
        StoreKind::JetStream(j) => format!(
            "JETSTREAM (prefix {}, {} replica(s), lease {:?})",
            j.prefix, j.replicas, j.lease_ttl
        ),
    };
    let mode = match &cfg.nats {
        NatsMode::Embedded(_) => "embedded",
        NatsMode::External(_) => "external",
    };
    tracing::info!("Cluster ID: {}", broker.cluster_id());
    tracing::info!("Store: {store}");
    tracing::info!(
        "Listening for client connections on {} ({mode} NATS)",
        broker.client_url()
    );
    match broker.monitor_addr() {
        Some(addr) => tracing::info!("Monitoring on http://{addr}"),
        None => tracing::info!("Monitoring off"),
    }
    tracing::info!("Server is ready");
}

/// Prints the ready line on standard output and writes the ports file, if asked to.
fn announce(broker: &Broker, ports_file_dir: Option<&Path>) -> Result<(), String> {
    let ports = Ports {
        // One entry per URL of an external `-ns` list.
        nats: broker
            .client_url()
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
        monitoring: broker
            .monitor_addr()
            .map(|a| format!("http://{a}"))
            .into_iter()
            .collect(),
        cluster_id: broker.cluster_id().to_string(),
        pid: std::process::id(),
    };
    if let Some(dir) = ports_file_dir {
        let path = ports
            .write_file(dir)
            .map_err(|e| format!("cannot write the ports file in {}: {e}", dir.display()))?;
        tracing::info!("Ports file: {}", path.display());
    }
    let mut out = std::io::stdout().lock();
    // A closed standard output is not a reason to stop serving.
    let _ = writeln!(out, "{}", ports.to_line()).and_then(|()| out.flush());
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), and SIGHUP (configuration reload).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Waits for the next signal: `Some(name)` for a stopping one, `None` for SIGHUP.
    async fn next(&mut self) -> Option<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.term.recv() => Some("SIGTERM"),
                Some(()) = self.int.recv() => Some("SIGINT"),
                Some(()) = self.hup.recv() => None,
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            Some(self.recv().await)
        }
    }

    /// Waits for the next stopping signal and names it.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}

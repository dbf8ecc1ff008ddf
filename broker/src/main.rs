//! `stan-broker`: a NATS Streaming server compatible with `nats-streaming-server`'s command line.

use std::process::ExitCode;

use stan_broker::cli::{self, Options};
use stan_broker::config::{NatsMode, StoreKind};
use stan_broker::Broker;

fn main() -> ExitCode {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let parsed = match cli::parse_args(args) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let opts = match parsed.load() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stan-broker: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = cli::logging::init(&opts.log) {
        eprintln!("stan-broker: {e}");
        return ExitCode::from(1);
    }
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
    runtime.block_on(run(opts))
}

async fn run(opts: Options) -> ExitCode {
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
    let broker = match Broker::start(opts.broker).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("startup failed: {e}");
            eprintln!("stan-broker: {e}");
            return ExitCode::from(1);
        }
    };
    banner(&broker);

    tokio::select! {
        name = signals.recv() => tracing::info!("received {name}, shutting down"),
        _ = broker.closed() => tracing::info!("broker closed"),
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

/// Startup banner. The `Listening for client connections on` and `Monitoring on` lines carry
/// the bound addresses (useful with port 0).
fn banner(broker: &Broker) {
    let cfg = broker.config();
    let store = match &cfg.store {
        StoreKind::Memory => "MEMORY".to_string(),
        StoreKind::File(dir) => format!("FILE ({})", dir.display()),
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

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Waits for the next signal and names it.
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

//! Logging setup for the binary: `tracing-subscriber` to standard error or a file (`-l`), as
//! text or JSON lines (`--log_format`).
//!
//! The level comes from the flags (`-D`/`-SD` debug, `-V`/`-SV` trace, info otherwise);
//! `RUST_LOG`, when set, adds to or overrides it (e.g. `RUST_LOG=stan_broker::engine=trace`).
//! The level can be changed while running ([`LogHandle::set_level`], used by the config
//! reload on SIGHUP).

use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, Layer, Registry};

use crate::settings::{LogFormat, LogOptions};

type SetLevel = Box<dyn Fn(tracing::Level) -> Result<(), String> + Send + Sync>;

/// Changes the level of the installed subscriber.
pub struct LogHandle {
    set: SetLevel,
}

impl LogHandle {
    /// Sets the default level (`RUST_LOG`, when set, still adds to or overrides it).
    pub fn set_level(&self, level: tracing::Level) -> Result<(), String> {
        (self.set)(level)
    }
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle").finish_non_exhaustive()
    }
}

fn filter(level: tracing::Level) -> EnvFilter {
    EnvFilter::builder()
        .with_default_directive(LevelFilter::from_level(level).into())
        .from_env_lossy()
}

/// Installs the global subscriber and returns the handle that changes its level. Fails if the
/// log file cannot be opened.
pub fn init(opts: &LogOptions) -> std::io::Result<LogHandle> {
    let (writer, ansi) = match &opts.file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot open log file {}: {e}", path.display()),
                    )
                })?;
            (BoxMakeWriter::new(Mutex::new(file)), false)
        }
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let base = fmt::layer().with_target(false).with_writer(writer);
    let output: Box<dyn Layer<Registry> + Send + Sync> = match (opts.format, opts.timestamps) {
        (LogFormat::Text, true) => base.with_ansi(ansi).boxed(),
        (LogFormat::Text, false) => base.with_ansi(ansi).without_time().boxed(),
        (LogFormat::Json, true) => base.with_ansi(false).json().flatten_event(true).boxed(),
        (LogFormat::Json, false) => base
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .without_time()
            .boxed(),
    };
    let (level_filter, handle) = reload::Layer::new(filter(opts.level));
    // A subscriber that is already installed (tests) is fine.
    let _ = tracing_subscriber::registry()
        .with(output)
        .with(level_filter)
        .try_init();
    Ok(LogHandle {
        set: Box::new(move |level| {
            handle
                .reload(filter(level))
                .map_err(|e| format!("cannot change the log level: {e}"))
        }),
    })
}

//! Logging setup for the binary: `tracing-subscriber` to standard error or a file (`-l`).
//!
//! The level comes from the flags (`-D`/`-SD` debug, `-V`/`-SV` trace, info otherwise);
//! `RUST_LOG`, when set, adds to or overrides it (e.g. `RUST_LOG=stan_broker::engine=trace`).

use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::settings::LogOptions;

/// Installs the global subscriber. Fails if the log file cannot be opened.
pub fn init(opts: &LogOptions) -> std::io::Result<()> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::from_level(opts.level).into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
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
    let builder = builder.with_ansi(ansi).with_writer(writer);
    let result = if opts.timestamps {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
    // A subscriber that is already installed (tests) is fine.
    let _ = result;
    Ok(())
}

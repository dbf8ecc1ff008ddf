//! Logging setup for the binary: `tracing-subscriber` to standard error or a file (`-l`).
//!
//! The level comes from the flags (`-D`/`-SD` debug, `-V`/`-SV` trace, info otherwise);
//! `RUST_LOG`, when set, adds to or overrides it (e.g. `RUST_LOG=stan_broker::engine=trace`).

use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

use super::LogOptions;

/// Installs the global subscriber. Fails if the log file cannot be opened.
pub fn init(opts: &LogOptions) -> std::io::Result<()> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::from_level(opts.level).into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match (&opts.file, opts.timestamps) {
        (Some(path), ts) => {
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
            let b = builder.with_ansi(false).with_writer(Mutex::new(file));
            if ts {
                b.try_init()
            } else {
                b.without_time().try_init()
            }
        }
        (None, ts) => {
            let b = builder
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr);
            if ts {
                b.try_init()
            } else {
                b.without_time().try_init()
            }
        }
    };
    // A subscriber that is already installed (tests) is fine.
    let _ = result;
    Ok(())
}

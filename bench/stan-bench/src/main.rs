//! The `stan-bench` command: see the library docs and `bench/stan-bench/README.md`.

use std::io::IsTerminal;
use std::process::ExitCode;

use stan_bench::bench::{run, ProgressMode};
use stan_bench::cli::{Amount, CliError, Config, Mode};

fn main() -> ExitCode {
    let argv = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let config = match Config::from_argv(argv) {
        Ok(c) => c,
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(CliError::Invalid(m)) => {
            eprintln!("stan-bench: {m}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stan-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let progress = if config.quiet {
        ProgressMode::Off
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Lines
    };
    if !config.quiet {
        let amount = match config.amount {
            Amount::Messages(n) => format!("msgs={n}"),
            Amount::Duration(d) => format!("duration={d:?}"),
        };
        let what = match config.mode {
            Mode::Streaming => "benchmark",
            Mode::CoreRequestReply => "core request/reply benchmark",
        };
        let channels = if config.channel_per_publisher {
            ", one channel per publisher"
        } else {
            ""
        };
        eprintln!(
            "Starting {what} [{amount}, msgsize={}, pubs={}, subs={}{channels}]",
            config.size, config.publishers, config.subscribers
        );
    }
    let report = match runtime.block_on(run(&config, progress)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stan-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if config.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(path) = &config.csv {
        if let Err(e) = std::fs::write(path, report.to_csv()) {
            eprintln!("stan-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        if config.json {
            eprintln!("Saved metric data in csv file {}", path.display());
        } else {
            println!("Saved metric data in csv file {}", path.display());
        }
    }
    ExitCode::SUCCESS
}

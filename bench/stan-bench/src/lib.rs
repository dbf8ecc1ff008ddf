//! `stan-bench`: a NATS Streaming benchmark built on `stan-client`.
//!
//! It accepts the command line of the Go client's `stan-bench` example (`-s`, `-c`, `-id`,
//! `-np`, `-ns`, `-n`, `-ms`, `-sync`, `-mpa`, `-qgroup`, `-io`, `-csv`, ...) and prints the
//! same summary lines, followed by latency percentiles per role: publish→ack for publishers,
//! publish→receive for subscribers. It adds `--json`, `--duration`, one channel per publisher
//! (`--channel-per-publisher`) and a core-NATS request/reply mode. See `bench/stan-bench/README.md` for usage.
//!
//! - [`cli`]: flags, Go-style argv normalisation, the checked [`cli::Config`];
//! - [`stats`]: per-client samples, their aggregation, rates, percentiles, text/CSV/JSON;
//! - [`mod@bench`]: [`bench::run`], the benchmark itself.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stan_bench::{bench, cli::Config};
//! let config = Config::from_argv(["stan-bench", "-np", "1", "-ns", "1", "-n", "1000", "bench"])?;
//! let report = bench::run(&config, bench::ProgressMode::Off).await?;
//! println!("{}", report.to_text());
//! # Ok(()) }
//! ```

pub mod bench;
pub mod cli;
pub mod stats;

//! The Rust client's figures for `bench/packages.sh`: one measurement per process, one JSON line
//! on stdout (the benchmark contract shared by every package's benchmark program).
//!
//! ```text
//! stan-client-bench --scenario pub-awaited --messages 20000 --size 128 \
//!     --url nats://127.0.0.1:4222 --cluster-id test-cluster --channel bench.1
//! ```
//!
//! Each scenario is written as a new user would write it with `stan-client`:
//! - `pub-pipelined`: `publish_async(..).await` in a loop, then every ack awaited
//!   (`--pub-mode batch`: one `start_publish_batch` and its `next_acks()`);
//! - `pub-awaited`: `publish(..).await` in a loop, with the p50/p99 of each round trip;
//! - `consume-auto` / `consume-manual`: `next().await` from a deliver-all-available
//!   subscription (max in flight 10000), with `ack().await` on each message for manual acks.
//!
//! `--runtime multi` (the default) is what `#[tokio::main]` gives: the code runs in `block_on`
//! on the main thread. `multi-spawned` runs it in a task on the same runtime, `current` on the
//! current-thread runtime; docs/benchmarks.md compares the three for the awaited round trip.
//! There is no official Rust client: `bench/packages.sh` compares this program with the Go
//! client's `stan-bench`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use hdrhistogram::Histogram;
use stan_client::{Client, ConnectOptions, SubscribeOptions};

/// Which client runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ClientKind {
    /// stan-client.
    Ours,
    /// There is no official Rust client: refused with a message.
    Official,
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N publishes with every ack in flight.
    PubPipelined,
    /// N publishes, each awaited before the next.
    PubAwaited,
    /// Read N messages back with automatic acks.
    ConsumeAuto,
    /// Read N messages back, acking each one.
    ConsumeManual,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::PubPipelined => "pub-pipelined",
            Scenario::PubAwaited => "pub-awaited",
            Scenario::ConsumeAuto => "consume-auto",
            Scenario::ConsumeManual => "consume-manual",
        }
    }
}

/// How pipelined publishes are issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PubMode {
    /// `publish_async(..).await` in a loop, then every `PublishAckFuture` awaited.
    Loop,
    /// One `start_publish_batch` and its `next_acks()`.
    Batch,
}

/// The Tokio runtime the benchmark runs on, and where its code runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Runtime {
    /// `#[tokio::main]`'s default: the multi-threaded runtime, the benchmark's code in
    /// `block_on` on the main thread.
    Multi,
    /// The multi-threaded runtime, the benchmark's code in a task spawned on it (on a worker
    /// thread, beside the connection's tasks).
    MultiSpawned,
    /// The current-thread runtime (`#[tokio::main(flavor = "current_thread")]`).
    Current,
}

/// One measurement of the Rust client against a running streaming server.
#[derive(Parser, Debug, Clone)]
#[command(name = "stan-client-bench")]
struct Args {
    /// The client to measure (only `ours` exists in Rust).
    #[arg(long, value_enum, default_value = "ours")]
    client: ClientKind,
    /// The scenario.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Number of messages.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// NATS URL of the streaming server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// Cluster id of the streaming server.
    #[arg(long, default_value = "test-cluster")]
    cluster_id: String,
    /// Channel to use (fresh for each run).
    #[arg(long, default_value = "bench")]
    channel: String,
    /// How pipelined publishes are issued.
    #[arg(long, value_enum, default_value = "loop")]
    pub_mode: PubMode,
    /// Runtime flavour.
    #[arg(long, value_enum, default_value = "multi")]
    runtime: Runtime,
}

/// What one run measured.
struct Measured {
    elapsed: Duration,
    /// p50 and p99 of the round trip in µs (awaited publishes only).
    latency: Option<(f64, f64)>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.client == ClientKind::Official {
        eprintln!(
            "stan-client-bench: there is no official Rust client to measure; use --client ours"
        );
        return ExitCode::from(2);
    }
    if args.messages == 0 {
        eprintln!("stan-client-bench: --messages must be at least 1");
        return ExitCode::from(2);
    }
    let runtime = match args.runtime {
        Runtime::Multi | Runtime::MultiSpawned => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        Runtime::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stan-client-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if args.runtime == Runtime::MultiSpawned {
        let spawned_args = args.clone();
        match runtime.block_on(runtime.spawn(async move { run(&spawned_args).await })) {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the benchmark task failed: {e}")),
        }
    } else {
        runtime.block_on(run(&args)).map_err(|e| e.to_string())
    };
    match outcome {
        Ok(m) => {
            let seconds = m.elapsed.as_secs_f64();
            let line = serde_json::json!({
                "lang": "rust",
                "client": "ours",
                "scenario": args.scenario.name(),
                "size": args.size,
                "messages": args.messages,
                "seconds": seconds,
                "msgs_per_sec": args.messages as f64 / seconds,
                "p50_us": m.latency.map(|l| l.0),
                "p99_us": m.latency.map(|l| l.1),
                "rss_kb": peak_rss_kb(),
            });
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stan-client-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> stan_client::Result<Measured> {
    let client_id = format!("rust-bench-{}", std::process::id());
    let client = ConnectOptions::new(&args.cluster_id, client_id)
        .nats_url(&args.url)
        .max_pub_acks_in_flight(args.messages.max(1024))
        .connect()
        .await?;
    let payload = Bytes::from(vec![b'a'; args.size]);
    let measured = match args.scenario {
        Scenario::PubPipelined => pub_pipelined(&client, args, &payload).await?,
        Scenario::PubAwaited => pub_awaited(&client, args, &payload).await?,
        Scenario::ConsumeAuto | Scenario::ConsumeManual => {
            let manual = args.scenario == Scenario::ConsumeManual;
            fill(&client, args, &payload).await?;
            consume(&client, args, manual).await?
        }
    };
    client.close().await?;
    Ok(measured)
}

async fn pub_pipelined(
    client: &Client,
    args: &Args,
    payload: &Bytes,
) -> stan_client::Result<Measured> {
    let start = Instant::now();
    match args.pub_mode {
        PubMode::Loop => {
            let mut acks = Vec::with_capacity(args.messages);
            for _ in 0..args.messages {
                acks.push(client.publish_async(&args.channel, payload.clone()).await?);
            }
            for ack in acks {
                ack.await?;
            }
        }
        PubMode::Batch => {
            let items = (0..args.messages).map(|_| (args.channel.as_str(), payload.clone()));
            let mut batch = client.start_publish_batch(items)?;
            while let Some(acks) = batch.next_acks().await {
                for (_, outcome) in acks {
                    outcome?;
                }
            }
        }
    }
    Ok(Measured {
        elapsed: start.elapsed(),
        latency: None,
    })
}

async fn pub_awaited(
    client: &Client,
    args: &Args,
    payload: &Bytes,
) -> stan_client::Result<Measured> {
    // Round trips in ns, from 1 µs to 60 s, 3 significant digits.
    let mut hist = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)
        .expect("valid histogram bounds");
    let start = Instant::now();
    for _ in 0..args.messages {
        let t = Instant::now();
        client.publish(&args.channel, payload.clone()).await?;
        hist.saturating_record(t.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1_000.0;
    Ok(Measured {
        elapsed,
        latency: Some((us(0.5), us(0.99))),
    })
}

/// Untimed: put the messages the consume scenarios read back on the channel.
async fn fill(client: &Client, args: &Args, payload: &Bytes) -> stan_client::Result<()> {
    let items = (0..args.messages).map(|_| (args.channel.as_str(), payload.clone()));
    let mut batch = client.start_publish_batch(items)?;
    while let Some(acks) = batch.next_acks().await {
        for (_, outcome) in acks {
            outcome?;
        }
    }
    Ok(())
}

async fn consume(client: &Client, args: &Args, manual: bool) -> stan_client::Result<Measured> {
    let start = Instant::now();
    let options = SubscribeOptions::new()
        .deliver_all_available()
        .max_in_flight(10_000)
        .manual_acks(manual);
    let mut sub = client.subscribe(&args.channel, options).await?;
    let mut received = 0;
    while received < args.messages {
        let Some(msg) = sub.next().await else {
            return Err(stan_client::Error::closed());
        };
        let msg = msg?;
        if manual {
            msg.ack().await?;
        }
        received += 1;
    }
    let elapsed = start.elapsed();
    sub.close().await?;
    Ok(Measured {
        elapsed,
        latency: None,
    })
}

/// The process's peak resident set size (VmHWM), in KiB; 0 where /proc is not there.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

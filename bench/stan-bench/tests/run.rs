//! Short runs against an in-process broker: the library entry point and the built binary, with
//! counts checked in the JSON output (never timings).

use std::process::Command;

use serde_json::Value;
use stan_bench::bench::{run, ProgressMode};
use stan_bench::cli::Config;
use stan_test_support::{unique, within_for, InProcessBroker};

fn config(broker: &InProcessBroker, args: &[&str]) -> Config {
    let url = broker.url();
    let mut argv = vec!["stan-bench", "-s", &url, "-c", broker.cluster_id(), "-q"];
    argv.extend_from_slice(args);
    Config::from_argv(argv).expect("valid arguments")
}

async fn run_json(config: &Config) -> Value {
    let report = within_for(
        std::time::Duration::from_secs(60),
        "the benchmark",
        run(config, ProgressMode::Off),
    )
    .await
    .expect("the benchmark runs");
    report.to_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_one_subscriber_counts_every_message() {
    let broker = InProcessBroker::start().await;
    let ch = unique("bench");
    let c = config(
        &broker,
        &["-np", "1", "-ns", "1", "-n", "200", "-ms", "64", &ch],
    );
    let v = run_json(&c).await;
    assert_eq!(v["publishers"]["count"], 1);
    assert_eq!(v["publishers"]["msgs"], 200);
    assert_eq!(v["publishers"]["bytes"], 200 * 64);
    assert_eq!(v["publishers"]["latency_us"]["count"], 200);
    assert_eq!(v["subscribers"]["count"], 1);
    assert_eq!(v["subscribers"]["msgs"], 200);
    assert_eq!(v["subscribers"]["latency_us"]["count"], 200);
    assert_eq!(v["subscribers"]["latency_from"], "publish→receive");
    assert_eq!(v["total"]["msgs"], 400);
    assert_eq!(
        v["publishers"]["clients"][0]["client_id"],
        "benchmark-pub-0"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_publishers_split_the_count_and_a_queue_group_shares_it() {
    let broker = InProcessBroker::start().await;
    let ch = unique("bench");
    let c = config(
        &broker,
        &[
            "-np", "3", "-ns", "2", "-qgroup", "q", "-n", "200", "-sync", "-ms", "4", &ch,
        ],
    );
    let v = run_json(&c).await;
    let pub_counts: Vec<u64> = (0..3)
        .map(|i| v["publishers"]["clients"][i]["msgs"].as_u64().unwrap())
        .collect();
    assert_eq!(pub_counts, [67, 67, 66]);
    assert_eq!(v["publishers"]["latency_us"]["count"], 200);
    // Queue members share the 200 messages between them.
    assert_eq!(v["subscribers"]["count"], 2);
    assert_eq!(v["subscribers"]["msgs"], 200);
    // Payloads under 8 bytes carry no time: the server's timestamp is used.
    assert_eq!(v["subscribers"]["latency_from"], "server timestamp→receive");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_run_delivers_what_was_published() {
    let broker = InProcessBroker::start().await;
    let ch = unique("bench");
    let c = config(
        &broker,
        &[
            "-np",
            "2",
            "-ns",
            "2",
            "--duration",
            "300ms",
            "-mpa",
            "16",
            &ch,
        ],
    );
    let v = run_json(&c).await;
    let published = v["publishers"]["msgs"].as_u64().unwrap();
    assert!(published > 0);
    // Each plain subscriber gets every message.
    assert_eq!(v["subscribers"]["msgs"].as_u64().unwrap(), 2 * published);
    assert_eq!(v["settings"]["duration_secs"], 0.3);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_request_reply_counts_round_trips() {
    let broker = InProcessBroker::start().await;
    let c = config(
        &broker,
        &[
            "--core-request-reply",
            "-np",
            "2",
            "-n",
            "100",
            "-ms",
            "32",
            &unique("rr"),
        ],
    );
    let v = run_json(&c).await;
    assert_eq!(v["name"], "Core NATS request/reply");
    assert_eq!(v["publishers"]["msgs"], 100);
    assert_eq!(v["publishers"]["latency_us"]["count"], 100);
    assert_eq!(v["subscribers"]["count"], 0);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_json_and_writes_csv() {
    let broker = InProcessBroker::start().await;
    let dir = std::env::temp_dir().join(unique("stan-bench-csv"));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("out.csv");
    let url = broker.url();
    let cluster = broker.cluster_id().to_string();
    let ch = unique("bench");
    let csv_arg = csv.to_string_lossy().into_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_stan-bench"))
            .args([
                "-s", &url, "-c", &cluster, "-np", "1", "-ns", "1", "-n", "200",
            ])
            .args(["--json", "-csv", &csv_arg, &ch])
            .output()
            .expect("stan-bench runs")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout).expect("one JSON document on stdout");
    assert_eq!(v["publishers"]["msgs"], 200);
    assert_eq!(v["subscribers"]["msgs"], 200);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].contains(",S0,200,"), "{text}");
    assert!(lines[2].contains(",P0,200,"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
    broker.shutdown().await;
}

#[test]
fn the_binary_rejects_bad_flags_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_stan-bench"))
        .args(["-np", "many"])
        .output()
        .expect("stan-bench runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("many"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_stan-bench"))
        .args(["-nope"])
        .output()
        .expect("stan-bench runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown flag -nope"));
}

//! Short runs against an in-process broker: the library entry point and the built binary, with
//! counts checked in the JSON output (never timings).

use std::process::Command;

use futures::StreamExt;
use serde_json::Value;
use stan_bench::bench::{run, ProgressMode};
use stan_bench::cli::Config;
use stan_client::{ConnectOptions, SubscribeOptions};
use stan_test_support::{unique, within, within_for, InProcessBroker};

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

/// Start a broker and run a benchmark with `args` on a fresh channel (appended as the
/// subject); returns the broker (to inspect, then shut down), the channel and the JSON report.
async fn run_on_a_fresh_broker(args: &[&str]) -> (InProcessBroker, String, Value) {
    let broker = InProcessBroker::start().await;
    let ch = unique("bench");
    let mut argv = args.to_vec();
    argv.push(&ch);
    let v = run_json(&config(&broker, &argv)).await;
    (broker, ch, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_one_subscriber_counts_every_message() {
    let (broker, _, v) =
        run_on_a_fresh_broker(&["-np", "1", "-ns", "1", "-n", "200", "-ms", "64"]).await;
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
    let (broker, _, v) = run_on_a_fresh_broker(&[
        "-np", "3", "-ns", "2", "-qgroup", "q", "-n", "200", "-sync", "-ms", "4",
    ])
    .await;
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
    let (broker, _, v) =
        run_on_a_fresh_broker(&["-np", "2", "-ns", "2", "--duration", "300ms", "-mpa", "16"]).await;
    let published = v["publishers"]["msgs"].as_u64().unwrap();
    assert!(published > 0);
    // Each plain subscriber gets every message.
    assert_eq!(v["subscribers"]["msgs"].as_u64().unwrap(), 2 * published);
    assert_eq!(v["settings"]["duration_secs"], 0.3);
    broker.shutdown().await;
}

/// The `clients[..].msgs` of a role in the JSON report, after checking the client ids are in
/// order (`<prefix>-0`, `<prefix>-1`, ...).
fn client_msgs(v: &Value, role: &str, prefix: &str) -> Vec<u64> {
    let clients = v[role]["clients"].as_array().expect("clients");
    clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            assert_eq!(c["client_id"], format!("{prefix}-{i}"));
            c["msgs"].as_u64().unwrap()
        })
        .collect()
}

/// Checks that `channel` holds exactly `count` messages: publishes a marker after them and
/// expects it at sequence `count + 1`.
async fn assert_channel_holds(broker: &InProcessBroker, channel: &str, count: u64) {
    let client = ConnectOptions::new(broker.cluster_id(), unique("checker"))
        .nats_url(broker.url())
        .connect()
        .await
        .expect("the checker connects");
    client
        .publish(channel, &b"marker"[..])
        .await
        .expect("the marker is stored");
    let mut sub = client
        .subscribe(
            channel,
            SubscribeOptions::new().start_at_sequence(count + 1),
        )
        .await
        .expect("the checker subscribes");
    let msg = within("the message after the benchmark's", sub.next())
        .await
        .expect("a message")
        .expect("no error");
    assert_eq!(msg.sequence(), count + 1, "channel {channel}");
    assert_eq!(
        &msg.data()[..],
        b"marker",
        "channel {channel} holds more than {count}"
    );
    let _ = client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_channel_per_publisher_delivers_each_channel_to_its_subscribers() {
    let (broker, ch, v) =
        run_on_a_fresh_broker(&["-cpp", "-np", "3", "-ns", "4", "-n", "301", "-ms", "16"]).await;
    assert_eq!(v["settings"]["channel_per_publisher"], true);
    assert_eq!(
        client_msgs(&v, "publishers", "benchmark-pub"),
        [101, 100, 100]
    );
    // Subscriber j reads channel j % 3, and exactly that channel's messages.
    assert_eq!(
        client_msgs(&v, "subscribers", "benchmark-sub"),
        [101, 100, 100, 101]
    );
    assert_eq!(v["publishers"]["msgs"], 301);
    assert_eq!(v["subscribers"]["msgs"], 402);
    assert_eq!(v["subscribers"]["latency_us"]["count"], 402);
    assert_eq!(v["total"]["msgs"], 703);
    assert_eq!(v["total"]["bytes"], 703 * 16);
    for (i, n) in [101, 100, 100].into_iter().enumerate() {
        assert_channel_holds(&broker, &format!("{ch}.{i}"), n).await;
    }
    assert_channel_holds(&broker, &ch, 0).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_publisher_channels_each_have_their_own_queue_group() {
    let (broker, _, v) = run_on_a_fresh_broker(&[
        "-cpp", "-np", "3", "-ns", "4", "-qgroup", "q", "-n", "301", "-ms", "16",
    ])
    .await;
    assert_eq!(v["settings"]["queue_group"], "q");
    let subs = client_msgs(&v, "subscribers", "benchmark-sub");
    // Subscribers 0 and 3 form channel 0's group and share its 101 messages; 1 and 2 are
    // alone in the groups of channels 1 and 2.
    assert_eq!(subs[0] + subs[3], 101, "{subs:?}");
    assert_eq!((subs[1], subs[2]), (100, 100), "{subs:?}");
    assert_eq!(v["publishers"]["msgs"], 301);
    assert_eq!(v["subscribers"]["msgs"], 301);
    assert_eq!(v["total"]["msgs"], 602);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_run_with_per_publisher_channels_waits_for_each_publisher() {
    let (broker, ch, v) = run_on_a_fresh_broker(&[
        "-cpp",
        "-np",
        "2",
        "-ns",
        "3",
        "--duration",
        "300ms",
        "-mpa",
        "16",
    ])
    .await;
    let pubs = client_msgs(&v, "publishers", "benchmark-pub");
    assert!(pubs.iter().all(|&n| n > 0), "{pubs:?}");
    assert_eq!(
        client_msgs(&v, "subscribers", "benchmark-sub"),
        [pubs[0], pubs[1], pubs[0]]
    );
    for (i, &n) in pubs.iter().enumerate() {
        assert_channel_holds(&broker, &format!("{ch}.{i}"), n).await;
    }
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

//! The JETSTREAM store through the `stan-broker` binary on a three-node `nats-server`
//! JetStream cluster: one active broker and a standby per cluster ID, `kill -9` of the active
//! one while a client publishes and a durable consumes, the loss of one NATS node, the
//! start-up failures (NATS unreachable, JetStream off, more replicas than nodes), and the
//! deployment example's configuration.
//!
//! Each test skips with a printed reason when `nats-server` is not installed. The tests run
//! one at a time (each starts three NATS servers and up to two brokers; on two cores, running
//! them side by side would only make lease renewals late).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use stan_broker::ready::Ports;
use stan_client::{Client, ConnectOptions, ErrorKind, Event, SubscribeOptions};
use stan_test_support::{free_port, start_nats_server, unique, within, JsCluster};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_stan-broker");
/// The lease of the failover tests: short, so a standby takes over quickly.
const LEASE: Duration = Duration::from_secs(2);
/// Bound on a broker becoming ready (first start, or a standby taking over). Generous: a
/// bound against hanging, not a speed assertion.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Bound on a broker that cannot start giving up with an error.
const FAIL_WITHIN: Duration = Duration::from_secs(30);

/// One test at a time (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A line of a broker's output.
enum Line {
    /// The ready line (standard output).
    Ready(Ports),
    /// Any other line (logs, on standard error).
    Log(String),
    /// One of the two output streams ended.
    Eof,
}

/// A `stan-broker` process with the JETSTREAM store whose readiness and log lines can be
/// awaited, so a standby (started, not ready) can be watched. Killed when dropped.
///
/// `stan_test_support::BrokerProcess` returns only once its broker is ready, which a standby
/// is not until the active broker goes away.
struct JsBroker {
    name: String,
    child: Option<Child>,
    lines: mpsc::UnboundedReceiver<Line>,
    seen: Vec<String>,
    eofs: usize,
    ports: Option<Ports>,
}

impl JsBroker {
    /// Starts `stan-broker -cid CLUSTER -st JETSTREAM -ns NATS -m 0 ARGS...`.
    fn spawn(name: &str, cluster_id: &str, nats: &str, args: &[&str]) -> JsBroker {
        let mut all = vec!["-cid", cluster_id, "-st", "JETSTREAM", "-ns", nats];
        all.extend(["-m", "0", "-hbi", "1s", "-hbt", "2s", "-hbf", "5"]);
        all.extend(args);
        JsBroker::spawn_args(name, &all)
    }

    /// Starts `stan-broker ARGS...`.
    fn spawn_args(name: &str, args: &[&str]) -> JsBroker {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stan-broker");
        let (tx, lines) = mpsc::unbounded_channel();
        let out = child.stdout.take().expect("piped stdout");
        let out_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let item = match Ports::from_line(&line) {
                    Some(p) => Line::Ready(p),
                    None => Line::Log(line),
                };
                if out_tx.send(item).is_err() {
                    return;
                }
            }
            let _ = out_tx.send(Line::Eof);
        });
        let err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(Line::Log(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Line::Eof);
        });
        JsBroker {
            name: name.to_string(),
            child: Some(child),
            lines,
            seen: Vec::new(),
            eofs: 0,
            ports: None,
        }
    }

    fn take(&mut self, line: Line) {
        match line {
            Line::Ready(p) => self.ports = Some(p),
            Line::Log(l) => self.seen.push(l),
            Line::Eof => self.eofs += 1,
        }
    }

    /// Takes the lines printed so far, without waiting.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.take(line);
        }
    }

    /// True once the ready line came (checked without waiting).
    fn is_ready(&mut self) -> bool {
        self.drain();
        self.ports.is_some()
    }

    /// Waits for the next line for at most `limit`; false if none came.
    async fn next_line(&mut self, limit: Duration) -> bool {
        match tokio::time::timeout(limit, self.lines.recv()).await {
            Ok(Some(line)) => {
                self.take(line);
                true
            }
            _ => false,
        }
    }

    /// Waits for the ready line; panics with the logs when the broker exits first or
    /// `limit` passes.
    async fn wait_ready(&mut self, limit: Duration) -> Ports {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(p) = &self.ports {
                return p.clone();
            }
            if self.eofs == 2 {
                self.fail("exited before it was ready");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.next_line(left).await {
                self.fail(&format!("not ready within {limit:?}"));
            }
        }
    }

    /// Waits for a log line containing `needle`.
    async fn wait_log(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.eofs == 2 || left.is_zero() || !self.next_line(left).await {
                self.fail(&format!("printed no line with {needle:?} within {limit:?}"));
            }
        }
    }

    /// The monitoring address of the ready line.
    fn monitoring(&self) -> SocketAddr {
        let url = &self.ports.as_ref().expect("ready").monitoring[0];
        url.trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("monitoring address")
    }

    /// True while the process runs.
    fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILL, as a crash would; reaped at once.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: a graceful shutdown.
    fn terminate(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM {pid}");
    }

    /// Waits (polling) for the process to exit; `None` if it still runs after `limit`.
    async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut().expect("not killed");
            if let Ok(Some(status)) = child.try_wait() {
                // Collect the rest of its output.
                while self.eofs < 2 && self.next_line(Duration::from_secs(5)).await {}
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn logs(&mut self) -> String {
        self.drain();
        self.seen.join("\n")
    }

    /// Panics with `why` and the broker's output.
    fn fail(&mut self, why: &str) -> ! {
        let logs = self.logs();
        panic!("{}: {why}; its output:\n{logs}", self.name)
    }
}

impl Drop for JsBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-node JetStream cluster, or `None` (skip) without `nats-server`.
async fn js_cluster() -> Option<JsCluster> {
    JsCluster::start(3).await
}

fn failover_args(replicas: &str, lease: Duration) -> Vec<String> {
    vec![
        "--js_replicas".into(),
        replicas.into(),
        "--js_lease_ttl".into(),
        format!("{}ms", lease.as_millis()),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A client on every node of the cluster, with a short pub-ack wait so that a publish lost
/// during a failover fails (and the next one is tried) quickly. Its connect wait (15 s) covers
/// the broker's retries of a JetStream write (10 s at most with these leases): a client that
/// connects while a lost node's streams elect new leaders is registered once they have. Panics
/// with the brokers' output when it cannot connect.
async fn client(
    cluster: &JsCluster,
    cluster_id: &str,
    name: &str,
    brokers: &mut [&mut JsBroker],
) -> Client {
    let mut opts = ConnectOptions::new(cluster_id, unique(name))
        .pub_ack_wait(Duration::from_secs(2))
        .connect_wait(Duration::from_secs(15));
    for url in cluster.urls() {
        opts = opts.nats_url(url);
    }
    match within("client connect", opts.connect()).await {
        Ok(c) => c,
        Err(e) => fail_all(brokers, &format!("client {name} cannot connect: {e}")),
    }
}

/// Panics with `why` and the output of every broker.
fn fail_all(brokers: &mut [&mut JsBroker], why: &str) -> ! {
    let logs: Vec<String> = brokers
        .iter_mut()
        .map(|b| {
            let logs = b.logs();
            format!("--- {}:\n{logs}", b.name)
        })
        .collect();
    panic!("{why}\n{}", logs.join("\n"))
}

/// The payloads of the channel from sequence 1 on, read by a new subscription, up to
/// `last`; panics on a gap in the sequences.
async fn read_channel(client: &Client, channel: &str, last: u64) -> Vec<String> {
    let mut sub = client
        .subscribe(channel, SubscribeOptions::new().deliver_all_available())
        .await
        .expect("subscribe from the first message");
    let mut out = Vec::new();
    within("the whole channel", async {
        while (out.len() as u64) < last {
            let m = sub.next().await.expect("stream open").expect("message");
            assert_eq!(m.sequence(), out.len() as u64 + 1, "gap in the channel");
            out.push(String::from_utf8(m.data().to_vec()).unwrap());
        }
    })
    .await;
    sub.close().await.expect("close reader");
    out
}

/// The payloads of the channel from sequence 1 on, read by a new subscription until every
/// payload of `want` was seen; panics (with the brokers' output) on a gap in the sequences or
/// when one of `want` is missing.
async fn read_channel_until(
    client: &Client,
    channel: &str,
    want: &[String],
    brokers: &mut [&mut JsBroker],
) -> Vec<String> {
    // A subscribe is answered once the broker has stored it; while a lost node's streams
    // elect new leaders that can outlast the client's request wait, as it would for any
    // application, which then asks again. A second timeout fails the test.
    let options = || SubscribeOptions::new().deliver_all_available();
    let mut sub = match client.subscribe(channel, options()).await {
        Ok(sub) => sub,
        Err(e) if e.kind() == ErrorKind::RequestTimeout => {
            eprintln!("subscribe timed out during the election ({e}); asking again");
            match client.subscribe(channel, options()).await {
                Ok(sub) => sub,
                Err(e) => fail_all(brokers, &format!("subscribe from the first message: {e}")),
            }
        }
        Err(e) => fail_all(brokers, &format!("subscribe from the first message: {e}")),
    };
    let mut left: BTreeSet<&String> = want.iter().collect();
    let mut out = Vec::new();
    let read = tokio::time::timeout(READY_WITHIN, async {
        while !left.is_empty() {
            let m = sub.next().await.expect("stream open").expect("message");
            assert_eq!(m.sequence(), out.len() as u64 + 1, "gap in the channel");
            let data = String::from_utf8(m.data().to_vec()).unwrap();
            left.remove(&data);
            out.push(data);
        }
    })
    .await;
    if read.is_err() {
        fail_all(
            brokers,
            &format!(
                "acked but not in the channel's first {} messages: {left:?}",
                out.len()
            ),
        );
    }
    sub.close().await.expect("close reader");
    out
}

/// A publisher task: publishes `m-0`, `m-1`, ... (each awaited) until `stop`, keeping the
/// payloads whose publish was acked. Failed publishes (no active broker) are counted and the
/// loop goes on.
struct Publisher {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn start(client: Client, channel: String) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicU64::new(0));
        let (s, a, f) = (stop.clone(), acked.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let payload = format!("m-{i}");
                match client.publish(&channel, payload.clone()).await {
                    Ok(_) => a.lock().unwrap().push(payload),
                    Err(_) => {
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
        });
        Publisher {
            stop,
            acked,
            failed,
            task,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` more publishes than now were acked; panics with `what`, the publish
    /// counts and the brokers' output when they are not acked within [`READY_WITHIN`].
    async fn wait_more_acked(&self, n: usize, what: &str, brokers: &mut [&mut JsBroker]) {
        let target = self.acked() + n;
        let done = tokio::time::timeout(READY_WITHIN, async {
            while self.acked() < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        if done.is_err() {
            let (acked, failed) = (self.acked(), self.failed.load(Ordering::Relaxed));
            fail_all(
                brokers,
                &format!(
                    "no {what} within {READY_WITHIN:?} ({acked} acked, {failed} failed publishes)"
                ),
            );
        }
    }

    /// Stops the loop; returns the acked payloads (in ack order) and the number of failed
    /// publishes.
    async fn stop(self) -> (Vec<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        within("publisher stops", self.task)
            .await
            .expect("publisher task");
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.failed.load(Ordering::Relaxed))
    }
}

/// A durable consumer task (manual acks): records every sequence and payload it gets and
/// acks it, and every sequence that came with two different payloads.
struct Consumer {
    got: Arc<Mutex<BTreeMap<u64, String>>>,
    conflicts: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Consumer {
    async fn start(client: &Client, channel: &str, durable: &str) -> Consumer {
        let mut sub = client
            .subscribe(
                channel,
                SubscribeOptions::durable(durable)
                    .deliver_all_available()
                    .manual_acks(true)
                    .ack_wait(Duration::from_secs(2)),
            )
            .await
            .expect("durable subscription");
        let got = Arc::new(Mutex::new(BTreeMap::new()));
        let conflicts = Arc::new(Mutex::new(Vec::new()));
        let (g, c) = (got.clone(), conflicts.clone());
        let task = tokio::spawn(async move {
            while let Some(Ok(m)) = sub.next().await {
                let data = String::from_utf8(m.data().to_vec()).unwrap();
                let before = g.lock().unwrap().insert(m.sequence(), data.clone());
                if let Some(before) = before.filter(|b| *b != data) {
                    c.lock().unwrap().push(format!(
                        "sequence {} delivered as {before:?}, then as {data:?} (redelivered: {}, at {:?})",
                        m.sequence(),
                        m.redelivered(),
                        std::time::SystemTime::now()
                    ));
                }
                let _ = m.ack().await;
            }
        });
        Consumer {
            got,
            conflicts,
            task,
        }
    }

    /// Waits until every sequence of 1..=last was received at least once; panics with the
    /// brokers' output when not, or when a sequence came with two payloads.
    async fn wait_all(&self, last: u64, what: &str, brokers: &mut [&mut JsBroker]) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let conflicts = self.conflicts.lock().unwrap().clone();
            if !conflicts.is_empty() {
                fail_all(
                    brokers,
                    &format!("one sequence, two messages: {conflicts:#?}"),
                );
            }
            let missing: Vec<u64> = {
                let got = self.got.lock().unwrap();
                (1..=last).filter(|s| !got.contains_key(s)).collect()
            };
            if missing.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                fail_all(brokers, &format!("{what}: missing sequences {missing:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The events `client` emitted so far (without waiting), and those among them that ended
/// its session for good (a failed resume, the client closed).
fn session_events(events: &mut stan_client::Events) -> (Vec<Event>, Vec<Event>) {
    use futures::FutureExt;
    let mut all = Vec::new();
    while let Some(Some(e)) = events.next().now_or_never() {
        all.push(e);
    }
    let fatal = all
        .iter()
        .filter(|e| matches!(e, Event::ResumeFailed { .. } | Event::Closed))
        .cloned()
        .collect();
    (all, fatal)
}

/// Waits until one of `a` and `b` is ready; returns (active, standby).
async fn first_ready<'a>(
    a: &'a mut JsBroker,
    b: &'a mut JsBroker,
) -> (&'a mut JsBroker, &'a mut JsBroker) {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        match (a.is_ready(), b.is_ready()) {
            (true, true) => panic!(
                "both brokers are ready:\n--- a:\n{}\n--- b:\n{}",
                a.logs(),
                b.logs()
            ),
            (true, false) => return (a, b),
            (false, true) => return (b, a),
            (false, false) => {}
        }
        assert!(
            Instant::now() < deadline && a.is_running() && b.is_running(),
            "no broker became ready:\n--- a:\n{}\n--- b:\n{}",
            a.logs(),
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_is_active_the_other_stands_by() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = js_cluster().await else {
        return;
    };
    let cid = unique("standby");
    let nats = cluster.url();
    let args = failover_args("3", LEASE);
    // Both at once: the lease decides.
    let mut a = JsBroker::spawn("broker a", &cid, &nats, &strs(&args));
    let mut b = JsBroker::spawn("broker b", &cid, &nats, &strs(&args));
    let (active, standby) = first_ready(&mut a, &mut b).await;
    standby.wait_log("standing by", READY_WITHIN).await;

    let storez = stan_test_support::http::get(active.monitoring(), "/streaming/storez")
        .await
        .json();
    assert_eq!(storez["type"], "JETSTREAM", "{storez}");
    assert_eq!(storez["cluster_id"], cid.as_str(), "{storez}");

    // Service goes on through several lease renewals, and the standby stays out.
    let c = client(
        &cluster,
        &cid,
        "standby-pub",
        &mut [&mut *active, &mut *standby],
    )
    .await;
    let ch = unique("ch");
    let renewals = Instant::now() + 3 * LEASE;
    let mut n = 0;
    while Instant::now() < renewals {
        within("publish on the active broker", c.publish(&ch, "x"))
            .await
            .expect("publish acked");
        n += 1;
        assert!(
            !standby.is_ready() && standby.is_running(),
            "the standby did not stay standing by:\n{}",
            standby.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(active.is_running(), "active exited:\n{}", active.logs());

    // A graceful stop hands over too, with everything stored.
    active.terminate();
    let Some(status) = active.wait_exit(FAIL_WITHIN).await else {
        active.fail("did not stop on SIGTERM");
    };
    assert!(status.success(), "{status}:\n{}", active.logs());
    standby.wait_ready(READY_WITHIN).await;
    let reader = client(&cluster, &cid, "reader", &mut [&mut *standby]).await;
    let stored = read_channel(&reader, &ch, n).await;
    assert_eq!(stored, vec!["x".to_string(); n as usize]);
    reader.close().await.expect("client close");
    // Its session may be resuming (see the failover test): only bounded.
    let _ = within("client close", c.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_active_broker_loses_no_acked_message() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = js_cluster().await else {
        return;
    };
    let cid = unique("failover");
    let nats = cluster.url();
    let args = failover_args("3", LEASE);
    let mut a = JsBroker::spawn("broker a", &cid, &nats, &strs(&args));
    a.wait_ready(READY_WITHIN).await;
    let mut b = JsBroker::spawn("broker b", &cid, &nats, &strs(&args));
    b.wait_log("standing by", READY_WITHIN).await;

    let ch = unique("ch");
    let pub_client = client(&cluster, &cid, "pub", &mut [&mut a, &mut b]).await;
    let sub_client = client(&cluster, &cid, "sub", &mut [&mut a, &mut b]).await;
    let mut pub_events = pub_client.events();
    let mut sub_events = sub_client.events();
    let consumer = Consumer::start(&sub_client, &ch, "dur").await;
    let publisher = Publisher::start(pub_client.clone(), ch.clone());
    publisher
        .wait_more_acked(50, "50 acked publishes", &mut [&mut a])
        .await;

    a.kill();
    let killed = Instant::now();
    b.wait_ready(READY_WITHIN).await;
    let took_over = killed.elapsed();
    publisher
        .wait_more_acked(
            50,
            "50 acked publishes on the new active broker",
            &mut [&mut b],
        )
        .await;
    let (acked, failed) = publisher.stop().await;
    eprintln!(
        "standby ready {took_over:?} after kill -9; {} acked, {failed} failed publishes",
        acked.len(),
    );

    // Everything acked is stored, in the order of the acks.
    let reader = client(&cluster, &cid, "reader", &mut [&mut b]).await;
    let last = last_seq(&b, &ch).await;
    let stored = read_channel(&reader, &ch, last).await;
    let stored_set: BTreeSet<&String> = stored.iter().collect();
    let missing: Vec<&String> = acked.iter().filter(|p| !stored_set.contains(p)).collect();
    assert!(missing.is_empty(), "acked but not stored: {missing:?}");
    let positions: Vec<usize> = acked
        .iter()
        .map(|p| stored.iter().position(|s| s == p).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "acked publishes stored out of order"
    );

    // The durable got every stored message (duplicates allowed), across the failover.
    consumer
        .wait_all(last, "the durable gets every message", &mut [&mut b])
        .await;
    {
        let got = consumer.got.lock().unwrap();
        for (seq, payload) in stored.iter().enumerate() {
            assert_eq!(got.get(&(seq as u64 + 1)), Some(payload));
        }
    }
    // Both clients went on: their sessions were kept by the new active broker, or (a client
    // that re-sends its publishes, whose registration a recovering broker drops while its
    // de-duplication window is on) resumed.
    for (name, events) in [
        ("publisher", &mut pub_events),
        ("subscriber", &mut sub_events),
    ] {
        let (all, fatal) = session_events(events);
        eprintln!("{name} events: {all:?}");
        assert_eq!(fatal, [], "{name}: session ended; events {all:?}");
    }
    for c in [pub_client, sub_client, reader] {
        c.close().await.expect("client close");
    }
}

/// The channel's last sequence, from the broker's monitoring.
async fn last_seq(broker: &JsBroker, channel: &str) -> u64 {
    let path = format!("/streaming/channelsz?channel={channel}");
    let c = stan_test_support::http::get(broker.monitoring(), &path)
        .await
        .json();
    c["last_seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no last_seq for {channel}: {c}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_nats_node_keeps_the_service_going() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = js_cluster().await else {
        return;
    };
    let cid = unique("node-loss");
    let nats = cluster.url();
    // The deployment of docs/jetstream.md: an active broker and a standby, the default lease.
    // A node loss pauses the streams it led (a leader election); if that outlasts the active
    // broker's lease or write retries, the standby takes over: either way the service goes on.
    let args = failover_args("3", Duration::from_secs(5));
    let mut a = JsBroker::spawn("broker a", &cid, &nats, &strs(&args));
    a.wait_ready(READY_WITHIN).await;
    let mut b = JsBroker::spawn("broker b", &cid, &nats, &strs(&args));
    b.wait_log("standing by", READY_WITHIN).await;

    let ch = unique("ch");
    let pub_client = client(&cluster, &cid, "pub", &mut [&mut a, &mut b]).await;
    let sub_client = client(&cluster, &cid, "sub", &mut [&mut a, &mut b]).await;
    let consumer = Consumer::start(&sub_client, &ch, "dur").await;
    let publisher = Publisher::start(pub_client.clone(), ch.clone());
    publisher
        .wait_more_acked(50, "50 acked publishes", &mut [&mut a, &mut b])
        .await;

    // The first node: the one the brokers and the clients connected to first.
    cluster.kill(0);
    publisher
        .wait_more_acked(
            100,
            "100 acked publishes with a node down",
            &mut [&mut a, &mut b],
        )
        .await;
    let (acked, failed) = publisher.stop().await;

    // Everything acked is stored, and the durable gets every stored message.
    let reader = client(&cluster, &cid, "reader", &mut [&mut a, &mut b]).await;
    let stored = read_channel_until(&reader, &ch, &acked, &mut [&mut a, &mut b]).await;
    consumer
        .wait_all(
            stored.len() as u64,
            "the durable gets every message with a node down",
            &mut [&mut a, &mut b],
        )
        .await;
    eprintln!(
        "node 0 killed: {} acked, {failed} failed publishes; {}",
        acked.len(),
        if b.is_ready() {
            "the standby took over"
        } else {
            "the active broker kept serving"
        }
    );
    for c in [pub_client, sub_client, reader] {
        let _ = within("client close", c.close()).await;
    }
}

/// Starts a broker that must fail: returns its exit status and output.
async fn expect_start_failure(what: &str, nats: &str, args: &[&str]) -> (ExitStatus, String) {
    let mut b = JsBroker::spawn(what, &unique("fail"), nats, args);
    let status = b.wait_exit(FAIL_WITHIN).await;
    let logs = b.logs();
    let status =
        status.unwrap_or_else(|| panic!("{what}: still running after {FAIL_WITHIN:?}:\n{logs}"));
    assert!(b.ports.is_none(), "{what}: became ready:\n{logs}");
    assert!(!status.success(), "{what}: exit status {status}:\n{logs}");
    eprintln!("{what}: {status}, output:\n{logs}");
    (status, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_clearly_when_nats_is_unreachable() {
    let _serial = SERIAL.lock().await;
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let (_, logs) = expect_start_failure("unreachable NATS", &url, &[]).await;
    assert!(
        logs.contains(&port.to_string()),
        "names the server:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_clearly_without_jetstream() {
    let _serial = SERIAL.lock().await;
    let Some(plain) = start_nats_server().await else {
        return;
    };
    let (_, logs) = expect_start_failure("NATS without JetStream", &plain.url, &[]).await;
    assert!(
        logs.to_lowercase().contains("jetstream"),
        "says JetStream is missing:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_clearly_with_more_replicas_than_nodes() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = js_cluster().await else {
        return;
    };
    let (_, logs) = expect_start_failure(
        "5 replicas on 3 nodes",
        &cluster.url(),
        &["--js_replicas", "5"],
    )
    .await;
    assert!(
        logs.to_lowercase().contains("replica"),
        "says the replicas cannot be placed:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_example_runs_an_active_and_a_standby_broker() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = js_cluster().await else {
        return;
    };
    // examples/deploy/jetstream/stan-broker.conf with this cluster's nodes for nats-1..3.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/deploy/jetstream/stan-broker.conf"
    );
    let text = std::fs::read_to_string(example).expect("read the example");
    let hosts = "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222";
    assert!(text.contains(hosts), "the example lists the three nodes");
    let dir = std::env::temp_dir().join(unique("stan-js-example"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("stan-broker.conf");
    std::fs::write(&conf, text.replace(hosts, &cluster.url())).unwrap();
    let conf = conf.to_str().unwrap();

    let mut a = JsBroker::spawn_args("broker a", &["-c", conf, "-m", "0"]);
    a.wait_ready(READY_WITHIN).await;
    let mut b = JsBroker::spawn_args("broker b", &["-c", conf, "-m", "0"]);
    b.wait_log("standing by", READY_WITHIN).await;
    let storez = stan_test_support::http::get(a.monitoring(), "/streaming/storez")
        .await
        .json();
    assert_eq!(storez["type"], "JETSTREAM", "{storez}");
    assert_eq!(storez["cluster_id"], "prod-cluster", "{storez}");
    a.kill();
    b.wait_ready(READY_WITHIN).await;
    let _ = std::fs::remove_dir_all(&dir);
}

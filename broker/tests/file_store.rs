//! The FILE store end to end: restart of an in-process broker on the same directory, and the
//! broker binary SIGKILLed at random moments under concurrent publishers and a durable
//! subscriber (every acknowledged message survives, the durable sees no gap).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use prost::Message;
use stan_broker::config::{BrokerConfig, FileStoreOptions, StoreKind, StoreLimits};
use stan_broker::ready::Ports;
use stan_broker::store::{FileStore, Store};
use stan_protocol::pb;
use stan_protocol::subjects::{new_inbox, new_nuid};

const BIN: &str = env!("CARGO_BIN_EXE_stan-broker");

fn file_cfg(dir: &Path, cfg: &mut BrokerConfig) {
    cfg.store = StoreKind::File(dir.to_path_buf());
    cfg.cluster_id = "file-test".into();
}

fn durable(c: &Conn, channel: &str, name: &str) -> pb::SubscriptionRequest {
    let mut r = c.sub_req(channel);
    r.durable_name = name.into();
    r.start_position = pb::StartPosition::First as i32;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_durables_and_durable_queue_groups() {
    let dir = fresh_store_dir();
    let b = stan_test_support::start_broker(|c| file_cfg(&dir, c)).await;
    let url = b.client_url();
    let mut c1 = Conn::connect(&url, "file-test", "c1").await;
    let c2 = Conn::connect(&url, "file-test", "c2").await;
    for i in 1..=10u8 {
        c1.publish("ch", &[i]).await;
    }
    // A durable that stays active across the restart: acks 1..=5.
    let mut d = c1.subscribe(durable(&c1, "ch", "dur")).await.unwrap();
    assert_eq!(d.next_seqs(10).await, (1..=10).collect::<Vec<_>>());
    for seq in 1..=5 {
        d.ack(seq).await;
    }
    // A durable queue group whose only member closes: acks the even ones.
    let mut qr = durable(&c2, "ch", "dq");
    qr.q_group = "grp".into();
    let mut q = c2.subscribe(qr.clone()).await.unwrap();
    assert_eq!(q.next_seqs(10).await, (1..=10).collect::<Vec<_>>());
    for seq in (2..=10).step_by(2) {
        q.ack(seq).await;
    }
    wait_snapshot(&b, "acks processed", |sn| {
        let pend: Vec<usize> = sn.channels[0]
            .subs
            .iter()
            .map(|s| s.pending_count)
            .collect();
        pend.len() == 2 && pend.iter().all(|p| *p == 5)
    })
    .await;
    assert_eq!(c2.unsubscribe(&q, true).await, "");
    b.shutdown().await;
    drop((c1, c2, d, q));

    let b = stan_test_support::start_broker(|c| file_cfg(&dir, c)).await;
    let snap = b.snapshot().await;
    assert_eq!(snap.store_type, "FILE");
    let ch = &snap.channels[0];
    assert_eq!(
        (ch.name.as_str(), ch.first_seq, ch.last_seq, ch.msgs),
        ("ch", 1, 10, 10)
    );
    assert_eq!(ch.subs.len(), 2);
    let url = b.client_url();
    // The same client IDs come back (the recovered clients are replaced).
    let mut c1 = Conn::connect(&url, "file-test", "c1").await;
    let c2 = Conn::connect(&url, "file-test", "c2").await;
    let mut d = c1.subscribe(durable(&c1, "ch", "dur")).await.unwrap();
    for want in 6..=10 {
        let m = d.next().await;
        assert_eq!((m.sequence, m.redelivered), (want, true));
        assert_eq!(m.data.as_ref(), &[want as u8]);
        d.ack(want).await;
    }
    let mut q = c2.subscribe(qr).await.unwrap();
    for want in (1..=9).step_by(2) {
        let m = q.next().await;
        assert_eq!((m.sequence, m.redelivered), (want, true));
        q.ack(want).await;
    }
    c1.publish("ch", &[11]).await;
    let m = d.next().await;
    assert_eq!((m.sequence, m.redelivered), (11, false));
    let m = q.next().await;
    assert_eq!((m.sequence, m.redelivered), (11, false));
    d.expect_nothing(Duration::from_millis(200)).await;
    q.expect_nothing(Duration::from_millis(50)).await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn recovered_channels_keep_their_max_age() {
    let dir = fresh_store_dir();
    let age = |c: &mut BrokerConfig| {
        file_cfg(&dir, c);
        c.limits.global.max_age = Some(Duration::from_millis(600));
    };
    let b = stan_test_support::start_broker(age).await;
    let mut c = Conn::connect(&b.client_url(), "file-test", "a").await;
    for i in 0..3u8 {
        c.publish("old", &[i]).await;
    }
    b.shutdown().await;
    drop(c);
    let b = stan_test_support::start_broker(age).await;
    assert_eq!(b.snapshot().await.channels[0].msgs, 3);
    stan_test_support::within_for(Duration::from_secs(5), "recovered messages expire", async {
        while b.snapshot().await.channels[0].msgs != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let sn = b.snapshot().await;
    assert_eq!((sn.channels[0].first_seq, sn.channels[0].last_seq), (4, 3));
    b.shutdown().await;
}

#[tokio::test]
async fn cluster_id_must_match_the_stored_one() {
    let dir = fresh_store_dir();
    let b = stan_test_support::start_broker(|c| file_cfg(&dir, c)).await;
    b.shutdown().await;
    let mut cfg = BrokerConfig::for_tests();
    file_cfg(&dir, &mut cfg);
    cfg.cluster_id = "other".into();
    let e = stan_broker::Broker::start(cfg)
        .await
        .err()
        .expect("refused");
    assert!(
        e.to_string()
            .contains("does not match recovered value of \"file-test\""),
        "{e}"
    );
}

/// The broker binary, with its stdout ready line read.
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    // The child is waited for by `Drop`.
    #[allow(clippy::zombie_processes)]
    fn start(dir: &Path, extra: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .args(["-st", "FILE", "--dir"])
            .arg(dir)
            .args(["-p", "0", "-cid", "crash"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn broker");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap_or(0) == 0 || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("broker exited before it was ready");
            }
            if let Some(p) = Ports::from_line(line.trim()) {
                // Keep draining stdout so the broker never blocks on it.
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    while out.read_line(&mut sink).unwrap_or(0) > 0 {
                        sink.clear();
                    }
                });
                return Proc {
                    child,
                    url: p.nats[0].clone(),
                };
            }
        }
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn sigterm(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw STAN session that never panics (the broker may die under it).
struct Raw {
    nc: async_nats::Client,
    resp: pb::ConnectResponse,
    client_id: String,
    conn_id: Bytes,
}

async fn raw_connect(url: &str, client_id: &str) -> Option<Raw> {
    let nc = async_nats::connect(url).await.ok()?;
    let hb = new_inbox();
    let mut hb_sub = nc.subscribe(hb.clone()).await.ok()?;
    let nc2 = nc.clone();
    tokio::spawn(async move {
        while let Some(m) = hb_sub.next().await {
            if let Some(r) = m.reply {
                let _ = nc2.publish(r, Bytes::new()).await;
            }
        }
    });
    let req = connect_request(client_id, &hb);
    let m = tokio::time::timeout(
        Duration::from_secs(5),
        nc.request("_STAN.discover.crash", req.encode_to_vec().into()),
    )
    .await
    .ok()?
    .ok()?;
    let resp = pb::ConnectResponse::decode(m.payload).ok()?;
    if !resp.error.is_empty() {
        return None;
    }
    Some(Raw {
        nc,
        resp,
        client_id: client_id.into(),
        conn_id: req.conn_id,
    })
}

/// Publishes `k:n` with n counting up from `next[k]`, one at a time, recording acked ones.
async fn publisher(
    raw: Raw,
    k: usize,
    next: Arc<Mutex<Vec<u64>>>,
    acked: Arc<Mutex<Vec<(usize, u64)>>>,
) {
    let inbox = new_inbox();
    let Ok(mut acks) = raw.nc.subscribe(inbox.clone()).await else {
        return;
    };
    loop {
        let n = next.lock().unwrap()[k];
        next.lock().unwrap()[k] += 1;
        let guid = new_nuid();
        let m = pb::PubMsg {
            client_id: raw.client_id.clone(),
            guid: guid.clone(),
            subject: "crash".into(),
            data: Bytes::from(format!("{k}:{n}")),
            conn_id: raw.conn_id.clone(),
            ..Default::default()
        };
        let subject = format!("{}.crash", raw.resp.pub_prefix);
        if raw
            .nc
            .publish_with_reply(subject, inbox.clone(), m.encode_to_vec().into())
            .await
            .is_err()
        {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(2), acks.next()).await {
            Ok(Some(a)) => match pb::PubAck::decode(a.payload) {
                Ok(a) if a.guid == guid && a.error.is_empty() => acked.lock().unwrap().push((k, n)),
                _ => return,
            },
            _ => return,
        }
    }
}

/// The durable subscriber: records every sequence it receives and acks it.
async fn durable_reader(raw: Raw, seen: Arc<Mutex<BTreeSet<u64>>>, last_recv: Arc<Mutex<Instant>>) {
    let inbox = new_inbox();
    let Ok(mut msgs) = raw.nc.subscribe(inbox.clone()).await else {
        return;
    };
    let req = pb::SubscriptionRequest {
        client_id: raw.client_id.clone(),
        subject: "crash".into(),
        inbox,
        max_in_flight: 512,
        ack_wait_in_secs: 30,
        durable_name: "dur".into(),
        start_position: pb::StartPosition::First as i32,
        ..Default::default()
    };
    let Ok(Ok(m)) = tokio::time::timeout(
        Duration::from_secs(5),
        raw.nc
            .request(raw.resp.sub_requests.clone(), req.encode_to_vec().into()),
    )
    .await
    else {
        return;
    };
    let Ok(resp) = pb::SubscriptionResponse::decode(m.payload) else {
        return;
    };
    if !resp.error.is_empty() {
        return;
    }
    while let Some(m) = msgs.next().await {
        let Ok(mp) = pb::MsgProto::decode(m.payload) else {
            continue;
        };
        seen.lock().unwrap().insert(mp.sequence);
        *last_recv.lock().unwrap() = Instant::now();
        let ack = pb::Ack {
            subject: "crash".into(),
            sequence: mp.sequence,
        };
        if raw
            .nc
            .publish(resp.ack_inbox.clone(), ack.encode_to_vec().into())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Every message of channel "crash" in the store at `dir` (sequence → payload).
async fn read_store(dir: &Path) -> (u64, HashMap<u64, String>) {
    let mut st = FileStore::new(dir, StoreLimits::default(), FileStoreOptions::default());
    let mut r = st
        .recover()
        .await
        .expect("recover")
        .expect("a stored state");
    let ch = r
        .channels
        .iter_mut()
        .find(|c| c.name == "crash")
        .expect("channel");
    let m = &ch.store.msgs;
    let (first, last) = (m.first_sequence(), m.last_sequence());
    assert_eq!(first, 1, "nothing may be dropped");
    let mut out = HashMap::new();
    for seq in first..=last {
        let msg = m
            .lookup(seq)
            .unwrap_or_else(|| panic!("sequence {seq} of {last} missing"));
        out.insert(seq, String::from_utf8_lossy(&msg.data).into_owned());
    }
    (last, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_an_acknowledged_message() {
    const PUBLISHERS: usize = 4;
    const ROUNDS: usize = 6;
    let dir: PathBuf = fresh_store_dir();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    let mut rng = seed | 1;
    let mut rand_ms = |lo: u64, hi: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        lo + rng % (hi - lo)
    };
    let next = Arc::new(Mutex::new(vec![0u64; PUBLISHERS]));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let last_recv = Arc::new(Mutex::new(Instant::now()));
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut p = Proc::start(&dir, &[]);
        let mut tasks = Vec::new();
        for k in 0..PUBLISHERS {
            if let Some(raw) = raw_connect(&p.url, &format!("p{k}-r{round}")).await {
                tasks.push(tokio::spawn(publisher(raw, k, next.clone(), acked.clone())));
            }
        }
        if let Some(raw) = raw_connect(&p.url, "sub").await {
            tasks.push(tokio::spawn(durable_reader(
                raw,
                seen.clone(),
                last_recv.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_millis(rand_ms(300, 1500))).await;
        p.sigkill();
        for t in tasks {
            t.abort();
        }
    }
    // A last, clean run: the durable catches up with everything stored.
    let mut p = Proc::start(&dir, &[]);
    let raw = raw_connect(&p.url, "sub")
        .await
        .expect("connect after the crashes");
    *last_recv.lock().unwrap() = Instant::now();
    let reader = tokio::spawn(durable_reader(raw, seen.clone(), last_recv.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while last_recv.lock().unwrap().elapsed() < Duration::from_millis(1000)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.abort();
    p.sigterm();

    let (last, stored) = read_store(&dir).await;
    let acked = acked.lock().unwrap().clone();
    let by_payload: HashMap<&str, u64> = stored.iter().map(|(s, p)| (p.as_str(), *s)).collect();
    // Every acknowledged message is stored, and each publisher's messages are in order.
    let mut last_seq_of = [0u64; PUBLISHERS];
    let mut sorted = acked.clone();
    sorted.sort();
    for (k, n) in &sorted {
        let payload = format!("{k}:{n}");
        let seq = *by_payload
            .get(payload.as_str())
            .unwrap_or_else(|| panic!("acknowledged message {payload} lost (seed {seed})"));
        assert!(
            seq > last_seq_of[*k],
            "{payload} out of order (seed {seed})"
        );
        last_seq_of[*k] = seq;
    }
    // The durable saw every stored message (duplicates allowed, no gap).
    let seen = seen.lock().unwrap().clone();
    let missing: Vec<u64> = (1..=last).filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "durable never got {missing:?} of 1..={last} (seed {seed})"
    );
    eprintln!(
        "crash test: {ROUNDS} SIGKILL rounds, {} acked publishes, {last} stored messages, \
         durable saw {} distinct, {:?} total (seed {seed})",
        acked.len(),
        seen.len(),
        started.elapsed()
    );
    assert!(
        acked.len() > 50,
        "too few publishes acknowledged: {}",
        acked.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_broker_on_the_same_directory_is_refused() {
    let dir = fresh_store_dir();
    let _first = Proc::start(&dir, &[]);
    let o = Command::new(BIN)
        .args(["-st", "FILE", "--dir"])
        .arg(&dir)
        .args(["-p", "0", "-cid", "crash"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use by another process"), "{err}");
}

#[test]
fn check_subcommand_reports_and_repairs() {
    let dir = fresh_store_dir();
    {
        let mut p = Proc::start(&dir, &[]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut c = Conn::connect(&p.url, "crash", "w").await;
            for i in 0..5u8 {
                c.publish("chk", &[i]).await;
            }
        });
        p.sigterm();
    }
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["check", "--dir"])
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("channel \"chk\" slice 1: sequences 1..5 (5 records)"),
        "{out}"
    );
    assert!(
        out.contains("summary: 0 error(s), 0 repair(s) needed"),
        "{out}"
    );
    // Tear the last record.
    let data = dir.join("channels/chk/msgs.1.dat");
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let o = run(&[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("would"), "{out}");
    assert_eq!(
        std::fs::metadata(&data).unwrap().len(),
        len - 2,
        "check alone changes nothing"
    );
    let o = run(&["--repair"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("repaired"), "{out}");
    let o = run(&[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Usage errors.
    let o = Command::new(BIN).args(["check"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// Publishes `per_pub` messages of 128 bytes from each of `publishers` raw clients, each with
/// up to 256 PubAcks outstanding; returns messages per second.
async fn publish_rate(url: &str, cluster: &str, publishers: usize, per_pub: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..publishers {
        let c = Conn::connect(url, cluster, &format!("bench{k}")).await;
        tasks.push(tokio::spawn(async move {
            let mut c = c;
            let window = 256;
            let mut out = 0usize;
            let mut sent = 0usize;
            let data = [b'x'; 128];
            while sent < per_pub || out > 0 {
                while sent < per_pub && out < window {
                    c.publish_async("bench", &data).await;
                    sent += 1;
                    out += 1;
                }
                let a = c.next_pub_ack().await;
                assert!(a.error.is_empty(), "{}", a.error);
                out -= 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (publishers * per_pub) as f64 / start.elapsed().as_secs_f64()
}

/// Publish throughput, MEMORY vs FILE with sync on and off, 1 and 4 publishers.
/// `cargo test --release -p stan-broker --test file_store -- --ignored --nocapture throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn throughput() {
    for (label, store) in [
        ("MEMORY", None),
        ("FILE sync", Some(true)),
        ("FILE nosync", Some(false)),
    ] {
        for publishers in [1, 4] {
            let dir = fresh_store_dir();
            let b = stan_test_support::start_broker(|c| {
                c.cluster_id = "bench".into();
                c.limits.global.max_msgs = Some(0);
                c.limits.global.max_bytes = Some(0);
                if let Some(sync) = store {
                    c.store = StoreKind::File(dir.clone());
                    c.file.sync = sync;
                }
            })
            .await;
            let rate =
                publish_rate(&b.client_url(), "bench", publishers, 40_000 / publishers).await;
            eprintln!("throughput {label:12} {publishers} publisher(s): {rate:>9.0} msgs/s");
            b.shutdown().await;
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_survive_a_lost_server_file() {
    let dir = fresh_store_dir();
    let b = stan_test_support::start_broker(|c| file_cfg(&dir, c)).await;
    let mut c = Conn::connect(&b.client_url(), "file-test", "c1").await;
    for i in 1..=3u8 {
        c.publish("kept", &[i]).await;
    }
    b.shutdown().await;
    drop(c);
    std::fs::remove_file(dir.join("server.dat")).unwrap();

    let b = stan_test_support::start_broker(|c| file_cfg(&dir, c)).await;
    let snap = b.snapshot().await;
    let ch = &snap.channels[0];
    assert_eq!((ch.name.as_str(), ch.msgs, ch.last_seq), ("kept", 3, 3));
    assert!(dir.join("server.dat").exists(), "server info written anew");
    let c = Conn::connect(&b.client_url(), "file-test", "c2").await;
    let mut s = c.subscribe(durable(&c, "kept", "d")).await.unwrap();
    assert_eq!(s.next_seqs(3).await, vec![1, 2, 3]);
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Publish→deliver latency on channel "lat" (one message at a time, every millisecond) until
/// `n` samples are taken or `stop` is set.
async fn latency_samples(
    c: &mut Conn,
    sub: &mut TestSub,
    n: usize,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<Duration> {
    let mut v = Vec::with_capacity(n.min(100_000));
    while v.len() < n && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        c.publish_async("lat", b"x").await;
        let m = sub.next().await;
        v.push(t.elapsed());
        let a = c.next_pub_ack().await;
        assert!(a.error.is_empty(), "{}", a.error);
        let ack = pb::Ack {
            subject: "lat".into(),
            sequence: m.sequence,
        };
        c.nc.publish(sub.ack_inbox.clone(), ack.encode_to_vec().into())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    v
}

fn percentiles(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    eprintln!(
        "{label:28} n={:5} p50={:>8.3?} p99={:>8.3?} max={:>8.3?}",
        v.len(),
        at(0.5),
        at(0.99),
        v[v.len() - 1]
    );
}

/// Whether a cold replay (a new subscriber reading a 200k-message channel from sequence 1,
/// max in flight 1024, acking every message) stalls other channels: publish→deliver latency of
/// another channel without and during the replay.
/// `cargo test --release -p stan-broker --test file_store -- --ignored --nocapture cold_replay`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn cold_replay_latency() {
    const N: u64 = 200_000;
    let dir = fresh_store_dir();
    let b = stan_test_support::start_broker(|c| {
        file_cfg(&dir, c);
        c.file.sync = false;
        c.limits.global.max_msgs = Some(0);
        c.limits.global.max_bytes = Some(0);
    })
    .await;
    let url = b.client_url();
    let mut filler = Conn::connect(&url, "file-test", "filler").await;
    let data = [b'x'; 128];
    let (mut sent, mut out) = (0u64, 0u64);
    while sent < N || out > 0 {
        while sent < N && out < 256 {
            filler.publish_async("big", &data).await;
            sent += 1;
            out += 1;
        }
        assert!(filler.next_pub_ack().await.error.is_empty());
        out -= 1;
    }
    let mut c = Conn::connect(&url, "file-test", "lat").await;
    let mut lat = c.subscribe(c.sub_req("lat")).await.unwrap();
    let never = std::sync::atomic::AtomicBool::new(false);
    let idle = latency_samples(&mut c, &mut lat, 1000, &never).await;
    percentiles("idle", idle);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replayer = Conn::connect(&url, "file-test", "replayer").await;
    let mut req = replayer.sub_req("big");
    req.start_position = pb::StartPosition::First as i32;
    let mut r = replayer.subscribe(req).await.unwrap();
    let done = stop.clone();
    let replay = tokio::spawn(async move {
        let start = Instant::now();
        for want in 1..=N {
            let m = r.next().await;
            assert_eq!(m.sequence, want);
            let ack = pb::Ack {
                subject: "big".into(),
                sequence: m.sequence,
            };
            replayer
                .nc
                .publish(r.ack_inbox.clone(), ack.encode_to_vec().into())
                .await
                .unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        start.elapsed()
    });
    let during = latency_samples(&mut c, &mut lat, usize::MAX, &stop).await;
    let took = replay.await.unwrap();
    percentiles("during a cold replay", during);
    eprintln!(
        "replay of {N} messages: {took:.2?} ({:.0} msgs/s)",
        N as f64 / took.as_secs_f64()
    );
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Redelivery counts survive a restart (official servers reset them): a plain subscription and
/// a queue member receive message 1 without acking it, it is redelivered twice, the broker
/// restarts on the same directory, and the next redelivery carries count 3. The broker is
/// attached to an external `nats-server` (skipped when none is installed), so the client's
/// connection and delivery inboxes outlive the restart, as with a real client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_count_survives_a_restart() {
    let Some(n) = start_nats_server().await else {
        return;
    };
    let dir = fresh_store_dir();
    let b = start_external_broker(&n, |c| file_cfg(&dir, c)).await;
    let mut c = Conn::connect(&b.client_url(), "file-test", "rc").await;
    let mut req = c.sub_req("ch");
    req.ack_wait_in_secs = -1000;
    let mut s = c.subscribe(req.clone()).await.unwrap();
    req.inbox = new_inbox();
    req.q_group = "grp".into();
    let mut q = c.subscribe(req).await.unwrap();
    c.publish("ch", b"x").await;
    for want in 0..=2 {
        for sub in [&mut s, &mut q] {
            let m = sub.next().await;
            assert_eq!(
                (m.sequence, m.redelivered, m.redelivery_count),
                (1, want > 0, want)
            );
        }
    }
    b.shutdown().await;

    let b = start_external_broker(&n, |c| file_cfg(&dir, c)).await;
    for sub in [&mut s, &mut q] {
        let m = sub.next().await;
        assert_eq!(
            (m.sequence, m.redelivered, m.redelivery_count),
            (1, true, 3)
        );
        sub.ack(1).await;
    }
    s.expect_nothing(Duration::from_millis(1300)).await;
    q.expect_nothing(Duration::from_millis(50)).await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

//! Replays the committed fuzz inputs of the broker's targets (`fuzz/`, see `docs/fuzzing.md`)
//! through the same entry points the fuzz targets call: seeds, the minimised corpus and every
//! input that once crashed must run without a panic.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use stan_broker::config::{FileStoreOptions, StoreLimits};
use stan_broker::store::file::FileStore;
use stan_broker::store::{ClientRecord, ServerInfo, Store, SubRecord};
use stan_protocol::pb;
use stan_protocol::subjects::ServerSubjects;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file of the target's seed, corpus and regression directories.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["seeds", "corpus", "regressions"] {
        let Ok(rd) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        for e in rd {
            let path = e.expect("corpus directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no fuzz inputs for {target}");
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("read fuzz input");
        let r = std::panic::catch_unwind(|| run(&data));
        assert!(r.is_ok(), "fuzz input {} panics", path.display());
    }
}

#[test]
fn conf_parser_corpus() {
    replay("conf_parser", stan_broker::conf::fuzz_parse);
}

#[test]
fn store_recover_corpus() {
    replay("store_recover", stan_broker::store::file::fuzz_recover);
}

#[test]
fn engine_requests_corpus() {
    replay("engine_requests", stan_broker::engine::fuzz_requests);
}

/// Files of a store directory in the order of `fuzz_recover`'s selectors.
const STORE_FILES: [&str; 9] = [
    "server.dat",
    "clients.dat",
    "channels/foo/msgs.1.dat",
    "channels/foo/msgs.1.idx",
    "channels/foo/subs.dat",
    "channels/foo/state.dat",
    "channels/foo/msgs.2.dat",
    "channels/foo/msgs.2.idx",
    "channels/bar/msgs.1.dat",
];

/// One `fuzz_recover` chunk: selector, length (u16 LE), bytes.
fn chunk(out: &mut Vec<u8>, selector: u8, body: &[u8]) {
    let len = u16::try_from(body.len()).expect("a seed file under 64 KiB");
    out.push(selector);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
}

/// A real store directory (channels `foo` and `bar`, a client, a subscription with a pending
/// and an acked message), packed as a `fuzz_recover` input. With `small_slices` the messages
/// of `foo` span two slices and the oldest is dropped by `max_msgs` (a state file).
fn store_seed(small_slices: bool) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!(
        "stan-fuzz-seed-{}-{small_slices}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut limits = StoreLimits::default();
    let mut opts = FileStoreOptions {
        sync: false,
        ..FileStoreOptions::default()
    };
    if small_slices {
        opts.slice_max_msgs = 2;
        limits.global.max_msgs = Some(3);
    }
    let mut store = FileStore::new(&dir, limits, opts);
    futures::executor::block_on(store.recover()).expect("recover an empty directory");
    store
        .init(&ServerInfo {
            cluster_id: "test-cluster".into(),
            node_id: String::new(),
            subjects: ServerSubjects::new("test-cluster", "_STAN.discover"),
        })
        .unwrap();
    for id in ["c1", "c2"] {
        store
            .add_client(&ClientRecord {
                id: id.into(),
                hb_inbox: format!("_INBOX.hb.{id}"),
                conn_id: Bytes::from(format!("conn-{id}")),
                protocol: 1,
                ping_interval: 5,
                ping_max_out: 3,
                resends_publishes: false,
            })
            .unwrap();
    }
    store.delete_client("c2").unwrap();
    for name in ["foo", "bar"] {
        let mut ch = store.create_channel(name).unwrap();
        let n = if name == "foo" && small_slices { 4 } else { 2 };
        for i in 0..n {
            ch.msgs
                .store(pb::MsgProto {
                    subject: name.into(),
                    reply: "r".into(),
                    data: Bytes::from(vec![b'a' + i; 3]),
                    timestamp: 1_700_000_000_000_000_000 + i64::from(i),
                    ..Default::default()
                })
                .unwrap();
        }
        futures::executor::block_on(ch.msgs.flush()).unwrap();
        if name == "foo" {
            let sub = SubRecord {
                id: 1,
                client_id: "c1".into(),
                inbox: "_INBOX.sub".into(),
                ack_inbox: "_INBOX.ack1".into(),
                max_in_flight: 10,
                ack_wait_in_secs: 30,
                durable_name: "dur".into(),
                last_sent: 2,
                is_durable: true,
                ..Default::default()
            };
            ch.subs.create_sub(&sub).unwrap();
            ch.subs.add_seq_pending(1, 1).unwrap();
            ch.subs.add_seq_pending(1, 2).unwrap();
            ch.subs.ack_seq_pending(1, 1).unwrap();
            futures::executor::block_on(ch.subs.flush()).unwrap();
        }
    }
    futures::executor::block_on(store.flush()).unwrap();
    futures::executor::block_on(store.close()).unwrap();
    drop(store);
    let mut out = Vec::new();
    for (i, name) in STORE_FILES.iter().enumerate() {
        if let Ok(body) = std::fs::read(dir.join(name)) {
            chunk(&mut out, i as u8, &body);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// One `fuzz_requests` request: route byte, length (u16 LE), payload.
fn request(out: &mut Vec<u8>, route: u8, msg: &impl Message) {
    chunk(out, route, &msg.encode_to_vec());
}

/// Valid requests on each route, in `fuzz_requests`' format.
fn engine_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (connect, ping, publish, subscribe, unsub, sub_close, close, ack1) =
        (0u8, 1u8, 2u8, 3u8, 4u8, 5u8, 6u8, 7u8 | (1 << 4));
    let conn = pb::ConnectRequest {
        client_id: "d".into(),
        heartbeat_inbox: "_INBOX.hbd".into(),
        protocol: 1,
        conn_id: Bytes::from_static(b"connd"),
        ping_interval: 5,
        ping_max_out: 3,
        resends_publishes: false,
    };
    let sub = pb::SubscriptionRequest {
        client_id: "c".into(),
        subject: "foo".into(),
        q_group: "q".into(),
        inbox: "_INBOX.q".into(),
        max_in_flight: 5,
        ack_wait_in_secs: 1,
        durable_name: "dur".into(),
        start_position: pb::StartPosition::First as i32,
        ..Default::default()
    };
    let publ = pb::PubMsg {
        client_id: "c".into(),
        guid: "g1".into(),
        subject: "foo".into(),
        reply: String::new(),
        data: Bytes::from_static(b"hello"),
        conn_id: Bytes::from_static(b"conn"),
        ..Default::default()
    };
    let ack = pb::Ack {
        subject: "foo".into(),
        sequence: 1,
    };
    let unsub_req = pb::UnsubscribeRequest {
        client_id: "c".into(),
        subject: "foo".into(),
        inbox: "_INBOX.ack1".into(),
        durable_name: String::new(),
    };
    let mut all = Vec::new();
    request(&mut all, connect, &conn);
    request(
        &mut all,
        ping,
        &pb::Ping {
            conn_id: Bytes::from_static(b"connd"),
        },
    );
    request(&mut all, publish, &publ);
    request(&mut all, subscribe, &sub);
    request(&mut all, ack1, &ack);
    request(&mut all, unsub, &unsub_req);
    request(&mut all, sub_close, &unsub_req);
    request(
        &mut all,
        close,
        &pb::CloseRequest {
            client_id: "d".into(),
        },
    );
    let one = |route, msg: &dyn Fn(&mut Vec<u8>, u8)| {
        let mut v = Vec::new();
        msg(&mut v, route);
        v
    };
    vec![
        ("all_routes", all),
        ("connect", one(connect, &|v, r| request(v, r, &conn))),
        ("publish", one(publish, &|v, r| request(v, r, &publ))),
        ("subscribe", one(subscribe, &|v, r| request(v, r, &sub))),
        ("ack", one(ack1, &|v, r| request(v, r, &ack))),
        ("unsubscribe", one(unsub, &|v, r| request(v, r, &unsub_req))),
        (
            "close",
            one(close, &|v, r| {
                request(
                    v,
                    r,
                    &pb::CloseRequest {
                        client_id: "c".into(),
                    },
                )
            }),
        ),
    ]
}

/// Writes the seeds of `store_recover` and `engine_requests` into `fuzz/seeds/` (run by hand
/// when a format changes: `cargo test -p stan-broker --test fuzz_corpus -- --ignored`).
#[test]
#[ignore = "writes fuzz/seeds; run by hand when a format changes"]
fn write_seeds() {
    let store_dir = fuzz_dir().join("seeds/store_recover");
    std::fs::create_dir_all(&store_dir).unwrap();
    std::fs::write(store_dir.join("two_channels"), store_seed(false)).unwrap();
    std::fs::write(store_dir.join("two_slices_state"), store_seed(true)).unwrap();
    let engine_dir = fuzz_dir().join("seeds/engine_requests");
    std::fs::create_dir_all(&engine_dir).unwrap();
    for (name, data) in engine_seeds() {
        std::fs::write(engine_dir.join(name), data).unwrap();
    }
}

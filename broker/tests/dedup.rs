//! The de-duplication window (`--dedup_window`): a publish re-sent with the guid of one stored
//! within the window is acknowledged like the original and not stored again; after the window,
//! or with the window off, it is stored again. With the FILE store the window survives a
//! restart. The window is advertised in the ConnectResponse.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use prost::Message;
use stan_broker::config::{BrokerConfig, StoreKind, DEFAULT_DEDUP_WINDOW};
use stan_broker::Broker;
use stan_protocol::pb;
use stan_protocol::subjects::new_nuid;

/// Publishes and asserts a successful PubAck for that guid.
async fn publish_ok(c: &mut Conn, channel: &str, guid: &str, data: &[u8]) {
    let ack = c.publish_guid(channel, guid, data).await;
    assert_eq!(
        ack,
        pb::PubAck {
            guid: guid.into(),
            error: String::new()
        }
    );
}

/// The payloads stored in `channel`, in order (as many as the channel's last sequence says).
async fn stored(b: &Broker, c: &Conn, channel: &str) -> Vec<Vec<u8>> {
    let snap = b.snapshot().await;
    let ch = snap.channels.iter().find(|ch| ch.name == channel).unwrap();
    assert_eq!(ch.msgs, ch.last_seq, "nothing removed");
    let mut req = c.sub_req(channel);
    req.start_position = pb::StartPosition::First as i32;
    let mut sub = c.subscribe(req).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..ch.last_seq {
        out.push(sub.next().await.data.to_vec());
    }
    out
}

fn window(d: Duration) -> impl FnOnce(&mut BrokerConfig) {
    move |cfg| cfg.dedup_window = d
}

async fn connect(b: &Broker, id: &str) -> Conn {
    Conn::connect(&b.client_url(), &b.config().cluster_id, id).await
}

#[tokio::test]
async fn resent_guid_is_stored_once_within_the_window_and_again_after_it() {
    let w = Duration::from_millis(400);
    let b = start_broker(window(w)).await;
    let mut c = connect(&b, "c").await;
    assert_eq!(c.resp.dedup_window_ms, 400);
    let g1 = new_nuid();
    publish_ok(&mut c, "ch", &g1, b"one").await;
    // Re-sent (same guid, same or other content): acknowledged, not stored.
    publish_ok(&mut c, "ch", &g1, b"one").await;
    publish_ok(&mut c, "ch", &g1, b"one again").await;
    publish_ok(&mut c, "ch", &new_nuid(), b"two").await;
    // The same guid on another channel is another publish.
    publish_ok(&mut c, "other", &g1, b"elsewhere").await;
    assert_eq!(
        stored(&b, &c, "ch").await,
        [b"one".to_vec(), b"two".to_vec()]
    );
    assert_eq!(stored(&b, &c, "other").await, [b"elsewhere".to_vec()]);
    // After the window the guid is forgotten (nothing to await but the time passing).
    tokio::time::sleep(w + Duration::from_millis(100)).await;
    publish_ok(&mut c, "ch", &g1, b"one, later").await;
    assert_eq!(
        stored(&b, &c, "ch").await,
        [b"one".to_vec(), b"two".to_vec(), b"one, later".to_vec()]
    );
    b.shutdown().await;
}

#[tokio::test]
async fn dedup_off_stores_a_resent_guid_twice() {
    let b = start_broker(window(Duration::ZERO)).await;
    let mut c = connect(&b, "c").await;
    assert_eq!(c.resp.dedup_window_ms, 0);
    let g = new_nuid();
    publish_ok(&mut c, "ch", &g, b"one").await;
    publish_ok(&mut c, "ch", &g, b"one").await;
    assert_eq!(
        stored(&b, &c, "ch").await,
        [b"one".to_vec(), b"one".to_vec()]
    );
    b.shutdown().await;
}

#[tokio::test]
async fn default_window_is_advertised() {
    let b = start_broker(|_| {}).await;
    let c = connect(&b, "c").await;
    assert_eq!(
        c.resp.dedup_window_ms,
        DEFAULT_DEDUP_WINDOW.as_millis() as u64
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_survives_a_file_store_restart() {
    let dir = fresh_store_dir();
    let file = |cfg: &mut BrokerConfig| {
        cfg.store = StoreKind::File(dir.clone());
        cfg.cluster_id = "dedup-file".into();
    };
    let b = stan_test_support::start_broker(file).await;
    let mut c = connect(&b, "c").await;
    let (g1, g2) = (new_nuid(), new_nuid());
    publish_ok(&mut c, "ch", &g1, b"one").await;
    publish_ok(&mut c, "ch", &g2, b"two").await;
    drop(c);
    b.shutdown().await;

    let b = stan_test_support::start_broker(file).await;
    // A new registration (another connID) re-sends both: acknowledged, not stored.
    let mut c = connect(&b, "c2").await;
    publish_ok(&mut c, "ch", &g2, b"two").await;
    publish_ok(&mut c, "ch", &g1, b"one").await;
    publish_ok(&mut c, "ch", &new_nuid(), b"three").await;
    // Deliveries carry the message as published: the stored guid is not part of it.
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::First as i32;
    let mut sub = c.subscribe(req).await.unwrap();
    let first = sub.next().await;
    assert_eq!(&first.data[..], b"one");
    let mut plain = first.clone();
    plain.timestamp = 0;
    assert_eq!(
        plain,
        pb::MsgProto {
            sequence: 1,
            subject: "ch".into(),
            data: Bytes::from_static(b"one"),
            ..Default::default()
        }
    );
    assert_eq!(
        stored(&b, &c, "ch").await,
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    b.shutdown().await;
}

fn load(args: &[&str]) -> Result<BrokerConfig, String> {
    let cli = stan_broker::cli::parse_args(args.iter().copied()).map_err(|e| e.to_string())?;
    stan_broker::options::Options::load(&cli)
        .map(|o| o.broker)
        .map_err(|e| e.to_string())
}

#[test]
fn dedup_window_from_flags_and_config_files() {
    assert_eq!(load(&[]).unwrap().dedup_window, DEFAULT_DEDUP_WINDOW);
    assert_eq!(
        load(&["--dedup_window", "30s"]).unwrap().dedup_window,
        Duration::from_secs(30)
    );
    assert_eq!(
        load(&["--dedup_window=1m30s"]).unwrap().dedup_window,
        Duration::from_secs(90)
    );
    assert_eq!(
        load(&["-dedup_window", "0"]).unwrap().dedup_window,
        Duration::ZERO
    );
    let err = load(&["--dedup_window", "soon"]).unwrap_err();
    assert!(err.contains("soon"), "{err}");

    let path = std::env::temp_dir().join(format!("dedup-{}.conf", new_nuid()));
    std::fs::write(&path, "streaming {\n  dedup_window: \"45s\"\n}\n").unwrap();
    let file = path.to_str().unwrap();
    assert_eq!(
        load(&["-sc", file]).unwrap().dedup_window,
        Duration::from_secs(45)
    );
    // The command line wins over the file.
    assert_eq!(
        load(&["-sc", file, "--dedup_window", "5s"])
            .unwrap()
            .dedup_window,
        Duration::from_secs(5)
    );
    std::fs::write(&path, "streaming {\n  dedup_window: true\n}\n").unwrap();
    let err = load(&["-sc", file]).unwrap_err();
    assert!(err.contains("dedup_window"), "{err}");
    let _ = std::fs::remove_file(&path);
}

/// Registers `id` with `resends_publishes` set as given; returns the connection.
async fn register(b: &Broker, id: &str, resends: bool) -> async_nats::Client {
    let nc = nats(&b.client_url()).await;
    let mut req = connect_request(id, &format!("_INBOX.hb.{id}"));
    req.resends_publishes = resends;
    let resp: pb::ConnectResponse = request(
        &nc,
        &format!("_STAN.discover.{}", b.config().cluster_id),
        req.encode_to_vec().into(),
    )
    .await;
    assert_eq!(resp.error, "");
    nc
}

async fn registered(b: &Broker) -> Vec<String> {
    b.snapshot()
        .await
        .clients
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_sending_clients_are_not_restored_after_a_restart_while_the_window_is_on() {
    for (window, restored) in [
        (DEFAULT_DEDUP_WINDOW, vec!["official"]),
        (Duration::ZERO, vec!["official", "resender"]),
    ] {
        let dir = fresh_store_dir();
        let file = |cfg: &mut BrokerConfig| {
            cfg.store = StoreKind::File(dir.clone());
            cfg.cluster_id = "dedup-file".into();
            cfg.hb_interval = Duration::from_secs(60);
            cfg.dedup_window = window;
        };
        let b = stan_test_support::start_broker(file).await;
        let _a = register(&b, "official", false).await;
        let _b = register(&b, "resender", true).await;
        assert_eq!(registered(&b).await, ["official", "resender"]);
        b.shutdown().await;
        let b = stan_test_support::start_broker(file).await;
        assert_eq!(registered(&b).await, restored, "window {window:?}");
        b.shutdown().await;
        // Not restored again on the next start either (its record was deleted).
        let b = stan_test_support::start_broker(file).await;
        assert_eq!(registered(&b).await, restored, "window {window:?}");
        b.shutdown().await;
    }
}

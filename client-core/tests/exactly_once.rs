//! Publishes across a lost session: with a server that de-duplicates re-sent guids (the
//! broker's `--dedup_window`), in-flight publishes are re-sent on resume and stored exactly
//! once, in order; without one they fail as lost, as before. And a close during a resume
//! still closes the registration on the server.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{next_msg, unique, wait_event, within, TestServer};
use stan_client::{Client, ConnectOptions, ErrorKind, Event, PublishAckFuture, SubscribeOptions};
use stan_test_support::{wait_until, within_for, BrokerProcess, ProcessOptions, Proxy};

/// Messages per publisher.
const PER_PUBLISHER: usize = 6000;
/// Acknowledged publishes (of the first publisher) before the broker is killed.
const ACKED_BEFORE_KILL: usize = 1500;

fn store_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("exactly-once")
        .join(unique("d"));
    std::fs::create_dir_all(&d).expect("create store dir");
    d
}

fn broker_process(args: &[&str]) -> BrokerProcess {
    if std::env::var_os("RUST_LOG").is_some() {
        stan_test_support::init_tracing();
    }
    BrokerProcess::start_with(ProcessOptions {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("stan-broker (cargo build -p stan-broker): {e}"))
}

async fn connect(broker: &BrokerProcess, id: &str) -> Client {
    ConnectOptions::new(broker.cluster_id(), id)
        .nats_url(broker.url())
        .pub_ack_wait(Duration::from_secs(60))
        .connect()
        .await
        .unwrap()
}

/// Awaits `futs` in order, counting the successes in `acked`; returns every outcome.
async fn await_all(
    futs: Vec<PublishAckFuture>,
    acked: Arc<AtomicUsize>,
) -> Vec<stan_client::Result<String>> {
    let mut out = Vec::with_capacity(futs.len());
    for f in futs {
        let r = f.await;
        if r.is_ok() {
            acked.fetch_add(1, Ordering::SeqCst);
        }
        out.push(r);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_file_store_broker_during_pipelined_publishing_stores_each_message_once_in_order(
) {
    let dir = store_dir();
    let dir_arg = dir.display().to_string();
    let mut broker = broker_process(&["-st", "FILE", "--dir", &dir_arg]);
    let ch = unique("ch");
    let one = connect(&broker, &unique("one")).await;
    let batch = connect(&broker, &unique("batch")).await;

    // Publisher "one": one future per publish (start_publish), awaited in order.
    let acked = Arc::new(AtomicUsize::new(0));
    let futs: Vec<PublishAckFuture> = (0..PER_PUBLISHER)
        .map(|i| one.start_publish(&ch, format!("one-{i}")).unwrap())
        .collect();
    let one_done = tokio::spawn(await_all(futs, acked.clone()));
    // Publisher "batch": batches of 100 (start_publish_batch).
    let batch_ch = ch.clone();
    let batch_client = batch.clone();
    let batch_done = tokio::spawn(async move {
        let mut outcomes = Vec::new();
        for b in 0..PER_PUBLISHER / 100 {
            let items: Vec<(String, String)> = (0..100)
                .map(|i| (batch_ch.clone(), format!("batch-{}", b * 100 + i)))
                .collect();
            let mut pb = batch_client.start_publish_batch(items).unwrap();
            while let Some(acks) = pb.next_acks().await {
                outcomes.extend(acks.into_iter().map(|(_, r)| r));
            }
        }
        outcomes
    });

    wait_until("publishes acknowledged before the kill", || {
        acked.load(Ordering::SeqCst) >= ACKED_BEFORE_KILL
    })
    .await;
    broker.kill();
    broker.restart().expect("restart the broker");

    let limit = Duration::from_secs(120);
    let one_out = within_for(limit, "publisher one", one_done).await.unwrap();
    let batch_out = within_for(limit, "publisher batch", batch_done)
        .await
        .unwrap();
    for (name, out) in [("one", &one_out), ("batch", &batch_out)] {
        assert_eq!(out.len(), PER_PUBLISHER);
        let failed: Vec<_> = out.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{name}: {} publishes failed, first: {:?}\n{}",
            failed.len(),
            failed.first(),
            broker.logs()
        );
    }

    // The channel holds every message once, in publish order per publisher.
    let reader = connect(&broker, &unique("reader")).await;
    let mut sub = reader
        .subscribe(&ch, SubscribeOptions::new().deliver_all_available())
        .await
        .unwrap();
    let mut next = [0usize; 2];
    for _ in 0..2 * PER_PUBLISHER {
        let m = next_msg(&mut sub).await;
        let text = String::from_utf8(m.data().to_vec()).unwrap();
        let (who, i) = text.split_once('-').unwrap();
        let k = usize::from(who == "batch");
        assert_eq!(
            i.parse::<usize>().unwrap(),
            next[k],
            "{who}: out of order or duplicated at sequence {}",
            m.sequence()
        );
        next[k] += 1;
    }
    // Nothing after them but what is published now.
    reader.publish(&ch, "end").await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!(
        (&m.data()[..], m.sequence()),
        (&b"end"[..], 2 * PER_PUBLISHER as u64 + 1)
    );
    for c in [one, batch, reader] {
        c.close().await.unwrap();
    }
    broker.stop(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(dir);
}

/// Without a dedup window (as with the official server) nothing is re-sent: a publish in
/// flight when the session is lost fails with `ConnectionLost`, at the loss.
#[tokio::test]
async fn without_a_dedup_window_in_flight_publishes_fail_as_lost() {
    let srv = TestServer::start_with(|cfg| cfg.dedup_window = Duration::ZERO).await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .ping_interval_millis_for_tests(100, 2)
        .connect_wait(Duration::from_millis(500))
        .pub_ack_wait(Duration::from_secs(15))
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    client.publish(&ch, "m1").await.unwrap();
    broker.set_frozen(true);
    let in_flight = client.publish_async(&ch, "in flight").await.unwrap();
    wait_event(&mut events, |e| {
        matches!(e, Event::ConnectionLost { resuming: true, .. })
    })
    .await;
    let err = within("in-flight outcome", in_flight).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLost, "{err}");
    broker.set_frozen(false);
    wait_event(&mut events, |e| matches!(e, Event::Resumed { .. })).await;
    client.publish(&ch, "after").await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn close_during_a_resume_closes_the_registration_on_the_server() {
    let srv = TestServer::start_with(|cfg| {
        // The server would keep a silent client registered for a long time.
        cfg.hb_interval = Duration::from_secs(60);
    })
    .await;
    let broker = broker_or_skip!(srv, "inspects the broker's registrations");
    let proxy = Proxy::start(srv.addr()).await;
    let id = unique("c");
    let client = srv
        .options_via(&proxy.url(), &id)
        .ping_interval_millis_for_tests(100, 2)
        .connect_wait(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    proxy.cut();
    wait_event(&mut events, |e| {
        matches!(e, Event::ConnectionLost { resuming: true, .. })
    })
    .await;
    let registered =
        |snap: &stan_broker::snapshot::Snapshot| snap.clients.iter().any(|c| c.id == id);
    assert!(registered(&broker.snapshot().await));

    let closing = {
        let client = client.clone();
        tokio::spawn(async move { client.close().await })
    };
    // The close was taken while the network is still cut.
    wait_until("the client is closed", || client.is_closed()).await;
    proxy.restore();
    within("the close", closing).await.unwrap().unwrap();
    assert!(
        !registered(&broker.snapshot().await),
        "the server still holds the closed client's registration"
    );
}

#[tokio::test]
async fn in_flight_publish_survives_a_lost_session_and_is_stored_once() {
    let srv = TestServer::start().await;
    let broker = broker_or_skip!(srv, "freezes the broker");
    let client = srv
        .options(&unique("c"))
        .ping_interval_millis_for_tests(100, 2)
        .connect_wait(Duration::from_millis(500))
        .pub_ack_wait(Duration::from_secs(15))
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut durable = client
        .subscribe(&ch, SubscribeOptions::durable("d").manual_acks(true))
        .await
        .unwrap();
    client.publish(&ch, "m1").await.unwrap();
    next_msg(&mut durable).await.ack().await.unwrap();

    broker.set_frozen(true);
    let in_flight = client.publish_async(&ch, "in flight").await.unwrap();
    wait_event(&mut events, |e| {
        matches!(e, Event::ConnectionLost { resuming: true, .. })
    })
    .await;
    broker.set_frozen(false);
    wait_event(&mut events, |e| matches!(e, Event::Resumed { .. })).await;
    // Kept across the loss: stored (by the old session or the re-send), acknowledged.
    let guid = in_flight.guid().to_string();
    assert_eq!(within("in-flight ack", in_flight).await.unwrap(), guid);
    client.publish(&ch, "m3").await.unwrap();
    let m = next_msg(&mut durable).await;
    assert_eq!(&m.data()[..], b"in flight");
    m.ack().await.unwrap();
    let m = next_msg(&mut durable).await;
    assert_eq!((&m.data()[..], m.sequence()), (&b"m3"[..], 3));
    client.close().await.unwrap();
}

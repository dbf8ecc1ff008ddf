//! `Broker::set_limits` (the SIGHUP reload path): new limits for channels created afterwards,
//! new effective limits for existing channels from their next publish on, on both stores.

mod common;

use std::time::Duration;

use common::*;
use stan_broker::config::{ChannelLimits, StoreKind};
use stan_broker::Broker;

fn channel(snap: &stan_broker::snapshot::Snapshot, name: &str) -> (u64, u64, Option<usize>) {
    let c = snap
        .channels
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no channel {name}"));
    (c.msgs, c.first_seq, c.limits.max_msgs)
}

async fn scenario(broker: Broker) {
    let mut c = Conn::connect(&broker.client_url(), broker.cluster_id(), "limits-client").await;
    for _ in 0..5 {
        c.publish("old", b"m").await;
    }
    assert_eq!(channel(&broker.snapshot().await, "old"), (5, 1, Some(10)));

    let mut limits = broker.limits();
    limits.global.max_msgs = Some(3);
    limits.channels.insert(
        "new.*".into(),
        ChannelLimits {
            max_msgs: Some(2),
            ..Default::default()
        },
    );
    broker
        .set_limits(limits.clone())
        .await
        .expect("limits applied");
    assert_eq!(broker.limits(), limits);
    // Stored messages stay until the channel's next publish enforces the new limit.
    assert_eq!(channel(&broker.snapshot().await, "old"), (5, 1, Some(3)));
    c.publish("old", b"m").await;
    assert_eq!(channel(&broker.snapshot().await, "old"), (3, 4, Some(3)));
    for _ in 0..3 {
        c.publish("new.a", b"m").await;
    }
    assert_eq!(channel(&broker.snapshot().await, "new.a"), (2, 2, Some(2)));

    // Invalid limits are refused and change nothing.
    let mut bad = limits.clone();
    bad.channels
        .insert("bad..name".into(), ChannelLimits::default());
    let err = broker.set_limits(bad).await.expect_err("refused");
    assert!(err.to_string().contains("bad..name"), "{err}");
    assert_eq!(broker.limits(), limits);

    c.close().await;
    broker.shutdown().await;
}

fn limits_of_ten(cfg: &mut stan_broker::config::BrokerConfig) {
    cfg.limits.global.max_msgs = Some(10);
    cfg.hb_interval = Duration::from_secs(3600);
}

#[tokio::test]
async fn memory_store_takes_new_limits() {
    let broker = start_broker(|cfg| {
        limits_of_ten(cfg);
        cfg.store = StoreKind::Memory;
    })
    .await;
    scenario(broker).await;
}

#[tokio::test]
async fn file_store_takes_new_limits() {
    let dir = fresh_store_dir();
    let broker = start_broker(|cfg| {
        limits_of_ten(cfg);
        cfg.store = StoreKind::File(dir.clone());
    })
    .await;
    scenario(broker).await;
}

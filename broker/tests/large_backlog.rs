//! Deliveries larger than a connection's outbound buffer: the engine hands a subscription
//! everything its max in flight allows at once, and a client that keeps reading gets it all.

mod common;

use std::time::Duration;

use common::*;
use stan_protocol::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_beyond_the_outbound_buffer_reaches_a_reading_subscriber() {
    // 5,000 x 16 KiB = 80 MiB: more than the embedded server's 64 MiB outbound buffer.
    const N: usize = 5_000;
    const SIZE: usize = 16 * 1024;
    let b = start_broker(|cfg| {
        // Heartbeats queue behind the burst; the test is not about them.
        cfg.hb_interval = Duration::from_secs(60);
        cfg.hb_timeout = Duration::from_secs(10);
    })
    .await;
    let mut c = Conn::connect(&b.client_url(), b.cluster_id(), "big").await;
    let body = vec![b'x'; SIZE];
    for chunk in 0..N / 500 {
        for _ in 0..500 {
            c.publish_async("ch", &body).await;
        }
        for _ in 0..500 {
            let ack = c.next_pub_ack().await;
            assert_eq!(ack.error, "", "chunk {chunk}");
        }
    }
    let mut req = c.sub_req("ch");
    req.start_position = pb::StartPosition::First as i32;
    req.max_in_flight = 10_000;
    req.ack_wait_in_secs = 60;
    let mut s = c.subscribe(req).await.unwrap();
    for seq in 1..=N as u64 {
        let m = s.next().await;
        assert_eq!((m.sequence, m.data.len()), (seq, SIZE));
    }
    assert_eq!(
        c.nc.connection_state(),
        async_nats::connection::State::Connected
    );
    assert_eq!(c.ping().await, "", "the STAN session is intact");
    b.shutdown().await;
}

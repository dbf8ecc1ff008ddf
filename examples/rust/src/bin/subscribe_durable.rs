//! A durable subscription with manual acks: read, stop, and resume where it stopped.
//!
//! `cargo run -p stan-examples --bin subscribe_durable [NATS_URL]`

use futures::StreamExt;
use stan_client::{Result, StartPosition, SubscribeOptions};

const CHANNEL: &str = "example.audit";

#[tokio::main]
async fn main() -> Result<()> {
    let client = stan_examples::options("example-auditor").connect().await?;
    let opts = SubscribeOptions::durable("auditor")
        .start_at(StartPosition::First)
        .manual_acks(true);

    for i in 1..=3 {
        client.publish(CHANNEL, format!("event {i}")).await?;
    }

    // First run: take two messages, ack them, close (the server keeps the durable).
    let mut sub = client.subscribe(CHANNEL, opts.clone()).await?;
    for _ in 0..2 {
        if let Some(msg) = sub.next().await {
            let msg = msg?;
            println!("first run: #{} {:?}", msg.sequence(), msg.data());
            msg.ack().await?;
        }
    }
    sub.close().await?;

    client.publish(CHANNEL, "event 4").await?;

    // Second run: the durable resumes after the last acked message.
    let mut sub = client.subscribe(CHANNEL, opts).await?;
    while let Ok(Some(msg)) = tokio::time::timeout(stan_examples::IDLE, sub.next()).await {
        let msg = msg?;
        println!(
            "second run: #{} {:?} (redelivered: {})",
            msg.sequence(),
            msg.data(),
            msg.redelivered()
        );
        msg.ack().await?;
    }
    // unsubscribe() would delete the durable; close() keeps it for the next run.
    sub.close().await?;
    client.close().await?;
    Ok(())
}

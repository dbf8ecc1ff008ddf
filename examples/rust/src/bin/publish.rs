//! Publish: one message awaited for its ack, then a burst of pipelined publishes.
//!
//! `cargo run -p stan-examples --bin publish [NATS_URL]`

use stan_client::Result;

#[tokio::main]
async fn main() -> Result<()> {
    let client = stan_examples::options("example-publisher")
        .connect()
        .await?;

    // publish() resolves once the server has stored the message.
    let guid = client.publish("example.orders", "order #1").await?;
    println!("stored order #1 (guid {guid})");

    // publish_async() returns at once with a future for the ack, so many can be in flight.
    let mut acks = Vec::new();
    for i in 2..=1000 {
        acks.push(
            client
                .publish_async("example.orders", format!("order #{i}"))
                .await?,
        );
    }
    let count = acks.len();
    for ack in acks {
        ack.await?;
    }
    println!("stored {count} more orders");

    client.close().await?;
    Ok(())
}

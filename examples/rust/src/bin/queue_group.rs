//! A queue group: two workers share the messages of a channel, each message goes to one.
//!
//! `cargo run -p stan-examples --bin queue_group [NATS_URL]`

use futures::StreamExt;
use stan_client::{Result, SubscribeOptions};

const CHANNEL: &str = "example.jobs";
const JOBS: usize = 20;

#[tokio::main]
async fn main() -> Result<()> {
    let client = stan_examples::options("example-workers").connect().await?;

    let mut workers = Vec::new();
    for name in ["worker-a", "worker-b"] {
        let mut sub = client
            .subscribe(CHANNEL, SubscribeOptions::queue("workers"))
            .await?;
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Ok(Some(msg)) = tokio::time::timeout(stan_examples::IDLE, sub.next()).await {
                // Auto-ack: the message is acked when the next one is requested.
                let msg = msg?;
                done.push(msg.sequence());
            }
            println!("{name} handled {} jobs: {done:?}", done.len());
            sub.close().await?;
            Ok::<usize, stan_client::Error>(done.len())
        }));
    }

    for i in 1..=JOBS {
        client.publish(CHANNEL, format!("job {i}")).await?;
    }

    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker task")?;
    }
    println!("{total} of {JOBS} jobs handled, each by one worker");
    client.close().await?;
    Ok(())
}

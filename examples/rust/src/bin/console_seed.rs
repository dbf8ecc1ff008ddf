//! Seed a broker with messages for the web console, then hold a stalled durable subscription.
//!
//! `console_seed [NATS_URL] < lines`
//!
//! Each line of standard input is `CHANNEL<TAB>PAYLOAD`. A payload `hex:0aff…` is published
//! as those bytes; `repeat:N:TEXT` as TEXT repeated to N bytes; anything else as its text.
//! After publishing, the program subscribes the durable `audit` (manual acks, max in flight
//! 2) to the first channel, takes two messages without acking them, prints `seeded N`, and
//! waits for Ctrl-C (or SIGTERM) before it closes the client.

use std::io::BufRead;

use futures::StreamExt;
use stan_client::{StartPosition, SubscribeOptions};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn payload(spec: &str) -> Vec<u8> {
    if let Some(hex) = spec.strip_prefix("hex:") {
        return (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
    }
    if let Some(rest) = spec.strip_prefix("repeat:") {
        if let Some((n, text)) = rest.split_once(':') {
            if let (Ok(n), false) = (n.parse::<usize>(), text.is_empty()) {
                return text.bytes().cycle().take(n).collect();
            }
        }
    }
    spec.as_bytes().to_vec()
}

#[tokio::main]
async fn main() -> Result<()> {
    // Before `seeded N` is printed: a SIGTERM right after it must close the durable.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let client = stan_examples::options("console-seed").connect().await?;
    let mut acks = Vec::new();
    let mut first_channel = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some((channel, spec)) = line.split_once('\t') else {
            continue;
        };
        first_channel.get_or_insert_with(|| channel.to_string());
        acks.push(client.publish_async(channel, payload(spec)).await?);
    }
    let count = acks.len();
    for ack in acks {
        ack.await?;
    }
    let mut held = Vec::new();
    if let Some(channel) = first_channel {
        let opts = SubscribeOptions::durable("audit")
            .start_at(StartPosition::First)
            .manual_acks(true)
            .max_in_flight(2);
        let mut sub = client.subscribe(&channel, opts).await?;
        for _ in 0..2.min(count) {
            if let Some(msg) = sub.next().await {
                held.push(msg?);
            }
        }
        println!("seeded {count}");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        sub.close().await?;
    } else {
        println!("seeded 0");
    }
    drop(held);
    client.close().await?;
    Ok(())
}

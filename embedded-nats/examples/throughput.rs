//! Rough throughput check of the two hot paths: a TCP client publishing to an in-process
//! handler, and in-process publishes to a TCP subscriber.
//!
//! `cargo run --release -p stan-embedded-nats --example throughput -- [messages] [size]`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use stan_embedded_nats::{Message, Server, ServerOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(128);
    let server = Server::start(ServerOptions {
        port: 0,
        ..ServerOptions::default()
    })
    .await?;
    let local = server.connect_local("engine");

    // TCP -> local handler.
    let count = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let (c2, d2) = (count.clone(), done.clone());
    let _h = local
        .subscribe_with(
            "_STAN.pub.cluster.>",
            None,
            Arc::new(move |_m: Message| {
                if c2.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    d2.notify_one();
                }
            }),
        )
        .map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect(server.local_addr()).await?;
    stream.write_all(b"CONNECT {}\r\n").await?;
    let mut frame = format!("PUB _STAN.pub.cluster.orders _INBOX.a {size}\r\n").into_bytes();
    frame.extend(std::iter::repeat_n(b'x', size));
    frame.extend_from_slice(b"\r\n");
    let batch: Vec<u8> = frame.repeat(256);
    let start = Instant::now();
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(256);
        stream.write_all(&batch[..k * frame.len()]).await?;
        sent += k;
    }
    done.notified().await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "TCP -> local: {n} x {size} B in {secs:.3}s = {:.0} msg/s",
        n as f64 / secs
    );

    // local -> TCP subscriber.
    let sub = TcpStream::connect(server.local_addr()).await?;
    let (rd, mut wr) = sub.into_split();
    let mut rd = BufReader::with_capacity(1 << 20, rd);
    let mut line = String::new();
    rd.read_line(&mut line).await?;
    wr.write_all(b"CONNECT {}\r\nSUB _INBOX.acks 1\r\nPING\r\n")
        .await?;
    line.clear();
    rd.read_line(&mut line).await?;
    let payload = bytes::Bytes::from(vec![b'y'; size]);
    let expected = n * format!("MSG _INBOX.acks 1 {size}\r\n").len() + n * (size + 2);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < expected {
            let r = rd.read(&mut buf).await?;
            if r == 0 {
                break;
            }
            got += r;
        }
        Ok::<usize, std::io::Error>(got)
    });
    let start = Instant::now();
    for i in 0..n {
        local.publish("_INBOX.acks", None, payload.clone());
        if i % 4096 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let got = reader.await.map_err(std::io::Error::other)??;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "local -> TCP: {n} x {size} B in {secs:.3}s = {:.0} msg/s ({got} bytes)",
        n as f64 / secs
    );
    server.shutdown().await;
    Ok(())
}

//! Runs the embedded server standalone until Ctrl-C.
//!
//! `cargo run -p stan-embedded-nats --example serve -- [port]` (default 4222, 0 = free port).
//! Log output is controlled by `RUST_LOG` (e.g. `RUST_LOG=stan_embedded_nats=debug`).

use stan_embedded_nats::{Server, ServerOptions};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let port = match std::env::args().nth(1) {
        Some(p) => p
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        None => 4222,
    };
    let server = Server::start(ServerOptions {
        port,
        ..ServerOptions::default()
    })
    .await?;
    println!("{}", server.client_url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}

//! Shared settings of the example programs.
//!
//! Every example reads the NATS URL from its first argument, else from `STAN_NATS_URL`, else
//! uses `nats://127.0.0.1:4222`; the cluster ID comes from `STAN_CLUSTER_ID` (default
//! `test-cluster`). Start a server first, e.g. `stan-broker` or the official
//! `nats-streaming-server`, then `cargo run -p stan-examples --bin publish`.
#![warn(missing_docs)]

use std::time::Duration;

use stan_client::ConnectOptions;

/// How long an example waits for the next message before it finishes.
pub const IDLE: Duration = Duration::from_secs(3);

/// The NATS URL: first argument, `STAN_NATS_URL`, or `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("STAN_NATS_URL").ok())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string())
}

/// The cluster ID: `STAN_CLUSTER_ID` or `test-cluster`.
pub fn cluster_id() -> String {
    std::env::var("STAN_CLUSTER_ID").unwrap_or_else(|_| "test-cluster".to_string())
}

/// Connect options for `client_id` with the URL and cluster ID above.
pub fn options(client_id: &str) -> ConnectOptions {
    ConnectOptions::new(cluster_id(), client_id).nats_url(nats_url())
}

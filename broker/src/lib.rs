//! stan-broker: a NATS Streaming server.
#![warn(missing_docs)]

pub mod config;
pub mod snapshot;

//! stan-broker: a NATS Streaming server.
#![warn(missing_docs)]

mod broker;
pub mod cli;
pub mod conf;
pub mod config;
pub mod engine;
pub mod monitor;
pub mod options;
pub mod ready;
pub mod settings;
pub mod snapshot;
pub mod store;
pub mod tls;
pub mod transport;

pub use broker::{Broker, BrokerError};

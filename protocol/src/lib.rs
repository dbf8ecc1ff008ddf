//! Wire-level building blocks of the NATS Streaming (STAN) protocol, shared by the
//! `stan-client` client and the `stan-broker` server.
//!
//! * [`pb`] — the protobuf messages of the client protocol, field for field.
//! * [`subjects`] — default subject prefixes and helpers to build inbox names.
//! * [`validate`] — client ID, channel and durable-name rules.
//! * [`errors`] — the exact error strings servers and clients exchange.
//! * [`defaults`] — client and server defaults.
//!
//! ```
//! use prost::Message;
//! use stan_protocol::pb::PubAck;
//!
//! let ack = PubAck { guid: "abc".into(), error: String::new() };
//! let bytes = ack.encode_to_vec();
//! assert_eq!(PubAck::decode(bytes.as_slice()).unwrap(), ack);
//! ```
#![warn(missing_docs)]

pub mod defaults;
pub mod errors;
pub mod pb;
pub mod subjects;
pub mod validate;

pub use pb::StartPosition;

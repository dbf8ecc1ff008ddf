//! stan-client: an async NATS Streaming client.
#![warn(missing_docs)]

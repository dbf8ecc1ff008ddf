//! An embeddable core-NATS server.
#![warn(missing_docs)]

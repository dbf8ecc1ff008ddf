//! The connection: one background task per [`Client`](crate::Client) owns the session, and the
//! public handles talk to it through [`Command`](crate::command::Command)s. Publishing does not
//! go through the task (see [`publish`]).
//!
//! One concern a file, each depending only on those listed before it:
//! - `deadline`: deadlines from options that may mean "forever";
//! - `wire`: encoding the PubMsgs and Acks sent on the hot paths;
//! - `pending`: the pending-ack table of publishes awaiting their PubAck;
//! - `nats`: opening the NATS connection, STAN requests and their responses;
//! - `session`: one registration with the server (register, the subjects it gives);
//! - `shared`: the state shared by the handles and the task (session, pending acks, events);
//! - `publish`: putting publishes on the wire, and the in-call-order publish queue;
//! - `registry`: the subscriptions the task knows;
//! - `task`: the task itself, its event loop, commands and shutdown;
//! - `pub_acks`, `inbox`, `ping`, `resume`, `subscribe`: the task's handlers for PubAcks and
//!   their timeouts, the client inbox (heartbeats, deliveries), pings and NATS connection
//!   state, session loss and auto-resume, and server-side subscriptions;
//! - `connect`: opening a connection and starting the task.

mod connect;
mod deadline;
mod inbox;
mod nats;
mod pending;
mod ping;
mod pub_acks;
mod publish;
mod registry;
mod resume;
mod session;
mod shared;
mod subscribe;
mod task;
mod wire;

pub(crate) use connect::{open, Handles};
pub(crate) use pending::{AckTx, BatchAcks, Guid};
pub(crate) use publish::{put_on_wire, QueuedPub, Started};
pub(crate) use shared::{ClientClosing, Shared};

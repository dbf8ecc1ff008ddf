//! What the public handles ask of the connection task, and what the task hands back to a
//! subscription.

use std::sync::Arc;

use stan_protocol::pb;
use tokio::sync::{mpsc, oneshot};

use crate::acked::AckedLog;
use crate::error::Result;
use crate::options::StartPosition;

/// What the connection task sends to a subscription: a message as the server sent it (the
/// subscription wraps it into a [`Message`](crate::Message)), or the error that ends it.
pub(crate) type Delivery = Result<pb::MsgProto>;

/// What a subscription is, as sent to the server.
#[derive(Clone, Debug)]
pub(crate) struct SubSpec {
    pub(crate) channel: String,
    pub(crate) queue_group: String,
    pub(crate) durable_name: String,
    pub(crate) max_in_flight: i32,
    pub(crate) ack_wait_secs: i32,
    pub(crate) start: StartPosition,
}

/// Requests from the handles to the task.
pub(crate) enum Command {
    /// Create a subscription; `reply` gets the server's answer.
    Subscribe {
        id: u64,
        spec: SubSpec,
        /// The application's acks, to drop copies the server sends again.
        acked: Arc<AckedLog>,
        tx: mpsc::UnboundedSender<Delivery>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Acknowledge a delivered message.
    Ack { sub_id: u64, sequence: u64 },
    /// Acknowledge several delivered messages of one subscription, in this order: handled as
    /// one [`Command::Ack`] for each.
    Acks { sub_id: u64, sequences: Vec<u64> },
    /// Close or unsubscribe a subscription; `reply`, if any, gets the server's answer.
    CloseSub {
        sub_id: u64,
        unsubscribe: bool,
        reply: Option<oneshot::Sender<Result<()>>>,
    },
    /// Close the client.
    Close { reply: oneshot::Sender<Result<()>> },
}

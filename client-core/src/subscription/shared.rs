//! State shared by a subscription, its handles and its messages.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::acked::AckedLog;
use crate::command::Command;

/// State shared by a [`Subscription`](crate::Subscription), its
/// [`SubscriptionHandle`](crate::SubscriptionHandle)s and the [`Message`](crate::Message)s it
/// handed out. Holding it keeps the client's connection task alive (through `cmd`).
pub(crate) struct SubShared {
    pub(crate) id: u64,
    pub(crate) manual_acks: bool,
    pub(crate) closed: AtomicBool,
    pub(crate) cmd: mpsc::UnboundedSender<Command>,
    /// Messages the application acked recently (shared with the connection task).
    pub(crate) acked: Arc<AckedLog>,
}

impl SubShared {
    /// True when the application already acked this message.
    pub(crate) fn was_acked(&self, sequence: u64, timestamp: i64) -> bool {
        self.acked.contains(sequence, timestamp)
    }

    /// Queues an ack of `sequence` to the connection; false when the client is gone.
    pub(crate) fn send_ack(&self, sequence: u64) -> bool {
        self.cmd
            .send(Command::Ack {
                sub_id: self.id,
                sequence,
            })
            .is_ok()
    }

    /// Queues the acks of `sequences`, in order, as one command to the connection (nothing
    /// for none); false when the client is gone.
    pub(crate) fn send_acks(&self, mut sequences: Vec<u64>) -> bool {
        let cmd = match sequences.len() {
            0 => return true,
            1 => Command::Ack {
                sub_id: self.id,
                sequence: sequences.pop().expect("one sequence"),
            },
            _ => Command::Acks {
                sub_id: self.id,
                sequences,
            },
        };
        self.cmd.send(cmd).is_ok()
    }
}

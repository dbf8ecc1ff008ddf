//! The message type routed inside the server.

use bytes::Bytes;

/// A message as routed inside the server.
///
/// For messages published by TCP clients, `headers` and `payload` are zero-copy slices of the
/// connection's read buffer, which they keep alive; code that retains payloads for a long
/// time may prefer to copy them (`Bytes::copy_from_slice`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Subject the message was published to.
    pub subject: String,
    /// Reply subject, if the publisher set one.
    pub reply: Option<String>,
    /// Raw header block (starts with `NATS/1.0`), if any.
    pub headers: Option<Bytes>,
    /// Payload.
    pub payload: Bytes,
    /// Server-wide id of the connection (TCP or local) that published it.
    pub publisher: u64,
}

/// A message being routed, borrowed from the publisher.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outgoing<'a> {
    pub subject: &'a str,
    pub reply: Option<&'a str>,
    pub headers: Option<&'a Bytes>,
    pub payload: &'a Bytes,
    pub publisher: u64,
}

impl Outgoing<'_> {
    /// Builds an owned [`Message`].
    pub(crate) fn to_message(self) -> Message {
        Message {
            subject: self.subject.to_string(),
            reply: self.reply.map(str::to_string),
            headers: self.headers.cloned(),
            payload: self.payload.clone(),
            publisher: self.publisher,
        }
    }
}

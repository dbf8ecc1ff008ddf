//! The messages of the publish and ack paths, encoded straight from borrowed fields into
//! shared buffer chunks: no owned copies of the strings as the prost structs would need, and
//! one allocation per chunk instead of one per message. The bytes are those prost writes for
//! the same message (fields in tag order, empty ones left out).

use std::sync::Mutex;

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

use crate::lock::lock;

/// Size of a buffer chunk; a larger message gets a chunk of its own size.
const CHUNK: usize = 64 * 1024;

/// The fields of a `PubMsg` (the reply subject and the checksum are always empty).
pub(crate) struct PubMsgFields<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) guid: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) conn_id: &'a [u8],
}

impl PubMsgFields<'_> {
    fn encoded_len(&self) -> usize {
        bytes_len(1, self.client_id.as_bytes())
            + bytes_len(2, self.guid.as_bytes())
            + bytes_len(3, self.subject.as_bytes())
            + bytes_len(5, self.data)
            + bytes_len(6, self.conn_id)
    }

    fn encode(&self, buf: &mut BytesMut) {
        put_bytes(1, self.client_id.as_bytes(), buf);
        put_bytes(2, self.guid.as_bytes(), buf);
        put_bytes(3, self.subject.as_bytes(), buf);
        put_bytes(5, self.data, buf);
        put_bytes(6, self.conn_id, buf);
    }
}

/// Encoded length of a `string`/`bytes` field (nothing when empty, as proto3 leaves it out).
fn bytes_len(tag: u32, v: &[u8]) -> usize {
    if v.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(v.len() as u64) + v.len()
    }
}

fn put_bytes(tag: u32, v: &[u8], buf: &mut BytesMut) {
    if !v.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(v.len() as u64, buf);
        buf.put_slice(v);
    }
}

/// A client's encoder: messages are cut from a shared chunk, which is freed once every
/// message cut from it is gone.
#[derive(Default)]
pub(crate) struct Encoder {
    chunk: Mutex<BytesMut>,
}

impl Encoder {
    /// `len` bytes written by `write`, as a cheaply cloneable [`Bytes`].
    fn cut(&self, len: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
        let mut chunk = lock(&self.chunk);
        if chunk.capacity() < len {
            *chunk = BytesMut::with_capacity(len.max(CHUNK));
        }
        write(&mut chunk);
        debug_assert_eq!(chunk.len(), len);
        chunk.split_to(len).freeze()
    }

    /// A `PubMsg`.
    pub(crate) fn pub_msg(&self, f: &PubMsgFields<'_>) -> Bytes {
        self.cut(f.encoded_len(), |buf| f.encode(buf))
    }

    /// An `Ack` of `sequence` on `subject`.
    pub(crate) fn ack(&self, subject: &str, sequence: u64) -> Bytes {
        let seq_len = if sequence == 0 {
            0
        } else {
            key_len(2) + encoded_len_varint(sequence)
        };
        self.cut(bytes_len(1, subject.as_bytes()) + seq_len, |buf| {
            put_bytes(1, subject.as_bytes(), buf);
            if sequence != 0 {
                encode_key(2, WireType::Varint, buf);
                encode_varint(sequence, buf);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use stan_protocol::pb;

    use super::*;

    #[test]
    fn pub_msgs_are_encoded_as_prost_does() {
        let enc = Encoder::default();
        let big = vec![7u8; CHUNK + 3];
        let cases = [
            (
                "client",
                "0123456789012345678901",
                "orders",
                &b"hello"[..],
                &b"conn"[..],
            ),
            ("", "g", "c", b"", b""),
            ("c", "", "", &big, b"x"),
            ("client", "g", "orders", &big[..300], b"conn-id"),
        ];
        for (client_id, guid, subject, data, conn_id) in cases {
            let ours = enc.pub_msg(&PubMsgFields {
                client_id,
                guid,
                subject,
                data,
                conn_id,
            });
            let theirs = pb::PubMsg {
                client_id: client_id.into(),
                guid: guid.into(),
                subject: subject.into(),
                reply: String::new(),
                data: Bytes::copy_from_slice(data),
                conn_id: Bytes::copy_from_slice(conn_id),
                sha256: Bytes::new(),
            }
            .encode_to_vec();
            assert_eq!(&ours[..], &theirs[..]);
        }
    }

    #[test]
    fn acks_are_encoded_as_prost_does_and_outlive_their_chunk() {
        let enc = Encoder::default();
        let mut kept = Vec::new();
        for (subject, sequence) in [("orders", 1), ("", 0), ("c", u64::MAX), ("x", 300)] {
            let ours = enc.ack(subject, sequence);
            let theirs = pb::Ack {
                subject: subject.into(),
                sequence,
            }
            .encode_to_vec();
            assert_eq!(&ours[..], &theirs[..]);
            kept.push((ours, theirs));
        }
        // Fill several chunks; the messages cut before stay intact.
        for i in 0..(3 * CHUNK / 8) as u64 {
            let _ = enc.ack("ch", i + 1);
        }
        for (ours, theirs) in kept {
            assert_eq!(&ours[..], &theirs[..]);
        }
    }
}

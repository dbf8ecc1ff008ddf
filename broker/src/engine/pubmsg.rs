//! A `PubMsg` read in place: its strings borrow the NATS payload and its byte fields are
//! slices of it, so a publish costs no allocation and no copy before it is stored.
//!
//! Only well-formed messages built of the field kinds a `PubMsg` uses are read here; anything
//! else (a group, a malformed field) is left to the generated decoder, so what is accepted,
//! what is refused and the values read are the same as with `pb::PubMsg::decode`.

use bytes::Bytes;
use prost::Message;
use stan_protocol::pb;

/// The fields of a `PubMsg` the broker uses, borrowed from the payload they were read from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PubMsgRef<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) guid: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) reply: &'a str,
    pub(crate) data: Bytes,
    pub(crate) conn_id: Bytes,
}

/// A decoded publish: borrowed when the fast reader took it, owned otherwise.
pub(crate) enum Decoded<'a> {
    Borrowed(PubMsgRef<'a>),
    Owned(pb::PubMsg),
}

impl Decoded<'_> {
    /// The publish as borrowed fields.
    pub(crate) fn as_ref(&self) -> PubMsgRef<'_> {
        match self {
            Decoded::Borrowed(m) => PubMsgRef {
                client_id: m.client_id,
                guid: m.guid,
                subject: m.subject,
                reply: m.reply,
                data: m.data.clone(),
                conn_id: m.conn_id.clone(),
            },
            Decoded::Owned(m) => PubMsgRef {
                client_id: &m.client_id,
                guid: &m.guid,
                subject: &m.subject,
                reply: &m.reply,
                data: m.data.clone(),
                conn_id: m.conn_id.clone(),
            },
        }
    }
}

/// Decodes `payload` as a `PubMsg`, with the same outcome as `pb::PubMsg::decode`.
pub(crate) fn decode(payload: &Bytes) -> Result<Decoded<'_>, prost::DecodeError> {
    match read(payload) {
        Some(m) => Ok(Decoded::Borrowed(m)),
        None => pb::PubMsg::decode(payload.clone()).map(Decoded::Owned),
    }
}

/// Reads a varint at `*pos` (at most ten bytes, as protobuf allows).
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && b > 1 {
                return None;
            }
            return Some(v);
        }
    }
    None
}

/// The fast reader: `None` for anything it does not take (the caller then decodes with prost).
fn read(payload: &Bytes) -> Option<PubMsgRef<'_>> {
    let buf: &[u8] = payload;
    let mut m = PubMsgRef {
        client_id: "",
        guid: "",
        subject: "",
        reply: "",
        data: Bytes::new(),
        conn_id: Bytes::new(),
    };
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let key = u32::try_from(key).ok()?;
        let tag = key >> 3;
        if tag == 0 {
            return None;
        }
        match key & 7 {
            // Varint.
            0 => {
                if matches!(tag, 1..=6 | 10) {
                    return None;
                }
                varint(buf, &mut pos)?;
            }
            // 64-bit.
            1 => {
                if matches!(tag, 1..=6 | 10) {
                    return None;
                }
                pos = pos.checked_add(8).filter(|p| *p <= buf.len())?;
            }
            // Length-delimited.
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                let field = &buf[pos..end];
                match tag {
                    1 => m.client_id = std::str::from_utf8(field).ok()?,
                    2 => m.guid = std::str::from_utf8(field).ok()?,
                    3 => m.subject = std::str::from_utf8(field).ok()?,
                    4 => m.reply = std::str::from_utf8(field).ok()?,
                    5 => m.data = payload.slice(pos..end),
                    6 => m.conn_id = payload.slice(pos..end),
                    _ => {}
                }
                pos = end;
            }
            // 32-bit.
            5 => {
                if matches!(tag, 1..=6 | 10) {
                    return None;
                }
                pos = pos.checked_add(4).filter(|p| *p <= buf.len())?;
            }
            // Groups and invalid wire types.
            _ => return None,
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_prost(b: &[u8]) {
        let payload = Bytes::copy_from_slice(b);
        let ours = decode(&payload).map(|d| {
            let r = d.as_ref();
            pb::PubMsg {
                client_id: r.client_id.to_string(),
                guid: r.guid.to_string(),
                subject: r.subject.to_string(),
                reply: r.reply.to_string(),
                data: r.data,
                conn_id: r.conn_id,
                sha256: Bytes::new(),
            }
        });
        let theirs = pb::PubMsg::decode(payload.clone()).map(|mut m| {
            m.sha256 = Bytes::new();
            m
        });
        assert_eq!(ours.is_ok(), theirs.is_ok(), "{b:?}");
        if let (Ok(a), Ok(b)) = (ours, theirs) {
            assert_eq!(a, b);
        }
    }

    fn full() -> Vec<u8> {
        pb::PubMsg {
            client_id: "me".into(),
            guid: "g1".into(),
            subject: "foo".into(),
            reply: "r".into(),
            data: Bytes::from_static(b"hello"),
            conn_id: Bytes::from_static(b"conn"),
            sha256: Bytes::from_static(b"sha"),
        }
        .encode_to_vec()
    }

    #[test]
    fn reads_a_publish_in_place() {
        let payload = Bytes::from(full());
        let Ok(Decoded::Borrowed(m)) = decode(&payload) else {
            panic!("the fast reader took a plain publish");
        };
        assert_eq!(
            (m.client_id, m.guid, m.subject, m.reply),
            ("me", "g1", "foo", "r")
        );
        assert_eq!(&m.data[..], b"hello");
        assert_eq!(&m.conn_id[..], b"conn");
        same_as_prost(&payload);
        same_as_prost(&[]);
    }

    #[test]
    fn agrees_with_prost_on_odd_input() {
        let mut b = full();
        // A repeated field: the last one wins.
        b.extend_from_slice(&[0x1a, 1, b'x']);
        // Unknown fields of every plain wire type.
        b.extend_from_slice(&[0x38, 0x96, 0x01]);
        b.extend_from_slice(&[0x41, 1, 2, 3, 4, 5, 6, 7, 8]);
        b.extend_from_slice(&[0x4d, 1, 2, 3, 4]);
        b.extend_from_slice(&[0x5a, 2, 1, 2]);
        same_as_prost(&b);
        let p = Bytes::from(b.clone());
        assert!(matches!(decode(&p), Ok(Decoded::Borrowed(m)) if m.subject == "x"));
        // A group (left to prost), wrong wire types, bad UTF-8, truncations, tag 0,
        // overlong varints.
        let mut g = full();
        g.extend_from_slice(&[0x3b, 0x38, 1, 0x3c]);
        same_as_prost(&g);
        for bad in [
            &[0x08, 1][..],
            &[0x0d, 1, 2, 3, 4],
            &[0x09, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0x0a, 2, 0xff, 0xfe],
            &[0x0a, 5, b'a'],
            &[0x00, 1],
            &[0x0a],
            &[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ],
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            &[0x0e, 1],
            &[0x38, 0xff],
        ] {
            same_as_prost(bad);
        }
        for cut in 0..b.len() {
            same_as_prost(&b[..cut]);
        }
    }
}

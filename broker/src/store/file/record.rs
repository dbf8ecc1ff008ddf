//! On-disk formats: file headers, framed records with a CRC-32, index entries, and the
//! protobuf bodies of subscription, client and server-info records.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Format version written in every file header.
pub(crate) const VERSION: u32 = 1;
/// Length of every file header: magic (4), version (4), a file-specific `u64`.
pub(crate) const HEADER_LEN: u64 = 16;
/// Length of a record frame: body length (4) and CRC-32 of the body (4).
pub(crate) const FRAME_LEN: u64 = 8;
/// The largest record body accepted when reading (larger lengths are corruption).
pub(crate) const MAX_RECORD: u64 = 256 << 20;
/// Length of a message-index entry.
pub(crate) const IDX_ENTRY_LEN: u64 = 32;
/// Bytes of a message record body before the encoded message: sequence and timestamp.
pub(crate) const MSG_PREFIX: u64 = 16;
/// Offset of an index entry for a sequence whose record is lost (served as missing).
pub(crate) const HOLE: u64 = u64::MAX;

/// Magic of a message slice's data file.
pub(crate) const MAGIC_DATA: &[u8; 4] = b"STMD";
/// Magic of a message slice's index file.
pub(crate) const MAGIC_INDEX: &[u8; 4] = b"STMI";
/// Magic of a subscription log.
pub(crate) const MAGIC_SUBS: &[u8; 4] = b"STSB";
/// Magic of the clients log.
pub(crate) const MAGIC_CLIENTS: &[u8; 4] = b"STCL";
/// Magic of the server-info file.
pub(crate) const MAGIC_SERVER: &[u8; 4] = b"STSI";
/// Magic of a channel's state file (logical first sequence).
pub(crate) const MAGIC_STATE: &[u8; 4] = b"STCS";

/// A file header.
pub(crate) fn header(magic: &[u8; 4], value: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..4].copy_from_slice(magic);
    h[4..8].copy_from_slice(&VERSION.to_le_bytes());
    h[8..].copy_from_slice(&value.to_le_bytes());
    h
}

/// Checks a header; returns its value.
pub(crate) fn parse_header(buf: &[u8], magic: &[u8; 4]) -> Result<u64, String> {
    if buf.len() < HEADER_LEN as usize {
        return Err(format!("header too short ({} bytes)", buf.len()));
    }
    if &buf[..4] != magic {
        return Err(format!("bad magic {:?}", &buf[..4]));
    }
    let v = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    if v != VERSION {
        return Err(format!(
            "unsupported format version {v} (expected {VERSION})"
        ));
    }
    Ok(u64::from_le_bytes(
        buf[8..16].try_into().unwrap_or_default(),
    ))
}

/// Reads and checks the header of an open file.
pub(crate) fn read_header(f: &File, magic: &[u8; 4]) -> Result<u64, String> {
    let mut h = [0u8; HEADER_LEN as usize];
    f.read_exact_at(&mut h, 0)
        .map_err(|e| format!("cannot read header: {e}"))?;
    parse_header(&h, magic)
}

/// Appends one framed record (`len`, `crc`, body) to `out`.
pub(crate) fn frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// Appends one framed record whose body is `parts` concatenated.
pub(crate) fn frame_parts(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// What was found at one position of a log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A complete record with a valid CRC: its body and total length.
    Good(&'a [u8], u64),
    /// A complete frame whose CRC does not match: its total length.
    BadCrc(u64),
    /// Not enough bytes, or an absurd length.
    Incomplete,
}

/// Parses the frame at the start of `buf`.
pub(crate) fn parse_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < FRAME_LEN as usize {
        return Frame::Incomplete;
    }
    let len = u64::from(u32::from_le_bytes(buf[..4].try_into().unwrap_or_default()));
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    let Some(total) = FRAME_LEN.checked_add(len) else {
        return Frame::Incomplete;
    };
    if len > MAX_RECORD || total > buf.len() as u64 {
        return Frame::Incomplete;
    }
    let body = &buf[FRAME_LEN as usize..total as usize];
    if crc32fast::hash(body) == crc {
        Frame::Good(body, total)
    } else {
        Frame::BadCrc(total)
    }
}

/// The result of reading a whole log (`buf` holds the file from offset `base`).
#[derive(Debug, Default)]
pub(crate) struct LogScan {
    /// Good records: file offset and body range in `buf`.
    pub(crate) records: Vec<(u64, std::ops::Range<usize>)>,
    /// File length up to which the log is sound (the rest is a torn tail to cut).
    pub(crate) good_len: u64,
    /// Corrupt records skipped in the middle (file offset, description).
    pub(crate) skipped: Vec<(u64, String)>,
    /// Description of the torn tail, if any.
    pub(crate) torn: Option<String>,
}

/// Finds the next offset at or after `from` where a good record starts whose body passes
/// `accept`.
fn resync(buf: &[u8], from: usize, accept: &dyn Fn(&[u8]) -> bool) -> Option<usize> {
    (from..buf.len().saturating_sub(FRAME_LEN as usize - 1))
        .find(|&p| matches!(parse_frame(&buf[p..]), Frame::Good(b, _) if accept(b)))
}

/// Reads every record of `buf` (file content from offset `base`). A bad record followed by a
/// good one is skipped and reported; a bad or incomplete record with nothing good after it is
/// the torn tail. `accept` is an extra check of a body (for resynchronising).
pub(crate) fn scan_log(buf: &[u8], base: u64, accept: &dyn Fn(&[u8]) -> bool) -> LogScan {
    let mut out = LogScan::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        match parse_frame(&buf[pos..]) {
            Frame::Good(body, total) if accept(body) => {
                let start = pos + FRAME_LEN as usize;
                out.records
                    .push((base + pos as u64, start..start + body.len()));
                pos += total as usize;
            }
            other => {
                let what = match other {
                    Frame::BadCrc(_) => "CRC mismatch",
                    Frame::Good(..) => "unexpected record",
                    Frame::Incomplete => "incomplete record",
                };
                match resync(buf, pos + 1, accept) {
                    Some(next) => {
                        out.skipped.push((
                            base + pos as u64,
                            format!("{what}: {} bytes skipped", next - pos),
                        ));
                        pos = next;
                    }
                    None => {
                        out.torn = Some(format!(
                            "{what} at offset {}: {} bytes cut",
                            base + pos as u64,
                            buf.len() - pos
                        ));
                        break;
                    }
                }
            }
        }
    }
    out.good_len = base + if out.torn.is_some() { pos } else { buf.len() } as u64;
    out
}

/// Reads a whole file from `offset` to its end.
pub(crate) fn read_from(f: &File, offset: u64) -> io::Result<Vec<u8>> {
    let len = f.metadata()?.len();
    let mut buf = vec![0u8; len.saturating_sub(offset) as usize];
    f.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// One entry of a message index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdxEntry {
    /// Message sequence.
    pub(crate) seq: u64,
    /// Offset of the record frame in the data file ([`HOLE`]: lost).
    pub(crate) offset: u64,
    /// Message timestamp.
    pub(crate) ts: i64,
    /// Length of the record body.
    pub(crate) len: u32,
}

impl IdxEntry {
    /// Whether the record is lost.
    pub(crate) fn is_hole(&self) -> bool {
        self.offset == HOLE
    }

    /// Size counted against the byte limit: the encoded message.
    pub(crate) fn msg_size(&self) -> u64 {
        if self.is_hole() {
            0
        } else {
            u64::from(self.len).saturating_sub(MSG_PREFIX)
        }
    }

    /// End of the record in the data file.
    pub(crate) fn end(&self) -> u64 {
        self.offset
            .saturating_add(FRAME_LEN)
            .saturating_add(u64::from(self.len))
    }

    /// Encoded form (32 bytes, the last 4 a CRC of the first 28).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.ts.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// Decodes an entry; `None` if the CRC does not match.
    pub(crate) fn decode(b: &[u8]) -> Option<IdxEntry> {
        if b.len() < IDX_ENTRY_LEN as usize {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(b[28..32].try_into().unwrap_or_default());
        if crc32fast::hash(&b[..28]) != crc {
            return None;
        }
        Some(IdxEntry {
            seq: u64_at(0),
            offset: u64_at(8),
            ts: u64_at(16) as i64,
            len: u32::from_le_bytes(b[24..28].try_into().unwrap_or_default()),
        })
    }
}

/// Sequence and timestamp at the start of a message record body.
pub(crate) fn msg_prefix(body: &[u8]) -> Option<(u64, i64)> {
    if body.len() < MSG_PREFIX as usize {
        return None;
    }
    let seq = u64::from_le_bytes(body[..8].try_into().ok()?);
    let ts = i64::from_le_bytes(body[8..16].try_into().ok()?);
    Some((seq, ts))
}

/// Protobuf field number of the publish guid kept at the end of a stored message record
/// (a stan-rs extension of the stored `MsgProto`; deliveries never carry it).
pub(crate) const GUID_FIELD: u32 = 1000;

/// The guid field appended to an encoded message in its record: key (field
/// [`GUID_FIELD`], wire type 2), length, guid.
pub(crate) fn guid_field(guid: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(guid.len() + 4);
    put_varint(&mut out, u64::from(GUID_FIELD << 3 | 2));
    put_varint(&mut out, guid.len() as u64);
    out.extend_from_slice(guid.as_bytes());
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Splits a stored message into its wire form and the guid field at its end, if there is
/// one: `(length of the wire form, guid)`. Walks the top-level fields; anything malformed
/// is left as it is (all wire form, no guid).
pub(crate) fn split_guid(msg: &[u8]) -> (usize, Option<&[u8]>) {
    let mut pos = 0usize;
    while pos < msg.len() {
        let start = pos;
        let Some(key) = get_varint(msg, &mut pos) else {
            break;
        };
        let len = match key & 7 {
            0 => match get_varint(msg, &mut pos) {
                Some(_) => 0,
                None => break,
            },
            1 => 8,
            5 => 4,
            2 => match get_varint(msg, &mut pos).and_then(|l| usize::try_from(l).ok()) {
                Some(l) => l,
                None => break,
            },
            _ => break,
        };
        let Some(end) = pos.checked_add(len).filter(|&e| e <= msg.len()) else {
            break;
        };
        if key == u64::from(GUID_FIELD << 3 | 2) && end == msg.len() {
            return (start, Some(&msg[pos..end]));
        }
        pos = end;
    }
    (msg.len(), None)
}

/// Subscription-log record types (first byte of the body).
pub(crate) mod sub_op {
    /// A new subscription (full record).
    pub(crate) const CREATE: u8 = 1;
    /// A changed subscription (full record).
    pub(crate) const UPDATE: u8 = 2;
    /// A deleted subscription (id).
    pub(crate) const DELETE: u8 = 3;
    /// A delivered sequence (id, seq).
    pub(crate) const PENDING: u8 = 4;
    /// An acknowledged sequence (id, seq).
    pub(crate) const ACK: u8 = 5;
    /// The redelivery count of a pending sequence (id, seq, count: u32).
    pub(crate) const REDELIVERED: u8 = 6;
}

/// Clients-log record types.
pub(crate) mod client_op {
    /// A registered client (full record).
    pub(crate) const ADD: u8 = 1;
    /// A removed client (id).
    pub(crate) const DELETE: u8 = 2;
}

/// A subscription record body.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct SubPb {
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    #[prost(string, tag = "2")]
    pub(crate) client_id: String,
    #[prost(string, tag = "3")]
    pub(crate) q_group: String,
    #[prost(string, tag = "4")]
    pub(crate) inbox: String,
    #[prost(string, tag = "5")]
    pub(crate) ack_inbox: String,
    #[prost(int32, tag = "6")]
    pub(crate) max_in_flight: i32,
    #[prost(int32, tag = "7")]
    pub(crate) ack_wait_in_secs: i32,
    #[prost(string, tag = "8")]
    pub(crate) durable_name: String,
    #[prost(uint64, tag = "9")]
    pub(crate) last_sent: u64,
    #[prost(bool, tag = "10")]
    pub(crate) is_durable: bool,
    #[prost(bool, tag = "11")]
    pub(crate) is_closed: bool,
}

/// A client record body.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct ClientPb {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    #[prost(string, tag = "2")]
    pub(crate) hb_inbox: String,
    #[prost(bytes = "bytes", tag = "3")]
    pub(crate) conn_id: bytes::Bytes,
    #[prost(int32, tag = "4")]
    pub(crate) protocol: i32,
    #[prost(int32, tag = "5")]
    pub(crate) ping_interval: i32,
    #[prost(int32, tag = "6")]
    pub(crate) ping_max_out: i32,
    /// Absent in records written before it existed: false.
    #[prost(bool, tag = "7")]
    pub(crate) resends_publishes: bool,
}

/// The server-info record body.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct ServerPb {
    #[prost(string, tag = "1")]
    pub(crate) cluster_id: String,
    #[prost(string, tag = "2")]
    pub(crate) node_id: String,
    #[prost(string, tag = "3")]
    pub(crate) discover: String,
    #[prost(string, tag = "4")]
    pub(crate) pings: String,
    #[prost(string, tag = "5")]
    pub(crate) publish: String,
    #[prost(string, tag = "6")]
    pub(crate) subscribe: String,
    #[prost(string, tag = "7")]
    pub(crate) unsubscribe: String,
    #[prost(string, tag = "8")]
    pub(crate) sub_close: String,
    #[prost(string, tag = "9")]
    pub(crate) close: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_field_is_split_off_the_end_of_a_stored_message() {
        use prost::Message;
        let m = stan_protocol::pb::MsgProto {
            sequence: 7,
            subject: "ch".into(),
            data: bytes::Bytes::from_static(b"payload"),
            timestamp: 99,
            ..Default::default()
        };
        let wire = m.encode_to_vec();
        let mut stored = wire.clone();
        stored.extend_from_slice(&guid_field("g-1"));
        assert_eq!(split_guid(&stored), (wire.len(), Some(&b"g-1"[..])));
        // Still a valid message for a decoder that does not know the field.
        assert_eq!(
            stan_protocol::pb::MsgProto::decode(stored.as_slice()).unwrap(),
            m
        );
        assert_eq!(split_guid(&wire), (wire.len(), None));
        assert_eq!(split_guid(&[]), (0, None));
        // Malformed input (a truncated field, a bad wire type) is left whole.
        assert_eq!(
            split_guid(&stored[..stored.len() - 1]),
            (stored.len() - 1, None)
        );
        assert_eq!(split_guid(&[0x0f, 1, 2]), (3, None));
        // A long guid needs a two-byte length.
        let long = "x".repeat(200);
        let mut s2 = wire.clone();
        s2.extend_from_slice(&guid_field(&long));
        assert_eq!(split_guid(&s2), (wire.len(), Some(long.as_bytes())));
    }

    #[test]
    fn frames_and_torn_tail() {
        let mut buf = Vec::new();
        frame(&mut buf, b"one");
        frame(&mut buf, b"two");
        let full = buf.len();
        frame(&mut buf, b"three");
        buf.truncate(buf.len() - 2);
        let s = scan_log(&buf, 16, &|_| true);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.good_len, 16 + full as u64);
        assert!(s.torn.is_some());
    }

    #[test]
    fn middle_corruption_is_skipped() {
        let mut buf = Vec::new();
        frame(&mut buf, b"one");
        let second = buf.len();
        frame(&mut buf, b"two!");
        frame(&mut buf, b"three");
        buf[second + 9] ^= 0xff;
        let s = scan_log(&buf, 0, &|_| true);
        let bodies: Vec<&[u8]> = s.records.iter().map(|(_, r)| &buf[r.clone()]).collect();
        assert_eq!(bodies, [&b"one"[..], b"three"]);
        assert_eq!(s.skipped.len(), 1);
        assert!(s.torn.is_none());
        assert_eq!(s.good_len, buf.len() as u64);
    }

    #[test]
    fn absurd_length_is_not_an_overflow() {
        let mut buf = vec![0xff; 8];
        buf.extend_from_slice(b"junk");
        assert_eq!(parse_frame(&buf), Frame::Incomplete);
        let s = scan_log(&buf, 0, &|_| true);
        assert!(s.records.is_empty());
        assert_eq!(s.good_len, 0);
    }

    #[test]
    fn index_entries() {
        let e = IdxEntry {
            seq: 7,
            offset: 99,
            ts: -5,
            len: 40,
        };
        let mut b = Vec::new();
        e.encode(&mut b);
        assert_eq!(b.len() as u64, IDX_ENTRY_LEN);
        assert_eq!(IdxEntry::decode(&b), Some(e));
        b[3] ^= 1;
        assert_eq!(IdxEntry::decode(&b), None);
    }
}

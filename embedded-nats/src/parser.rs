//! Parser of the client side of the core NATS protocol.
//!
//! Operations are parsed from a `BytesMut` read buffer; subjects, sids and payloads are
//! zero-copy `Bytes` slices of it.

use bytes::{Buf, Bytes, BytesMut};

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `CONNECT <json>`.
    Connect(Bytes),
    /// `PUB` or `HPUB`.
    Pub {
        subject: Bytes,
        reply: Option<Bytes>,
        headers: Option<Bytes>,
        payload: Bytes,
    },
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    },
    /// `UNSUB <sid> [max]`.
    Unsub { sid: Bytes, max: Option<u64> },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR <text>`.
    Err(Bytes),
    /// `INFO <json>` (ignored from clients).
    Info,
}

/// A fatal parse error; each maps to one `-ERR` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Unparsable input.
    Unknown,
    /// Control line too long.
    ControlLine,
    /// Payload larger than allowed.
    MaxPayload,
}

impl ParseError {
    /// The `-ERR` text for this error.
    pub(crate) fn text(self) -> &'static str {
        use crate::error::proto_err;
        match self {
            ParseError::Unknown => proto_err::UNKNOWN_OP,
            ParseError::ControlLine => proto_err::MAX_CONTROL_LINE,
            ParseError::MaxPayload => proto_err::MAX_PAYLOAD,
        }
    }
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_control_line: usize,
    pub max_payload: usize,
}

/// Result of trying to parse one operation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A complete operation (consumed from the buffer).
    Op(Op),
    /// More input is needed; at least this many bytes in total should be buffered.
    Incomplete(usize),
}

const MAX_ARGS: usize = 6;

/// Operation verbs a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Info,
    Ok,
    Err,
}

impl Verb {
    fn of(v: &[u8]) -> Option<Verb> {
        const VERBS: [(&[u8], Verb); 10] = [
            (b"PUB", Verb::Pub),
            (b"HPUB", Verb::Hpub),
            (b"SUB", Verb::Sub),
            (b"UNSUB", Verb::Unsub),
            (b"PING", Verb::Ping),
            (b"PONG", Verb::Pong),
            (b"CONNECT", Verb::Connect),
            (b"INFO", Verb::Info),
            (b"+OK", Verb::Ok),
            (b"-ERR", Verb::Err),
        ];
        VERBS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(v))
            .map(|(_, verb)| *verb)
    }
}

/// Splits `line` at spaces/tabs into at most `MAX_ARGS` non-empty ranges.
fn split_args(line: &[u8]) -> Option<([(usize, usize); MAX_ARGS], usize)> {
    let mut out = [(0usize, 0usize); MAX_ARGS];
    let mut n = 0;
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && matches!(line[i], b' ' | b'\t') {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        let start = i;
        i = memchr::memchr2(b' ', b'\t', &line[i..]).map_or(line.len(), |p| i + p);
        if n == MAX_ARGS {
            return None;
        }
        out[n] = (start, i);
        n += 1;
    }
    Some((out, n))
}

fn parse_size(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses one operation from the front of `buf`.
pub(crate) fn parse(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ParseError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > limits.max_control_line + 1 {
            return Err(ParseError::ControlLine);
        }
        return Ok(Parsed::Incomplete(buf.len() + 1));
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    if line_end > limits.max_control_line {
        return Err(ParseError::ControlLine);
    }
    let line = &buf[..line_end];
    let verb_end = line
        .iter()
        .position(|b| matches!(b, b' ' | b'\t'))
        .unwrap_or(line.len());
    let verb = Verb::of(&line[..verb_end]).ok_or(ParseError::Unknown)?;

    // Operations carrying a payload.
    if matches!(verb, Verb::Pub | Verb::Hpub) {
        let hpub = verb == Verb::Hpub;
        let (args, n) = split_args(&line[verb_end..]).ok_or(ParseError::Unknown)?;
        let args = &args[..n];
        let arg = |i: usize| {
            let (s, e) = args[i];
            (verb_end + s, verb_end + e)
        };
        let (subject, reply, hdr, total) = match (hpub, n) {
            (false, 2) => (arg(0), None, None, arg(1)),
            (false, 3) => (arg(0), Some(arg(1)), None, arg(2)),
            (true, 3) => (arg(0), None, Some(arg(1)), arg(2)),
            (true, 4) => (arg(0), Some(arg(1)), Some(arg(2)), arg(3)),
            _ => return Err(ParseError::Unknown),
        };
        let total_len = parse_size(&line[total.0..total.1]).ok_or(ParseError::Unknown)?;
        let hdr_len = match hdr {
            Some((s, e)) => {
                let h = parse_size(&line[s..e]).ok_or(ParseError::Unknown)?;
                if h > total_len {
                    return Err(ParseError::Unknown);
                }
                Some(h)
            }
            None => None,
        };
        if total_len > limits.max_payload {
            return Err(ParseError::MaxPayload);
        }
        let payload_start = nl + 1;
        let frame_len = payload_start + total_len + 2;
        if buf.len() < frame_len {
            return Ok(Parsed::Incomplete(frame_len));
        }
        if &buf[payload_start + total_len..frame_len] != b"\r\n" {
            return Err(ParseError::Unknown);
        }
        let frame = buf.split_to(frame_len).freeze();
        let body = frame.slice(payload_start..payload_start + total_len);
        let (headers, payload) = match hdr_len {
            Some(h) => (Some(body.slice(..h)), body.slice(h..)),
            None => (None, body),
        };
        return Ok(Parsed::Op(Op::Pub {
            subject: frame.slice(subject.0..subject.1),
            reply: reply.map(|(s, e)| frame.slice(s..e)),
            headers,
            payload,
        }));
    }

    // Control-line-only operations.
    let frame = buf.split_to(nl + 1).freeze();
    let line = frame.slice(..line_end);
    let rest_start = verb_end;
    let op = match verb {
        Verb::Ping => no_args(&line[rest_start..], Op::Ping)?,
        Verb::Pong => no_args(&line[rest_start..], Op::Pong)?,
        Verb::Ok => no_args(&line[rest_start..], Op::Ok)?,
        Verb::Connect => Op::Connect(trimmed(&line, rest_start)),
        Verb::Info => Op::Info,
        Verb::Err => Op::Err(trimmed(&line, rest_start)),
        Verb::Sub => {
            let (args, n) = split_args(&line[rest_start..]).ok_or(ParseError::Unknown)?;
            let a = |i: usize| line.slice(rest_start + args[i].0..rest_start + args[i].1);
            match n {
                2 => Op::Sub {
                    subject: a(0),
                    queue: None,
                    sid: a(1),
                },
                3 => Op::Sub {
                    subject: a(0),
                    queue: Some(a(1)),
                    sid: a(2),
                },
                _ => return Err(ParseError::Unknown),
            }
        }
        Verb::Unsub => {
            let (args, n) = split_args(&line[rest_start..]).ok_or(ParseError::Unknown)?;
            let a = |i: usize| line.slice(rest_start + args[i].0..rest_start + args[i].1);
            match n {
                1 => Op::Unsub {
                    sid: a(0),
                    max: None,
                },
                2 => Op::Unsub {
                    sid: a(0),
                    max: Some(parse_u64(&a(1)).ok_or(ParseError::Unknown)?),
                },
                _ => return Err(ParseError::Unknown),
            }
        }
        Verb::Pub | Verb::Hpub => return Err(ParseError::Unknown),
    };
    Ok(Parsed::Op(op))
}

/// Runs the parser over `data` the way a connection's read loop does, for fuzzing and for
/// replaying fuzz inputs in tests.
///
/// The first byte picks the size of the simulated socket reads (1..=64 bytes) and whether the
/// limits are tight (control line 64, payload 16) or the defaults (4096, 1 MiB); the rest is the
/// byte stream. Parsing stops at the first error, as a connection does. Panics only if the
/// parser breaks one of its own guarantees: an `Incomplete(n)` that asks for no more bytes than
/// are buffered, or a parsed operation whose parts are not slices of the input.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode & 0x3f) + 1;
    let limits = if mode & 0x40 != 0 {
        Limits {
            max_control_line: 64,
            max_payload: 16,
        }
    } else {
        Limits {
            max_control_line: 4096,
            max_payload: 1024 * 1024,
        }
    };
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut need = 0;
    while fed < stream.len() {
        let end = (fed + chunk).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        if buf.len() < need {
            continue;
        }
        loop {
            let before = buf.len();
            match parse(&mut buf, limits) {
                Err(_) => return,
                Ok(Parsed::Incomplete(n)) => {
                    assert!(
                        n > buf.len(),
                        "Incomplete({n}) with {} bytes buffered",
                        buf.len()
                    );
                    assert_eq!(buf.len(), before, "Incomplete consumed input");
                    need = n;
                    break;
                }
                Ok(Parsed::Op(op)) => {
                    assert!(buf.len() < before, "an operation consumed no input");
                    check_op(&op, limits);
                }
            }
        }
    }
}

fn check_op(op: &Op, limits: Limits) {
    let no_blank = |b: &Bytes| !b.is_empty() && !b.iter().any(|c| matches!(c, b' ' | b'\t'));
    match op {
        Op::Pub {
            subject,
            reply,
            headers,
            payload,
        } => {
            assert!(no_blank(subject));
            assert!(reply.as_ref().is_none_or(no_blank));
            let total = headers.as_ref().map_or(0, Bytes::len) + payload.len();
            assert!(total <= limits.max_payload);
        }
        Op::Sub {
            subject,
            queue,
            sid,
        } => {
            assert!(no_blank(subject) && no_blank(sid));
            assert!(queue.as_ref().is_none_or(no_blank));
        }
        Op::Unsub { sid, .. } => assert!(no_blank(sid)),
        Op::Connect(_) | Op::Ping | Op::Pong | Op::Ok | Op::Err(_) | Op::Info => {}
    }
}

fn no_args(rest: &[u8], op: Op) -> Result<Op, ParseError> {
    if rest.iter().all(|b| matches!(b, b' ' | b'\t')) {
        Ok(op)
    } else {
        Err(ParseError::Unknown)
    }
}

fn trimmed(line: &Bytes, start: usize) -> Bytes {
    let mut s = line.slice(start..);
    while s.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
        s.advance(1);
    }
    while s.last().is_some_and(|b| matches!(b, b' ' | b'\t')) {
        s.truncate(s.len() - 1);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_control_line: 64,
        max_payload: 16,
    };

    fn one(input: &str) -> Result<Parsed, ParseError> {
        let mut b = BytesMut::from(input);
        parse(&mut b, L)
    }

    fn op(input: &str) -> Op {
        match one(input) {
            Ok(Parsed::Op(op)) => op,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn verbs_case_insensitive() {
        assert_eq!(op("PING\r\n"), Op::Ping);
        assert_eq!(op("ping\r\n"), Op::Ping);
        assert_eq!(op("PoNg\n"), Op::Pong);
        assert_eq!(op("+ok\r\n"), Op::Ok);
        assert_eq!(op("connect {\"a\": 1}\r\n"), Op::Connect(b("{\"a\": 1}")));
        assert_eq!(op("-ERR 'x y'\r\n"), Op::Err(b("'x y'")));
    }

    #[test]
    fn pub_variants() {
        assert_eq!(
            op("pub foo 5\r\nhello\r\n"),
            Op::Pub {
                subject: b("foo"),
                reply: None,
                headers: None,
                payload: b("hello")
            }
        );
        assert_eq!(
            op("PUB\tfoo \t rep  2\r\nhi\r\n"),
            Op::Pub {
                subject: b("foo"),
                reply: Some(b("rep")),
                headers: None,
                payload: b("hi")
            }
        );
        assert_eq!(
            op("HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
            Op::Pub {
                subject: b("foo"),
                reply: None,
                headers: Some(b("NATS/1.0\r\n\r\n")),
                payload: b("hi")
            }
        );
        assert_eq!(
            op("hpub foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
            Op::Pub {
                subject: b("foo"),
                reply: Some(b("r")),
                headers: Some(b("NATS/1.0\r\n\r\n")),
                payload: b("")
            }
        );
    }

    #[test]
    fn sub_unsub() {
        assert_eq!(
            op("SUB foo 1\r\n"),
            Op::Sub {
                subject: b("foo"),
                queue: None,
                sid: b("1")
            }
        );
        assert_eq!(
            op("sub foo q 1\r\n"),
            Op::Sub {
                subject: b("foo"),
                queue: Some(b("q")),
                sid: b("1")
            }
        );
        assert_eq!(
            op("UNSUB 1\r\n"),
            Op::Unsub {
                sid: b("1"),
                max: None
            }
        );
        assert_eq!(
            op("unsub 1 5\r\n"),
            Op::Unsub {
                sid: b("1"),
                max: Some(5)
            }
        );
    }

    #[test]
    fn incomplete_input() {
        assert_eq!(one("PIN"), Ok(Parsed::Incomplete(4)));
        assert_eq!(one("PUB foo 5\r\nhel"), Ok(Parsed::Incomplete(18)));
        assert_eq!(one("PUB foo 5\r\nhello\r"), Ok(Parsed::Incomplete(18)));
        let mut buf = BytesMut::from("PING\r\nPUB a 1\r\nx\r\nPO");
        assert_eq!(parse(&mut buf, L), Ok(Parsed::Op(Op::Ping)));
        assert!(matches!(parse(&mut buf, L), Ok(Parsed::Op(Op::Pub { .. }))));
        assert_eq!(parse(&mut buf, L), Ok(Parsed::Incomplete(3)));
        assert_eq!(&buf[..], b"PO");
    }

    #[test]
    fn errors() {
        for bad in [
            "FOO\r\n",
            "\r\n",
            "PUB foo\r\n",
            "PUB foo bar baz 1\r\n",
            "PUB foo -1\r\n",
            "PUB foo x\r\n",
            "PUB foo 2\r\nabcd\r\n",
            "HPUB foo 5 3\r\n",
            "HPUB foo 3\r\n",
            "SUB foo\r\n",
            "SUB a b c d\r\n",
            "UNSUB\r\n",
            "UNSUB 1 x\r\n",
            "PING x\r\n",
            "MSG foo 1 2\r\nhi\r\n",
            "PUB foo 99999999999999999999999\r\n",
        ] {
            assert_eq!(one(bad), Err(ParseError::Unknown), "{bad:?}");
        }
        assert_eq!(one("PUB foo 17\r\n"), Err(ParseError::MaxPayload));
        let long = format!("SUB {} 1\r\n", "a".repeat(80));
        assert_eq!(one(&long), Err(ParseError::ControlLine));
        let unterminated = "a".repeat(80);
        assert_eq!(one(&unterminated), Err(ParseError::ControlLine));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"PUBSHMGINOKCTpubsh 0123456789\r\n\t.*>+-";
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let mut buf = BytesMut::from(&v[..]);
            while let Ok(Parsed::Op(_)) = parse(&mut buf, L) {}
        }
    }
}

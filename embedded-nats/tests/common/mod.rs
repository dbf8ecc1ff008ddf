//! Test support: a raw-TCP protocol client and server start-up functions. The generic helpers
//! come from `stan-test-support` (without its `broker` feature: the broker depends on this
//! crate).
#![allow(dead_code)]

use std::time::Duration;

use stan_embedded_nats::{Server, ServerOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub use stan_test_support::init_tracing;

/// Upper bound for any single wait in a test. Shorter than `stan_test_support::WAIT` on
/// purpose: some waits also mean "before the client's own timeout" (async-nats requests time
/// out after 10 s).
pub const WAIT: Duration = Duration::from_secs(5);

/// Options on a free port.
pub fn opts() -> ServerOptions {
    init_tracing();
    ServerOptions {
        port: 0,
        ..ServerOptions::default()
    }
}

/// Starts a server with default options on a free port.
pub async fn start() -> Server {
    init_tracing();
    Server::start(opts()).await.expect("server starts")
}

/// A raw protocol client.
pub struct Raw {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    /// The INFO line's JSON.
    pub info: serde_json::Value,
}

impl Raw {
    /// Opens a TCP connection and reads INFO.
    pub async fn open(server: &Server) -> Raw {
        let stream = TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        let (rd, wr) = stream.into_split();
        let mut raw = Raw {
            rd: BufReader::new(rd),
            wr,
            info: serde_json::Value::Null,
        };
        let line = raw.line().await;
        let json = line.strip_prefix("INFO ").expect("INFO first");
        raw.info = serde_json::from_str(json).expect("INFO is JSON");
        raw
    }

    /// Opens a connection and completes the handshake with `connect` (JSON) + PING.
    pub async fn connect_with(server: &Server, connect: &str) -> Raw {
        let mut raw = Raw::open(server).await;
        raw.send(&format!("CONNECT {connect}\r\nPING\r\n")).await;
        raw.expect("PONG").await;
        raw
    }

    /// Opens a connection with a plain CONNECT (headers and no_responders on).
    pub async fn connect(server: &Server) -> Raw {
        Raw::connect_with(
            server,
            r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}"#,
        )
        .await
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, s: &str) {
        self.send_bytes(s.as_bytes()).await;
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, b: &[u8]) {
        self.wr.write_all(b).await.expect("write");
    }

    /// Reads one line (without CRLF), skipping server PINGs is NOT done here.
    pub async fn line(&mut self) -> String {
        self.try_line().await.expect("connection open")
    }

    /// Reads one line, or None on EOF.
    pub async fn try_line(&mut self) -> Option<String> {
        let mut s = String::new();
        let n = tokio::time::timeout(WAIT, self.rd.read_line(&mut s))
            .await
            .expect("line within timeout")
            .ok()?;
        if n == 0 {
            return None;
        }
        assert!(s.ends_with("\r\n"), "line ends with CRLF: {s:?}");
        s.truncate(s.len() - 2);
        Some(s)
    }

    /// Reads one line and asserts it.
    pub async fn expect(&mut self, want: &str) {
        let got = self.line().await;
        assert_eq!(got, want);
    }

    /// Reads exactly `n` bytes plus CRLF.
    pub async fn payload(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n + 2];
        tokio::time::timeout(WAIT, self.rd.read_exact(&mut b))
            .await
            .expect("payload within timeout")
            .expect("payload");
        assert_eq!(&b[n..], b"\r\n");
        b.truncate(n);
        b
    }

    /// Reads a MSG/HMSG: returns (control line, header block, payload).
    pub async fn msg(&mut self) -> (String, Vec<u8>, Vec<u8>) {
        let line = self.line().await;
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[0] {
            "MSG" => {
                let n: usize = parts.last().unwrap().parse().unwrap();
                let p = self.payload(n).await;
                (line, Vec::new(), p)
            }
            "HMSG" => {
                let total: usize = parts[parts.len() - 1].parse().unwrap();
                let hdr: usize = parts[parts.len() - 2].parse().unwrap();
                let all = self.payload(total).await;
                (line, all[..hdr].to_vec(), all[hdr..].to_vec())
            }
            other => panic!("expected MSG/HMSG, got {other:?} in {line:?}"),
        }
    }

    /// Round-trips a PING: everything the server queued for us before it arrives first.
    pub async fn sync(&mut self) {
        self.send("PING\r\n").await;
        self.expect("PONG").await;
    }

    /// Asserts nothing is pending for us: the next line after a PING is the PONG.
    pub async fn expect_nothing(&mut self) {
        self.send("PING\r\n").await;
        let got = self.line().await;
        assert_eq!(got, "PONG", "expected no pending message");
    }

    /// Reads until EOF (ignoring anything else); panics if not closed within the timeout.
    /// Returns how many bytes were drained.
    pub async fn expect_closed(&mut self) -> usize {
        let mut sink = Vec::new();
        let r = tokio::time::timeout(WAIT, self.rd.read_to_end(&mut sink)).await;
        assert!(r.is_ok(), "connection should be closed by the server");
        sink.len()
    }
}

/// Waits until `cond` holds (polling an observable state with a deadline).
pub async fn wait_for(cond: impl FnMut() -> bool) {
    stan_test_support::wait_until("condition", cond).await
}

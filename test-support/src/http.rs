//! A minimal HTTP/1.1 client over a raw TCP stream, for the monitoring endpoints' tests: it
//! sees the status line, the headers and the body exactly as the server sent them.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::within;

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Header lines, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked when the server sent it in chunks).
    pub body: String,
}

impl Resp {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    send(addr, "GET", path, "").await
}

/// `POST path` without a body, with extra header lines (each ending in CRLF).
pub async fn post(addr: SocketAddr, path: &str, headers: &str) -> Resp {
    send(addr, "POST", path, headers).await
}

/// One request on a new connection (`Connection: close`), within the usual time limit.
pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Resp {
    let text = within("HTTP response", async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    })
    .await;
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut r = Resp {
        status,
        headers,
        body: body.to_string(),
    };
    if r.header("transfer-encoding") == Some("chunked") {
        r.body = dechunk(&r.body);
    }
    r
}

/// The body of a `Transfer-Encoding: chunked` answer (nats-server sends large ones so).
fn dechunk(body: &str) -> String {
    let mut rest = body.as_bytes();
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = std::str::from_utf8(&rest[..eol]).expect("chunk size");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if n == 0 {
            return String::from_utf8(out).expect("UTF-8 body");
        }
        let data = &rest[eol + 2..];
        out.extend_from_slice(&data[..n]);
        rest = &data[n + 2..];
    }
}

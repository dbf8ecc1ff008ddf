//! Operations features through the `stan-broker` binary: `--log_format json` and the
//! configuration reload on SIGHUP.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Conn;

const BIN: &str = env!("CARGO_BIN_EXE_stan-broker");
const WAIT: Duration = Duration::from_secs(20);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stan-ops-bin-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running broker process whose log lines (stderr) arrive on a channel; killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stan-broker");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle`; returns the text after it.
    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(i) = line.find(needle) {
                        return line[i + needle.len()..].trim().to_string();
                    }
                }
                Err(e) => panic!("no line with {needle:?} ({e}); seen: {:#?}", self.seen),
            }
        }
    }

    /// Every line up to the end of the output (the process must be exiting).
    fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        &self.seen
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    fn wait_exit(&mut self) -> Option<i32> {
        self.child.wait().expect("wait for stan-broker").code()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the monitoring port");
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn channel(monitor: &str, name: &str) -> serde_json::Value {
    let (status, body) = http_get(monitor, &format!("/streaming/channelsz?channel={name}"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Every stderr line of a JSON-logging run is a JSON object with `level` and `message`.
fn assert_json_lines(lines: &[String]) {
    assert!(lines.len() >= 3, "{lines:#?}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["message"].is_string(), "{line}");
        assert!(v["timestamp"].is_string(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"level\":\"INFO\"")
                && l.contains("\"message\":\"Server is ready\"")),
        "{lines:#?}"
    );
}

#[test]
fn log_format_json_flag_writes_json_lines() {
    let mut b = Running::start(&["-p", "0", "--log_format", "json"]);
    b.wait_for("Server is ready");
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
    assert_json_lines(b.drain());
}

#[test]
fn log_format_config_key_writes_json_lines() {
    let dir = temp_dir("json-conf");
    let path = dir.join("stan.conf");
    std::fs::write(&path, "port: 0\nlog_format: json\n").unwrap();
    let mut b = Running::start(&["-c", path.to_str().unwrap()]);
    b.wait_for("Server is ready");
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
    assert_json_lines(b.drain());
}

#[test]
fn unknown_log_format_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["-p", "0", "--log_format", "xml"])
        .output()
        .expect("run stan-broker");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid log format \"xml\" (expected text or json)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_limits_and_log_level() {
    let dir = temp_dir("reload");
    let path = dir.join("stan.conf");
    std::fs::write(
        &path,
        "port: 0\nhttp_port: 0\nstreaming {\n  store_limits { max_msgs: 10 }\n}\n",
    )
    .unwrap();
    let mut b = Running::start(&["-c", path.to_str().unwrap()]);
    let url = b.wait_for("Listening for client connections on");
    let url = url.split_whitespace().next().unwrap().to_string();
    let monitor = b.wait_for("Monitoring on http://");
    b.wait_for("Server is ready");

    let mut c = Conn::connect(&url, "test-cluster", "reload-client").await;
    for _ in 0..5 {
        c.publish("orders", b"m").await;
    }
    let ch = channel(&monitor, "orders");
    assert_eq!(
        (ch["msgs"].as_u64(), ch["first_seq"].as_u64()),
        (Some(5), Some(1))
    );

    // Lower max_msgs, debug logging, and a change that needs a restart.
    std::fs::write(
        &path,
        "port: 0\nhttp_port: 0\ndebug: true\nstreaming {\n  hb_interval: \"7s\"\n  store_limits { max_msgs: 3 }\n}\n",
    )
    .unwrap();
    b.signal("-HUP");
    b.wait_for("received SIGHUP, reloading the configuration");
    let restart = b.wait_for("configuration reload: the change of");
    assert!(
        restart.starts_with("hb_interval needs a restart"),
        "{restart}"
    );
    b.wait_for("configuration reload: channel limits applied");
    b.wait_for("configuration reload: log level set to DEBUG");
    b.wait_for("configuration reloaded");
    assert!(
        !b.seen.iter().any(|l| l.contains("channel created")),
        "debug lines before the reload: {:#?}",
        b.seen
    );

    // The existing channel enforces the new limit from its next publish on.
    c.publish("orders", b"m").await;
    let ch = channel(&monitor, "orders");
    assert_eq!(
        (ch["msgs"].as_u64(), ch["first_seq"].as_u64()),
        (Some(3), Some(4))
    );
    // Debug lines now show up.
    c.publish("fresh", b"m").await;
    b.wait_for("channel created");
    let (_, storez) = http_get(&monitor, "/streaming/storez");
    assert!(storez.contains("\"max_msgs\": 3"), "{storez}");

    // A bad file is reported and the running configuration is kept.
    std::fs::write(&path, "streaming {\n  store_limits { max_msgs: 1 \n").unwrap();
    b.signal("-HUP");
    let failed = b.wait_for("configuration reload failed, keeping the running configuration:");
    assert!(failed.contains("stan.conf"), "{failed}");
    for _ in 0..2 {
        c.publish("orders", b"m").await;
    }
    let ch = channel(&monitor, "orders");
    assert_eq!(
        (ch["msgs"].as_u64(), ch["last_seq"].as_u64()),
        (Some(3), Some(8))
    );

    c.close().await;
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
}

#[test]
fn help_describes_metrics_log_format_and_reload() {
    let out = Command::new(BIN)
        .arg("-h")
        .output()
        .expect("run stan-broker");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--log_format <string>", "text|json", "/metrics", "SIGHUP"] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}

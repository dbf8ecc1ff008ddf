//! Runs the `stan-broker` binary: version, help, usage errors, config errors, start and stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_stan-broker");
const WAIT: Duration = Duration::from_secs(20);

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run stan-broker")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stan-cli-bin-{name}-{}", std::process::id()));
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
                    assert!(
                        !line.contains("Server is ready"),
                        "ready without a line containing {needle:?}: {:#?}",
                        self.seen
                    );
                }
                Err(e) => panic!("no line with {needle:?} ({e}); seen: {:#?}", self.seen),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits for the process to exit (bounded) and returns its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let (tx, rx) = mpsc::channel();
        let pid = self.child.id();
        // Watchdog: if the process does not exit in time, kill it so the test fails, not hangs.
        let watchdog = std::thread::spawn(move || {
            if rx.recv_timeout(WAIT).is_err() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        });
        let status = self.child.wait().expect("wait for stan-broker");
        let _ = tx.send(());
        let _ = watchdog.join();
        status.code()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `host:port` from `nats://host:port (embedded NATS)`.
fn client_addr(rest: &str) -> String {
    let url = rest.split_whitespace().next().unwrap();
    url.trim_start_matches("nats://").to_string()
}

fn read_info_line(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the client port");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = String::new();
    BufReader::new(&mut s).read_line(&mut line).unwrap();
    line
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

#[test]
fn version_prints_and_exits_zero() {
    for flag in ["--version", "-v", "-version"] {
        let o = run(&[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert!(
            stdout(&o).contains(env!("CARGO_PKG_VERSION")),
            "{flag}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn help_lists_official_flags() {
    for flag in ["-h", "--help", "-help"] {
        let o = run(&[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}");
        let out = stdout(&o);
        for needle in [
            "-cid, --cluster_id",
            "-st, --store",
            "-m, --http_port",
            "-sc, --stan_config",
            "--replace_durable",
        ] {
            assert!(out.contains(needle), "{flag}: help lacks {needle:?}");
        }
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let o = run(&["-p", "0", "-bogus_flag", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown flag '-bogus_flag'"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--nope=1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("'--nope'"), "{}", stderr(&o));
}

#[test]
fn bad_values_are_usage_errors() {
    for (args, needle) in [
        (&["-p", "abc"][..], "abc"),
        (&["-mb", "lots"], "invalid size"),
        (&["-ma", "5"], "invalid duration"),
        (&["--replace_durable=perhaps"], "invalid boolean"),
        (&["-cid"], "cluster_id"),
        (&["stray"], "stray"),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn file_store_needs_a_directory() {
    let o = run(&["-st", "FILE"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("the FILE store needs a directory (--dir)"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn file_store_starts_and_stops_on_sigterm() {
    let dir = temp_dir("file-store");
    let d = dir.join("store");
    let mut b = Running::start(&[
        "-p",
        "0",
        "-st",
        "FILE",
        "--dir",
        d.to_str().unwrap(),
        "--file_sync=false",
        "--file_slice_max_msgs",
        "100",
    ]);
    b.wait_for("Server is ready");
    assert!(
        b.seen.iter().any(|l| l.contains("Store: FILE (")),
        "{:#?}",
        b.seen
    );
    assert!(d.join("server.dat").exists() && d.join(".lock").exists());
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_file_errors_name_file_and_line() {
    let dir = temp_dir("conf-err");
    let path = dir.join("broken.conf");
    std::fs::write(
        &path,
        "# broken\nstreaming {\n  hb_fail_count: \"many\"\n}\n",
    )
    .unwrap();
    let o = run(&["-sc", path.to_str().unwrap(), "-p", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}:3:", path.display())), "{err}");
    assert!(err.contains("hb_fail_count"), "{err}");
}

#[test]
fn port_in_use_fails_startup_and_logs_to_file() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = temp_dir("log");
    let log = dir.join("broker.log");
    let _ = std::fs::remove_file(&log);
    let o = run(&["-p", &port, "-l", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&port), "{}", stderr(&o));
    let logged = std::fs::read_to_string(&log).expect("log file written");
    assert!(logged.contains("Starting stan-broker"), "{logged}");
    assert!(logged.contains("startup failed"), "{logged}");
}

#[test]
fn rust_log_overrides_the_default_level() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = Command::new(BIN)
        .args(["-p", &port])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        !err.contains("Starting stan-broker"),
        "info line shown: {err}"
    );
    assert!(
        err.contains("ERROR") && err.contains("startup failed"),
        "{err}"
    );
}

#[test]
fn starts_on_a_free_port_and_stops_on_sigterm() {
    let mut b = Running::start(&["-p", "0", "-cid", "cli-test-cluster", "-SD"]);
    let rest = b.wait_for("Listening for client connections on ");
    b.wait_for("Server is ready");
    assert!(
        b.seen
            .iter()
            .any(|l| l.contains("Cluster ID: cli-test-cluster")),
        "{:#?}",
        b.seen
    );
    assert!(
        b.seen.iter().any(|l| l.contains("Store: MEMORY")),
        "{:#?}",
        b.seen
    );
    let info = read_info_line(&client_addr(&rest));
    assert!(info.starts_with("INFO {"), "{info}");
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
}

/// The broker turns transparent huge pages off for itself (see `no_transparent_huge_pages` in
/// src/main.rs): the kernel reports it in the process's status.
#[cfg(target_os = "linux")]
#[test]
fn transparent_huge_pages_are_off() {
    let mut b = Running::start(&["-p", "0"]);
    b.wait_for("Server is ready");
    let status = std::fs::read_to_string(format!("/proc/{}/status", b.child.id())).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("the kernel reports THP_enabled");
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
}

#[test]
fn stops_on_sigint() {
    let mut b = Running::start(&["--port=-1", "--cluster_id=sigint-cluster"]);
    b.wait_for("Server is ready");
    b.signal("-INT");
    assert_eq!(b.wait_exit(), Some(0));
}

#[test]
fn ignored_flags_are_logged_as_warnings() {
    let mut b = Running::start(&[
        "-p",
        "0",
        "--clustered",
        "--file_truncate_bad_eof=false",
        "-secure",
    ]);
    b.wait_for("Server is ready");
    for flag in ["--clustered", "--file_truncate_bad_eof", "--secure"] {
        assert!(
            b.seen
                .iter()
                .any(|l| l.contains("WARN") && l.contains(flag)),
            "no warning for {flag}: {:#?}",
            b.seen
        );
    }
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
}

#[test]
fn config_file_sets_cluster_and_monitoring() {
    let dir = temp_dir("conf-ok");
    let path = dir.join("stan.conf");
    std::fs::write(
        &path,
        "port: 0\nhttp_port: 0\nstreaming {\n  id: from-conf-file\n  store_limits { max_msgs: 10 }\n}\n",
    )
    .unwrap();
    let mut b = Running::start(&["-c", path.to_str().unwrap()]);
    let monitor = b.wait_for("Monitoring on http://");
    b.wait_for("Server is ready");
    let (status, body) = http_get(&monitor, "/streaming/serverz");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"cluster_id\": \"from-conf-file\""),
        "{body}"
    );
    let (status, body) = http_get(&monitor, "/streaming/storez");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"max_msgs\": 10"), "{body}");
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
}

/// The sample configuration shipped in deploy/ starts a file-store broker without a warning,
/// with its limits applied (ports and directory overridden for the test).
#[test]
fn deploy_sample_config_starts_cleanly() {
    let dir = temp_dir("deploy-conf");
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/stan-broker.conf");
    let mut b = Running::start(&[
        "-c",
        conf,
        "-p",
        "0",
        "-m",
        "0",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let monitor = b.wait_for("Monitoring on http://");
    b.wait_for("Server is ready");
    assert!(
        !b.seen.iter().any(|l| l.contains("WARN")),
        "warnings: {:#?}",
        b.seen
    );
    let (status, body) = http_get(&monitor, "/streaming/serverz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"cluster_id\": \"prod-cluster\""), "{body}");
    let (status, body) = http_get(&monitor, "/streaming/storez");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"type\": \"FILE\""), "{body}");
    for want in [
        "\"max_channels\": 1000",
        "\"max_msgs\": 10000000",
        "\"max_subscriptions\": 1000",
        "\"max_bytes\": 10737418240",
    ] {
        assert!(body.contains(want), "{want} missing: {body}");
    }
    b.signal("-TERM");
    assert_eq!(b.wait_exit(), Some(0));
}

#[test]
fn ready_line_and_ports_file_carry_the_urls() {
    use stan_broker::ready::Ports;
    let dir = temp_dir("ports");
    let mut child = Command::new(BIN)
        .args([
            "-p",
            "0",
            "-m",
            "0",
            "-cid",
            "ready-cluster",
            "--ports_file_dir",
        ])
        .arg(&dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stan-broker");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ports = Ports::from_line(&line).unwrap_or_else(|| panic!("not a ready line: {line:?}"));
    assert_eq!(ports.cluster_id, "ready-cluster");
    assert_eq!(ports.pid, child.id());
    let info = read_info_line(ports.nats[0].trim_start_matches("nats://"));
    assert!(info.starts_with("INFO {"), "{info}");
    let (status, body) = http_get(
        ports.monitoring[0].trim_start_matches("http://"),
        "/streaming/serverz",
    );
    assert_eq!(status, 200, "{body}");
    // The file is written before the line is printed.
    let file = std::fs::read_to_string(Ports::file_path(&dir, child.id())).unwrap();
    let from_file: Ports = serde_json::from_str(&file).unwrap();
    assert_eq!(from_file, ports);
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unwritable_ports_file_dir_fails_startup() {
    let o = run(&["-p", "0", "--ports_file_dir", "/nonexistent/stan-ports-dir"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot write the ports file"),
        "{}",
        stderr(&o)
    );
    assert!(!stdout(&o).contains("STAN_BROKER_READY"), "{}", stdout(&o));
}

//! The `stan-broker` binary as a child process.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use stan_broker::ready::Ports;

use crate::{free_port, port_of};

/// How many log lines a [`BrokerProcess`] keeps for diagnostics.
const LOG_LINES: usize = 500;

/// Finds the `stan-broker` binary: `$STAN_BROKER_BIN` if set, else `stan-broker` in the
/// cargo output directory the running test executable belongs to (`target/<profile>/`, the
/// test itself being in `target/<profile>/deps/`).
///
/// The binary is built by `cargo build -p stan-broker` (or by any `cargo test` that includes
/// `stan-broker`'s tests). In `stan-broker`'s own tests, pass `env!("CARGO_BIN_EXE_stan-broker")`
/// as [`ProcessOptions::binary`] instead.
pub fn broker_binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("STAN_BROKER_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("STAN_BROKER_BIN={} does not exist", path.display()),
            ))
        };
    }
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("stan-broker"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "stan-broker not found next to {}: build it (cargo build -p stan-broker) \
                     or set STAN_BROKER_BIN",
                    exe.display()
                ),
            )
        })
}

/// How to run a [`BrokerProcess`].
///
/// The broker listens on 127.0.0.1 with `-a 127.0.0.1 -p <port> -cid <cluster_id>`, plus
/// `-m <port>` when `monitoring` is on, then `args`.
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    /// The binary; `None`: [`broker_binary`].
    pub binary: Option<PathBuf>,
    /// Cluster ID (`-cid`); default `test-cluster`.
    pub cluster_id: String,
    /// Client port (`-p`); default 0, a free port (see [`free_port`]).
    pub port: u16,
    /// Monitoring on a free port; default off.
    pub monitoring: bool,
    /// More command-line flags (not `-a`, `-p`, `-m` or `-cid`: restart reuses those).
    pub args: Vec<String>,
    /// How long to wait for the ready line; default 30 s.
    pub startup_timeout: Duration,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            binary: None,
            cluster_id: "test-cluster".into(),
            port: 0,
            monitoring: false,
            args: Vec::new(),
            startup_timeout: Duration::from_secs(30),
        }
    }
}

/// A `stan-broker` child process, ready once it printed its ready line
/// (`stan_broker::ready`): its URLs come from that line, never from log text or a delay.
///
/// Its standard output and error are drained for as long as it runs (so it never blocks on a
/// full pipe); the last log lines are kept for failure messages ([`logs`](Self::logs)).
/// Killed when dropped. The methods block the calling thread while they wait for the process
/// (start-up, exit), which is fine in `#[tokio::test]`s too.
///
/// ```no_run
/// use stan_test_support::{BrokerProcess, ProcessOptions};
/// let mut broker = BrokerProcess::start_with(ProcessOptions {
///     monitoring: true,
///     ..Default::default()
/// })
/// .unwrap();
/// println!("{} {:?}", broker.url(), broker.monitoring_url());
/// broker.kill();
/// broker.restart().unwrap(); // same ports, empty memory store
/// ```
pub struct BrokerProcess {
    options: ProcessOptions,
    binary: PathBuf,
    child: Option<Child>,
    ports: Ports,
    logs: Arc<Mutex<VecDeque<String>>>,
    paused: bool,
}

impl BrokerProcess {
    /// Starts a broker with the default [`ProcessOptions`].
    pub fn start() -> io::Result<BrokerProcess> {
        BrokerProcess::start_with(ProcessOptions::default())
    }

    /// Starts a broker and returns once it printed its ready line; an error (with the
    /// broker's output) when it exits first or is not ready within the start-up timeout.
    pub fn start_with(options: ProcessOptions) -> io::Result<BrokerProcess> {
        let binary = match &options.binary {
            Some(b) => b.clone(),
            None => broker_binary()?,
        };
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        // Ports chosen here rather than by the broker (port 0) lie outside the ephemeral
        // range, so no outgoing connection can hold them when `restart` binds them again.
        let pick = options.port == 0;
        let mut attempts = 0;
        let (child, ports) = loop {
            let port = if pick { free_port() } else { options.port };
            let monitoring = options
                .monitoring
                .then(|| if pick { free_port() } else { 0 });
            match launch(&binary, &options, port, monitoring, &logs) {
                Ok(started) => break started,
                // Another process took a chosen port first: try others.
                Err(e) if pick && attempts < 5 && e.to_string().contains("in use") => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(BrokerProcess {
            options,
            binary,
            child: Some(child),
            ports,
            logs,
            paused: false,
        })
    }

    /// Where the broker listens, as its ready line said (from the last start).
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The URL clients connect to.
    pub fn url(&self) -> &str {
        &self.ports.nats[0]
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        port_of(self.url()).expect("client URL with a port")
    }

    /// The monitoring base URL (`http://127.0.0.1:<port>`), if monitoring is on.
    pub fn monitoring_url(&self) -> Option<&str> {
        self.ports.monitoring.first().map(String::as_str)
    }

    /// The cluster ID.
    pub fn cluster_id(&self) -> &str {
        &self.ports.cluster_id
    }

    /// The binary that runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The process ID while it has not been killed, stopped or reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs (also while paused).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// True between [`pause`](Self::pause) and [`resume`](Self::resume).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The last lines the broker printed (standard error and output, over all its starts).
    pub fn logs(&self) -> String {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Kills the broker at once (SIGKILL, as a crash would) and reaps it. No-op if it is not
    /// running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Stops the broker gracefully (SIGTERM, after SIGCONT if paused) and waits for it to exit;
    /// kills it if it still runs after `timeout`. No-op if it is not running.
    pub fn stop(&mut self, timeout: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let pid = child.id();
            if self.paused {
                let _ = signal(pid, "CONT");
            }
            if signal(pid, "TERM").is_ok() {
                let deadline = Instant::now() + timeout;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        self.kill();
    }

    /// Stops the broker if it runs ([`stop`](Self::stop), 10 s) and starts it again with the
    /// same options on the same client and monitoring ports (its memory store starts empty).
    /// Retries for a few seconds while the old ports are still held.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop(Duration::from_secs(10));
        let port = self.port();
        let monitoring = self.monitoring_url().and_then(port_of);
        self.push_log(format!("--- restart on port {port} ---"));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match launch(&self.binary, &self.options, port, monitoring, &self.logs) {
                Ok((child, ports)) => {
                    self.child = Some(child);
                    self.ports = ports;
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                // The old listeners may hold the ports for a moment.
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Freezes the broker (SIGSTOP): connections stay open but nothing is answered, as with a
    /// hung server. On Linux this returns once every thread of the process is stopped.
    pub fn pause(&mut self) -> io::Result<()> {
        let pid = self.pid().ok_or_else(not_running)?;
        signal(pid, "STOP")?;
        self.paused = true;
        wait_stopped(pid, Duration::from_secs(10))
    }

    /// Lets a paused broker run again (SIGCONT).
    pub fn resume(&mut self) -> io::Result<()> {
        let pid = self.pid().ok_or_else(not_running)?;
        signal(pid, "CONT")?;
        self.paused = false;
        Ok(())
    }

    fn push_log(&self, line: String) {
        push_log(&self.logs, line);
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn not_running() -> io::Error {
    io::Error::other("the broker is not running")
}

fn push_log(logs: &Mutex<VecDeque<String>>, line: String) {
    let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
    if logs.len() == LOG_LINES {
        logs.pop_front();
    }
    logs.push_back(line);
}

/// Runs the broker and waits for its ready line.
fn launch(
    binary: &Path,
    options: &ProcessOptions,
    port: u16,
    monitoring: Option<u16>,
    logs: &Arc<Mutex<VecDeque<String>>>,
) -> io::Result<(Child, Ports)> {
    let mut cmd = Command::new(binary);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["-cid", &options.cluster_id]);
    if let Some(m) = monitoring {
        cmd.args(["-m", &m.to_string()]);
    }
    let mut child = cmd
        .args(&options.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("run {}: {e}", binary.display())))?;

    let (ready_tx, ready_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let out_logs = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match Ports::from_line(&line) {
                Some(ports) => {
                    let _ = ready_tx.send(Some(ports));
                }
                None => push_log(&out_logs, line),
            }
        }
        // End of output: the process exited (or closed its standard output).
        let _ = ready_tx.send(None);
    });
    let stderr = child.stderr.take().expect("piped stderr");
    let err_logs = logs.clone();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            push_log(&err_logs, line);
        }
    });

    let failed = |mut child: Child, why: String| {
        let _ = child.kill();
        let status = child.wait().ok();
        // The process is gone, so its standard error ends: collect the last lines.
        let _ = stderr_reader.join();
        let logs = logs.lock().unwrap_or_else(|e| e.into_inner());
        let tail: Vec<&str> = logs
            .iter()
            .rev()
            .take(40)
            .rev()
            .map(String::as_str)
            .collect();
        io::Error::other(format!(
            "stan-broker ({} -p {port}) {why} (exit status {status:?}); output:\n{}",
            binary.display(),
            tail.join("\n")
        ))
    };
    match ready_rx.recv_timeout(options.startup_timeout) {
        Ok(Some(ports)) if !ports.nats.is_empty() => Ok((child, ports)),
        Ok(Some(ports)) => Err(failed(child, format!("announced no client URL: {ports:?}"))),
        Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(failed(child, "exited before it was ready".into()))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(failed(
            child,
            format!("was not ready within {:?}", options.startup_timeout),
        )),
    }
}

/// Sends `SIG<name>` to `pid` with kill(1) (this workspace forbids `unsafe`, so no libc).
fn signal(pid: u32, name: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{name} {pid}: {status}")))
    }
}

/// Waits until every thread of `pid` is stopped (state `T` in `/proc/<pid>/task/*/stat`).
/// Without procfs, signal delivery is all there is to rely on.
fn wait_stopped(pid: u32, timeout: Duration) -> io::Result<()> {
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    if !tasks.is_dir() {
        return Ok(());
    }
    let all_stopped = || -> bool {
        let Ok(entries) = std::fs::read_dir(&tasks) else {
            return true; // the process is gone
        };
        entries.flatten().all(|task| {
            match std::fs::read_to_string(task.path().join("stat")) {
                // The state follows the parenthesised command name; T/t: stopped.
                Ok(stat) => stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .is_none_or(|state| state == "T" || state == "t"),
                Err(_) => true, // the thread just exited
            }
        })
    };
    let deadline = Instant::now() + timeout;
    while !all_stopped() {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "stan-broker (pid {pid}) did not stop within {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::OnceLock;

    use super::*;

    /// `stan-broker`, built from the current sources (`cargo build` is a no-op when it is up
    /// to date), unless `STAN_BROKER_BIN` names one.
    fn binary() -> PathBuf {
        static BUILT: OnceLock<PathBuf> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                if std::env::var_os("STAN_BROKER_BIN").is_none() {
                    build_broker();
                }
                broker_binary().expect("stan-broker binary")
            })
            .clone()
    }

    fn build_broker() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "stan-broker",
            "--bin",
            "stan-broker",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        // Without the variables cargo sets for this test (package name, manifest directory,
        // ...): build scripts that watch them (ring's does) would see a change and rebuild
        // shared dependencies in the target directory.
        const SET_FOR_TESTS: [&str; 4] = [
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ];
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_", "CARGO_CFG_"]
                .iter()
                .any(|p| name.starts_with(p))
                || SET_FOR_TESTS.contains(&&*name)
            {
                cmd.env_remove(&*name);
            }
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p stan-broker failed");
    }

    fn options() -> ProcessOptions {
        ProcessOptions {
            binary: Some(binary()),
            cluster_id: "ts-process".into(),
            ..Default::default()
        }
    }

    /// The INFO line of the NATS listener at `port`, or `None` if none comes within `wait`.
    fn info_line(port: u16, wait: Duration) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.starts_with("INFO ").then_some(text)
    }

    fn http_get(url: &str, path: &str) -> String {
        let port = port_of(url).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn start_ready_kill_restart_on_the_same_ports() {
        let mut b = BrokerProcess::start_with(ProcessOptions {
            monitoring: true,
            ..options()
        })
        .unwrap();
        assert!(b.is_running());
        assert_eq!(b.cluster_id(), "ts-process");
        assert_eq!(b.ports().pid, b.pid().unwrap());
        let port = b.port();
        assert_eq!(b.url(), format!("nats://127.0.0.1:{port}"));
        let monitoring = b.monitoring_url().expect("monitoring on").to_string();
        assert!(info_line(port, Duration::from_secs(10)).is_some());
        let serverz = http_get(&monitoring, "/streaming/serverz");
        assert!(serverz.contains("ts-process"), "{serverz}");
        assert!(!b.logs().is_empty(), "logs are collected");

        b.kill();
        assert!(!b.is_running());
        assert_eq!(b.pid(), None);
        assert!(info_line(port, Duration::from_secs(1)).is_none());

        b.restart().unwrap();
        assert!(b.is_running());
        assert_eq!(b.port(), port);
        assert_eq!(b.monitoring_url(), Some(monitoring.as_str()));
        assert!(info_line(port, Duration::from_secs(10)).is_some());
        assert!(b.logs().contains("--- restart on port"));

        // Restart of a running broker: graceful stop first.
        let old_pid = b.pid().unwrap();
        b.restart().unwrap();
        assert_ne!(b.pid().unwrap(), old_pid);
        assert_eq!(b.port(), port);
    }

    #[test]
    fn pause_freezes_and_resume_thaws() {
        let mut b = BrokerProcess::start_with(options()).unwrap();
        let port = b.port();
        b.pause().unwrap();
        assert!(b.is_paused() && b.is_running());
        // The kernel still accepts the connection, but nobody sends INFO.
        assert!(info_line(port, Duration::from_millis(300)).is_none());
        b.resume().unwrap();
        assert!(!b.is_paused());
        assert!(info_line(port, Duration::from_secs(10)).is_some());
        // Stopping a paused broker works too (SIGCONT first).
        b.pause().unwrap();
        b.stop(Duration::from_secs(10));
        assert!(!b.is_running());
    }

    #[test]
    fn drop_kills_the_process() {
        let b = BrokerProcess::start_with(options()).unwrap();
        let port = b.port();
        let pid = b.pid().unwrap();
        drop(b);
        assert!(!Path::new(&format!("/proc/{pid}")).exists() || !cfg!(target_os = "linux"));
        assert!(info_line(port, Duration::from_secs(1)).is_none());
    }

    #[test]
    fn a_broker_that_exits_at_once_is_an_error_with_its_output() {
        let err = match BrokerProcess::start_with(ProcessOptions {
            args: vec!["--no-such-flag".into()],
            ..options()
        }) {
            Ok(_) => panic!("an unknown flag must fail"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("exited before it was ready"), "{err}");
        assert!(err.contains("no-such-flag"), "{err}");
    }

    #[test]
    fn missing_binary_is_reported() {
        let err = match BrokerProcess::start_with(ProcessOptions {
            binary: Some("/nonexistent/stan-broker".into()),
            ..Default::default()
        }) {
            Ok(_) => panic!("no such binary"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}

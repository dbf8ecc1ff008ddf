//! How a running broker tells a harness where it listens.
//!
//! Once it accepts clients, the `stan-broker` binary prints one line on standard output,
//! [`READY_PREFIX`] followed by a [`Ports`] object in JSON, and, with `--ports_file_dir DIR`,
//! writes the same JSON to `DIR/stan-broker_<pid>.ports` (the layout of nats-server's ports
//! file, plus the cluster ID and PID). Logs go to standard error or the log file, so standard
//! output carries nothing else; test harnesses read this line instead of matching log text.
//!
//! ```
//! use stan_broker::ready::{Ports, READY_PREFIX};
//! let line = r#"STAN_BROKER_READY {"nats":["nats://127.0.0.1:4222"],"monitoring":[],"cluster_id":"test-cluster","pid":7}"#;
//! let ports = Ports::from_line(line).unwrap();
//! assert_eq!(ports.nats[0], "nats://127.0.0.1:4222");
//! assert!(line.starts_with(READY_PREFIX));
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What starts the ready line on standard output; the rest of the line is [`Ports`] as JSON.
pub const READY_PREFIX: &str = "STAN_BROKER_READY ";

/// Where a running broker can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// Client URLs (core NATS), e.g. `nats://127.0.0.1:4222` (`tls://...` with TLS on).
    pub nats: Vec<String>,
    /// Monitoring base URLs, e.g. `http://127.0.0.1:8222`; empty when monitoring is off.
    #[serde(default)]
    pub monitoring: Vec<String>,
    /// The streaming cluster ID.
    pub cluster_id: String,
    /// The broker's process ID.
    pub pid: u32,
}

impl Ports {
    /// The ready line (without a newline).
    pub fn to_line(&self) -> String {
        format!("{READY_PREFIX}{}", self.to_json())
    }

    /// The JSON object, on one line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ports serialize")
    }

    /// Parses a ready line; `None` if `line` is not one.
    pub fn from_line(line: &str) -> Option<Ports> {
        let json = line.trim_end().strip_prefix(READY_PREFIX)?;
        serde_json::from_str(json).ok()
    }

    /// The ports file's path in `dir` for process `pid`.
    pub fn file_path(dir: &Path, pid: u32) -> PathBuf {
        dir.join(format!("stan-broker_{pid}.ports"))
    }

    /// Writes the ports file into `dir` atomically (a temporary file renamed into place), so a
    /// reader never sees it half written. Returns its path.
    pub fn write_file(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = Ports::file_path(dir, self.pid);
        let tmp = path.with_extension("ports.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.write_all(b"\n")?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ports {
        Ports {
            nats: vec!["nats://127.0.0.1:4222".into()],
            monitoring: vec!["http://127.0.0.1:8222".into()],
            cluster_id: "c".into(),
            pid: 42,
        }
    }

    #[test]
    fn line_round_trips() {
        let p = sample();
        assert_eq!(Ports::from_line(&p.to_line()), Some(p.clone()));
        assert_eq!(Ports::from_line(&format!("{}\r\n", p.to_line())), Some(p));
        assert_eq!(Ports::from_line("Server is ready"), None);
        assert_eq!(Ports::from_line("STAN_BROKER_READY {not json"), None);
    }

    #[test]
    fn ports_file_is_written_whole() {
        let dir = std::env::temp_dir().join(format!("stan-ready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = sample();
        let path = p.write_file(&dir).unwrap();
        assert_eq!(path, dir.join("stan-broker_42.ports"));
        let back: Ports = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, p);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

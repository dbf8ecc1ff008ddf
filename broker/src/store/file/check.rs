//! The offline check of a FILE store directory (`stan-broker check --dir PATH [--repair]`).

use std::fmt::Write as _;
use std::path::Path;

use super::log::{read_log, LogFile};
use super::record::{MAGIC_CLIENTS, MAGIC_SUBS};
use super::{accept_client, channel_dirs, lock_dir, msgs, read_server_info, verify_channel};
use super::{CLIENTS_FILE, SUBS_FILE};

/// What the check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// The report, one finding a line.
    pub text: String,
    /// Records lost or unreadable (they are served as missing; repair cannot bring them
    /// back).
    pub errors: usize,
    /// Tail repairs needed (torn records to cut, index entries to rebuild).
    pub repairs_needed: usize,
    /// Repairs made (with `repair`).
    pub repaired: usize,
}

impl CheckReport {
    /// Whether the store is sound (after the repairs made, if any).
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.repairs_needed == self.repaired
    }
}

/// Verifies every file of the store at `dir` (every message record against its CRC); with
/// `repair`, cuts torn tails and rebuilds indexes. Fails if the directory is locked by a
/// running broker or is not a store.
pub fn check(dir: &Path, repair: bool) -> Result<CheckReport, String> {
    if !dir.join(super::SERVER_FILE).exists() && !dir.join(super::CHANNELS_DIR).exists() {
        return Err(format!("{}: not a file store directory", dir.display()));
    }
    let _lock = lock_dir(dir).map_err(|e| e.to_string())?;
    let mut r = CheckReport::default();
    let line = |r: &mut CheckReport, s: String| {
        let _ = writeln!(r.text, "{s}");
    };
    match read_server_info(dir) {
        Ok(Some(i)) => line(
            &mut r,
            format!("server.dat: ok (cluster ID {:?})", i.cluster_id),
        ),
        Ok(None) => line(&mut r, "server.dat: missing (a fresh store)".into()),
        Err(e) => {
            r.errors += 1;
            line(&mut r, format!("server.dat: ERROR {e}"));
        }
    }
    let log_check =
        |r: &mut CheckReport, what: &str, path: &Path, magic, accept: &dyn Fn(&[u8]) -> bool| {
            if !path.exists() {
                line(r, format!("{what}: missing"));
                return;
            }
            match read_log(path, magic, accept) {
                Err(e) => {
                    r.errors += 1;
                    line(r, format!("{what}: ERROR {e}"));
                }
                Ok(l) => {
                    line(r, format!("{what}: {} records", l.scan.records.len()));
                    for (off, s) in &l.scan.skipped {
                        r.errors += 1;
                        line(
                            r,
                            format!("{what}: ERROR corrupt record at offset {off}: {s}"),
                        );
                    }
                    if let Some(t) = &l.scan.torn {
                        r.repairs_needed += 1;
                        let verb = if repair { "cut" } else { "would cut" };
                        line(r, format!("{what}: {verb}: {t}"));
                        if repair {
                            match LogFile::open(path, magic, l.scan.good_len, 0) {
                                Ok(_) => r.repaired += 1,
                                Err(e) => line(r, format!("{what}: repair failed: {e}")),
                            }
                        }
                    }
                }
            }
        };
    log_check(
        &mut r,
        CLIENTS_FILE,
        &dir.join(CLIENTS_FILE),
        MAGIC_CLIENTS,
        &accept_client,
    );
    let channels = channel_dirs(dir).map_err(|e| e.to_string())?;
    for (name, cdir) in channels {
        let c = verify_channel(&name, &cdir, true).map_err(|e| e.to_string())?;
        let mut msgs_total = 0u64;
        for s in &c.slices {
            let label = format!("channel {name:?} slice {}", s.no);
            if let Some(f) = &s.fatal {
                r.errors += 1;
                line(&mut r, format!("{label}: ERROR unusable: {f}"));
                continue;
            }
            msgs_total += s.msgs;
            line(
                &mut r,
                format!(
                    "{label}: sequences {}..{} ({} records)",
                    s.first_seq,
                    s.end_seq().saturating_sub(1),
                    s.count
                ),
            );
            for e in &s.errors {
                r.errors += 1;
                line(&mut r, format!("{label}: ERROR {e}"));
            }
            if s.needs_repair() {
                r.repairs_needed += 1;
                let verb = if repair { "repaired" } else { "would repair" };
                for what in &s.repairs {
                    line(&mut r, format!("{label}: {verb}: {what}"));
                }
                if s.data_good_len != s.data_file_len {
                    line(
                        &mut r,
                        format!(
                            "{label}: {} data bytes {} (offset {} to {})",
                            s.data_file_len - s.data_good_len,
                            if repair { "cut" } else { "would be cut" },
                            s.data_good_len,
                            s.data_file_len
                        ),
                    );
                }
                if repair {
                    match msgs::repair_slice(&cdir, s) {
                        Ok(()) => r.repaired += 1,
                        Err(e) => line(&mut r, format!("{label}: repair failed: {e}")),
                    }
                }
            }
        }
        line(
            &mut r,
            format!("channel {name:?}: {msgs_total} messages on disk"),
        );
        log_check(
            &mut r,
            &format!("channel {name:?} {SUBS_FILE}"),
            &cdir.join(SUBS_FILE),
            MAGIC_SUBS,
            &super::subs::accept,
        );
    }
    let _ = writeln!(
        r.text,
        "summary: {} error(s), {} repair(s) needed, {} made",
        r.errors, r.repairs_needed, r.repaired
    );
    Ok(r)
}

//! An append-only log file of framed records (subscriptions, clients), with buffered appends,
//! group-commit syncing and compaction by rewrite.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::record::{frame_parts, header, read_from, read_header, scan_log, LogScan, HEADER_LEN};
use super::sync_dir;

/// A log file being appended to.
pub(crate) struct LogFile {
    path: PathBuf,
    magic: &'static [u8; 4],
    file: Arc<File>,
    /// Length written to the file.
    len: u64,
    /// Appended, not yet written.
    buf: Vec<u8>,
    /// Written, not yet synced.
    dirty: bool,
    /// Records in the file (written or buffered).
    pub(crate) records: u64,
    last_compact: Instant,
}

/// What reading a log found (nothing is changed on disk by reading).
pub(crate) struct LogRead {
    /// The file content after the header.
    pub(crate) buf: Vec<u8>,
    /// The records found.
    pub(crate) scan: LogScan,
}

impl LogRead {
    /// The bodies of the good records.
    pub(crate) fn bodies(&self) -> impl Iterator<Item = &[u8]> {
        self.scan.records.iter().map(|(_, r)| &self.buf[r.clone()])
    }
}

/// Reads and verifies a log without changing it.
pub(crate) fn read_log(
    path: &Path,
    magic: &'static [u8; 4],
    accept: &dyn Fn(&[u8]) -> bool,
) -> Result<LogRead, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_header(&f, magic).map_err(|e| format!("{}: {e}", path.display()))?;
    let buf = read_from(&f, HEADER_LEN).map_err(|e| format!("{}: {e}", path.display()))?;
    let scan = scan_log(&buf, HEADER_LEN, accept);
    Ok(LogRead { buf, scan })
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

impl LogFile {
    /// Creates a new empty log (header written and synced).
    pub(crate) fn create(path: &Path, magic: &'static [u8; 4]) -> io::Result<LogFile> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        f.write_all_at(&header(magic, 0), 0)?;
        super::timed_sync(|| f.sync_all())?;
        Ok(LogFile {
            path: path.to_path_buf(),
            magic,
            file: Arc::new(f),
            len: HEADER_LEN,
            buf: Vec::new(),
            dirty: false,
            records: 0,
            last_compact: Instant::now(),
        })
    }

    /// Opens a log that [`read_log`] verified, cutting its torn tail (if any) at `good_len`.
    pub(crate) fn open(
        path: &Path,
        magic: &'static [u8; 4],
        good_len: u64,
        records: u64,
    ) -> io::Result<LogFile> {
        let f = open_rw(path)?;
        if f.metadata()?.len() != good_len {
            f.set_len(good_len)?;
            super::timed_sync(|| f.sync_all())?;
        }
        Ok(LogFile {
            path: path.to_path_buf(),
            magic,
            file: Arc::new(f),
            len: good_len,
            buf: Vec::new(),
            dirty: false,
            records,
            last_compact: Instant::now(),
        })
    }

    /// Buffers one record made of `parts`.
    pub(crate) fn append(&mut self, parts: &[&[u8]]) {
        frame_parts(&mut self.buf, parts);
        self.records += 1;
    }

    /// Size of the log including buffered records.
    pub(crate) fn size(&self) -> u64 {
        self.len + self.buf.len() as u64
    }

    /// Writes the buffered records (no sync). Returns the file to sync if anything was
    /// written since the last sync.
    pub(crate) fn write_pending(&mut self) -> io::Result<Option<Arc<File>>> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.len)?;
            self.len += self.buf.len() as u64;
            self.buf.clear();
            self.dirty = true;
        }
        Ok(std::mem::take(&mut self.dirty).then(|| self.file.clone()))
    }

    /// Whether a compaction is due: at least `frag`% of the records are dead, the file is at
    /// least `min_size` bytes and the last compaction is `interval` ago.
    pub(crate) fn compaction_due(&self, live: u64, opts: &super::CompactOptions) -> bool {
        opts.enabled
            && self.size() >= opts.min_size
            && self.records > 0
            && self.records.saturating_sub(live).saturating_mul(100)
                >= u64::from(opts.frag).saturating_mul(self.records)
            && self.last_compact.elapsed() >= opts.interval
    }

    /// Replaces the log with `records` (bodies as parts): written to a temporary file,
    /// synced, renamed over the log, directory synced.
    pub(crate) fn rewrite(&mut self, records: &[Vec<u8>]) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut out = header(self.magic, 0).to_vec();
        for r in records {
            frame_parts(&mut out, &[r]);
        }
        {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all_at(&out, 0)?;
            super::timed_sync(|| f.sync_all())?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        self.file = Arc::new(open_rw(&self.path)?);
        self.len = out.len() as u64;
        self.buf.clear();
        self.dirty = false;
        self.records = records.len() as u64;
        self.last_compact = Instant::now();
        Ok(())
    }
}

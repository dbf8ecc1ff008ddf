//! The messages of one channel: slices of (data, index) files, a cache of recent messages and
//! positional reads for the rest.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use prost::Message;
use stan_protocol::pb::MsgProto;

use super::record::{
    frame_parts, guid_field, header, msg_prefix, parse_frame, read_from, read_header, scan_log,
    split_guid, Frame, IdxEntry, FRAME_LEN, HEADER_LEN, HOLE, IDX_ENTRY_LEN, MAGIC_DATA,
    MAGIC_INDEX, MAGIC_STATE, MSG_PREFIX,
};
use super::{io_err, lock, Shared};
use crate::config::ChannelLimits;
use crate::store::{MsgStore, StoreError, StoreResult};

/// Index entries whose records are checked against the data at recovery (from the tail).
const TAIL_CHECK: usize = 8;
/// The largest first sequence a slice header may hold: far beyond any sequence the store
/// assigns, and low enough that adding a slice's record count cannot overflow.
const MAX_FIRST_SEQ: u64 = 1 << 62;
/// Most bytes of recent messages kept in memory per channel.
const CACHE_BYTES: usize = 4 << 20;
/// Most recent messages kept in memory per channel.
const CACHE_MSGS: usize = 8192;
/// Most bytes of message records one cold read fetches (in one positional read).
const READ_AHEAD_BYTES: u64 = 256 << 10;
/// Most records one cold read fetches.
const READ_AHEAD_MSGS: u64 = 1024;
/// Name of a channel's state file (logical first sequence).
pub(crate) const STATE_FILE: &str = "state.dat";
/// Length of the state file: header and a CRC of it.
const STATE_LEN: usize = HEADER_LEN as usize + 4;

/// Slice settings of the message store.
#[derive(Clone, Debug)]
pub(crate) struct SliceOptions {
    /// Messages per slice (0 = unlimited).
    pub(crate) max_msgs: u64,
    /// Data bytes per slice (0 = unlimited).
    pub(crate) max_bytes: u64,
    /// Age of a slice's first message before a new slice starts (0 = unlimited), nanoseconds.
    pub(crate) max_age: i64,
    /// Check the CRC of records read back.
    pub(crate) crc: bool,
}

/// File names of slice `no`.
pub(crate) fn slice_paths(dir: &Path, no: u64) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("msgs.{no}.dat")),
        dir.join(format!("msgs.{no}.idx")),
    )
}

/// The slice numbers present in a channel directory, sorted.
pub(crate) fn slice_numbers(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(no) = name
            .strip_prefix("msgs.")
            .and_then(|r| r.strip_suffix(".dat"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            v.push(no);
        }
    }
    v.sort_unstable();
    Ok(v)
}

/// What verifying one slice found, and what repairing it takes.
#[derive(Debug, Default)]
pub(crate) struct SliceCheck {
    /// Slice number.
    pub(crate) no: u64,
    /// First sequence (from the data header).
    pub(crate) first_seq: u64,
    /// Entries after repair (verified index prefix, then rebuilt from data).
    pub(crate) count: u64,
    /// The entries to write to the index file (from entry `idx_keep` on); the rest are only
    /// summarised below, so recovery holds one slice's index at a time.
    pub(crate) entries: Vec<IdxEntry>,
    /// Timestamp of the first and last entries (0 if none).
    pub(crate) first_ts: i64,
    /// Timestamp of the last entry.
    pub(crate) last_ts: i64,
    /// Readable messages (entries that are not holes) and their size.
    pub(crate) msgs: u64,
    /// Size of the readable messages (encoded, as counted by the byte limit).
    pub(crate) bytes: u64,
    /// Entries of the index file that are kept as they are.
    pub(crate) idx_keep: u64,
    /// The index file must be written anew (missing or bad header).
    pub(crate) idx_recreate: bool,
    /// Length of the index file on disk.
    pub(crate) idx_file_len: u64,
    /// Length of the data file up to which it is sound.
    pub(crate) data_good_len: u64,
    /// Length of the data file on disk.
    pub(crate) data_file_len: u64,
    /// The slice cannot be used (unreadable data header): description.
    pub(crate) fatal: Option<String>,
    /// Records lost or unreadable in the middle (served as missing).
    pub(crate) errors: Vec<String>,
    /// Repairs at the tail (torn record cut, index rebuilt).
    pub(crate) repairs: Vec<String>,
}

impl SliceCheck {
    /// Whether repairing changes anything on disk.
    pub(crate) fn needs_repair(&self) -> bool {
        self.idx_recreate
            || self.data_good_len != self.data_file_len
            || self.idx_keep != self.count
            || self.idx_file_len != HEADER_LEN + self.count * IDX_ENTRY_LEN
    }

    /// One past the last sequence.
    pub(crate) fn end_seq(&self) -> u64 {
        self.first_seq + self.count
    }
}

/// Checks the record at `e` in `data`; `Err` describes what is wrong.
fn check_record(data: &File, e: &IdxEntry) -> Result<(), String> {
    let mut buf = vec![0u8; (FRAME_LEN + u64::from(e.len)) as usize];
    data.read_exact_at(&mut buf, e.offset)
        .map_err(|err| format!("unreadable ({err})"))?;
    match parse_frame(&buf) {
        Frame::Good(body, _) => match msg_prefix(body) {
            Some((seq, _)) if seq == e.seq => Ok(()),
            Some((seq, _)) => Err(format!("holds sequence {seq}")),
            None => Err("too short".into()),
        },
        Frame::BadCrc(_) => Err("CRC mismatch".into()),
        Frame::Incomplete => Err("length mismatch".into()),
    }
}

/// Verifies slice `no` of `dir` without changing anything. `full` checks every record (the
/// offline check); otherwise only the tail is checked against the data.
pub(crate) fn verify_slice(dir: &Path, no: u64, full: bool) -> SliceCheck {
    let (data_path, idx_path) = slice_paths(dir, no);
    let mut c = SliceCheck {
        no,
        ..Default::default()
    };
    let data = match File::open(&data_path) {
        Ok(f) => f,
        Err(e) => {
            c.fatal = Some(format!("cannot open {}: {e}", data_path.display()));
            return c;
        }
    };
    c.data_file_len = data.metadata().map(|m| m.len()).unwrap_or(0);
    c.first_seq = match read_header(&data, MAGIC_DATA) {
        Ok(0) => {
            c.fatal = Some("data header holds first sequence 0".into());
            return c;
        }
        Ok(s) if s > MAX_FIRST_SEQ => {
            c.fatal = Some(format!(
                "data header holds first sequence {s}, beyond any the store assigns"
            ));
            return c;
        }
        Ok(s) => s,
        Err(e) => {
            c.fatal = Some(format!("data header: {e}"));
            return c;
        }
    };
    // The verified prefix of the index.
    let mut entries: Vec<IdxEntry> = Vec::new();
    match File::open(&idx_path) {
        Err(e) => {
            c.idx_recreate = true;
            c.repairs
                .push(format!("index missing ({e}): rebuilt from the data"));
        }
        Ok(idx) => {
            c.idx_file_len = idx.metadata().map(|m| m.len()).unwrap_or(0);
            match read_header(&idx, MAGIC_INDEX) {
                Ok(v) if v == c.first_seq => {
                    let raw = read_from(&idx, HEADER_LEN).unwrap_or_default();
                    let mut prev_end = HEADER_LEN;
                    for (i, chunk) in raw.chunks(IDX_ENTRY_LEN as usize).enumerate() {
                        let want = c.first_seq + i as u64;
                        let ok = match IdxEntry::decode(chunk) {
                            Some(e) if e.seq == want && e.is_hole() => Some(e),
                            Some(e)
                                if e.seq == want
                                    && e.offset >= prev_end
                                    && e.end() <= c.data_file_len =>
                            {
                                Some(e)
                            }
                            _ => None,
                        };
                        match ok {
                            Some(e) => {
                                if !e.is_hole() {
                                    prev_end = e.end();
                                }
                                entries.push(e);
                            }
                            None => {
                                c.repairs.push(format!(
                                    "index entry {i} (sequence {want}) invalid: index cut there \
                                     and rebuilt from the data"
                                ));
                                break;
                            }
                        }
                    }
                }
                Ok(v) => {
                    c.idx_recreate = true;
                    c.repairs.push(format!(
                        "index header names first sequence {v}, data {}: index rebuilt",
                        c.first_seq
                    ));
                }
                Err(e) => {
                    c.idx_recreate = true;
                    c.repairs
                        .push(format!("index header: {e}: index rebuilt from the data"));
                }
            }
        }
    }
    // Check the tail of the index (or every entry) against the data.
    let mut good_seen = 0usize;
    let mut i = entries.len();
    while i > 0 && (full || good_seen < TAIL_CHECK) {
        i -= 1;
        let e = entries[i];
        if e.is_hole() {
            continue;
        }
        match check_record(&data, &e) {
            Ok(()) => good_seen += 1,
            Err(why) if good_seen == 0 => {
                // Nothing good after it: the torn tail; the data scan decides.
                c.repairs.push(format!(
                    "sequence {}: indexed record {why}: index cut there",
                    e.seq
                ));
                entries.truncate(i);
            }
            Err(why) => c.errors.push(format!(
                "sequence {}: record at offset {} {why}: served as missing",
                e.seq, e.offset
            )),
        }
    }
    let prefix = entries.len() as u64;
    // Records after the last indexed one.
    let start = entries
        .iter()
        .rev()
        .find(|e| !e.is_hole())
        .map_or(HEADER_LEN, |e| e.end());
    let expected = c.first_seq + entries.len() as u64;
    let buf = if start < c.data_file_len {
        let mut b = vec![0u8; (c.data_file_len - start) as usize];
        if let Err(e) = data.read_exact_at(&mut b, start) {
            c.errors
                .push(format!("data unreadable after offset {start}: {e}"));
            b.clear();
        }
        b
    } else {
        Vec::new()
    };
    let accept = |body: &[u8]| {
        msg_prefix(body).is_some_and(|(s, _)| s >= expected && s - expected < (1 << 32))
    };
    let scan = scan_log(&buf, start, &accept);
    let mut rebuilt = 0u64;
    // End of the last record kept: lost records can only have been between it and the next.
    let mut kept_end = start;
    for (off, range) in &scan.records {
        let body = &buf[range.clone()];
        let Some((seq, ts)) = msg_prefix(body) else {
            continue;
        };
        let next = c.first_seq + entries.len() as u64;
        if seq < next {
            continue;
        }
        // Each lost record took at least a frame and a message prefix: a gap that the bytes
        // before this record cannot hold means its sequence is wrong (and filling the gap
        // with holes would allocate without bound).
        let room = off.saturating_sub(kept_end) / (FRAME_LEN + MSG_PREFIX);
        if seq - next > room {
            c.errors.push(format!(
                "record at offset {off} has sequence {seq}, {} after the expected {next} with \
                 room for {room} lost records: ignored",
                seq - next
            ));
            continue;
        }
        kept_end = off + FRAME_LEN + body.len() as u64;
        if seq > next {
            c.errors.push(format!(
                "sequences {next}..{}: records lost (corrupt data before offset {off})",
                seq - 1
            ));
            let hole_ts = entries.last().map_or(ts, |e| e.ts);
            for s in next..seq {
                entries.push(IdxEntry {
                    seq: s,
                    offset: HOLE,
                    ts: hole_ts,
                    len: 0,
                });
            }
        }
        entries.push(IdxEntry {
            seq,
            offset: *off,
            ts,
            len: body.len() as u32,
        });
        rebuilt += 1;
    }
    for (off, what) in &scan.skipped {
        c.errors
            .push(format!("corrupt data at offset {off}: {what}"));
    }
    if rebuilt > 0 && !c.idx_recreate {
        c.repairs
            .push(format!("{rebuilt} index entries rebuilt from the data"));
    }
    if let Some(t) = &scan.torn {
        c.repairs.push(format!("torn tail: {t}"));
    }
    c.data_good_len = if start >= c.data_file_len {
        c.data_file_len
    } else {
        scan.good_len
    };
    c.idx_keep = if c.idx_recreate { 0 } else { prefix };
    c.count = entries.len() as u64;
    c.first_ts = entries.first().map_or(0, |e| e.ts);
    c.last_ts = entries.last().map_or(0, |e| e.ts);
    for e in entries.iter().filter(|e| !e.is_hole()) {
        c.msgs += 1;
        c.bytes += e.msg_size();
    }
    c.entries = entries.split_off(c.idx_keep as usize);
    c
}

/// Applies the repairs of a verified slice (cut the data tail, rewrite the index tail).
pub(crate) fn repair_slice(dir: &Path, c: &SliceCheck) -> io::Result<()> {
    let (data_path, idx_path) = slice_paths(dir, c.no);
    if c.data_good_len != c.data_file_len {
        let f = OpenOptions::new().write(true).open(&data_path)?;
        f.set_len(c.data_good_len)?;
        super::timed_sync(|| f.sync_all())?;
    }
    let want_len = HEADER_LEN + c.count * IDX_ENTRY_LEN;
    if c.idx_recreate || c.idx_keep != c.count || c.idx_file_len != want_len {
        let idx = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&idx_path)?;
        let keep = if c.idx_recreate { 0 } else { c.idx_keep };
        let mut out = Vec::new();
        let from = if keep == 0 {
            out.extend_from_slice(&header(MAGIC_INDEX, c.first_seq));
            0
        } else {
            HEADER_LEN + keep * IDX_ENTRY_LEN
        };
        for e in &c.entries {
            e.encode(&mut out);
        }
        idx.set_len(from)?;
        idx.write_all_at(&out, from)?;
        idx.set_len(want_len)?;
        super::timed_sync(|| idx.sync_all())?;
    }
    Ok(())
}

/// Reads a channel's persisted logical first sequence (`None` if absent or corrupt).
pub(crate) fn read_state(dir: &Path) -> Option<u64> {
    let b = std::fs::read(dir.join(STATE_FILE)).ok()?;
    if b.len() < STATE_LEN {
        return None;
    }
    let crc = u32::from_le_bytes(b[16..20].try_into().ok()?);
    if crc32fast::hash(&b[..16]) != crc {
        return None;
    }
    super::record::parse_header(&b, MAGIC_STATE).ok()
}

fn state_bytes(first: u64) -> Vec<u8> {
    let mut b = header(MAGIC_STATE, first).to_vec();
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// The two open files of a slice.
#[derive(Clone)]
pub(crate) struct SliceFiles {
    data: Arc<File>,
    idx: Arc<File>,
}

impl SliceFiles {
    fn open(dir: &Path, no: u64) -> io::Result<SliceFiles> {
        let (dp, ip) = slice_paths(dir, no);
        Ok(SliceFiles {
            data: Arc::new(open_rw(&dp)?),
            idx: Arc::new(open_rw(&ip)?),
        })
    }
}

/// The slice files of the whole store under `--file_fds_limit` (a soft limit, as in the
/// official server). Active slices, and slices written since the last flush, keep their files
/// ("pinned"); the files of other slices live here, opened on demand and closed least recently
/// used first while the store's open slice files exceed the limit.
pub(crate) struct FdCache {
    /// Most open slice files (0: unlimited, every slice keeps its files).
    limit: usize,
    /// Files held by pinned slices.
    pinned: usize,
    tick: u64,
    /// (message store, slice number) → files, last use.
    open: HashMap<(u64, u64), (SliceFiles, u64)>,
    next_store: u64,
}

impl FdCache {
    /// A cache for `limit` open slice files (0: unlimited).
    pub(crate) fn new(limit: u64) -> FdCache {
        FdCache {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            pinned: 0,
            tick: 0,
            open: HashMap::new(),
            next_store: 0,
        }
    }

    fn get(&mut self, key: (u64, u64)) -> Option<SliceFiles> {
        self.tick += 1;
        let tick = self.tick;
        self.open.get_mut(&key).map(|(f, t)| {
            *t = tick;
            f.clone()
        })
    }

    /// Adds the files of a slice, then closes the least recently used others while over the
    /// limit (the slice just added stays open).
    fn insert(&mut self, key: (u64, u64), files: SliceFiles) {
        self.tick += 1;
        self.open.insert(key, (files, self.tick));
        while self.pinned + 2 * self.open.len() > self.limit && self.open.len() > 1 {
            let oldest = self
                .open
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    self.open.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Number of slice files open (pinned and cached).
    #[cfg(test)]
    pub(crate) fn open_files(&self) -> usize {
        self.pinned + 2 * self.open.len()
    }
}

/// Records read ahead by the last cold read: sequences `first..first + msgs.len()` (`None`:
/// a record found corrupt, served as missing).
#[derive(Default)]
struct ReadAhead {
    first: u64,
    msgs: Vec<Option<Bytes>>,
}

impl ReadAhead {
    fn get(&self, seq: u64) -> Option<Option<Bytes>> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.msgs.get(i).cloned()
    }
}

/// One slice in use.
struct Slice {
    no: u64,
    first_seq: u64,
    /// Entries, including buffered ones of the active slice.
    count: u64,
    /// The slice's files while pinned (always without a fds limit); `None`: in the
    /// [`FdCache`] or closed.
    files: Option<SliceFiles>,
    data_len: u64,
    idx_written: u64,
    first_ts: i64,
    last_ts: i64,
    live_msgs: u64,
    live_bytes: u64,
    dirty: bool,
}

impl Slice {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.count
    }
}

fn open_rw(p: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(p)
}

/// Creates the (empty) files of slice `no` starting at `first_seq`.
fn create_slice(dir: &Path, no: u64, first_seq: u64, shared: &Shared) -> io::Result<Slice> {
    let (dp, ip) = slice_paths(dir, no);
    let mk = |p: &Path, magic| -> io::Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(p)?;
        f.write_all_at(&header(magic, first_seq), 0)?;
        Ok(f)
    };
    let data = mk(&dp, MAGIC_DATA)?;
    let idx = mk(&ip, MAGIC_INDEX)?;
    lock(&shared.fds).pinned += 2;
    Ok(Slice {
        no,
        first_seq,
        count: 0,
        files: Some(SliceFiles {
            data: Arc::new(data),
            idx: Arc::new(idx),
        }),
        data_len: HEADER_LEN,
        idx_written: 0,
        first_ts: 0,
        last_ts: 0,
        live_msgs: 0,
        live_bytes: 0,
        dirty: true,
    })
}

fn remove_slice_files(dir: &Path, no: u64) {
    let (dp, ip) = slice_paths(dir, no);
    for p in [dp, ip] {
        if let Err(e) = std::fs::remove_file(&p) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", p.display());
            }
        }
    }
}

/// The messages of one channel, on disk.
pub struct FileMsgStore {
    /// Key of this store's slices in the [`FdCache`].
    id: u64,
    name: String,
    dir: PathBuf,
    slices: VecDeque<Slice>,
    /// Every sequence below is removed.
    first: u64,
    last: u64,
    last_ts: i64,
    msgs: u64,
    bytes: u64,
    pend_data: Vec<u8>,
    pend_idx: Vec<IdxEntry>,
    cache: VecDeque<(u64, Bytes)>,
    cache_bytes: usize,
    /// The run of records the last cold read fetched (cold reads are sequential when a
    /// subscriber replays a channel: the next ones are served from here).
    ahead: RefCell<ReadAhead>,
    max_msgs: u64,
    max_bytes: u64,
    max_age: Duration,
    warned: bool,
    opts: SliceOptions,
    shared: Arc<Shared>,
    state: Arc<File>,
    state_first: u64,
    state_dirty: bool,
    dir_dirty: bool,
}

impl FileMsgStore {
    fn base(
        name: &str,
        dir: &Path,
        limits: &ChannelLimits,
        opts: SliceOptions,
        shared: Arc<Shared>,
        state: File,
    ) -> FileMsgStore {
        let id = {
            let mut fds = lock(&shared.fds);
            fds.next_store += 1;
            fds.next_store
        };
        FileMsgStore {
            id,
            name: name.to_string(),
            dir: dir.to_path_buf(),
            slices: VecDeque::new(),
            first: 1,
            last: 0,
            last_ts: 0,
            msgs: 0,
            bytes: 0,
            pend_data: Vec::new(),
            pend_idx: Vec::new(),
            cache: VecDeque::new(),
            cache_bytes: 0,
            ahead: RefCell::new(ReadAhead::default()),
            max_msgs: limits.max_msgs.unwrap_or(0) as u64,
            max_bytes: limits.max_bytes.unwrap_or(0),
            max_age: limits.max_age.unwrap_or(Duration::ZERO),
            warned: false,
            opts,
            shared,
            state: Arc::new(state),
            state_first: 1,
            state_dirty: false,
            dir_dirty: false,
        }
    }

    fn open_state(dir: &Path, first: u64, create: bool) -> io::Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(dir.join(STATE_FILE))?;
        if create {
            f.write_all_at(&state_bytes(first), 0)?;
        }
        Ok(f)
    }

    /// A new empty message store in `dir` (slice 1 created).
    pub(crate) fn create(
        name: &str,
        dir: &Path,
        limits: &ChannelLimits,
        opts: SliceOptions,
        shared: Arc<Shared>,
    ) -> io::Result<FileMsgStore> {
        let state = Self::open_state(dir, 1, true)?;
        let mut s = Self::base(name, dir, limits, opts, shared, state);
        let slice = create_slice(dir, 1, 1, &s.shared)?;
        s.slices.push_back(slice);
        let f = s.active_files()?;
        super::timed_sync(|| f.data.sync_all())?;
        super::timed_sync(|| f.idx.sync_all())?;
        Ok(s)
    }

    /// Opens verified (and repaired) slices. `checks` are sorted by slice number; unusable
    /// slices were left out by the caller.
    pub(crate) fn open(
        name: &str,
        dir: &Path,
        limits: &ChannelLimits,
        opts: SliceOptions,
        shared: Arc<Shared>,
        checks: Vec<SliceCheck>,
        state_first: Option<u64>,
    ) -> io::Result<FileMsgStore> {
        let state = Self::open_state(dir, 1, state_first.is_none())?;
        let mut s = Self::base(name, dir, limits, opts, shared, state);
        let first_slice = checks.first().map_or(1, |c| c.first_seq);
        s.first = state_first.unwrap_or(first_slice).max(first_slice);
        s.state_first = s.first;
        for c in checks {
            let files = SliceFiles::open(dir, c.no)?;
            lock(&s.shared.fds).pinned += 2;
            let mut sl = Slice {
                no: c.no,
                first_seq: c.first_seq,
                count: c.count,
                files: Some(files.clone()),
                data_len: c.data_good_len.max(HEADER_LEN),
                idx_written: c.count,
                first_ts: c.first_ts,
                last_ts: c.last_ts,
                live_msgs: c.msgs,
                live_bytes: c.bytes,
                dirty: false,
            };
            if s.first >= c.end_seq() {
                (sl.live_msgs, sl.live_bytes) = (0, 0);
            } else if s.first > c.first_seq {
                // Messages of this slice dropped by limits before the restart.
                let n = s.first - c.first_seq;
                let mut raw = vec![0u8; (n * IDX_ENTRY_LEN) as usize];
                files.idx.read_exact_at(&mut raw, HEADER_LEN)?;
                for e in raw
                    .chunks(IDX_ENTRY_LEN as usize)
                    .filter_map(IdxEntry::decode)
                {
                    if !e.is_hole() {
                        sl.live_msgs = sl.live_msgs.saturating_sub(1);
                        sl.live_bytes = sl.live_bytes.saturating_sub(e.msg_size());
                    }
                }
            }
            s.msgs += sl.live_msgs;
            s.bytes += sl.live_bytes;
            if sl.count > 0 {
                s.last_ts = sl.last_ts;
            }
            drop(files);
            s.slices.push_back(sl);
            s.release_files();
        }
        match s.slices.back() {
            Some(l) => s.last = l.end_seq() - 1,
            None => {
                let first = s.first;
                let slice = create_slice(dir, 1, first, &s.shared)?;
                s.slices.push_back(slice);
                s.last = first - 1;
                s.dir_dirty = true;
            }
        }
        if s.first > s.last + 1 {
            s.first = s.last + 1;
            s.state_dirty = true;
        }
        s.drop_dead_slices();
        s.enforce_count_limits();
        Ok(s)
    }

    /// The files of the active slice (always pinned).
    fn active_files(&self) -> io::Result<SliceFiles> {
        self.files(self.slices.len() - 1)
    }

    /// The files of slice `si`: its own while pinned, else from the [`FdCache`] (reopened if
    /// they were closed).
    fn files(&self, si: usize) -> io::Result<SliceFiles> {
        let s = &self.slices[si];
        if let Some(f) = &s.files {
            return Ok(f.clone());
        }
        let key = (self.id, s.no);
        let mut fds = lock(&self.shared.fds);
        if let Some(f) = fds.get(key) {
            return Ok(f);
        }
        let f = SliceFiles::open(&self.dir, s.no)?;
        fds.insert(key, f.clone());
        Ok(f)
    }

    /// Under a fds limit: hands the files of slices that are neither active nor waiting for
    /// a sync to the [`FdCache`], which closes the least recently used ones.
    fn release_files(&mut self) {
        let mut fds = lock(&self.shared.fds);
        if fds.limit == 0 {
            return;
        }
        let last = self.slices.len().saturating_sub(1);
        for s in self.slices.iter_mut().take(last) {
            if s.dirty {
                continue;
            }
            if let Some(f) = s.files.take() {
                fds.pinned = fds.pinned.saturating_sub(2);
                fds.insert((self.id, s.no), f);
            }
        }
    }

    /// Forgets the files of a slice that is no longer used.
    fn forget_files(&self, s: &Slice) {
        let mut fds = lock(&self.shared.fds);
        if s.files.is_some() {
            fds.pinned = fds.pinned.saturating_sub(2);
        } else {
            fds.open.remove(&(self.id, s.no));
        }
    }

    fn active(&self) -> &Slice {
        // There is always at least one slice.
        &self.slices[self.slices.len() - 1]
    }

    fn slice_index(&self, seq: u64) -> Option<usize> {
        let i = self.slices.partition_point(|s| s.end_seq() <= seq);
        let s = self.slices.get(i)?;
        (s.first_seq <= seq && seq < s.end_seq()).then_some(i)
    }

    /// The index entry of `seq` (buffered, or read from the index file).
    fn entry(&self, seq: u64) -> Option<IdxEntry> {
        let si = self.slice_index(seq)?;
        let s = &self.slices[si];
        let i = seq - s.first_seq;
        if si == self.slices.len() - 1 && i >= s.idx_written {
            return self.pend_idx.get((i - s.idx_written) as usize).copied();
        }
        let mut b = [0u8; IDX_ENTRY_LEN as usize];
        if let Err(e) = self
            .files(si)
            .and_then(|f| f.idx.read_exact_at(&mut b, HEADER_LEN + i * IDX_ENTRY_LEN))
        {
            tracing::error!(channel = %self.name, seq, "cannot read index entry: {e}");
            return None;
        }
        match IdxEntry::decode(&b) {
            Some(e) if e.seq == seq => Some(e),
            _ => {
                tracing::error!(channel = %self.name, seq, "corrupt index entry");
                None
            }
        }
    }

    /// Reads a message record (buffered or from its slice) and returns the encoded message
    /// in wire form.
    fn read_msg(&self, seq: u64) -> Option<Bytes> {
        self.read_stored(seq).map(wire_form)
    }

    /// Reads a message record (buffered or from its slice) and returns the stored message
    /// (the wire form, then the guid field if it was stored with one).
    fn read_stored(&self, seq: u64) -> Option<Bytes> {
        let e = self.entry(seq)?;
        if e.is_hole() {
            return None;
        }
        let si = self.slice_index(seq)?;
        let s = &self.slices[si];
        let total = (FRAME_LEN + u64::from(e.len)) as usize;
        let buf: Vec<u8> = if si == self.slices.len() - 1 && e.offset >= s.data_len {
            let start = (e.offset - s.data_len) as usize;
            self.pend_data.get(start..start + total)?.to_vec()
        } else {
            let mut b = vec![0u8; total];
            if let Err(err) = self
                .files(si)
                .and_then(|f| f.data.read_exact_at(&mut b, e.offset))
            {
                tracing::error!(channel = %self.name, seq, "cannot read message: {err}");
                return None;
            }
            b
        };
        self.record_body(seq, &e, Bytes::from(buf))
    }

    /// The encoded message of a record frame read for index entry `e`, checked (length, CRC
    /// with `crc`, sequence); a corrupt record is logged and `None`.
    fn record_body(&self, seq: u64, e: &IdxEntry, buf: Bytes) -> Option<Bytes> {
        if buf.len() < (FRAME_LEN + MSG_PREFIX) as usize {
            tracing::error!(channel = %self.name, seq, "corrupt message record (length)");
            return None;
        }
        let len = u32::from_le_bytes(buf[..4].try_into().ok()?);
        if len != e.len {
            tracing::error!(channel = %self.name, seq, "corrupt message record (length)");
            return None;
        }
        if self.opts.crc {
            let crc = u32::from_le_bytes(buf[4..8].try_into().ok()?);
            if crc32fast::hash(&buf[8..]) != crc {
                tracing::error!(channel = %self.name, seq, "corrupt message record (CRC mismatch)");
                return None;
            }
        }
        match msg_prefix(&buf[8..]) {
            Some((s, _)) if s == seq => {}
            _ => {
                tracing::error!(channel = %self.name, seq, "corrupt message record (sequence)");
                return None;
            }
        }
        Some(buf.slice((FRAME_LEN + MSG_PREFIX) as usize..))
    }

    /// A cold read with read-ahead: the index entries from `seq` on (same slice, written to
    /// the files) in one positional read, then the run of consecutive records they point to,
    /// up to [`READ_AHEAD_BYTES`] and [`READ_AHEAD_MSGS`], in another. The run is kept for the
    /// next lookups; the engine then serves a replay mostly from memory.
    fn read_run(&self, seq: u64) -> Option<Bytes> {
        let si = self.slice_index(seq)?;
        let s = &self.slices[si];
        let written = if si == self.slices.len() - 1 {
            s.idx_written
        } else {
            s.count
        };
        let i = seq - s.first_seq;
        if i >= written {
            return self.read_msg(seq);
        }
        let n = (written - i).min(READ_AHEAD_MSGS);
        let files = match self.files(si) {
            Ok(f) => f,
            Err(err) => {
                tracing::error!(channel = %self.name, seq, "cannot open slice files: {err}");
                return None;
            }
        };
        let mut raw = vec![0u8; (n * IDX_ENTRY_LEN) as usize];
        if files
            .idx
            .read_exact_at(&mut raw, HEADER_LEN + i * IDX_ENTRY_LEN)
            .is_err()
        {
            return self.read_msg(seq);
        }
        // The run: valid, consecutive entries of consecutive records.
        let mut run: Vec<IdxEntry> = Vec::new();
        for (k, chunk) in raw.chunks(IDX_ENTRY_LEN as usize).enumerate() {
            let Some(e) = IdxEntry::decode(chunk) else {
                break;
            };
            if e.seq != seq + k as u64 || e.is_hole() {
                break;
            }
            if let Some(first) = run.first() {
                let prev_end = run.last().map_or(0, IdxEntry::end);
                if e.offset != prev_end || e.end() - first.offset > READ_AHEAD_BYTES {
                    break;
                }
            }
            run.push(e);
        }
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            // Not readable as a run (a hole, a corrupt entry): the single read reports it.
            return self.read_msg(seq);
        };
        let start = first.offset;
        let mut data = vec![0u8; (last.end() - start) as usize];
        if let Err(err) = files.data.read_exact_at(&mut data, start) {
            tracing::error!(channel = %self.name, seq, "cannot read messages: {err}");
            return None;
        }
        let data = Bytes::from(data);
        let msgs: Vec<Option<Bytes>> = run
            .iter()
            .map(|e| {
                let at = (e.offset - start) as usize;
                let end = (e.end() - start) as usize;
                self.record_body(e.seq, e, data.slice(at..end))
                    .map(wire_form)
            })
            .collect();
        let got = msgs[0].clone();
        *self.ahead.borrow_mut() = ReadAhead { first: seq, msgs };
        got
    }

    fn warn_once(&mut self) {
        if !self.warned {
            self.warned = true;
            tracing::warn!(channel = %self.name, "Reached limits for store {:?}", self.name);
        }
    }

    /// Removes the oldest message.
    fn remove_first(&mut self) {
        let seq = self.first;
        if let Some(e) = self.entry(seq) {
            if !e.is_hole() {
                let size = e.msg_size();
                self.msgs = self.msgs.saturating_sub(1);
                self.bytes = self.bytes.saturating_sub(size);
                if let Some(si) = self.slice_index(seq) {
                    let s = &mut self.slices[si];
                    s.live_msgs = s.live_msgs.saturating_sub(1);
                    s.live_bytes = s.live_bytes.saturating_sub(size);
                }
            }
        }
        self.first += 1;
        self.state_dirty = true;
        self.drop_dead_slices();
    }

    /// Removes every remaining message of the oldest slice (not the active one).
    fn remove_first_slice(&mut self) {
        if self.slices.len() < 2 {
            return;
        }
        let s = &self.slices[0];
        self.msgs = self.msgs.saturating_sub(s.live_msgs);
        self.bytes = self.bytes.saturating_sub(s.live_bytes);
        self.first = self.first.max(s.end_seq());
        self.state_dirty = true;
        self.drop_dead_slices();
    }

    /// Deletes the files of old slices whose messages are all removed.
    fn drop_dead_slices(&mut self) {
        while self.slices.len() > 1 && self.slices[0].end_seq() <= self.first {
            if let Some(s) = self.slices.pop_front() {
                self.forget_files(&s);
                remove_slice_files(&self.dir, s.no);
            }
        }
        while self.cache.front().is_some_and(|(s, _)| *s < self.first) {
            if let Some((_, b)) = self.cache.pop_front() {
                self.cache_bytes -= b.len();
            }
        }
    }

    fn over_limits(&self, msgs: u64, bytes: u64) -> bool {
        (self.max_msgs > 0 && msgs > self.max_msgs)
            || (self.max_bytes > 0 && bytes > self.max_bytes)
    }

    /// Drops the oldest messages until within max_msgs / max_bytes (keeping the newest).
    fn enforce_count_limits(&mut self) -> bool {
        let mut dropped = false;
        while self.first < self.last && self.over_limits(self.msgs, self.bytes) {
            dropped = true;
            if self.slices.len() > 1 {
                let s = &self.slices[0];
                let (m, b) = (
                    self.msgs - s.live_msgs.min(self.msgs),
                    self.bytes.saturating_sub(s.live_bytes),
                );
                if (self.max_msgs > 0 && m >= self.max_msgs)
                    || (self.max_bytes > 0 && b >= self.max_bytes)
                {
                    self.remove_first_slice();
                    continue;
                }
            }
            self.remove_first();
        }
        dropped
    }

    /// Writes the buffered records of the active slice (no sync).
    fn write_pending(&mut self) -> io::Result<()> {
        if self.pend_idx.is_empty() {
            return Ok(());
        }
        let mut idx = Vec::with_capacity(self.pend_idx.len() * IDX_ENTRY_LEN as usize);
        for e in &self.pend_idx {
            e.encode(&mut idx);
        }
        let n = self.pend_idx.len() as u64;
        let f = self.active_files()?;
        let last = self.slices.len() - 1;
        let s = &mut self.slices[last];
        f.data.write_all_at(&self.pend_data, s.data_len)?;
        f.idx
            .write_all_at(&idx, HEADER_LEN + s.idx_written * IDX_ENTRY_LEN)?;
        s.data_len += self.pend_data.len() as u64;
        s.idx_written += n;
        s.dirty = true;
        self.pend_data.clear();
        self.pend_idx.clear();
        Ok(())
    }

    /// Starts a new slice if the active one is full.
    fn maybe_roll(&mut self, ts: i64) -> io::Result<()> {
        let s = self.active();
        let size = s.data_len + self.pend_data.len() as u64;
        let full = s.count > 0
            && ((self.opts.max_msgs > 0 && s.count >= self.opts.max_msgs)
                || (self.opts.max_bytes > 0 && size >= self.opts.max_bytes)
                || (self.opts.max_age > 0 && ts.saturating_sub(s.first_ts) >= self.opts.max_age));
        if !full {
            return Ok(());
        }
        self.write_pending()?;
        // The flush syncs the index of a slice that is no longer active (see `flush`).
        let last = self.slices.len() - 1;
        self.slices[last].dirty = true;
        let no = self.active().no + 1;
        let first = self.last + 1;
        let slice = create_slice(&self.dir, no, first, &self.shared)?;
        self.slices.push_back(slice);
        self.dir_dirty = true;
        Ok(())
    }
}

/// The wire form of a stored message: without the guid field at its end.
fn wire_form(stored: Bytes) -> Bytes {
    match split_guid(&stored) {
        (n, Some(_)) => stored.slice(..n),
        (_, None) => stored,
    }
}

impl FileMsgStore {
    /// Appends a message, with the guid field at the end of its record when given.
    fn append(&mut self, mut msg: MsgProto, guid: Option<&str>) -> StoreResult<u64> {
        let seq = self
            .last
            .checked_add(1)
            .ok_or_else(|| StoreError::Other("sequence overflow".into()))?;
        self.maybe_roll(msg.timestamp)
            .map_err(|e| io_err("message slice", e))?;
        msg.sequence = seq;
        msg.redelivered = false;
        msg.redelivery_count = 0;
        let encoded = Bytes::from(msg.encode_to_vec());
        let guid = guid.map(guid_field).unwrap_or_default();
        let s = self.slices.len() - 1;
        let offset = self.slices[s].data_len + self.pend_data.len() as u64;
        frame_parts(
            &mut self.pend_data,
            &[
                &seq.to_le_bytes(),
                &msg.timestamp.to_le_bytes(),
                &encoded,
                &guid,
            ],
        );
        let e = IdxEntry {
            seq,
            offset,
            ts: msg.timestamp,
            len: (MSG_PREFIX as usize + encoded.len() + guid.len()) as u32,
        };
        self.pend_idx.push(e);
        let size = e.msg_size();
        let sl = &mut self.slices[s];
        if sl.count == 0 {
            sl.first_ts = msg.timestamp;
        }
        sl.count += 1;
        sl.last_ts = msg.timestamp;
        sl.live_msgs += 1;
        sl.live_bytes += size;
        self.msgs += 1;
        self.bytes += size;
        self.last = seq;
        self.last_ts = msg.timestamp;
        self.cache_bytes += encoded.len();
        self.cache.push_back((seq, encoded));
        while self.cache.len() > CACHE_MSGS || self.cache_bytes > CACHE_BYTES {
            match self.cache.pop_front() {
                Some((_, b)) => self.cache_bytes -= b.len(),
                None => break,
            }
        }
        if self.enforce_count_limits() {
            self.warn_once();
        }
        Ok(seq)
    }
}

impl MsgStore for FileMsgStore {
    fn set_limits(&mut self, limits: &ChannelLimits) -> StoreResult<()> {
        self.max_msgs = limits.max_msgs.unwrap_or(0) as u64;
        self.max_bytes = limits.max_bytes.unwrap_or(0);
        self.max_age = limits.max_age.unwrap_or(Duration::ZERO);
        Ok(())
    }

    fn store(&mut self, msg: MsgProto) -> StoreResult<u64> {
        self.append(msg, None)
    }

    fn store_with_guid(&mut self, msg: MsgProto, guid: &str) -> StoreResult<u64> {
        self.append(msg, Some(guid))
    }

    fn recent_guids(&self, since: i64, max: usize) -> Vec<(String, i64)> {
        if self.first > self.last || max == 0 {
            return Vec::new();
        }
        let newest_max = self.last.saturating_sub(max as u64 - 1);
        let from = self
            .sequence_for_timestamp(since)
            .max(newest_max)
            .max(self.first);
        let mut out = Vec::new();
        for seq in from..=self.last {
            let Some(e) = self.entry(seq).filter(|e| !e.is_hole()) else {
                continue;
            };
            if e.ts < since {
                continue;
            }
            let Some(stored) = self.read_stored(seq) else {
                continue;
            };
            if let (_, Some(g)) = split_guid(&stored) {
                if let Ok(g) = std::str::from_utf8(g) {
                    out.push((g.to_string(), e.ts));
                }
            }
        }
        out
    }

    fn lookup(&self, seq: u64) -> Option<MsgProto> {
        MsgProto::decode(self.lookup_encoded(seq)?).ok()
    }

    fn lookup_encoded(&self, seq: u64) -> Option<Bytes> {
        if seq < self.first || seq > self.last {
            return None;
        }
        if let Some((front, _)) = self.cache.front() {
            if seq >= *front {
                return self
                    .cache
                    .get((seq - front) as usize)
                    .map(|(_, b)| b.clone());
            }
        }
        if let Some(m) = self.ahead.borrow().get(seq) {
            return m;
        }
        self.read_run(seq)
    }

    fn timestamp(&self, seq: u64) -> Option<i64> {
        if seq < self.first || seq > self.last {
            return None;
        }
        self.entry(seq).filter(|e| !e.is_hole()).map(|e| e.ts)
    }

    fn first_sequence(&self) -> u64 {
        if self.last == 0 {
            0
        } else {
            self.first
        }
    }

    fn last_sequence(&self) -> u64 {
        self.last
    }

    fn last_timestamp(&self) -> i64 {
        self.last_ts
    }

    fn state(&self) -> (u64, u64) {
        (self.msgs, self.bytes)
    }

    fn sequence_for_timestamp(&self, ts: i64) -> u64 {
        if self.first > self.last {
            return self.last + 1;
        }
        let ts_of = |seq: u64| self.entry(seq).map_or(i64::MIN, |e| e.ts);
        if ts <= ts_of(self.first) {
            return self.first;
        }
        if ts == self.last_ts {
            return self.last;
        }
        if ts > self.last_ts {
            return self.last + 1;
        }
        let (mut lo, mut hi) = (self.first, self.last);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ts_of(mid) < ts {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn purge(&mut self) -> StoreResult<()> {
        // Whole slices first (their files are deleted), then the active slice one by one.
        while self.first <= self.last {
            if self.slices.len() > 1 {
                self.remove_first_slice();
            } else {
                self.remove_first();
            }
        }
        Ok(())
    }

    fn expire(&mut self, now: i64) -> Option<i64> {
        if self.max_age.is_zero() {
            return None;
        }
        let age = i64::try_from(self.max_age.as_nanos()).unwrap_or(i64::MAX);
        let mut dropped = false;
        while self.first <= self.last {
            if self.slices.len() > 1 && self.slices[0].last_ts.saturating_add(age) <= now {
                self.remove_first_slice();
                dropped = true;
                continue;
            }
            match self.entry(self.first) {
                Some(e) if e.ts.saturating_add(age) > now => break,
                _ => {
                    self.remove_first();
                    dropped = true;
                }
            }
        }
        if dropped {
            self.warn_once();
        }
        if self.first <= self.last {
            self.entry(self.first).map(|e| e.ts.saturating_add(age))
        } else {
            None
        }
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        if let Err(e) = self.write_pending() {
            return futures::future::ready(Err(io_err("message write", e))).boxed();
        }
        let mut files = Vec::new();
        if self.state_dirty && self.first != self.state_first {
            if let Err(e) = self.state.write_all_at(&state_bytes(self.first), 0) {
                return futures::future::ready(Err(io_err("state write", e))).boxed();
            }
            self.state_first = self.first;
            files.push(self.state.clone());
        }
        self.state_dirty = false;
        // The data file is the source of truth (recovery rebuilds missing index entries from
        // it and drops entries pointing past it), so only it is synced here: the index of the
        // active slice is left to the auto-sync, the close and the OS. A slice that is no
        // longer active (rolled over) gets its index synced now, once, so the deferred files
        // stay one per channel.
        let mut lazy = Vec::new();
        let last = self.slices.len() - 1;
        for (i, s) in self.slices.iter_mut().enumerate().filter(|(_, s)| s.dirty) {
            s.dirty = false;
            if let Some(f) = &s.files {
                files.push(f.data.clone());
                if i == last {
                    lazy.push(f.idx.clone());
                } else {
                    files.push(f.idx.clone());
                }
            }
        }
        self.release_files();
        let dirs = if std::mem::take(&mut self.dir_dirty) {
            vec![self.dir.clone()]
        } else {
            Vec::new()
        };
        self.shared.commit(files, lazy, dirs)
    }
}

impl Drop for FileMsgStore {
    fn drop(&mut self) {
        for s in &self.slices {
            self.forget_files(s);
        }
    }
}

//! The FILE store: everything under one directory, crash-safe (see `docs/file-store.md`).
//!
//! ```text
//! DIR/.lock                     exclusive lock (one broker per directory)
//! DIR/server.dat                server info (cluster ID, subjects)
//! DIR/clients.dat               clients log (add / delete records)
//! DIR/channels/<name>/          one directory per channel (name percent-encoded)
//!     msgs.<N>.dat, msgs.<N>.idx    slice N: message records, index (sequence → offset)
//!     subs.dat                      subscription log
//!     state.dat                     logical first sequence (messages dropped by limits)
//! ```
//!
//! Every file starts with a 16-byte header (magic, format version, a value); every record is
//! framed with its length and a CRC-32. Appends are buffered until the engine flushes; a flush
//! writes each touched file once and (with `sync`, the default) fdatasyncs the data files and
//! logs it wrote, so a PubAck sent after the flush means the message is on disk. Index files
//! are written but not synced at flush: they are hints, checked against the data and rebuilt
//! from it at recovery (`msgs::verify_slice`).

pub mod check;
mod log;
mod msgs;
mod record;
mod subs;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::future::{ready, BoxFuture};
use futures::FutureExt;
use prost::Message;
use stan_protocol::subjects::ServerSubjects;

use super::limits::{admit_channel, effective_limits};
use super::{
    ChannelStore, ClientRecord, RecoveredChannel, RecoveredState, ServerInfo, Store, StoreError,
    StoreResult,
};
use crate::config::{FileStoreOptions, StoreLimits};
use log::{read_log, LogFile};
use record::{client_op, header, ClientPb, ServerPb, MAGIC_CLIENTS, MAGIC_SERVER};

pub use msgs::FileMsgStore;
pub use subs::FileSubStore;

/// Name of the lock file.
pub const LOCK_FILE: &str = ".lock";
/// Name of the server-info file.
pub const SERVER_FILE: &str = "server.dat";
/// Name of the clients log.
pub const CLIENTS_FILE: &str = "clients.dat";
/// Directory of the channels.
pub const CHANNELS_DIR: &str = "channels";
/// Name of a channel's subscription log.
pub const SUBS_FILE: &str = "subs.dat";

/// Locks a mutex, ignoring poisoning (the state is plain data).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A store error for an I/O failure.
pub(crate) fn io_err(what: &str, e: io::Error) -> StoreError {
    StoreError::Other(format!("file store: {what}: {e}"))
}

/// Runs one sync (`fsync`/`fdatasync`) and records its duration in the fsync latency
/// histogram of `/metrics`.
pub(crate) fn timed_sync(sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    let start = std::time::Instant::now();
    let result = sync();
    crate::monitor::metrics::FSYNC_LATENCY.observe(start.elapsed());
    result
}

/// Syncs a directory (so created, renamed or removed entries are durable).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = File::open(dir)?;
    timed_sync(|| d.sync_all())
}

/// Compaction settings of the subscription and client logs.
#[derive(Clone, Debug)]
pub(crate) struct CompactOptions {
    pub(crate) enabled: bool,
    pub(crate) frag: u32,
    pub(crate) interval: Duration,
    pub(crate) min_size: u64,
}

/// State shared by the store and its channel stores: the sync policy, the subscription logs
/// with buffered records, and the files written but not yet synced (with sync off, every
/// written file; with sync on, the index files of active slices, which are hints rebuilt from
/// the data at recovery and so are not synced at each flush).
pub(crate) struct Shared {
    sync: bool,
    pub(crate) dirty_subs: Mutex<Vec<Arc<Mutex<subs::SubLog>>>>,
    /// Keyed by the `Arc`'s address (unique while the map holds it): each file once.
    unsynced: Mutex<HashMap<usize, Arc<File>>>,
    /// Open slice files under `--file_fds_limit`.
    pub(crate) fds: Mutex<msgs::FdCache>,
}

/// Runs blocking file work off the async threads when a runtime is there.
fn run_blocking(
    f: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> BoxFuture<'static, StoreResult<()>> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => async move {
            match h.spawn_blocking(f).await {
                Ok(r) => r.map_err(|e| io_err("sync", e)),
                Err(e) => Err(StoreError::Other(format!("file store: sync task: {e}"))),
            }
        }
        .boxed(),
        Err(_) => ready(f().map_err(|e| io_err("sync", e))).boxed(),
    }
}

impl Shared {
    /// Makes written files durable: synced now (sync on), or by the next auto-sync.
    /// Makes a flush durable: with sync on, `files` are fdatasynced now and `lazy` files (index
    /// files: hints, rebuilt from the data at recovery) are left to the auto-sync, the close
    /// and the OS; with sync off both are left to them. `dirs` are synced in either case.
    pub(crate) fn commit(
        &self,
        files: Vec<Arc<File>>,
        lazy: Vec<Arc<File>>,
        dirs: Vec<PathBuf>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        if !lazy.is_empty() {
            Self::defer(&mut lock(&self.unsynced), lazy);
        }
        if files.is_empty() && dirs.is_empty() {
            return ready(Ok(())).boxed();
        }
        if !self.sync {
            Self::defer(&mut lock(&self.unsynced), files);
            if dirs.is_empty() {
                return ready(Ok(())).boxed();
            }
            return run_blocking(move || dirs.iter().try_for_each(|d| sync_dir(d)));
        }
        {
            // Synced now: no longer deferred (an index whose slice was rolled over).
            let mut unsynced = lock(&self.unsynced);
            if !unsynced.is_empty() {
                for f in &files {
                    unsynced.remove(&(Arc::as_ptr(f) as usize));
                }
            }
        }
        run_blocking(move || {
            for f in &files {
                timed_sync(|| f.sync_data())?;
            }
            for d in &dirs {
                sync_dir(d)?;
            }
            Ok(())
        })
    }

    fn defer(unsynced: &mut HashMap<usize, Arc<File>>, files: Vec<Arc<File>>) {
        for f in files {
            unsynced.insert(Arc::as_ptr(&f) as usize, f);
        }
    }

    /// Syncs every file written but not synced since the last auto-sync.
    fn sync_pending(&self) -> BoxFuture<'static, StoreResult<()>> {
        let files = std::mem::take(&mut *lock(&self.unsynced));
        if files.is_empty() {
            return ready(Ok(())).boxed();
        }
        run_blocking(move || {
            files
                .values()
                .try_for_each(|f| timed_sync(|| f.sync_data()))
        })
    }
}

/// A channel name as a directory name: bytes other than ASCII letters, digits, `-`, `_` and
/// (not leading) `.` are written `%XX`.
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The channel name of a directory name (`None` if it is not one [`encode_name`] makes).
pub fn decode_name(dir: &str) -> Option<String> {
    let b = dir.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (encode_name(&name) == dir).then_some(name)
}

/// Takes the exclusive lock of a store directory (created if needed).
pub fn lock_dir(dir: &Path) -> StoreResult<File> {
    std::fs::create_dir_all(dir.join(CHANNELS_DIR))
        .map_err(|e| io_err(&format!("cannot create {}", dir.display()), e))?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| io_err("lock file", e))?;
    match fs4::fs_std::FileExt::try_lock_exclusive(&f) {
        Ok(true) => {
            let _ = f.set_len(0);
            let _ = f.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0);
            Ok(f)
        }
        Ok(false) => Err(StoreError::Other(format!(
            "file store directory {} is in use by another process (locked: {})",
            dir.display(),
            dir.join(LOCK_FILE).display()
        ))),
        Err(e) => Err(io_err("lock", e)),
    }
}

/// Writes a small file atomically: temporary file, sync, rename, directory sync.
fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all_at(content, 0)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(d) = path.parent() {
        sync_dir(d)?;
    }
    Ok(())
}

/// Reads the server-info file (`Ok(None)` if there is none).
pub(crate) fn read_server_info(dir: &Path) -> Result<Option<ServerInfo>, String> {
    let path = dir.join(SERVER_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let r = read_log(&path, MAGIC_SERVER, &|_| true)?;
    let Some(body) = r.bodies().next() else {
        return Err(format!("{}: no valid record", path.display()));
    };
    let p = ServerPb::decode(body).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(ServerInfo {
        cluster_id: p.cluster_id,
        node_id: p.node_id,
        subjects: ServerSubjects {
            discover: p.discover,
            pings: p.pings,
            publish: p.publish,
            subscribe: p.subscribe,
            unsubscribe: p.unsubscribe,
            sub_close: p.sub_close,
            close: p.close,
        },
    }))
}

fn client_from_pb(p: ClientPb) -> ClientRecord {
    ClientRecord {
        id: p.id,
        hb_inbox: p.hb_inbox,
        conn_id: p.conn_id,
        protocol: p.protocol,
        ping_interval: p.ping_interval,
        ping_max_out: p.ping_max_out,
        resends_publishes: p.resends_publishes,
    }
}

fn client_body(c: &ClientRecord) -> Vec<u8> {
    let mut b = vec![client_op::ADD];
    let _ = ClientPb {
        id: c.id.clone(),
        hb_inbox: c.hb_inbox.clone(),
        conn_id: c.conn_id.clone(),
        protocol: c.protocol,
        ping_interval: c.ping_interval,
        ping_max_out: c.ping_max_out,
        resends_publishes: c.resends_publishes,
    }
    .encode(&mut b);
    b
}

/// Whether a body looks like a clients-log record.
pub(crate) fn accept_client(body: &[u8]) -> bool {
    matches!(
        body.first(),
        Some(&client_op::ADD) | Some(&client_op::DELETE)
    ) && body.len() > 1
}

/// Replays a clients log.
pub(crate) fn replay_clients<'a>(
    bodies: impl Iterator<Item = &'a [u8]>,
) -> HashMap<String, ClientRecord> {
    let mut m = HashMap::new();
    for b in bodies {
        match b[0] {
            client_op::ADD => {
                if let Ok(p) = ClientPb::decode(&b[1..]) {
                    let c = client_from_pb(p);
                    m.insert(c.id.clone(), c);
                }
            }
            client_op::DELETE => {
                if let Ok(id) = std::str::from_utf8(&b[1..]) {
                    m.remove(id);
                }
            }
            _ => {}
        }
    }
    m
}

/// The channel directories under `dir`: (name, path), sorted by name.
pub(crate) fn channel_dirs(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut v = Vec::new();
    let root = dir.join(CHANNELS_DIR);
    if !root.exists() {
        return Ok(v);
    }
    for e in std::fs::read_dir(&root)? {
        let e = e?;
        let fname = e.file_name().to_string_lossy().into_owned();
        if fname.starts_with(".trash-") {
            continue;
        }
        if !e.file_type()?.is_dir() {
            continue;
        }
        match decode_name(&fname) {
            Some(name) => v.push((name, e.path())),
            None => tracing::warn!("{}: not a channel directory, ignored", e.path().display()),
        }
    }
    v.sort();
    Ok(v)
}

/// What verifying one channel directory found.
pub(crate) struct ChannelCheck {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) slices: Vec<msgs::SliceCheck>,
    pub(crate) state_first: Option<u64>,
    pub(crate) subs: Result<log::LogRead, String>,
}

/// Verifies a channel directory without changing it.
pub(crate) fn verify_channel(name: &str, dir: &Path, full: bool) -> io::Result<ChannelCheck> {
    let slices = msgs::slice_numbers(dir)?
        .into_iter()
        .map(|no| msgs::verify_slice(dir, no, full))
        .collect();
    Ok(ChannelCheck {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        slices,
        state_first: msgs::read_state(dir),
        subs: subs::read(dir),
    })
}

impl ChannelCheck {
    /// Slices that can be used, in order, with overlapping ones left out (reported).
    pub(crate) fn usable_slices(&mut self) -> Vec<msgs::SliceCheck> {
        let mut out: Vec<msgs::SliceCheck> = Vec::new();
        for c in std::mem::take(&mut self.slices) {
            if let Some(f) = &c.fatal {
                if c.data_file_len < record::HEADER_LEN {
                    tracing::warn!(channel = %self.name, slice = c.no, "empty slice file ignored: {f}");
                } else {
                    tracing::error!(channel = %self.name, slice = c.no, "slice unusable: {f}");
                }
                continue;
            }
            if let Some(prev) = out.last() {
                if c.first_seq < prev.end_seq() {
                    tracing::error!(
                        channel = %self.name, slice = c.no,
                        "slice starts at sequence {} inside the previous slice: ignored",
                        c.first_seq
                    );
                    continue;
                }
            }
            out.push(c);
        }
        out
    }
}

/// The FILE store.
pub struct FileStore {
    dir: PathBuf,
    limits: StoreLimits,
    opts: FileStoreOptions,
    shared: Arc<Shared>,
    lock: Option<File>,
    clients: Option<LogFile>,
    client_map: HashMap<String, ClientRecord>,
    channels: HashMap<String, Arc<Mutex<subs::SubLog>>>,
    auto_sync: Option<tokio::task::JoinHandle<()>>,
}

impl FileStore {
    /// A store on `dir` (nothing is touched before [`Store::recover`]).
    pub fn new(dir: impl Into<PathBuf>, limits: StoreLimits, opts: FileStoreOptions) -> Self {
        FileStore {
            dir: dir.into(),
            limits,
            shared: Arc::new(Shared {
                sync: opts.sync,
                dirty_subs: Mutex::new(Vec::new()),
                unsynced: Mutex::new(HashMap::new()),
                fds: Mutex::new(msgs::FdCache::new(opts.fds_limit)),
            }),
            opts,
            lock: None,
            clients: None,
            client_map: HashMap::new(),
            channels: HashMap::new(),
            auto_sync: None,
        }
    }

    fn compact(&self) -> CompactOptions {
        CompactOptions {
            enabled: self.opts.compact_enabled,
            frag: self.opts.compact_frag,
            interval: self.opts.compact_interval,
            min_size: self.opts.compact_min_size,
        }
    }

    fn slice_options(&self) -> msgs::SliceOptions {
        msgs::SliceOptions {
            max_msgs: self.opts.slice_max_msgs,
            max_bytes: self.opts.slice_max_bytes,
            max_age: i64::try_from(self.opts.slice_max_age.as_nanos()).unwrap_or(i64::MAX),
            crc: self.opts.crc,
        }
    }

    fn channel_dir(&self, name: &str) -> PathBuf {
        self.dir.join(CHANNELS_DIR).join(encode_name(name))
    }

    /// Syncs the files written but not synced every `auto_sync`: with sync off everything
    /// written, with sync on the index files of the active slices.
    fn start_auto_sync(&mut self) {
        if self.opts.auto_sync.is_zero() {
            return;
        }
        let Ok(h) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let every = self.opts.auto_sync;
        self.auto_sync = Some(h.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = weak.upgrade() else { return };
                let fut = shared.sync_pending();
                drop(shared);
                if let Err(e) = fut.await {
                    tracing::error!("file store auto-sync failed: {e}");
                }
            }
        }));
    }

    /// Verifies everything, then repairs torn tails and opens the channels.
    fn recover_sync(&mut self) -> StoreResult<Option<RecoveredState>> {
        if self.lock.is_none() {
            self.lock = Some(lock_dir(&self.dir)?);
        }
        let fail = |e: String| StoreError::Other(format!("file store recovery: {e}"));
        let info = read_server_info(&self.dir).map_err(fail)?;
        let channel_list = channel_dirs(&self.dir).map_err(|e| fail(e.to_string()))?;
        // Leftovers of interrupted channel deletions.
        if let Ok(rd) = std::fs::read_dir(self.dir.join(CHANNELS_DIR)) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".trash-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        if info.is_none() {
            if channel_list.is_empty() {
                return Ok(None);
            }
            // As the official server: the server info is written anew, the channels (and
            // clients) are recovered.
            tracing::warn!(
                "file store {}: {} is missing but {} channel(s) exist: recovering them, server \
                 info will be written anew",
                self.dir.display(),
                SERVER_FILE,
                channel_list.len()
            );
        }
        // 1. Verify (nothing written yet).
        let clients_path = self.dir.join(CLIENTS_FILE);
        let clients_read = if clients_path.exists() {
            Some(read_log(&clients_path, MAGIC_CLIENTS, &accept_client).map_err(fail)?)
        } else {
            None
        };
        let mut checks = Vec::new();
        for (name, dir) in &channel_list {
            checks.push(verify_channel(name, dir, false).map_err(|e| fail(e.to_string()))?);
        }
        // 2. Report and repair, open.
        let compact = self.compact();
        let clients_log = match &clients_read {
            Some(r) => {
                report_log("clients log", &clients_path, r);
                LogFile::open(
                    &clients_path,
                    MAGIC_CLIENTS,
                    r.scan.good_len,
                    r.scan.records.len() as u64,
                )
                .map_err(|e| io_err("clients log", e))?
            }
            None => LogFile::create(&clients_path, MAGIC_CLIENTS)
                .map_err(|e| io_err("clients log", e))?,
        };
        self.client_map = clients_read
            .as_ref()
            .map(|r| replay_clients(r.bodies()))
            .unwrap_or_default();
        self.clients = Some(clients_log);
        let mut channels = Vec::new();
        for mut c in checks {
            let limits = effective_limits(&self.limits, &c.name);
            let slices = c.usable_slices();
            for s in &slices {
                for e in &s.errors {
                    tracing::error!(channel = %c.name, slice = s.no, "{e}");
                }
                for r in &s.repairs {
                    tracing::warn!(channel = %c.name, slice = s.no, "{r}");
                }
                if s.needs_repair() {
                    msgs::repair_slice(&c.dir, s).map_err(|e| io_err("slice repair", e))?;
                }
            }
            let msgs = FileMsgStore::open(
                &c.name,
                &c.dir,
                &limits,
                self.slice_options(),
                self.shared.clone(),
                slices,
                c.state_first,
            )
            .map_err(|e| io_err(&format!("channel {:?}", c.name), e))?;
            let subs_path = c.dir.join(SUBS_FILE);
            let subs = match &c.subs {
                Ok(r) => {
                    report_log("subscription log", &subs_path, r);
                    let log = LogFile::open(
                        &subs_path,
                        record::MAGIC_SUBS,
                        r.scan.good_len,
                        r.scan.records.len() as u64,
                    )
                    .map_err(|e| io_err("subscription log", e))?;
                    FileSubStore::new(log, subs::replay(r), self.shared.clone(), compact.clone())
                }
                Err(e) => {
                    tracing::error!(channel = %c.name, "subscription log unusable ({e}): started anew");
                    FileSubStore::create(&c.dir, self.shared.clone(), compact.clone())
                        .map_err(|e| io_err("subscription log", e))?
                }
            };
            let recovered = subs.recovered();
            self.channels.insert(c.name.clone(), subs.log());
            channels.push(RecoveredChannel {
                name: c.name.clone(),
                store: ChannelStore {
                    msgs: Box::new(msgs),
                    subs: Box::new(subs),
                    limits,
                },
                subs: recovered,
            });
        }
        let mut clients: Vec<ClientRecord> = self.client_map.values().cloned().collect();
        clients.sort_by(|a, b| a.id.cmp(&b.id));
        tracing::info!(
            dir = %self.dir.display(),
            channels = channels.len(),
            clients = clients.len(),
            "file store recovered"
        );
        Ok(Some(RecoveredState {
            server_info: info,
            clients,
            channels,
        }))
    }

    fn clients_log(&mut self) -> StoreResult<&mut LogFile> {
        if self.clients.is_none() {
            let p = self.dir.join(CLIENTS_FILE);
            self.clients =
                Some(LogFile::create(&p, MAGIC_CLIENTS).map_err(|e| io_err("clients log", e))?);
        }
        self.clients
            .as_mut()
            .ok_or_else(|| StoreError::Other("clients log".into()))
    }

    fn flush_files(&mut self) -> StoreResult<Vec<Arc<File>>> {
        let mut files = Vec::new();
        let dirty = std::mem::take(&mut *lock(&self.shared.dirty_subs));
        for log in dirty {
            if let Some(f) = lock(&log)
                .write()
                .map_err(|e| io_err("subscription log write", e))?
            {
                files.push(f);
            }
        }
        let live = self.client_map.len() as u64;
        let compact = self.compact();
        if let Some(c) = self.clients.as_mut() {
            if c.compaction_due(live, &compact) {
                let mut ids: Vec<&String> = self.client_map.keys().collect();
                ids.sort();
                let recs: Vec<Vec<u8>> = ids
                    .into_iter()
                    .map(|id| client_body(&self.client_map[id]))
                    .collect();
                c.rewrite(&recs).map_err(|e| io_err("clients log", e))?;
            } else if let Some(f) = c
                .write_pending()
                .map_err(|e| io_err("clients log write", e))?
            {
                files.push(f);
            }
        }
        Ok(files)
    }
}

fn report_log(what: &str, path: &Path, r: &log::LogRead) {
    for (off, s) in &r.scan.skipped {
        tracing::error!(
            "{what} {}: corrupt record at offset {off}: {s}",
            path.display()
        );
    }
    if let Some(t) = &r.scan.torn {
        tracing::warn!("{what} {}: {t}", path.display());
    }
}

impl Store for FileStore {
    fn store_type(&self) -> &'static str {
        "FILE"
    }

    fn set_limits(&mut self, limits: StoreLimits) -> StoreResult<()> {
        self.limits = limits;
        Ok(())
    }

    fn recover(&mut self) -> BoxFuture<'_, StoreResult<Option<RecoveredState>>> {
        let r = self.recover_sync();
        self.start_auto_sync();
        ready(r).boxed()
    }

    fn init(&mut self, info: &ServerInfo) -> StoreResult<()> {
        if self.lock.is_none() {
            self.lock = Some(lock_dir(&self.dir)?);
        }
        let s = &info.subjects;
        let pb = ServerPb {
            cluster_id: info.cluster_id.clone(),
            node_id: info.node_id.clone(),
            discover: s.discover.clone(),
            pings: s.pings.clone(),
            publish: s.publish.clone(),
            subscribe: s.subscribe.clone(),
            unsubscribe: s.unsubscribe.clone(),
            sub_close: s.sub_close.clone(),
            close: s.close.clone(),
        };
        let mut content = header(MAGIC_SERVER, 0).to_vec();
        record::frame(&mut content, &pb.encode_to_vec());
        write_atomic(&self.dir.join(SERVER_FILE), &content)
            .map_err(|e| io_err("server info", e))?;
        self.clients_log()?;
        Ok(())
    }

    fn create_channel(&mut self, name: &str) -> StoreResult<ChannelStore> {
        let limits = admit_channel(
            &self.limits,
            name,
            self.channels.contains_key(name),
            self.channels.len(),
        )?;
        let dir = self.channel_dir(name);
        let create = || -> io::Result<(FileMsgStore, FileSubStore)> {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(&dir)?;
            let msgs = FileMsgStore::create(
                name,
                &dir,
                &limits,
                self.slice_options(),
                self.shared.clone(),
            )?;
            let subs = FileSubStore::create(&dir, self.shared.clone(), self.compact())?;
            sync_dir(&dir)?;
            if let Some(p) = dir.parent() {
                sync_dir(p)?;
            }
            Ok((msgs, subs))
        };
        let (msgs, subs) = create().map_err(|e| io_err(&format!("create channel {name:?}"), e))?;
        self.channels.insert(name.to_string(), subs.log());
        Ok(ChannelStore {
            msgs: Box::new(msgs),
            subs: Box::new(subs),
            limits,
        })
    }

    fn delete_channel(&mut self, name: &str) -> StoreResult<()> {
        if let Some(log) = self.channels.remove(name) {
            lock(&log).deleted = true;
        }
        let dir = self.channel_dir(name);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self
            .dir
            .join(CHANNELS_DIR)
            .join(format!(".trash-{}", stan_protocol::subjects::new_nuid()));
        std::fs::rename(&dir, &trash).map_err(|e| io_err("delete channel", e))?;
        if let Some(p) = dir.parent() {
            let _ = sync_dir(p);
        }
        std::fs::remove_dir_all(&trash).map_err(|e| io_err("delete channel", e))
    }

    fn add_client(&mut self, client: &ClientRecord) -> StoreResult<()> {
        let body = client_body(client);
        self.clients_log()?.append(&[&body]);
        self.client_map.insert(client.id.clone(), client.clone());
        Ok(())
    }

    fn delete_client(&mut self, id: &str) -> StoreResult<()> {
        if self.client_map.remove(id).is_some() {
            self.clients_log()?
                .append(&[&[client_op::DELETE], id.as_bytes()]);
        }
        Ok(())
    }

    fn flush(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        match self.flush_files() {
            Ok(files) => self.shared.commit(files, Vec::new(), Vec::new()),
            Err(e) => ready(Err(e)).boxed(),
        }
    }

    fn close(&mut self) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let r = self.flush().await;
            let s = self.shared.sync_pending().await;
            if let Some(t) = self.auto_sync.take() {
                t.abort();
            }
            self.lock = None;
            r.and(s)
        }
        .boxed()
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Some(t) = self.auto_sync.take() {
            t.abort();
        }
    }
}

/// The files [`fuzz_recover`] can write, by selector (the selector byte modulo their number).
const FUZZ_FILES: [&str; 9] = [
    SERVER_FILE,
    CLIENTS_FILE,
    "channels/foo/msgs.1.dat",
    "channels/foo/msgs.1.idx",
    "channels/foo/subs.dat",
    "channels/foo/state.dat",
    "channels/foo/msgs.2.dat",
    "channels/foo/msgs.2.idx",
    "channels/bar/msgs.1.dat",
];

/// Lays `data` out as a store directory and recovers it, for fuzzing and for replaying fuzz
/// inputs in tests.
///
/// `data` is a sequence of `[selector][length: u16 LE][bytes]` chunks; each chunk's bytes are
/// appended to the file the selector names (server info, clients log, two slices and the
/// subscription log and state file of channel `foo`, one slice of channel `bar`). The directory
/// (under the system temporary directory, removed afterwards) is then checked with
/// [`check::check`], recovered, every recovered message read back, one message appended, the
/// store closed and recovered a second time. Errors are expected; a panic, a hang, an
/// unbounded allocation, or a second recovery failing after the first succeeded are defects.
#[doc(hidden)]
pub fn fuzz_recover(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stan-fuzz-store-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut files: Vec<Vec<u8>> = vec![Vec::new(); FUZZ_FILES.len()];
    let mut present = [false; FUZZ_FILES.len()];
    let mut rest = data;
    while let Some((&sel, tail)) = rest.split_first() {
        let len = match tail {
            [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
            _ => 0,
        };
        let body = tail.get(2..).unwrap_or(&[]);
        let take = len.min(body.len());
        let i = usize::from(sel) % FUZZ_FILES.len();
        files[i].extend_from_slice(&body[..take]);
        present[i] = true;
        rest = &body[take..];
    }
    for (i, name) in FUZZ_FILES.iter().enumerate() {
        if present[i] {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("fuzz store directory");
            }
            std::fs::write(&path, &files[i]).expect("fuzz store file");
        }
    }
    let _ = check::check(&dir, false);
    if fuzz_open_once(&dir, true) {
        assert!(
            fuzz_open_once(&dir, false),
            "a store that recovered once does not recover again"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One recovery of the fuzz store at `dir`: whether it recovered. With `exercise`, every
/// recovered message is read and one message is appended to each channel.
fn fuzz_open_once(dir: &Path, exercise: bool) -> bool {
    let opts = FileStoreOptions {
        sync: false,
        auto_sync: Duration::ZERO,
        ..FileStoreOptions::default()
    };
    let mut store = FileStore::new(dir, StoreLimits::default(), opts);
    let Ok(state) = futures::executor::block_on(store.recover()) else {
        return false;
    };
    if let Some(mut state) = state {
        if exercise {
            for ch in &mut state.channels {
                let msgs = &mut ch.store.msgs;
                let (first, last) = (msgs.first_sequence(), msgs.last_sequence());
                // Bounded: the sequence numbers come from the input.
                for seq in first..=last.min(first.saturating_add(1000)) {
                    let _ = msgs.lookup(seq);
                }
                let _ = msgs.store(stan_protocol::pb::MsgProto {
                    subject: ch.name.clone(),
                    data: bytes::Bytes::from_static(b"after recovery"),
                    timestamp: 1,
                    ..Default::default()
                });
                let _ = futures::executor::block_on(msgs.flush());
            }
        }
    }
    let _ = futures::executor::block_on(store.close());
    true
}

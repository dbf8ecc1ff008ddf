use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::executor::block_on;
use stan_protocol::pb::MsgProto;
use stan_protocol::subjects::ServerSubjects;

use super::*;
use crate::config::{ChannelLimits, FileStoreOptions, StoreLimits};
use crate::store::SubRecord;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "stan-fs-{tag}-{}",
            stan_protocol::subjects::new_nuid()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn info() -> ServerInfo {
    ServerInfo {
        cluster_id: "c1".into(),
        node_id: String::new(),
        subjects: ServerSubjects::new("c1", "_STAN.discover"),
    }
}

fn msg(ts: i64, data: &str) -> MsgProto {
    MsgProto {
        subject: "foo".into(),
        reply: "r".into(),
        data: Bytes::from(data.to_string()),
        timestamp: ts,
        ..Default::default()
    }
}

fn sub(id: u64) -> SubRecord {
    SubRecord {
        id,
        client_id: "me".into(),
        inbox: "in".into(),
        ack_inbox: "ack".into(),
        max_in_flight: 10,
        ack_wait_in_secs: 30,
        durable_name: "dur".into(),
        is_durable: true,
        ..Default::default()
    }
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        id: id.into(),
        hb_inbox: format!("hb.{id}"),
        conn_id: Bytes::from_static(b"conn"),
        protocol: 1,
        ping_interval: 5,
        ping_max_out: 3,
        resends_publishes: false,
    }
}

fn open(
    dir: &Path,
    limits: StoreLimits,
    opts: FileStoreOptions,
) -> (FileStore, Option<RecoveredState>) {
    let mut st = FileStore::new(dir, limits, opts);
    let r = block_on(st.recover()).expect("recover");
    if r.is_none() {
        st.init(&info()).unwrap();
    }
    (st, r)
}

fn default_open(dir: &Path) -> (FileStore, Option<RecoveredState>) {
    open(dir, StoreLimits::default(), FileStoreOptions::default())
}

/// Creates channel "foo" with `n` messages, one durable (id 1) with 1..=n pending and 1 acked,
/// and client "me"; flushes and closes.
fn populate(dir: &Path, n: u64, opts: FileStoreOptions) {
    let (mut st, r) = open(dir, StoreLimits::default(), opts);
    assert!(r.is_none());
    st.add_client(&client("me")).unwrap();
    let mut ch = st.create_channel("foo").unwrap();
    for i in 1..=n {
        assert_eq!(
            ch.msgs.store(msg(i as i64 * 10, &format!("m{i}"))).unwrap(),
            i
        );
    }
    block_on(ch.msgs.flush()).unwrap();
    ch.subs.create_sub(&sub(1)).unwrap();
    for i in 1..=n {
        ch.subs.add_seq_pending(1, i).unwrap();
    }
    ch.subs.ack_seq_pending(1, 1).unwrap();
    block_on(ch.subs.flush()).unwrap();
    block_on(st.flush()).unwrap();
    block_on(st.close()).unwrap();
}

fn slice_data(dir: &Path, no: u64) -> PathBuf {
    dir.join(CHANNELS_DIR)
        .join("foo")
        .join(format!("msgs.{no}.dat"))
}

fn recovered_foo(r: &mut RecoveredState) -> RecoveredChannel {
    let i = r.channels.iter().position(|c| c.name == "foo").unwrap();
    r.channels.remove(i)
}

/// Options that compact a log at every chance (no minimum size, no interval).
fn compact_always() -> FileStoreOptions {
    FileStoreOptions {
        compact_min_size: 0,
        compact_interval: Duration::ZERO,
        ..Default::default()
    }
}

#[test]
fn round_trip_and_restart() {
    let d = TempDir::new("rt");
    populate(&d.0, 20, FileStoreOptions::default());
    let (mut st, r) = default_open(&d.0);
    let mut r = r.expect("recovered");
    assert_eq!(r.server_info, Some(info()));
    assert_eq!(r.clients, vec![client("me")]);
    let ch = recovered_foo(&mut r);
    let m = &ch.store.msgs;
    assert_eq!((m.first_sequence(), m.last_sequence()), (1, 20));
    assert_eq!(m.state().0, 20);
    for i in 1..=20u64 {
        let got = m.lookup(i).unwrap();
        assert_eq!(got.sequence, i);
        assert_eq!(got.data, Bytes::from(format!("m{i}")));
        assert_eq!((got.subject.as_str(), got.reply.as_str()), ("foo", "r"));
        assert_eq!(got.timestamp, i as i64 * 10);
        assert_eq!(m.timestamp(i), Some(i as i64 * 10));
    }
    assert_eq!(m.last_timestamp(), 200);
    assert_eq!(m.sequence_for_timestamp(0), 1);
    assert_eq!(m.sequence_for_timestamp(55), 6);
    assert_eq!(m.sequence_for_timestamp(200), 20);
    assert_eq!(m.sequence_for_timestamp(201), 21);
    assert_eq!(ch.subs.len(), 1);
    assert_eq!(ch.subs[0].record.last_sent, 20);
    assert_eq!(ch.subs[0].pending, (2..=20).collect::<Vec<_>>());
    // Appending continues the sequence after a restart.
    let mut store = ch.store;
    assert_eq!(store.msgs.store(msg(300, "new")).unwrap(), 21);
    block_on(store.msgs.flush()).unwrap();
    drop(store);
    block_on(st.close()).unwrap();
    drop(st);
    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    assert_eq!(ch.store.msgs.lookup(21).unwrap().data, Bytes::from("new"));
}

#[test]
fn torn_tail_recovers_every_full_record() {
    let d = TempDir::new("torn");
    populate(&d.0, 10, FileStoreOptions::default());
    let p = slice_data(&d.0, 1);
    let len = std::fs::metadata(&p).unwrap().len();
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    // The offline check sees it and would cut it.
    let rep = check::check(&d.0, false).unwrap();
    assert!(!rep.is_clean(), "{}", rep.text);
    assert!(rep.text.contains("would"), "{}", rep.text);
    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    let m = &ch.store.msgs;
    assert_eq!((m.first_sequence(), m.last_sequence()), (1, 9));
    for i in 1..=9 {
        assert!(m.lookup(i).is_some(), "{i}");
    }
    assert!(m.lookup(10).is_none());
    drop(ch);
    drop(_st);
    let rep = check::check(&d.0, false).unwrap();
    assert!(rep.is_clean(), "{}", rep.text);
}

#[test]
fn garbage_tail_and_absurd_length() {
    let d = TempDir::new("garbage");
    populate(&d.0, 5, FileStoreOptions::default());
    let p = slice_data(&d.0, 1);
    let len = std::fs::metadata(&p).unwrap().len();
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(&[0xff; 40], len).unwrap();
    drop(f);
    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    assert_eq!(ch.store.msgs.last_sequence(), 5);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), len);
}

#[test]
fn flipped_byte_in_the_middle() {
    let d = TempDir::new("flip");
    populate(&d.0, 10, FileStoreOptions::default());
    let p = slice_data(&d.0, 1);
    let mut bytes = std::fs::read(&p).unwrap();
    // Record 5's data: find "m5" and flip it.
    let pos = bytes.windows(2).position(|w| w == b"m5").unwrap();
    bytes[pos] ^= 0x55;
    std::fs::write(&p, &bytes).unwrap();
    let rep = check::check(&d.0, false).unwrap();
    assert_eq!(rep.errors, 1, "{}", rep.text);
    assert!(rep.text.contains("sequence 5"), "{}", rep.text);
    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    let m = &ch.store.msgs;
    assert_eq!(m.last_sequence(), 10);
    for i in 1..=10 {
        assert_eq!(m.lookup(i).is_some(), i != 5, "{i}");
    }
    drop(ch);
    drop(_st);
    // Without the index, the rebuild skips the bad record and keeps the rest.
    std::fs::remove_file(p.with_extension("idx")).unwrap();
    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    let m = &ch.store.msgs;
    assert_eq!(m.last_sequence(), 10);
    for i in 1..=10 {
        assert_eq!(m.lookup(i).is_some(), i != 5, "{i}");
    }
}

#[test]
fn corrupt_or_missing_index_is_rebuilt() {
    let d = TempDir::new("idx");
    populate(&d.0, 10, FileStoreOptions::default());
    let idx = slice_data(&d.0, 1).with_extension("idx");
    // Corrupt one entry in the middle.
    let mut b = std::fs::read(&idx).unwrap();
    b[16 + 32 * 3 + 5] ^= 0xff;
    std::fs::write(&idx, &b).unwrap();
    let (st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    for i in 1..=10 {
        assert_eq!(ch.store.msgs.lookup(i).unwrap().sequence, i);
    }
    drop((st, ch));
    assert_eq!(std::fs::read(&idx).unwrap().len(), 16 + 32 * 10);
    // Missing index.
    std::fs::remove_file(&idx).unwrap();
    let rep = check::check(&d.0, true).unwrap();
    assert!(rep.is_clean(), "{}", rep.text);
    assert!(rep.text.contains("index missing"), "{}", rep.text);
    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    assert_eq!(ch.store.msgs.state().0, 10);
    assert_eq!(ch.store.msgs.lookup(10).unwrap().data, Bytes::from("m10"));
}

/// The index file is not synced at flush (the data file is): after an OS crash it may be
/// shorter than the data, or hold entries past the data that made it to disk. Recovery treats
/// it as a hint: it extends it from the data and drops entries the data does not back.
#[test]
fn unsynced_index_is_extended_from_the_data_and_cut_to_it() {
    let d = TempDir::new("idxhint");
    populate(&d.0, 10, FileStoreOptions::default());
    let data = slice_data(&d.0, 1);
    let idx = data.with_extension("idx");
    let full = std::fs::read(&idx).unwrap();
    assert_eq!(full.len(), 16 + 32 * 10);
    let check_all = |d: &Path, n: u64| {
        let (st, r) = default_open(d);
        let ch = recovered_foo(&mut r.unwrap());
        let m = &ch.store.msgs;
        assert_eq!((m.first_sequence(), m.last_sequence()), (1, n));
        for i in 1..=n {
            let got = m.lookup(i).unwrap();
            assert_eq!(
                (got.sequence, got.data.clone()),
                (i, Bytes::from(format!("m{i}")))
            );
            assert_eq!(m.timestamp(i), Some(i as i64 * 10));
        }
        assert_eq!(m.sequence_for_timestamp(75), 8);
        drop((st, ch));
    };

    // Index a few entries short (flushed data, index not yet on disk): every record recovered,
    // the index repaired to the full length, identical to the one written by the broker.
    for keep in [0u64, 4, 9] {
        let f = OpenOptions::new().write(true).open(&idx).unwrap();
        f.set_len(16 + 32 * keep).unwrap();
        drop(f);
        check_all(&d.0, 10);
        assert_eq!(std::fs::read(&idx).unwrap(), full, "kept {keep}");
    }
    // Only part of the header made it.
    std::fs::write(&idx, &full[..7]).unwrap();
    check_all(&d.0, 10);
    assert_eq!(std::fs::read(&idx).unwrap(), full);

    // Entries past the data (index written back before the data of its last records): well
    // formed entries pointing past the end of the data file are dropped.
    let data_len = std::fs::metadata(&data).unwrap().len();
    let mut extra = full.clone();
    for (i, seq) in (11..=13u64).enumerate() {
        record::IdxEntry {
            seq,
            offset: data_len + 40 * i as u64,
            ts: seq as i64 * 10,
            len: 30,
        }
        .encode(&mut extra);
    }
    std::fs::write(&idx, &extra).unwrap();
    check_all(&d.0, 10);
    assert_eq!(std::fs::read(&idx).unwrap(), full);
    assert_eq!(std::fs::metadata(&data).unwrap().len(), data_len);

    // The same with the data file extended by zeros (its size reached the disk, its content
    // did not): the entries point inside the file but at no record; dropped, zeros cut.
    let f = OpenOptions::new().write(true).open(&data).unwrap();
    f.set_len(data_len + 200).unwrap();
    drop(f);
    std::fs::write(&idx, &extra).unwrap();
    check_all(&d.0, 10);
    assert_eq!(std::fs::read(&idx).unwrap(), full);
    assert_eq!(std::fs::metadata(&data).unwrap().len(), data_len);

    // A garbage tail after valid entries is cut too.
    let mut garbage = full.clone();
    garbage.extend_from_slice(&[0xa5; 70]);
    std::fs::write(&idx, &garbage).unwrap();
    check_all(&d.0, 10);
    assert_eq!(std::fs::read(&idx).unwrap(), full);

    // The repaired store keeps working: new messages follow, and survive a restart with a
    // short index again.
    {
        let (mut st, r) = default_open(&d.0);
        let mut ch = recovered_foo(&mut r.unwrap());
        for i in 11..=12u64 {
            assert_eq!(
                ch.store
                    .msgs
                    .store(msg(i as i64 * 10, &format!("m{i}")))
                    .unwrap(),
                i
            );
        }
        block_on(ch.store.msgs.flush()).unwrap();
        block_on(st.close()).unwrap();
    }
    let f = OpenOptions::new().write(true).open(&idx).unwrap();
    f.set_len(16 + 32 * 10).unwrap();
    drop(f);
    check_all(&d.0, 12);
    assert_eq!(std::fs::read(&idx).unwrap().len(), 16 + 32 * 12);
    let rep = check::check(&d.0, true).unwrap();
    assert!(rep.is_clean(), "{}", rep.text);
}

#[test]
fn sub_log_compaction_keeps_state() {
    let d = TempDir::new("compact");
    let opts = compact_always();
    let (mut st, _) = open(&d.0, StoreLimits::default(), opts.clone());
    let mut ch = st.create_channel("foo").unwrap();
    ch.subs.create_sub(&sub(1)).unwrap();
    ch.subs.create_sub(&sub(2)).unwrap();
    for i in 1..=500 {
        ch.subs.add_seq_pending(1, i).unwrap();
        if i % 10 != 0 {
            ch.subs.ack_seq_pending(1, i).unwrap();
        }
    }
    ch.subs.delete_sub(2).unwrap();
    let subs_path = d.0.join(CHANNELS_DIR).join("foo").join(SUBS_FILE);
    block_on(ch.subs.flush()).unwrap();
    let size = std::fs::metadata(&subs_path).unwrap().len();
    // 1 sub + 50 pending, written as 51 records.
    assert!(size < 51 * 40, "not compacted: {size} bytes");
    let mut s1 = sub(1);
    s1.is_closed = true;
    ch.subs.update_sub(&s1).unwrap();
    block_on(st.flush()).unwrap();
    drop(ch);
    block_on(st.close()).unwrap();
    drop(st);
    let (_st, r) = open(&d.0, StoreLimits::default(), opts);
    let ch = recovered_foo(&mut r.unwrap());
    assert_eq!(ch.subs.len(), 1);
    let s = &ch.subs[0];
    assert!(s.record.is_closed);
    assert_eq!(s.record.last_sent, 500);
    assert_eq!(s.pending, (1..=50).map(|i| i * 10).collect::<Vec<_>>());
}

#[test]
fn clients_log_and_compaction() {
    let d = TempDir::new("clients");
    let opts = compact_always();
    let (mut st, _) = open(&d.0, StoreLimits::default(), opts.clone());
    for i in 0..100 {
        st.add_client(&client(&format!("c{i}"))).unwrap();
        if i != 42 {
            st.delete_client(&format!("c{i}")).unwrap();
        }
    }
    block_on(st.close()).unwrap();
    drop(st);
    let size = std::fs::metadata(d.0.join(CLIENTS_FILE)).unwrap().len();
    assert!(size < 200, "clients log not compacted: {size}");
    let (_st, r) = open(&d.0, StoreLimits::default(), opts);
    assert_eq!(r.unwrap().clients, vec![client("c42")]);
}

#[test]
fn lock_refuses_a_second_opener() {
    let d = TempDir::new("lock");
    let (st, _) = default_open(&d.0);
    let mut second = FileStore::new(&d.0, StoreLimits::default(), FileStoreOptions::default());
    let e = block_on(second.recover())
        .err()
        .expect("second opener refused");
    assert!(e.to_string().contains("in use by another process"), "{e}");
    assert!(check::check(&d.0, false).unwrap_err().contains("in use"));
    drop(st);
    let mut third = FileStore::new(&d.0, StoreLimits::default(), FileStoreOptions::default());
    assert!(block_on(third.recover()).is_ok());
}

#[test]
fn slices_roll_and_old_ones_are_deleted() {
    let d = TempDir::new("slices");
    let opts = FileStoreOptions {
        slice_max_msgs: 3,
        ..Default::default()
    };
    let mut limits = StoreLimits::default();
    limits.channels.insert(
        "foo".into(),
        ChannelLimits {
            max_msgs: Some(5),
            ..Default::default()
        },
    );
    let (mut st, _) = open(&d.0, limits.clone(), opts.clone());
    let mut ch = st.create_channel("foo").unwrap();
    for i in 1..=10 {
        ch.msgs.store(msg(i, &format!("m{i}"))).unwrap();
        block_on(ch.msgs.flush()).unwrap();
    }
    assert_eq!((ch.msgs.first_sequence(), ch.msgs.last_sequence()), (6, 10));
    assert_eq!(ch.msgs.state().0, 5);
    let cdir = d.0.join(CHANNELS_DIR).join("foo");
    let mut slices = msgs::slice_numbers(&cdir).unwrap();
    slices.sort();
    // Slices hold 1-3, 4-6, 7-9, 10: the first is gone.
    assert_eq!(slices, vec![2, 3, 4]);
    drop(ch);
    block_on(st.close()).unwrap();
    drop(st);
    let (_st, r) = open(&d.0, limits, opts);
    let ch = recovered_foo(&mut r.unwrap());
    let m = &ch.store.msgs;
    assert_eq!(
        (m.first_sequence(), m.last_sequence(), m.state().0),
        (6, 10, 5)
    );
    assert!(m.lookup(5).is_none());
    assert_eq!(m.lookup(6).unwrap().data, Bytes::from("m6"));
}

#[test]
fn limits_are_applied_at_startup_and_expiry() {
    let d = TempDir::new("limits");
    populate(
        &d.0,
        10,
        FileStoreOptions {
            slice_max_msgs: 4,
            ..Default::default()
        },
    );
    let mut limits = StoreLimits::default();
    limits.global.max_msgs = Some(3);
    limits.global.max_age = Some(Duration::from_nanos(50));
    let (_st, r) = open(&d.0, limits, FileStoreOptions::default());
    let mut ch = recovered_foo(&mut r.unwrap());
    let m = &mut ch.store.msgs;
    assert_eq!(
        (m.first_sequence(), m.last_sequence(), m.state().0),
        (8, 10, 3)
    );
    // Timestamps are 80, 90, 100; max age 50.
    assert_eq!(m.expire(135), Some(140));
    assert_eq!(m.first_sequence(), 9);
    assert_eq!(m.expire(1000), None);
    assert_eq!(
        (m.first_sequence(), m.last_sequence(), m.state()),
        (11, 10, (0, 0))
    );
    block_on(m.flush()).unwrap();
    drop(ch);
    drop(_st);
    // Everything expired: the sequence keeps going after a restart.
    let (_st, r) = default_open(&d.0);
    let mut ch = recovered_foo(&mut r.unwrap());
    assert_eq!(
        (
            ch.store.msgs.first_sequence(),
            ch.store.msgs.last_sequence()
        ),
        (11, 10)
    );
    assert_eq!(ch.store.msgs.store(msg(5000, "x")).unwrap(), 11);
}

#[test]
fn max_bytes_matches_the_memory_store() {
    let d = TempDir::new("bytes");
    let (mut st, _) = default_open(&d.0);
    let mut mem = crate::store::MemoryStore::new(StoreLimits::default());
    let limits = |st: &mut dyn Store| st.create_channel("foo").unwrap();
    let mut a = limits(&mut st);
    let mut b = limits(&mut mem);
    for i in 0..10 {
        a.msgs.store(msg(i, "hello")).unwrap();
        b.msgs.store(msg(i, "hello")).unwrap();
    }
    assert_eq!(a.msgs.state(), b.msgs.state());
}

#[test]
fn sync_off_still_persists_on_close() {
    let d = TempDir::new("nosync");
    populate(
        &d.0,
        3,
        FileStoreOptions {
            sync: false,
            ..Default::default()
        },
    );
    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    assert_eq!(ch.store.msgs.last_sequence(), 3);
}

#[test]
fn purge_removes_every_message_and_survives_a_restart() {
    let d = TempDir::new("purge");
    populate(
        &d.0,
        10,
        FileStoreOptions {
            slice_max_msgs: 4,
            ..Default::default()
        },
    );
    let (_st, r) = default_open(&d.0);
    let mut ch = recovered_foo(&mut r.unwrap());
    ch.store.msgs.purge().unwrap();
    let m = &ch.store.msgs;
    assert_eq!(
        (m.first_sequence(), m.last_sequence(), m.state()),
        (11, 10, (0, 0))
    );
    assert!(m.lookup(10).is_none());
    assert!(
        !slice_data(&d.0, 1).exists(),
        "whole slices' files are deleted"
    );
    block_on(ch.store.msgs.flush()).unwrap();
    drop(ch);
    drop(_st);
    let (_st, r) = default_open(&d.0);
    let mut ch = recovered_foo(&mut r.unwrap());
    assert_eq!(
        (
            ch.store.msgs.first_sequence(),
            ch.store.msgs.last_sequence(),
            ch.store.msgs.state().0
        ),
        (11, 10, 0)
    );
    assert_eq!(ch.store.msgs.store(msg(5000, "x")).unwrap(), 11);
}

#[test]
fn deleted_channel_is_gone() {
    let d = TempDir::new("del");
    populate(&d.0, 3, FileStoreOptions::default());
    let (mut st, r) = default_open(&d.0);
    drop(r);
    st.delete_channel("foo").unwrap();
    assert!(!d.0.join(CHANNELS_DIR).join("foo").exists());
    let mut ch = st.create_channel("foo").unwrap();
    assert_eq!(ch.msgs.store(msg(1, "a")).unwrap(), 1);
}

#[test]
fn channel_names_round_trip() {
    for n in ["foo", "foo.bar", "a-b_c", "ünï.cødé", "%x", "FOO"] {
        let e = encode_name(n);
        assert!(!e.starts_with('.') && !e.contains('/'), "{e}");
        assert_eq!(decode_name(&e).as_deref(), Some(n));
    }
    assert_eq!(decode_name("bad%zz"), None);
    assert_eq!(decode_name("%66oo"), None, "not canonical");
}

/// Open descriptors of this process on slice files under `dir` (`/proc/self/fd`).
fn open_slice_files(dir: &Path) -> usize {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| {
            p.starts_with(&dir)
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("msgs."))
        })
        .count()
}

#[test]
fn fds_limit_closes_least_recently_used_slice_files() {
    let d = TempDir::new("fds");
    let opts = |fds_limit| FileStoreOptions {
        slice_max_msgs: 10,
        fds_limit,
        ..Default::default()
    };
    // Four channels of 100 messages in slices of 10: 40 slices, 80 files.
    let names = ["a", "b", "c", "d"];
    let text = |i: u64| format!("m{i}");
    {
        let (mut st, _) = open(&d.0, StoreLimits::default(), opts(10));
        let mut chans: Vec<ChannelStore> = names
            .iter()
            .map(|n| st.create_channel(n).unwrap())
            .collect();
        for i in 1..=100u64 {
            for ch in chans.iter_mut() {
                ch.msgs.store(msg(i as i64, &text(i))).unwrap();
                if i % 10 == 0 {
                    block_on(ch.msgs.flush()).unwrap();
                }
            }
        }
        // Four active slices (8 files) and at most one other slice.
        assert!(open_slice_files(&d.0) <= 10, "{}", open_slice_files(&d.0));
        assert_eq!(lock(&st.shared.fds).open_files(), open_slice_files(&d.0));
        block_on(st.close()).unwrap();
    }
    let on_disk = names
        .iter()
        .map(|n| {
            msgs::slice_numbers(&d.0.join(CHANNELS_DIR).join(n))
                .unwrap()
                .len()
        })
        .sum::<usize>();
    assert_eq!(on_disk, 40);

    // After a restart (empty caches) every read of an old slice reopens its files on demand.
    let (st, r) = open(&d.0, StoreLimits::default(), opts(10));
    let chans = r.unwrap().channels;
    assert_eq!(chans.len(), 4);
    assert!(open_slice_files(&d.0) <= 10, "{}", open_slice_files(&d.0));
    for _round in 0..2 {
        for ch in &chans {
            for i in 1..=100u64 {
                assert_eq!(ch.store.msgs.lookup(i).unwrap().data, Bytes::from(text(i)));
                assert_eq!(ch.store.msgs.timestamp(i), Some(i as i64));
            }
            assert!(open_slice_files(&d.0) <= 10, "{}", open_slice_files(&d.0));
        }
    }
    drop(chans);
    drop(st);
    assert_eq!(open_slice_files(&d.0), 0);

    // Without a limit every slice keeps both of its files open.
    let (st, r) = open(&d.0, StoreLimits::default(), opts(0));
    let chans = r.unwrap().channels;
    assert_eq!(open_slice_files(&d.0), 80);
    drop((chans, st));
}

#[test]
fn channels_without_server_info_are_recovered() {
    let d = TempDir::new("nosrv");
    populate(&d.0, 5, FileStoreOptions::default());
    std::fs::remove_file(d.0.join(SERVER_FILE)).unwrap();
    let mut st = FileStore::new(&d.0, StoreLimits::default(), FileStoreOptions::default());
    let mut r = block_on(st.recover()).unwrap().expect("channels recovered");
    assert_eq!(r.server_info, None);
    assert_eq!(r.clients, vec![client("me")]);
    let ch = recovered_foo(&mut r);
    assert_eq!(ch.store.msgs.last_sequence(), 5);
    assert_eq!(ch.store.msgs.lookup(3).unwrap().data, Bytes::from("m3"));
    assert_eq!(ch.subs.len(), 1);
    // The engine then records fresh server info.
    st.init(&info()).unwrap();
    drop((ch, r));
    block_on(st.close()).unwrap();
    drop(st);
    let (_st, r) = default_open(&d.0);
    let mut r = r.unwrap();
    assert_eq!(r.server_info, Some(info()));
    assert_eq!(recovered_foo(&mut r).store.msgs.last_sequence(), 5);
}

#[test]
fn redelivery_counts_survive_restarts_acks_and_compaction() {
    let d = TempDir::new("redeliv");
    let opts = compact_always();
    let counts = |dir: &Path, opts: &FileStoreOptions| {
        let (mut st, r) = open(dir, StoreLimits::default(), opts.clone());
        let ch = recovered_foo(&mut r.unwrap());
        block_on(st.close()).unwrap();
        type Counts = (u64, Vec<u64>, Vec<(u64, u32)>);
        let mut v: Vec<Counts> = ch
            .subs
            .into_iter()
            .map(|s| (s.record.id, s.pending, s.redeliveries))
            .collect();
        v.sort();
        v
    };
    let (mut st, _) = open(&d.0, StoreLimits::default(), FileStoreOptions::default());
    let mut ch = st.create_channel("foo").unwrap();
    ch.subs.create_sub(&sub(1)).unwrap();
    ch.subs.create_sub(&sub(2)).unwrap();
    for seq in 1..=3 {
        ch.subs.add_seq_pending(1, seq).unwrap();
    }
    ch.subs.add_seq_pending(2, 1).unwrap();
    // Redelivered twice: 1 of sub 1 and 1 of sub 2; 2 of sub 1 once; not pending: ignored.
    for c in 1..=2 {
        ch.subs.record_redelivery(1, 1, c).unwrap();
        ch.subs.record_redelivery(2, 1, c).unwrap();
    }
    ch.subs.record_redelivery(1, 2, 1).unwrap();
    ch.subs.record_redelivery(1, 9, 1).unwrap();
    ch.subs.record_redelivery(7, 1, 1).unwrap();
    block_on(ch.subs.flush()).unwrap();
    drop(ch);
    block_on(st.close()).unwrap();
    drop(st);
    assert_eq!(
        counts(&d.0, &opts),
        [
            (1, vec![1, 2, 3], vec![(1, 2), (2, 1)]),
            (2, vec![1], vec![(1, 2)])
        ]
    );

    // An ack takes the count with it, also when the sequence is delivered again; a deleted
    // subscription takes its counts along.
    let (mut st, r) = open(&d.0, StoreLimits::default(), opts.clone());
    let mut ch = recovered_foo(&mut r.unwrap()).store;
    ch.subs.ack_seq_pending(1, 2).unwrap();
    ch.subs.add_seq_pending(1, 2).unwrap();
    ch.subs.delete_sub(2).unwrap();
    ch.subs.record_redelivery(1, 1, 3).unwrap();
    block_on(ch.subs.flush()).unwrap();
    drop(ch);
    block_on(st.close()).unwrap();
    drop(st);
    assert_eq!(counts(&d.0, &opts), [(1, vec![1, 2, 3], vec![(1, 3)])]);

    // Compaction (due at once with these options) keeps the counts of pending sequences.
    let (mut st, r) = open(&d.0, StoreLimits::default(), opts.clone());
    let mut ch = recovered_foo(&mut r.unwrap()).store;
    for seq in 4..=200 {
        ch.subs.add_seq_pending(1, seq).unwrap();
        ch.subs.record_redelivery(1, seq, 1).unwrap();
        ch.subs.ack_seq_pending(1, seq).unwrap();
    }
    ch.subs.record_redelivery(1, 3, 5).unwrap();
    let subs_path = d.0.join(CHANNELS_DIR).join("foo").join(SUBS_FILE);
    block_on(ch.subs.flush()).unwrap();
    let size = std::fs::metadata(&subs_path).unwrap().len();
    // 1 sub + 3 pending + 2 counts (about 600 records before).
    assert!(size < 400, "not compacted: {size} bytes");
    drop(ch);
    block_on(st.close()).unwrap();
    drop(st);
    assert_eq!(
        counts(&d.0, &opts),
        [(1, vec![1, 2, 3], vec![(1, 3), (3, 5)])]
    );
}

#[test]
fn guids_kept_with_messages_survive_a_restart_and_stay_out_of_the_wire_form() {
    let d = TempDir::new("guids");
    let (mut st, _) = default_open(&d.0);
    let mut ch = st.create_channel("foo").unwrap();
    ch.msgs.store_with_guid(msg(10, "m1"), "guid-1").unwrap();
    ch.msgs.store(msg(20, "m2")).unwrap();
    ch.msgs.store_with_guid(msg(30, "m3"), "guid-3").unwrap();
    // Before the flush (buffered) and after it: the wire form has no guid.
    let plain = |seq: u64, ts: i64, data: &str| {
        let mut m = msg(ts, data);
        m.sequence = seq;
        Bytes::from(m.encode_to_vec())
    };
    assert_eq!(
        ch.msgs.recent_guids(0, 10),
        [("guid-1".to_string(), 10), ("guid-3".to_string(), 30)]
    );
    block_on(ch.msgs.flush()).unwrap();
    drop(ch);
    block_on(st.close()).unwrap();
    drop(st);

    let (_st, r) = default_open(&d.0);
    let ch = recovered_foo(&mut r.unwrap());
    let m = &ch.store.msgs;
    for (seq, ts, data) in [(1, 10, "m1"), (2, 20, "m2"), (3, 30, "m3")] {
        assert_eq!(m.lookup_encoded(seq).unwrap(), plain(seq, ts, data));
        assert_eq!(m.lookup(seq).unwrap().data, Bytes::from(data));
    }
    // Oldest first, from `since` on, at most the newest `max`.
    assert_eq!(
        m.recent_guids(0, 10),
        [("guid-1".to_string(), 10), ("guid-3".to_string(), 30)]
    );
    assert_eq!(m.recent_guids(11, 10), [("guid-3".to_string(), 30)]);
    assert_eq!(m.recent_guids(0, 1), [("guid-3".to_string(), 30)]);
    assert!(m.recent_guids(31, 10).is_empty());
    // The byte count includes the kept guids, as recovered and as counted when stored.
    let guid_bytes = 2 * super::record::guid_field("guid-1").len() as u64;
    let wire: u64 = (1..=3)
        .map(|s| m.lookup_encoded(s).unwrap().len() as u64)
        .sum();
    assert_eq!(m.state(), (3, wire + guid_bytes));
}

#[test]
fn re_sending_clients_are_recovered_with_their_flag() {
    let d = TempDir::new("resend-flag");
    let (mut st, _) = default_open(&d.0);
    let mut c = client("re");
    c.resends_publishes = true;
    st.add_client(&c).unwrap();
    st.add_client(&client("plain")).unwrap();
    block_on(st.flush()).unwrap();
    block_on(st.close()).unwrap();
    drop(st);
    let (_st, r) = default_open(&d.0);
    let mut clients = r.unwrap().clients;
    clients.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(clients, vec![client("plain"), c]);
}

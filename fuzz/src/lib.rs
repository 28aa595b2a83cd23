//! Fuzz harnesses for ferrocache: one function per target, each taking the raw input and
//! panicking when an invariant breaks.
//!
//! The cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly + libFuzzer) call these, and
//! so does a stable `cargo test`: `crates/ferrocache-protocol/tests/fuzz_replay.rs`
//! includes this file as a module and replays the seeds and the crash regressions through
//! the same functions, so CI needs no nightly toolchain.
//!
//! - [`session`]: bytes into a protocol `Session` over a real `Store` with small limits,
//!   whole and in pseudo-random pieces (the same replies, where nothing time- or
//!   read-size-dependent is in them); replies bounded by the input; the store consistent
//!   afterwards, also after a month passes and the background work runs; a `set` then
//!   `get` on a new connection returns the value.
//! - [`snapshot`]: bytes as a snapshot file, as they are and with every checksum
//!   recomputed (so mutations get past the CRCs into the record parser); a file that scans
//!   loads, and saving the loaded store and loading that gives the same items.
//! - [`aof`]: bytes as one journal record body and as an append-only log, raw and with
//!   recomputed CRCs; the valid prefix replays through `aof::open` from a real file, the
//!   torn tail is cut off, and a write after the replay lands in the log after it.
//! - [`replication`]: bytes as a replication stream (`replication::decode`, then an
//!   `Applier` into a replica's store), raw and with recomputed CRCs: every decoded frame
//!   encodes back to the same bytes; fed whole or split the replica ends the same, its
//!   offset is the stream bytes applied, and a full sync out of it rebuilds it exactly.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrocache_core::journal::{self, Record};
use ferrocache_core::replication::{self as repl, stream, Applier, DecodeError, FullSync, ReplLog};
use ferrocache_core::snapshot::{self, format};
use ferrocache_core::{aof, Clock, Config, GetOptions, StoreMode, StoreRequest};
use ferrocache_protocol::{Control, ServerInfo, Session, Users};

pub use ferrocache_core::Store;

/// Where the stores' manual clock starts (runs must be deterministic).
pub const START: u32 = 1_700_000_000;
/// Three 1 MiB pages: short inputs already fill classes, evict and get refused.
pub const MEMORY_LIMIT: usize = 3 << 20;
/// Largest item of the fuzzed stores.
pub const ITEM_SIZE_MAX: usize = 64 << 10;
/// Per input byte, a reply may carry at most this much (a 2-byte key in a `get` line can
/// return a whole item); anything beyond is a runaway loop or a duplicated reply.
pub const REPLY_PER_INPUT_BYTE: usize = ITEM_SIZE_MAX + 1024;

/// A small store on a manual clock: two shards with tiny hash tables (so they grow),
/// no background thread ([`Store::maintain`] is called by hand).
pub fn new_store(clock: &Clock) -> Arc<Store> {
    new_store_evicting(clock, true)
}

/// [`new_store`], with eviction or without it (memcached's `-M`: a full store refuses).
pub fn new_store_evicting(clock: &Clock, evict: bool) -> Arc<Store> {
    let config = Config::default()
        .evict(evict)
        .memory_limit(MEMORY_LIMIT)
        .item_size_max(ITEM_SIZE_MAX)
        .shards(2)
        .hash_power(4)
        .background(false)
        .clock(clock.clone());
    Arc::new(Store::new(config).expect("fuzz store config"))
}

// ---------------------------------------------------------------------------------------
// Protocol sessions

/// Piece sizes for feeding an input in parts: xorshift64 seeded by a hash of the input,
/// so a given input is always split the same way.
struct Splitter(u64);

impl Splitter {
    fn new(data: &[u8]) -> Splitter {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Splitter(h | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Mostly tiny pieces (cuts inside tokens, headers and CRLFs), sometimes larger ones.
    fn piece(&mut self) -> usize {
        let r = self.next();
        1 + match r % 4 {
            0 => 0,
            1 => (r >> 8) as usize % 8,
            2 => (r >> 8) as usize % 64,
            _ => (r >> 8) as usize % 1024,
        }
    }

    fn split(mut self, data: &[u8]) -> Vec<&[u8]> {
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let end = (at + self.piece()).min(data.len());
            pieces.push(&data[at..end]);
            at = end;
        }
        pieces
    }
}

/// What one connection got back.
pub struct Replies {
    pub out: Vec<u8>,
    /// The session asked to close (quit, shutdown, junk it hangs up on).
    pub closed: bool,
}

/// How the fuzzed server is configured; picked by a hash of the input, so mutations move
/// an input between modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    /// Logins required (`-Y`/`-S`): user `fuzz`, password `pass`.
    Auth,
    /// A read-only replica: writes are refused.
    ReadOnly,
}

impl Mode {
    pub fn of(data: &[u8]) -> Mode {
        // not the low bit: the splitter seed is odd
        match (Splitter::new(data).0 >> 8) % 8 {
            6 => Mode::Auth,
            7 => Mode::ReadOnly,
            _ => Mode::Open,
        }
    }
}

/// How one session input is run besides its [`Mode`]: picked by other bits of the same
/// hash, so the modes of the committed seeds stay as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub mode: Mode,
    /// The stores evict (`false`: memcached's `-M`, a full class refuses the store).
    pub evict: bool,
    /// The input is also sent as UDP datagrams (memcached's `-U`), see [`feed_udp`].
    pub udp: bool,
}

impl Variant {
    pub fn of(data: &[u8]) -> Variant {
        let h = Splitter::new(data).0;
        Variant {
            mode: Mode::of(data),
            evict: !(h >> 16).is_multiple_of(4),
            udp: (h >> 20).is_multiple_of(2),
        }
    }
}

/// The text login of [`Mode::Auth`].
pub const LOGIN: &[u8] = b"set auth 0 0 9\r\nfuzz pass\r\n";

fn server_info(mode: Mode) -> Arc<ServerInfo> {
    let info = ServerInfo::new("1.6.18");
    // reach the admin paths too: `snapshot` stops the session, `shutdown` closes it
    info.snapshot_enabled.store(true, Ordering::Relaxed);
    info.shutdown_enabled.store(true, Ordering::Relaxed);
    match mode {
        Mode::Open => {}
        Mode::Auth => info.set_users(Some(Users::parse(b"fuzz:pass\n").unwrap())),
        Mode::ReadOnly => info.read_only.store(true, Ordering::Relaxed),
    }
    Arc::new(info)
}

/// Feeds `pieces` to a new session over `store`, as a server would: after a `snapshot`
/// stop it feeds again with no new bytes (the server writes the snapshot in between).
pub fn feed(store: &Arc<Store>, pieces: &[&[u8]]) -> Replies {
    feed_as(store, Mode::Open, pieces)
}

/// [`feed`] on a server in `mode`.
pub fn feed_as(store: &Arc<Store>, mode: Mode, pieces: &[&[u8]]) -> Replies {
    let mut s = Session::new(store.clone(), server_info(mode));
    let mut out = Vec::new();
    let mut fed = 0usize;
    for piece in pieces {
        fed += piece.len();
        let mut ctl = s.feed(piece, &mut out);
        let mut stops = 0usize;
        // a snapshot (or replication command) stop, or a feed that reached the reply budget
        // with requests left: the server writes the replies and feeds again, empty
        while ctl == Control::Snapshot || (ctl == Control::Continue && s.held_back()) {
            stops += 1;
            // each stop ends a request or produces a budget of replies (4 MiB, while a
            // request names at most an item per 2 bytes): fewer than the bytes fed
            assert!(stops <= fed, "{stops} stops for {fed} bytes");
            ctl = s.feed(&[], &mut out);
        }
        // a session holds at most the unfinished request, never more than it was given
        assert!(
            s.buffered() <= fed,
            "session buffers {} bytes after {fed} fed",
            s.buffered()
        );
        if ctl != Control::Continue {
            assert_eq!(s.buffered(), 0, "a closed session keeps no input");
            // after a close further input is ignored
            let before = out.len();
            assert_eq!(s.feed(b"version\r\n", &mut out), Control::Close);
            assert_eq!(out.len(), before, "a closed session replied");
            return Replies { out, closed: true };
        }
    }
    Replies { out, closed: false }
}

/// Whether the replies of a whole and of a split feed must be equal: not for `stats`
/// (byte counters see the reads), not when either run closed (memcached drops the unsent
/// replies of the read it hangs up in, and reads differ), not when a get names a key over
/// 250 bytes (memcached culls the replies it has not written out, which depends on where
/// its reads and its every-21-requests write-outs fall).
fn same_replies_expected(data: &[u8], a: &Replies, b: &Replies) -> bool {
    if a.closed || b.closed {
        return false;
    }
    if data.first() != Some(&0x80) && get_with_long_key(data) {
        return false;
    }
    if data.first() == Some(&0x80) {
        // binary stat opcode anywhere in the stream
        !data.contains(&0x10)
    } else {
        !data.windows(4).any(|w| w == b"stat")
    }
}

/// Whether a text line starting with a get-family command has a token over 250 bytes.
fn get_with_long_key(data: &[u8]) -> bool {
    data.split(|&b| b == b'\n').any(|line| {
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        matches!(
            words.next(),
            Some(b"get" | b"gets" | b"gat" | b"gats" | b"bget")
        ) && words.any(|w| w.len() > 250)
    })
}

/// Fuzz target `session_text`: what a client sends on a text connection (classic and meta
/// commands); an input starting with 0x80 (which would make it binary) is skipped.
pub fn session_text(data: &[u8]) {
    if data.first() != Some(&0x80) {
        session(data);
    }
}

/// Fuzz target `session_binary`: a binary connection, `data` after its first byte 0x80.
pub fn session_binary(data: &[u8]) {
    let mut input = Vec::with_capacity(data.len() + 1);
    input.push(0x80);
    input.extend_from_slice(data);
    session(&input);
}

/// What a client sends on one connection (text and meta unless it starts with 0x80, then
/// binary), fed whole and split; see the module notes for what is checked.
pub fn session(data: &[u8]) {
    let Variant { mode, evict, udp } = Variant::of(data);
    let clock_a = Clock::manual(START);
    let store_a = new_store_evicting(&clock_a, evict);
    let whole = feed_as(&store_a, mode, &[data]);

    let clock_b = Clock::manual(START);
    let store_b = new_store_evicting(&clock_b, evict);
    let split = feed_as(&store_b, mode, &Splitter::new(data).split(data));

    let bound = (data.len() + 1) * REPLY_PER_INPUT_BYTE;
    for r in [&whole, &split] {
        assert!(
            r.out.len() <= bound,
            "{} reply bytes for {} input bytes",
            r.out.len(),
            data.len()
        );
    }
    if same_replies_expected(data, &whole, &split) {
        assert!(
            whole.out == split.out,
            "replies differ when the input is split:\nwhole: {}\nsplit: {}",
            show(&whole.out),
            show(&split.out)
        );
    }
    check_store(&store_a);
    if mode == Mode::ReadOnly {
        // a read-only replica's session writes nothing, mg N included (docs/replication.md)
        let items = store_a.stats().curr_items;
        assert!(items == 0, "a read-only session left {items} items");
    }
    // a flush_all <delay> still pending hides what is stored in the second before its
    // deadline, as memcached's (`flush_all 1`: at once): the probe goes after it
    if let Some(at) = store_a.pending_flush_deadline() {
        clock_a.advance(at.saturating_sub(clock_a.now()) + 1);
    }
    probe(&store_a, mode, data);

    // a month later, after the crawler and the page mover ran
    clock_b.advance(31 * 86_400);
    store_b.maintain();
    store_b.maintain();
    check_store(&store_b);
    probe(&store_b, mode, data);

    if udp {
        // the whole input as one datagram, then its pieces as datagrams of their own
        let clock_c = Clock::manual(START);
        let store_c = new_store_evicting(&clock_c, evict);
        let mut datagrams = vec![data];
        datagrams.extend(Splitter::new(data).split(data));
        let sent = feed_udp(&store_c, mode, &datagrams);
        assert!(
            sent <= (2 * data.len() + datagrams.len()) * REPLY_PER_INPUT_BYTE,
            "{sent} UDP reply bytes for {} input bytes",
            data.len()
        );
        check_store(&store_c);
        if mode == Mode::ReadOnly {
            let items = store_c.stats().curr_items;
            assert!(items == 0, "a read-only UDP session left {items} items");
        }
    }
}

/// Sends each of `datagrams` to a UDP listener's session over `store`, as
/// `src/server/udp.ts` does after the 8-byte frame header: one session per protocol (the
/// first payload byte picks it), each datagram one read, fed again with no new bytes
/// while the session holds requests back or stopped for a snapshot; a session that
/// closes is replaced. Every reply byte must fall in one of the messages the session
/// marks ([`Session::messages`]: the listener sends nothing else), the marks ascending.
/// Returns the reply bytes.
pub fn feed_udp(store: &Arc<Store>, mode: Mode, datagrams: &[&[u8]]) -> usize {
    let info = server_info(mode);
    let new_session = || {
        let mut s = Session::new(store.clone(), info.clone());
        s.frame_messages();
        s
    };
    let mut sessions = [None, None];
    let mut sent = 0usize;
    for &datagram in datagrams {
        if datagram.is_empty() {
            continue; // the listener drops a bare header
        }
        let kind = usize::from(datagram[0] == 0x80);
        let s = sessions[kind].get_or_insert_with(new_session);
        let mut input = datagram;
        let mut feeds = 0usize;
        loop {
            // each feed is one call of the addon: a read of its own, `out` drained
            let mut out = Vec::new();
            s.start_read();
            s.clear_messages();
            let ctl = s.feed(input, &mut out);
            let mut start = 0;
            for &end in s.messages() {
                assert!(
                    start <= end && end <= out.len(),
                    "UDP message ends {:?} in {} reply bytes",
                    s.messages(),
                    out.len()
                );
                start = end;
            }
            assert!(
                start == out.len(),
                "UDP reply bytes {start}..{} in no message (ends {:?}): {}",
                out.len(),
                s.messages(),
                show(&out)
            );
            sent += out.len();
            input = &[];
            if ctl == Control::Close || ctl == Control::Shutdown {
                sessions[kind] = None;
                break;
            }
            if ctl != Control::Snapshot && !s.held_back() {
                break;
            }
            feeds += 1;
            assert!(
                feeds <= datagram.len(),
                "{feeds} feeds for a datagram of {} bytes",
                datagram.len()
            );
        }
    }
    sent
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(2000)]).into_owned();
    s.replace('\r', "\\r").replace('\n', "\\n")
}

/// A `set` acknowledged with STORED on a new connection is returned by the next `get`
/// (after a login in [`Mode::Auth`]; in [`Mode::ReadOnly`] the set is refused).
fn probe(store: &Arc<Store>, mode: Mode, data: &[u8]) {
    let value = &data[..data.len().min(300)];
    let mut req = if mode == Mode::Auth {
        LOGIN.to_vec()
    } else {
        Vec::new()
    };
    req.extend_from_slice(format!("set fuzz:probe 7 0 {}\r\n", value.len()).as_bytes());
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\nget fuzz:probe\r\n");
    let r = feed_as(store, mode, &[&req]);
    assert!(
        !r.closed,
        "the probe connection was closed: {}",
        show(&r.out)
    );
    let out = match mode {
        Mode::Auth => r
            .out
            .strip_prefix(b"STORED\r\n".as_slice())
            .expect("the login is accepted"),
        _ => &r.out[..],
    };
    if mode == Mode::ReadOnly {
        assert!(
            out == b"SERVER_ERROR replica is read-only\r\nEND\r\n",
            "read-only probe answered {}",
            show(out)
        );
    } else if let Some(rest) = out.strip_prefix(b"STORED\r\n".as_slice()) {
        let mut want = format!("VALUE fuzz:probe 7 {}\r\n", value.len()).into_bytes();
        want.extend_from_slice(value);
        want.extend_from_slice(b"\r\nEND\r\n");
        assert!(
            rest == want.as_slice(),
            "stored, then read back {}",
            show(rest)
        );
    } else {
        // every page held by other classes, none of their items evictable for this one
        assert!(
            out.starts_with(b"SERVER_ERROR out of memory"),
            "probe set answered {}",
            show(out)
        );
    }
}

/// One item as a store holds it: value, flags, CAS, absolute exptime.
pub type ItemState = (Vec<u8>, u32, u64, u32);

/// Every live item of `store`, by key.
pub fn items_of(store: &Store) -> BTreeMap<Vec<u8>, ItemState> {
    let mut items = BTreeMap::new();
    for shard in 0..store.shard_count() {
        store.visit_shard(shard, |it| {
            let old = items.insert(
                it.key.to_vec(),
                (it.value.to_vec(), it.flags, it.cas, it.exptime),
            );
            assert!(old.is_none(), "key {:?} visited twice", show(it.key));
        });
    }
    items
}

/// The meta state of every live item (stale, base64 key): a full sync and a snapshot file
/// carry it.
pub fn meta_state_of(store: &Store) -> BTreeMap<Vec<u8>, (bool, bool)> {
    let mut items = BTreeMap::new();
    for shard in 0..store.shard_count() {
        store.visit_shard(shard, |it| {
            items.insert(it.key.to_vec(), (it.stale, it.key_binary));
        });
    }
    items
}

/// The store's structures agree with each other: keys unique and valid, every visited item
/// found by a lookup with the same value, counters within the limits.
pub fn check_store(store: &Store) {
    let items = items_of(store);
    let stats = store.stats();
    assert!(
        items.len() as u64 <= stats.curr_items,
        "{} live items visited, curr_items {}",
        items.len(),
        stats.curr_items
    );
    assert!(stats.total_malloced <= stats.limit_maxbytes);
    assert!(stats.bytes <= stats.limit_maxbytes);
    let peek = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    for (key, (value, flags, cas, _)) in &items {
        assert!(!key.is_empty() && key.len() <= ferrocache_core::MAX_KEY_LEN);
        assert!(value.len() <= ITEM_SIZE_MAX);
        let found = store.get(key, &peek, |it| (it.value.to_vec(), it.flags, it.cas));
        assert_eq!(
            found.as_ref(),
            Some(&(value.clone(), *flags, *cas)),
            "visited item {} not found as visited",
            show(key)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Checksums (CRC32C, Castagnoli), bit by bit: only used to repair fuzzed files

fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// CRC32C of `data`, as the file formats use it.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

// ---------------------------------------------------------------------------------------
// Scratch directories for the file-based loaders

static DIRS: AtomicU64 = AtomicU64::new(0);

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

thread_local! {
    static SCRATCH: Scratch = {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        Scratch(base.join(format!("ferrocache-fuzz-{}-{n}", std::process::id())))
    };
}

/// An empty directory of this thread, `name` inside its scratch directory.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = SCRATCH.with(|s| s.0.join(name));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

// ---------------------------------------------------------------------------------------
// Snapshot files

/// Recomputes the header, chunk and trailer checksums wherever the structure can be
/// followed, leaving every other byte as the fuzzer made it.
pub fn fix_snapshot_checksums(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    if v.len() < format::HEADER_LEN {
        return v;
    }
    let crc = crc32c(&v[..44]);
    put_u32(&mut v, 44, crc);
    let mut at = format::HEADER_LEN;
    while at + 4 <= v.len() {
        let tag = &v[at..at + 4];
        if tag == format::TRAILER_TAG && at + format::TRAILER_LEN <= v.len() {
            let crc = crc32c(&v[at..at + 28]);
            put_u32(&mut v, at + 28, crc);
            break;
        }
        if tag != format::CHUNK_TAG || at + format::CHUNK_HEADER_LEN > v.len() {
            break;
        }
        let end = at + format::CHUNK_HEADER_LEN + u32_at(&v, at + 8) as usize;
        if end > v.len() {
            break;
        }
        let crc = crc32c_append(
            crc32c(&v[at..at + 12]),
            &v[at + format::CHUNK_HEADER_LEN..end],
        );
        put_u32(&mut v, at + 12, crc);
        at = end;
    }
    v
}

/// Scans `data` as a snapshot and checks what the scan reports against what it passed on.
fn scan_snapshot(data: &[u8]) -> Option<format::Summary> {
    let mut records = 0u64;
    let mut bytes = 0u64;
    let r = format::scan(data, |rec| {
        assert!(!rec.key.is_empty());
        records += 1;
        bytes += (rec.key.len() + rec.value.len()) as u64;
    });
    match r {
        Ok(sum) => {
            assert_eq!(sum.items, records);
            assert_eq!(sum.header.items, records);
            assert_eq!(sum.data_bytes, bytes);
            assert_eq!(sum.file_bytes, data.len() as u64);
            Some(sum)
        }
        Err(format::ScanError::Corrupt { offset, .. }) => {
            assert!(offset <= data.len() as u64, "damage reported past the end");
            None
        }
        Err(format::ScanError::Unsupported { version }) => {
            assert_ne!(version, format::VERSION);
            None
        }
        Err(format::ScanError::Io(e)) => panic!("reading a slice failed: {e}"),
    }
}

/// Fuzz target: `data` is a snapshot file.
pub fn snapshot(data: &[u8]) {
    scan_snapshot(data);
    let fixed = fix_snapshot_checksums(data);
    let Some(sum) = scan_snapshot(&fixed) else {
        return;
    };
    // a file that scans must load, item for item
    let dir = scratch_dir("snapshot");
    fs::write(dir.join("snapshot-0000000001.fcs"), &fixed).expect("write the snapshot");
    let store = new_store(&Clock::manual(START));
    let report = snapshot::load(&store, &dir, true).expect("a file that scans loads");
    assert!(report.path.is_some());
    // every record counted, but a key's second record while its first is live: the load
    // keeps the live item (a writer writes no key twice; with the CRCs recomputed a fuzzed
    // file can)
    let mut live = std::collections::HashSet::new();
    let mut again = 0u64;
    format::scan(&fixed[..], |r| {
        let expired = r.exptime != 0 && store.of_clock(r.exptime) <= store.now();
        if !expired && !live.insert(r.key.to_vec()) {
            again += 1;
        }
    })
    .expect("it scanned a moment ago");
    let counted = report.items + report.expired + report.not_stored;
    if report.not_stored == 0 {
        assert_eq!(counted + again, sum.items);
    } else {
        // a record refused for room leaves its key free for a later one
        assert!(counted + again >= sum.items && counted <= sum.items);
    }
    assert!(store.cas_high_water() >= sum.header.cas_high_water);
    check_store(&store);

    // saved again and loaded into a new store: the same items
    let out = scratch_dir("snapshot-out");
    let saved = snapshot::save(&store, &out, 1, None).expect("save a loaded store");
    let again = new_store(&Clock::manual(START));
    let back = snapshot::load(&again, &out, true).expect("load a saved snapshot");
    assert_eq!(back.items, saved.items);
    assert_eq!(back.expired + back.not_stored, 0);
    assert!(
        items_of(&store) == items_of(&again),
        "items changed through save and load"
    );
    assert!(
        meta_state_of(&store) == meta_state_of(&again),
        "meta state changed through save and load"
    );
    check_store(&again);
}

// ---------------------------------------------------------------------------------------
// Append-only log

/// The header of `appendonly.aof` in the current format: a log of an older version is
/// sealed as a segment on open, not replayed in place (a copy of version 3 here failed
/// every input once the format became 4).
pub fn aof_header() -> Vec<u8> {
    aof::header().to_vec()
}

/// Recomputes each frame's CRC as long as the lengths can be followed.
pub fn fix_frame_checksums(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    let mut at = 0;
    while at + journal::FRAME_HEADER <= v.len() {
        let len = u32_at(&v, at) as usize;
        let body = at + journal::FRAME_HEADER;
        if len == 0 || len > v.len() - body {
            break;
        }
        let crc = crc32c(&v[body..body + len]);
        put_u32(&mut v, at + 4, crc);
        at = body + len;
    }
    v
}

fn check_record(r: &Record<'_>) {
    match *r {
        Record::Set { key, .. } => assert!(!key.is_empty() && key.len() <= 255),
        Record::Delete { key } => assert!(!key.is_empty() && key.len() <= 250),
        Record::Flush { .. } | Record::FlushCancel => {}
    }
}

/// Scans `data` as log records; the valid prefix scans again to the same records, clean.
fn scan_log(data: &[u8]) -> journal::ScanEnd {
    let mut n = 0u64;
    let end = journal::scan(data, |r| {
        check_record(r);
        n += 1;
    })
    .expect("reading a slice cannot fail");
    assert_eq!(end.records, n);
    assert!(end.valid_len <= data.len() as u64);
    assert_eq!(end.torn.is_none(), end.valid_len == data.len() as u64);
    let again = journal::scan(&data[..end.valid_len as usize], |_| ()).unwrap();
    assert_eq!((again.records, again.valid_len), (n, end.valid_len));
    assert!(again.torn.is_none());
    end
}

/// Whether `tail`, the bytes a replay cuts off a log, is a crash's torn tail (cut off
/// without a copy): a frame header cut short, or a plausible length running past the end
/// with no whole record (decodable, its CRC right) starting anywhere after its first byte.
fn crash_tail(tail: &[u8]) -> bool {
    let h = journal::FRAME_HEADER;
    if tail.len() < h {
        return true;
    }
    let body = u32_at(tail, 0);
    if body == 0 || body > journal::MAX_BODY || h as u64 + u64::from(body) <= tail.len() as u64 {
        return false;
    }
    !(1..tail.len()).any(|at| {
        let Some(n) = tail.get(at..at + 4).map(|b| u32_at(b, 0) as usize) else {
            return false;
        };
        let start = at + h;
        match tail.get(start..start.saturating_add(n)) {
            Some(b) if n > 0 => {
                journal::decode_body(b).is_some() && crc32c(b) == u32_at(tail, at + 4)
            }
            _ => false,
        }
    })
}

/// Fuzz target: `data` is the record part of an append-only log (after its header).
pub fn aof(data: &[u8]) {
    // one body on its own: a record decodes, encodes and scans back to itself
    if let Some(rec) = journal::decode_body(data) {
        check_record(&rec);
        let mut framed = Vec::new();
        journal::encode(&rec, &mut framed);
        let mut back = Vec::new();
        let end = journal::scan(&framed[..], |r| back.push(format!("{r:?}"))).unwrap();
        assert_eq!(back, [format!("{rec:?}")]);
        assert!(end.torn.is_none());
    }
    scan_log(data);
    let fixed = fix_frame_checksums(data);
    let end = scan_log(&fixed);

    // replayed from a real file, as a restart does
    let dir = scratch_dir("aof");
    let path = dir.join(aof::FILE);
    let mut file = aof_header();
    file.extend_from_slice(&fixed);
    fs::write(&path, &file).expect("write the log");
    let clock = Clock::manual(START);
    let store = new_store(&clock);
    let (log, report) = aof::open(&store, &dir, aof::Fsync::Always).expect("open a fuzzed log");
    assert_eq!(report.records, end.records);
    assert_eq!(report.truncated.len(), usize::from(end.torn.is_some()));
    let len = aof_header().len() as u64 + end.valid_len;
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        len,
        "torn tail not cut off"
    );
    // the bytes cut off are kept aside unless they are one record cut short by a crash
    // (its length runs past the end and no whole record follows: 29c4809)
    let aside = dir.join(format!("{}.corrupt", aof::FILE));
    let cut = &fixed[end.valid_len as usize..];
    let copy_expected = end.torn.is_some() && !crash_tail(cut);
    assert_eq!(
        aside.exists(),
        copy_expected,
        "damaged tail of {} bytes kept aside: {}, expected {copy_expected}",
        cut.len(),
        aside.exists()
    );
    if copy_expected {
        assert!(
            fs::read(&aside).unwrap() == cut,
            "the copy is not the bytes cut off"
        );
    }
    check_store(&store);

    // the next write is logged right after the replayed records; after the deadline of a
    // delayed flush the log left pending (what is stored in the second before it is hidden
    // at once, as in memcached, and logged as a delete)
    let pending = store.pending_flush_deadline();
    if let Some(at) = pending {
        clock.advance(at.saturating_sub(clock.now()) + 1);
    }
    let stored = store.store(&StoreRequest::new(StoreMode::Set, b"fuzz:probe", b"after"));
    if stored.is_ok() {
        let bytes = fs::read(&path).unwrap();
        let mut last = None;
        let after = journal::scan(&bytes[aof_header().len()..], |r| {
            last = match *r {
                Record::Set { key, value, .. } => Some((key.to_vec(), value.to_vec())),
                _ => None,
            }
        })
        .unwrap();
        // a delayed flush whose deadline passed after the last record is marked before it
        // (or the one just passed)
        let mark = u64::from(report.deadline_passed.is_some() || pending.is_some());
        assert_eq!(after.records, end.records + 1 + mark);
        assert!(after.torn.is_none());
        assert_eq!(last, Some((b"fuzz:probe".to_vec(), b"after".to_vec())));
    }
    drop(log);
}

// ---------------------------------------------------------------------------------------
// Replication stream

/// Walks `data` frame by frame: each decoded frame encodes to exactly its bytes, and every
/// strict prefix of it is "read more".
fn walk_frames(data: &[u8]) {
    let mut at = 0;
    while let Ok(Some((frame, n))) = repl::decode(&data[at..]) {
        assert!(n > journal::FRAME_HEADER && n <= data.len() - at);
        let mut again = Vec::new();
        stream::encode(&frame, &mut again);
        assert!(again == data[at..at + n], "{frame:?} encodes differently");
        assert_eq!(repl::decode(&data[at..at + n - 1]), Ok(None));
        at += n;
    }
}

/// How a replica ended after a stream.
#[derive(Debug, PartialEq, Eq)]
struct ReplicaEnd {
    records: u64,
    stream_bytes: u64,
    sync_done: bool,
    heartbeat: Option<(u64, u64)>,
    error: Option<DecodeError>,
    pending: usize,
    offset: u64,
}

/// A replica after a full sync: `pieces` are its socket reads.
fn replica(pieces: &[&[u8]]) -> (Arc<Store>, ReplicaEnd) {
    replica_on(&Clock::manual(START), pieces, 0)
}

/// [`replica`] on `clock`, which moves `lag` seconds on before each read (a replica
/// applying the stream late: a delayed flush and its cancel past the deadline, 48b6a6d).
fn replica_on(clock: &Clock, pieces: &[&[u8]], lag: u32) -> (Arc<Store>, ReplicaEnd) {
    let store = new_store(clock);
    let log = ReplLog::new(1 << 20);
    log.demote();
    log.follow(&"f".repeat(40), 0, true);
    let mut applier = Applier::new();
    applier.begin(&store, true);
    let mut end = ReplicaEnd {
        records: 0,
        stream_bytes: 0,
        sync_done: false,
        heartbeat: None,
        error: None,
        pending: 0,
        offset: 0,
    };
    for piece in pieces {
        clock.advance(lag);
        match applier.feed(&store, &log, piece) {
            Ok(a) => {
                end.records += a.records;
                end.stream_bytes += a.stream_bytes;
                end.sync_done |= a.sync_done;
                end.heartbeat = a.heartbeat.or(end.heartbeat);
            }
            Err(e) => {
                end.error = Some(e);
                break;
            }
        }
    }
    end.pending = applier.pending();
    end.offset = log.offset();
    // the offset is the stream bytes applied (a failed feed reports none of its own)
    if end.error.is_none() {
        assert_eq!(end.offset, end.stream_bytes);
    } else {
        assert!(end.offset >= end.stream_bytes);
    }
    (store, end)
}

/// Fuzz target: `data` is what a replica reads from its primary after a full-sync reply.
pub fn replication(data: &[u8]) {
    walk_frames(data);
    let fixed = fix_frame_checksums(data);
    walk_frames(&fixed);
    let (whole, whole_end) = replica(&[&fixed]);
    let (split, split_end) = replica(&Splitter::new(&fixed).split(&fixed));
    // the same records applied (a feed that fails reports no counts, so after a decode
    // error only the error and the offset compare)
    if whole_end.error.is_none() {
        assert_eq!(whole_end, split_end);
    } else {
        assert_eq!(
            (&whole_end.error, whole_end.offset),
            (&split_end.error, split_end.offset)
        );
    }
    let items = items_of(&whole);
    assert!(items == items_of(&split), "split reads changed the replica");
    check_store(&whole);

    // a replica reading it a second apart per read: applied late, the same records
    let lagging = Clock::manual(START);
    let (late, late_end) = replica_on(&lagging, &Splitter::new(&fixed).split(&fixed), 1);
    assert_eq!(
        (&late_end.error, late_end.offset),
        (&split_end.error, split_end.offset)
    );
    lagging.advance(1);
    late.maintain();
    check_store(&late);

    // a replica of this replica gets the same items through a full sync
    let mut sync = FullSync::new();
    let mut frames = Vec::new();
    let mut rounds = 0;
    while !sync.next(&whole, 64 << 10, &mut frames) {
        rounds += 1;
        assert!(rounds < 10_000, "full sync does not end");
    }
    assert_eq!(sync.items(), items.len() as u64);
    let (second, end) = replica(&[&frames]);
    assert_eq!(end.error, None);
    assert!(end.sync_done && end.pending == 0);
    assert!(items_of(&second) == items, "a full sync changed the items");
    assert!(
        meta_state_of(&second) == meta_state_of(&whole),
        "a full sync changed the items' meta state"
    );
}

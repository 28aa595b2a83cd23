//! memcached's log stream (`watch`): a connection that sends `watch [filters]` stops
//! running commands and receives one text line per event of the kinds it asked for
//! (`ts=… gid=… type=item_get key=… status=… clsid=… cfd=… size=…`), as memcached 1.6.18
//! words them (see `docs/protocol.md`, "watch").
//!
//! [`Logger`] lives in the shared `ServerInfo`. The codecs ask [`Logger::wants`] before
//! building an event (one relaxed atomic load: nothing else happens while no watcher
//! asked for that kind), then the event's line is appended to the buffer of every watcher
//! whose filter matches. A buffer holds at most [`WATCHER_BUF`] bytes: a watcher that does
//! not keep up loses lines (counted in `log_watcher_skipped`) and, before its next line,
//! gets `skipped=N`, as memcached's logger does. The server takes each watcher's bytes
//! after the batch of requests that produced them ([`Logger::take`]) and writes them to
//! the watcher's socket, taking no more while that socket is not draining.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use ferrocache_core::eviction::{Eviction, EvictionSink};
use ferrocache_core::sysevent::{SysEvent, SysEventSink, LRU_NAMES};

use crate::storage::{GetOptions, ItemView, Storage, StoreMode, StoreStatus};

/// `watch fetchers` (and `watch` with no filter): every item lookup (`item_get`).
pub const FETCHERS: u32 = 1;
/// `watch mutations`: every storage command's outcome (`item_store`).
pub const MUTATIONS: u32 = 1 << 1;
/// `watch connevents`: connections opened and closed (`conn_new`, `conn_close`).
pub const CONNEVENTS: u32 = 1 << 2;
/// `watch evictions`: every item the LRU evicts (`eviction`), through the engine's
/// eviction hook ([`crate::storage::Storage::log_evictions`]).
pub const EVICTIONS: u32 = 1 << 4;
/// `watch sysevents`: the engine's background work, through its system-event hook
/// ([`crate::storage::Storage::log_sysevents`]): a round of the expiry walk per class and
/// LRU (`lru_crawler`), an automove page move (`slab_move`).
pub const SYSEVENTS: u32 = 1 << 5;
/// Filters memcached 1.6.18 accepts that log nothing in it either (`rawcmds`, and the
/// proxy's three in a build without the proxy): accepted, never matched by an event.
const SILENT: u32 = 1 << 3;

/// memcached's `WATCHER_LIMIT`: watchers at once; one more gets `WATCHER_TOO_MANY`.
pub const WATCHER_LIMIT: usize = 20;
/// Bytes a watcher's buffer holds (memcached's default `watcher_logbuf_size`, 256 KiB).
pub const WATCHER_BUF: usize = 256 * 1024;
/// memcached keeps this much room past a line for the `skipped=N` that may precede it.
const SKIP_ROOM: usize = 128;

/// The filter bits for the words after `watch`, memcached's way: no word means fetchers;
/// an unknown word (`deletions`, a later memcached's, among them) refuses the whole
/// command. `None` = answer `ERROR`.
pub fn parse_filters<'a>(words: impl IntoIterator<Item = &'a [u8]>) -> Option<u32> {
    let mut flags = 0;
    let mut any = false;
    for w in words {
        any = true;
        flags |= match w {
            b"fetchers" => FETCHERS,
            b"mutations" => MUTATIONS,
            b"connevents" => CONNEVENTS,
            b"evictions" => EVICTIONS,
            b"sysevents" => SYSEVENTS,
            b"rawcmds" | b"proxyreqs" | b"proxyevents" | b"proxyuser" => SILENT,
            _ => return None,
        };
    }
    Some(if any { flags } else { FETCHERS })
}

/// How a lookup ended, in memcached's words (`status=` of `item_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A live item: its slab class and value length.
    Found {
        clsid: u32,
        size: usize,
    },
    NotFound,
    /// An item a flush_all hid, met by this lookup (which unlinks it).
    Flushed,
}

/// One item lookup as the log shows it: `clsid` and `size` of a live item.
pub(crate) fn found<S: Storage>(store: &S, it: &ItemView<'_>) -> Lookup {
    Lookup::Found {
        clsid: store.slab_class(store.item_size(it.key.len(), it.value.len(), it.flags)),
        size: it.value.len(),
    }
}

/// Looks `key` up without touching it (no LRU bump, no stats): what memcached's own
/// lookup saw for the commands whose engine call does not show the item.
pub(crate) fn peek<S: Storage>(store: &S, key: &[u8]) -> Option<(Lookup, u32, u32)> {
    let opts = GetOptions {
        no_bump: true,
        ..Default::default()
    };
    store.get(key, &opts, |it| (found(store, it), it.flags, it.exptime))
}

/// Logs the lookup of `key` by a command that does not read the item itself (delete,
/// touch, incr/decr, and the lookup every storage command makes first).
pub(crate) fn log_lookup<S: Storage>(store: &S, logger: &Logger, key: &[u8], cfd: i32) {
    if logger.wants(FETCHERS) {
        let seen = match store.flushed(key) {
            true => Lookup::Flushed,
            false => peek(store, key).map_or(Lookup::NotFound, |p| p.0),
        };
        logger.item_get(key, seen, cfd);
    }
}

/// What a read that finds nothing logs: `Flushed` when, before the read, `key`'s item was
/// one a flush_all hid (`watching`: fetchers are logged, else nothing is looked at).
pub(crate) fn miss<S: Storage>(store: &S, key: &[u8], watching: bool) -> Lookup {
    match watching && store.flushed(key) {
        true => Lookup::Flushed,
        false => Lookup::NotFound,
    }
}

/// Logs an item incr/decr (binary, meta `N`) created on a miss: memcached stores it as
/// an `add`, whose own lookup misses first.
pub(crate) fn log_created<S: Storage>(store: &S, logger: &Logger, key: &[u8], cfd: i32) {
    if logger.wants(FETCHERS) {
        logger.item_get(key, Lookup::NotFound, cfd);
    }
    let (mode, status) = (StoreMode::Add, StoreStatus::Stored);
    log_store(store, logger, key, mode, false, status, (0, 0, 0), cfd);
}

/// Logs a storage command's outcome (`item_store`): the stored item's class, size and
/// ttl as the engine now holds it, else those of the request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_store<S: Storage>(
    store: &S,
    logger: &Logger,
    key: &[u8],
    mode: StoreMode,
    cas: bool,
    status: StoreStatus,
    request: (usize, u32, i64),
    cfd: i32,
) {
    if !logger.wants(MUTATIONS) {
        return;
    }
    let now = store.now();
    let held = if status == StoreStatus::Stored {
        peek(store, key)
    } else {
        None
    };
    let (clsid, size, ttl) = match held {
        Some((Lookup::Found { clsid, size }, _, exptime)) => {
            let ttl = if exptime == 0 {
                0
            } else {
                exptime.wrapping_sub(now)
            };
            (clsid, size, ttl)
        }
        _ => {
            let (len, flags, exptime) = request;
            let clsid = store.slab_class(store.item_size(key.len(), len, flags));
            (clsid, len, request_ttl(exptime, now, logger.started()))
        }
    };
    let cmd = cmd_word(mode, cas);
    let status = match status {
        StoreStatus::Stored => "stored",
        StoreStatus::NotStored => "not_stored",
        StoreStatus::Exists => "exists",
        StoreStatus::NotFound => "not_found",
    };
    logger.item_store(key, status, cmd, ttl, clsid, cfd, size);
}

/// memcached's `cmd=` of `item_store`.
fn cmd_word(mode: StoreMode, cas: bool) -> &'static str {
    if cas {
        return "cas";
    }
    match mode {
        StoreMode::Set => "set",
        StoreMode::Add => "add",
        StoreMode::Replace => "replace",
        StoreMode::Append => "append",
        StoreMode::Prepend => "prepend",
    }
}

/// Logs a storage command refused because the item would exceed the item size limit, as
/// memcached 1.6.18 does before it swallows the value: `status=too_large` with `ttl=0`
/// and `size=0`. memcached's `clsid=` and `cfd=` there are values its logger never set
/// (measured `clsid=24 cfd=0`, `clsid=72 cfd=0`, `clsid=26 cfd=459377312`); ferrocached
/// writes `clsid=0` and the connection's descriptor.
pub(crate) fn log_too_large(logger: &Logger, key: &[u8], mode: StoreMode, cas: bool, cfd: i32) {
    if logger.wants(MUTATIONS) {
        logger.item_store(key, "too_large", cmd_word(mode, cas), 0, 0, cfd, 0);
    }
}

/// memcached's `ttl=` for a request's exptime (`realtime(exptime) - current_time`, as an
/// unsigned 32-bit number): 0 = none; up to 30 days relative; above, a unix time; a
/// negative one (already expired) is memcached's relative time 1. Its clock starts 62 s
/// before the process (`process_started`).
fn request_ttl(exptime: i64, now: u32, started: u32) -> u32 {
    const MAX_DELTA: i64 = 60 * 60 * 24 * 30;
    let process_started = started as i64 - 62;
    let current = now as i64 - process_started;
    let rel = if exptime == 0 {
        return 0;
    } else if exptime < 0 {
        1
    } else if exptime > MAX_DELTA {
        if exptime <= process_started {
            1
        } else {
            exptime - process_started
        }
    } else {
        exptime + current
    };
    (rel - current) as u32
}

/// Why a connection closed (`reason=` of `conn_close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Error,
    Normal,
    IdleTimeout,
    Shutdown,
}

impl CloseReason {
    /// From the number the server passes: 0 normal, 1 error, 2 idle timeout, 3 shutdown.
    pub fn from_code(code: u32) -> CloseReason {
        match code {
            1 => CloseReason::Error,
            2 => CloseReason::IdleTimeout,
            3 => CloseReason::Shutdown,
            _ => CloseReason::Normal,
        }
    }

    fn word(self) -> &'static str {
        match self {
            CloseReason::Error => "error",
            CloseReason::Normal => "normal",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

struct Watcher {
    id: u64,
    flags: u32,
    /// Events before this gid (older than the `watch` command) are not shown.
    min_gid: u64,
    buf: Vec<u8>,
    /// Lines lost since the last one delivered.
    skipped: u64,
}

#[derive(Default)]
struct Watchers {
    list: Vec<Watcher>,
    next_id: u64,
}

/// The server-wide log: the watchers, their buffers and memcached's `log_*` counters.
pub struct Logger {
    /// Union of the watchers' filters: what the codecs log at all.
    flags: AtomicU32,
    gid: AtomicU64,
    /// Some watcher has bytes waiting for [`Logger::take`].
    pending: AtomicBool,
    /// The server's start (unix seconds), for memcached's relative clock in `ttl=`.
    started: AtomicU32,
    watchers: Mutex<Watchers>,
    written: AtomicU64,
    sent: AtomicU64,
    skipped: AtomicU64,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("flags", &self.flags.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// memcached's `log_*` lines of `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoggerStats {
    /// Events lost before reaching the logger (memcached's per-thread buffers; we have
    /// none, so always 0).
    pub worker_dropped: u64,
    /// Events logged.
    pub worker_written: u64,
    /// Lines a watcher lost because its buffer was full.
    pub watcher_skipped: u64,
    /// Lines put in watchers' buffers.
    pub watcher_sent: u64,
    /// Watchers now.
    pub watchers: u64,
}

impl Logger {
    /// A logger with no watchers; `started` is the server's start (unix seconds).
    pub fn new(started: u32) -> Logger {
        Logger {
            flags: AtomicU32::new(0),
            gid: AtomicU64::new(0),
            pending: AtomicBool::new(false),
            started: AtomicU32::new(started),
            watchers: Mutex::new(Watchers::default()),
            written: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    fn started(&self) -> u32 {
        self.started.load(Ordering::Relaxed)
    }

    /// Whether some watcher wants events of kind `flag`: the codecs' only cost while
    /// nobody watches.
    #[inline]
    pub fn wants(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
    }

    /// Whether some watcher has bytes for [`Logger::take`].
    #[inline]
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Adds a watcher with these filters; its buffer starts with `OK\r\n`. `None` when
    /// [`WATCHER_LIMIT`] watchers exist.
    pub fn add_watcher(&self, flags: u32) -> Option<u64> {
        let mut w = self.watchers.lock().unwrap();
        if w.list.len() >= WATCHER_LIMIT {
            return None;
        }
        w.next_id += 1;
        let id = w.next_id;
        let min_gid = self.gid.fetch_add(1, Ordering::Relaxed) + 1;
        w.list.push(Watcher {
            id,
            flags,
            min_gid,
            buf: b"OK\r\n".to_vec(),
            skipped: 0,
        });
        self.update_flags(&w);
        self.pending.store(true, Ordering::Relaxed);
        Some(id)
    }

    /// Removes a watcher (its connection closed); its unsent bytes are dropped.
    pub fn remove_watcher(&self, id: u64) {
        let mut w = self.watchers.lock().unwrap();
        w.list.retain(|x| x.id != id);
        self.update_flags(&w);
    }

    fn update_flags(&self, w: &Watchers) {
        let flags = w.list.iter().fold(0, |f, x| f | x.flags);
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// Moves watcher `id`'s waiting bytes to the end of `out`; false when it had none.
    pub fn take(&self, id: u64, out: &mut Vec<u8>) -> bool {
        let mut w = self.watchers.lock().unwrap();
        let mut found = false;
        for x in w.list.iter_mut() {
            if x.id == id && !x.buf.is_empty() {
                found = true;
                if out.is_empty() {
                    std::mem::swap(out, &mut x.buf);
                } else {
                    out.append(&mut x.buf);
                }
            }
        }
        let left = w.list.iter().any(|x| !x.buf.is_empty());
        self.pending.store(left, Ordering::Relaxed);
        found
    }

    /// memcached's `log_*` counters.
    pub fn stats(&self) -> LoggerStats {
        let watchers = self.watchers.lock().unwrap().list.len() as u64;
        LoggerStats {
            worker_dropped: 0,
            worker_written: self.written.load(Ordering::Relaxed),
            watcher_skipped: self.skipped.load(Ordering::Relaxed),
            watcher_sent: self.sent.load(Ordering::Relaxed),
            watchers,
        }
    }

    /// `type=item_get`: one lookup of `key` by the connection on descriptor `cfd`.
    pub fn item_get(&self, key: &[u8], seen: Lookup, cfd: i32) {
        let (status, clsid, size) = match seen {
            Lookup::Found { clsid, size } => ("found", clsid, size),
            Lookup::NotFound => ("not_found", 0, 0),
            Lookup::Flushed => ("flushed", 0, 0),
        };
        self.log(FETCHERS, |line| {
            line.extend_from_slice(b"type=item_get key=");
            uri_encode(key, line);
            push_fmt(
                line,
                format_args!(" status={status} clsid={clsid} cfd={cfd} size={size}\n"),
            );
        });
    }

    /// `type=item_store`: a storage command's outcome.
    #[allow(clippy::too_many_arguments)]
    pub fn item_store(
        &self,
        key: &[u8],
        status: &str,
        cmd: &str,
        ttl: u32,
        clsid: u32,
        cfd: i32,
        size: usize,
    ) {
        self.log(MUTATIONS, |line| {
            line.extend_from_slice(b"type=item_store key=");
            uri_encode(key, line);
            push_fmt(
                line,
                format_args!(
                    " status={status} cmd={cmd} ttl={ttl} clsid={clsid} cfd={cfd} size={size}\n"
                ),
            );
        });
    }

    /// `type=eviction`: the engine evicted an item to make room (memcached's line: `ttl`
    /// -1 for none, `la` seconds since its last access, `size` its value's length).
    pub fn eviction(&self, e: &Eviction<'_>) {
        self.log(EVICTIONS, |line| {
            line.extend_from_slice(b"type=eviction key=");
            uri_encode(e.key, line);
            let fetch = if e.fetched { "yes" } else { "no" };
            push_fmt(
                line,
                format_args!(
                    " fetch={fetch} ttl={} la={} clsid={} size={}\n",
                    e.ttl, e.last_access, e.class_id, e.value_len
                ),
            );
        });
    }

    /// `type=lru_crawler` (a round of the expiry walk, for one class and LRU segment) or
    /// `type=slab_move` (an automove page move), with memcached's field names; the
    /// fields ferrocache has no figure for are left out (see `docs/protocol.md`).
    pub fn sysevent(&self, e: &SysEvent) {
        self.log(SYSEVENTS, |line| match e {
            SysEvent::Crawl(r) => {
                push_fmt(
                    line,
                    format_args!(
                        "type=lru_crawler crawler={} lru={} since_run={}",
                        r.class_id,
                        LRU_NAMES[r.lru & 3],
                        r.since_run
                    ),
                );
                if let Some(next) = r.next_run {
                    push_fmt(line, format_args!(" next_run={next}"));
                }
                push_fmt(
                    line,
                    format_args!(
                        " elapsed={} examined={} reclaimed={}\n",
                        r.elapsed, r.examined, r.reclaimed
                    ),
                );
            }
            SysEvent::SlabMove { src, dst } => {
                push_fmt(line, format_args!("type=slab_move src={src} dst={dst}\n"));
            }
        });
    }

    /// `type=conn_new` / `type=conn_close` for a TCP client at `addr` (the server's
    /// `tcp:1.2.3.4:5` / `tcp6:[::1]:5` form); `close` is `None` for a new connection.
    pub fn conn_event(&self, addr: &str, cfd: i32, close: Option<CloseReason>) {
        if !self.wants(CONNEVENTS) {
            return;
        }
        let (rip, rport) = split_addr(addr);
        self.log(CONNEVENTS, |line| {
            let kind = if close.is_some() { "close" } else { "new" };
            push_fmt(
                line,
                format_args!("type=conn_{kind} rip={rip} rport={rport} transport=tcp"),
            );
            if let Some(reason) = close {
                push_fmt(line, format_args!(" reason={}", reason.word()));
            }
            push_fmt(line, format_args!(" cfd={cfd}\n"));
        });
    }

    /// Renders one event (`ts=… gid=… ` then what `body` writes) and hands it to every
    /// watcher whose filter has `flag`.
    fn log(&self, flag: u32, body: impl FnOnce(&mut Vec<u8>)) {
        let mut w = self.watchers.lock().unwrap();
        if !w.list.iter().any(|x| x.flags & flag != 0) {
            return;
        }
        let gid = self.gid.fetch_add(1, Ordering::Relaxed) + 1;
        self.written.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = Vec::with_capacity(160);
        // memcached prints the microseconds unpadded (`%d`)
        push_fmt(
            &mut line,
            format_args!("ts={}.{} gid={gid} ", now.as_secs(), now.subsec_micros()),
        );
        body(&mut line);
        let (mut sent, mut skipped) = (0, 0);
        for x in w.list.iter_mut() {
            if x.flags & flag == 0 || gid < x.min_gid {
                continue;
            }
            if x.buf.len() + line.len() + SKIP_ROOM > WATCHER_BUF {
                x.skipped += 1;
                skipped += 1;
                continue;
            }
            if x.skipped > 0 {
                push_fmt(&mut x.buf, format_args!("skipped={}\n", x.skipped));
                x.skipped = 0;
            }
            x.buf.extend_from_slice(&line);
            sent += 1;
        }
        drop(w);
        if sent > 0 {
            self.sent.fetch_add(sent, Ordering::Relaxed);
            self.pending.store(true, Ordering::Relaxed);
        }
        if skipped > 0 {
            self.skipped.fetch_add(skipped, Ordering::Relaxed);
        }
    }
}

/// The engine's eviction hook feeds the server's log: registered by
/// [`crate::storage::Storage::log_evictions`] when a watcher asks for `evictions`; it
/// only formats the line into the watchers' buffers (it runs under the engine's lock).
impl EvictionSink for crate::info::ServerInfo {
    fn wants_evictions(&self) -> bool {
        self.watch.wants(EVICTIONS)
    }
    fn evicted(&self, e: &Eviction<'_>) {
        self.watch.eviction(e);
    }
}

/// The engine's system-event hook feeds the server's log: registered by
/// [`crate::storage::Storage::log_sysevents`] when a watcher asks for `sysevents`; called
/// from the engine's background thread.
impl SysEventSink for crate::info::ServerInfo {
    fn wants_sysevents(&self) -> bool {
        self.watch.wants(SYSEVENTS)
    }
    fn sysevent(&self, e: &SysEvent) {
        self.watch.sysevent(e);
    }
}

fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = out.write_fmt(args);
}

/// memcached's `uriencode` of a key: letters, digits and `-._~` as they are, every other
/// byte as `%XX` (upper-case hex).
pub fn uri_encode(key: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// `tcp:1.2.3.4:5` → (`1.2.3.4`, `5`); `tcp6:[::1]:5` → (`::1`, `5`).
fn split_addr(addr: &str) -> (&str, &str) {
    let rest = addr.split_once(':').map_or(addr, |(_, r)| r);
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(l: &Logger, id: u64) -> String {
        let mut out = Vec::new();
        l.take(id, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// Drops the `ts=… gid=… ` head after checking its shape.
    fn body(line: &str) -> &str {
        let (ts, rest) = line.split_once(' ').unwrap();
        let (secs, micros) = ts.strip_prefix("ts=").unwrap().split_once('.').unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
        assert!(micros.parse::<u32>().unwrap() < 1_000_000);
        assert!(
            micros == "0" || !micros.starts_with('0'),
            "unpadded: {micros}"
        );
        let (gid, rest) = rest.split_once(' ').unwrap();
        assert!(gid.strip_prefix("gid=").unwrap().parse::<u64>().is_ok());
        rest
    }

    #[test]
    fn filters_parse_as_memcached() {
        assert_eq!(parse_filters([]), Some(FETCHERS));
        assert_eq!(
            parse_filters([&b"mutations"[..], b"connevents"]),
            Some(MUTATIONS | CONNEVENTS)
        );
        assert_eq!(parse_filters([&b"rawcmds"[..]]), Some(SILENT));
        assert_eq!(parse_filters([&b"evictions"[..]]), Some(EVICTIONS));
        assert_eq!(
            parse_filters([&b"sysevents"[..], b"fetchers"]),
            Some(SYSEVENTS | FETCHERS)
        );
        for bad in [&b"deletions"[..], b"SYSEVENTS", b"FETCHERS", b"noreply"] {
            assert_eq!(parse_filters([&b"fetchers"[..], bad]), None);
        }
    }

    #[test]
    fn nothing_is_logged_without_a_matching_watcher() {
        let l = Logger::new(0);
        assert!(!l.wants(FETCHERS));
        l.item_get(b"k", Lookup::NotFound, 5);
        assert_eq!(l.stats().worker_written, 0);
        let id = l.add_watcher(MUTATIONS).unwrap();
        assert!(!l.wants(FETCHERS) && l.wants(MUTATIONS));
        l.item_get(b"k", Lookup::NotFound, 5);
        assert_eq!(lines(&l, id), "OK\r\n");
        l.remove_watcher(id);
        assert!(!l.wants(MUTATIONS));
    }

    #[test]
    fn lines_have_memcached_words_and_growing_gids() {
        let l = Logger::new(0);
        let id = l
            .add_watcher(FETCHERS | MUTATIONS | CONNEVENTS | EVICTIONS)
            .unwrap();
        l.item_get(
            b"a b%=\x01\xff-._~",
            Lookup::Found { clsid: 1, size: 3 },
            23,
        );
        l.item_store(b"a", "stored", "set", 100, 1, 23, 3);
        l.conn_event("tcp:127.0.0.1:4000", 24, None);
        l.conn_event("tcp6:[::1]:4001", 24, Some(CloseReason::IdleTimeout));
        l.eviction(&Eviction {
            key: b"b%20\x01",
            fetched: false,
            ttl: -1,
            last_access: 13,
            class_id: 9,
            value_len: 500,
        });
        let text = lines(&l, id);
        let got: Vec<&str> = text.strip_prefix("OK\r\n").unwrap().lines().collect();
        assert_eq!(
            got.iter().map(|x| body(x)).collect::<Vec<_>>(),
            [
                "type=item_get key=a%20b%25%3D%01%FF-._~ status=found clsid=1 cfd=23 size=3",
                "type=item_store key=a status=stored cmd=set ttl=100 clsid=1 cfd=23 size=3",
                "type=conn_new rip=127.0.0.1 rport=4000 transport=tcp cfd=24",
                "type=conn_close rip=::1 rport=4001 transport=tcp reason=idle_timeout cfd=24",
                // as memcached 1.6.18 printed it for this key
                "type=eviction key=b%2520%01 fetch=no ttl=-1 la=13 clsid=9 size=500",
            ]
        );
        let gids: Vec<u64> = got
            .iter()
            .map(|x| x.split(' ').nth(1).unwrap()[4..].parse().unwrap())
            .collect();
        assert_eq!(gids, [2, 3, 4, 5, 6]);
        let s = l.stats();
        assert_eq!((s.worker_written, s.watcher_sent, s.watchers), (5, 5, 1));
    }

    #[test]
    fn sysevent_lines_have_memcached_field_names() {
        use ferrocache_core::sysevent::CrawlRound;
        let l = Logger::new(0);
        let fetch = l.add_watcher(FETCHERS).unwrap();
        let sys = l.add_watcher(SYSEVENTS | FETCHERS).unwrap();
        let mut round = CrawlRound {
            class_id: 3,
            lru: 2,
            since_run: 0,
            next_run: Some(1),
            elapsed: 4,
            examined: 120,
            reclaimed: 7,
        };
        l.sysevent(&SysEvent::Crawl(round));
        round.next_run = None;
        round.lru = 3;
        l.sysevent(&SysEvent::Crawl(round));
        l.sysevent(&SysEvent::SlabMove { src: 12, dst: 5 });
        l.item_get(b"k", Lookup::NotFound, 9);
        let text = lines(&l, sys);
        let got: Vec<&str> = text.strip_prefix("OK\r\n").unwrap().lines().collect();
        assert_eq!(
            got.iter().map(|x| body(x)).collect::<Vec<_>>(),
            [
                "type=lru_crawler crawler=3 lru=cold since_run=0 next_run=1 elapsed=4 examined=120 reclaimed=7",
                "type=lru_crawler crawler=3 lru=temp since_run=0 elapsed=4 examined=120 reclaimed=7",
                "type=slab_move src=12 dst=5",
                "type=item_get key=k status=not_found clsid=0 cfd=9 size=0",
            ]
        );
        // a fetchers-only watcher sees none of them
        let other = lines(&l, fetch);
        assert_eq!(other.matches("type=").count(), 1);
        assert!(other.contains("type=item_get"));
    }

    #[test]
    fn a_watcher_sees_only_events_after_it_came() {
        let l = Logger::new(0);
        let a = l.add_watcher(FETCHERS).unwrap();
        l.item_get(b"before", Lookup::NotFound, 1);
        let b = l.add_watcher(FETCHERS).unwrap();
        l.item_get(b"after", Lookup::NotFound, 1);
        assert_eq!(lines(&l, a).matches("type=item_get").count(), 2);
        let seen = lines(&l, b);
        assert!(
            seen.starts_with("OK\r\n")
                && seen.contains("key=after")
                && !seen.contains("key=before")
        );
    }

    #[test]
    fn at_most_twenty_watchers() {
        let l = Logger::new(0);
        let ids: Vec<u64> = (0..WATCHER_LIMIT)
            .map(|_| l.add_watcher(FETCHERS).unwrap())
            .collect();
        assert_eq!(l.add_watcher(FETCHERS), None);
        l.remove_watcher(ids[3]);
        assert!(l.add_watcher(MUTATIONS).is_some());
        assert_eq!(l.stats().watchers, WATCHER_LIMIT as u64);
    }

    #[test]
    fn a_slow_watcher_stays_bounded_and_hears_how_many_lines_it_lost() {
        let l = Logger::new(0);
        let slow = l.add_watcher(FETCHERS).unwrap();
        let fast = l.add_watcher(FETCHERS).unwrap();
        let key = [b'k'; 200];
        let mut fast_lines = 0;
        for i in 0..10_000 {
            l.item_get(&key, Lookup::NotFound, 7);
            if i % 100 == 0 {
                fast_lines += lines(&l, fast)
                    .lines()
                    .filter(|x| x.contains("item_get"))
                    .count();
            }
            assert!(l.watchers.lock().unwrap().list[0].buf.len() <= WATCHER_BUF);
        }
        fast_lines += lines(&l, fast)
            .lines()
            .filter(|x| x.contains("item_get"))
            .count();
        assert_eq!(fast_lines, 10_000);
        let first = lines(&l, slow);
        let kept = first.lines().filter(|x| x.contains("item_get")).count();
        assert!(kept < 10_000 && first.len() <= WATCHER_BUF);
        let s = l.stats();
        assert_eq!(s.watcher_skipped, 10_000 - kept as u64);
        assert_eq!(s.watcher_sent, 10_000 + kept as u64);
        // once drained, the next line comes after the count of those lost
        l.item_get(b"next", Lookup::NotFound, 7);
        let after = lines(&l, slow);
        assert_eq!(
            after.lines().next().unwrap(),
            format!("skipped={}", 10_000 - kept)
        );
        assert!(body(after.lines().nth(1).unwrap()).starts_with("type=item_get key=next "));
    }

    #[test]
    fn ttl_follows_memcached_clock() {
        let started = 1_700_000_000;
        let now = started + 50;
        assert_eq!(request_ttl(0, now, started), 0);
        assert_eq!(request_ttl(100, now, started), 100);
        assert_eq!(request_ttl(now as i64 + 10, now, started), 10);
        // memcached's current_time is uptime + 62; -1 becomes relative time 1
        assert_eq!(request_ttl(-1, now, started), (1i64 - 112) as u32);
    }
}

//! The network server's per-connection codec as JS classes, for `src/server/`.
//!
//! `NativeServerInfo` wraps the protocol crate's shared [`ServerInfo`] (settings, connection
//! counters, `stats conns`); `NativeSession` wraps one connection's [`Session`]. TypeScript
//! owns the socket and calls `feed` once per read: every complete request in the bytes is
//! executed here and all replies come back as one `Buffer`.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use ferrocache_core::Store;
use ferrocache_protocol::watch::CloseReason;
use ferrocache_protocol::{
    ConnEntry, Control, Limits, LiveOffset, Protocols, ServerInfo, Session, Users,
};
use napi::bindgen_prelude::{Buffer, Object, ToNapiValue};
use napi::{sys, Env, Error, JsValue, Result, Status};
use napi_derive::napi;

use crate::cache::{note_memory_of, report_memory, NativeCache};
use crate::replication::NativeReplication;

/// Replies up to this size are copied into a fresh JS Buffer and the Rust buffer is
/// reused; larger ones are handed over without a copy.
const COPY_REPLY_MAX: usize = 64 * 1024;

/// Once one `feed` has produced this much reply, the rest of the input waits (in
/// `pending`) until JS has written the replies out and calls `feed` again: a pipeline of
/// `get`s for large items cannot make one call allocate gigabytes.
const REPLY_BUDGET: usize = 4 << 20;

/// Replies one call may leave unsent (the kernel did not take them yet) before the rest of
/// the input waits. A client that does not read holds about this much plus one item,
/// whatever it asked for. Without a descriptor to send on (TLS, UDP, or node has replies
/// queued already) every reply is left to JS: then FEED_REPLY.
const UNSENT_BUDGET: usize = 1 << 20;

/// Replies the session produces per `feed` of a slice (its `Limits::max_reply`): between
/// feeds the replies memcached would have written out go to the socket, so a client that
/// stops reading is noticed before a whole budget is built for it.
const FEED_REPLY: usize = 256 << 10;

/// An idle connection keeps a held-back input buffer up to this capacity; a larger one is
/// given back once its bytes are used.
const KEEP_CAPACITY: usize = 64 * 1024;

/// The reply buffer kept between calls (shared by this thread's connections, see
/// REPLY_BUFFER) is given back when it grew past this.
const KEEP_REPLY_CAPACITY: usize = 2 * REPLY_BUDGET;

thread_local! {
    /// The reply buffer of the call running now. A call's replies are all sent, copied or
    /// handed to JS before it returns, so one buffer serves every connection of the thread:
    /// an idle connection holds none, and a busy one does not grow a fresh one each call.
    static REPLY_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Input is executed in slices so the budget is checked between them. The first slice of
/// a call is small: its reply is at most its requests times the largest item (256 bytes
/// of `get k` lines and 1 MiB items: ~36 MiB). While replies stay small next to their
/// requests, the slices grow (x4 up to 64 KiB), so ordinary reads take one or two slices.
const FIRST_SLICE: usize = 256;
const MAX_SLICE: usize = 64 * 1024;
/// Reply bytes per request byte under which the slice may grow.
const SMALL_RATIO: usize = 32;

/// Bits of [`NativeSession::state`].
const STATE_CLOSE: u32 = 1;
const STATE_SHUTDOWN: u32 = 2;
const STATE_PENDING: u32 = 4;
const STATE_SNAPSHOT: u32 = 8;
/// The connection is a `watch` log watcher: write what `watchTake` gives it.
const STATE_WATCHER: u32 = 16;
/// Some watcher of this server has log lines waiting (`watchTake`).
const STATE_WATCH_DATA: u32 = 32;
/// With STATE_CLOSE: close as soon as the replies are written, with no linger for the
/// client's FIN (a binary request refused with an error, as memcached closes).
const STATE_CLOSE_NOW: u32 = 64;
/// With STATE_CLOSE_NOW: close with a reset (RST), as memcached's close over the rest of a
/// binary request it could not read (a header over its read buffer).
const STATE_CLOSE_RESET: u32 = 128;

/// Ids for `stats conns` (memcached prints file descriptors; we number connections).
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// memcached's command-line switches that change replies (see `setSwitches`).
#[napi(object)]
pub struct NativeSwitches {
    /// false: `-C`.
    pub cas: bool,
    /// false: `-F`.
    pub flush: bool,
    /// false: `-X`.
    pub dump: bool,
    /// false: `-W`.
    pub watch: bool,
    /// `-R`.
    pub reqs_per_event: u32,
    /// `-B`: `auto`, `ascii` or `binary`.
    pub protocol: String,
    /// `-D`: the prefix delimiter (its first byte); per-prefix stats start on.
    pub prefix_delimiter: Option<String>,
}

/// Server-wide facts shared by every session of one server: settings for `stats settings`,
/// connection counters, the `-A` switch and the verbosity set by the `verbosity` command.
#[napi]
pub struct NativeServerInfo {
    inner: Arc<ServerInfo>,
}

#[napi]
impl NativeServerInfo {
    /// `version` is what `version` and `stats` report.
    #[napi(constructor)]
    pub fn new(version: String) -> Self {
        NativeServerInfo {
            inner: Arc::new(ServerInfo::new(&version)),
        }
    }

    /// Replaces the `stats settings` list: `[name, value]` pairs in the order printed.
    #[napi]
    pub fn set_settings(&self, settings: Vec<Vec<String>>) {
        self.inner.set_settings(name_value_pairs(settings));
    }

    /// The listening sockets (TCP or Unix; e.g. `tcp:127.0.0.1:11211`), listed first by
    /// `stats conns` and counted as memcached counts them in `curr_connections`,
    /// `total_connections` and `connection_structures`.
    #[napi]
    pub fn set_listeners(&self, addrs: Vec<String>) {
        // numbered 0, 1, …: `stats conns` moves the connections' ids (from 1) past them
        let listeners = (0u64..).zip(addrs).collect();
        self.inner.set_listeners(listeners);
    }

    /// `-c`, shown as `max_connections`.
    #[napi]
    pub fn set_max_connections(&self, n: u32) {
        self.inner
            .max_connections
            .store(n as u64, Ordering::Relaxed);
    }

    /// `-A`: whether the `shutdown` command is honoured.
    #[napi]
    pub fn set_shutdown_enabled(&self, enabled: bool) {
        self.inner
            .shutdown_enabled
            .store(enabled, Ordering::Relaxed);
    }

    /// Whether the `snapshot` command is honoured (persistence is on).
    #[napi]
    pub fn set_snapshot_enabled(&self, enabled: bool) {
        self.inner
            .snapshot_enabled
            .store(enabled, Ordering::Relaxed);
    }

    /// memcached's `lru_maintainer_thread` (on at start): off (`-o no_lru_maintainer`,
    /// `no_modern`), `lru mode` and `lru temp_ttl` answer `ERROR` as memcached's do. Set it
    /// after the start-up commands, which use them for those settings.
    #[napi]
    pub fn set_lru_maintainer(&self, enabled: bool) {
        self.inner
            .switches
            .lru_maintainer
            .store(enabled, Ordering::Relaxed);
    }

    /// memcached's reply-changing switches: `-C` (`cas` false), `-F` (`flush`), `-X`
    /// (`dump`), `-W` (`watch`), `-R` (`reqsPerEvent`, at least 1), `-B` (`protocol`:
    /// `auto`, `ascii` or `binary`; anything else is an `InvalidArg` error) and `-D`
    /// (`prefixDelimiter`: per-prefix stats on, split at that character).
    #[napi]
    pub fn set_switches(&self, switches: NativeSwitches) -> Result<()> {
        let protocols = match switches.protocol.as_str() {
            "auto" => Protocols::Auto,
            "ascii" => Protocols::Ascii,
            "binary" => Protocols::Binary,
            other => {
                return Err(Error::new(
                    Status::InvalidArg,
                    format!("protocol must be auto, ascii or binary, got {other}"),
                ))
            }
        };
        let w = &self.inner.switches;
        w.cas.store(switches.cas, Ordering::Relaxed);
        w.flush.store(switches.flush, Ordering::Relaxed);
        w.dump.store(switches.dump, Ordering::Relaxed);
        w.watch.store(switches.watch, Ordering::Relaxed);
        w.reqs_per_event
            .store(switches.reqs_per_event.max(1), Ordering::Relaxed);
        w.set_protocols(protocols);
        if let Some(&c) = switches
            .prefix_delimiter
            .as_ref()
            .and_then(|d| d.as_bytes().first())
        {
            self.inner.detail.set_delimiter(c);
            self.inner.detail.set_enabled(true);
        }
        Ok(())
    }

    /// Runs one text admin command (`lru tune 10 30 0.3 1.5`, `slabs automove 2`…) on
    /// `cache`'s engine, as a client would send it, and returns the reply line (`OK` and
    /// CRLF, or the error memcached words). No connection is counted. For settings given at start.
    #[napi]
    pub fn run_admin(&self, env: Env, cache: &NativeCache, line: String) -> Result<String> {
        let store = cache.store()?;
        let mut session = Session::new(store.clone(), self.inner.clone());
        let mut out = Vec::new();
        let mut request = line.into_bytes();
        request.extend_from_slice(b"\r\n");
        session.feed(&request, &mut out);
        report_memory(env.raw(), cache.id(), &store); // `cache_memlimit` frees pages
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Authentication: `users` is the content of a memcached user file (`username:password`
    /// lines); connections opened afterwards must log in (text `set` token or SASL PLAIN).
    /// `null` turns it off. Throws (code `InvalidArg`) naming the first malformed line; returns
    /// how many users were loaded.
    #[napi]
    pub fn set_users(&self, users: Option<Buffer>) -> Result<u32> {
        let parsed = match users {
            None => None,
            Some(b) => Some(Users::parse(&b).map_err(|e| Error::new(Status::InvalidArg, e))?),
        };
        let n = parsed.as_ref().map_or(0, |u| u.len() as u32);
        self.inner.set_users(parsed);
        Ok(n)
    }

    /// The most bytes of partial requests (values on their way in) all connections together
    /// may buffer; a connection that would pass it gets `SERVER_ERROR out of memory storing
    /// object` and is closed. Shown in `stats` as `read_buf_bytes` / `read_buf_oom`.
    #[napi]
    pub fn set_inflight_limit(&self, bytes: f64) {
        self.inner.set_inflight_limit(bytes.max(0.0) as u64);
    }

    /// Logins tried (`auth_cmds`).
    #[napi(getter)]
    pub fn auth_cmds(&self) -> f64 {
        self.inner.auth_counts().0 as f64
    }

    /// Logins refused (`auth_errors`).
    #[napi(getter)]
    pub fn auth_errors(&self) -> f64 {
        self.inner.auth_counts().1 as f64
    }

    /// A read-only replica: writes get `SERVER_ERROR replica is read-only`.
    #[napi]
    pub fn set_read_only(&self, read_only: bool) {
        self.inner.read_only.store(read_only, Ordering::Relaxed);
    }

    /// The `replicaof` / `psync` line of the session that just stopped for it (its state
    /// has STATE_SNAPSHOT), or `null` when it stopped for a `snapshot`.
    #[napi]
    pub fn take_admin_request(&self) -> Option<String> {
        self.inner.take_admin_request()
    }

    /// Lines appended to the general `stats`: `[name, value]` pairs (persistence's `rdb_*`).
    #[napi]
    pub fn set_extra_stats(&self, lines: Vec<Vec<String>>) {
        self.inner.set_extra_stats(name_value_pairs(lines));
    }

    /// Reads the `master_repl_offset` and `slave_repl_offset` of the extra lines from `repl`
    /// each time they are printed.
    #[napi]
    pub fn set_live_repl_offset(&self, repl: &NativeReplication) {
        let log = repl.log();
        self.inner
            .set_live_offset(Some(LiveOffset::new(move || log.offset())));
    }

    /// The `[name, value]` pairs `stats` (`family` empty) or `stats <family>` (`settings`,
    /// `items`, `slabs`, `sizes`) would print for `cache`, read without counting a request;
    /// `null` for another family. Metrics and the status page read them.
    #[napi(ts_return_type = "Array<[string, string]> | null")]
    pub fn stats_pairs(
        &self,
        cache: &NativeCache,
        family: String,
    ) -> Result<Option<Vec<Vec<String>>>> {
        let session = Session::new(cache.store()?, self.inner.clone());
        Ok(session
            .stats_pairs(&family)
            .map(|pairs| pairs.into_iter().map(|(k, v)| vec![k, v]).collect()))
    }

    /// The verbosity (`-v` count, or what the last `verbosity` command set).
    #[napi(getter)]
    pub fn verbosity(&self) -> u32 {
        self.inner.verbosity.load(Ordering::Relaxed)
    }

    /// Sets the verbosity, as the `verbosity` command does.
    #[napi(setter)]
    pub fn set_verbosity(&self, v: u32) {
        self.inner.verbosity.store(v, Ordering::Relaxed);
    }

    /// TLS is on: `stats` shows `ssl_handshake_errors` and `time_since_server_cert_refresh`.
    #[napi]
    pub fn set_tls(&self) {
        self.inner.set_tls();
    }

    /// Counts a failed TLS handshake (`ssl_handshake_errors`, `total_connections`).
    #[napi]
    pub fn tls_handshake_failed(&self) {
        self.inner.tls_handshake_failed();
    }

    /// memcached's `-o ssl_session_cache` with TLS: `stats` shows `ssl_new_sessions`.
    #[napi]
    pub fn set_tls_session_cache(&self) {
        self.inner.set_tls_session_cache();
    }

    /// Counts a new (not resumed) TLS session (`ssl_new_sessions`).
    #[napi]
    pub fn tls_new_session(&self) {
        self.inner.tls_new_session();
    }

    /// `refresh_certs` loaded the certificates again (`time_since_server_cert_refresh` 0).
    #[napi]
    pub fn tls_certs_loaded(&self) {
        self.inner.tls_certs_loaded();
    }

    /// Counts a connection refused by the connection limit.
    #[napi]
    pub fn conn_rejected(&self) {
        self.inner.conn_rejected();
    }

    /// Connections open now (`curr_connections`).
    #[napi(getter)]
    pub fn curr_connections(&self) -> f64 {
        self.inner.curr_connections() as f64
    }

    /// Connections opened, and the listening sockets, since start or `stats reset`
    /// (`total_connections`; refused ones are not counted, as in memcached).
    #[napi(getter)]
    pub fn total_connections(&self) -> f64 {
        self.inner.total_connections() as f64
    }

    /// Connections refused by the connection limit (`rejected_connections`).
    #[napi(getter)]
    pub fn rejected_connections(&self) -> f64 {
        self.inner.rejected_connections() as f64
    }
}

/// One connection's protocol state, behind [`NativeSession`] and the `sessionFeed` callback.
struct Conn {
    session: Option<Session<Arc<Store>>>,
    /// The cache's id and store, to report the slab pages its writes take to V8.
    cache: (u32, Arc<Store>),
    info: Arc<ServerInfo>,
    id: u64,
    /// Unix second of the last command, for `stats conns` (`ServerInfo::conn_opened`).
    last_cmd: Arc<AtomicU32>,
    /// The client's address (`tcp:1.2.3.4:5`), for the `watch connevents` lines.
    addr: String,
    fd: i32,
    /// `conn_close` was logged already (at `quit`, as memcached closes then).
    close_logged: bool,
    out: Vec<u8>,
    /// Bytes of `out` already sent on the descriptor during `run`.
    sent: usize,
    /// Input received but not yet executed because the reply budget ran out.
    pending: Vec<u8>,
    control: Control,
}

impl Conn {
    /// Runs the complete requests of the held-back input followed by `input`; the replies
    /// are left in `out`, those before `sent` already sent on `fd` (when it is >= 0): what
    /// memcached would have written out by then goes as soon as a slice's replies reach
    /// FEED_REPLY, and once the kernel stops taking them (the client is not reading) or
    /// UNSENT_BUDGET is left unsent, the rest of the input waits.
    fn run(&mut self, input: &[u8], fd: i32) {
        self.out = REPLY_BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
        self.out.clear();
        self.sent = 0;
        let Some(session) = self.session.as_mut() else {
            self.control = Control::Close;
            return;
        };
        let requests_before = session.requests();
        // memcached stamps a command's time as it parses it, before running it: `stats
        // conns` shows 0 seconds for the connection that asks, however long it was idle.
        // Stamped before the feed, put back if no command ran.
        let last_before = self.last_cmd.load(Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        self.last_cmd.store(now, Ordering::Relaxed);
        // one run is one socket read (the earlier replies were sent): memcached refuses
        // `watch`/`metadump` behind any request of the same read, quiet ones too
        session.start_read();
        session.clear_messages();
        // after `snapshot` the requests that followed it wait in the session's buffer
        let resume = self.control == Control::Snapshot;
        self.control = Control::Continue;
        // Held-back input goes first; joining them copies, but only after a budget overrun.
        let joined;
        let data: &[u8] = if self.pending.is_empty() {
            input
        } else {
            let mut held = std::mem::take(&mut self.pending);
            held.extend_from_slice(input);
            joined = held;
            &joined
        };
        // `resume`: a snapshot was answered; `held_back`: the last feed stopped at the
        // session's reply budget. Either way its own buffer goes first.
        if resume || session.held_back() {
            self.control = session.feed(&[], &mut self.out);
        }
        let mut at = 0;
        let mut slice = FIRST_SLICE;
        let unsent_budget = if fd >= 0 { UNSENT_BUDGET } else { FEED_REPLY };
        // a feed that stopped at the session's budget continues with the next slice, or
        // with nothing once the input is used up
        while self.control == Control::Continue
            && (at < data.len() || session.held_back())
            && self.out.len() < REPLY_BUDGET
            && self.out.len() - self.sent < unsent_budget
        {
            let mut end = (at + slice).min(data.len());
            if end < data.len() && !session.is_binary() {
                // a slice ends at a line's end: memcached sees the lines of its read whole,
                // and a line cut here with over 2048 bytes of it fed would be closed as one
                // with no newline (a 3000-byte `gat` across a slice end was)
                end = data[end..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(data.len(), |i| end + i + 1);
            }
            let before = self.out.len();
            self.control = session.feed(&data[at..end], &mut self.out);
            if self.out.len() - before < (end - at) * SMALL_RATIO {
                slice = (slice * 4).min(MAX_SLICE);
            }
            at = end;
            // the kernel not taking all of it: the client is behind, build no more now
            let ready = session.written_out().min(self.out.len());
            if fd >= 0 && ready - self.sent >= FEED_REPLY {
                let n = send_direct(fd, &self.out[self.sent..ready]);
                self.sent += n;
                if self.sent < ready {
                    break;
                }
            }
        }
        if matches!(self.control, Control::Continue | Control::Snapshot) && at < data.len() {
            self.pending = data[at..].to_vec();
        }
        if session.requests() == requests_before {
            self.last_cmd.store(last_before, Ordering::Relaxed);
        }
        let quit = session.closed_by_quit();
        match self.control {
            Control::Continue | Control::Snapshot => {}
            // memcached logs the connection that sent `shutdown` as closed for it
            Control::Shutdown => self.log_close(CloseReason::Shutdown),
            // and a close it makes as an error unless the client asked for it (quit)
            Control::Close if quit => self.log_close(CloseReason::Normal),
            Control::Close => self.log_close(CloseReason::Error),
        }
    }

    /// Sends the replies not sent yet on `fd` when it is given (>= 0); returns how many
    /// bytes of `out` have gone.
    fn send(&mut self, fd: i32) -> usize {
        if fd >= 0 && self.sent < self.out.len() {
            self.sent += send_direct(fd, &self.out[self.sent..]);
        }
        self.sent
    }

    /// After the replies went out (or were copied or handed to JS): the reply buffer goes
    /// back to REPLY_BUFFER for the next call, and a large held-back input buffer is not
    /// kept by an idle connection.
    fn shrink(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        if out.capacity() <= KEEP_REPLY_CAPACITY {
            out.clear();
            REPLY_BUFFER.with(|b| {
                let mut b = b.borrow_mut();
                if out.capacity() > b.capacity() {
                    *b = out;
                }
            });
        }
        if self.pending.is_empty() && self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        }
    }

    /// The replies from byte `sent` on as a JS Buffer: small ones copied (the Rust buffer
    /// is reused), large ones handed over.
    fn rest(&mut self, env: sys::napi_env, sent: usize) -> Result<sys::napi_value> {
        let mut value = ptr::null_mut();
        if self.out.len() - sent <= COPY_REPLY_MAX {
            let rest = &self.out[sent..];
            let mut data = ptr::null_mut();
            check(unsafe {
                sys::napi_create_buffer_copy(
                    env,
                    rest.len(),
                    rest.as_ptr().cast(),
                    &mut data,
                    &mut value,
                )
            })?;
            return Ok(value);
        }
        self.out.drain(..sent);
        // the Buffer keeps the allocation while the client is not reading: not the spare
        // half a doubling growth left
        self.out.shrink_to_fit();
        let owned: Buffer = std::mem::take(&mut self.out).into();
        self.sent = 0;
        unsafe { Buffer::to_napi_value(env, owned) }
    }

    fn state(&self) -> u32 {
        let control = match self.control {
            Control::Continue => 0,
            Control::Close if self.session.as_ref().is_some_and(|s| s.closes_with_reset()) => {
                STATE_CLOSE | STATE_CLOSE_NOW | STATE_CLOSE_RESET
            }
            Control::Close if self.session.as_ref().is_some_and(|s| s.closes_at_once()) => {
                STATE_CLOSE | STATE_CLOSE_NOW
            }
            Control::Close => STATE_CLOSE,
            Control::Shutdown => STATE_CLOSE | STATE_SHUTDOWN,
            Control::Snapshot => STATE_SNAPSHOT,
        };
        let held = self.session.as_ref().is_some_and(|s| s.held_back());
        let watcher = self.session.as_ref().is_some_and(|s| s.watcher().is_some());
        let watch = if watcher { STATE_WATCHER } else { 0 }
            | if self.info.watch.pending() {
                STATE_WATCH_DATA
            } else {
                0
            };
        watch
            | control
            | if self.pending.is_empty() && !held {
                0
            } else {
                STATE_PENDING
            }
    }

    /// `watch connevents`: this connection closed (once).
    fn log_close(&mut self, reason: CloseReason) {
        if !self.close_logged {
            self.close_logged = true;
            self.info
                .watch
                .conn_event(&self.addr, self.fd, Some(reason));
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if let Some(session) = self.session.take() {
            // memcached's logger closes a watcher's connection as an error
            let reason = if session.watcher().is_some() {
                CloseReason::Error
            } else {
                reason
            };
            drop(session);
            self.log_close(reason);
            self.info.conn_closed(self.id);
        }
        self.out = Vec::new();
        self.pending = Vec::new();
    }
}

/// This thread's connections by slot, for `sessionFeed`. A slot is reused only after its
/// `NativeSession` is collected, so a slot a JS object still holds always means the same
/// connection. Each entry is cloned out before use: the registry is not borrowed while a
/// session runs (a GC meanwhile may drop another session).
struct Registry {
    slots: Vec<Option<Rc<RefCell<Conn>>>>,
    free: Vec<u32>,
}

thread_local! {
    static SESSIONS: RefCell<Registry> = const {
        RefCell::new(Registry { slots: Vec::new(), free: Vec::new() })
    };
}

/// One client connection's protocol state. Counted as open from construction until
/// `close()` (or garbage collection). Reads go through the `sessionFeed` function
/// (registered by hand) with `slot`: napi-rs's class methods cost about a microsecond per
/// call.
#[napi]
pub struct NativeSession {
    slot: u32,
    conn: Rc<RefCell<Conn>>,
}

#[napi]
impl NativeSession {
    /// A session over `cache`'s engine. `addr` and `listenAddr` are shown by `stats conns`
    /// (e.g. `tcp:127.0.0.1:50112`); `fd`, the socket's descriptor, is the `cfd=` of
    /// `watch` lines (-1 or absent: unknown). Throws if the cache is closed.
    #[napi(constructor)]
    pub fn new(
        cache: &NativeCache,
        info: &NativeServerInfo,
        addr: String,
        listen_addr: String,
        fd: Option<i32>,
    ) -> Result<Self> {
        let store = cache.store()?;
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let opened = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let fd = fd.unwrap_or(-1);
        info.inner.watch.conn_event(&addr, fd, None);
        let last_cmd = info.inner.conn_opened(
            id,
            ConnEntry {
                addr: addr.clone(),
                listen_addr,
                opened,
            },
        );
        let limits = Limits {
            max_reply: FEED_REPLY,
            ..Limits::default()
        };
        let mut session = Session::with_limits(store.clone(), info.inner.clone(), limits);
        session.set_fd(fd);
        let conn = Rc::new(RefCell::new(Conn {
            session: Some(session),
            cache: (cache.id(), store),
            info: info.inner.clone(),
            id,
            last_cmd,
            addr,
            fd,
            close_logged: false,
            out: Vec::new(),
            sent: 0,
            pending: Vec::new(),
            control: Control::Continue,
        }));
        let slot = SESSIONS.with(|r| {
            let mut r = r.borrow_mut();
            match r.free.pop() {
                Some(slot) => {
                    r.slots[slot as usize] = Some(conn.clone());
                    slot
                }
                None => {
                    r.slots.push(Some(conn.clone()));
                    (r.slots.len() - 1) as u32
                }
            }
        });
        Ok(NativeSession { slot, conn })
    }

    /// The slot `sessionFeed` takes.
    #[napi(getter)]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Executes the complete requests in the bytes received so far and returns their
    /// replies, or `null` when there are none. Incomplete requests stay buffered here. If
    /// the replies pass a budget (4 MiB) the remaining input is held back (`state` has bit 4
    /// set): write the replies, then call `feed` again (with an empty buffer).
    ///
    /// With `fd` (Unix; the connected socket's descriptor, passed only while node has
    /// nothing queued on it) the replies are sent on it directly and only what the kernel
    /// did not take is returned, to be written by node after them. The server uses
    /// `sessionFeed`, the same without napi-rs's per-call cost.
    #[napi(ts_return_type = "Buffer | null")]
    pub fn feed(&self, env: Env, input: &[u8], fd: Option<i32>) -> Result<Option<JsReply>> {
        let mut conn = self.conn.borrow_mut();
        let fd = fd.unwrap_or(-1);
        conn.run(input, fd);
        let sent = conn.send(fd);
        if sent == conn.out.len() {
            conn.shrink();
            return Ok(None);
        }
        let reply = conn.rest(env.raw(), sent)?;
        conn.shrink();
        Ok(Some(JsReply(reply)))
    }

    /// What to do after the last `feed`, in one call: bit 1 close the connection once the
    /// replies are written (quit, a fatal protocol error), bit 2 also shut the server down
    /// (`shutdown` with `-A`), bit 4 input is held back: write the replies, then call
    /// `feed` again; bit 8 a `snapshot` command: write the replies, write the snapshot and
    /// reply to it, then call `feed` again (with an empty buffer). 0 means keep reading.
    #[napi(getter)]
    pub fn state(&self) -> u32 {
        self.conn.borrow().state()
    }

    /// Records where each reply message ends, as memcached's UDP frames replies (one
    /// message per response object; see `messageEnds`). For UDP sessions only.
    #[napi]
    pub fn frame_messages(&self) {
        let mut conn = self.conn.borrow_mut();
        if let Some(session) = conn.session.as_mut() {
            session.frame_messages();
        }
    }

    /// After `frameMessages`: the end offsets, in the replies the last feed returned, of
    /// each reply message (an end equal to the one before it, or a first end of 0: an empty
    /// message, a bare UDP header).
    #[napi]
    pub fn message_ends(&self) -> Vec<u32> {
        let conn = self.conn.borrow();
        conn.session.as_ref().map_or_else(Vec::new, |s| {
            s.messages().iter().map(|&end| end as u32).collect()
        })
    }

    /// Bytes of an incomplete request held back.
    #[napi(getter)]
    pub fn buffered(&self) -> u32 {
        let conn = self.conn.borrow();
        conn.session.as_ref().map_or(0, |s| s.buffered() as u32)
    }

    /// Requests handled so far; with `buffered`, the idle timeout sees a client that
    /// trickles a request in without ever finishing it.
    #[napi(getter)]
    pub fn requests(&self) -> f64 {
        let conn = self.conn.borrow();
        conn.session.as_ref().map_or(0.0, |s| s.requests() as f64)
    }

    /// Frees the session and counts the connection as closed. Idempotent. `reason`
    /// (for `watch connevents`): 0 the client closed or quit, 1 an error, 2 the idle
    /// timeout, 3 the server shutting down.
    #[napi]
    pub fn close(&self, reason: Option<u32>) {
        let reason = CloseReason::from_code(reason.unwrap_or(0));
        self.conn.borrow_mut().close(reason);
    }

    /// For a `watch` watcher (state has STATE_WATCHER): its log lines waiting to be
    /// written, or `null` when there are none.
    #[napi]
    pub fn watch_take(&self) -> Option<Buffer> {
        let conn = self.conn.borrow();
        let id = conn.session.as_ref()?.watcher()?;
        let mut bytes = Vec::new();
        conn.info.watch.take(id, &mut bytes).then(|| bytes.into())
    }
}

impl Drop for NativeSession {
    fn drop(&mut self) {
        // never borrowed here: a session is fed only through a live NativeSession's slot
        if let Ok(mut conn) = self.conn.try_borrow_mut() {
            conn.close(CloseReason::Normal);
        }
        let slot = self.slot;
        // `try_with`: at thread exit the registry may already be gone.
        let _ = SESSIONS.try_with(|r| {
            let mut r = r.borrow_mut();
            r.slots[slot as usize] = None;
            r.free.push(slot);
        });
    }
}

/// A napi value made by hand, returned through napi-rs.
pub struct JsReply(sys::napi_value);

impl ToNapiValue for JsReply {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    Err(Error::new(
        Status::from(status),
        "napi call failed".to_string(),
    ))
}

/// `sessionFeed(slot, input, length, fd)`: runs the first `length` bytes of `input` (a
/// Uint8Array) through the session in `slot`, sends the replies on `fd` (-1: don't), and
/// returns the session's state bits (a number, as `NativeSession.state`) when nothing is
/// left to write, or else the replies still to write as a Buffer (then read `state`).
/// One napi call per read, with each argument read by the one napi call it needs.
unsafe extern "C" fn session_feed(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    unsafe { guarded(env, info, session_feed_inner) }
}

/// `sessionRead(slot, length, fd, token)`: `sessionFeed` over the first `length` bytes of
/// the buffer `sessionReadBuffer` registered under `token`, the one every socket read
/// lands in; `null` (nothing fed) when a later registration replaced it. Looking the typed
/// array up was a tenth of the call's own cost on an unpipelined get.
unsafe extern "C" fn session_read(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    unsafe { guarded(env, info, session_read_inner) }
}

/// `sessionReadBuffer(buffer)`: the buffer `sessionRead` reads from, kept alive here;
/// returns the registration's token, which `sessionRead` must be given.
unsafe extern "C" fn session_read_buffer(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    unsafe { guarded(env, info, session_read_buffer_inner) }
}

/// Runs a hand-registered callback: an error or a panic becomes a thrown TypeError.
unsafe fn guarded(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: unsafe fn(sys::napi_env, sys::napi_callback_info) -> Result<sys::napi_value>,
) -> sys::napi_value {
    let result = catch_unwind(AssertUnwindSafe(|| unsafe { f(env, info) }));
    let msg = match result {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e.reason,
        Err(_) => "ferrocache internal error in sessionFeed".to_string(),
    };
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if !pending {
        let msg = std::ffi::CString::new(msg).unwrap_or_default();
        unsafe { sys::napi_throw_type_error(env, ptr::null(), msg.as_ptr()) };
    }
    ptr::null_mut()
}

/// The buffer `sessionRead` reads from: its bytes, and the env and reference that keep it.
#[derive(Clone, Copy)]
struct ReadBuffer {
    /// Which registration this is: every copy of the JS module in the thread registers its
    /// own buffer at load, each in its own realm (a vm context such as jest's, a cleared
    /// require.cache) and perhaps the same env, and only the latest is read here; a copy
    /// holding an older token feeds its own buffer through `sessionFeed`.
    token: u32,
    env: sys::napi_env,
    reference: sys::napi_ref,
    data: *const u8,
    len: usize,
}

thread_local! {
    static READ_BUFFER: std::cell::Cell<Option<ReadBuffer>> = const { std::cell::Cell::new(None) };
    static READ_TOKENS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn bad_arg(what: &str) -> Error {
    Error::new(Status::InvalidArg, format!("sessionFeed: {what}"))
}

/// Reads the callback's arguments into `argv`.
unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Result<[sys::napi_value; N]> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    check(unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    })?;
    Ok(argv)
}

/// A Uint8Array's bytes (a Buffer is one).
unsafe fn bytes_of(env: sys::napi_env, value: sys::napi_value) -> Result<(*const u8, usize)> {
    let mut data = ptr::null_mut();
    let mut len = 0usize;
    if unsafe {
        sys::napi_get_typedarray_info(
            env,
            value,
            ptr::null_mut(),
            &mut len,
            &mut data,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    } != sys::Status::napi_ok
    {
        return Err(bad_arg("input must be a Uint8Array"));
    }
    Ok((data as *const u8, len))
}

unsafe fn u32_arg(env: sys::napi_env, value: sys::napi_value, what: &str) -> Result<u32> {
    let mut n = 0u32;
    if unsafe { sys::napi_get_value_uint32(env, value, &mut n) } != sys::Status::napi_ok {
        return Err(bad_arg(what));
    }
    Ok(n)
}

unsafe fn fd_arg(env: sys::napi_env, value: sys::napi_value) -> Result<i32> {
    let mut fd = -1i32;
    if unsafe { sys::napi_get_value_int32(env, value, &mut fd) } != sys::Status::napi_ok {
        return Err(bad_arg("fd must be a number"));
    }
    Ok(fd)
}

unsafe fn session_feed_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Result<sys::napi_value> {
    let argv = unsafe { args::<4>(env, info) }?;
    let slot = unsafe { u32_arg(env, argv[0], "slot must be a number") }?;
    let (data, len) = unsafe { bytes_of(env, argv[1]) }?;
    let length = unsafe { u32_arg(env, argv[2], "length must be a number within the input") }?;
    let fd = unsafe { fd_arg(env, argv[3]) }?;
    // SAFETY: napi reported `len` bytes at `data`; the caller's array stays alive for the call.
    unsafe { feed_slot(env, slot, data, len, length, fd) }
}

unsafe fn session_read_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Result<sys::napi_value> {
    let argv = unsafe { args::<4>(env, info) }?;
    let slot = unsafe { u32_arg(env, argv[0], "slot must be a number") }?;
    let length = unsafe { u32_arg(env, argv[1], "length must be a number within the input") }?;
    let fd = unsafe { fd_arg(env, argv[2]) }?;
    let token = unsafe { u32_arg(env, argv[3], "token must be a number") }?;
    let Some(buffer) = READ_BUFFER
        .with(|b| b.get())
        .filter(|b| b.env == env && b.token == token)
    else {
        // another copy's buffer is the registered one: the caller feeds its own
        let mut null = ptr::null_mut();
        check(unsafe { sys::napi_get_null(env, &mut null) })?;
        return Ok(null);
    };
    // SAFETY: the registered buffer is held by `reference` (never released while this env
    // lives) and its backing store does not move.
    unsafe { feed_slot(env, slot, buffer.data, buffer.len, length, fd) }
}

unsafe fn session_read_buffer_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Result<sys::napi_value> {
    let argv = unsafe { args::<1>(env, info) }?;
    let (data, len) = unsafe { bytes_of(env, argv[0]) }?;
    let mut reference = ptr::null_mut();
    check(unsafe { sys::napi_create_reference(env, argv[0], 1, &mut reference) })?;
    let token = READ_TOKENS.with(|t| {
        t.set(t.get().wrapping_add(1));
        t.get()
    });
    let old = READ_BUFFER.with(|b| {
        b.replace(Some(ReadBuffer {
            token,
            env,
            reference,
            data,
            len,
        }))
    });
    if let Some(old) = old.filter(|old| old.env == env) {
        check(unsafe { sys::napi_delete_reference(env, old.reference) })?;
    }
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_uint32(env, token, &mut out) })?;
    Ok(out)
}

/// Runs the first `length` bytes of the `len` at `data` through the session in `slot`,
/// sends its replies on `fd`, and returns the state bits or the replies left to write.
///
/// # Safety
/// `data` must point to `len` readable bytes that stay alive for the call.
unsafe fn feed_slot(
    env: sys::napi_env,
    slot: u32,
    data: *const u8,
    len: usize,
    length: u32,
    fd: i32,
) -> Result<sys::napi_value> {
    if length as usize > len {
        return Err(bad_arg("length must be a number within the input"));
    }
    let conn = SESSIONS
        .with(|r| r.borrow().slots.get(slot as usize).cloned().flatten())
        .ok_or_else(|| bad_arg("no such session"))?;
    let input: &[u8] = if length == 0 {
        &[]
    } else {
        // SAFETY: `length <= len` readable bytes at `data` (the caller's promise).
        unsafe { std::slice::from_raw_parts(data, length as usize) }
    };
    let mut conn = conn.borrow_mut();
    conn.run(input, fd);
    note_memory_of(env, conn.cache.0, &conn.cache.1);
    let sent = conn.send(fd);
    if sent == conn.out.len() {
        conn.shrink();
        let state = conn.state();
        if fd >= 0 && state & (STATE_CLOSE_NOW | STATE_CLOSE_RESET) == STATE_CLOSE_NOW {
            finish_now(fd);
        }
        let mut out = ptr::null_mut();
        check(unsafe { sys::napi_create_uint32(env, state, &mut out) })?;
        return Ok(out);
    }
    let reply = conn.rest(env, sent)?;
    conn.shrink();
    Ok(reply)
}

/// Adds `sessionFeed`, `sessionRead` and `sessionReadBuffer` to the module's exports (typed
/// in `src/server/connection.ts`).
pub(crate) fn register_session_ops(exports: &Object, env: Env) -> Result<()> {
    type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
    let env = env.raw();
    let ops: [(&std::ffi::CStr, Callback); 3] = [
        (c"sessionFeed", session_feed),
        (c"sessionRead", session_read),
        (c"sessionReadBuffer", session_read_buffer),
    ];
    for (name, op) in ops {
        let mut f = ptr::null_mut();
        check(unsafe {
            sys::napi_create_function(
                env,
                name.as_ptr(),
                name.to_bytes().len() as isize,
                Some(op),
                ptr::null_mut(),
                &mut f,
            )
        })?;
        check(unsafe { sys::napi_set_named_property(env, exports.raw(), name.as_ptr(), f) })?;
    }
    Ok(())
}

/// Sends as much of `bytes` on the socket `fd` as it takes without blocking; returns how
/// much. Skipping node's write path (a `Buffer` made here, `Writable.write`, a `WriteWrap`)
/// is most of the cost of an unpipelined reply. Errors send nothing more: node then writes
/// the rest itself and reports the error as it would have.
#[cfg(unix)]
fn send_direct(fd: i32, bytes: &[u8]) -> usize {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // elsewhere node ignores SIGPIPE and libuv keeps its sockets non-blocking
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const FLAGS: libc::c_int = 0;
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        // SAFETY: `rest` is a live slice; the caller owns `fd` for this call.
        let n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), FLAGS) };
        if n > 0 {
            at += n as usize;
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        } else {
            break;
        }
    }
    at
}

/// The FIN after a reply that closes the connection at once (STATE_CLOSE_NOW), sent
/// right behind the reply as memcached 1.6.18 closes straight after writing it. Left to
/// node's `destroy()`, it went out some 30 µs later: a client's next request written on
/// seeing the reply (memjs after a refused empty key) reached the still-open socket and
/// the close reset over it, so memjs failed that call with ECONNRESET (15 of 40) where
/// against memcached it meets the FIN first (40 of 40). Reading stays open until node
/// closes the socket, so input arriving meanwhile still makes that close a reset, as
/// memcached's close over unread input.
#[cfg(unix)]
fn finish_now(fd: i32) {
    // SAFETY: the caller owns `fd` for this call; shutdown changes no memory.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

#[cfg(not(unix))]
fn finish_now(_fd: i32) {}

#[cfg(not(unix))]
fn send_direct(_fd: i32, _bytes: &[u8]) -> usize {
    0
}

/// `[name, value]` arrays from JavaScript as pairs; malformed entries are dropped.
fn name_value_pairs(list: Vec<Vec<String>>) -> Vec<(String, String)> {
    list.into_iter()
        .filter_map(|mut p| {
            let value = p.pop()?;
            let name = p.pop()?;
            Some((name, value))
        })
        .collect()
}

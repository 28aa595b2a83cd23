//! [`ServerInfo`]: what `stats` reports beyond the engine, shared by every session.
//!
//! The server creates one (in an `Arc`) and updates the connection counters as sockets
//! come and go; sessions add the bytes they read and write. Hot-path fields are atomics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::Users;

/// A connection as `stats conns` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnEntry {
    /// Peer address as memcached prints it, e.g. `tcp:127.0.0.1:50112`.
    pub addr: String,
    /// Listening address it came in on, e.g. `tcp:127.0.0.1:11211`.
    pub listen_addr: String,
    /// Unix second the connection was opened.
    pub opened: u32,
}

/// The protocols a server speaks (memcached's `-B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// Decided by each connection's first byte (`0x80`: binary).
    Auto = 0,
    /// Text only: every byte is read as text, a binary request too.
    Ascii = 1,
    /// Binary only: every request is read as a binary header (bad magic: hang up).
    Binary = 2,
}

/// The CAS comparisons use with `-C`: the engine numbers items from 1 up and never
/// reaches it.
pub(crate) const CAS_NEVER: u64 = u64::MAX;

/// memcached's command-line switches that change replies, read by every session.
#[derive(Debug)]
pub struct Switches {
    /// `-C` clears it: CAS values read 0 and no CAS comparison matches.
    pub cas: AtomicBool,
    /// `-F` clears it: `flush_all` is refused.
    pub flush: AtomicBool,
    /// `-X` clears it: `stats cachedump` and `lru_crawler metadump` are refused.
    pub dump: AtomicBool,
    /// `-W` clears it: `watch` is refused.
    pub watch: AtomicBool,
    /// `-R`: requests of one read before its replies are written out (default 20).
    pub reqs_per_event: AtomicU32,
    /// `-B`, a [`Protocols`] as a number.
    protocols: AtomicU8,
    /// memcached's `lru_maintainer_thread`: `-o no_lru_maintainer` / `no_modern` clear it,
    /// and then `lru mode` and `lru temp_ttl` answer `ERROR` as there.
    pub lru_maintainer: AtomicBool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            cas: AtomicBool::new(true),
            flush: AtomicBool::new(true),
            dump: AtomicBool::new(true),
            watch: AtomicBool::new(true),
            reqs_per_event: AtomicU32::new(20),
            protocols: AtomicU8::new(Protocols::Auto as u8),
            lru_maintainer: AtomicBool::new(true),
        }
    }
}

impl Switches {
    /// The protocols new connections may speak.
    pub fn protocols(&self) -> Protocols {
        match self.protocols.load(Relaxed) {
            1 => Protocols::Ascii,
            2 => Protocols::Binary,
            _ => Protocols::Auto,
        }
    }
    /// Sets the protocols new connections may speak (`-B`).
    pub fn set_protocols(&self, p: Protocols) {
        self.protocols.store(p as u8, Relaxed);
    }
    pub(crate) fn cas(&self) -> bool {
        self.cas.load(Relaxed)
    }
    pub(crate) fn flush_on(&self) -> bool {
        self.flush.load(Relaxed)
    }
    pub(crate) fn dump_on(&self) -> bool {
        self.dump.load(Relaxed)
    }
    pub(crate) fn watch_on(&self) -> bool {
        self.watch.load(Relaxed)
    }
    /// A CAS value as replies show it: 0 with `-C`.
    pub(crate) fn cas_out(&self, cas: u64) -> u64 {
        if self.cas() {
            cas
        } else {
            0
        }
    }
    /// The CAS a storage command (`cas`, `ms … C`) stores under: with `-C` memcached's
    /// new item cannot hold one, so it reads 0 whatever was sent, as a `C0` does with CAS
    /// on: `cas` and a set or replace answer `EXISTS`/`EX` when the item exists, an
    /// append or prepend goes ahead.
    pub(crate) fn cas_in(&self, cas: Option<u64>) -> Option<u64> {
        if self.cas() {
            cas
        } else {
            cas.map(|_| 0)
        }
    }
    /// The CAS a delete or arithmetic (`md`, `ma`, binary) compares with: with `-C`
    /// memcached compares it with the item's, which reads 0, so 0 matches (nothing to
    /// compare) and any other value is one no item has ([`CAS_NEVER`]).
    pub(crate) fn cas_compared(&self, cas: Option<u64>) -> Option<u64> {
        if self.cas() {
            cas
        } else {
            cas.filter(|&c| c != 0).map(|_| CAS_NEVER)
        }
    }
    /// `-R`, at least 1.
    pub(crate) fn reqs_per_event(&self) -> usize {
        self.reqs_per_event.load(Relaxed).max(1) as usize
    }
}

/// Reads a figure that changes too often to be pushed into [`ServerInfo`] (see
/// [`ServerInfo::set_live_offset`]).
pub struct LiveOffset(Box<dyn Fn() -> u64 + Send + Sync>);

impl LiveOffset {
    pub fn new(read: impl Fn() -> u64 + Send + Sync + 'static) -> LiveOffset {
        LiveOffset(Box::new(read))
    }
}

impl std::fmt::Debug for LiveOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveOffset({})", (self.0)())
    }
}

/// Server-wide facts and counters for `stats`, `stats settings`, `stats conns`, `version`
/// and `shutdown`. All methods take `&self`; share it with `Arc`.
#[derive(Debug)]
pub struct ServerInfo {
    /// Process id shown as `pid`.
    pub pid: u32,
    /// Unix second the server started (`uptime` is counted from it).
    pub started: u32,
    /// The version in `VERSION x.y.z` and `STAT version`.
    pub version: String,
    /// `-c`: shown as `max_connections`.
    pub max_connections: AtomicU64,
    /// Worker threads shown as `threads`.
    pub threads: AtomicU32,
    /// `verbosity` sets it; the server reads it for its log level.
    pub verbosity: AtomicU32,
    /// `-A`: whether `shutdown` is honoured.
    pub shutdown_enabled: AtomicBool,
    /// Whether the `snapshot` command is honoured (the server has a data directory).
    pub snapshot_enabled: AtomicBool,
    /// A read-only replica: writes get `SERVER_ERROR replica is read-only`.
    pub read_only: AtomicBool,
    /// memcached's command-line switches (`-C`, `-F`, `-X`, `-W`, `-R`, `-B`).
    pub switches: Switches,
    /// Per-prefix stats (`stats detail`, `-D`).
    pub detail: crate::detail::Detail,
    /// The `watch` log stream: its watchers and buffers (see [`crate::watch`]).
    pub watch: crate::watch::Logger,
    /// The last `replicaof` / `psync` line, for the server to act on (see
    /// [`ServerInfo::take_admin_request`]).
    admin_request: Mutex<Option<String>>,
    /// memcached's `settings.oldest_live`, shown as `stats settings` `oldest`: the last
    /// `flush_all`'s mark on its relative clock (see [`ServerInfo::note_flush`]).
    oldest_live: AtomicU32,
    /// Sessions open now (client connections and UDP sessions).
    curr_connections: AtomicU64,
    /// Sessions opened, plus listening sockets (see [`ServerInfo::set_listeners`]).
    total_connections: AtomicU64,
    /// Most sessions open at once, never reset (memcached's `conn_structs` less its
    /// listeners: one struct per descriptor number, reused after a close).
    peak_connections: AtomicU64,
    rejected_connections: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    cmd_meta: AtomicU64,
    /// Storage commands whose value was not stored for a bad data chunk, and `flush_all`s
    /// refused (bad delay, `-F`): memcached counts them in `cmd_set` / `cmd_flush`, the
    /// engine does not see them.
    cmd_set_unstored: AtomicU64,
    cmd_flush_refused: AtomicU64,
    store_too_large: AtomicU64,
    store_no_memory: AtomicU64,
    auth_cmds: AtomicU64,
    auth_errors: AtomicU64,
    /// With TLS ([`ServerInfo::set_tls`]): `ssl_handshake_errors`, and the unix second the
    /// certificates were last loaded (`time_since_server_cert_refresh`).
    tls: AtomicBool,
    ssl_handshake_errors: AtomicU64,
    /// With `ssl_session_cache` ([`ServerInfo::set_tls_session_cache`]): `ssl_new_sessions`.
    tls_session_cache: AtomicBool,
    ssl_new_sessions: AtomicU64,
    certs_loaded: AtomicU32,
    /// Bytes of partial requests the sessions hold (values still arriving), and the most
    /// all sessions together may hold; a session that would pass it is closed.
    inflight: AtomicU64,
    inflight_limit: AtomicU64,
    inflight_refused: AtomicU64,
    /// With users, every new session must log in (text token or SASL PLAIN).
    users: RwLock<Option<Arc<Users>>>,
    settings: Mutex<Vec<(String, String)>>,
    /// Values the `extstore` command changed, kept for a table set after them (the
    /// server's start-up commands run before its port, and so its table, is known).
    setting_changes: Mutex<Vec<(String, String)>>,
    /// Lines the server appends to the general `stats` (persistence's `rdb_*`).
    extra_stats: Mutex<Vec<(String, String)>>,
    /// Reads the replication stream's offset when `stats` runs: the offset moves with every
    /// write, and a figure refreshed a few times a second let a client that compares a
    /// primary's offset with its replica's see "caught up" before the replica had a write.
    live_offset: RwLock<Option<LiveOffset>>,
    listeners: Mutex<Vec<(u64, String)>>,
    /// Open connections, each with the unix second of its last command.
    conns: Mutex<BTreeMap<u64, (ConnEntry, Arc<AtomicU32>)>>,
}

impl ServerInfo {
    /// A fresh record: this process's pid, started now, `version` as given
    /// (e.g. `env!("CARGO_PKG_VERSION")`), 1024 max connections, 1 thread.
    pub fn new(version: &str) -> ServerInfo {
        ServerInfo {
            pid: std::process::id(),
            started: unix_now(),
            version: version.to_string(),
            max_connections: AtomicU64::new(1024),
            threads: AtomicU32::new(1),
            verbosity: AtomicU32::new(0),
            shutdown_enabled: AtomicBool::new(false),
            snapshot_enabled: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            switches: Switches::default(),
            detail: crate::detail::Detail::default(),
            watch: crate::watch::Logger::new(unix_now()),
            admin_request: Mutex::new(None),
            oldest_live: AtomicU32::new(0),
            curr_connections: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
            peak_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            cmd_meta: AtomicU64::new(0),
            cmd_set_unstored: AtomicU64::new(0),
            cmd_flush_refused: AtomicU64::new(0),
            store_too_large: AtomicU64::new(0),
            store_no_memory: AtomicU64::new(0),
            auth_cmds: AtomicU64::new(0),
            auth_errors: AtomicU64::new(0),
            tls: AtomicBool::new(false),
            ssl_handshake_errors: AtomicU64::new(0),
            tls_session_cache: AtomicBool::new(false),
            ssl_new_sessions: AtomicU64::new(0),
            certs_loaded: AtomicU32::new(0),
            inflight: AtomicU64::new(0),
            inflight_limit: AtomicU64::new(u64::MAX),
            inflight_refused: AtomicU64::new(0),
            users: RwLock::new(None),
            settings: Mutex::new(Vec::new()),
            setting_changes: Mutex::new(Vec::new()),
            extra_stats: Mutex::new(Vec::new()),
            live_offset: RwLock::new(None),
            listeners: Mutex::new(Vec::new()),
            conns: Mutex::new(BTreeMap::new()),
        }
    }

    /// Turns authentication on (`Some`: connections opened from now on must log in with
    /// one of these users) or off (`None`).
    pub fn set_users(&self, users: Option<Users>) {
        *self.users.write().unwrap() = users.map(Arc::new);
    }

    /// The users new sessions check logins against; `None` = no authentication.
    pub fn users(&self) -> Option<Arc<Users>> {
        self.users.read().unwrap().clone()
    }

    /// The most bytes of partial requests all sessions together may buffer (values on their
    /// way in); past it the session whose buffer grew is answered `SERVER_ERROR out of
    /// memory storing object` and closed. Buffers under 16 KiB are never counted.
    /// Default: no limit.
    pub fn set_inflight_limit(&self, bytes: u64) {
        self.inflight_limit.store(bytes, Relaxed);
    }

    /// (bytes of partial requests buffered now, sessions closed for passing the limit):
    /// `stats` shows them as memcached's `read_buf_bytes` and `read_buf_oom`.
    pub fn inflight(&self) -> (u64, u64) {
        (
            self.inflight.load(Relaxed),
            self.inflight_refused.load(Relaxed),
        )
    }

    /// Takes `n` bytes from the in-flight budget; false (nothing taken) when it is spent.
    pub(crate) fn charge_inflight(&self, n: usize) -> bool {
        let n = n as u64;
        let before = self.inflight.fetch_add(n, Relaxed);
        if before.saturating_add(n) > self.inflight_limit.load(Relaxed) {
            self.inflight.fetch_sub(n, Relaxed);
            self.inflight_refused.fetch_add(1, Relaxed);
            return false;
        }
        true
    }

    pub(crate) fn release_inflight(&self, n: usize) {
        self.inflight.fetch_sub(n as u64, Relaxed);
    }

    /// Logins tried (`auth_cmds`) and failed (`auth_errors`).
    pub fn auth_counts(&self) -> (u64, u64) {
        (self.auth_cmds.load(Relaxed), self.auth_errors.load(Relaxed))
    }

    pub(crate) fn count_auth(&self, ok: bool) {
        self.auth_cmds.fetch_add(1, Relaxed);
        if !ok {
            self.auth_errors.fetch_add(1, Relaxed);
        }
    }

    /// Replaces the `stats settings` list (name, value), printed in this order.
    pub fn set_settings(&self, mut settings: Vec<(String, String)>) {
        for (name, value) in self.setting_changes.lock().unwrap().iter() {
            if let Some(entry) = settings.iter_mut().find(|(k, _)| k == name) {
                entry.1.clone_from(value);
            }
        }
        *self.settings.lock().unwrap() = settings;
    }

    /// Changes the value `stats settings` shows for `name`, if the server lists it (the
    /// `extstore` command's settings), now and in any table set later.
    pub(crate) fn change_setting(&self, name: &str, value: String) {
        let mut changes = self.setting_changes.lock().unwrap();
        match changes.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1.clone_from(&value),
            None => changes.push((name.to_string(), value.clone())),
        }
        drop(changes);
        if let Some(entry) = self
            .settings
            .lock()
            .unwrap()
            .iter_mut()
            .find(|(k, _)| k == name)
        {
            entry.1 = value;
        }
    }

    /// The listening sockets `stats conns` lists first: (id, address such as
    /// `tcp:127.0.0.1:11211`). memcached counts each as a connection: in
    /// `total_connections` (until `stats reset`), `connection_structures` and, past the
    /// first, `curr_connections`; a listener added by a later call is counted then.
    pub fn set_listeners(&self, listeners: Vec<(u64, String)>) {
        let mut known = self.listeners.lock().unwrap();
        let added = listeners.len().saturating_sub(known.len());
        self.total_connections.fetch_add(added as u64, Relaxed);
        *known = listeners;
    }

    /// A connection was accepted; `id` is the server's (memcached prints the fd). Returns
    /// the connection's last-command clock: store the unix second in it whenever the
    /// connection runs a command (`stats conns` shows `secs_since_last_cmd` from it; it
    /// starts at `entry.opened`).
    pub fn conn_opened(&self, id: u64, entry: ConnEntry) -> Arc<AtomicU32> {
        let open = self.curr_connections.fetch_add(1, Relaxed) + 1;
        self.peak_connections.fetch_max(open, Relaxed);
        self.total_connections.fetch_add(1, Relaxed);
        let last_cmd = Arc::new(AtomicU32::new(entry.opened));
        self.conns
            .lock()
            .unwrap()
            .insert(id, (entry, last_cmd.clone()));
        last_cmd
    }

    /// A connection closed.
    pub fn conn_closed(&self, id: u64) {
        if self.conns.lock().unwrap().remove(&id).is_some() {
            self.curr_connections.fetch_sub(1, Relaxed);
        }
    }

    /// A connection was refused because of the connection limit (memcached closes it
    /// before making it a connection: not in `total_connections`, measured).
    pub fn conn_rejected(&self) {
        self.rejected_connections.fetch_add(1, Relaxed);
    }

    fn listener_count(&self) -> u64 {
        self.listeners.lock().unwrap().len() as u64
    }
    /// `curr_connections` as memcached counts it: open connections (UDP sessions too)
    /// and listening sockets, less one; with one listener (or none set), the open ones.
    pub fn curr_connections(&self) -> u64 {
        self.curr_connections.load(Relaxed) + self.listener_count().saturating_sub(1)
    }
    /// Connections opened (and listening sockets) since start or `stats reset`
    /// (`total_connections`); refused ones are not counted, as in memcached.
    pub fn total_connections(&self) -> u64 {
        self.total_connections.load(Relaxed)
    }
    /// `connection_structures`: the listening sockets and the most connections open at
    /// once, as memcached's structs (one per descriptor, reused) number them.
    pub fn connection_structures(&self) -> u64 {
        self.listener_count() + self.peak_connections.load(Relaxed)
    }
    /// TLS is on: `stats` shows its two lines, counted from now.
    pub fn set_tls(&self) {
        self.tls.store(true, Relaxed);
        self.certs_loaded.store(unix_now(), Relaxed);
    }

    /// A TLS handshake failed (no TLS, a refused certificate, a timeout): an accepted
    /// connection, as memcached counts it, that never became a session.
    pub fn tls_handshake_failed(&self) {
        self.ssl_handshake_errors.fetch_add(1, Relaxed);
        self.total_connections.fetch_add(1, Relaxed);
    }

    /// memcached's `-o ssl_session_cache` with TLS: `stats` shows `ssl_new_sessions`.
    pub fn set_tls_session_cache(&self) {
        self.tls_session_cache.store(true, Relaxed);
    }

    /// OpenSSL negotiated a new (not resumed) session: memcached's new-session callback.
    pub fn tls_new_session(&self) {
        self.ssl_new_sessions.fetch_add(1, Relaxed);
    }

    /// `ssl_new_sessions`, when `stats` shows it (TLS with `ssl_session_cache`).
    pub(crate) fn tls_new_sessions(&self) -> Option<u64> {
        (self.tls.load(Relaxed) && self.tls_session_cache.load(Relaxed))
            .then(|| self.ssl_new_sessions.load(Relaxed))
    }

    /// `refresh_certs` loaded the certificates again.
    pub fn tls_certs_loaded(&self) {
        self.certs_loaded.store(unix_now(), Relaxed);
    }

    /// With TLS: failed handshakes and the unix second the certificates were loaded.
    pub(crate) fn tls_stats(&self) -> Option<(u64, u32)> {
        self.tls.load(Relaxed).then(|| {
            (
                self.ssl_handshake_errors.load(Relaxed),
                self.certs_loaded.load(Relaxed),
            )
        })
    }

    /// Connections refused by the limit (`rejected_connections`).
    pub fn rejected_connections(&self) -> u64 {
        self.rejected_connections.load(Relaxed)
    }
    /// Bytes handed to [`crate::Session::feed`] (`bytes_read`).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Relaxed)
    }
    /// Reply bytes produced (`bytes_written`).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Relaxed)
    }
    /// Whether `shutdown` is honoured (`-A`).
    pub fn shutdown_enabled(&self) -> bool {
        self.shutdown_enabled.load(Relaxed)
    }

    /// Whether this server refuses writes (a read-only replica).
    pub fn read_only(&self) -> bool {
        self.read_only.load(Relaxed)
    }

    /// A replication command (`replicaof ...`, `psync ...`) for the server: the session
    /// stops as for `snapshot` and the server takes the line (single-threaded: before any
    /// other session runs).
    pub(crate) fn set_admin_request(&self, line: &[u8]) {
        *self.admin_request.lock().unwrap() = Some(String::from_utf8_lossy(line).into_owned());
    }

    /// The replication command line the last stopped session left, if any.
    pub fn take_admin_request(&self) -> Option<String> {
        self.admin_request.lock().unwrap().take()
    }

    /// Whether `snapshot` is honoured (persistence is on).
    pub fn snapshot_enabled(&self) -> bool {
        self.snapshot_enabled.load(Relaxed)
    }

    /// Replaces the lines appended to the general `stats` (name, value), e.g. the
    /// persistence figures `rdb_changes_since_last_save`, `rdb_last_save_time`…
    pub fn set_extra_stats(&self, lines: Vec<(String, String)>) {
        *self.extra_stats.lock().unwrap() = lines;
    }

    /// Where `master_repl_offset` and `slave_repl_offset` among the extra lines are read
    /// when they are printed (the server's other replication lines may lag a little).
    pub fn set_live_offset(&self, offset: Option<LiveOffset>) {
        *self.live_offset.write().unwrap() = offset;
    }

    pub(crate) fn extra_stats(&self) -> Vec<(String, String)> {
        let mut lines = self.extra_stats.lock().unwrap().clone();
        if let Some(read) = self.live_offset.read().unwrap().as_ref() {
            // read once: on a replica both lines are the offset applied
            let offset = (read.0)().to_string();
            for (name, value) in &mut lines {
                if name == "master_repl_offset" || name == "slave_repl_offset" {
                    value.clone_from(&offset);
                }
            }
        }
        lines
    }

    pub(crate) fn add_io(&self, read: usize, written: usize) {
        if read > 0 {
            self.bytes_read.fetch_add(read as u64, Relaxed);
        }
        if written > 0 {
            self.bytes_written.fetch_add(written as u64, Relaxed);
        }
    }
    pub(crate) fn count_meta(&self) {
        self.cmd_meta.fetch_add(1, Relaxed);
    }
    /// A storage command refused for a bad data chunk (memcached counts it in `cmd_set`).
    pub(crate) fn count_bad_chunk(&self) {
        self.cmd_set_unstored.fetch_add(1, Relaxed);
    }
    /// A `flush_all` refused (memcached counts it in `cmd_flush`).
    pub(crate) fn count_flush_refused(&self) {
        self.cmd_flush_refused.fetch_add(1, Relaxed);
    }
    /// What `stats` adds to the engine's `cmd_set` and `cmd_flush`.
    pub(crate) fn uncounted_by_engine(&self) -> (u64, u64) {
        (
            self.cmd_set_unstored.load(Relaxed),
            self.cmd_flush_refused.load(Relaxed),
        )
    }
    pub(crate) fn count_too_large(&self) {
        self.store_too_large.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_no_memory(&self) {
        self.store_no_memory.fetch_add(1, Relaxed);
    }
    pub(crate) fn cmd_meta(&self) -> u64 {
        self.cmd_meta.load(Relaxed)
    }
    pub(crate) fn store_too_large(&self) -> u64 {
        self.store_too_large.load(Relaxed)
    }
    pub(crate) fn store_no_memory(&self) -> u64 {
        self.store_no_memory.load(Relaxed)
    }
    /// `stats reset` also zeroes these, as memcached does.
    pub(crate) fn reset(&self) {
        self.total_connections.store(0, Relaxed);
        self.rejected_connections.store(0, Relaxed);
        self.bytes_read.store(0, Relaxed);
        self.bytes_written.store(0, Relaxed);
        self.cmd_meta.store(0, Relaxed);
        self.cmd_set_unstored.store(0, Relaxed);
        self.cmd_flush_refused.store(0, Relaxed);
        self.store_too_large.store(0, Relaxed);
        self.store_no_memory.store(0, Relaxed);
        self.auth_cmds.store(0, Relaxed);
        self.auth_errors.store(0, Relaxed);
        self.ssl_handshake_errors.store(0, Relaxed);
        self.ssl_new_sessions.store(0, Relaxed);
    }
    pub(crate) fn settings(&self) -> Vec<(String, String)> {
        self.settings.lock().unwrap().clone()
    }
    pub(crate) fn listeners(&self) -> Vec<(u64, String)> {
        self.listeners.lock().unwrap().clone()
    }
    /// (id, entry, unix second of its last command) of every open connection.
    pub(crate) fn conns(&self) -> Vec<(u64, ConnEntry, u32)> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|(k, (e, last))| (*k, e.clone(), last.load(Relaxed)))
            .collect()
    }
}

impl ServerInfo {
    /// A `flush_all` (text or binary) with `delay` was done at unix second `now`: keeps
    /// memcached's mark for `stats settings` `oldest`. Its clock counts from 62 s before
    /// the start (`process_started`); a delay over 30 days is a unix time (one up to
    /// `process_started` is relative time 1); the mark is a second before the flush's
    /// time, or the time itself with `-C` (memcached has no CAS then to tell the flush's
    /// own second apart). Measured: `flush_all` 34 s after the start shows `oldest 95`.
    pub(crate) fn note_flush(&self, delay: i64, now: u32) {
        const MAX_DELTA: i64 = 60 * 60 * 24 * 30;
        let process_started = self.started as i64 - 62;
        let current = now as i64 - process_started;
        let new_oldest = if delay <= 0 {
            current
        } else if delay > MAX_DELTA {
            if delay <= process_started {
                1
            } else {
                delay - process_started
            }
        } else {
            delay + current
        };
        let mark = if self.switches.cas() {
            new_oldest - 1
        } else {
            new_oldest
        };
        self.oldest_live.store(mark as u32, Relaxed);
    }

    /// `stats settings` `oldest`: 0 until a `flush_all`.
    pub(crate) fn oldest_live(&self) -> u32 {
        self.oldest_live.load(Relaxed)
    }
}

pub(crate) fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// (user, system) CPU seconds of this process, from /proc on Linux; zeros elsewhere.
pub(crate) fn rusage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ is 100 on every Linux build Node supports.
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (get(11), get(12))
}

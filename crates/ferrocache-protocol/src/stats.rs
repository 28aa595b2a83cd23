//! The `stats` family, with memcached 1.6.18's names in its order. Counters the engine
//! does not have (libevent, response objects, extstore…) print as memcached's idle values.

use crate::info::{rusage, unix_now};
use crate::num::{parse_u32, push_u64};
use crate::session::Session;
use crate::storage::*;
use crate::text::{reply, Tokens};

/// Writes `STAT name value\r\n`.
/// A listener's address in `stats conns`: memcached keeps a Unix socket's `unix:<path>` in
/// a 32-byte buffer, so it shows the first 31 bytes (measured; the clients' `listen_addr`
/// shows the whole path).
fn listener_addr(addr: &str) -> &str {
    if !addr.starts_with("unix:") || addr.len() <= 31 {
        return addr;
    }
    let mut end = 31;
    while !addr.is_char_boundary(end) {
        end -= 1;
    }
    &addr[..end]
}

fn stat(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "STAT {name} {value}\r\n");
}

fn stat_u(out: &mut Vec<u8>, name: &str, v: u64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    push_u64(out, v);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn stats<S: Storage>(s: &mut Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    if t.count() == 2 {
        general(s, out);
        out.extend_from_slice(b"END\r\n");
        return;
    }
    match t.get(1) {
        b"reset" => {
            s.store.reset_stats();
            s.info.reset();
            s.info.detail.clear();
            reply(out, false, b"RESET");
        }
        b"detail" => match t.get(2) {
            b"on" | b"off" => {
                s.info.detail.set_enabled(t.get(2) == b"on");
                reply(out, false, b"OK")
            }
            b"dump" => s.info.detail.dump(out),
            _ => reply(out, false, b"CLIENT_ERROR usage: stats detail on|off|dump"),
        },
        b"settings" => {
            settings_into(s, out);
            out.extend_from_slice(b"END\r\n");
        }
        b"conns" => {
            let now = unix_now();
            let listeners = s.info.listeners();
            // session ids start at 1: past the first listener's id they move up, so the
            // listeners' numbers (0, 1, …) stay their own and come first, as memcached's fds
            let shift = listeners.len().saturating_sub(1) as u64;
            for (id, addr) in listeners {
                stat(out, &format!("{id}:addr"), listener_addr(&addr));
                stat(out, &format!("{id}:state"), "conn_listening");
                stat_u(
                    out,
                    &format!("{id}:secs_since_last_cmd"),
                    now.saturating_sub(s.info.started) as u64,
                );
            }
            for (id, c, last_cmd) in s.info.conns() {
                let id = id + shift;
                // memcached's accept on a Unix socket leaves the peer's address family 0
                let addr = if c.listen_addr.starts_with("unix:") {
                    "?:<AF 0>"
                } else {
                    &c.addr
                };
                stat(out, &format!("{id}:addr"), addr);
                stat(out, &format!("{id}:listen_addr"), &c.listen_addr);
                stat(out, &format!("{id}:state"), "conn_parse_cmd");
                stat_u(
                    out,
                    &format!("{id}:secs_since_last_cmd"),
                    now.saturating_sub(last_cmd) as u64,
                );
            }
            out.extend_from_slice(b"END\r\n");
        }
        b"cachedump" => cachedump(s, t, out),
        // no END: memcached's item_stats_sizes_enable/disable never end their reply
        sub if sizes_switch(s, sub, out) => {}
        sub if sub_into(s, sub, out) => out.extend_from_slice(b"END\r\n"),
        _ => reply(out, false, b"ERROR"),
    }
}

impl<S: Storage> Session<S> {
    /// The `(name, value)` pairs of `stats` (`family` empty) or `stats <family>`
    /// (`settings`, `items`, `slabs`, `sizes`), made by the code that writes the replies but
    /// without counting a request or its bytes: for metrics exporters and status pages.
    /// `None` for a family this does not report.
    pub fn stats_pairs(&self, family: &str) -> Option<Vec<(String, String)>> {
        let mut text = Vec::new();
        match family {
            "" => general(self, &mut text),
            "settings" => settings_into(self, &mut text),
            other if sub_into(self, other.as_bytes(), &mut text) => {}
            _ => return None,
        }
        let text = String::from_utf8_lossy(&text);
        let pairs = text
            .split("\r\n")
            .filter_map(|line| line.strip_prefix("STAT "))
            .map(|body| match body.split_once(' ') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => (body.to_string(), String::new()),
            })
            .collect();
        Some(pairs)
    }
}

/// `stats settings` lines, as the server listed them; the ones admin commands change
/// (`verbosity`, `cache_memlimit`, `slabs automove`, `lru_crawler …`) as they are now.
pub(crate) fn settings_into<S: Storage>(s: &Session<S>, out: &mut Vec<u8>) {
    let now = s.store.admin().map(|a| a.runtime_settings());
    for (k, v) in s.info.settings() {
        match (k.as_str(), now) {
            ("verbosity", _) => {
                let level = s.info.verbosity.load(std::sync::atomic::Ordering::Relaxed);
                stat_u(out, &k, level as u64);
            }
            ("oldest", _) => stat_u(out, &k, s.info.oldest_live() as u64),
            ("maxbytes", Some(r)) => stat_u(out, &k, r.memory_limit as u64),
            ("slab_automove", Some(r)) => stat_u(out, &k, r.slab_automove as u64),
            ("slab_reassign", Some(r)) => stat(out, &k, if r.slab_reassign { "yes" } else { "no" }),
            ("lru_crawler", Some(r)) => stat(out, &k, if r.lru_crawler { "yes" } else { "no" }),
            ("lru_crawler_sleep", Some(r)) => stat_u(out, &k, r.lru_crawler_sleep as u64),
            ("lru_crawler_tocrawl", Some(r)) => stat_u(out, &k, r.lru_crawler_tocrawl as u64),
            // memcached keeps the pcts in ints and prints them signed (4294967295 is -1)
            ("hot_lru_pct", Some(r)) => stat(out, &k, (r.hot_lru_pct as i32).to_string()),
            ("warm_lru_pct", Some(r)) => stat(out, &k, (r.warm_lru_pct as i32).to_string()),
            ("hot_max_factor", Some(r)) => stat(out, &k, c_fixed2(r.hot_max_factor)),
            ("warm_max_factor", Some(r)) => stat(out, &k, c_fixed2(r.warm_max_factor)),
            ("slab_automove_ratio", Some(r)) => stat(out, &k, c_fixed2(r.slab_automove_ratio)),
            ("lru_segmented", Some(r)) => stat(out, &k, if r.lru_segmented { "yes" } else { "no" }),
            ("temp_lru", Some(r)) => stat(out, &k, if r.temp_lru { "yes" } else { "no" }),
            ("temporary_ttl", Some(r)) => stat_u(out, &k, r.temporary_ttl as u64),
            ("detail_enabled", _) => {
                stat(out, &k, if s.info.detail.enabled() { "yes" } else { "no" })
            }
            ("stat_key_prefix", _) => {
                // the raw byte, as memcached's %c (`-D é` is its first byte, 0xc3)
                out.extend_from_slice(b"STAT ");
                out.extend_from_slice(k.as_bytes());
                out.push(b' ');
                out.push(s.info.detail.delimiter());
                out.extend_from_slice(b"\r\n");
            }
            _ => stat(out, &k, v),
        }
    }
}

/// C's `printf("%.2f")`: NaN as `nan` or `-nan` (Rust writes `NaN`).
pub(crate) fn c_fixed2(v: f64) -> String {
    match (v.is_nan(), v.is_sign_negative()) {
        (true, true) => "-nan".to_string(),
        (true, false) => "nan".to_string(),
        _ => format!("{v:.2}"),
    }
}

/// The engine's sub-reports (`items`, `slabs`, `sizes`) without the END line; `false` for
/// a name memcached does not know.
pub(crate) fn sub_into<S: Storage>(s: &Session<S>, name: &[u8], out: &mut Vec<u8>) -> bool {
    match name {
        b"items" => {
            let temp_lru = s
                .store
                .admin()
                .is_some_and(|a| a.runtime_settings().temp_lru);
            items(&s.store.stats(), temp_lru, out)
        }
        b"slabs" => slabs(&s.store.stats(), out),
        // memcached's item_stats_sizes: the non-empty buckets (none: no line at all)
        b"sizes" => match s.store.sizes() {
            Some(buckets) => {
                for (size, n) in buckets {
                    stat_u(out, &size.to_string(), n as u64);
                }
            }
            None => stat(out, "sizes_status", "disabled"),
        },
        // memcached 1.6.18 as Debian builds it has extstore compiled in but unconfigured.
        b"extstore" => {}
        _ => return false,
    }
    true
}

/// `stats sizes_enable` / `sizes_disable` (text and binary): memcached's reply lines, which
/// have no END line (nor a binary terminator packet); `false` for another name, or an
/// engine without the histogram.
pub(crate) fn sizes_switch<S: Storage>(s: &Session<S>, name: &[u8], out: &mut Vec<u8>) -> bool {
    match name {
        b"sizes_enable" if !s.info.switches.cas() => {
            // memcached needs CAS values to tell items stored before apart
            stat(out, "sizes_status", "error");
            stat(out, "sizes_error", "cas_support_disabled");
        }
        b"sizes_enable" if s.store.set_sizes(true, true) => stat(out, "sizes_status", "enabled"),
        b"sizes_disable" if s.store.set_sizes(false, true) => stat(out, "sizes_status", "disabled"),
        _ => return false,
    }
    true
}

/// The general `stats` lines without the END line.
pub(crate) fn general_into<S: Storage>(s: &Session<S>, out: &mut Vec<u8>) {
    general(s, out)
}

fn general<S: Storage>(s: &Session<S>, out: &mut Vec<u8>) {
    let e = s.store.stats();
    let i = &s.info;
    let now = unix_now();
    let (user, sys) = rusage();
    stat_u(out, "pid", i.pid as u64);
    stat_u(out, "uptime", now.saturating_sub(i.started) as u64);
    stat_u(out, "time", now as u64);
    stat(out, "version", &i.version);
    stat(out, "libevent", "none");
    stat_u(out, "pointer_size", usize::BITS as u64);
    stat(out, "rusage_user", format_args!("{user:.6}"));
    stat(out, "rusage_system", format_args!("{sys:.6}"));
    stat_u(
        out,
        "max_connections",
        i.max_connections.load(std::sync::atomic::Ordering::Relaxed),
    );
    stat_u(out, "curr_connections", i.curr_connections());
    stat_u(out, "total_connections", i.total_connections());
    stat_u(out, "rejected_connections", i.rejected_connections());
    stat_u(out, "connection_structures", i.connection_structures());
    for name in [
        "response_obj_oom",
        "response_obj_count",
        "response_obj_bytes",
    ] {
        stat_u(out, name, 0);
    }
    // ferrocache's read buffers: the partial requests sessions hold (ServerInfo::inflight)
    let (inflight, refused) = i.inflight();
    stat_u(out, "read_buf_count", 0);
    stat_u(out, "read_buf_bytes", inflight);
    stat_u(out, "read_buf_bytes_free", 0);
    stat_u(out, "read_buf_oom", refused);
    stat_u(out, "reserved_fds", 0);
    let touch = e.cmd_touch;
    let (sets_unstored, flushes_refused) = i.uncounted_by_engine();
    let pairs: [(&str, u64); 24] = [
        ("cmd_get", e.cmd_get),
        ("cmd_set", e.cmd_set + sets_unstored),
        ("cmd_flush", e.cmd_flush + flushes_refused),
        ("cmd_touch", touch),
        ("cmd_meta", i.cmd_meta()),
        ("get_hits", e.get_hits),
        ("get_misses", e.get_misses),
        ("get_expired", e.get_expired),
        ("get_flushed", e.get_flushed),
        ("delete_misses", e.delete_misses),
        ("delete_hits", e.delete_hits),
        ("incr_misses", e.incr_misses),
        ("incr_hits", e.incr_hits),
        ("decr_misses", e.decr_misses),
        ("decr_hits", e.decr_hits),
        ("cas_misses", e.cas_misses),
        ("cas_hits", e.cas_hits),
        ("cas_badval", e.cas_badval),
        ("touch_hits", e.touch_hits),
        ("touch_misses", e.touch_misses),
        ("store_too_large", i.store_too_large()),
        ("store_no_memory", i.store_no_memory()),
        ("auth_cmds", i.auth_counts().0),
        ("auth_errors", i.auth_counts().1),
    ];
    for (k, v) in pairs {
        stat_u(out, k, v);
    }
    stat_u(out, "bytes_read", i.bytes_read());
    stat_u(out, "bytes_written", i.bytes_written());
    stat_u(out, "limit_maxbytes", e.limit_maxbytes);
    stat_u(out, "accepting_conns", 1);
    stat_u(out, "listen_disabled_num", 0);
    stat_u(out, "time_in_listen_disabled_us", 0);
    stat_u(
        out,
        "threads",
        i.threads.load(std::sync::atomic::Ordering::Relaxed) as u64,
    );
    stat_u(out, "conn_yields", 0);
    stat_u(out, "hash_power_level", e.hash_power_level as u64);
    stat_u(out, "hash_bytes", e.hash_bytes);
    stat_u(out, "hash_is_expanding", e.hash_is_expanding as u64);
    // the mover relocates or evicts at once (no chunked items, no busy ones, never running
    // between two commands)
    let reassign: [(&str, u64); 7] = [
        ("slab_reassign_rescues", e.slab_reassign_rescues),
        ("slab_reassign_chunk_rescues", 0),
        (
            "slab_reassign_evictions_nomem",
            e.slab_reassign_evictions_nomem,
        ),
        ("slab_reassign_inline_reclaim", 0),
        ("slab_reassign_busy_items", 0),
        ("slab_reassign_busy_deletes", 0),
        ("slab_reassign_running", 0),
    ];
    // memcached lists these only with slab_reassign (not under `-o no_slab_reassign`)
    if s.store
        .admin()
        .is_none_or(|a| a.runtime_settings().slab_reassign)
    {
        for (k, v) in reassign {
            stat_u(out, k, v);
        }
        stat_u(out, "slabs_moved", e.slabs_moved);
    }
    // memcached lists these two only while its crawler is enabled
    if s.store
        .admin()
        .is_none_or(|a| a.runtime_settings().lru_crawler)
    {
        stat_u(out, "lru_crawler_running", e.lru_crawler_running as u64);
        stat_u(out, "lru_crawler_starts", e.lru_crawler_starts);
    }
    stat_u(out, "lru_maintainer_juggles", e.lru_maintainer_juggles);
    stat_u(out, "malloc_fails", 0);
    let log = i.watch.stats();
    stat_u(out, "log_worker_dropped", log.worker_dropped);
    stat_u(out, "log_worker_written", log.worker_written);
    stat_u(out, "log_watcher_skipped", log.watcher_skipped);
    stat_u(out, "log_watcher_sent", log.watcher_sent);
    stat_u(out, "log_watchers", log.watchers);
    if let Some(n) = i.tls_new_sessions() {
        stat_u(out, "ssl_new_sessions", n);
    }
    if let Some((errors, loaded)) = i.tls_stats() {
        stat_u(out, "ssl_handshake_errors", errors);
        stat_u(
            out,
            "time_since_server_cert_refresh",
            now.saturating_sub(loaded) as u64,
        );
    }
    stat_u(out, "unexpected_napi_ids", 0);
    stat_u(out, "round_robin_fallback", 0);
    stat_u(out, "bytes", e.bytes);
    stat_u(out, "curr_items", e.curr_items);
    stat_u(out, "total_items", e.total_items);
    stat_u(out, "slab_global_page_pool", e.slab_global_page_pool);
    stat_u(out, "expired_unfetched", e.expired_unfetched);
    stat_u(out, "evicted_unfetched", e.evicted_unfetched);
    stat_u(out, "evicted_active", 0);
    stat_u(out, "evictions", e.evictions);
    stat_u(out, "reclaimed", e.reclaimed);
    stat_u(out, "crawler_reclaimed", e.crawler_reclaimed);
    stat_u(out, "crawler_items_checked", e.crawler_items_checked);
    stat_u(out, "lrutail_reflocked", 0);
    let (mut cold, mut warm, mut within) = (0, 0, 0);
    for c in &e.classes {
        cold += c.moves_to_cold;
        warm += c.moves_to_warm;
        within += c.moves_within_lru;
    }
    stat_u(out, "moves_to_cold", cold);
    stat_u(out, "moves_to_warm", warm);
    stat_u(out, "moves_within_lru", within);
    stat_u(out, "direct_reclaims", 0);
    stat_u(out, "lru_bumps_dropped", 0);
    for (k, v) in i.extra_stats() {
        stat(out, &k, &v);
    }
}

/// `stats items`: one block per class holding items (`number_temp` while the TEMP LRU is
/// on, as memcached).
fn items(e: &Stats, temp_lru: bool, out: &mut Vec<u8>) {
    for c in e.classes.iter().filter(|c| c.number > 0) {
        let id = c.id;
        let rows: [(&str, u64); 28] = [
            ("number", c.number),
            ("number_hot", c.number_hot),
            ("number_warm", c.number_warm),
            ("number_cold", c.number_cold),
            ("age_hot", c.age_hot as u64),
            ("age_warm", c.age_warm as u64),
            ("age", c.age as u64),
            ("mem_requested", c.mem_requested),
            ("evicted", c.evicted),
            ("evicted_nonzero", c.evicted_nonzero),
            ("evicted_time", c.evicted_time as u64),
            ("outofmemory", c.outofmemory),
            ("tailrepairs", 0),
            ("reclaimed", c.reclaimed),
            ("expired_unfetched", c.expired_unfetched),
            ("evicted_unfetched", c.evicted_unfetched),
            ("evicted_active", 0),
            ("crawler_reclaimed", c.crawler_reclaimed),
            ("crawler_items_checked", c.crawler_items_checked),
            ("lrutail_reflocked", 0),
            ("moves_to_cold", c.moves_to_cold),
            ("moves_to_warm", c.moves_to_warm),
            ("moves_within_lru", c.moves_within_lru),
            ("direct_reclaims", 0),
            ("hits_to_hot", 0),
            ("hits_to_warm", 0),
            ("hits_to_cold", 0),
            ("hits_to_temp", 0),
        ];
        for (i, (k, v)) in rows.into_iter().enumerate() {
            stat_u(out, &format!("items:{id}:{k}"), v);
            if i == 3 && temp_lru {
                stat_u(out, &format!("items:{id}:number_temp"), c.number_temp);
            }
        }
    }
}

/// `stats slabs`: one block per class with pages, then the totals.
fn slabs(e: &Stats, out: &mut Vec<u8>) {
    let mut active = 0;
    for c in e.classes.iter().filter(|c| c.total_pages > 0) {
        active += 1;
        let id = c.id;
        let rows: [(&str, u64); 15] = [
            ("chunk_size", c.chunk_size as u64),
            ("chunks_per_page", c.chunks_per_page as u64),
            ("total_pages", c.total_pages),
            ("total_chunks", c.total_chunks),
            ("used_chunks", c.used_chunks),
            ("free_chunks", c.free_chunks),
            ("free_chunks_end", 0),
            ("get_hits", c.get_hits),
            ("cmd_set", c.cmd_set),
            ("delete_hits", c.delete_hits),
            ("incr_hits", c.incr_hits),
            ("decr_hits", c.decr_hits),
            ("cas_hits", c.cas_hits),
            ("cas_badval", c.cas_badval),
            ("touch_hits", c.touch_hits),
        ];
        for (k, v) in rows {
            stat_u(out, &format!("{id}:{k}"), v);
        }
    }
    stat_u(out, "active_slabs", active);
    stat_u(out, "total_malloced", e.total_malloced);
}

/// memcached's cap on a dump reply.
const DUMP_LIMIT: usize = 2 << 20;

/// The shortest cachedump line (`ITEM k [0 b; 0 s]\r\n`): no more items fit [`DUMP_LIMIT`].
const DUMP_LINE_MIN: usize = 19;

/// `stats cachedump <class> <limit>` (limit 0 = all): as memcached 1.6, the items of the
/// class's COLD LRU segment, newest first, without base64-keyed ones, in at most 2 MiB.
fn cachedump<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    if !s.info.switches.dump_on() {
        // `-X`
        return reply(out, false, b"CLIENT_ERROR stats cachedump not allowed");
    }
    if t.count() < 5 {
        return reply(out, false, b"CLIENT_ERROR bad command line");
    }
    let (Some(id), Some(limit)) = (parse_u32(t.get(2)), parse_u32(t.get(3))) else {
        return reply(out, false, b"CLIENT_ERROR bad command line format");
    };
    if id >= 64 {
        return reply(out, false, b"CLIENT_ERROR Illegal slab id");
    }
    let fit = DUMP_LIMIT / DUMP_LINE_MIN + 1;
    let max = if limit == 0 {
        fit
    } else {
        (limit as usize).min(fit)
    };
    let start = out.len();
    s.store.visit_cold(id, max, |it| {
        let line_start = out.len();
        out.extend_from_slice(b"ITEM ");
        out.extend_from_slice(it.key);
        out.extend_from_slice(b" [");
        push_u64(out, it.value.len() as u64);
        out.extend_from_slice(b" b; ");
        push_u64(out, it.exptime as u64);
        out.extend_from_slice(b" s]\r\n");
        // memcached stops before the line that would not leave room for END\r\n\0
        if out.len() - start + 6 > DUMP_LIMIT {
            out.truncate(line_start);
            return false;
        }
        true
    });
    out.extend_from_slice(b"END\r\n");
}

/// Items a metadump walks between checks of the reply budget (a line is at most about
/// 850 bytes: a 250-byte key percent-encoded, then the fields).
const DUMP_BATCH: usize = 256;

/// `lru_crawler metadump`'s lines for the items of the marked classes (memcached's ids,
/// parsed in `admin.rs`) from `cursor` on: one line per item, memcached's format, then
/// `END`. The walk goes in short steps (one shard lock hold each) and stops once the
/// replies of this feed pass the session's budget: then it returns false and the session
/// keeps the cursor, so a dump of millions of items is built a budget at a time as the
/// client reads it (memcached's crawler writes it out through a small buffer).
pub(crate) fn metadump<S: Storage>(
    s: &mut Session<S>,
    classes: Box<[bool; 64]>,
    mut cursor: VisitCursor,
    out: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    loop {
        let done = metadump_lines(s, &classes, &mut cursor, out);
        if done {
            out.extend_from_slice(b"END\r\n");
            return true;
        }
        if out.len() > start && s.over_budget(out) {
            s.dump_resume = Some((classes, cursor));
            return false;
        }
    }
}

/// One step of [`metadump`]: the lines of about DUMP_BATCH items; true once the walk is done.
fn metadump_lines<S: Storage>(
    s: &Session<S>,
    classes: &[bool; 64],
    cursor: &mut VisitCursor,
    out: &mut Vec<u8>,
) -> bool {
    let now = s.store.now() as u64;
    s.store.visit_batch(cursor, DUMP_BATCH, |it| {
        let size = s.store.item_size(it.key.len(), it.value.len(), it.flags);
        let cls = s.store.slab_class(size);
        if !classes[cls as usize % 64] {
            return;
        }
        out.extend_from_slice(b"key=");
        for &b in it.key {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b);
            } else {
                let hex = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'%', hex[(b >> 4) as usize], hex[(b & 15) as usize]]);
            }
        }
        out.extend_from_slice(b" exp=");
        if it.exptime == 0 {
            out.extend_from_slice(b"-1");
        } else {
            push_u64(out, it.exptime as u64);
        }
        out.extend_from_slice(b" la=");
        push_u64(out, now.saturating_sub(it.last_access_secs as u64));
        out.extend_from_slice(b" cas=");
        push_u64(out, s.info.switches.cas_out(it.cas));
        out.extend_from_slice(if it.fetched_before {
            b" fetch=yes cls="
        } else {
            b" fetch=no cls="
        });
        push_u64(out, cls as u64);
        out.extend_from_slice(b" size=");
        push_u64(out, size as u64);
        out.push(b'\n');
    })
}

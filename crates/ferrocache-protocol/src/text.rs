//! memcached's classic text protocol: request lines split on spaces, replies as memcached
//! 1.6.18 words them (see `docs/protocol.md` for the edge cases measured against it).
//!
//! Meta commands (`mg`, `ms`…) share this line parser and are handed to [`crate::meta`].

use memchr::memchr;

use crate::num::{parse_i32, parse_u32, parse_u64, push_u64};
use crate::session::{Session, Step};
use crate::storage::*;

/// memcached's `KEY_MAX_LENGTH`.
pub(crate) const KEY_MAX: usize = 250;
/// memcached's `MAX_TOKENS`: at most this many tokens including the terminal one.
pub(crate) const MAX_TOKENS: usize = 24;
const MAX_VERBOSITY: u32 = 2;

/// A request line split on spaces, as memcached's `tokenize_command`: at most 23 tokens
/// (whatever follows stays unsplit; only multigets look at it, by splitting the line).
pub(crate) struct Tokens<'a> {
    t: [&'a [u8]; MAX_TOKENS - 1],
    pub n: usize,
}

impl<'a> Tokens<'a> {
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t: [&[u8]; MAX_TOKENS - 1] = [&[]; MAX_TOKENS - 1];
        let mut n = 0;
        let mut s = 0;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b' ' {
                if s != i {
                    t[n] = &line[s..i];
                    n += 1;
                    if n == MAX_TOKENS - 1 {
                        s = line.len();
                        break;
                    }
                }
                s = i + 1;
            }
            i += 1;
        }
        if s < line.len() {
            t[n] = &line[s..];
            n += 1;
        }
        Tokens { t, n }
    }

    /// memcached's `ntokens`: real tokens plus the terminal one.
    #[inline]
    pub fn count(&self) -> usize {
        self.n + 1
    }

    /// Token `i`, empty past the end (memcached's terminal token has length 0).
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.t[i]
        } else {
            &[]
        }
    }

    /// memcached's `set_noreply_maybe`: the last token is exactly `noreply`.
    pub fn noreply(&self) -> bool {
        self.n >= 1 && self.t[self.n - 1] == b"noreply"
    }
}

/// Appends `msg` + CRLF unless the request asked for no reply.
#[inline]
pub(crate) fn reply(out: &mut Vec<u8>, noreply: bool, msg: &[u8]) {
    if !noreply {
        out.extend_from_slice(msg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Handles the first text request in `data`.
pub(crate) fn step<S: Storage>(s: &mut Session<S>, data: &[u8], out: &mut Vec<u8>) -> Step {
    let Some(nl) = memchr(b'\n', data) else {
        return incomplete_line(s, data);
    };
    let line_end = nl + 1;
    // memcached strips a '\r' only when the line has at least one other byte.
    let mut line = if nl > 1 && data[nl - 1] == b'\r' {
        &data[..nl - 1]
    } else {
        &data[..nl]
    };
    // memcached works on C strings: a NUL ends the command.
    if let Some(z) = memchr(0, line) {
        line = &line[..z];
    }
    let t = Tokens::new(line);
    if t.n == 0 || t.get(0).len() < 2 {
        reply(out, false, b"ERROR");
        return Step::Done(line_end);
    }
    let write = match refuse_write(s, &t, line_end, out) {
        Err(step) => return step,
        Ok(write) => write,
    };
    let mark = out.len();
    let step = run(s, &t, data, line, line_end, out);
    if write && matches!(step, Step::Done(_)) && s.swallow == 0 {
        unlogged_write(s, &t, mark, out);
    }
    step
}

/// Runs the request on `line` (its tokens `t`) once no refusal applies.
fn run<S: Storage>(
    s: &mut Session<S>,
    t: &Tokens<'_>,
    data: &[u8],
    line: &[u8],
    line_end: usize,
    out: &mut Vec<u8>,
) -> Step {
    let cmd = t.get(0);
    if cmd.len() == 2 && cmd[0] == b'm' {
        return crate::meta::dispatch(s, t, data, line_end, out);
    }
    let ntok = t.count();
    let bad_count = |min: usize, max: usize| ntok < min || ntok > max;
    macro_rules! want {
        ($min:expr, $max:expr) => {
            if bad_count($min, $max) {
                reply(out, false, b"ERROR");
                return Step::Done(line_end);
            }
        };
    }
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => {
            want!(3, usize::MAX);
            let cas = cmd == b"gets" || cmd == b"gats";
            let touch = cmd == b"gat" || cmd == b"gats";
            if get(s, line, touch, cas, out) {
                Step::Done(line_end)
            } else {
                Step::Yield
            }
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" => {
            want!(6, 7);
            let mode = match cmd {
                b"set" => StoreMode::Set,
                b"add" => StoreMode::Add,
                b"replace" => StoreMode::Replace,
                b"append" => StoreMode::Append,
                _ => StoreMode::Prepend,
            };
            update(s, t, data, line_end, mode, false, out)
        }
        b"cas" => {
            want!(7, 8);
            update(s, t, data, line_end, StoreMode::Set, true, out)
        }
        b"incr" | b"decr" => {
            want!(4, 5);
            arith(s, t, cmd == b"incr", out);
            Step::Done(line_end)
        }
        b"delete" => {
            want!(3, 5);
            delete(s, t, out);
            Step::Done(line_end)
        }
        b"touch" => {
            want!(4, 5);
            touch(s, t, out);
            Step::Done(line_end)
        }
        b"stats" => {
            crate::stats::stats(s, t, out);
            Step::Done(line_end)
        }
        b"flush_all" => {
            want!(2, 4);
            flush_all(s, t, out);
            Step::Done(line_end)
        }
        b"version" => {
            out.extend_from_slice(b"VERSION ");
            out.extend_from_slice(s.info.version.as_bytes());
            out.extend_from_slice(b"\r\n");
            Step::Done(line_end)
        }
        b"verbosity" => {
            want!(3, 4);
            let noreply = t.noreply();
            match parse_u32(t.get(1)) {
                Some(level) => {
                    s.info.verbosity.store(
                        level.min(MAX_VERBOSITY),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    reply(out, noreply, b"OK");
                }
                None => reply(out, noreply, b"CLIENT_ERROR bad command line format"),
            }
            Step::Done(line_end)
        }
        b"lru_crawler" => {
            if crate::admin::lru_crawler(s, t, out) {
                Step::Done(line_end)
            } else {
                Step::Yield
            }
        }
        b"slabs" => {
            crate::admin::slabs(s, t, out);
            Step::Done(line_end)
        }
        b"lru" => {
            want!(3, usize::MAX);
            crate::admin::lru(s, t, out);
            Step::Done(line_end)
        }
        b"extstore" => {
            crate::admin::extstore(s, t, out);
            Step::Done(line_end)
        }
        b"cache_memlimit" => {
            want!(3, 4);
            crate::admin::cache_memlimit(s, t, out);
            Step::Done(line_end)
        }
        b"quit" => {
            s.close_quit = true;
            Step::Close(line_end)
        }
        b"watch" => {
            watch(s, t, out);
            Step::Done(line_end)
        }
        // ferrocache's admin command: write a snapshot now, reply once it is durable
        b"snapshot" if ntok == 2 => {
            if s.info.snapshot_enabled() {
                Step::Snapshot(line_end)
            } else {
                reply(out, false, b"ERROR: snapshot needs --data-dir");
                Step::Done(line_end)
            }
        }
        // replication (docs/replication.md): `replicaof host port` / `replicaof no one`, and
        // `psync replid offset` from a replica; the server acts on them like on `snapshot`
        b"replicaof" | b"psync" if ntok == 4 => {
            s.info.set_admin_request(line);
            Step::Snapshot(line_end)
        }
        // memcached's TLS certificate reload: the server rereads the files (src/server/tls.ts)
        b"refresh_certs" => {
            s.info.set_admin_request(line);
            Step::Snapshot(line_end)
        }
        b"shutdown" => {
            if !s.info.shutdown_enabled() {
                reply(out, false, b"ERROR: shutdown not enabled");
                Step::Done(line_end)
            } else if ntok == 2 || (ntok == 3 && t.get(1) == b"graceful") {
                // memcached closes the connection at once: the replies of this read it had
                // not written out yet are lost (`version\r\nshutdown` answers nothing)
                out.truncate(s.sent);
                Step::Shutdown(line_end)
            } else {
                reply(out, false, b"CLIENT_ERROR invalid shutdown mode");
                Step::Done(line_end)
            }
        }
        // memcached's guard against HTTP sent to the cache port: an unknown command whose
        // last token starts with "HTTP/" (`GET / HTTP/1.1`) is hung up on.
        _ if !b"gsacidt".contains(&cmd[0]) && t.get(t.n - 1).starts_with(b"HTTP/") => Step::Abort,
        _ => {
            reply(out, false, b"ERROR");
            Step::Done(line_end)
        }
    }
}

/// Redis's rule for its log: a write the log cannot keep is refused, not acknowledged.
const LOG_FAILED: &[u8] = b"SERVER_ERROR append-only log write failed; writes refused";

/// The answer (`Err`) to a write (classic or meta) that a read-only replica, or an
/// append-only log that cannot write, refuses; `Ok(true)` for a write that goes ahead,
/// `Ok(false)` for anything else (and for malformed lines, which get their usual error). A
/// refused storage command's data block is skipped unread.
fn refuse_write<S: Storage>(
    s: &mut Session<S>,
    t: &Tokens<'_>,
    line_end: usize,
    out: &mut Vec<u8>,
) -> Result<bool, Step> {
    const READ_ONLY: &[u8] = b"SERVER_ERROR replica is read-only";
    let Some(data_len) = write_data_len(t) else {
        return Ok(false);
    };
    // only now, for writes: the log check takes a lock
    let msg = if s.info.read_only() {
        READ_ONLY
    } else if !s.store.accepting_writes() {
        LOG_FAILED
    } else {
        return Ok(true);
    };
    if let Some(n) = data_len {
        if !(0..=i32::MAX - 2).contains(&n) {
            return Ok(false);
        }
        s.swallow = n as usize + 2;
    }
    let meta = t.get(0).len() == 2;
    reply(out, !meta && t.noreply(), msg);
    Err(Step::Done(line_end))
}

/// For a well-formed write: the length of its data block, if it has one (`None` for
/// anything that is not a write, and for malformed lines).
fn write_data_len(t: &Tokens<'_>) -> Option<Option<i32>> {
    let ntok = t.count();
    Some(match t.get(0) {
        b"set" | b"add" | b"replace" | b"append" | b"prepend" if (6..=7).contains(&ntok) => {
            Some(parse_i32(t.get(4))?)
        }
        b"cas" if (7..=8).contains(&ntok) => Some(parse_i32(t.get(4))?),
        b"ms" if ntok >= 4 => Some(parse_i32(t.get(2))?),
        b"incr" | b"decr" if (4..=5).contains(&ntok) => None,
        b"delete" if (3..=5).contains(&ntok) => None,
        b"touch" if (4..=5).contains(&ntok) => None,
        b"flush_all" if (2..=4).contains(&ntok) => None,
        b"md" | b"ma" if ntok >= 3 => None,
        _ => return None,
    })
}

/// After a write went ahead: when its own log record failed (the log stopped accepting
/// during it), its reply since `mark` becomes the refusal, so a change the log may not keep
/// is never acknowledged (it is in memory, and its record is retried by the next write).
fn unlogged_write<S: Storage>(s: &Session<S>, t: &Tokens<'_>, mark: usize, out: &mut Vec<u8>) {
    if s.store.accepting_writes() {
        return;
    }
    out.truncate(mark);
    let meta = t.get(0).len() == 2;
    reply(out, !meta && t.noreply(), LOG_FAILED);
}

/// No newline yet. memcached tolerates long lines only for multigets; anything else past
/// 2048 bytes is junk and the connection is closed.
fn incomplete_line<S: Storage>(s: &Session<S>, data: &[u8]) -> Step {
    if data.len() <= s.limits.max_line {
        return Step::More;
    }
    let spaces = data.iter().take_while(|&&b| b == b' ').count();
    let rest = &data[spaces..];
    let is_get = rest.starts_with(b"get ") || rest.starts_with(b"gets ");
    if spaces > 100 || !is_get || data.len() > s.limits.max_get_line {
        return Step::Abort;
    }
    Step::More
}

/// get / gets / gat / gats over every key of the line (memcached re-tokenizes past 24
/// tokens; splitting the whole line on spaces gives the same keys). Returns false when
/// the replies reached the session's budget with keys left: `s.get_resume` says where the
/// next feed goes on (END comes at the very end), so one line naming a big item many
/// times cannot make us build its whole reply at once.
fn get<S: Storage>(
    s: &mut Session<S>,
    line: &[u8],
    touch: bool,
    cas: bool,
    out: &mut Vec<u8>,
) -> bool {
    let resume = s.get_resume.take();
    let mut words = line
        .split(|&b| b == b' ')
        .map(|w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
        .filter(|(_, w)| !w.is_empty());
    words.next(); // the command
    let mut opts = GetOptions::default();
    if touch {
        match words.next().and_then(|(_, w)| parse_i32(w)) {
            // a read-only replica serves gat as a get: a new TTL there would outlive the
            // primary's expiry, which is never streamed (docs/replication.md)
            Some(exp) => opts.touch = Some(exp as i64).filter(|_| !s.info.read_only()),
            None => {
                reply(out, false, b"CLIENT_ERROR invalid exptime argument");
                return true;
            }
        }
    }
    let start = out.len();
    let mut served = 0;
    let watching = s.info.watch.wants(crate::watch::FETCHERS);
    for (at, key) in words {
        if resume.is_some_and(|r| at < r) {
            continue; // sent by an earlier feed
        }
        if key.len() > KEY_MAX {
            // memcached culls every reply it has not written out yet (conn_release_items):
            // this command's values and those of the requests before it since its last
            // write-out point; what an earlier feed sent is gone already.
            out.truncate(s.sent.min(start));
            s.cull_messages(out.len());
            reply(out, false, b"CLIENT_ERROR bad command line format");
            return true;
        }
        if served > 0 && s.over_budget(out) {
            s.get_resume = Some(at);
            return false;
        }
        if served > 0 || resume.is_some() {
            // each key is a response object of its own (UDP); `END` goes on the last's
            s.end_object(out.len(), true);
        }
        served += 1;
        let miss = crate::watch::miss(&s.store, key, watching);
        let seen = s.store.get(key, &opts, |it| {
            out.reserve(it.key.len() + it.value.len() + 64);
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(it.key);
            out.push(b' ');
            push_u64(out, it.flags as u64);
            out.push(b' ');
            push_u64(out, it.value.len() as u64);
            if cas {
                out.push(b' ');
                push_u64(out, s.info.switches.cas_out(it.cas));
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(it.value);
            out.extend_from_slice(b"\r\n");
            watching.then(|| crate::watch::found(&s.store, it))
        });
        s.info.detail.record_get(key, seen.is_some());
        if watching {
            let seen = seen.flatten().unwrap_or(miss);
            s.info.watch.item_get(key, seen, s.cfd);
        }
    }
    // memcached writes a get's replies out at once (conn_mwrite), but only after its END:
    // a get refused for a bad exptime or a long key is no write-out point.
    s.flush = true;
    out.extend_from_slice(b"END\r\n");
    true
}

/// set / add / replace / append / prepend / cas: validates the line, then waits for the
/// whole value before storing it.
fn update<S: Storage>(
    s: &mut Session<S>,
    t: &Tokens<'_>,
    data: &[u8],
    line_end: usize,
    mode: StoreMode,
    with_cas: bool,
    out: &mut Vec<u8>,
) -> Step {
    let noreply = t.noreply();
    let key = t.get(1);
    let bad = |out: &mut Vec<u8>| {
        reply(out, noreply, b"CLIENT_ERROR bad command line format");
        Step::Done(line_end)
    };
    if key.len() > KEY_MAX {
        return bad(out);
    }
    let (Some(flags), Some(exptime), Some(vlen)) = (
        parse_u32(t.get(2)),
        parse_i32(t.get(3)),
        parse_i32(t.get(4)),
    ) else {
        return bad(out);
    };
    let mut cas = None;
    if with_cas {
        match parse_u64(t.get(5)) {
            Some(c) => cas = s.info.switches.cas_in(Some(c)),
            None => return bad(out),
        }
    }
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return bad(out);
    }
    let vlen = vlen as usize;
    if !s.store.item_fits(key.len(), vlen, flags) {
        s.info.count_too_large();
        // memcached answers after the value has been swallowed
        reply(
            &mut s.after_swallow,
            noreply,
            b"SERVER_ERROR object too large for cache",
        );
        crate::watch::log_too_large(&s.info.watch, key, mode, with_cas, s.cfd);
        if mode == StoreMode::Set && !with_cas {
            // memcached unlinks the old value so a failed set never leaves stale data
            // (not for `cas`, measured: the item stays)
            crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
            s.store.unlink_refused(key);
        }
        s.swallow = vlen + 2;
        s.info.detail.record_set(key);
        return Step::Done(line_end);
    }
    let end = line_end + vlen + 2;
    // memcached counts it when it reads the line, before the value: a bad data chunk too,
    // and a value that never comes (once, however many reads the value takes)
    if !std::mem::replace(&mut s.set_recorded, true) {
        s.info.detail.record_set(key);
    }
    if data.len() < end {
        return Step::More;
    }
    if &data[line_end + vlen..end] != b"\r\n" {
        s.info.count_bad_chunk();
        reply(out, noreply, b"CLIENT_ERROR bad data chunk");
        return Step::Done(end);
    }
    let req = StoreRequest {
        mode,
        key,
        value: &data[line_end..line_end + vlen],
        flags,
        exptime: exptime as i64,
        cas,
        invalidate: false,
        new_cas: None,
        vivify: None,
    };
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    let outcome = s.store.store(&req);
    if let Ok(o) = &outcome {
        let request = (vlen, flags, exptime as i64);
        let (store, w) = (&s.store, &s.info.watch);
        crate::watch::log_store(store, w, key, mode, with_cas, o.status, request, s.cfd);
    }
    let msg: &[u8] = match outcome {
        Ok(o) => match o.status {
            StoreStatus::Stored => b"STORED",
            StoreStatus::NotStored => b"NOT_STORED",
            StoreStatus::Exists => b"EXISTS",
            StoreStatus::NotFound => b"NOT_FOUND",
        },
        Err(StoreError::OutOfMemory) if s.store.chunked(key.len(), vlen, flags) => {
            OUT_OF_MEMORY_DURING_READ
        }
        Err(e) => {
            if e == StoreError::OutOfMemory && mode == StoreMode::Set && !with_cas {
                // As for an oversized value: a failed set must not leave the old one (not
                // `cas`: memcached unlinks only for NREAD_SET, measured with -M).
                s.store.unlink_refused(key);
            }
            store_error(s, e)
        }
    };
    reply(out, noreply, msg);
    Step::Done(end)
}

/// memcached's reply when memory for an item it chunks runs out: it allocates the chunks as
/// the value is read (after the command counted nothing: no `store_no_memory`, no
/// `cmd_set`), and a `set` leaves the old value (measured with `-M`: text, meta and
/// binary, `noreply` and meta `q` hide it).
pub(crate) const OUT_OF_MEMORY_DURING_READ: &[u8] = b"SERVER_ERROR Out of memory during read";

/// memcached's words for a failed store (also counts the stat it keeps).
pub(crate) fn store_error<S: Storage>(s: &Session<S>, e: StoreError) -> &'static [u8] {
    match e {
        StoreError::TooLarge => {
            s.info.count_too_large();
            b"SERVER_ERROR object too large for cache"
        }
        StoreError::OutOfMemory => {
            s.info.count_no_memory();
            b"SERVER_ERROR out of memory storing object"
        }
        StoreError::BadKey => b"CLIENT_ERROR bad command line format",
        StoreError::NonNumeric => b"CLIENT_ERROR cannot increment or decrement non-numeric value",
    }
}

fn arith<S: Storage>(s: &Session<S>, t: &Tokens<'_>, incr: bool, out: &mut Vec<u8>) {
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX {
        return reply(out, noreply, b"CLIENT_ERROR bad command line format");
    }
    let Some(delta) = parse_u64(t.get(2)) else {
        return reply(out, noreply, b"CLIENT_ERROR invalid numeric delta argument");
    };
    let req = ArithRequest {
        key,
        incr,
        delta,
        cas: None,
        vivify: None,
        touch: None,
        new_cas: None,
    };
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    match s.store.arith(&req) {
        Ok(ArithStatus::Ok { value, .. }) => {
            if !noreply {
                push_u64(out, value);
                out.extend_from_slice(b"\r\n");
            }
        }
        Ok(ArithStatus::NotFound) => reply(out, noreply, b"NOT_FOUND"),
        Ok(ArithStatus::Exists) => {}
        Err(StoreError::OutOfMemory) => reply(out, noreply, b"SERVER_ERROR out of memory"),
        Err(e) => reply(out, noreply, store_error(s, e)),
    }
}

fn delete<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let mut noreply = false;
    if t.count() > 3 {
        let hold_is_zero = t.get(2) == b"0";
        noreply = t.noreply();
        let valid = (t.count() == 4 && (hold_is_zero || noreply))
            || (t.count() == 5 && hold_is_zero && noreply);
        if !valid {
            return reply(
                out,
                noreply,
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            );
        }
    }
    let key = t.get(1);
    if key.len() > KEY_MAX {
        return reply(out, noreply, b"CLIENT_ERROR bad command line format");
    }
    s.info.detail.record_delete(key);
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    let msg: &[u8] = match s.store.delete(&DeleteRequest {
        key,
        ..Default::default()
    }) {
        DeleteStatus::Deleted => b"DELETED",
        _ => b"NOT_FOUND",
    };
    reply(out, noreply, msg);
}

fn touch<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX {
        return reply(out, noreply, b"CLIENT_ERROR bad command line format");
    }
    let Some(exp) = parse_i32(t.get(2)) else {
        return reply(out, noreply, b"CLIENT_ERROR invalid exptime argument");
    };
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    let msg: &[u8] = if s.store.touch(key, exp as i64) {
        b"TOUCHED"
    } else {
        b"NOT_FOUND"
    };
    reply(out, noreply, msg);
}

fn flush_all<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let noreply = t.noreply();
    if !s.info.switches.flush_on() {
        // `-F` (measured: before the delay is read; noreply silences it)
        s.info.count_flush_refused();
        return reply(out, noreply, b"CLIENT_ERROR flush_all not allowed");
    }
    let mut delay = 0i32;
    if t.count() != if noreply { 3 } else { 2 } {
        match parse_i32(t.get(1)) {
            Some(d) => delay = d,
            None => {
                s.info.count_flush_refused();
                return reply(out, noreply, b"CLIENT_ERROR invalid exptime argument");
            }
        }
    }
    // memcached treats a negative delay as none.
    s.store.flush_all(delay.max(0) as i64);
    s.info.note_flush(delay as i64, crate::info::unix_now());
    reply(out, noreply, b"OK");
}

/// `watch [filters]`: the connection becomes a watcher of the log stream
/// ([`crate::watch`]); its `OK` is the first thing in its stream.
fn watch<S: Storage>(s: &mut Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let noreply = t.noreply();
    if !s.info.switches.watch_on() {
        // `-W`
        return reply(out, noreply, b"CLIENT_ERROR watch commands not allowed");
    }
    // memcached hands the connection to its logger only with no earlier request of the
    // same read since its last write-out point, quiet ones with nothing to send too (as
    // for `metadump`); checked before the filters
    if s.behind_earlier_requests(out) {
        return reply(
            out,
            noreply,
            b"ERROR cannot pipeline other commands before watch",
        );
    }
    let Some(flags) = crate::watch::parse_filters((1..t.n).map(|i| t.get(i))) else {
        return reply(out, noreply, b"ERROR");
    };
    match s.info.watch.add_watcher(flags) {
        Some(id) => {
            if flags & crate::watch::EVICTIONS != 0 {
                s.store.log_evictions(&s.info);
            }
            if flags & crate::watch::SYSEVENTS != 0 {
                s.store.log_sysevents(&s.info);
            }
            s.watcher = Some(id)
        }
        None => reply(out, noreply, b"WATCHER_TOO_MANY log watcher limit reached"),
    }
}

//! memcached's meta commands (`mg`, `ms`, `md`, `ma`, `mn`, `me`) as 1.6.18 answers them:
//! flags are single letters with an optional token, replies echo `O`(opaque) and `k`.

use crate::base64;
use crate::num::{parse_i32, parse_u32, parse_u64, push_u64};
use crate::session::{Session, Step};
use crate::storage::*;
use crate::text::{reply, Tokens, KEY_MAX};
use ferrocache_core::Clock;

/// memcached's `MFLAG_MAX_OPT_LENGTH`: most tokens (terminal included) a meta line may have.
const MAX_OPT_TOKENS: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`, counting the `O`.
const MAX_OPAQUE: usize = 32;

/// Flags of one meta request after memcached's `_meta_flag_preparse`.
#[derive(Default)]
struct Flags {
    binary_key: bool,
    vivify: Option<i64>,
    ttl: Option<i64>,
    /// `R`'s token as given (an exptime: `recache_within` reads it).
    recache: Option<i64>,
    value: bool,
    no_update: bool,
    quiet: bool,
    client_flags: u32,
    cas: Option<u64>,
    mode: u8,
    initial: u64,
    delta: Option<u64>,
    invalidate: bool,
}

/// Parses flags from token `start` on. `Err` carries memcached's message; the decoded key
/// (for `b`) is left in `scratch`.
fn preparse(t: &Tokens<'_>, start: usize, scratch: &mut Vec<u8>) -> Result<Flags, &'static str> {
    let mut f = Flags::default();
    let mut seen = [false; 128];
    let mut err: Option<&'static str> = None;
    const BAD_TOKEN: &str = "CLIENT_ERROR bad token in command line format";
    for i in start..t.n {
        let tok = t.get(i);
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return Err("CLIENT_ERROR duplicate flag");
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        match o {
            b'b' => {
                if base64::decode(t.get(1), scratch).is_none() {
                    err = Some("CLIENT_ERROR error decoding key");
                }
                f.binary_key = true;
            }
            b'N' => match parse_i32(arg) {
                Some(v) => f.vivify = Some(v as i64),
                None => err = Some(BAD_TOKEN),
            },
            b'T' => match parse_i32(arg) {
                Some(v) => f.ttl = Some(v as i64),
                None => err = Some(BAD_TOKEN),
            },
            b'R' => match parse_i32(arg) {
                Some(v) => f.recache = Some(v as i64),
                None => err = Some(BAD_TOKEN),
            },
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' => {}
            b'v' => f.value = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match parse_u32(arg) {
                Some(v) => f.client_flags = v,
                None => err = Some(err.unwrap_or("CLIENT_ERROR bad command line format")),
            },
            b'C' => match parse_u64(arg) {
                Some(v) => f.cas = Some(v),
                None => err = Some(BAD_TOKEN),
            },
            b'M' => {
                if tok.len() != 2 {
                    err = Some("CLIENT_ERROR incorrect length for M token");
                } else {
                    f.mode = tok[1];
                }
            }
            b'J' => match parse_u64(arg) {
                Some(v) => f.initial = v,
                None => err = Some("CLIENT_ERROR invalid numeric initial value"),
            },
            b'D' => match parse_u64(arg) {
                Some(v) => f.delta = Some(v),
                None => err = Some("CLIENT_ERROR invalid numeric delta value"),
            },
            b'I' => f.invalidate = true,
            _ => return Err("CLIENT_ERROR invalid flag"),
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(f),
    }
}

fn opaque_too_long(t: &Tokens<'_>) -> bool {
    long_opaque_at(t).is_some()
}

/// The token index of the first `O` longer than memcached allows.
fn long_opaque_at(t: &Tokens<'_>) -> Option<usize> {
    (2..t.n).find(|&i| t.get(i)[0] == b'O' && t.get(i).len() > MAX_OPAQUE)
}

/// The exptime `mg`/`ma` leave on an item their `N` created: memcached creates it never
/// expiring, then applies `N` and `T` in token order while writing the reply, up to
/// token `upto` (a too-long opaque stops it there); the last of them wins.
fn created_exptime(t: &Tokens<'_>, f: &Flags, upto: usize) -> i64 {
    let mut exptime = 0;
    for i in 2..upto {
        match t.get(i)[0] {
            b'N' => exptime = f.vivify.unwrap_or(0),
            b'T' => exptime = f.ttl.unwrap_or(0),
            _ => {}
        }
    }
    exptime
}

/// `R` for the engine, which judges it after applying `T`: (`recache_below`,
/// `recache_won`). memcached applies them in token order, so an `R` before a `T` judges the
/// expiry the item had: then the decision is made here on a peek and handed over as won or
/// not (also when `T0` then makes the item never expire).
fn recache_below<S: Storage>(
    s: &Session<S>,
    t: &Tokens<'_>,
    f: &Flags,
    key: &[u8],
) -> (Option<u32>, bool) {
    let pos = |c: u8| (2..t.n).find(|&i| t.get(i)[0] == c);
    let now = s.store.now();
    let within = f
        .recache
        .and_then(|r| recache_within(r, now, s.info.started));
    let (Some(r), Some(rp), Some(tp)) = (within, pos(b'R'), pos(b'T')) else {
        return (within, false);
    };
    if rp > tp {
        return (within, false);
    }
    let peek = GetOptions {
        no_bump: true,
        ..Default::default()
    };
    let now = now as u64;
    let due = s.store.get(key, &peek, |it| {
        it.exptime != 0 && (it.exptime as u64) < now + r as u64
    });
    (None, due.unwrap_or(false))
}

/// `R`'s token as seconds from `now` for the engine's `exptime < now + r`, or `None` for
/// a token no item is due before. memcached compares the item's expiry with the token read
/// as an exptime (`realtime()`): 0 is 0 and a negative token relative time 1, below every
/// expiry; over 30 days it is a unix time, one up to `process_started` (the start less
/// 62 s) relative time 1 too, and one already past is above only an expired item's
/// expiry (an item a `T` before it has just expired), which `Some(0)` keeps.
fn recache_within(r: i64, now: u32, started: u32) -> Option<u32> {
    const MAX_DELTA: i64 = 60 * 60 * 24 * 30;
    if r <= 0 || (r > MAX_DELTA && r <= started as i64 - 62) {
        None
    } else if r <= MAX_DELTA {
        Some(r as u32)
    } else {
        Some((r - now as i64).clamp(0, u32::MAX as i64) as u32)
    }
}

/// Whether token `c` comes before token index `upto`.
fn flag_before(t: &Tokens<'_>, c: u8, upto: usize) -> bool {
    (2..upto).any(|i| t.get(i)[0] == c)
}

/// An `mg` whose opaque is too long: memcached notices while writing the reply, so the read
/// has happened, `N` has created a missing item (without handing out the win token) and
/// the `T`/`N` before the opaque have set its expiry. Only the error is answered.
fn mg_too_long_opaque<S: Storage>(
    s: &Session<S>,
    t: &Tokens<'_>,
    f: &Flags,
    key: &[u8],
    upto: usize,
) {
    // memcached bumps the item only when no flag made it hold the item lock
    let locked = (2..t.n).any(|i| matches!(t.get(i)[0], b'T' | b'N' | b'R' | b'l' | b'h'));
    let writable = !s.info.read_only() && s.store.accepting_writes();
    let opts = GetOptions {
        touch: f
            .ttl
            .filter(|_| flag_before(t, b'T', upto) && !s.info.read_only()),
        // N creates the empty item as on a good mg: no cmd_set (memcached links it
        // directly), and no win token, which only the reply this error stops hands out
        vivify: f
            .vivify
            .filter(|_| writable)
            .map(|_| created_exptime(t, f, upto)),
        vivify_unwon: true,
        no_bump: f.no_update || locked,
        miss_counts_as_get: true,
        // memcached counts the miss at once (not one N turns into an item), the hit only
        // with the reply this error stops
        count_unbumped: f.vivify.is_none(),
        uncounted_hit: true,
        ..Default::default()
    };
    s.store.get(key, &opts, |_| ());
}

/// Appends ` k<key>` (base64 and ` b` for binary keys).
fn push_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64::encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// Appends the `O` and `k` flags a reply echoes, in request order.
fn push_echo(out: &mut Vec<u8>, t: &Tokens<'_>, from: usize, key: &[u8], binary: bool) {
    for i in from..t.n {
        let tok = t.get(i);
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => push_key(out, key, binary),
            _ => {}
        }
    }
}

fn push_flag(out: &mut Vec<u8>, c: u8, v: u64) {
    out.push(b' ');
    out.push(c);
    push_u64(out, v);
}

/// memcached prints remaining TTL as an unsigned 32-bit number, -1 for "never". An
/// exptime already past when it was set (`T-1`) is memcached's relative second 1; its
/// clock reads uptime + 60 then, so such an item (served once more) shows 1 - that.
fn push_ttl(out: &mut Vec<u8>, exptime: u32, now: u32, started: u32) {
    if exptime == 0 {
        out.extend_from_slice(b" t-1");
    } else if exptime == PAST {
        let memcached_now = now.wrapping_sub(started).wrapping_add(60);
        push_flag(out, b't', 1u32.wrapping_sub(memcached_now) as u64);
    } else {
        push_flag(out, b't', exptime.wrapping_sub(now) as u64);
    }
}

/// The exptime the engine stores for one already past when set.
const PAST: u32 = 1;

/// For a request with `t`: the time now, and the expiry `t` must show when memcached
/// would print it before applying a later `T`/`N` (it walks flags in order; the engine
/// applies them first): the item's own, or what the `T` before `t` set; on an item `N`
/// creates, never, or the last of the `N`/`T` before `t`. Only then does it cost an
/// extra, non-bumping lookup.
fn ttl_context<S: Storage>(
    s: &Session<S>,
    t: &Tokens<'_>,
    f: &Flags,
    key: &[u8],
) -> (u32, Option<u32>) {
    let pos = |c: u8| (2..t.n).find(|&i| t.get(i)[0] == c);
    let Some(tp) = pos(b't') else {
        return (0, None);
    };
    let later = |c: u8| pos(c).is_some_and(|p| p > tp);
    let now = s.store.now();
    if !later(b'T') && !later(b'N') {
        return (now, None);
    }
    let peek = GetOptions {
        no_bump: true,
        ..Default::default()
    };
    let resolve = |exptime: i64| Clock::resolve_exptime(exptime, now).unwrap_or(PAST);
    let before = match s.store.get(key, &peek, |it| it.exptime) {
        Some(_) if flag_before(t, b'T', tp) => resolve(f.ttl.unwrap_or(0)),
        Some(exptime) => exptime,
        None => resolve(created_exptime(t, f, tp)),
    };
    (now, Some(before))
}

pub(crate) fn dispatch<S: Storage>(
    s: &mut Session<S>,
    t: &Tokens<'_>,
    data: &[u8],
    line_end: usize,
    out: &mut Vec<u8>,
) -> Step {
    let sub = t.get(0)[1];
    if sub == b'n' {
        reply(out, false, b"MN");
        s.flush = true; // mn is meta's "write everything out now"
        return Step::Done(line_end);
    }
    if !matches!(sub, b'g' | b's' | b'd' | b'a' | b'e') {
        reply(out, false, b"ERROR");
        return Step::Done(line_end);
    }
    if sub == b'e' {
        me(s, t, out);
        return Step::Done(line_end);
    }
    if t.count() < 3 {
        reply(out, false, b"ERROR");
        return Step::Done(line_end);
    }
    // cmd_meta counts `me` only, as memcached 1.6.18's meta_cmds
    let mut scratch = std::mem::take(&mut s.scratch);
    let step = match sub {
        b'g' => {
            mg(s, t, &mut scratch, out);
            Step::Done(line_end)
        }
        b's' => ms(s, t, data, line_end, &mut scratch, out),
        b'd' => {
            md(s, t, &mut scratch, out);
            Step::Done(line_end)
        }
        _ => {
            ma(s, t, &mut scratch, out);
            Step::Done(line_end)
        }
    };
    s.scratch = scratch;
    step
}

fn mg<S: Storage>(s: &Session<S>, t: &Tokens<'_>, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    if t.get(1).len() > KEY_MAX {
        return reply(out, false, b"CLIENT_ERROR bad command line format");
    }
    if t.count() > MAX_OPT_TOKENS {
        return reply(out, false, b"CLIENT_ERROR options flags are too long");
    }
    let f = match preparse(t, 2, scratch) {
        Ok(f) => f,
        Err(e) => return reply(out, false, e.as_bytes()),
    };
    let key: &[u8] = if f.binary_key { scratch } else { t.get(1) };
    if let Some(upto) = long_opaque_at(t) {
        mg_too_long_opaque(s, t, &f, key, upto);
        return reply(out, false, b"CLIENT_ERROR opaque token too long");
    }
    // A read-only replica serves the read but not N's placeholder: it would be a write
    // only this replica has (never streamed), and the recache N invites would be refused
    // (text::refuse_write). So a miss is EN there, as a plain mg (docs/replication.md).
    let vivify = f
        .vivify
        .filter(|_| !s.info.read_only() && s.store.accepting_writes())
        .map(|_| created_exptime(t, &f, t.n));
    let (recache_below, recache_won) = recache_below(s, t, &f, key);
    let opts = GetOptions {
        // nor T's new TTL: it would outlive the primary's expiry, which is never streamed
        touch: f.ttl.filter(|_| !s.info.read_only()),
        vivify,
        no_bump: f.no_update,
        recache_below,
        recache_won,
        miss_counts_as_get: true,
        // the only read that hands out the win token (memcached 1.6.18)
        may_win: true,
        // `u` leaves the LRU and the fetched mark alone; memcached still counts the read
        count_unbumped: true,
        uncounted_hit: false,
        vivify_unwon: false,
    };
    let watching = s.info.watch.wants(crate::watch::FETCHERS);
    // before anything below looks the key up (and unlinks a flushed item)
    let mut seen = crate::watch::miss(&s.store, key, watching);
    let (now, before) = ttl_context(s, t, &f, key);
    // memcached logs the miss N turns into a new item as a miss
    let created = watching && opts.vivify.is_some() && crate::watch::peek(&s.store, key).is_none();
    let hit = s.store.get(key, &opts, |it| {
        if watching && !created {
            seen = crate::watch::found(&s.store, it);
        }
        out.reserve(it.value.len() + 64);
        if f.value {
            out.extend_from_slice(b"VA ");
            push_u64(out, it.value.len() as u64);
        } else {
            out.extend_from_slice(b"HD");
        }
        for i in 2..t.n {
            match t.get(i)[0] {
                b's' => push_flag(out, b's', it.value.len() as u64),
                b't' => push_ttl(out, before.unwrap_or(it.exptime), now, s.info.started),
                b'c' => push_flag(out, b'c', s.info.switches.cas_out(it.cas)),
                b'f' => push_flag(out, b'f', it.flags as u64),
                b'l' => push_flag(out, b'l', it.last_access_secs as u64),
                b'h' => out.extend_from_slice(if it.fetched_before { b" h1" } else { b" h0" }),
                b'O' => {
                    out.push(b' ');
                    out.extend_from_slice(t.get(i));
                }
                // as the item was stored (memcached's ITEM_KEY_BINARY), not as asked now
                b'k' => push_key(out, it.key, it.key_binary),
                _ => {}
            }
        }
        if it.win_taken {
            out.extend_from_slice(b" Z");
        }
        if it.stale {
            out.extend_from_slice(b" X");
        }
        if it.won {
            out.extend_from_slice(b" W");
        }
        out.extend_from_slice(b"\r\n");
        if f.value {
            out.extend_from_slice(it.value);
            out.extend_from_slice(b"\r\n");
        }
    });
    if watching {
        s.info.watch.item_get(key, seen, s.cfd);
    }
    if hit.is_none() && !f.quiet {
        out.extend_from_slice(b"EN");
        push_echo(out, t, 2, key, f.binary_key);
        out.extend_from_slice(b"\r\n");
    }
}

fn ms<S: Storage>(
    s: &mut Session<S>,
    t: &Tokens<'_>,
    data: &[u8],
    line_end: usize,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Step {
    let bad = |out: &mut Vec<u8>, msg: &[u8]| {
        reply(out, false, msg);
        Step::Done(line_end)
    };
    if t.get(1).len() > KEY_MAX || t.count() == 3 {
        return bad(out, b"CLIENT_ERROR bad command line format");
    }
    if t.count() > MAX_OPT_TOKENS {
        return bad(out, b"CLIENT_ERROR options flags too long");
    }
    let vlen = match parse_i32(t.get(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return bad(out, b"CLIENT_ERROR bad command line format"),
    };
    // From here on an error also skips the value, as memcached swallows it (and sends the
    // error once it has).
    let fail = |s: &mut Session<S>, _out: &mut Vec<u8>, msg: &[u8]| {
        reply(&mut s.after_swallow, false, msg);
        s.swallow = vlen + 2;
        Step::Done(line_end)
    };
    let f = match preparse(t, 3, scratch) {
        Ok(f) => f,
        Err(e) => return fail(s, out, e.as_bytes()),
    };
    let mode = match f.mode {
        // upper case only: memcached 1.6.18 refuses `Ms`, `Ma`…
        0 | b'S' => StoreMode::Set,
        b'E' => StoreMode::Add,
        b'A' => StoreMode::Append,
        b'P' => StoreMode::Prepend,
        b'R' => StoreMode::Replace,
        _ => return fail(s, out, b"CLIENT_ERROR invalid mode for ms M token"),
    };
    // after the mode, as memcached checks them
    if opaque_too_long(t) {
        return fail(s, out, b"CLIENT_ERROR opaque token too long");
    }
    let key: &[u8] = if f.binary_key { scratch } else { t.get(1) };
    if !s.store.item_fits(key.len(), vlen, f.client_flags) {
        s.info.count_too_large();
        // `cmd=cas` for a set or replace with `C`, as memcached 1.6.18 logs it
        let cas = f.cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace);
        crate::watch::log_too_large(&s.info.watch, key, mode, cas, s.cfd);
        crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
        s.store.unlink_refused(key);
        return fail(s, out, b"SERVER_ERROR object too large for cache");
    }
    let end = line_end + vlen + 2;
    if data.len() < end {
        return Step::More;
    }
    if &data[line_end + vlen..end] != b"\r\n" {
        s.info.count_bad_chunk();
        reply(out, false, b"CLIENT_ERROR bad data chunk");
        return Step::Done(end);
    }
    let cas_mode = f.cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace);
    let req = StoreRequest {
        mode,
        key,
        value: &data[line_end..line_end + vlen],
        flags: f.client_flags,
        exptime: f.ttl.unwrap_or(0),
        cas: s.info.switches.cas_in(f.cas),
        invalidate: f.invalidate && cas_mode,
        new_cas: None,
        // memcached 1.6.18 ignores N on ms (append-mode vivify came later).
        vivify: None,
    };
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    let outcome = match s.store.store(&req) {
        Ok(o) => {
            let request = (vlen, f.client_flags, req.exptime);
            let (store, w) = (&s.store, &s.info.watch);
            crate::watch::log_store(store, w, key, mode, cas_mode, o.status, request, s.cfd);
            o
        }
        Err(StoreError::OutOfMemory) if s.store.chunked(key.len(), vlen, f.client_flags) => {
            let msg = crate::text::OUT_OF_MEMORY_DURING_READ;
            reply(out, f.quiet, msg);
            return Step::Done(end);
        }
        Err(e) => {
            if e == StoreError::OutOfMemory {
                // memcached's process_mset_command unlinks the key's item whatever the mode
                // or C when it has no memory for the new one (measured with -M: ME, MR, C)
                s.store.unlink_refused(key);
            }
            reply(out, false, crate::text::store_error(s, e));
            return Step::Done(end);
        }
    };
    // memcached keeps ITEM_KEY_BINARY on the item: mg echoes the key in base64 later; not
    // after an append or prepend, whose joined item starts without it
    let joined = matches!(mode, StoreMode::Append | StoreMode::Prepend);
    if f.binary_key && outcome.status == StoreStatus::Stored && !joined {
        s.store.mark_key_binary(key);
    }
    let code: &[u8] = match outcome.status {
        StoreStatus::Stored if f.quiet => return Step::Done(end),
        StoreStatus::Stored => b"HD",
        StoreStatus::NotStored => b"NS",
        StoreStatus::Exists => b"EX",
        StoreStatus::NotFound => b"NF",
    };
    out.extend_from_slice(code);
    for i in 3..t.n {
        match t.get(i)[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t.get(i));
            }
            b'k' => push_key(out, key, f.binary_key),
            b'c' => push_flag(out, b'c', s.info.switches.cas_out(outcome.cas)),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    Step::Done(end)
}

fn md<S: Storage>(s: &Session<S>, t: &Tokens<'_>, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    if t.get(1).len() > KEY_MAX {
        return reply(out, false, b"CLIENT_ERROR bad command line format");
    }
    if t.count() > MAX_OPT_TOKENS {
        return reply(out, false, b"CLIENT_ERROR options flags too long");
    }
    let Ok(f) = preparse(t, 2, scratch) else {
        return reply(out, false, b"CLIENT_ERROR invalid or duplicate flag");
    };
    if opaque_too_long(t) {
        return reply(out, false, b"CLIENT_ERROR opaque token too long");
    }
    let key: &[u8] = if f.binary_key { scratch } else { t.get(1) };
    let req = DeleteRequest {
        key,
        cas: s.info.switches.cas_compared(f.cas),
        invalidate: f.invalidate,
        exptime: if f.invalidate { f.ttl } else { None },
        mismatch_uncounted: false,
    };
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    let code: &[u8] = match s.store.delete(&req) {
        DeleteStatus::Deleted if f.quiet => return,
        DeleteStatus::Deleted => b"HD",
        DeleteStatus::NotFound => b"NF",
        DeleteStatus::Exists => b"EX",
    };
    out.extend_from_slice(code);
    push_echo(out, t, 2, key, f.binary_key);
    out.extend_from_slice(b"\r\n");
}

fn ma<S: Storage>(s: &Session<S>, t: &Tokens<'_>, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    if t.get(1).len() > KEY_MAX {
        return reply(out, false, b"CLIENT_ERROR bad command line format");
    }
    if t.count() > MAX_OPT_TOKENS {
        return reply(out, false, b"CLIENT_ERROR options flags too long");
    }
    let Ok(f) = preparse(t, 2, scratch) else {
        return reply(out, false, b"CLIENT_ERROR invalid or duplicate flag");
    };
    let incr = match f.mode {
        // no lower case: memcached 1.6.18 refuses `Mi` and `Md`
        0 | b'I' | b'+' => true,
        b'D' | b'-' => false,
        _ => return reply(out, false, b"CLIENT_ERROR invalid mode for ma M token"),
    };
    let key: &[u8] = if f.binary_key { scratch } else { t.get(1) };
    // memcached checks the opaque while writing the reply: the arithmetic, `N`, and the
    // `T`/`N` before a too-long opaque have been applied by then
    let upto = long_opaque_at(t).unwrap_or(t.n);
    let req = ArithRequest {
        key,
        incr,
        delta: f.delta.unwrap_or(1),
        cas: s.info.switches.cas_compared(f.cas),
        vivify: f.vivify.map(|_| (f.initial, created_exptime(t, &f, upto))),
        touch: f.ttl.filter(|_| flag_before(t, b'T', upto)),
        new_cas: None,
    };
    let (now, before) = ttl_context(s, t, &f, key);
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    let result = s.store.arith(&req);
    if let Ok(ArithStatus::Ok { created: true, .. }) = result {
        crate::watch::log_created(&s.store, &s.info.watch, key, s.cfd);
    }
    match result {
        // the error memcached meets writing the reply, after the arithmetic's own errors
        Ok(_) if upto < t.n => reply(out, false, b"CLIENT_ERROR opaque token too long"),
        Ok(ArithStatus::Ok {
            value,
            cas,
            created,
        }) => {
            // memcached 1.6.18 hides a quiet ma's success only when the item was there: the
            // reply of one that N created is sent anyway (its vivify path never sets the skip)
            if f.quiet && !created {
                return;
            }
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(value).as_bytes();
            if f.value {
                out.extend_from_slice(b"VA ");
                push_u64(out, digits.len() as u64);
            } else {
                out.extend_from_slice(b"HD");
            }
            for i in 2..t.n {
                match t.get(i)[0] {
                    b'c' => push_flag(out, b'c', s.info.switches.cas_out(cas)),
                    b't' => {
                        // The engine's arith does not return the expiry; read it back.
                        let peek = GetOptions {
                            no_bump: true,
                            ..Default::default()
                        };
                        let exptime = match before {
                            Some(e) => e,
                            // gone at once: its T or N was already past
                            None => s.store.get(key, &peek, |it| it.exptime).unwrap_or(PAST),
                        };
                        push_ttl(out, exptime, now, s.info.started);
                    }
                    b'O' => {
                        out.push(b' ');
                        out.extend_from_slice(t.get(i));
                    }
                    b'k' => push_key(out, key, f.binary_key),
                    _ => {}
                }
            }
            if f.value {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(digits);
            }
            out.extend_from_slice(b"\r\n");
        }
        Ok(status) => {
            out.extend_from_slice(if status == ArithStatus::NotFound {
                b"NF"
            } else {
                b"EX"
            });
            push_echo(out, t, 2, key, f.binary_key);
            out.extend_from_slice(b"\r\n");
        }
        Err(StoreError::NonNumeric) => reply(
            out,
            false,
            b"CLIENT_ERROR cannot increment or decrement non-numeric value",
        ),
        Err(StoreError::OutOfMemory) => reply(out, false, b"SERVER_ERROR out of memory"),
        Err(e) => reply(out, false, crate::text::store_error(s, e)),
    }
}

/// `me <key> [b]`: memcached's debug dump of one item.
fn me<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    if t.count() < 3 || t.get(1).len() > KEY_MAX {
        return reply(out, false, b"CLIENT_ERROR bad command line format");
    }
    let mut decoded = Vec::new();
    let binary = t.count() >= 4 && t.get(2) == b"b";
    let key: &[u8] = if binary {
        if base64::decode(t.get(1), &mut decoded).is_none() {
            return reply(out, false, b"CLIENT_ERROR bad command line format");
        }
        &decoded
    } else {
        t.get(1)
    };
    s.info.count_meta();
    let now = s.store.now();
    let opts = GetOptions {
        no_bump: true,
        ..Default::default()
    };
    let hit = s.store.get(key, &opts, |it| {
        out.extend_from_slice(b"ME ");
        // base64 if the item was stored with a base64 key, however it is asked for now
        if it.key_binary {
            base64::encode(it.key, out);
        } else {
            out.extend_from_slice(it.key);
        }
        let exp: i64 = if it.exptime == 0 {
            -1
        } else {
            // memcached's rel_time_t difference, printed as an int
            now.wrapping_sub(it.exptime) as i32 as i64
        };
        let size = s.store.item_size(it.key.len(), it.value.len(), it.flags);
        let line = format!(
            " exp={} la={} cas={} fetch={} cls={} size={}\r\n",
            exp,
            it.last_access_secs,
            s.info.switches.cas_out(it.cas),
            if it.fetched_before { "yes" } else { "no" },
            s.store.slab_class(size),
            size
        );
        out.extend_from_slice(line.as_bytes());
    });
    if hit.is_none() {
        reply(out, false, b"EN");
    }
}

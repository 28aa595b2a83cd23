//! memcached's binary protocol (deprecated upstream, still what memjs speaks): 24-byte
//! headers, quiet variants that only report failures, status codes and error bodies as
//! memcached 1.6.18 sends them.

use crate::auth::{self, Sasl};
use crate::session::{Session, Step};
use crate::storage::*;
use crate::text::KEY_MAX;

const HEADER: usize = 24;
const REQ_MAGIC: u8 = 0x80;
const RES_MAGIC: u8 = 0x81;

mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response status codes.
mod status {
    pub const KEY_ENOENT: u16 = 0x0001;
    pub const KEY_EEXISTS: u16 = 0x0002;
    pub const E2BIG: u16 = 0x0003;
    pub const EINVAL: u16 = 0x0004;
    pub const NOT_STORED: u16 = 0x0005;
    pub const DELTA_BADVAL: u16 = 0x0006;
    pub const AUTH_ERROR: u16 = 0x0020;
    pub const AUTH_CONTINUE: u16 = 0x0021;
    pub const UNKNOWN_COMMAND: u16 = 0x0081;
    pub const ENOMEM: u16 = 0x0082;
    pub const NOT_SUPPORTED: u16 = 0x0083;
}

fn message(status: u16) -> &'static [u8] {
    match status {
        status::ENOMEM => b"Out of memory",
        status::UNKNOWN_COMMAND => b"Unknown command",
        status::KEY_ENOENT => b"Not found",
        status::EINVAL => b"Invalid arguments",
        status::KEY_EEXISTS => b"Data exists for key.",
        status::E2BIG => b"Too large.",
        status::DELTA_BADVAL => b"Non-numeric server-side value for incr or decr",
        status::NOT_STORED => b"Not stored.",
        status::AUTH_ERROR => b"Auth failure.",
        _ => b"",
    }
}

/// The error body of a write refused (or not acknowledged) while the append-only log
/// cannot write.
const LOG_FAILED: &[u8] = b"append-only log write failed; writes refused";

/// The fields of a request header a reply needs.
#[derive(Clone, Copy)]
struct Req {
    opcode: u8,
    extlen: usize,
    keylen: usize,
    bodylen: usize,
    opaque: [u8; 4],
    cas: u64,
    /// `-C` off: the request's CAS is ignored and replies carry 0, as memcached's.
    cas_on: bool,
    /// The request's CAS as sent, also with `-C`: memcached's delete and incr/decr still
    /// compare it (with its items' CAS 0 then, any non-zero one mismatches).
    sent_cas: u64,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Appends a response header.
fn header(out: &mut Vec<u8>, r: &Req, status: u16, extlen: u8, keylen: u16, body: u32, cas: u64) {
    out.push(RES_MAGIC);
    out.push(r.opcode);
    out.extend_from_slice(&keylen.to_be_bytes());
    out.push(extlen);
    out.push(0);
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&body.to_be_bytes());
    out.extend_from_slice(&r.opaque);
    out.extend_from_slice(&if r.cas_on { cas } else { 0 }.to_be_bytes());
}

/// memcached's `write_bin_error`: the status and its stock message.
fn error(out: &mut Vec<u8>, r: &Req, status: u16) {
    error_msg(out, r, status, message(status))
}

/// An error reply with its own message.
fn error_msg(out: &mut Vec<u8>, r: &Req, status: u16, msg: &[u8]) {
    header(out, r, status, 0, 0, msg.len() as u32, 0);
    out.extend_from_slice(msg);
}

/// An empty success reply (suppressed for quiet commands).
fn ok(out: &mut Vec<u8>, r: &Req, quiet: bool, cas: u64) {
    if !quiet {
        header(out, r, 0, 0, 0, 0, cas);
    }
}

pub(crate) fn step<S: Storage>(s: &mut Session<S>, data: &[u8], out: &mut Vec<u8>) -> Step {
    let before = out.len();
    let step = handle(s, data, out);
    // memcached writes replies out after noop and after an error it does not follow by
    // skipping a value (write_bin_error with nothing to swallow).
    if out.len() >= before + HEADER {
        let r = &out[before..];
        let error = r[6..8] != [0, 0] && r[2..4] == [0, 0];
        // a refused request that ends the connection (0x0004 for a bad key, ...): memcached
        // closes right after the reply, without waiting for the client's FIN
        s.close_at_once = error && matches!(step, Step::Close(_));
        let mut no_write_out = false;
        if s.swallow > i32::MAX as usize {
            // memcached's swallow count is an int: past 2^31 - 1 it is negative, so it
            // answers at once and reads what follows as requests (measured: a set with a
            // 4 GB body answers Too large. and then a noop sent after its key). A store
            // then still enters its swallow state with nothing to skip, which goes on to
            // the next request without writing out (a bad magic byte behind it in the
            // same read takes the error back); other errors write out.
            s.swallow = 0;
            no_write_out = is_store(r[1]);
        }
        s.flush = r[1] == op::NOOP || (error && s.swallow == 0 && !no_write_out);
        if s.swallow > 0 {
            // memcached sends an error that skips a body (too large, unknown opcode,
            // read-only) once the body has been swallowed, as for text.
            s.after_swallow.extend_from_slice(&out[before..]);
            out.truncate(before);
        }
    }
    step
}

/// set / add / replace / append / prepend and their quiet forms.
fn is_store(opcode: u8) -> bool {
    matches!(
        opcode,
        op::SET
            | op::ADD
            | op::REPLACE
            | op::APPEND
            | op::PREPEND
            | op::SETQ
            | op::ADDQ
            | op::REPLACEQ
            | op::APPENDQ
            | op::PREPENDQ
    )
}

fn handle<S: Storage>(s: &mut Session<S>, data: &[u8], out: &mut Vec<u8>) -> Step {
    if data.len() < HEADER {
        return Step::More;
    }
    if data[0] != REQ_MAGIC {
        return Step::Abort;
    }
    let r = Req {
        opcode: data[1],
        keylen: u16::from_be_bytes([data[2], data[3]]) as usize,
        extlen: data[4] as usize,
        bodylen: be32(&data[8..12]) as usize,
        opaque: [data[12], data[13], data[14], data[15]],
        cas: if s.info.switches.cas() {
            be64(&data[16..24])
        } else {
            0
        },
        cas_on: s.info.switches.cas(),
        sent_cas: be64(&data[16..24]),
    };
    let head = HEADER + r.extlen + r.keylen;
    if data.len() < head {
        return Step::More;
    }
    if r.keylen > r.bodylen || r.keylen + r.extlen > r.bodylen {
        error(out, &r, status::UNKNOWN_COMMAND);
        return Step::Close(head);
    }
    // Before logging in only the SASL requests and VERSION are served (memcached -S).
    if !s.authenticated
        && !matches!(
            r.opcode,
            op::SASL_LIST_MECHS | op::SASL_AUTH | op::SASL_STEP | op::VERSION
        )
    {
        error(out, &r, status::AUTH_ERROR);
        return Step::Close(head);
    }
    if r.keylen > KEY_MAX {
        error(out, &r, status::EINVAL);
        return Step::Close(head);
    }
    let ext = &data[HEADER..HEADER + r.extlen];
    let key = &data[HEADER + r.extlen..head];
    let (cmd, quiet) = match r.opcode {
        op::SETQ => (op::SET, true),
        op::ADDQ => (op::ADD, true),
        op::REPLACEQ => (op::REPLACE, true),
        op::DELETEQ => (op::DELETE, true),
        op::INCREMENTQ => (op::INCREMENT, true),
        op::DECREMENTQ => (op::DECREMENT, true),
        op::QUITQ => (op::QUIT, true),
        op::FLUSHQ => (op::FLUSH, true),
        op::APPENDQ => (op::APPEND, true),
        op::PREPENDQ => (op::PREPEND, true),
        op::GETQ => (op::GET, true),
        op::GETKQ => (op::GETK, true),
        op::GATQ => (op::GAT, true),
        op::GATKQ => (op::GATK, true),
        other => (other, false),
    };
    // a read-only replica (docs/replication.md), or an append-only log that cannot write
    // (docs/persistence.md): refuse writes, skipping their values
    let is_write = matches!(
        cmd,
        op::SET
            | op::ADD
            | op::REPLACE
            | op::APPEND
            | op::PREPEND
            | op::DELETE
            | op::INCREMENT
            | op::DECREMENT
            | op::FLUSH
            | op::TOUCH
    );
    let refusal: Option<(u16, &[u8])> = if !is_write {
        None
    } else if s.info.read_only() {
        Some((status::NOT_SUPPORTED, b"replica is read-only"))
    } else if !s.store.accepting_writes() {
        Some((status::ENOMEM, LOG_FAILED))
    } else {
        None
    };
    if let Some((code, msg)) = refusal {
        error_msg(out, &r, code, msg);
        s.swallow = r.bodylen - r.extlen - r.keylen;
        return Step::Done(head);
    }
    let (el, kl, bl) = (r.extlen, r.keylen, r.bodylen);
    let protocol_error = |out: &mut Vec<u8>| {
        error(out, &r, status::EINVAL);
        Step::Close(head)
    };
    let mark = out.len();
    let step = match cmd {
        op::VERSION | op::NOOP | op::QUIT | op::SASL_LIST_MECHS
            if !(el == 0 && kl == 0 && bl == 0) =>
        {
            protocol_error(out)
        }
        op::VERSION => {
            let v = s.info.version.as_bytes();
            header(out, &r, 0, 0, 0, v.len() as u32, 0);
            out.extend_from_slice(v);
            Step::Done(head)
        }
        op::NOOP => {
            ok(out, &r, false, 0);
            Step::Done(head)
        }
        op::QUIT => {
            ok(out, &r, quiet, 0);
            s.close_quit = true;
            Step::Close(head)
        }
        op::FLUSH => {
            if !(kl == 0 && bl == el && (el == 0 || el == 4)) {
                return protocol_error(out);
            }
            if !s.info.switches.flush_on() {
                // `-F`: memcached answers "Auth failure." (measured)
                error(out, &r, status::AUTH_ERROR);
                return Step::Done(head);
            }
            let delay = if el == 4 { be32(ext) as i64 } else { 0 };
            s.store.flush_all(delay);
            s.info.note_flush(delay, crate::info::unix_now());
            ok(out, &r, quiet, 0);
            Step::Done(head)
        }
        op::SET | op::ADD | op::REPLACE => {
            if !(el == 8 && kl != 0 && bl >= kl + 8) {
                return protocol_error(out);
            }
            let (flags, exptime) = (be32(&ext[0..4]), be32(&ext[4..8]));
            update(
                s,
                &r,
                cmd,
                quiet,
                key,
                flags,
                exptime as i64,
                data,
                head,
                out,
            )
        }
        op::APPEND | op::PREPEND => {
            if !(kl > 0 && el == 0) {
                return protocol_error(out);
            }
            update(s, &r, cmd, quiet, key, 0, 0, data, head, out)
        }
        op::GET | op::GETK => {
            if !(el == 0 && bl == kl && kl > 0) {
                return protocol_error(out);
            }
            get(s, &r, key, None, cmd == op::GETK, quiet, true, out);
            Step::Done(head)
        }
        op::TOUCH | op::GAT | op::GATK => {
            if !(el == 4 && kl != 0) {
                return protocol_error(out);
            }
            let exp = Some(be32(ext) as i64);
            get(
                s,
                &r,
                key,
                exp,
                cmd == op::GATK,
                quiet,
                cmd != op::TOUCH,
                out,
            );
            Step::Done(head)
        }
        op::DELETE => {
            if !(kl > 0 && el == 0 && bl == kl) {
                return protocol_error(out);
            }
            let cas = compared_cas(s, &r);
            s.info.detail.record_delete(key);
            crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
            match s.store.delete(&DeleteRequest {
                key,
                cas,
                // memcached's binary delete counts no miss for a CAS mismatch
                mismatch_uncounted: true,
                ..Default::default()
            }) {
                DeleteStatus::Deleted => ok(out, &r, quiet, 0),
                DeleteStatus::NotFound => error(out, &r, status::KEY_ENOENT),
                DeleteStatus::Exists => error(out, &r, status::KEY_EEXISTS),
            }
            Step::Done(head)
        }
        op::INCREMENT | op::DECREMENT => {
            if !(kl > 0 && el == 20 && bl == kl + el) {
                return protocol_error(out);
            }
            let (delta, initial, exp) = (be64(&ext[0..8]), be64(&ext[8..16]), be32(&ext[16..20]));
            let req = ArithRequest {
                key,
                incr: cmd == op::INCREMENT,
                delta,
                cas: compared_cas(s, &r),
                // An expiration of all ones means "do not create".
                vivify: if exp != u32::MAX {
                    Some((initial, exp as i64))
                } else {
                    None
                },
                touch: None,
                new_cas: None,
            };
            crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
            let result = s.store.arith(&req);
            if let Ok(ArithStatus::Ok { created: true, .. }) = result {
                crate::watch::log_created(&s.store, &s.info.watch, key, s.cfd);
            }
            match result {
                Ok(ArithStatus::Ok { value, cas, .. }) => {
                    if !quiet {
                        header(out, &r, 0, 0, 0, 8, cas);
                        out.extend_from_slice(&value.to_be_bytes());
                    }
                }
                Ok(ArithStatus::NotFound) => error(out, &r, status::KEY_ENOENT),
                Ok(ArithStatus::Exists) => error(out, &r, status::KEY_EEXISTS),
                Err(StoreError::NonNumeric) => error(out, &r, status::DELTA_BADVAL),
                Err(StoreError::TooLarge) => error(out, &r, status::E2BIG),
                Err(_) => error_msg(out, &r, status::ENOMEM, b"Out of memory incrementing value"),
            }
            Step::Done(head)
        }
        op::STAT => {
            if el != 0 {
                return protocol_error(out);
            }
            stat(s, &r, key, out);
            Step::Done(head)
        }
        op::SASL_AUTH | op::SASL_STEP if !(el == 0 && kl != 0) => protocol_error(out),
        op::SASL_LIST_MECHS if s.users.is_some() => {
            // memcached's quirk, kept: listing the mechanisms logs the connection out.
            s.authenticated = false;
            header(out, &r, 0, 0, 0, auth::MECHS.len() as u32, 0);
            out.extend_from_slice(auth::MECHS);
            Step::Done(head)
        }
        op::SASL_AUTH | op::SASL_STEP if s.users.is_some() => sasl(s, &r, key, data, head, out),
        op::SASL_LIST_MECHS | op::SASL_AUTH | op::SASL_STEP => {
            // SASL is not offered: memcached without -S answers "unknown command".
            error(out, &r, status::UNKNOWN_COMMAND);
            s.swallow = bl - kl;
            Step::Done(HEADER + el + kl)
        }
        _ => {
            error(out, &r, status::UNKNOWN_COMMAND);
            // memcached swallows the whole body after having consumed extras and key.
            s.swallow = bl;
            Step::Done(head)
        }
    };
    // A write whose own log record failed is not acknowledged either (text::unlogged_write)
    if is_write && matches!(step, Step::Done(_)) && s.swallow == 0 && !s.store.accepting_writes() {
        out.truncate(mark);
        error_msg(out, &r, status::ENOMEM, LOG_FAILED);
    }
    step
}

/// The CAS a delete or incr/decr compares with: the request's, unless 0 (`-C` makes it
/// one no item has).
fn compared_cas<S: Storage>(s: &Session<S>, r: &Req) -> Option<u64> {
    s.info
        .switches
        .cas_compared(Some(r.sent_cas).filter(|&c| c != 0))
}

/// SASL_AUTH / SASL_STEP with authentication on: the body is the mechanism's data.
fn sasl<S: Storage>(
    s: &mut Session<S>,
    r: &Req,
    mech: &[u8],
    data: &[u8],
    head: usize,
    out: &mut Vec<u8>,
) -> Step {
    let vlen = r.bodylen - r.keylen;
    if mech.len() > auth::MAX_MECH {
        error(out, r, status::EINVAL);
        s.swallow = vlen;
        return Step::Done(head);
    }
    // memcached reads the body into an item: one that could not be stored is refused.
    if !s.store.item_fits(mech.len(), vlen, 0) {
        error(out, r, status::ENOMEM);
        s.swallow = vlen;
        return Step::Done(head);
    }
    if data.len() < head + vlen {
        return Step::More;
    }
    match auth::sasl(s, r.opcode == op::SASL_STEP, mech, &data[head..head + vlen]) {
        Sasl::Ok => {
            header(out, r, 0, 0, 0, 13, 0);
            out.extend_from_slice(b"Authenticated");
        }
        Sasl::Continue => header(out, r, status::AUTH_CONTINUE, 0, 0, 0, 0),
        Sasl::Failed => error(out, r, status::AUTH_ERROR),
    }
    Step::Done(head + vlen)
}

#[allow(clippy::too_many_arguments)]
fn get<S: Storage>(
    s: &Session<S>,
    r: &Req,
    key: &[u8],
    touch: Option<i64>,
    with_key: bool,
    quiet: bool,
    with_value: bool,
    out: &mut Vec<u8>,
) {
    let opts = GetOptions {
        // a read-only replica serves GAT as a get (text::get says why)
        touch: touch.filter(|_| !s.info.read_only()),
        ..Default::default()
    };
    let watching = s.info.watch.wants(crate::watch::FETCHERS);
    let mut seen = crate::watch::miss(&s.store, key, watching);
    let hit = s.store.get(key, &opts, |it| {
        if watching {
            seen = crate::watch::found(&s.store, it);
        }
        let vlen = if with_value { it.value.len() } else { 0 };
        let klen = if with_key { key.len() } else { 0 };
        out.reserve(HEADER + 4 + klen + vlen);
        header(out, r, 0, 4, klen as u16, (4 + klen + vlen) as u32, it.cas);
        out.extend_from_slice(&it.flags.to_be_bytes());
        if with_key {
            out.extend_from_slice(key);
        }
        if with_value {
            out.extend_from_slice(it.value);
        }
    });
    s.info.detail.record_get(key, hit.is_some());
    if watching {
        s.info.watch.item_get(key, seen, s.cfd);
    }
    if hit.is_none() && !quiet {
        if with_key {
            header(
                out,
                r,
                status::KEY_ENOENT,
                0,
                key.len() as u16,
                key.len() as u32,
                0,
            );
            out.extend_from_slice(key);
        } else {
            error(out, r, status::KEY_ENOENT);
        }
    }
}

/// set / add / replace / append / prepend: the value follows extras and key in the body.
#[allow(clippy::too_many_arguments)]
fn update<S: Storage>(
    s: &mut Session<S>,
    r: &Req,
    cmd: u8,
    quiet: bool,
    key: &[u8],
    flags: u32,
    exptime: i64,
    data: &[u8],
    head: usize,
    out: &mut Vec<u8>,
) -> Step {
    let vlen = r.bodylen - r.keylen - r.extlen;
    if !s.store.item_fits(key.len(), vlen, flags) {
        // memcached 1.6.18 counts no store_too_large for a binary store (measured)
        error(out, r, status::E2BIG);
        if cmd == op::SET {
            crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
            s.store.unlink_refused(key);
        }
        s.swallow = vlen;
        s.info.detail.record_set(key);
        return Step::Done(head);
    }
    // memcached counts it when it reads the header, before the value (which may never
    // come), once however many reads the value takes
    if !std::mem::replace(&mut s.set_recorded, true) {
        s.info.detail.record_set(key);
    }
    if data.len() < head + vlen {
        return Step::More;
    }
    let mode = match cmd {
        op::SET => StoreMode::Set,
        op::ADD => StoreMode::Add,
        op::REPLACE => StoreMode::Replace,
        op::APPEND => StoreMode::Append,
        _ => StoreMode::Prepend,
    };
    // A CAS in the header turns set/add/replace into memcached's "cas" command.
    let cas_cmd =
        r.cas != 0 && matches!(mode, StoreMode::Set | StoreMode::Add | StoreMode::Replace);
    let req = StoreRequest {
        mode: if cas_cmd { StoreMode::Set } else { mode },
        key,
        value: &data[head..head + vlen],
        flags,
        exptime,
        cas: if r.cas != 0 { Some(r.cas) } else { None },
        invalidate: false,
        new_cas: None,
        vivify: None,
    };
    crate::watch::log_lookup(&s.store, &s.info.watch, key, s.cfd);
    let outcome = s.store.store(&req);
    if let Ok(o) = &outcome {
        let request = (vlen, flags, exptime);
        let (store, w) = (&s.store, &s.info.watch);
        crate::watch::log_store(store, w, key, mode, cas_cmd, o.status, request, s.cfd);
    }
    match outcome {
        Ok(o) => match o.status {
            StoreStatus::Stored => ok(out, r, quiet, o.cas),
            StoreStatus::Exists => error(out, r, status::KEY_EEXISTS),
            StoreStatus::NotFound => error(out, r, status::KEY_ENOENT),
            StoreStatus::NotStored => not_stored(out, r, mode, cas_cmd),
        },
        Err(StoreError::TooLarge) => error(out, r, status::E2BIG),
        Err(StoreError::OutOfMemory) if s.store.chunked(key.len(), vlen, flags) => {
            let msg = crate::text::OUT_OF_MEMORY_DURING_READ;
            error_msg(out, r, status::ENOMEM, &msg[b"SERVER_ERROR ".len()..])
        }
        Err(StoreError::OutOfMemory) => {
            s.info.count_no_memory();
            if cmd == op::SET {
                s.store.unlink_refused(key);
            }
            // memcached's out_of_memory(): the text message without "SERVER_ERROR ".
            error_msg(out, r, status::ENOMEM, b"Out of memory allocating item")
        }
        Err(_) => error(out, r, status::EINVAL),
    }
    Step::Done(head + vlen)
}

/// memcached words a refused store by command: add → exists, replace → not found.
fn not_stored(out: &mut Vec<u8>, r: &Req, mode: StoreMode, cas_cmd: bool) {
    let st = match mode {
        _ if cas_cmd => status::NOT_STORED,
        StoreMode::Add => status::KEY_EEXISTS,
        StoreMode::Replace => status::KEY_ENOENT,
        _ => status::NOT_STORED,
    };
    error(out, r, st);
}

/// STAT: one packet per stat (key = name, value = value), then an empty packet.
fn stat<S: Storage>(s: &mut Session<S>, r: &Req, key: &[u8], out: &mut Vec<u8>) {
    let mut text = Vec::new();
    let mut terminated = true;
    if key.is_empty() {
        crate::stats::general_into(s, &mut text);
    } else if key.starts_with(b"reset") {
        s.store.reset_stats();
        s.info.reset();
        s.info.detail.clear();
    } else if key.starts_with(b"settings") {
        crate::stats::settings_into(s, &mut text);
    } else if key.starts_with(b"detail") {
        // as memcached's process_bin_stat: on/off switch, dump is one `detailed` packet
        match &key[6..] {
            k if k.starts_with(b" dump") => {
                let mut dump = Vec::new();
                s.info.detail.dump(&mut dump);
                let name = b"detailed";
                header(out, r, 0, 0, 8, (name.len() + dump.len()) as u32, 0);
                out.extend_from_slice(name);
                out.extend_from_slice(&dump);
            }
            k if k.starts_with(b" on") => s.info.detail.set_enabled(true),
            k if k.starts_with(b" off") => s.info.detail.set_enabled(false),
            _ => return error(out, r, status::KEY_ENOENT),
        }
    } else if crate::stats::sizes_switch(s, key, &mut text) {
        // memcached's get_stats answers these without a terminator packet
        terminated = false;
    } else if key == b"extstore" || !crate::stats::sub_into(s, key, &mut text) {
        // memcached's binary stats go to its engine's get_stats, which knows no extstore
        return error(out, r, status::KEY_ENOENT);
    }
    // Re-frame "STAT name value\r\n" lines as binary packets.
    for line in text.split(|&b| b == b'\n').filter(|l| l.len() > 5) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let body = &line[5..];
        let (name, value) = match body.iter().position(|&b| b == b' ') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, &b""[..]),
        };
        header(
            out,
            r,
            0,
            0,
            name.len() as u16,
            (name.len() + value.len()) as u32,
            0,
        );
        out.extend_from_slice(name);
        out.extend_from_slice(value);
    }
    if terminated {
        header(out, r, 0, 0, 0, 0, 0);
    }
}

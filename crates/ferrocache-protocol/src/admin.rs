//! memcached 1.6.18's runtime admin commands: `cache_memlimit`, `slabs reassign|automove`,
//! `lru_crawler crawl|metadump|enable|disable|sleep|tocrawl` and `lru tune|mode|temp_ttl`,
//! with its replies word for word (measured; see `docs/protocol.md`). They act on the engine
//! through [`Storage::admin`]; an engine without one answers them `ERROR`, as an unknown
//! command.

use crate::num::{parse_i32, parse_u32};
use crate::session::Session;
use crate::stats::c_fixed2;
use crate::storage::*;
use crate::text::{reply, Tokens};
use std::sync::atomic::Ordering::Relaxed;

/// memcached refuses a limit under this many megabytes.
const MEMLIMIT_MIN_MB: u32 = 8;
/// memcached's guard against a limit given in bytes.
const MEMLIMIT_MAX_MB: u32 = 1_000_000_000;
/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES`: class ids in a crawl list are 1 to 63.
const MAX_CLASSES: usize = 64;
/// `lru_crawler sleep` at most one second.
const CRAWLER_SLEEP_MAX_US: u32 = 1_000_000;

/// `cache_memlimit <megabytes> [noreply]` (3 or 4 tokens, checked by the caller).
pub(crate) fn cache_memlimit<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let noreply = t.noreply();
    let Some(store) = s.store.admin() else {
        return reply(out, false, b"ERROR");
    };
    let Some(mb) = parse_u32(t.get(1)) else {
        return reply(out, noreply, b"ERROR");
    };
    let msg: &[u8] = if mb < MEMLIMIT_MIN_MB {
        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"
    } else if mb > MEMLIMIT_MAX_MB {
        b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
    } else if store.set_memory_limit(mb as usize * 1024 * 1024) {
        b"OK"
    } else {
        b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust"
    };
    reply(out, noreply, msg)
}

/// memcached's reply to `slabs reassign` under `-o no_slab_reassign` (or `no_modern`).
const REASSIGN_DISABLED: &[u8] = b"CLIENT_ERROR slab reassignment disabled";

/// `slabs reassign <src> <dst>` (exactly 5 tokens: no noreply) and `slabs automove <0|1|2>
/// [noreply]`.
pub(crate) fn slabs<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(store) = s.store.admin() else {
        return reply(out, false, b"ERROR");
    };
    let ntok = t.count();
    if ntok == 5 && t.get(1) == b"reassign" {
        // memcached checks its setting before it reads the class ids
        if !store.runtime_settings().slab_reassign {
            return reply(out, false, REASSIGN_DISABLED);
        }
        let (Some(src), Some(dst)) = (parse_i32(t.get(2)), parse_i32(t.get(3))) else {
            return reply(out, false, b"CLIENT_ERROR bad command line format");
        };
        let msg: &[u8] = match store.slabs_reassign(src as i64, dst as i64) {
            Reassign::Moved => b"OK",
            Reassign::Busy => b"BUSY currently processing reassign request",
            Reassign::BadClass => b"BADCLASS invalid src or dst class id",
            Reassign::NoSpare => b"NOSPARE source class has no spare pages",
            Reassign::Same => b"SAME src and dst class are identical",
            Reassign::Disabled => REASSIGN_DISABLED,
        };
        reply(out, false, msg)
    } else if ntok >= 4 && t.get(1) == b"automove" {
        let noreply = t.noreply();
        if t.get(2) == b"ratio" {
            // memcached's age ratio of automove 1 (any double strtod reads, even negative)
            return match (ntok >= 5).then(|| parse_strtod(t.get(3))).flatten() {
                Some(r) => {
                    store.set_slab_automove_ratio(r);
                    reply(out, noreply, b"OK")
                }
                None => reply(out, noreply, b"ERROR"),
            };
        }
        match parse_u32(t.get(2)) {
            None => reply(out, noreply, b"CLIENT_ERROR bad command line format"),
            Some(mode) if mode <= 2 && store.set_slab_automove(mode as u8) => {
                reply(out, noreply, b"OK")
            }
            Some(_) => reply(out, noreply, b"ERROR"),
        }
    } else {
        reply(out, false, b"ERROR")
    }
}

/// memcached's class list of `lru_crawler crawl|metadump`: `all`, or ids 1 to 63 separated
/// by commas (empty parts skipped, as strtok does). `None` for a bad id.
fn class_list(arg: &[u8]) -> Option<[bool; MAX_CLASSES]> {
    let mut classes = [false; MAX_CLASSES];
    if arg == b"all" {
        classes[1..].fill(true);
        return Some(classes);
    }
    for part in arg.split(|&b| b == b',').filter(|p| !p.is_empty()) {
        match parse_u32(part) {
            Some(c) if (1..MAX_CLASSES as u32).contains(&c) => classes[c as usize] = true,
            _ => return None,
        }
    }
    Some(classes)
}

/// `lru_crawler …` (no noreply form: a trailing `noreply` is an extra token, `ERROR`).
/// False when a `metadump` reached the reply budget: the next feed resumes it.
pub(crate) fn lru_crawler<S: Storage>(
    s: &mut Session<S>,
    t: &Tokens<'_>,
    out: &mut Vec<u8>,
) -> bool {
    if let Some((classes, cursor)) = s.dump_resume.take() {
        // the dump this line began, stopped at the budget: its checks were passed
        return crate::stats::metadump(s, classes, cursor, out);
    }
    let Some(store) = s.store.admin() else {
        // the dump needs no crawler of the engine's
        if t.count() == 4 && t.get(1) == b"metadump" {
            return metadump(s, t.get(2), out);
        }
        reply(out, false, b"ERROR");
        return true;
    };
    let enabled = store.runtime_settings().lru_crawler;
    if (t.count(), t.get(1)) == (4, b"metadump".as_slice()) {
        if !enabled {
            reply(out, false, b"CLIENT_ERROR lru crawler disabled");
            return true;
        }
        return metadump(s, t.get(2), out);
    }
    crawler_command(store, enabled, t, out);
    true
}

/// The `lru_crawler` subcommands other than `metadump`.
fn crawler_command(store: &dyn Admin, enabled: bool, t: &Tokens<'_>, out: &mut Vec<u8>) {
    match (t.count(), t.get(1)) {
        (4, b"crawl") => {
            if !enabled {
                return reply(out, false, b"CLIENT_ERROR lru crawler disabled");
            }
            if t.get(2) == b"hash" {
                // memcached 1.6.18 starts no crawl of the hash table for expiry: its
                // `lru_crawler_crawl` fails with CRAWLER_ERROR (measured)
                return reply(out, false, b"ERROR an unknown error happened");
            }
            let Some(classes) = class_list(t.get(2)) else {
                return reply(out, false, b"BADCLASS invalid class id");
            };
            if !classes.contains(&true) {
                return reply(out, false, b"NOTSTARTED no items to crawl");
            }
            // index 0 = class 1; ids past the engine's last class have nothing to crawl
            let mut want: Vec<bool> = classes[1..].to_vec();
            want.resize(store.slab_class_count(), false);
            match store.crawl(want) {
                CrawlStart::Started => reply(out, false, b"OK"),
                CrawlStart::Busy => reply(out, false, b"BUSY currently processing crawler request"),
            }
        }
        (4, b"tocrawl") => match parse_u32(t.get(2)) {
            Some(n) => {
                store.set_crawler_tocrawl(n);
                reply(out, false, b"OK")
            }
            None => reply(out, false, b"CLIENT_ERROR bad command line format"),
        },
        (4, b"sleep") => match parse_u32(t.get(2)) {
            Some(us) if us > CRAWLER_SLEEP_MAX_US => {
                reply(out, false, b"CLIENT_ERROR sleep must be one second or less")
            }
            Some(us) => {
                store.set_crawler_sleep(us);
                reply(out, false, b"OK")
            }
            None => reply(out, false, b"CLIENT_ERROR bad command line format"),
        },
        (3, b"enable") => {
            if store.set_crawler_enabled(true) {
                reply(out, false, b"OK")
            } else {
                reply(out, false, b"ERROR failed to start lru crawler thread")
            }
        }
        (3, b"disable") => {
            store.set_crawler_enabled(false);
            reply(out, false, b"OK")
        }
        _ => reply(out, false, b"ERROR"),
    }
}

/// `lru_crawler metadump all|hash|<class list>`. memcached hands the connection to its
/// crawler thread for the dump, which it refuses behind any earlier request of the same
/// read, quiet ones too (`mn` and the other write-out points clear them). False when the
/// dump reached the reply budget (see [`crate::stats::metadump`]).
fn metadump<S: Storage>(s: &mut Session<S>, arg: &[u8], out: &mut Vec<u8>) -> bool {
    if !s.info.switches.dump_on() {
        // `-X`, checked after `lru crawler disabled`, before the pipelining check
        reply(out, false, b"ERROR metadump not allowed");
        return true;
    }
    if s.behind_earlier_requests(out) {
        reply(
            out,
            false,
            b"ERROR cannot pipeline other commands before metadump",
        );
        return true;
    }
    // `hash` (memcached walks the hash table instead of the LRUs): every item
    let list = if arg == b"hash" {
        class_list(b"all")
    } else {
        class_list(arg)
    };
    match list {
        None => reply(out, false, b"BADCLASS invalid class id"),
        Some(c) if !c.contains(&true) => reply(out, false, b"NOTSTARTED no items to crawl"),
        // over UDP memcached 1.6.18 sends nothing: its crawler writes to the unconnected
        // socket, which fails. A dump here would go to whatever source address a datagram
        // claims, every key, up to `maxPendingReplyBytes`, for 26 bytes asked.
        Some(_) if s.is_datagram() => {}
        Some(c) => return crate::stats::metadump(s, Box::new(c), VisitCursor::default(), out),
    }
    true
}

/// `extstore <setting> <value> [noreply]`, as memcached 1.6.18 built with extstore but
/// started without `-o ext_path` (Debian's): the setting is stored and shown by `stats
/// settings` (ferrocache has no external storage to apply it to) and the reply is `OK`; a
/// setting it does not know, a value `safe_strtoul`/`safe_strtod` refuses or fewer than 3
/// tokens is `ERROR`. A trailing `noreply` silences both. `free_memchunks <class> <n>`
/// (deprecated there) only checks its numbers.
pub(crate) fn extstore<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let noreply = t.noreply();
    let value = t.get(2);
    let number = |name: &'static str| (name, parse_u32(value).map(|v| v.to_string()), "0");
    // (the setting, its new value or None when memcached refuses the number, the value
    // memcached's safe_strtoul/safe_strtod leave in the setting then: they zero it first)
    let setting = match t.get(1) {
        _ if t.count() < 4 => None,
        b"free_memchunks" if t.count() > 4 => {
            let class_ok = parse_u32(value).is_some_and(|c| (c as usize) < MAX_CLASSES);
            let ok = class_ok && parse_u32(t.get(3)).is_some();
            return reply(out, noreply, if ok { b"OK" } else { b"ERROR" });
        }
        b"item_size" => Some(number("ext_item_size")),
        b"item_age" => Some(number("ext_item_age")),
        b"low_ttl" => Some(number("ext_low_ttl")),
        b"recache_rate" => Some(number("ext_recache_rate")),
        b"compact_under" => Some(number("ext_compact_under")),
        b"drop_under" => Some(number("ext_drop_under")),
        b"max_frag" => Some(("ext_max_frag", parse_strtod(value).map(c_fixed2), "0.00")),
        // read into a local there: a bad number leaves the setting
        b"drop_unread" => parse_u32(value).map(|v| {
            let shown = if v == 0 { "no" } else { "yes" };
            ("ext_drop_unread", Some(shown.to_string()), "")
        }),
        _ => None,
    };
    match setting {
        Some((name, Some(v), _)) => {
            s.info.change_setting(name, v);
            reply(out, noreply, b"OK")
        }
        Some((name, None, zero)) => {
            s.info.change_setting(name, zero.to_string());
            reply(out, noreply, b"ERROR")
        }
        None => reply(out, noreply, b"ERROR"),
    }
}

/// `lru tune|mode|temp_ttl …` (3 tokens at least, checked by the caller), as memcached's
/// `process_lru_command`: a trailing `noreply` silences every reply, even `ERROR`. Without
/// memcached's maintainer thread (`no_lru_maintainer`, `no_modern`) `mode` and `temp_ttl`
/// are not commands (`ERROR`), `tune` still is.
pub(crate) fn lru<S: Storage>(s: &Session<S>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let noreply = t.noreply();
    let Some(store) = s.store.admin() else {
        return reply(out, noreply, b"ERROR");
    };
    let ntok = t.count();
    let maintainer = s.info.switches.lru_maintainer.load(Relaxed);
    if !maintainer && matches!(t.get(1), b"mode" | b"temp_ttl") {
        return reply(out, noreply, b"ERROR");
    }
    let msg: &[u8] = match t.get(1) {
        b"tune" if ntok >= 7 => {
            let (hot, warm) = (parse_u32(t.get(2)), parse_u32(t.get(3)));
            let (hot_factor, warm_factor) = (parse_strtod(t.get(4)), parse_strtod(t.get(5)));
            match (hot, warm, hot_factor, warm_factor) {
                (Some(hot), Some(warm), Some(hf), Some(wf)) => {
                    // memcached adds the two as uint32_t (so it may wrap) and compares doubles
                    // with <= 0 (NaN passes)
                    if hot.wrapping_add(warm) > 80 {
                        b"ERROR hot and warm pcts must not exceed 80"
                    } else if wf <= 0.0 || hf <= 0.0 {
                        b"ERROR hot/warm age factors must be greater than 0"
                    } else {
                        store.set_lru_tune(hot, warm, hf, wf);
                        b"OK"
                    }
                }
                _ => b"ERROR",
            }
        }
        b"mode" if ntok >= 4 => match t.get(2) {
            b"flat" => {
                store.set_lru_segmented(false);
                b"OK"
            }
            b"segmented" => {
                store.set_lru_segmented(true);
                b"OK"
            }
            _ => b"ERROR",
        },
        // a TTL below 0 turns the TEMP LRU off (memcached keeps `temporary_ttl`); the
        // 32-bit truncation of safe_strtol may make a large number negative
        b"temp_ttl" if ntok >= 4 => match parse_i32(t.get(2)) {
            Some(ttl) => {
                store.set_lru_temp_ttl(u32::try_from(ttl).ok());
                b"OK"
            }
            None => b"ERROR",
        },
        _ => b"ERROR",
    };
    reply(out, noreply, msg)
}

/// memcached's `safe_strtod`: the whole token read by C's `strtod` (decimal or hexadecimal
/// floats, `inf`/`infinity`, `nan`/`nan(…)`, any case, a sign), refused when it overflows
/// or underflows (ERANGE: a result past `f64::MAX`, or below the smallest normal double
/// while its digits are not all 0).
pub(crate) fn parse_strtod(tok: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(tok).ok()?;
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let sign = if neg { -1.0 } else { 1.0 };
    if lower == "inf" || lower == "infinity" {
        return Some(sign * f64::INFINITY);
    }
    if lower == "nan"
        || (lower.starts_with("nan(")
            && lower.ends_with(')')
            && lower[4..lower.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Some(if neg { -f64::NAN } else { f64::NAN });
    }
    let (value, nonzero) = if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        let (mantissa, exp) = match lower.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (lower.as_str(), None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if int.len() + frac.len() == 0 || !digits(int) || !digits(frac) {
            return None;
        }
        if let Some(e) = exp {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            if e.is_empty() || !digits(e) {
                return None;
            }
        }
        let nonzero = int.bytes().chain(frac.bytes()).any(|b| b != b'0');
        (lower.parse::<f64>().ok()?, nonzero)
    };
    let out_of_range = value.is_infinite() || (nonzero && value.abs() < f64::MIN_POSITIVE);
    (!out_of_range).then_some(sign * value)
}

/// The part of a hexadecimal float after `0x`: hex digits with an optional point, then an
/// optional binary exponent `p[+-]digits`. The value and whether a digit was not 0.
fn parse_hex_float(hex: &str) -> Option<(f64, bool)> {
    let (mantissa, exp) = match hex.split_once('p') {
        Some((m, e)) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (
                m,
                e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                    i64::MIN / 2
                } else {
                    i64::MAX / 2
                }),
            )
        }
        None => (hex, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.len() + frac.len() == 0 {
        return None;
    }
    let mut value = 0f64;
    let mut nonzero = false;
    for b in int.bytes().chain(frac.bytes()) {
        let d = (b as char).to_digit(16)?;
        nonzero |= d != 0;
        value = value * 16.0 + d as f64;
    }
    let shift = exp.saturating_sub(4 * frac.len() as i64).clamp(-4000, 4000) as i32;
    Some((value * 2f64.powi(shift), nonzero))
}

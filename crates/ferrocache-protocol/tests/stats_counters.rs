//! `stats` command counters after edge-case requests, as memcached 1.6.18 counts them
//! (measured; found by the randomized differential test, which compares the counters
//! after each stream).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

const NAMES: [&str; 9] = [
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "get_hits",
    "get_misses",
    "touch_hits",
    "delete_misses",
    "store_too_large",
];

/// Feeds each input to its own session on one server, then reads `stats`: the `NAMES`
/// counters that are not zero, as `name=value` joined by spaces.
fn counters_after(inputs: &[&[u8]]) -> String {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut out = Vec::new();
    for input in inputs {
        Session::new(store.clone(), info.clone()).feed(input, &mut out);
    }
    let mut stats = Vec::new();
    Session::new(store, info).feed(b"stats\r\n", &mut stats);
    let stats = String::from_utf8_lossy(&stats).into_owned();
    let mut shown = Vec::new();
    for line in stats.lines() {
        let mut parts = line.split(' ');
        let (Some("STAT"), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if NAMES.contains(&name) && value != "0" {
            shown.push(format!("{name}={value}"));
        }
    }
    shown.join(" ")
}

const LONG_OPAQUE: &str = "OXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";

/// `mg … u` does not bump the item, but memcached counts the read (was: not counted).
#[test]
fn mg_u_counts_the_read() {
    assert_eq!(
        counters_after(&[b"set k 0 0 1\r\nx\r\nmg k u v\r\nmg k u T10\r\nmg j u\r\n"]),
        "cmd_get=2 cmd_set=1 cmd_touch=1 get_hits=1 get_misses=1 touch_hits=1"
    );
}

/// An `mg` refused for a too-long opaque: memcached counts a miss (with `T` too), not a hit.
#[test]
fn mg_with_a_long_opaque_counts_misses_only() {
    let hit = format!("set k 0 0 1\r\nx\r\nmg k v {LONG_OPAQUE}\r\n");
    let misses = format!("mg j {LONG_OPAQUE}\r\nmg j T10 {LONG_OPAQUE}\r\n");
    assert_eq!(counters_after(&[hit.as_bytes()]), "cmd_set=1");
    assert_eq!(
        counters_after(&[misses.as_bytes()]),
        "cmd_get=2 get_misses=2"
    );
}

/// An `mg … N` refused for a too-long opaque creates the missing item as a good one does,
/// counting nothing: memcached links it without a store (measured: `mg k N10` and 33
/// opaque bytes, `cmd_set 0`; was 1 here, an `add`), and hands out no win token (the
/// `mg` after it: no `W`, no `Z`).
#[test]
fn mg_n_with_a_long_opaque_counts_no_set() {
    let vivify = format!("mg k N10 {LONG_OPAQUE}\r\nmg k N10 T20 {LONG_OPAQUE}\r\n");
    assert_eq!(counters_after(&[vivify.as_bytes()]), "");
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut out = Vec::new();
    let input = format!("mg k N10 {LONG_OPAQUE}\r\nmg k v t\r\nmg k v\r\n");
    Session::new(store, Arc::new(ServerInfo::new("1.6.18"))).feed(input.as_bytes(), &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "CLIENT_ERROR opaque token too long\r\nVA 0 t10\r\n\r\nVA 0\r\n\r\n"
    );
}

/// A value without its `\r\n` (bad data chunk) still counts in `cmd_set`, text and meta.
#[test]
fn a_bad_data_chunk_counts_a_set() {
    assert_eq!(
        counters_after(&[b"set k 0 0 3\r\nabcde\r\nms k 2\r\nabcd\r\n"]),
        "cmd_set=2"
    );
}

/// `flush_all` with a bad delay is refused but counted.
#[test]
fn a_refused_flush_all_counts() {
    assert_eq!(counters_after(&[b"flush_all x\r\n"]), "cmd_flush=1");
}

/// A binary delete whose CAS does not match answers `0x0002` and counts no miss (text `md`
/// with a wrong `C` counts one).
#[test]
fn a_binary_delete_cas_mismatch_counts_no_miss() {
    let mut set = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0, 0, 0, 0, 10];
    set.extend_from_slice(&[0; 12]);
    set.extend_from_slice(&[0; 8]);
    set.extend_from_slice(b"kx");
    let mut delete = vec![0x80, 0x04, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    delete.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
    delete.push(b'k');
    let binary = [set, delete].concat();
    assert_eq!(counters_after(&[&binary]), "cmd_set=1");
    assert_eq!(
        counters_after(&[b"set k 0 0 1\r\nx\r\nmd k C5\r\n"]),
        "cmd_set=1 delete_misses=1"
    );
}

/// A binary STAT request (opcode 0x10) for `key`.
fn binary_stat(key: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x80,
        0x10,
        0,
        key.len() as u8,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        key.len() as u8,
    ];
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(key);
    p
}

/// Binary `stat detail on|off|dump` act as memcached's: on/off switch the per-prefix stats,
/// dump answers one `detailed` packet holding the text dump (measured: key `detailed`, value
/// `END\r\n` when nothing was recorded), then the closing empty packet.
#[test]
fn binary_stat_detail_switches_and_dumps() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut out = Vec::new();
    Session::new(store.clone(), info.clone()).feed(&binary_stat(b"detail dump"), &mut out);
    let mut want = vec![0x81, 0x10, 0, 8, 0, 0, 0, 0, 0, 0, 0, 13];
    want.extend_from_slice(&[0; 12]);
    want.extend_from_slice(b"detailedEND\r\n");
    want.extend_from_slice(&[0x81, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    want.extend_from_slice(&[0; 12]);
    assert_eq!(out, want);
    out.clear();
    Session::new(store.clone(), info.clone()).feed(&binary_stat(b"detail on"), &mut out);
    let mut text = Vec::new();
    Session::new(store, info).feed(b"get p:k\r\nstats detail dump\r\n", &mut text);
    assert_eq!(
        String::from_utf8_lossy(&text),
        "END\r\nPREFIX p get 1 hit 0 set 0 del 0\r\nEND\r\n"
    );
}

/// A value over the item size limit: the text `set` counts `store_too_large`, the binary one
/// does not (memcached 1.6.18, measured with a 2 MiB value: `Too large.` and 0).
#[test]
fn only_a_text_store_counts_too_large() {
    let vlen: u32 = 2 << 20;
    let mut set = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0];
    set.extend_from_slice(&(vlen + 9).to_be_bytes());
    set.extend_from_slice(&[0; 12]);
    set.extend_from_slice(&[0; 8]);
    set.push(b'k');
    set.resize(set.len() + vlen as usize, b'x');
    assert_eq!(counters_after(&[&set]), "");
    let mut text = format!("set k 0 0 {vlen}\r\n").into_bytes();
    text.resize(text.len() + vlen as usize, b'x');
    text.extend_from_slice(b"\r\n");
    assert_eq!(counters_after(&[&text]), "store_too_large=1");
}

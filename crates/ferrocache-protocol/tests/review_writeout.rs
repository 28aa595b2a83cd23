//! Write-out points found by a review against memcached 1.6.18: a get writes its replies
//! out only once it has answered `END`; a get refused (bad `gat` exptime, a key over 250
//! bytes) is no write-out point, so a later overlong key culls its error and what came
//! before it in the same read, as memcached does (measured: it answers only the last
//! `CLIENT_ERROR bad command line format`).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

fn replies(input: &str) -> String {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut out = Vec::new();
    s.feed(input.as_bytes(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_gat_with_a_bad_exptime_is_no_write_out_point() {
    let long = "x".repeat(251);
    for cmd in ["gat", "gats"] {
        assert_eq!(
            replies(&format!("delete k1\r\n{cmd} x k1\r\nget {long}\r\n")),
            "CLIENT_ERROR bad command line format\r\n",
            "{cmd}"
        );
    }
}

#[test]
fn a_get_refused_for_a_long_key_is_no_write_out_point() {
    let long = "x".repeat(251);
    assert_eq!(
        replies(&format!("delete k1\r\nget {long}\r\nget {long}\r\n")),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn a_get_that_answers_end_still_is_one() {
    let long = "x".repeat(251);
    assert_eq!(
        replies(&format!("delete k1\r\ngat 10\r\nget {long}\r\n")),
        "NOT_FOUND\r\nEND\r\nCLIENT_ERROR bad command line format\r\n"
    );
}

/// What a server would send at the end of a read of `input`: everything, unless the session
/// waits for the rest of a value (`awaiting_value`), then only up to `written_out`.
fn sent_now(input: &[u8]) -> (bool, Vec<u8>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut out = Vec::new();
    s.start_read();
    s.feed(input, &mut out);
    let waiting = s.awaiting_value();
    let upto = if waiting { s.written_out() } else { out.len() };
    (waiting, out[..upto].to_vec())
}

/// A binary set of `key` = `value` (flags and exptime 0).
fn bin_set(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x01, 0, key.len() as u8, 8, 0, 0, 0];
    p.extend_from_slice(&((8 + key.len() + value.len()) as u32).to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

#[test]
fn replies_before_a_value_still_coming_are_not_written_out() {
    // memcached reads a value on (conn_nread, conn_swallow) without writing out first
    assert_eq!(
        sent_now(b"version\r\nset b 0 0 10\r\n12"),
        (true, Vec::new())
    );
    assert_eq!(
        sent_now(b"set a 0 0 1\r\n1\r\nset b 0 0 10\r\n"),
        (true, Vec::new())
    );
    assert_eq!(
        sent_now(b"set a 0 0 1\r\n1\r\nms b 5\r\n12"),
        (true, Vec::new())
    );
    assert_eq!(
        sent_now(b"set a 0 0 1\r\n1\r\nset b 0 0 2000000\r\n12"),
        (true, Vec::new())
    );
    // a get's END is a write-out point
    assert_eq!(
        sent_now(b"get a\r\nset a 0 0 1\r\n1\r\nset b 0 0 1\r\n"),
        (true, b"END\r\n".to_vec())
    );
    // a request line still coming: everything goes
    assert_eq!(
        sent_now(b"set a 0 0 1\r\n1\r\nset b 0 0"),
        (false, b"STORED\r\n".to_vec())
    );
    // binary: held once the header, extras and key are in, not before
    let second = bin_set(b"bb", b"12345");
    for (cut, waiting) in [
        (second.len() - 3, true),
        (24 + 8 + 2, true),
        (30, false),
        (10, false),
    ] {
        let mut input = bin_set(b"a", b"1");
        input.extend_from_slice(&second[..cut]);
        let (w, sent) = sent_now(&input);
        assert_eq!(
            (w, sent.len()),
            (waiting, if waiting { 0 } else { 24 }),
            "cut at {cut}"
        );
    }
}

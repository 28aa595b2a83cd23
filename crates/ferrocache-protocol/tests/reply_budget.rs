//! `Limits::max_reply`: a feed stops producing replies at the budget, the rest of the
//! requests (or of one multiget) wait in the session and come out, in order and byte for
//! byte the same, over the next feeds.

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, Limits, ServerInfo, Session};

fn session(max_reply: usize) -> Session<Arc<Store>> {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let limits = Limits {
        max_reply,
        ..Limits::default()
    };
    Session::with_limits(store, Arc::new(ServerInfo::new("1.6.18")), limits)
}

/// Feeds `input`, then empty inputs while the session holds requests back; returns every
/// reply and how many feeds it took (each one's output must stay near the budget).
fn drain(
    s: &mut Session<Arc<Store>>,
    input: &[u8],
    budget: usize,
    item: usize,
) -> (Vec<u8>, usize) {
    let mut all = Vec::new();
    let mut out = Vec::new();
    let mut feeds = 0;
    let mut next: &[u8] = input;
    loop {
        out.clear();
        assert_eq!(s.feed(next, &mut out), Control::Continue);
        feeds += 1;
        assert!(
            out.len() < budget + item + 100,
            "one feed produced {} bytes",
            out.len()
        );
        all.extend_from_slice(&out);
        next = &[];
        if !s.held_back() {
            return (all, feeds);
        }
        assert!(feeds < 10_000, "no progress");
    }
}

#[test]
fn a_multiget_of_one_big_item_many_times_comes_out_in_pieces() {
    let value = vec![b'v'; 10_000];
    let mut s = session(32 * 1024);
    let mut out = Vec::new();
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    s.feed(&set, &mut out);
    assert_eq!(out, b"STORED\r\n");

    let line = format!("get{}\r\nmn\r\n", " big missing".repeat(100));
    let (all, feeds) = drain(&mut s, line.as_bytes(), 32 * 1024, value.len());
    let mut expected = Vec::new();
    for _ in 0..100 {
        expected.extend_from_slice(format!("VALUE big 0 {}\r\n", value.len()).as_bytes());
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\n");
    }
    expected.extend_from_slice(b"END\r\nMN\r\n");
    assert_eq!(all, expected);
    assert!(
        feeds >= 20,
        "{feeds} feeds for 1 MB of replies at a 32 KiB budget"
    );
}

#[test]
fn pipelined_requests_wait_past_the_budget() {
    let mut s = session(4096);
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        input.extend_from_slice(format!("set k{i} 0 0 100\r\n{}\r\n", "x".repeat(100)).as_bytes());
        expected.extend_from_slice(b"STORED\r\n");
    }
    for i in 0..200 {
        input.extend_from_slice(format!("mg k{i} v\r\n").as_bytes());
        expected.extend_from_slice(format!("VA 100\r\n{}\r\n", "x".repeat(100)).as_bytes());
    }
    let (all, feeds) = drain(&mut s, &input, 4096, 200);
    assert_eq!(all, expected);
    assert!(feeds > 5);
}

#[test]
fn a_bad_key_after_a_resumed_multiget_still_ends_it() {
    let mut s = session(64);
    let mut out = Vec::new();
    s.feed(b"set a 0 0 50\r\n", &mut out);
    s.feed(format!("{}\r\n", "a".repeat(50)).as_bytes(), &mut out);
    let line = format!("get a a a {}\r\nversion\r\n", "k".repeat(251));
    let (all, _) = drain(&mut s, line.as_bytes(), 64, 100);
    let text = String::from_utf8(all).unwrap();
    assert!(
        text.ends_with("CLIENT_ERROR bad command line format\r\nVERSION 1.6.18\r\n"),
        "{text}"
    );
}

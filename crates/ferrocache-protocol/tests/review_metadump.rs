//! `lru_crawler metadump` of a cache whose dump is many reply budgets: it is built a budget
//! at a time (the walk resumes where it stopped, over the next feeds), every item listed
//! once, then `END`, then the replies of what followed it. Before, the whole dump was built
//! in one feed: 200 000 items with 250-byte keys made 160 MB at once, and the server
//! dropped the client (a reading one too) once 64 MiB of it was queued.

use std::collections::HashSet;
use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, Limits, ServerInfo, Session};

const BUDGET: usize = 16 * 1024;

#[test]
fn a_metadump_many_budgets_long_comes_out_in_pieces_each_item_once() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let limits = Limits {
        max_reply: BUDGET,
        ..Limits::default()
    };
    let mut s = Session::with_limits(store, Arc::new(ServerInfo::new("1.6.18")), limits);
    let mut out = Vec::new();
    let mut sets = Vec::new();
    for i in 0..5000 {
        sets.extend_from_slice(format!("set key:{i} 0 0 1 noreply\r\nx\r\n").as_bytes());
    }
    s.feed(&sets, &mut out);
    assert!(out.is_empty());

    let mut all = Vec::new();
    let mut next: &[u8] = b"lru_crawler metadump all\r\nmn\r\n";
    let mut feeds = 0;
    loop {
        out.clear();
        // each feed is a socket read of its own, as the server feeds them
        s.start_read();
        assert_eq!(s.feed(next, &mut out), Control::Continue);
        feeds += 1;
        // a budget plus one walk step (256 items of at most ~80 bytes here)
        assert!(
            out.len() < BUDGET + 256 * 100,
            "one feed produced {} bytes",
            out.len()
        );
        all.extend_from_slice(&out);
        next = &[];
        if !s.held_back() {
            break;
        }
        assert!(feeds < 10_000, "no progress");
    }
    let text = String::from_utf8(all).unwrap();
    assert!(
        text.ends_with("END\r\nMN\r\n"),
        "{}",
        &text[text.len() - 40..]
    );
    let lines: Vec<&str> = text.trim_end_matches("END\r\nMN\r\n").lines().collect();
    let keys: HashSet<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap().trim_start_matches("key="))
        .collect();
    assert_eq!(lines.len(), 5000, "one line per item");
    assert_eq!(keys.len(), 5000, "every item once");
    assert!(keys.contains("key%3A4999"));
    assert!(feeds > 10, "{feeds} feeds for {} bytes", text.len());
}

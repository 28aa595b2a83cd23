//! The `snapshot` admin command: the session stops at it so the server can write the
//! snapshot and reply, and the requests after it run on the next feed; the `stats` lines
//! the server adds (persistence's `rdb_*`) are printed.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

fn session(enabled: bool) -> (Session<Arc<Store>>, Arc<ServerInfo>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    info.snapshot_enabled.store(enabled, Ordering::Relaxed);
    (Session::new(store, info.clone()), info)
}

#[test]
fn snapshot_stops_the_session_and_the_rest_runs_on_the_next_feed() {
    let (mut s, _) = session(true);
    let mut out = Vec::new();
    let ctl = s.feed(b"set a 0 0 1\r\n1\r\nsnapshot\r\nget a\r\nget", &mut out);
    assert_eq!(ctl, Control::Snapshot);
    assert_eq!(out, b"STORED\r\n");
    out.clear();
    // the server replies to the snapshot itself, then feeds again with nothing new
    assert_eq!(s.feed(b"", &mut out), Control::Continue);
    assert_eq!(out, b"VALUE a 0 1\r\n1\r\nEND\r\n");
    out.clear();
    assert_eq!(s.feed(b" a\r\n", &mut out), Control::Continue);
    assert_eq!(out, b"VALUE a 0 1\r\n1\r\nEND\r\n");
}

#[test]
fn snapshot_without_a_data_directory_is_an_error_line() {
    let (mut s, _) = session(false);
    let mut out = Vec::new();
    assert_eq!(
        s.feed(b"snapshot\r\nsnapshot now\r\n", &mut out),
        Control::Continue
    );
    assert_eq!(out, b"ERROR: snapshot needs --data-dir\r\nERROR\r\n");
}

#[test]
fn extra_stats_lines_follow_the_general_stats() {
    let (mut s, info) = session(true);
    info.set_extra_stats(vec![("rdb_changes_since_last_save".into(), "7".into())]);
    let mut out = Vec::new();
    s.feed(b"stats\r\n", &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with("STAT lru_bumps_dropped 0\r\nSTAT rdb_changes_since_last_save 7\r\nEND\r\n"),
        "{text}"
    );
}

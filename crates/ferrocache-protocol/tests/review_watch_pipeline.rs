//! `watch` behind replies of the same read: memcached 1.6.18 refuses it
//! (`resp_has_stack`: `ERROR cannot pipeline other commands before watch`) and the
//! connection stays a normal one, running what follows; a text `get`, `mn` or the
//! previous read's end has written the earlier replies out, and then it is accepted.
//! Replies measured against memcached 1.6.18.

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

fn session() -> (Session<Arc<Store>>, Arc<ServerInfo>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    (Session::new(store, info.clone()), info)
}

fn feed(s: &mut Session<Arc<Store>>, input: &[u8]) -> String {
    let mut out = Vec::new();
    assert_eq!(s.feed(input, &mut out), Control::Continue);
    String::from_utf8(out).unwrap()
}

const REFUSED: &str = "ERROR cannot pipeline other commands before watch\r\n";

#[test]
fn watch_behind_unwritten_replies_is_refused_and_the_rest_runs() {
    let (mut s, info) = session();
    let got = feed(
        &mut s,
        b"set x 0 0 1\r\n1\r\nwatch mutations fetchers\r\nget x\r\nset y 0 0 1\r\n2\r\n",
    );
    assert_eq!(
        got,
        format!("STORED\r\n{REFUSED}VALUE x 0 1\r\n1\r\nEND\r\nSTORED\r\n")
    );
    assert_eq!(s.watcher(), None);
    assert_eq!(info.watch.stats().watchers, 0);
    // the same for other replies before it, checked before the filters
    for before in [
        &b"version\r\n"[..],
        b"bogus\r\n",
        b"delete nope\r\n",
        b"mg x v\r\n",
    ] {
        let (mut s, info) = session();
        let mut input = before.to_vec();
        input.extend_from_slice(b"watch bogus\r\nversion\r\n");
        let got = feed(&mut s, &input);
        assert!(
            got.ends_with(&format!("{REFUSED}VERSION 1.6.18\r\n")),
            "{before:?}: {got:?}"
        );
        assert_eq!(info.watch.stats().watchers, 0);
    }
}

#[test]
fn watch_after_a_write_out_point_or_in_a_new_read_is_accepted() {
    for first in [&b"get x\r\n"[..], b"mn\r\n", b"gets x\r\n"] {
        let (mut s, info) = session();
        let mut input = first.to_vec();
        input.extend_from_slice(b"watch\r\nversion\r\n");
        let got = feed(&mut s, &input);
        assert!(!got.contains("ERROR"), "{first:?}: {got:?}");
        assert!(s.watcher().is_some(), "{first:?}");
        assert_eq!(info.watch.stats().watchers, 1);
    }
    let (mut s, _) = session();
    assert_eq!(feed(&mut s, b"set x 0 0 1\r\n1\r\n"), "STORED\r\n");
    assert_eq!(feed(&mut s, b"watch\r\n"), "");
    assert!(s.watcher().is_some());
}

/// Quiet requests have nothing to send, yet memcached 1.6.18 stacks a response object for
/// each one: `watch` and `lru_crawler metadump` behind them in the same read are refused
/// too, unless a `get`/`gets`/`mn` wrote out in between (measured replies).
#[test]
fn watch_and_metadump_behind_quiet_requests_of_the_same_read_are_refused() {
    const METADUMP_REFUSED: &str = "ERROR cannot pipeline other commands before metadump\r\n";
    for (input, want) in [
        (
            &b"set x 0 0 1 noreply\r\n1\r\nwatch\r\n"[..],
            REFUSED.to_string(),
        ),
        (b"ms k 1 q\r\n1\r\nwatch\r\n", REFUSED.to_string()),
        (b"mg nope q\r\nwatch\r\n", REFUSED.to_string()),
        (b"mn\r\nmg nope q\r\nwatch\r\n", format!("MN\r\n{REFUSED}")),
        (
            b"get x\r\nmg nope q\r\nwatch\r\n",
            format!("END\r\n{REFUSED}"),
        ),
        (
            b"set x 0 0 1 noreply\r\n1\r\nlru_crawler metadump all\r\n",
            METADUMP_REFUSED.to_string(),
        ),
        (
            b"mg nope q\r\nlru_crawler metadump all\r\n",
            METADUMP_REFUSED.to_string(),
        ),
    ] {
        let (mut s, info) = session();
        s.start_read();
        assert_eq!(feed(&mut s, input), want, "{input:?}");
        assert_eq!(s.watcher(), None, "{input:?}");
        assert_eq!(info.watch.stats().watchers, 0, "{input:?}");
        // still a normal connection
        assert_eq!(feed(&mut s, b"version\r\n"), "VERSION 1.6.18\r\n");
    }
    // a write-out point after the quiet ones clears them
    for (input, want) in [
        (&b"mg nope q\r\nmn\r\nwatch\r\n"[..], "MN\r\n"),
        (
            b"set x 0 0 1 noreply\r\n1\r\nget x\r\nwatch\r\n",
            "VALUE x 0 1\r\n1\r\nEND\r\n",
        ),
    ] {
        let (mut s, _) = session();
        s.start_read();
        assert_eq!(feed(&mut s, input), want, "{input:?}");
        assert!(s.watcher().is_some(), "{input:?}");
    }
    // the same requests sliced into several feeds of one read: still refused
    let (mut s, _) = session();
    s.start_read();
    let mut out = Vec::new();
    assert_eq!(s.feed(b"mg nope q\r\n", &mut out), Control::Continue);
    assert_eq!(s.feed(b"watch\r\n", &mut out), Control::Continue);
    assert_eq!(String::from_utf8(out).unwrap(), REFUSED);
    assert_eq!(s.watcher(), None);
    // quiet requests in one read, `watch` in the next: accepted
    let (mut s, _) = session();
    s.start_read();
    let mut out = Vec::new();
    assert_eq!(
        s.feed(b"mg nope q\r\nms k 1 q\r\n1\r\n", &mut out),
        Control::Continue
    );
    assert!(out.is_empty());
    s.start_read();
    assert_eq!(s.feed(b"watch\r\n", &mut out), Control::Continue);
    assert!(out.is_empty(), "{out:?}");
    assert!(s.watcher().is_some());
}

/// memcached writes a read's replies out after its 21st request, then after every 20th
/// (measured on 1.6.18 with n quiet `mg nope q` then `watch` in one read: accepted for
/// n = 21, 41, 61, 81, 101, refused for 19, 20, 22, 40, 42, 60, 62, 80), however the
/// read is sliced into feeds.
#[test]
fn the_write_out_every_20_requests_counts_the_whole_read() {
    for slice in [usize::MAX, 256, 7] {
        for (n, accepted) in [
            (19, false),
            (20, false),
            (21, true),
            (22, false),
            (40, false),
            (41, true),
            (42, false),
            (60, false),
            (61, true),
            (62, false),
            (80, false),
            (81, true),
            (101, true),
        ] {
            let (mut s, _) = session();
            let mut input = b"mg nope q\r\n".repeat(n);
            input.extend_from_slice(b"watch\r\n");
            s.start_read();
            let mut out = Vec::new();
            for part in input.chunks(slice.min(input.len())) {
                assert_eq!(s.feed(part, &mut out), Control::Continue);
            }
            let got = String::from_utf8(out).unwrap();
            if accepted {
                assert_eq!(got, "", "n={n} slice={slice}");
                assert!(s.watcher().is_some(), "n={n} slice={slice}");
            } else {
                assert_eq!(got, REFUSED, "n={n} slice={slice}");
                assert_eq!(s.watcher(), None, "n={n} slice={slice}");
            }
        }
    }
}

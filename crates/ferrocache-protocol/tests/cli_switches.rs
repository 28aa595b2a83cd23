//! memcached's command-line switches as sessions see them (`ServerInfo::switches`): `-C`,
//! `-F`, `-X`, `-W`, `-R`, `-B`. Expected replies measured against memcached 1.6.18 with
//! the same flags (`__test__/cli-memcached.test.ts` compares the servers end to end).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, Protocols, ServerInfo, Session};

fn server() -> (Arc<Store>, Arc<ServerInfo>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    (store, Arc::new(ServerInfo::new("1.6.18")))
}

fn feed(store: &Arc<Store>, info: &Arc<ServerInfo>, input: &[u8]) -> (Vec<u8>, Control) {
    let mut s = Session::new(store.clone(), info.clone());
    let mut out = Vec::new();
    let c = s.feed(input, &mut out);
    (out, c)
}

fn text(store: &Arc<Store>, info: &Arc<ServerInfo>, input: &str) -> String {
    String::from_utf8(feed(store, info, input.as_bytes()).0).unwrap()
}

/// [`text`] with `me`'s `la=` (seconds since the last access, may tick) as `la=_`.
fn text_la(store: &Arc<Store>, info: &Arc<ServerInfo>, input: &str) -> String {
    let out = text(store, info, input);
    let mut parts = out.split(" la=");
    let mut shown = parts.next().unwrap_or_default().to_string();
    for rest in parts {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        shown.push_str(" la=_");
        shown.push_str(&rest[digits..]);
    }
    shown
}

#[test]
fn disabled_cas_reads_zero_and_never_matches() {
    let (store, info) = server();
    info.switches.cas.store(false, Relaxed);
    assert_eq!(
        text(&store, &info, "set a 0 0 1\r\nx\r\ngets a\r\nmg a c\r\n"),
        "STORED\r\nVALUE a 0 1 0\r\nx\r\nEND\r\nHD c0\r\n"
    );
    assert_eq!(
        text(
            &store,
            &info,
            "cas a 0 0 1 0\r\ny\r\ncas b 0 0 1 0\r\ny\r\nms a 1 C0\r\ny\r\n"
        ),
        "EXISTS\r\nNOT_FOUND\r\nEX\r\n"
    );
    // a binary set's CAS is ignored, the reply's CAS is 0
    let mut req = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0];
    req.extend_from_slice(&5u64.to_be_bytes());
    req.extend_from_slice(&[0; 8]);
    req.extend_from_slice(b"ay");
    let (out, _) = feed(&store, &info, &req);
    assert_eq!(&out[6..8], &[0, 0], "status");
    assert_eq!(&out[16..24], &[0; 8], "cas");
}

#[test]
fn disabled_flush_dump_and_watch_are_refused() {
    let (store, info) = server();
    info.switches.flush.store(false, Relaxed);
    info.switches.dump.store(false, Relaxed);
    info.switches.watch.store(false, Relaxed);
    assert_eq!(
        text(
            &store,
            &info,
            "set a 0 0 1\r\nx\r\nflush_all\r\nflush_all noreply\r\nget a\r\n"
        ),
        "STORED\r\nCLIENT_ERROR flush_all not allowed\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
    );
    assert_eq!(
        text(&store, &info, "stats cachedump 1 0\r\n"),
        "CLIENT_ERROR stats cachedump not allowed\r\n"
    );
    assert_eq!(
        text(&store, &info, "lru_crawler metadump all\r\n"),
        "ERROR metadump not allowed\r\n"
    );
    assert_eq!(
        text(&store, &info, "watch\r\n"),
        "CLIENT_ERROR watch commands not allowed\r\n"
    );
    let flush = [
        0x80, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let (out, _) = feed(&store, &info, &flush);
    assert_eq!(&out[6..8], &[0, 0x20]);
    assert_eq!(&out[24..], b"Auth failure.");
}

#[test]
fn protocol_restriction_reads_every_byte_as_the_one_protocol() {
    let (store, info) = server();
    info.switches.set_protocols(Protocols::Ascii);
    // a binary header is the start of a text line: nothing until a newline
    let (out, c) = feed(&store, &info, &[0x80, 0x0a][..1]);
    assert!(out.is_empty() && c == Control::Continue);
    info.switches.set_protocols(Protocols::Binary);
    // 24 bytes of text: a header with a bad magic, hung up on without a word
    let (out, _) = feed(&store, &info, b"flush_all noreply\r\nget a\r\n");
    assert!(out.is_empty());
    let (out, c) = feed(&store, &info, b"version\r\n");
    assert!(
        out.is_empty() && c == Control::Continue,
        "short: waits for a whole header"
    );
}

#[test]
fn reqs_per_event_moves_the_write_out_points() {
    let (store, info) = server();
    info.switches.reqs_per_event.store(3, Relaxed);
    // a watch right after a write-out point (after the 4th request, then every 3rd) is
    // accepted; elsewhere it counts as pipelined
    for (n, accepted) in [
        (0, true),
        (1, false),
        (3, false),
        (4, true),
        (5, false),
        (7, true),
    ] {
        let input = format!("{}watch\r\n", "mg miss q\r\n".repeat(n));
        let out = text(&store, &info, &input);
        // (an accepted watch's OK goes to its log stream, not to these replies)
        let refused = out.contains("ERROR cannot pipeline other commands before watch");
        assert_eq!(!refused, accepted, "watch after {n}: {out:?}");
    }
}

/// memcached with `-C`: the session's switch and the engine's item sizes, as the server sets them.
fn no_cas_server() -> (Arc<Store>, Arc<ServerInfo>) {
    let (store, info) = server();
    info.switches.cas.store(false, Relaxed);
    store.set_use_cas(false);
    (store, info)
}

#[test]
fn disabled_cas_meta_compares_as_memcached() {
    // memcached compares md/ma's C with the item's CAS, which reads 0 (C0 goes ahead), and
    // stores ms's C on an item that cannot hold it (0: an append goes ahead, a set is EX)
    let (store, info) = no_cas_server();
    assert_eq!(
        text(
            &store,
            &info,
            "set k 0 0 1\r\n5\r\nma k C0 v\r\nma k C7 v\r\nms k 1 MA C0\r\nx\r\n\
             ms k 1 MP C9\r\nz\r\nms k 1 C0\r\nw\r\nms k 1 MS C3 I\r\nw\r\nmg k v\r\n\
             md k C7\r\nmd k C0\r\nmg k v\r\nset n 0 0 1\r\n1\r\nmd n C0 I T30\r\nmg n v\r\n"
        ),
        "STORED\r\nVA 1\r\n6\r\nEX\r\nHD\r\nHD\r\nEX\r\nEX\r\nVA 3\r\nz6x\r\nEX\r\nHD\r\nEN\r\n\
         STORED\r\nHD\r\nVA 1 X W\r\n1\r\n"
    );
}

#[test]
fn disabled_cas_items_are_eight_bytes_smaller() {
    // measured with memcached 1.6.18 -C (-I 1m): no 8 bytes of CAS in the item header
    let (store, info) = no_cas_server();
    let big = |n: usize| "v".repeat(n);
    assert_eq!(
        text(
            &store,
            &info,
            &format!("set a 0 0 1048524\r\n{}\r\n", big(1048524))
        ),
        "STORED\r\n"
    );
    assert_eq!(
        text(
            &store,
            &info,
            &format!("set a 0 0 1048525\r\n{}\r\n", big(1048525))
        ),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(
        text_la(
            &store,
            &info,
            &format!("set k 0 0 1048520\r\n{}\r\nappend k 0 0 4\r\nwxyz\r\nappend k 0 0 1\r\nw\r\nme k\r\n", big(1048520))
        ),
        "STORED\r\nSTORED\r\nNOT_STORED\r\nME k exp=-1 la=_ cas=0 fetch=no cls=39 size=1048576\r\n"
    );
    assert_eq!(
        text_la(&store, &info, "set j 1 0 10\r\n0123456789\r\nme j\r\n"),
        "STORED\r\nME j exp=-1 la=_ cas=0 fetch=no cls=1 size=66\r\n"
    );
    // chunked past 512 KiB by memcached's size: incr refuses it as non-numeric
    assert_eq!(
        text(
            &store,
            &info,
            &format!(
                "set i 0 0 524236\r\n1{}\r\nincr i 1\r\n",
                " ".repeat(524235)
            )
        ),
        "STORED\r\n2\r\n"
    );
    assert_eq!(
        text(
            &store,
            &info,
            &format!(
                "set h 0 0 524237\r\n1{}\r\nincr h 1\r\n",
                " ".repeat(524236)
            )
        ),
        "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
}

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

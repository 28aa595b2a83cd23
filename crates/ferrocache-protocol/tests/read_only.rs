//! A read-only replica's session (`ServerInfo::read_only`): every write, text, meta or
//! binary, is refused with its value skipped; reads and the replication commands pass.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrocache_core::{Config, Store, StoreMode, StoreRequest};
use ferrocache_protocol::{Control, ServerInfo, Session};

fn read_only_session() -> (Session<Arc<Store>>, Arc<ServerInfo>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut s = Session::new(store, info.clone());
    let mut out = Vec::new();
    s.feed(b"set k 3 0 2\r\nhi\r\n", &mut out);
    assert_eq!(out, b"STORED\r\n");
    info.read_only.store(true, Ordering::Relaxed);
    (s, info)
}

#[test]
fn text_and_meta_writes_are_refused_and_their_data_skipped() {
    let (mut s, _) = read_only_session();
    let mut out = Vec::new();
    let input = b"set k 0 0 5\r\nget k\r\nappend k 0 0 1\r\nx\r\ncas k 0 0 1 9\r\nx\r\n\
incr k 1\r\ndecr k 1\r\ntouch k 9\r\ndelete k\r\nflush_all\r\nms k 2\r\nmg\r\nmd k\r\nma k\r\n\
set q 0 0 1 noreply\r\nz\r\nget k\r\n";
    assert_eq!(s.feed(input, &mut out), Control::Continue);
    let err = "SERVER_ERROR replica is read-only\r\n";
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}VALUE k 3 2\r\nhi\r\nEND\r\n", err.repeat(11))
    );
}

#[test]
fn mg_vivify_is_served_as_a_plain_mg_without_a_placeholder() {
    let (mut s, info) = read_only_session();
    let mut out = Vec::new();
    let input = b"mg miss N30 v\r\nmg miss N30 s t k O1\r\nmg miss N30 q v\r\nmg k N30 v\r\nmn\r\n";
    assert_eq!(s.feed(input, &mut out), Control::Continue);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "EN\r\nEN kmiss O1\r\nVA 2\r\nhi\r\nMN\r\n"
    );
    // nothing was created: once writable, the key is still missing and N vivifies it
    info.read_only.store(false, Ordering::Relaxed);
    let mut out = Vec::new();
    s.feed(b"mg miss v\r\nmg miss N30 v\r\nmg miss v\r\n", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "EN\r\nVA 0 W\r\n\r\nVA 0 Z\r\n\r\n"
    );
}

#[test]
fn binary_writes_are_refused_with_their_value_skipped() {
    // a new connection: its first byte picks the binary protocol
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let req = StoreRequest {
        flags: 3,
        ..StoreRequest::new(StoreMode::Set, b"k", b"hi")
    };
    store.store(&req).unwrap();
    info.read_only.store(true, Ordering::Relaxed);
    let mut s = Session::new(store, info);
    // SET k (extras 8, key 1, value 2), then GET k
    let mut input = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0];
    input.extend_from_slice(&[0; 8]);
    input.extend_from_slice(&[0; 8]);
    input.extend_from_slice(b"kno");
    input.extend_from_slice(&[0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    input.extend_from_slice(&[0; 8]);
    input.push(b'k');
    let mut out = Vec::new();
    assert_eq!(s.feed(&input, &mut out), Control::Continue);
    // status 0x0083 with the message, then the GET finds the old value
    assert_eq!(&out[0..2], &[0x81, 0x01]);
    assert_eq!(&out[6..8], &[0x00, 0x83]);
    assert_eq!(&out[24..44], b"replica is read-only");
    assert_eq!(&out[44..46], &[0x81, 0x00]);
    assert_eq!(&out[50..52], &[0, 0]);
    assert!(out.ends_with(b"hi"));
}

#[test]
fn replication_commands_stop_the_session_for_the_server() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut s = Session::new(store, info.clone());
    let mut out = Vec::new();
    assert_eq!(
        s.feed(b"psync ? 0\r\nget a\r\n", &mut out),
        Control::Snapshot
    );
    assert_eq!(info.take_admin_request().as_deref(), Some("psync ? 0"));
    assert_eq!(info.take_admin_request(), None);
    assert!(out.is_empty());
    assert_eq!(s.feed(b"replicaof no one\r\n", &mut out), Control::Snapshot);
    assert_eq!(
        info.take_admin_request().as_deref(),
        Some("replicaof no one")
    );
}

#[test]
fn gat_and_mg_t_are_served_without_changing_the_ttl() {
    // the primary's expiry is never streamed: a TTL set here would outlive it
    let clock = ferrocache_core::Clock::manual(1_700_000_000);
    let store = Arc::new(Store::new(Config::default().background(false).clock(clock)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let ttl_of = |key: &str| {
        let mut s = Session::new(store.clone(), info.clone());
        let mut out = Vec::new();
        s.feed(format!("mg {key} t\r\n").as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    };
    let mut s = Session::new(store.clone(), info.clone());
    let mut out = Vec::new();
    s.feed(b"set k 3 100 2\r\nhi\r\nset b 0 100 1\r\nx\r\n", &mut out);
    info.read_only.store(true, Ordering::Relaxed);
    let mut out = Vec::new();
    s.feed(b"gat 0 k\r\ngats 5000 k\r\nmg k T0 v\r\n", &mut out);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("VALUE k 3 2\r\nhi\r\nEND\r\nVALUE k 3 2 "),
        "served"
    );
    assert_eq!(ttl_of("k"), "HD t100\r\n");
    // binary GAT b with exptime 0 (never), on its own session
    let mut b = Session::new(store.clone(), info.clone());
    let mut input = vec![0x80, 0x1d, 0, 1, 4, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0];
    input.extend_from_slice(&[0; 8]);
    input.extend_from_slice(&[0, 0, 0, 0]);
    input.push(b'b');
    let mut out = Vec::new();
    b.feed(&input, &mut out);
    assert_eq!(&out[6..8], &[0, 0], "GAT served");
    assert!(out.ends_with(b"x"));
    assert_eq!(ttl_of("b"), "HD t100\r\n");
    // a writable node (a primary, or --replica-writable) changes it as before
    info.read_only.store(false, Ordering::Relaxed);
    let mut out = Vec::new();
    s.feed(b"gat 0 k\r\n", &mut out);
    assert_eq!(ttl_of("k"), "HD t-1\r\n");
}

//! Writes while the append-only log cannot write (`Store::accepting_writes` false): every
//! write, text, meta or binary, is refused with its value skipped, as Redis refuses writes
//! its log cannot keep; reads pass, and writes are taken again once the log recovers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ferrocache_core::journal::{Journal, Record};
use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

/// A journal standing in for a log on a full disk: `accepting` (.0) is whatever the test
/// says, and with .1 set the next record fails (the write that logs it finds the log
/// refusing once it is done: a disk that fills during the write).
struct TestLog(AtomicBool, AtomicBool);

impl Journal for TestLog {
    fn record(&self, _r: &Record<'_>) {
        if self.1.swap(false, Ordering::Relaxed) {
            self.0.store(false, Ordering::Relaxed);
        }
    }
    fn accepting(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn session() -> (Session<Arc<Store>>, Arc<TestLog>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let log = Arc::new(TestLog(AtomicBool::new(true), AtomicBool::new(false)));
    store.set_journal(log.clone());
    let s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    (s, log)
}

/// A binary SET of `key` (one byte) = `value` (two bytes), flags and expiry 0.
fn binary_set(key: u8, value: &[u8; 2]) -> Vec<u8> {
    let mut p = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0];
    p.extend_from_slice(&[0; 8]); // opaque + CAS
    p.extend_from_slice(&[0; 8]); // extras: flags + exptime
    p.push(key);
    p.extend_from_slice(value);
    p
}

const REFUSED: &str = "SERVER_ERROR append-only log write failed; writes refused\r\n";

#[test]
fn text_and_meta_writes_are_refused_while_the_log_cannot_write() {
    let (mut s, gate) = session();
    let mut out = Vec::new();
    s.feed(b"set k 3 0 2\r\nhi\r\n", &mut out);
    assert_eq!(out, b"STORED\r\n");
    gate.0.store(false, Ordering::Relaxed);
    let mut out = Vec::new();
    let input = b"set k 0 0 5\r\nhello\r\nget k\r\nincr k 1\r\ndelete k\r\nflush_all\r\n\
ms k 2\r\nno\r\nmd k\r\nma k\r\nmg miss N30 v\r\nget k\r\n";
    assert_eq!(s.feed(input, &mut out), Control::Continue);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "{REFUSED}VALUE k 3 2\r\nhi\r\nEND\r\n{}EN\r\nVALUE k 3 2\r\nhi\r\nEND\r\n",
            REFUSED.repeat(6)
        )
    );
    // the log writes again: so do clients
    gate.0.store(true, Ordering::Relaxed);
    let mut out = Vec::new();
    s.feed(b"set k 0 0 3\r\nnew\r\nget k\r\n", &mut out);
    assert_eq!(out, b"STORED\r\nVALUE k 0 3\r\nnew\r\nEND\r\n");
}

#[test]
fn binary_writes_are_refused_with_their_value_skipped() {
    let (mut s, gate) = session();
    gate.0.store(false, Ordering::Relaxed);
    // SET k = "no", then NOOP
    let mut input = binary_set(b'k', b"no");
    input.extend_from_slice(&[0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    input.extend_from_slice(&[0; 8]);
    let mut out = Vec::new();
    assert_eq!(s.feed(&input, &mut out), Control::Continue);
    assert_eq!(&out[0..2], &[0x81, 0x01]);
    assert_eq!(&out[6..8], &[0x00, 0x82], "ENOMEM, the value skipped");
    let body = u32::from_be_bytes(out[8..12].try_into().unwrap()) as usize;
    assert_eq!(
        &out[24..24 + body],
        b"append-only log write failed; writes refused"
    );
    let noop = &out[24 + body..];
    assert_eq!(&noop[0..2], &[0x81, 0x0a], "the NOOP after it is answered");
}

#[test]
fn a_write_whose_own_record_fails_is_not_acknowledged() {
    let (mut s, log) = session();
    let cases: &[(&[u8], &str)] = &[
        (b"set k 0 0 2\r\nhi\r\n", REFUSED),
        (b"incr n 1\r\n", REFUSED),
        (b"ms m 2 q\r\nhi\r\n", REFUSED),
        (b"set q 0 0 1 noreply\r\nx\r\n", ""),
    ];
    s.feed(b"set n 0 0 1\r\n5\r\n", &mut Vec::new());
    for (input, want) in cases {
        log.0.store(true, Ordering::Relaxed);
        log.1.store(true, Ordering::Relaxed);
        let mut out = Vec::new();
        assert_eq!(s.feed(input, &mut out), Control::Continue);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            *want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // the changes were made (their records are retried by the next write), only not acknowledged
    log.0.store(true, Ordering::Relaxed);
    let mut out = Vec::new();
    s.feed(b"get k n m q\r\n", &mut out);
    assert_eq!(
        out,
        b"VALUE k 0 2\r\nhi\r\nVALUE n 0 1\r\n6\r\nVALUE m 0 2\r\nhi\r\nVALUE q 0 1\r\nx\r\nEND\r\n"
    );
    // a write whose record goes through is acknowledged as before
    let mut out = Vec::new();
    s.feed(b"set k 0 0 2\r\nok\r\n", &mut out);
    assert_eq!(out, b"STORED\r\n");
}

#[test]
fn a_binary_write_whose_own_record_fails_is_not_acknowledged() {
    let (mut s, log) = session();
    log.1.store(true, Ordering::Relaxed);
    let input = binary_set(b'k', b"hi");
    let mut out = Vec::new();
    assert_eq!(s.feed(&input, &mut out), Control::Continue);
    assert_eq!(&out[0..2], &[0x81, 0x01]);
    assert_eq!(&out[6..8], &[0x00, 0x82], "ENOMEM instead of success");
    let body = u32::from_be_bytes(out[8..12].try_into().unwrap()) as usize;
    assert_eq!(out.len(), 24 + body, "one reply");
    assert_eq!(&out[24..], b"append-only log write failed; writes refused");
}

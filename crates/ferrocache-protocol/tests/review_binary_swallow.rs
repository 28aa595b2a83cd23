//! A binary error that skips a body (too large, unknown opcode, SASL without users) is
//! sent once the body has been swallowed, as memcached 1.6.18 does (measured: nothing
//! after the header alone; the error with the next reply once the body has passed).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

fn header(opcode: u8, keylen: u16, extlen: u8, bodylen: u32) -> Vec<u8> {
    let mut h = vec![0x80, opcode];
    h.extend_from_slice(&keylen.to_be_bytes());
    h.extend_from_slice(&[extlen, 0, 0, 0]);
    h.extend_from_slice(&bodylen.to_be_bytes());
    h.extend_from_slice(&[0; 12]);
    h
}

const NOOP: u8 = 0x0a;

#[test]
fn the_error_waits_for_the_body() {
    // (request head, body still to come, status)
    let mut set = header(0x01, 1, 8, 8 + 1 + 2_000_000);
    set.extend_from_slice(&[0; 8]);
    set.push(b'k');
    let mut sasl = header(0x21, 5, 0, 5 + 10);
    sasl.extend_from_slice(b"PLAIN");
    let cases = [
        (set, 2_000_000, 0x0003u16),
        (header(0x1b, 0, 0, 10), 10, 0x0081),
        (sasl, 10, 0x0081),
    ];
    for (head, body, status) in cases {
        let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
        let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
        let mut out = Vec::new();
        s.feed(&head, &mut out);
        assert!(
            out.is_empty(),
            "opcode {:#x}: {} bytes before the body",
            head[1],
            out.len()
        );
        let mut rest = vec![b'x'; body - 1];
        s.feed(&rest, &mut out);
        assert!(
            out.is_empty(),
            "opcode {:#x}: sent before the last byte",
            head[1]
        );
        rest = vec![b'x'];
        rest.extend_from_slice(&header(NOOP, 0, 0, 0));
        s.feed(&rest, &mut out);
        assert_eq!(
            u16::from_be_bytes([out[6], out[7]]),
            status,
            "{:#x}",
            head[1]
        );
        let first = 24 + u32::from_be_bytes([out[8], out[9], out[10], out[11]]) as usize;
        assert_eq!(out.len(), first + 24, "the error, then the noop");
        assert_eq!(out[first + 1], NOOP);
    }
}

/// A body past 2^31 - 1 bytes: memcached's swallow count (an int) is negative, so it
/// answers at once and reads the next bytes as requests (measured on a fresh 1.6.18: a
/// set, setq, add or append with a 4 GB body answers `Too large.`, an unknown opcode
/// `Unknown command`, then the noop that followed is answered).
#[test]
fn a_body_past_2_31_is_not_swallowed() {
    let mut set = header(0x01, 1, 8, 4_000_000_000);
    set.extend_from_slice(&[0; 8]);
    set.push(b'k');
    let mut set_edge = header(0x01, 1, 8, (1 << 31) + 9);
    set_edge.extend_from_slice(&[0; 8]);
    set_edge.push(b'k');
    let mut append = header(0x0e, 1, 0, 4_000_000_000);
    append.push(b'k');
    let cases = [
        (set, 0x0003u16),
        (set_edge, 0x0003),
        (append, 0x0003),
        (header(0x42, 0, 0, 4_000_000_000), 0x0081),
    ];
    for (mut input, status) in cases {
        let op = input[1];
        input.extend_from_slice(&header(NOOP, 0, 0, 0));
        let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
        let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
        let mut out = Vec::new();
        s.feed(&input, &mut out);
        assert!(out.len() >= 48, "opcode {op:#x}: {} reply bytes", out.len());
        assert_eq!(u16::from_be_bytes([out[6], out[7]]), status, "{op:#x}");
        let first = 24 + u32::from_be_bytes([out[8], out[9], out[10], out[11]]) as usize;
        assert_eq!(
            out[first + 1],
            NOOP,
            "{op:#x}: the noop is read as a request"
        );
        assert_eq!(s.buffered(), 0);
    }
    // 2^31 + 8: the value is 2^31 - 1 bytes, still swallowed (nothing sent yet)
    let mut edge = header(0x01, 1, 8, (1 << 31) + 8);
    edge.extend_from_slice(&[0; 8]);
    edge.push(b'k');
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut out = Vec::new();
    s.feed(&edge, &mut out);
    s.feed(&header(NOOP, 0, 0, 0), &mut out);
    assert!(out.is_empty());
}

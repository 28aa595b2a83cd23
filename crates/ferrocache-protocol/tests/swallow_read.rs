//! A skip (the body of an unknown binary opcode, a too-large value) that runs on into a
//! later read: memcached reads just the rest of it from the socket and writes its replies
//! out before reading on, so a hang-up in that later read keeps them (found by the
//! randomized differential test, seed 14412).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

/// A binary request header: opcode, key length, body length.
fn header(opcode: u8, keylen: u16, bodylen: u32) -> Vec<u8> {
    let mut h = vec![0x80, opcode];
    h.extend_from_slice(&keylen.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(&bodylen.to_be_bytes());
    h.extend_from_slice(&[0; 12]);
    h
}

/// Unknown opcode 0x40 with a 3-byte key and a body length of 13: memcached skips 13 bytes
/// after the key, 5 of them in the first read; the second read ends the skip, then a bad
/// magic byte: memcached answers `Unknown command`, then hangs up (measured).
#[test]
fn an_error_after_a_skip_from_an_earlier_read_is_written_before_a_hang_up() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut first = header(0x40, 3, 13);
    first.extend_from_slice(b"abc12345");
    let mut out = Vec::new();
    assert_eq!(s.feed(&first, &mut out), Control::Continue);
    assert!(out.is_empty(), "the error waits for the body");
    s.start_read();
    let mut second = b"67890abc".to_vec();
    second.extend_from_slice(&[0x81; 24]);
    assert_eq!(s.feed(&second, &mut out), Control::Close);
    let mut want = vec![0x81, 0x40, 0, 0, 0, 0, 0, 0x81, 0, 0, 0, 15];
    want.extend_from_slice(&[0; 12]);
    want.extend_from_slice(b"Unknown command");
    assert_eq!(out, want);
}

/// The same skip ending inside the read it began in: no write-out point, the hang-up loses
/// the error (memcached's skip took the bytes from its buffer).
#[test]
fn a_skip_within_one_read_is_not_written_out() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut read = header(0x40, 3, 13);
    read.extend_from_slice(b"abc1234567890abc");
    read.extend_from_slice(&[0x81; 24]);
    let mut out = Vec::new();
    assert_eq!(s.feed(&read, &mut out), Control::Close);
    assert!(out.is_empty());
}

//! Differences from memcached 1.6.18 found by the meta/binary review (each reply measured
//! against the real server): memcached reads a TCP connection 16 KiB at a time, and a
//! value running past its read is read straight from the socket and ends with a
//! write-out, so what a later hang-up or overlong `get` key takes back stops there; a
//! binary store whose body length is negative as an int writes nothing out; binary `stat
//! extstore` is unknown to memcached's binary stats.

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

fn session() -> Session<Arc<Store>> {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    Session::new(store, Arc::new(ServerInfo::new("1.6.18")))
}

/// A binary request: opcode, key, extras, value, and the body length to claim.
fn packet(opcode: u8, key: &[u8], extras: &[u8], value: &[u8], bodylen: Option<u32>) -> Vec<u8> {
    let body = bodylen.unwrap_or((extras.len() + key.len() + value.len()) as u32);
    let mut p = vec![0x80, opcode];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    p.extend_from_slice(&body.to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}


/// A binary reply header's status.
fn statuses(mut out: &[u8]) -> Vec<u16> {
    let mut all = Vec::new();
    while out.len() >= 24 {
        all.push(u16::from_be_bytes([out[6], out[7]]));
        let body = u32::from_be_bytes([out[8], out[9], out[10], out[11]]) as usize;
        out = &out[24 + body..];
    }
    all
}

const BAD_MAGIC: [u8; 24] = [0; 24];


/// A set whose body length makes its value length negative as an int: memcached answers
/// `Too large.` but does not write out, so a bad magic byte in the same read loses it;
/// an unknown opcode with such a body writes its error out.
#[test]
fn a_negative_body_length_store_error_is_not_written_out() {
    let mut s = session();
    let mut read = packet(0x01, b"a", &[0; 8], b"", Some(0x8000_0009));
    read.extend_from_slice(&BAD_MAGIC);
    let mut out = Vec::new();
    assert_eq!(s.feed(&read, &mut out), Control::Close);
    assert_eq!(out, b"");

    let mut s = session();
    let read = packet(0x01, b"a", &[0; 8], b"", Some(0x8000_0009));
    let mut out = Vec::new();
    assert_eq!(s.feed(&read, &mut out), Control::Continue);
    assert_eq!(statuses(&out), [3], "Too large. when nothing follows");
}

/// Binary `stat extstore`: memcached's binary stats know only items, slabs, sizes (and
/// reset, settings, detail): `Not found`.
#[test]
fn binary_stat_extstore_is_not_found() {
    let mut s = session();
    let mut out = Vec::new();
    s.feed(&packet(0x10, b"extstore", b"", b"", None), &mut out);
    assert_eq!(statuses(&out), [1]);
    assert!(out.ends_with(b"Not found"));
}

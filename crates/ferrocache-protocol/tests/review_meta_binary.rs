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

fn set(key: &[u8], value: &[u8]) -> Vec<u8> {
    packet(0x01, key, &[0; 8], value, None)
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

fn key_251() -> String {
    "k".repeat(251)
}

/// `set b` with a 17000-byte value runs past memcached's first 16 KiB read: it writes
/// both `STORED` out once the value is in, so the later overlong key culls only `set c`'s.
#[test]
fn a_text_value_past_the_read_is_written_out() {
    let mut s = session();
    let mut read = b"set a 0 0 1\r\nx\r\nset b 0 0 17000\r\n".to_vec();
    read.extend_from_slice(&[b'y'; 17000]);
    read.extend_from_slice(b"\r\nset c 0 0 1\r\nz\r\nget ");
    read.extend_from_slice(key_251().as_bytes());
    read.extend_from_slice(b"\r\n");
    let mut out = Vec::new();
    assert_eq!(s.feed(&read, &mut out), Control::Continue);
    assert_eq!(
        out,
        b"STORED\r\nSTORED\r\nCLIENT_ERROR bad command line format\r\n"
    );
}

/// The same within 16 KiB: one read, the overlong key culls every `STORED`.
#[test]
fn a_value_inside_the_read_is_culled_with_the_rest() {
    let mut s = session();
    let mut read = b"set a 0 0 1\r\nx\r\nset b 0 0 15000\r\n".to_vec();
    read.extend_from_slice(&[b'y'; 15000]);
    read.extend_from_slice(b"\r\nset c 0 0 1\r\nz\r\nget ");
    read.extend_from_slice(key_251().as_bytes());
    read.extend_from_slice(b"\r\n");
    let mut out = Vec::new();
    s.feed(&read, &mut out);
    assert_eq!(out, b"CLIENT_ERROR bad command line format\r\n");
}

/// A request line reaching past the read (here `set c` at 16 300 bytes in): memcached
/// writes out before it reads the rest of the line, then `set c`'s read is culled alone.
#[test]
fn a_line_across_the_read_boundary_is_a_write_out_point() {
    let mut s = session();
    let mut read = b"set a 0 0 1\r\nx\r\nms b 16300\r\n".to_vec();
    read.extend_from_slice(&[b'y'; 16300]);
    read.extend_from_slice(b"\r\nms c 1\r\nz\r\nget ");
    read.extend_from_slice(key_251().as_bytes());
    read.extend_from_slice(b"\r\n");
    let mut out = Vec::new();
    s.feed(&read, &mut out);
    assert_eq!(
        out,
        b"STORED\r\nHD\r\nHD\r\nCLIENT_ERROR bad command line format\r\n"
    );
}

/// A too-large value running past the read: its `SERVER_ERROR` is written once skipped.
#[test]
fn a_skipped_value_past_the_read_is_written_out() {
    let mut s = session();
    let n = 1_048_576 + 1000;
    let mut read = format!("set a 0 0 1\r\nx\r\nset b 0 0 {n}\r\n").into_bytes();
    read.extend(std::iter::repeat_n(b'y', n));
    read.extend_from_slice(b"\r\nset c 0 0 1\r\nz\r\nget ");
    read.extend_from_slice(key_251().as_bytes());
    read.extend_from_slice(b"\r\n");
    let mut out = Vec::new();
    s.feed(&read, &mut out);
    assert_eq!(
        out,
        b"STORED\r\nSERVER_ERROR object too large for cache\r\n\
          CLIENT_ERROR bad command line format\r\n"
    );
}

/// Binary: a 30000-byte set value and an unknown opcode's 30000-byte body each end a
/// read; the bad magic byte behind them takes back only the last set's reply.
#[test]
fn binary_bodies_past_the_read_are_written_out() {
    let mut s = session();
    let mut read = set(b"a", b"v");
    read.extend(set(b"b", &[b'y'; 30000]));
    read.extend(set(b"c", b"v"));
    read.extend_from_slice(&BAD_MAGIC);
    let mut out = Vec::new();
    assert_eq!(s.feed(&read, &mut out), Control::Close);
    assert_eq!(statuses(&out), [0, 0]);

    let mut s = session();
    let mut read = set(b"a", b"v");
    read.extend(packet(0x50, b"", b"", &[b'y'; 30000], None));
    read.extend(set(b"c", b"v"));
    read.extend_from_slice(&BAD_MAGIC);
    let mut out = Vec::new();
    assert_eq!(s.feed(&read, &mut out), Control::Close);
    assert_eq!(statuses(&out), [0, 0x81]);
}

/// A line with no `\n` in more than 2048 bytes of memcached's buffer closes the
/// connection even when its `\n` comes later (here the line starts 14 000 bytes in);
/// a `get` line in that place is served (its 3000-byte key refused), after a write-out.
#[test]
fn a_long_line_cut_by_the_read_closes_unless_a_get() {
    let long_key_line = |cmd: &str| {
        let mut read = b"set a 0 0 13960\r\n".to_vec();
        read.extend_from_slice(&[b'y'; 13960]);
        read.extend_from_slice(b"\r\n");
        read.extend_from_slice(cmd.as_bytes());
        read.extend(std::iter::repeat_n(b'a', 3000));
        read.extend_from_slice(b" \r\n");
        read
    };
    let mut s = session();
    let mut out = Vec::new();
    assert_eq!(s.feed(&long_key_line("mg a O"), &mut out), Control::Close);
    assert_eq!(out, b"");
    let mut s = session();
    let mut out = Vec::new();
    assert_eq!(
        s.feed(&long_key_line("get a "), &mut out),
        Control::Continue
    );
    assert_eq!(out, b"STORED\r\nCLIENT_ERROR bad command line format\r\n");
}

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

/// `-C`: memcached's binary delete and incr/decr still compare the request's CAS with the
/// item's (0 then), so any non-zero one answers `Data exists for key.`; set ignores it.
#[test]
fn binary_delete_and_incr_compare_a_cas_under_minus_c() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    info.switches
        .cas
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let mut s = Session::new(store, info);
    let with_cas = |mut p: Vec<u8>| {
        p[16..24].copy_from_slice(&5u64.to_be_bytes());
        p
    };
    let mut incr = vec![0; 20];
    incr[7] = 1;
    let mut read = set(b"a", b"1");
    read.extend(with_cas(set(b"a", b"2")));
    read.extend(with_cas(packet(0x05, b"a", &incr, b"", None)));
    read.extend(with_cas(packet(0x04, b"a", b"", b"", None)));
    read.extend(packet(0x05, b"a", &incr, b"", None));
    let mut out = Vec::new();
    s.feed(&read, &mut out);
    assert_eq!(statuses(&out), [0, 0, 2, 2, 0]);
}

//! Gaps closed against memcached 1.6.18 (each reply below measured on it): `stats sizes`,
//! `stats sizes_enable` and `stats sizes_disable` over the real engine, text and binary.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

fn session() -> (Session<Arc<Store>>, Arc<ServerInfo>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    (Session::new(store, info.clone()), info)
}

fn ask(s: &mut Session<Arc<Store>>, input: &str) -> String {
    let mut out = Vec::new();
    s.feed(input.as_bytes(), &mut out);
    String::from_utf8(out).unwrap()
}

fn cas_of(reply: &str) -> u64 {
    let line = reply.lines().next().unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn stats_sizes_counts_items_stored_after_it_is_enabled_in_memcacheds_buckets() {
    let (mut s, _) = session();
    assert_eq!(
        ask(&mut s, "stats sizes\r\n"),
        "STAT sizes_status disabled\r\nEND\r\n"
    );
    ask(&mut s, "set k1 0 0 1\r\na\r\n");
    let k1 = cas_of(&ask(&mut s, "gets k1\r\n"));
    // no END line: memcached's reply to these ends after the status
    assert_eq!(
        ask(&mut s, "stats sizes_enable\r\n"),
        "STAT sizes_status enabled\r\n"
    );
    ask(&mut s, "set k2 0 0 1\r\na\r\n");
    let k2 = cas_of(&ask(&mut s, "gets k2\r\n"));
    assert_eq!(
        k2,
        k1 + 2,
        "enabling uses up a CAS value, as memcached's get_cas_id()"
    );
    assert_eq!(
        ask(&mut s, "stats sizes_enable\r\n"),
        "STAT sizes_status enabled\r\n"
    );
    ask(&mut s, "set k3 0 0 1\r\na\r\n");
    assert_eq!(
        cas_of(&ask(&mut s, "gets k3\r\n")),
        k2 + 1,
        "on already: none used"
    );
    // 48 + 3 + 3 + 8 = 62 → 64; flags add 4: 48 + 3 + 12 + 4 + 8 = 75 → 96
    ask(
        &mut s,
        "set f1 5 0 10\r\n0123456789\r\nset key20xxxxxxxxxxxxx 0 0 9\r\n012345678\r\n",
    );
    assert_eq!(
        ask(&mut s, "stats sizes\r\n"),
        "STAT 64 2\r\nSTAT 96 2\r\nEND\r\n"
    );
    // arguments after the name are not read
    assert_eq!(
        ask(&mut s, "stats sizes x\r\n"),
        "STAT 64 2\r\nSTAT 96 2\r\nEND\r\n"
    );
    // k1 was stored before: its delete uncounts nothing
    ask(&mut s, "delete k2\r\ndelete k1\r\n");
    assert_eq!(
        ask(&mut s, "stats sizes\r\n"),
        "STAT 64 1\r\nSTAT 96 2\r\nEND\r\n"
    );
    // a replaced item moves to its new bucket
    ask(
        &mut s,
        &format!("set k3 0 0 100\r\n{}\r\n", "x".repeat(100)),
    );
    assert_eq!(
        ask(&mut s, "stats sizes\r\n"),
        "STAT 96 2\r\nSTAT 192 1\r\nEND\r\n"
    );
    let big = "y".repeat(600_000);
    ask(&mut s, &format!("set big 0 0 600000\r\n{big}\r\n"));
    assert!(ask(&mut s, "stats sizes\r\n").ends_with("STAT 192 1\r\nSTAT 600064 1\r\nEND\r\n"));
    assert_eq!(
        ask(&mut s, "stats sizes_disable x\r\n"),
        "STAT sizes_status disabled\r\n"
    );
    assert_eq!(
        ask(&mut s, "stats sizes\r\n"),
        "STAT sizes_status disabled\r\nEND\r\n"
    );
    assert_eq!(
        ask(&mut s, "stats sizes_enable\r\nstats sizes\r\n"),
        "STAT sizes_status enabled\r\nEND\r\n"
    );
    assert_eq!(
        ask(&mut s, "stats sizes_disable\r\nstats sizes_disable\r\n"),
        "STAT sizes_status disabled\r\nSTAT sizes_status disabled\r\n"
    );
}

#[test]
fn stats_sizes_enable_without_cas_is_an_error_as_memcached_c() {
    let (mut s, info) = session();
    info.switches.cas.store(false, Ordering::Relaxed);
    assert_eq!(
        ask(&mut s, "stats sizes_enable\r\nstats sizes\r\n"),
        "STAT sizes_status error\r\nSTAT sizes_error cas_support_disabled\r\nSTAT sizes_status disabled\r\nEND\r\n"
    );
}

fn bin_stat(key: &str) -> Vec<u8> {
    let k = key.as_bytes();
    let mut p = vec![0x80, 0x10];
    p.extend_from_slice(&(k.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&(k.len() as u32).to_be_bytes());
    p.extend_from_slice(&7u32.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(k);
    p
}

#[test]
fn binary_stat_sizes_enable_has_no_terminator_packet() {
    // measured: sizes_disable, sizes_enable twice, sizes (empty), `sizes_enable x`, noop
    let (mut s, _) = session();
    let mut input = Vec::new();
    for k in [
        "sizes_disable",
        "sizes_enable",
        "sizes_enable",
        "sizes",
        "sizes_enable x",
    ] {
        input.extend(bin_stat(k));
    }
    input.extend_from_slice(&[0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    input.extend_from_slice(&[0; 8]);
    let mut out = Vec::new();
    s.feed(&input, &mut out);
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "8110000c000000000000001400000007000000000000000073697a65735f73746174757364697361626c6564\
         8110000c000000000000001300000007000000000000000073697a65735f737461747573656e61626c6564\
         8110000c000000000000001300000007000000000000000073697a65735f737461747573656e61626c6564\
         811000000000000000000000000000070000000000000000\
         8110000000000001000000090000000700000000000000004e6f7420666f756e64\
         810a00000000000000000000000000090000000000000000"
    );
}

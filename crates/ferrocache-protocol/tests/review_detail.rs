//! Per-prefix stats (`stats detail`) where memcached 1.6.18's prefix lookup is a prefix
//! match: `strncmp(prefix, key, length)` takes the first prefix of the key's bucket that
//! begins with the key's prefix. The expected dumps were measured on memcached 1.6.18
//! (`"b"` and `"bad"` share a MurmurHash3 bucket, as do `""` and `"dv"`, bucket 0).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

fn run_with(info: ServerInfo, input: &[u8]) -> Vec<u8> {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(info));
    let mut out = Vec::new();
    s.feed(input, &mut out);
    out
}

fn run(input: &str) -> String {
    String::from_utf8(run_with(ServerInfo::new("1.6.18"), input.as_bytes())).unwrap()
}

#[test]
fn a_non_ascii_delimiter_is_shown_as_its_byte() {
    // `-D é`: memcached takes the first byte (0xc3) and prints it with %c (measured)
    let info = ServerInfo::new("1.6.18");
    info.detail.set_delimiter(0xc3);
    info.detail.set_enabled(true);
    // the server lists the settings (the value shown is the live delimiter)
    info.set_settings(vec![("stat_key_prefix".into(), "\u{e9}".into())]);
    let out = run_with(
        info,
        "set x\u{e9}1 0 0 1\r\nx\r\nstats detail dump\r\nstats settings\r\n".as_bytes(),
    );
    let text = |b: &[u8]| out.windows(b.len()).any(|w| w == b);
    assert!(text(b"PREFIX x get 0 hit 0 set 1 del 0\r\n"));
    assert!(
        text(b"\r\nSTAT stat_key_prefix \xc3\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn a_shorter_prefix_counts_under_a_longer_one_of_its_bucket() {
    assert_eq!(
        run("stats detail on\r\nset bad:1 0 0 1\r\nx\r\nget b:1\r\nstats detail dump\r\n"),
        "OK\r\nSTORED\r\nEND\r\nPREFIX bad get 1 hit 0 set 1 del 0\r\nEND\r\n"
    );
}

#[test]
fn an_empty_prefix_counts_under_the_first_of_bucket_zero() {
    assert_eq!(
        run("stats detail on\r\nset dv:1 0 0 1\r\nx\r\nget :1\r\nstats detail dump\r\n"),
        "OK\r\nSTORED\r\nEND\r\nPREFIX dv get 1 hit 0 set 1 del 0\r\nEND\r\n"
    );
    // alone, the empty prefix has its own line
    assert_eq!(
        run("stats detail on\r\nget :1\r\nstats detail dump\r\n"),
        "OK\r\nEND\r\nPREFIX  get 1 hit 0 set 0 del 0\r\nEND\r\n"
    );
}

#[test]
fn a_longer_prefix_never_counts_under_a_shorter_one() {
    assert_eq!(
        run("stats detail on\r\nset b:1 0 0 1\r\nx\r\nget bad:1\r\nstats detail dump\r\n"),
        "OK\r\nSTORED\r\nEND\r\nPREFIX bad get 1 hit 0 set 0 del 0\r\nPREFIX b get 0 hit 0 set 1 del 0\r\nEND\r\n"
    );
}

#[test]
fn distinct_prefixes_past_the_cap_are_not_kept() {
    // memory stays bounded whatever a client sends: 65536 prefixes at most
    let mut input = String::from("stats detail on\r\n");
    for i in 0..70_000 {
        input.push_str(&format!("get p{i}:x\r\n"));
    }
    input.push_str("stats detail dump\r\n");
    let out = run(&input);
    let dump = &out[out.find("PREFIX ").unwrap()..];
    assert_eq!(dump.matches("PREFIX ").count(), 65_536);
    assert!(dump.ends_with("END\r\n"));
}

/// memcached records a storage command's prefix `set` when it reads the command (text
/// `process_update_command`, binary `process_bin_update`), before the value: a client that
/// hangs up mid-value still counts one (measured on memcached 1.6.18: `set pb:k 0 0 100`
/// with 3 bytes of value, a binary set whose body never completes, both `set 1`). Was: not
/// counted. A value that arrives in pieces counts once. Found by the session-14 differential
/// campaign (binary streams under -B binary, seed 185).
#[test]
fn a_set_counts_when_its_command_is_read_even_if_the_value_never_comes() {
    let info = Arc::new(ServerInfo::new("1.6.18"));
    info.detail.set_enabled(true);
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let feed = |pieces: &[&[u8]]| {
        let mut s = Session::new(store.clone(), info.clone());
        let mut out = Vec::new();
        for p in pieces {
            s.feed(p, &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    // text, and a binary set (extras 8, key 4, body 100) whose value never completes
    feed(&[b"set pb:k 0 0 100\r\nabc"]);
    let mut bin = vec![0x80, 0x01, 0, 4, 8, 0, 0, 0, 0, 0, 0, 100];
    bin.extend_from_slice(&[0; 12]);
    bin.extend_from_slice(&[0; 8]);
    bin.extend_from_slice(b"pa:kv");
    feed(&[&bin]);
    // a value in three pieces, text and binary
    feed(&[b"set pc:k 0 0 4\r\na", b"b", b"cd\r\n"]);
    let mut whole = vec![0x80, 0x01, 0, 4, 8, 0, 0, 0, 0, 0, 0, 14];
    whole.extend_from_slice(&[0; 12]);
    whole.extend_from_slice(&[0; 8]);
    whole.extend_from_slice(b"pd:kvv");
    feed(&[&whole[..30], &whole[30..35], &whole[35..]]);
    let dump = feed(&[b"stats detail dump\r\n"]);
    for p in ["pa", "pb", "pc", "pd"] {
        assert!(
            dump.contains(&format!("PREFIX {p} get 0 hit 0 set 1 del 0\r\n")),
            "{p}: {dump}"
        );
    }
}

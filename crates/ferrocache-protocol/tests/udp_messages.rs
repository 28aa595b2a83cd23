//! `Session::frame_messages`: where each reply message memcached's UDP would send ends
//! (one per response object; a multiget's per key; `noreply` and quiet meta skipped; an
//! empty object a bare header only first in a write-out). Expected messages measured on
//! memcached 1.6.18 -U (`__test__/udp.test.ts` compares the datagrams themselves).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Limits, ServerInfo, Session};

fn session(max_reply: usize) -> Session<Arc<Store>> {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let limits = Limits {
        max_reply,
        ..Limits::default()
    };
    let mut s = Session::with_limits(store, Arc::new(ServerInfo::new("1.6.18")), limits);
    let mut out = Vec::new();
    s.feed(b"set a 0 0 1\r\nA\r\nset b 0 0 1\r\nB\r\n", &mut out);
    while s.held_back() {
        s.feed(b"", &mut out);
    }
    s.frame_messages();
    s
}

/// The messages of one datagram, fed whole, then again while the session holds some back
/// (each feed a new read with a drained `out`, as the UDP listener feeds).
fn messages(s: &mut Session<Arc<Store>>, input: &[u8]) -> Vec<String> {
    let mut all = Vec::new();
    let mut next = input;
    for _ in 0..100 {
        let mut out = Vec::new();
        s.start_read();
        s.clear_messages();
        s.feed(next, &mut out);
        let mut start = 0;
        for &end in s.messages() {
            all.push(String::from_utf8_lossy(&out[start..end]).into_owned());
            start = end;
        }
        assert_eq!(start, out.len(), "every reply byte is in a message");
        next = b"";
        if !s.held_back() {
            return all;
        }
    }
    panic!("never done");
}

#[test]
fn a_message_per_response_object() {
    let mut s = session(4 << 20);
    let cases: [(&[u8], &[&str]); 12] = [
        (
            b"version\r\nget a b\r\n",
            &[
                "VERSION 1.6.18\r\n",
                "VALUE a 0 1\r\nA\r\n",
                "VALUE b 0 1\r\nB\r\nEND\r\n",
            ],
        ),
        (b"get nope a\r\n", &["", "VALUE a 0 1\r\nA\r\nEND\r\n"]),
        (
            b"version\r\nget nope a\r\n",
            &["VERSION 1.6.18\r\n", "VALUE a 0 1\r\nA\r\nEND\r\n"],
        ),
        (b"get a nope\r\n", &["VALUE a 0 1\r\nA\r\n", "END\r\n"]),
        // a get is a write-out: the miss after it is first in the next
        (
            b"get a\r\nget nope b\r\n",
            &[
                "VALUE a 0 1\r\nA\r\nEND\r\n",
                "",
                "VALUE b 0 1\r\nB\r\nEND\r\n",
            ],
        ),
        (
            b"set c 0 0 1\r\nC\r\nincr c 1\r\n",
            &[
                "STORED\r\n",
                "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            ],
        ),
        // skipped: noreply, quiet meta; an empty get key after them is first
        (
            b"set x 0 0 1 noreply\r\nX\r\nget nope b\r\n",
            &["", "VALUE b 0 1\r\nB\r\nEND\r\n"],
        ),
        (
            b"delete nope noreply\r\nversion\r\n",
            &["VERSION 1.6.18\r\n"],
        ),
        (
            b"mg nope v q\r\nmg a v q\r\nmn\r\n",
            &["VA 1\r\nA\r\n", "MN\r\n"],
        ),
        (b"mg nope v q\r\nmn\r\n", &["MN\r\n"]),
        // an error is no write-out
        (
            b"bogus\r\nget nope b\r\n",
            &["ERROR\r\n", "VALUE b 0 1\r\nB\r\nEND\r\n"],
        ),
        (b"set q 0 0 1 noreply\r\nQ\r\n", &[]),
    ];
    for (input, want) in cases {
        assert_eq!(
            messages(&mut s, input),
            want,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn write_out_after_the_21st_request() {
    let mut s = session(4 << 20);
    let sets = b"set y 0 0 1 noreply\r\nY\r\n";
    let mut twenty = b"version\r\n".to_vec();
    (0..20).for_each(|_| twenty.extend_from_slice(sets));
    twenty.extend_from_slice(b"get nope b\r\n");
    assert_eq!(
        messages(&mut s, &twenty),
        ["VERSION 1.6.18\r\n", "", "VALUE b 0 1\r\nB\r\nEND\r\n"]
    );
    let mut nineteen = b"version\r\n".to_vec();
    (0..19).for_each(|_| nineteen.extend_from_slice(sets));
    nineteen.extend_from_slice(b"get nope b\r\n");
    assert_eq!(
        messages(&mut s, &nineteen),
        ["VERSION 1.6.18\r\n", "VALUE b 0 1\r\nB\r\nEND\r\n"]
    );
}

#[test]
fn binary_quiet_requests_are_empty_objects() {
    // a session of its own: the first byte chose the binary protocol
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    s.frame_messages();
    let packet = |op: u8, key: &[u8]| {
        let mut p = vec![0x80, op, 0, key.len() as u8];
        p.resize(11, 0);
        p.push(key.len() as u8);
        p.resize(24, 0);
        p.extend_from_slice(key);
        p
    };
    // noop, getkq miss, getq miss, noop: the noop, a bare header (first after the noop's
    // write-out; the second miss goes with it), the noop
    let mut input = packet(0x0a, b"");
    input.extend(packet(0x0d, b"nope"));
    input.extend(packet(0x09, b"nope"));
    input.extend(packet(0x0a, b""));
    let got = messages(&mut s, &input);
    let lengths: Vec<usize> = got.iter().map(|m| m.chars().count()).collect();
    assert_eq!(lengths, [24, 0, 24], "bytes, a lossy char each");
    // alone: a bare header
    assert_eq!(messages(&mut s, &packet(0x0d, b"nope")), [""]);
}

#[test]
fn a_multiget_in_pieces_keeps_a_message_per_key() {
    let mut s = session(4 << 20);
    let whole = messages(&mut s, b"get a nope b nope a\r\nget nope\r\n");
    assert_eq!(
        whole,
        [
            "VALUE a 0 1\r\nA\r\n",
            "VALUE b 0 1\r\nB\r\n",
            "VALUE a 0 1\r\nA\r\nEND\r\n",
            "END\r\n"
        ]
    );
    // a budget of one byte: a feed per key
    let mut small = session(1);
    assert_eq!(
        messages(&mut small, b"get a nope b nope a\r\nget nope\r\n"),
        whole
    );
}

#[test]
fn nothing_recorded_unless_asked() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut out = Vec::new();
    s.feed(b"version\r\nget a b\r\n", &mut out);
    assert!(s.messages().is_empty());
}

//! Hostile input: random bytes and mangled requests, cut at random places, never panic,
//! always terminate, and never make a session buffer more than one request's worth.

mod common;

use common::{mock_session, Rng};
use ferrocache_protocol::Control;

const PIECES: &[&[u8]] = &[
    b"get a b\r\n", b"set a 0 0 5\r\nhello\r\n", b"set a 0 0 99999999\r\n", b"incr a 1\r\n",
    b"mg a v t c k O1 q\r\n", b"ms a 3 T0 MA\r\nabc\r\n", b"md a q\r\n", b"ma a N0 J5 v\r\n",
    b"mn\r\n", b"stats\r\n", b"stats items\r\n", b"delete a 0\r\n", b"gat 1 a\r\n", b"\r\n",
    b"ms YWJj 1 b k\r\nx\r\n", b"flush_all\r\n", b"verbosity 1\r\n", b"cas a 0 0 1 1\r\nx\r\n",
    b"\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00a",
    b"\x80\x01\x00\x01\x08\x00\x00\x00\xff\xff\xff\xff",
];

fn input(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    if rng.below(4) == 0 {
        // Make it a binary connection whose headers are mostly nonsense.
        v.push(0x80);
    }
    for _ in 0..rng.below(20) {
        match rng.below(3) {
            0 => v.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            1 => v.extend_from_slice(PIECES[rng.below(PIECES.len())]),
            _ => {
                // A valid piece with one byte changed.
                let mut p = PIECES[rng.below(PIECES.len())].to_vec();
                let i = rng.below(p.len());
                p[i] = rng.next() as u8;
                v.extend_from_slice(&p);
            }
        }
    }
    v
}

#[test]
fn random_input_never_panics_and_stays_bounded() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for _ in 0..3000 {
        let mut s = mock_session();
        let data = input(&mut rng);
        let mut pos = 0;
        while pos < data.len() {
            let n = 1 + rng.below(64);
            let end = (pos + n).min(data.len());
            out.clear();
            let ctl = s.feed(&data[pos..end], &mut out);
            // A text line is at most 2 KiB (4 KiB get lines); a value or binary body
            // is at most the 1 MiB item limit plus its header.
            assert!(
                s.buffered() <= (1 << 20) + 4096,
                "buffered {}",
                s.buffered()
            );
            if ctl != Control::Continue {
                break;
            }
            pos = end;
        }
    }
}

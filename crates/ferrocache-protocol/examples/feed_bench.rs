//! How fast the codec plus engine runs without a network: the three request mixes of the
//! server benchmark (90% get / 10% set, 100k keys of 16 bytes, 100-byte values), fed one
//! request per call and 16 per call. `cargo run --release --example feed_bench`

use std::sync::Arc;
use std::time::Instant;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

const KEYS: usize = 100_000;
const OPS: usize = 2_000_000;

fn request(i: usize, meta: bool, out: &mut Vec<u8>) {
    // A cheap deterministic mix: every 10th request is a set.
    let k = (i.wrapping_mul(2_654_435_761)) % KEYS;
    let key = format!("key:{k:012}");
    let set = i.is_multiple_of(10);
    match (meta, set) {
        (false, false) => out.extend_from_slice(format!("get {key}\r\n").as_bytes()),
        (false, true) => out.extend_from_slice(format!("set {key} 0 0 100\r\n").as_bytes()),
        (true, false) => out.extend_from_slice(format!("mg {key} v f\r\n").as_bytes()),
        (true, true) => out.extend_from_slice(format!("ms {key} 100\r\n").as_bytes()),
    }
    if set {
        out.extend_from_slice(&[b'v'; 100]);
        out.extend_from_slice(b"\r\n");
    }
}

fn run(name: &str, depth: usize, meta: bool) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("bench")));
    // Pre-build the batches so only feed() is timed.
    let mut batches = Vec::new();
    let mut i = 0;
    while i < OPS {
        let mut b = Vec::new();
        for _ in 0..depth {
            request(i, meta, &mut b);
            i += 1;
        }
        batches.push(b);
    }
    let mut out = Vec::with_capacity(1 << 16);
    let t = Instant::now();
    for b in &batches {
        out.clear();
        s.feed(b, &mut out);
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{name:28} {:>10.0} ops/s", OPS as f64 / secs);
}

fn main() {
    run("text, one request per feed", 1, false);
    run("text, 16 per feed", 16, false);
    run("meta, 16 per feed", 16, true);
}

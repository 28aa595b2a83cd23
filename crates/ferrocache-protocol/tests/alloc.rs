//! The request hot path does not allocate: with the engine warm and the reply buffer
//! sized, feeding gets, meta gets, binary gets and same-size sets allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn bin_get(key: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&(key.len() as u32).to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(key);
    p
}

#[test]
fn hot_path_requests_do_not_allocate() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut text = Session::new(store.clone(), info.clone());
    let mut bin = Session::new(store, info);
    let mut out = Vec::with_capacity(1 << 20);

    let mut load = Vec::new();
    let mut gets = Vec::new();
    let mut bins = Vec::new();
    for i in 0..200 {
        let key = format!("key:{i:012}");
        load.extend_from_slice(format!("set {key} 0 0 100\r\n{}\r\n", "v".repeat(100)).as_bytes());
        gets.extend_from_slice(format!("get {key}\r\nmg {key} v f c\r\ngets {key}\r\n").as_bytes());
        bins.extend_from_slice(&bin_get(key.as_bytes()));
    }
    // Warm up: store every item, run every request once.
    text.feed(&load, &mut out);
    text.feed(&gets, &mut out);
    bin.feed(&bins, &mut out);

    for (name, session, input) in [
        ("text and meta gets", &mut text, &gets),
        ("binary gets", &mut bin, &bins),
    ] {
        out.clear();
        ALLOCS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        session.feed(input, &mut out);
        COUNTING.store(false, Ordering::Relaxed);
        assert!(out.len() > 200 * 100, "{name}: replies missing");
        assert_eq!(ALLOCS.load(Ordering::Relaxed), 0, "{name} allocated");
    }

    // Same-size overwrites: the codec adds nothing on top of what the engine does.
    out.clear();
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    text.feed(&load, &mut out);
    COUNTING.store(false, Ordering::Relaxed);
    assert_eq!(out.len(), 200 * 8);
    assert_eq!(ALLOCS.load(Ordering::Relaxed), 0, "sets allocated");

    // The counter does see allocations: `stats` builds its numbers with allocation.
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    text.feed(b"stats\r\n", &mut out);
    COUNTING.store(false, Ordering::Relaxed);
    assert!(ALLOCS.load(Ordering::Relaxed) > 0);
}

//! Inputs the fuzzers (fuzz/, `npm run fuzz`) found trouble with, replayed against the
//! engine crate's decoders. Each input also lives in fuzz/regressions/<target>/, where the
//! fuzz harness replays it (crates/ferrocache-protocol/tests/fuzz_replay.rs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ferrocache_core::journal;

/// Tracks the bytes allocated and not yet freed, and their high-water mark.
struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Tests measuring the peak run one at a time.
static MEASURING: Mutex<()> = Mutex::new(());

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n > l.size() {
            grew(n - l.size());
        } else {
            LIVE.fetch_sub(l.size() - n, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// The most bytes live at once above the starting point while `f` runs.
fn peak_during(f: impl FnOnce()) -> usize {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

/// fuzz/regressions/aof/oom-huge-record-length: a log whose fourth record declares a
/// 993,737,492-byte body with only a few bytes after it. The scan used to allocate the
/// declared length before reading (a damaged log made a restart allocate up to 1 GiB);
/// now it reads what is there and reports the torn tail.
#[test]
fn a_damaged_log_record_length_is_not_allocated() {
    let input = include_bytes!("../../../fuzz/regressions/aof/oom-huge-record-length");
    let mut end = None;
    let peak = peak_during(|| end = Some(journal::scan(&input[..], |_| ()).unwrap()));
    let end = end.unwrap();
    assert!(end.torn.is_some(), "the damaged tail is reported");
    assert!(
        peak < 1 << 20,
        "scanning {} bytes allocated {peak} bytes",
        input.len()
    );

    // the same with a length just under the limit and nothing after the header
    let mut frame = ((1u32 << 30) - 1).to_le_bytes().to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(b"cut");
    let peak = peak_during(|| {
        let end = journal::scan(&frame[..], |_| ()).unwrap();
        assert_eq!(end.valid_len, 0);
        assert!(end.torn.unwrap().contains("cut short"));
    });
    assert!(peak < 1 << 20, "a 1 GiB length allocated {peak} bytes");
}

//! Adversarial checks of the runtime admin commands under load (review of the admin work):
//! what a lowered memory limit gives back to the operating system, cycle after cycle.

use ferrocache_core::*;

const MB: usize = 1 << 20;

/// The tests of this file one at a time: one measures the process's resident memory.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's resident memory in MiB (Linux).
#[cfg(target_os = "linux")]
fn rss_mb() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        / 1024
}

/// Fills the store with values of four sizes (every class a page or more), writing each.
#[cfg(target_os = "linux")]
fn fill(s: &Store, round: usize, items: usize) {
    let sizes = [100usize, 1000, 3000, 30_000];
    for i in 0..items {
        let len = sizes[i % sizes.len()] + round * 8;
        let value = vec![b'a' + (i % 26) as u8; len];
        let key = format!("r{round}:{i}");
        s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), &value))
            .unwrap();
    }
}

/// glibc serves a 1 MiB allocation from its heap once a block that large was freed (its
/// mmap threshold rises to the freed size), and a heap block freed in the middle stays
/// resident: slab pages taken with the global allocator came back to the system after the
/// first shrink only (measured: a 256 MiB store shrunk to 8 MiB kept 65, 122, then 234 MiB
/// resident in three fill-and-shrink cycles). Pages are mapped on their own, so each
/// shrink returns them.
#[cfg(target_os = "linux")]
#[test]
fn each_lower_memory_limit_returns_the_freed_pages_to_the_system() {
    let _one = serial();
    let s = Store::new(
        Config::default()
            .memory_limit(192 * MB)
            .shards(2)
            .background(false),
    )
    .unwrap();
    let base = rss_mb();
    for round in 0..3 {
        s.set_memory_limit(192 * MB).unwrap();
        fill(&s, round, 120_000);
        let full = s.stats().total_malloced;
        assert!(full >= 160 * MB as u64, "round {round}: filled {full}");
        s.set_memory_limit(8 * MB).unwrap();
        let st = s.stats();
        assert!(st.total_malloced <= 8 * MB as u64, "{}", st.total_malloced);
        let rss = rss_mb();
        // 8 MiB of pages, the hash tables and the test's own memory: far below 192 MiB
        assert!(
            rss <= base + 48,
            "round {round}: {rss} MiB resident after shrinking to 8 MiB (started at {base})"
        );
    }
}

/// Waits up to `secs` seconds for `done`, polling every 50 ms.
fn within(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    done()
}

/// `lru_crawler sleep 1000000` (the most memcached allows) is the pause between two lock
/// holds of the background walks: one pass over a large table then takes minutes. The
/// pages a lower memory limit leaves over it (past the 64 freed inline) waited for that
/// pass to end (measured: `cache_memlimit 8` on a full 400 MB server still held 336 MB
/// 12 s later), and so did dropping the store (ferrocached ignored SIGTERM for 20 s+).
#[test]
fn a_long_crawler_sleep_delays_neither_a_lower_limit_nor_the_store_stopping() {
    let _one = serial();
    let s = Store::new(
        Config::default()
            .memory_limit(160 * MB)
            .shards(2)
            .background(true),
    )
    .unwrap();
    s.set_crawler_sleep(1_000_000);
    let value = [b'v'; 100];
    let mut i = 0u64;
    while s.stats().total_malloced < 150 * MB as u64 && i < 2_000_000 {
        let key = format!("k{i}");
        s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), &value))
            .unwrap();
        i += 1;
    }
    // the background pass (every second) is now in its paced walk of a ~1M-item table
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.set_memory_limit(8 * MB).unwrap();
    let fits = within(10, || s.stats().total_malloced <= 8 * MB as u64);
    assert!(
        fits,
        "{} bytes of pages 10 s after the limit went to 8 MiB",
        s.stats().total_malloced
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(s);
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(),
        "dropping the store waited for the paced walk"
    );
}

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

/// A value that names its key and version: `key|version|` then `size` copies of one byte
/// chosen by the version.
fn versioned(key: &str, ver: u64, size: usize) -> Vec<u8> {
    let mut v = format!("{key}|{ver}|").into_bytes();
    v.resize(v.len() + size, b'a' + (ver % 26) as u8);
    v
}

/// What a read of `key` found wrong: another key's bytes, a torn or mixed value, a version
/// never written, or one older than the last acknowledged write.
fn check_read(key: &str, got: &[u8], written: u64, acked: u64) -> Option<String> {
    let text = String::from_utf8_lossy(got);
    let mut parts = text.splitn(3, '|');
    let (k, ver, fill) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    let ver: u64 = match ver.parse() {
        Ok(v) => v,
        Err(_) => {
            return Some(format!(
                "{key}: unparsable {:?}",
                &text[..text.len().min(40)]
            ))
        }
    };
    let byte = (b'a' + (ver % 26) as u8) as char;
    if k != key || fill.chars().any(|c| c != byte) {
        return Some(format!("{key}: corrupt {:?}", &text[..text.len().min(40)]));
    }
    if ver > written || ver < acked {
        return Some(format!(
            "{key}: version {ver}, written {written}, acked {acked}"
        ));
    }
    None
}

/// Writers and readers of mixed value sizes while another thread changes the memory limit
/// (8 to 48 MiB), reassigns pages between random classes (src -1, the pool, the largest
/// class, empty ones), switches automove modes and the crawler and requests crawls, with the
/// background thread running too: no read may see a corrupt or stale value, and the counts
/// must add up afterwards; a key written after the last change, with nothing evicted, reads
/// back.
#[test]
fn values_and_counts_survive_admin_churn_under_load() {
    let _one = serial();
    let s = std::sync::Arc::new(
        Store::new(
            Config::default()
                .memory_limit(48 * MB)
                .shards(4)
                .background(true),
        )
        .unwrap(),
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let sizes = [20usize, 20, 200, 200, 1500, 1500, 6000, 30_000];
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut written = vec![0u64; 1500];
                let mut acked = vec![0u64; 1500];
                let mut bad = Vec::new();
                let mut rng = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut ops = 0;
                while std::time::Instant::now() < until && ops < 2_000_000 {
                    ops += 1;
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let i = (rng % 1500) as usize;
                    let key = format!("t{t}:{i}");
                    if rng % 3 == 0 {
                        written[i] += 1;
                        let v =
                            versioned(&key, written[i], sizes[(rng >> 20) as usize % sizes.len()]);
                        let ok = s
                            .store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), &v))
                            .is_ok_and(|o| o.status == StoreStatus::Stored);
                        acked[i] = if ok { written[i] } else { 0 };
                    } else {
                        let got =
                            s.get(key.as_bytes(), &GetOptions::default(), |v| v.value.to_vec());
                        if let Some(got) = got {
                            bad.extend(check_read(&key, &got, written[i], acked[i]));
                        }
                    }
                }
                (bad, written, acked)
            })
        })
        .collect();
    let admin = {
        let s = s.clone();
        std::thread::spawn(move || {
            let n = s.slab_class_count() as i64;
            let mut rng = 0x2545_F491_4F6C_DD1Du64;
            let mut steps = 0;
            while std::time::Instant::now() < until && steps < 100_000 {
                steps += 1;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                match rng % 8 {
                    0 => s
                        .set_memory_limit([8, 16, 48][(rng >> 8) as usize % 3] * MB)
                        .unwrap(),
                    1..=3 => {
                        let src = [-1, 0, 1, 2, 5, 9, 13, n][(rng >> 8) as usize % 8];
                        let dst = [0, 1, 3, 9, 13, n - 1, n][(rng >> 16) as usize % 7];
                        s.slabs_reassign(src, dst);
                    }
                    4 => {
                        s.set_slab_automove((rng >> 8) as u8 % 3);
                    }
                    5 => {
                        s.set_crawler_enabled((rng >> 8).is_multiple_of(2));
                    }
                    6 => {
                        s.crawl(vec![true; s.slab_class_count()]);
                    }
                    _ => s.maintain(),
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let mut bad = Vec::new();
    let mut last = Vec::new();
    for w in writers {
        let (b, written, acked) = w.join().unwrap();
        bad.extend(b);
        last.push((written, acked));
    }
    admin.join().unwrap();
    assert!(
        bad.is_empty(),
        "{} bad reads, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );

    s.set_slab_automove(0);
    s.set_memory_limit(8 * MB).unwrap();
    s.maintain();
    let st = s.stats();
    assert!(st.total_malloced <= 8 * MB as u64, "{}", st.total_malloced);
    // what the last shrink relocated reads back as written
    for (t, (written, acked)) in last.iter().enumerate() {
        for i in 0..written.len() {
            let key = format!("t{t}:{i}");
            let got = s.get(key.as_bytes(), &GetOptions::default(), |v| v.value.to_vec());
            if let Some(got) = got {
                bad.extend(check_read(&key, &got, written[i], acked[i]));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "after the shrink: {:?}",
        &bad[..bad.len().min(5)]
    );
    let pages: u64 = st.classes.iter().map(|c| c.total_pages).sum();
    assert_eq!(
        st.total_malloced,
        (pages + st.slab_global_page_pool) * MB as u64
    );
    let per_class: u64 = st.classes.iter().map(|c| c.number).sum();
    assert_eq!(st.curr_items, per_class, "curr_items vs the classes' items");

    s.set_memory_limit(48 * MB).unwrap();
    let before = (st.evictions, st.slab_reassign_evictions_nomem);
    for i in 0..300 {
        let key = format!("after:{i}");
        let v = versioned(&key, 1, sizes[i % 4]);
        s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), &v))
            .unwrap();
    }
    let st = s.stats();
    assert_eq!(
        before,
        (st.evictions, st.slab_reassign_evictions_nomem),
        "nothing evicted"
    );
    for i in 0..300 {
        let key = format!("after:{i}");
        let got = s.get(key.as_bytes(), &GetOptions::default(), |v| v.value.to_vec());
        assert_eq!(got, Some(versioned(&key, 1, sizes[i % 4])), "{key}");
    }
}

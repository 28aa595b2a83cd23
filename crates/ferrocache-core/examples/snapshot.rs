//! Snapshot figures without Node: `cargo run --release -p ferrocache-core --example snapshot [DIR]`.
//! 1M items (16-byte keys, 100-byte values): save time and MB/s, load time, and the latency
//! of gets on another thread with and without a snapshot running.

use ferrocache_core::snapshot;
use ferrocache_core::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ITEMS: usize = 1_000_000;

fn key(i: usize) -> String {
    format!("key:{i:012}") // 16 bytes
}

fn fill(s: &Store) {
    let value = [b'v'; 100];
    for i in 0..ITEMS {
        s.store(&StoreRequest::new(
            StoreMode::Set,
            key(i).as_bytes(),
            &value,
        ))
        .unwrap();
    }
}

/// Gets on random keys until `stop`, each timed; returns (p50, p99, p99.9, max) in µs.
fn get_latencies(s: Arc<Store>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<[f64; 4]> {
    std::thread::spawn(move || {
        let mut lat = Vec::new();
        let mut x: u64 = 88172645463325252;
        while !stop.load(Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key(x as usize % ITEMS);
            let t = Instant::now();
            s.get(k.as_bytes(), &GetOptions::default(), |v| v.value.len());
            lat.push(t.elapsed().as_nanos() as u64);
        }
        lat.sort_unstable();
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
        [q(0.5), q(0.99), q(0.999), q(1.0)]
    })
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ferrocache-snapshot-bench"));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Arc::new(Store::new(Config::default().memory_limit(512 << 20)).unwrap());
    fill(&s);
    println!("{} items in the store", s.stats().curr_items);

    // SNAPSHOT_SAVES=N: only N saves back to back, nothing else running (for profiling)
    if let Some(n) = std::env::var("SNAPSHOT_SAVES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        for round in 0..n {
            let rep = snapshot::save(&s, &dir, 2, None).unwrap();
            let secs = rep.duration.as_secs_f64();
            println!(
                "save {round}: {:.3} s ({:.3} s fsync+rename), {:.0} MB/s of item data",
                secs,
                rep.sync_duration.as_secs_f64(),
                rep.data_bytes as f64 / 1e6 / secs
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    // gets alone, as long as a snapshot takes
    let stop = Arc::new(AtomicBool::new(false));
    let h = get_latencies(s.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, Ordering::Relaxed);
    let quiet = h.join().unwrap();

    // the walk alone, copying every item out, no file: best of 5, bounded steps vs one
    // lock hold per shard
    let mut best = [f64::MAX; 2];
    for _ in 0..5 {
        for (k, bounded) in [true, false].into_iter().enumerate() {
            let t = Instant::now();
            let mut buf = Vec::with_capacity(2 << 20);
            let mut n = 0;
            let mut copy = |it: &ItemView<'_>| {
                let rec = snapshot::format::Record {
                    key: it.key,
                    value: it.value,
                    flags: it.flags,
                    exptime: it.exptime,
                    cas: it.cas,
                    state: Default::default(),
                };
                snapshot::format::encode_record(&mut buf, &rec);
                n += 1;
                if buf.len() > 1 << 20 {
                    buf.clear();
                }
            };
            for shard in 0..s.shard_count() {
                if bounded {
                    let mut cur = ShardCursor::default();
                    while !s.visit_shard_batch(shard, &mut cur, 512, &mut copy) {}
                } else {
                    s.visit_shard(shard, &mut copy);
                }
            }
            assert_eq!(n, ITEMS);
            best[k] = best[k].min(t.elapsed().as_secs_f64());
        }
    }
    println!("walk and copy only (best of 5): {:.3} s in steps of 512 items, {:.3} s holding each shard's lock", best[0], best[1]);

    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let h = get_latencies(s.clone(), stop.clone());
        let rep = snapshot::save(&s, &dir, 2, None).unwrap();
        stop.store(true, Ordering::Relaxed);
        let busy = h.join().unwrap();
        let secs = rep.duration.as_secs_f64();
        let write = secs - rep.sync_duration.as_secs_f64();
        println!(
            "save {round}: {} items, {:.1} MB of item data, {:.1} MB file in {:.3} s ({:.3} s fsync+rename): \
             {:.0} MB/s of item data overall, {:.0} MB/s before fsync",
            rep.items,
            rep.data_bytes as f64 / 1e6,
            rep.file_bytes as f64 / 1e6,
            secs,
            rep.sync_duration.as_secs_f64(),
            rep.data_bytes as f64 / 1e6 / secs,
            rep.data_bytes as f64 / 1e6 / write,
        );
        println!(
            "  get latency µs (p50 / p99 / p99.9 / max): quiet {:.2} / {:.2} / {:.2} / {:.0}, during the save {:.2} / {:.2} / {:.2} / {:.0}",
            quiet[0], quiet[1], quiet[2], quiet[3], busy[0], busy[1], busy[2], busy[3]
        );
    }
    drop(s);

    for round in 0..2 {
        let t = Store::new(Config::default().memory_limit(512 << 20)).unwrap();
        let lr = snapshot::load(&t, &dir, true).unwrap();
        println!(
            "load {round}: {} items from {:.1} MB in {:.3} s",
            lr.items,
            lr.file_bytes as f64 / 1e6,
            lr.duration.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

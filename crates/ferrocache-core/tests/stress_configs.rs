//! Threads sharing one store under non-default configurations (growth factors, few pages,
//! no eviction, tiny and huge hash tables, flat and TEMP LRUs, 2 MiB items), bounded in time:
//! every value read back must be intact, and once the threads are joined the store-wide
//! invariants must hold (pages within the limit, stats equal to a walk of all items, no
//! eviction without eviction). And a snapshot walk (`visit_shard_batch`) while the threads
//! write, delete, evict, move pages and grow the table: every key present for the whole
//! walk is seen exactly once, and no value is torn.
//!
//! `FERROCACHE_STRESS_MS=n` runs each configuration for n ms instead of 250 (long local runs).

use ferrocache_core::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 4;

/// The value of `key` at length `len`: the key repeated, so any byte out of place shows.
fn value_for(key: &[u8], len: usize) -> Vec<u8> {
    key.iter().copied().cycle().take(len).collect()
}

fn intact(key: &[u8], v: &[u8]) -> bool {
    v.iter().enumerate().all(|(i, b)| *b == key[i % key.len()])
}

fn run_ms() -> u64 {
    std::env::var("FERROCACHE_STRESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250)
}

#[derive(Clone, Copy)]
struct Shape {
    /// Value lengths up to this (a quarter of the sets; the rest are small).
    big: usize,
    keys: u32,
}

/// One worker's stream: sets (value = key repeated, whole repetitions so appends keep the
/// pattern), appends, deletes, gets (checked), touches, incr on counter keys.
fn worker(store: &Store, seed: u64, shape: Shape, until: Instant) -> u64 {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut ops = 0u64;
    let evict = store.config().evict;
    let mut last = store.now();
    while Instant::now() < until {
        let now = store.now();
        assert!(now >= last, "the store's time went back: {last} -> {now}");
        last = now;
        for _ in 0..256 {
            ops += 1;
            let key = format!("k{}", rng.gen_range(0..shape.keys)).into_bytes();
            let len = if rng.gen_bool(0.25) {
                rng.gen_range(1..shape.big)
            } else {
                rng.gen_range(1..400)
            };
            let len = (len / key.len()).max(1) * key.len();
            match rng.gen_range(0..20) {
                0..=7 => {
                    let v = value_for(&key, len);
                    let r = StoreRequest {
                        mode: if rng.gen_bool(0.1) {
                            StoreMode::Append
                        } else {
                            StoreMode::Set
                        },
                        exptime: if rng.gen_bool(0.1) { 1 } else { 0 },
                        flags: len as u32,
                        ..StoreRequest::new(StoreMode::Set, &key, &v)
                    };
                    match store.store(&r) {
                        Ok(_) | Err(StoreError::TooLarge) => {}
                        Err(StoreError::OutOfMemory) if !evict => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
                8..=9 => {
                    store.delete(&DeleteRequest {
                        key: &key,
                        ..DeleteRequest::default()
                    });
                }
                10 => {
                    store.touch(&key, rng.gen_range(0..3));
                }
                11 => {
                    let ctr = format!("ctr{}", rng.gen_range(0..64)).into_bytes();
                    let r = ArithRequest {
                        key: &ctr,
                        incr: true,
                        delta: u64::MAX / 2 + rng.gen_range(0..9),
                        cas: None,
                        vivify: Some((0, 0)),
                        touch: None,
                        new_cas: None,
                    };
                    match store.arith(&r) {
                        Ok(_) => {}
                        Err(StoreError::OutOfMemory) if !evict => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
                _ => {
                    let ok = store.get(&key, &GetOptions::default(), |v| {
                        v.key == &key[..] && intact(v.key, v.value)
                    });
                    assert_ne!(ok, Some(false), "torn value for {:?}", key);
                }
            }
        }
    }
    ops
}

/// Invariants of a quiet store: stats equal a walk of all items, pages within the limit.
fn check_quiet(store: &Store, name: &str) -> Stats {
    // every slot walked by the expiry crawl (2^19 a pass), so no dead item stays counted
    let slots = store.stats().hash_bytes / 8;
    for _ in 0..=slots >> 19 {
        store.maintain();
    }
    let (mut count, mut bytes) = (0u64, 0u64);
    for sh in 0..store.shard_count() {
        store.visit_shard(sh, |v| {
            assert!(
                v.key.starts_with(b"ctr") || intact(v.key, v.value),
                "{name}: torn value in the walk"
            );
            count += 1;
            bytes += (36 + v.key.len() + v.value.len()) as u64;
        });
    }
    let st = store.stats();
    let limit = store.config().memory_limit as u64;
    assert!(st.total_malloced <= limit, "{name}: pages over the limit");
    let pages: u64 = st.classes.iter().map(|c| c.total_pages).sum();
    assert!((pages + st.slab_global_page_pool) * store.config().page_size as u64 <= limit);
    assert_eq!(st.curr_items, count, "{name}: curr_items vs walk");
    assert_eq!(st.bytes, bytes, "{name}: bytes vs walk");
    assert_eq!(st.classes.iter().map(|c| c.number).sum::<u64>(), count);
    assert_eq!(st.classes.iter().map(|c| c.used_chunks).sum::<u64>(), count);
    for c in &st.classes {
        let segments = c.number_hot + c.number_warm + c.number_cold + c.number_temp;
        assert_eq!(segments, c.number, "{name}: class {}", c.id);
        assert_eq!(c.used_chunks + c.free_chunks, c.total_chunks);
    }
    if !store.config().evict {
        assert_eq!(st.evictions, 0, "{name}: evictions without eviction");
    }
    st
}

fn configurations() -> Vec<(&'static str, Config, Shape, Option<u32>)> {
    let base = || {
        Config::default()
            .memory_limit(8 << 20)
            .shards(4)
            .background(false)
    };
    let small = Shape {
        big: 12_000,
        keys: 20_000,
    };
    vec![
        (
            "growth 1.05, 4 pages",
            base().growth_factor(1.05).memory_limit(4 << 20),
            small,
            None,
        ),
        (
            "growth 2.0, no eviction",
            base().growth_factor(2.0).evict(false),
            small,
            None,
        ),
        (
            "hash power 4, 1 shard, 3 pages",
            base().shards(1).hash_power(4).memory_limit(3 << 20),
            small,
            None,
        ),
        (
            "hash power 22, no expansion, 8 shards",
            base().shards(8).hash_power(22).hash_expand(false),
            small,
            None,
        ),
        (
            "item max 2 MiB, 6 pages",
            base().item_size_max(2 << 20).memory_limit(12 << 20),
            Shape {
                big: 2 << 20,
                keys: 2_000,
            },
            None,
        ),
        (
            "TEMP LRU, hot 5% warm 90%",
            base().hot_lru_pct(5).warm_lru_pct(90),
            small,
            Some(2),
        ),
    ]
}

#[test]
fn threads_under_each_configuration_keep_the_invariants() {
    for (i, (name, config, shape, temp_ttl)) in configurations().into_iter().enumerate() {
        let clock = Clock::manual(1_700_000_000);
        let store = Arc::new(Store::new(config.clock(clock.clone())).unwrap());
        store.set_lru_temp_ttl(temp_ttl);
        if i % 2 == 1 {
            store.set_slab_automove(2);
        }
        let until = Instant::now() + Duration::from_millis(run_ms());
        let stop = Arc::new(AtomicBool::new(false));
        let maintainer = {
            let (store, stop, clock) = (store.clone(), stop.clone(), clock.clone());
            std::thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(i as u64);
                let n = store.slab_class_count() as i64;
                let limit = store.config().memory_limit;
                while !stop.load(Ordering::Relaxed) {
                    store.maintain();
                    match rng.gen_range(0..10) {
                        0 => clock.advance(1),
                        1 => {
                            store.slabs_reassign(-1, rng.gen_range(1..=n));
                        }
                        2 => {
                            // lowered a page and raised back, under load
                            let page = store.config().page_size;
                            store.set_memory_limit(limit - page).unwrap();
                            let st = store.stats();
                            assert!(st.total_malloced <= limit as u64);
                            store.set_memory_limit(limit).unwrap();
                        }
                        3 if rng.gen_bool(0.05) => store.flush_all(0),
                        // the wall clock steps back: the store's time must not
                        4 if rng.gen_bool(0.1) => clock.set(clock.now() - rng.gen_range(2..30)),
                        _ => {
                            let st = store.stats();
                            assert!(st.total_malloced <= limit as u64);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || worker(&store, (i * 16 + t) as u64, shape, until))
            })
            .collect();
        let ops: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        maintainer.join().unwrap();
        let st = check_quiet(&store, name);
        eprintln!(
            "{name}: {ops} ops on {THREADS} threads: {} items, {} evictions, {} moved, {} reassign drops",
            st.curr_items, st.evictions, st.slabs_moved, st.slab_reassign_evictions_nomem
        );
    }
}

#[test]
fn a_walk_while_threads_write_sees_every_untouched_key_once() {
    for (i, (name, config, shape, _)) in configurations().into_iter().enumerate() {
        let clock = Clock::manual(1_700_000_000);
        let store = Arc::new(Store::new(config.clock(clock.clone())).unwrap());
        // keys no thread touches: written first, small so few classes hold them
        let stable: Vec<Vec<u8>> = (0..3_000).map(|j| format!("s{j}").into_bytes()).collect();
        for k in &stable {
            let v = value_for(k, k.len() * 4);
            store
                .store(&StoreRequest::new(StoreMode::Set, k, &v))
                .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let until = Instant::now() + Duration::from_secs(60);
        let workers: Vec<_> = (0..THREADS - 1)
            .map(|t| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    let mut ops = 0;
                    while !stop.load(Ordering::Relaxed) && n < 5_000 {
                        let until = Instant::now() + Duration::from_millis(2);
                        ops += worker(&store, (i * 16 + t) as u64 + n, shape, until);
                        n += 1;
                    }
                    ops
                })
            })
            .collect();
        let mover = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let n = store.slab_class_count() as i64;
                let mut c = 0;
                while !stop.load(Ordering::Relaxed) {
                    store.maintain();
                    store.slabs_reassign(-1, c % n + 1);
                    c += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
        for sh in 0..store.shard_count() {
            // a snapshot's walk in tag order, a replica's full sync's scattered
            let mut cur = if i % 2 == 0 {
                ShardCursor::default()
            } else {
                ShardCursor::scattered()
            };
            let mut steps = 0;
            while !store.visit_shard_batch(sh, &mut cur, 8, |it| {
                assert!(
                    it.key.starts_with(b"ctr") || intact(it.key, it.value),
                    "{name}: torn value"
                );
                *seen.entry(it.key.to_vec()).or_default() += 1;
            }) {
                steps += 1;
                assert!(Instant::now() < until, "{name}: the walk must end");
                if steps % 8 == 0 {
                    // let the writers in between steps
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let ops: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        mover.join().unwrap();
        // a stable key still here at the end was here for the whole walk (nothing writes
        // it; once evicted or moved out it cannot come back)
        let quiet = GetOptions {
            no_bump: true,
            ..GetOptions::default()
        };
        let present: HashSet<&Vec<u8>> = stable
            .iter()
            .filter(|k| store.get(k, &quiet, |_| ()).is_some())
            .collect();
        for k in &present {
            assert_eq!(
                seen.get(*k),
                Some(&1),
                "{name}: {:?} present throughout",
                String::from_utf8_lossy(k)
            );
        }
        assert!(seen.values().all(|&n| n == 1), "{name}: a key seen twice");
        eprintln!(
            "{name}: {} stable keys present throughout, {} keys walked, {ops} ops meanwhile",
            present.len(),
            seen.len()
        );
        assert!(ops > 100, "{name}: the threads wrote during the walk");
        check_quiet(&store, name);
    }
}

//! Randomized model-based test: millions of random operations against the engine and a
//! plain HashMap reference, with a small memory limit (eviction, page moves between classes
//! and shards) and a manual clock (expiry, delayed flush).
//!
//! Before each operation the key is peeked (a no-bump read) and reconciled with the model:
//! a key the model has but the store lacks must be explained by eviction (counted, and
//! bounded by the evictions the store reports), a key the store has but the model lacks is a
//! phantom (failure), and a key both have must match in value, flags, cas and exptime. Then
//! the operation runs on both and the outcomes must be equal. Every few thousand operations
//! the crawler runs and the store-wide invariants are checked: pages within the limit, stats
//! equal to what a walk of all items finds, counters equal to what the test expects.
//!
//! With expiry and flushes, lost keys can only be bounded by the evictions (an evicted key
//! whose model entry expires before it is looked at is never counted as lost), and a bug that
//! drops items silently also frees memory, so it evicts less and hides under that bound. The
//! timeless runs (no expiry, no flush) close the gap: there every eviction loses a model key
//! except the rare one that evicts the old version of the key being stored, so `lost` must
//! stay within a few of `evictions` and never above it.

use ferrocache_core::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

const T0: u32 = 1_700_000_000;
const CHECK_EVERY: u64 = 25_000;

/// A run's configuration: the engine's settings and the workload's shape.
#[derive(Debug, Clone)]
struct Setup {
    memory: usize,
    item_max: usize,
    shards: usize,
    growth: f64,
    min_size: usize,
    hash_power: Option<u8>,
    hash_expand: bool,
    hot_pct: u8,
    warm_pct: u8,
    /// false: memcached's `-M` (out of memory instead of eviction; `evictions` stays 0)
    evict: bool,
    /// The run must have moved pages (to classes that had no item left).
    moves_pages: bool,
    automove: u8,
    /// false: `lru mode flat`
    segmented: bool,
    /// `lru temp_ttl`: TEMP items are never evicted, so stores can fail for memory
    temp_ttl: Option<u32>,
    /// The wall clock steps back (and far forward) now and then.
    clock_steps: bool,
    /// false: memcached's `-C` (items sized without its 8 bytes of CAS).
    use_cas: bool,
    /// `cache_memlimit` lowers and raises the limit now and then (with eviction).
    limit_changes: bool,
    /// false: memcached's `-o no_slab_reassign` (no page changes class but for a class's
    /// first; a lowered limit frees no page that holds items).
    slab_reassign: bool,
    /// The chance that one op in 1000 that would pass time is a flush_all instead.
    flush_rate: f64,
    /// Values spread over ~27 slab classes (more than the pages: constant page moves)
    /// instead of a few.
    wide: bool,
    keys: u32,
    /// No expiry and no flushes: then every key the store loses must be an eviction, one
    /// for one (`lost == evictions`), instead of only `lost <= evictions`. (With expiry the
    /// count cannot be exact: an evicted key whose model entry expired before it was looked
    /// at is not counted as lost.)
    timeless: bool,
    ops: u64,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            memory: 16 << 20,
            item_max: 32 << 10,
            shards: 2,
            growth: 1.25,
            min_size: 48,
            hash_power: None,
            hash_expand: true,
            hot_pct: 20,
            warm_pct: 40,
            evict: true,
            moves_pages: false,
            automove: 1,
            segmented: true,
            temp_ttl: None,
            clock_steps: false,
            flush_rate: 0.005,
            use_cas: true,
            limit_changes: false,
            slab_reassign: true,
            wide: false,
            keys: 400_000,
            timeless: false,
            ops: 2_000_000,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    exptime: u32,
    cas: u64,
}

/// Counters the test predicts from outcomes.
#[derive(Default, Debug, PartialEq, Eq)]
struct Expect {
    cmd_get: u64,
    get_hits: u64,
    get_misses: u64,
    cmd_set: u64,
    cmd_touch: u64,
    touch_hits: u64,
    touch_misses: u64,
    delete_hits: u64,
    delete_misses: u64,
    cas_hits: u64,
    cas_misses: u64,
    cas_badval: u64,
    incr_hits: u64,
    incr_misses: u64,
    decr_hits: u64,
    decr_misses: u64,
}

struct Harness {
    s: Setup,
    store: Store,
    clock: Clock,
    model: HashMap<Vec<u8>, Entry>,
    flush_at: Option<u32>,
    /// The largest CAS the store has handed out or been given (its counter, but for the
    /// values refused stores used up unseen, a few at a time).
    max_cas: u64,
    /// The last immediate flush: its second and CAS boundary. An item stored in that
    /// second with a client-given CAS (meta `E`) below the boundary is flushed with the
    /// items before it, as memcached's `item_is_flushed` (`cas < settings.oldest_cas`).
    flush_mark: Option<(u32, u64)>,
    expect: Expect,
    /// Model keys found missing from the store (each must be an eviction).
    lost: u64,
    rng: SmallRng,
    noise: Vec<u8>,
    /// The largest `evictions - lost` a timeless run saw at a check.
    max_gap: u64,
    /// Outcomes explained by an eviction during the operation (see `evicted_meanwhile`).
    evicted_meanwhile: u64,
    /// Operations that failed for memory (see [`Harness::may_run_out`]).
    out_of_memory: u64,
    /// The memory limit now.
    limit: usize,
}

/// memcached's own item size (its 48-byte header, 8 of CAS unless `-C`, key + 1,
/// value + 2, 4 for non-zero flags).
fn memcached_size(key: &[u8], vlen: usize, flags: u32, use_cas: bool) -> usize {
    let cas = if use_cas { 8 } else { 0 };
    48 + cas + key.len() + 1 + vlen + 2 + if flags != 0 { 4 } else { 0 }
}

impl Harness {
    fn new(seed: u64, s: Setup) -> Harness {
        let clock = Clock::manual(T0);
        let mut config = Config::default()
            .memory_limit(s.memory)
            .item_size_max(s.item_max)
            .shards(s.shards)
            .growth_factor(s.growth)
            .slab_min_size(s.min_size)
            .hash_expand(s.hash_expand)
            .hot_lru_pct(s.hot_pct)
            .warm_lru_pct(s.warm_pct)
            .evict(s.evict)
            .slab_reassign(s.slab_reassign)
            .background(false)
            .clock(clock.clone());
        if let Some(p) = s.hash_power {
            config = config.hash_power(p);
        }
        let store = Store::new(config).unwrap();
        assert_eq!(store.shard_count(), s.shards);
        assert!(store.set_slab_automove(s.automove));
        store.set_lru_segmented(s.segmented);
        store.set_lru_temp_ttl(s.temp_ttl);
        store.set_use_cas(s.use_cas);
        let mut rng = SmallRng::seed_from_u64(seed);
        let noise = (0..s.item_max * 2).map(|_| rng.gen()).collect();
        let limit = s.memory;
        Harness {
            s,
            store,
            clock,
            model: HashMap::new(),
            flush_at: None,
            max_cas: 0,
            flush_mark: None,
            expect: Expect::default(),
            lost: 0,
            rng,
            noise,
            max_gap: 0,
            evicted_meanwhile: 0,
            out_of_memory: 0,
            limit,
        }
    }

    /// The store's time (ahead of the clock once the clock stepped back).
    fn now(&self) -> u32 {
        self.store.now()
    }

    fn fits(&self, key: &[u8], vlen: usize) -> bool {
        36 + key.len() + vlen <= self.s.item_max
    }

    /// A stored value, and an append/prepend's joined value, is held to memcached's own
    /// item size against the limit, as its do_item_alloc is.
    fn joined_fits(&self, key: &[u8], vlen: usize, flags: u32) -> bool {
        self.fits(key, vlen) && memcached_size(key, vlen, flags, self.s.use_cas) <= self.s.item_max
    }

    /// A store may fail for memory: without eviction, or with TEMP items (never evicted).
    fn may_run_out(&self) -> bool {
        !self.s.evict || self.s.temp_ttl.is_some()
    }

    fn alive(e: &Entry, now: u32) -> bool {
        e.exptime == 0 || e.exptime > now
    }

    /// Brings the model's view of `key` in line with the store, checking what may differ.
    fn reconcile(&mut self, key: &[u8]) {
        let now = self.now();
        if self.model.get(key).is_some_and(|e| !Self::alive(e, now)) {
            self.model.remove(key);
        }
        let peek = self.store.get(
            key,
            &GetOptions {
                no_bump: true,
                ..GetOptions::default()
            },
            |v| Entry {
                value: v.value.to_vec(),
                flags: v.flags,
                exptime: v.exptime,
                cas: v.cas,
            },
        );
        match (self.model.get(key), peek) {
            (Some(e), Some(p)) => {
                assert_eq!(
                    e.value,
                    p.value,
                    "value of {:?}",
                    String::from_utf8_lossy(key)
                );
                assert_eq!(
                    (e.flags, e.exptime, e.cas),
                    (p.flags, p.exptime, p.cas),
                    "meta of {:?}",
                    String::from_utf8_lossy(key)
                );
            }
            (Some(_), None) => {
                self.model.remove(key);
                self.lost += 1;
            }
            (None, Some(p)) => panic!("phantom key {:?} = {:?}", String::from_utf8_lossy(key), p),
            (None, None) => {}
        }
    }

    /// The operation's own allocation evicted the item it then looked for (it was at the
    /// COLD tail; memcached allocates before the lookup and answers the same way), or it
    /// had to release its shard lock while another shard or the mover made room, and that
    /// evicted the item: it then answers as if the key had been evicted just before.
    /// Accepted only when the key really is gone now; counted as a lost key.
    /// An `add` the model refuses was stored: accepted when the store now holds the add's
    /// item (its CAS), i.e. the item the model knows was evicted by the add's allocation.
    /// An add stored already expired (negative or past exptime) leaves no item.
    fn stored_after_own_eviction(&self, key: &[u8], cas: u64, expired: bool) -> bool {
        let quiet = GetOptions {
            no_bump: true,
            ..GetOptions::default()
        };
        let now = self.store.get(key, &quiet, |v| v.cas);
        now == Some(cas) || (expired && now.is_none())
    }

    fn evicted_meanwhile(&mut self, key: &[u8], want: StoreStatus, got: StoreStatus) -> bool {
        use StoreStatus::*;
        let as_if_missing = matches!(
            (want, got),
            (Stored, NotStored) | (Stored, NotFound) | (Exists, NotFound)
        );
        let gone = self
            .store
            .get(
                key,
                &GetOptions {
                    no_bump: true,
                    ..GetOptions::default()
                },
                |_| (),
            )
            .is_none();
        if as_if_missing && gone {
            self.model.remove(key);
            self.lost += 1;
            self.evicted_meanwhile += 1;
            return true;
        }
        false
    }

    fn value(&mut self) -> Vec<u8> {
        let r: u32 = self.rng.gen_range(0..1000);
        let max = self.s.item_max;
        let len = match r {
            _ if !self.s.wide => self.rng.gen_range(0..300),
            0..=599 => self.rng.gen_range(0..200),
            600..=899 => self.rng.gen_range(200..2000),
            900..=989 => self.rng.gen_range(2000..16_000),
            // the largest values, up to just past the limit, are rare when it is large
            _ if max > 64 << 10 && self.rng.gen_bool(0.9) => self.rng.gen_range(16_000..64_000),
            _ => self.rng.gen_range(16_000..max.max(16_000) + 100),
        };
        // a small limit: the longer values land around it (some fit, some are too large)
        let len = len.min(max - 100 + self.rng.gen_range(0..200));
        if self.rng.gen_bool(0.1) {
            return self.rng.gen_range(0u64..1_000_000).to_string().into_bytes();
        }
        let off = self.rng.gen_range(0..self.noise.len() - len);
        self.noise[off..off + len].to_vec()
    }

    fn exptime(&mut self) -> i64 {
        if self.s.timeless {
            return 0;
        }
        match self.rng.gen_range(0..100) {
            0..=59 => 0,
            60..=89 => self.rng.gen_range(1..30),
            90..=94 => self.now() as i64 + self.rng.gen_range(1..30),
            95..=97 => -1,
            _ => self.now() as i64 - 5, // absolute in the past
        }
    }

    /// Notes a CAS the store handed out or was given.
    fn saw_cas(&mut self, cas: u64) {
        if cas < 1 << 63 {
            self.max_cas = self.max_cas.max(cas);
        }
    }

    fn put(&mut self, key: &[u8], value: Vec<u8>, flags: u32, exptime: Option<u32>, cas: u64) {
        self.saw_cas(cas);
        let now = self.now();
        let flushed = self
            .flush_mark
            .is_some_and(|(second, boundary)| second == now && cas < boundary);
        match exptime.filter(|_| !flushed) {
            Some(exptime) => {
                self.model.insert(
                    key.to_vec(),
                    Entry {
                        value,
                        flags,
                        exptime,
                        cas,
                    },
                );
            }
            None => {
                self.model.remove(key);
            }
        }
    }

    fn step(&mut self) {
        let key = format!("key:{}", self.rng.gen_range(0..self.s.keys)).into_bytes();
        let roll = self.rng.gen_range(0..1000);
        if roll < 2 && !self.s.timeless {
            // time passes; a delayed flush takes effect when its deadline is reached
            match self.rng.gen_range(0..100) {
                // the wall clock steps back: the store's time stands, then goes on
                0..=9 if self.s.clock_steps => {
                    let back = self.rng.gen_range(2..120);
                    self.clock.set(self.clock.now() - back);
                }
                // or far forward (a day or two: everything with a TTL expires)
                10 if self.s.clock_steps => self.clock.advance(self.rng.gen_range(86_400..200_000)),
                _ => self.clock.advance(self.rng.gen_range(1..3)),
            }
            if self.flush_at.is_some_and(|at| self.now() >= at) {
                self.model.clear();
                self.flush_at = None;
            }
            return;
        }
        if roll == 3 && self.s.limit_changes && self.rng.gen_bool(0.05) {
            // between half and all of the configured memory, whole pages
            let page = self.store.config().page_size;
            let pages = self.s.memory / page;
            let to = self.rng.gen_range(pages / 2..=pages) * page;
            self.store.set_memory_limit(to).unwrap();
            self.limit = to;
            // without page moves the pages that hold items stay
            let most = if self.s.slab_reassign {
                to
            } else {
                self.s.memory
            };
            assert!(
                self.store.stats().total_malloced <= most as u64,
                "over {most} at once"
            );
            return;
        }
        if roll == 2 && !self.s.timeless && self.rng.gen_bool(self.s.flush_rate) {
            if self.rng.gen_bool(0.5) {
                self.store.flush_all(0);
                self.model.clear();
                self.flush_at = None;
                // the flush uses up the next CAS as its boundary
                self.max_cas += 1;
                self.flush_mark = Some((self.now(), self.max_cas));
            } else {
                let delay = self.rng.gen_range(1..5);
                self.store.flush_all(delay);
                self.flush_at = Some(self.now() + delay as u32);
                self.flush_mark = None;
            }
            return;
        }
        self.reconcile(&key);
        let now = self.now();
        let present = self.model.contains_key(&key);
        match roll {
            3..=299 => {
                let gat = self.rng.gen_bool(0.05);
                let touch = gat.then(|| self.rng.gen_range(0..40) * i64::from(!self.s.timeless));
                // meta N: a miss creates an empty item and wins the recache (not when that
                // may fail for memory: the model cannot tell that from a miss)
                let vivify = (!gat && !self.may_run_out() && self.rng.gen_bool(0.05))
                    .then(|| self.exptime());
                let got = self.store.get(
                    &key,
                    &GetOptions {
                        touch,
                        vivify,
                        ..GetOptions::default()
                    },
                    |v| (v.value.to_vec(), v.cas, v.exptime, v.won),
                );
                if let (Some(n), false) = (vivify, present) {
                    let (value, cas, exptime, won) = got.expect("vivified");
                    self.saw_cas(cas);
                    assert!(value.is_empty() && won);
                    assert_eq!(exptime, Clock::resolve_exptime(n, now).unwrap_or(1));
                    self.model.insert(
                        key.clone(),
                        Entry {
                            value,
                            flags: 0,
                            exptime,
                            cas,
                        },
                    );
                    self.expect.cmd_get += 1;
                    self.expect.get_hits += 1;
                    return;
                }
                assert_eq!(got.is_some(), present);
                match (touch, present) {
                    (Some(t), true) => {
                        self.expect.cmd_touch += 1;
                        self.expect.touch_hits += 1;
                        self.model.get_mut(&key).unwrap().exptime =
                            Clock::resolve_exptime(t, now).unwrap_or(1);
                    }
                    (Some(_), false) => {
                        self.expect.cmd_touch += 1;
                        self.expect.touch_misses += 1;
                    }
                    (None, true) => {
                        self.expect.cmd_get += 1;
                        self.expect.get_hits += 1;
                    }
                    (None, false) => {
                        self.expect.cmd_get += 1;
                        self.expect.get_misses += 1;
                    }
                }
            }
            300..=749 => {
                let mode = match roll {
                    300..=549 => StoreMode::Set,
                    550..=599 => StoreMode::Add,
                    600..=649 => StoreMode::Replace,
                    650..=699 => StoreMode::Append,
                    _ => StoreMode::Prepend,
                };
                let value = self.value();
                let vlen = value.len();
                let flags = self.rng.gen();
                let exptime = self.exptime();
                let use_cas =
                    matches!(mode, StoreMode::Set | StoreMode::Replace) && self.rng.gen_bool(0.15);
                let cas = use_cas.then(|| match self.model.get(&key) {
                    Some(e) if self.rng.gen_bool(0.6) => e.cas,
                    Some(e) => e.cas + 1,
                    None => 1,
                });
                // meta E: the client picks the new item's cas
                let new_cas = self
                    .rng
                    .gen_bool(0.05)
                    .then(|| self.rng.gen_range(1u64 << 40..1 << 41));
                let r = StoreRequest {
                    mode,
                    key: &key,
                    value: &value,
                    flags,
                    exptime,
                    cas,
                    invalidate: false,
                    new_cas,
                    vivify: None,
                };
                let out = self.store.store(&r);
                if let Ok(o) = &out {
                    self.saw_cas(o.cas);
                }
                if !self.joined_fits(&key, value.len(), flags) {
                    assert_eq!(out, Err(StoreError::TooLarge));
                    if mode == StoreMode::Set && !use_cas {
                        self.model.remove(&key);
                    }
                    return;
                }
                if out == Err(StoreError::OutOfMemory) && self.may_run_out() {
                    // not counted (memcached counts a set once it has the item); a plain
                    // set drops the old value, anything else leaves it, and so does a set
                    // of an item memcached chunks (it runs out while reading the value)
                    let chunked =
                        memcached_size(&key, value.len(), flags, self.s.use_cas) > 512 << 10;
                    let dropped = mode == StoreMode::Set && !use_cas && !chunked;
                    let old = self.model.get(&key).map(|e| e.value.len());
                    if dropped {
                        self.model.remove(&key);
                    }
                    if !self.s.evict {
                        let old = old.filter(|_| dropped);
                        self.check_refusal(&key, value.len(), old, None);
                    }
                    self.out_of_memory += 1;
                    return;
                }
                let out = out.expect("no other error with eviction on");
                if let (Some(e), StoreStatus::Stored) = (new_cas, out.status) {
                    assert_eq!(out.cas, e);
                }
                self.expect.cmd_set += 1;
                let resolved = Clock::resolve_exptime(exptime, now);
                if let Some(c) = cas {
                    let want = match self.model.get(&key) {
                        None => {
                            self.expect.cas_misses += 1;
                            StoreStatus::NotFound
                        }
                        Some(e) if e.cas == c => {
                            self.expect.cas_hits += 1;
                            StoreStatus::Stored
                        }
                        Some(_) => {
                            self.expect.cas_badval += 1;
                            StoreStatus::Exists
                        }
                    };
                    if out.status != want && self.evicted_meanwhile(&key, want, out.status) {
                        // counted as the miss it turned out to be
                        match want {
                            StoreStatus::Stored => self.expect.cas_hits -= 1,
                            _ => self.expect.cas_badval -= 1,
                        }
                        self.expect.cas_misses += 1;
                        return;
                    }
                    assert_eq!(out.status, want);
                    if want == StoreStatus::Stored {
                        self.put(&key, value, flags, resolved, out.cas);
                    }
                    return;
                }
                if (mode, present, out.status) == (StoreMode::Add, true, StoreStatus::Stored)
                    && self.stored_after_own_eviction(&key, out.cas, resolved.is_none())
                {
                    // the add's own allocation evicted the key's item, then found no key
                    self.put(&key, value, flags, resolved, out.cas);
                    return;
                }
                let before = self.model.get(&key).cloned();
                let want = match (mode, present) {
                    (StoreMode::Set, _) | (StoreMode::Add, false) | (StoreMode::Replace, true) => {
                        self.put(&key, value, flags, resolved, out.cas);
                        StoreStatus::Stored
                    }
                    (StoreMode::Append | StoreMode::Prepend, true) => {
                        let e = self.model.get(&key).unwrap().clone();
                        let joined = if mode == StoreMode::Append {
                            [e.value, value].concat()
                        } else {
                            [value, e.value].concat()
                        };
                        if self.joined_fits(&key, joined.len(), e.flags) {
                            self.put(&key, joined, e.flags, Some(e.exptime), out.cas);
                            StoreStatus::Stored
                        } else {
                            StoreStatus::NotStored
                        }
                    }
                    _ => StoreStatus::NotStored,
                };
                if out.status != want && self.evicted_meanwhile(&key, want, out.status) {
                    return;
                }
                let joins = matches!(mode, StoreMode::Append | StoreMode::Prepend);
                if joins
                    && (want, out.status) == (StoreStatus::Stored, StoreStatus::NotStored)
                    && self.may_run_out()
                {
                    // no memory for the joined value: NOT_STORED, the old value stays
                    let before = before.expect("append to a present key");
                    if !self.s.evict {
                        // (the request's own chunk went back)
                        let joined = before.value.len() + vlen;
                        self.check_refusal(&key, joined, None, Some(vlen));
                    }
                    self.model.insert(key.clone(), before);
                    self.out_of_memory += 1;
                    return;
                }
                if out.status != want {
                    // restore what the mismatch branch changed before failing loudly
                    self.model.insert(
                        key.clone(),
                        before.unwrap_or_else(|| panic!("{mode:?} {want:?} {:?}", out.status)),
                    );
                }
                assert_eq!(out.status, want, "{mode:?} present={present}");
                if joins && want == StoreStatus::Stored && !self.s.evict {
                    // the request's own item was allocated (memcached refuses the command
                    // without it) and given back once the joined one was made
                    let sizes = self.store.slab_class_sizes();
                    let total = 36 + key.len() + vlen;
                    let c = sizes.iter().position(|&s| s as usize >= total).unwrap();
                    let st = self.store.stats();
                    let free = st.classes.iter().find(|k| k.id as usize == c + 1);
                    assert!(
                        free.is_some_and(|k| k.free_chunks > 0),
                        "{mode:?} stored without a chunk for its {vlen} bytes"
                    );
                }
            }
            750..=849 => {
                let st = self.store.delete(&DeleteRequest {
                    key: &key,
                    ..DeleteRequest::default()
                });
                if present {
                    assert_eq!(st, DeleteStatus::Deleted);
                    self.expect.delete_hits += 1;
                    self.model.remove(&key);
                } else {
                    assert_eq!(st, DeleteStatus::NotFound);
                    self.expect.delete_misses += 1;
                }
            }
            850..=949 => {
                let incr = self.rng.gen_bool(0.6);
                let delta = if self.rng.gen_bool(0.01) {
                    u64::MAX - 3
                } else {
                    self.rng.gen_range(0..1000)
                };
                let out = self.store.arith(&ArithRequest {
                    key: &key,
                    incr,
                    delta,
                    cas: None,
                    vivify: None,
                    touch: None,
                    new_cas: None,
                });
                if out == Err(StoreError::OutOfMemory) && self.may_run_out() {
                    // a longer result needs a new item; the old one stays, and the hit
                    // counts (memcached counts it before it allocates)
                    assert!(present, "only a hit allocates");
                    if incr {
                        self.expect.incr_hits += 1;
                    } else {
                        self.expect.decr_hits += 1;
                    }
                    self.out_of_memory += 1;
                    return;
                }
                let Some(e) = self.model.get_mut(&key) else {
                    assert_eq!(out, Ok(ArithStatus::NotFound));
                    if incr {
                        self.expect.incr_misses += 1;
                    } else {
                        self.expect.decr_misses += 1;
                    }
                    return;
                };
                // memcached refuses a value it would chunk before parsing it
                let size = memcached_size(&key, e.value.len(), e.flags, self.s.use_cas);
                let chunked = size > 512 << 10;
                match strtoull(&e.value).filter(|_| !chunked) {
                    None => assert_eq!(out, Err(StoreError::NonNumeric), "value {:?}", e.value),
                    Some(n) => {
                        let v = if incr {
                            n.wrapping_add(delta)
                        } else {
                            n.saturating_sub(delta)
                        };
                        let Ok(ArithStatus::Ok { value, cas, .. }) = out else {
                            panic!("{out:?}")
                        };
                        assert_eq!(value, v);
                        // memcached: in place padded with spaces when not longer
                        let text = v.to_string().into_bytes();
                        if text.len() <= e.value.len() {
                            let pad = e.value.len() - text.len();
                            e.value = text;
                            e.value.resize(e.value.len() + pad, b' ');
                        } else {
                            e.value = text;
                        }
                        e.cas = cas;
                        self.max_cas = self.max_cas.max(cas);
                        if incr {
                            self.expect.incr_hits += 1;
                        } else {
                            self.expect.decr_hits += 1;
                        }
                    }
                }
            }
            _ => {
                let t = self.exptime();
                let hit = self.store.touch(&key, t);
                assert_eq!(hit, present);
                self.expect.cmd_touch += 1;
                if hit {
                    self.expect.touch_hits += 1;
                    self.model.get_mut(&key).unwrap().exptime =
                        Clock::resolve_exptime(t, now).unwrap_or(1);
                } else {
                    self.expect.touch_misses += 1;
                }
            }
        }
    }

    /// Without eviction (-M), a store refused for memory must have had no room: no free
    /// chunk of its item's class, and, for a class with no item anywhere, no other class
    /// with a page's worth of free chunks (that page could be emptied without evicting and
    /// given to it). `dropped`: the length of the old value the refusal removed (its chunk
    /// and item are counted back); `freed`: that of a chunk it gave back (the request's).
    fn check_refusal(&self, key: &[u8], vlen: usize, dropped: Option<usize>, freed: Option<usize>) {
        let sizes = self.store.slab_class_sizes();
        let class_of = |vlen: usize| {
            let total = 36 + key.len() + vlen;
            sizes.iter().position(|&s| s as usize >= total)
        };
        let c = class_of(vlen).expect("a value that fits has a class");
        let (dropped, freed) = (dropped.map(class_of), freed.map(class_of));
        let back_items = |i: usize| u64::from(dropped == Some(Some(i)));
        let back_chunks = |i: usize| back_items(i) + u64::from(freed == Some(Some(i)));
        let st = self.store.stats();
        let of = |i: usize| st.classes.iter().find(|k| k.id as usize == i + 1);
        let (free, items, pages) = of(c).map_or((0, 0, 0), |k| {
            assert_eq!(k.chunk_size, sizes[c]);
            (k.free_chunks, k.number, k.total_pages)
        });
        assert!(
            free <= back_chunks(c),
            "refused for memory with {free} free chunks of its class ({} bytes)",
            sizes[c]
        );
        if items == back_items(c) && (self.s.slab_reassign || pages == 0) {
            for k in &st.classes {
                let i = k.id as usize - 1;
                assert!(
                    i == c || k.free_chunks - back_chunks(i) < u64::from(k.chunks_per_page),
                    "a class of no item ({} bytes) refused while class {} had a page's worth of free chunks ({k:?})",
                    sizes[c],
                    k.id
                );
            }
        }
    }

    /// Without eviction (-M): with every item deleted, a value of each class's size can be
    /// stored, one at a time (each class in turn has no item, and the others' pages can be
    /// emptied without evicting). memcached stores each (a class's first page passes its
    /// limit).
    fn every_size_fits_once_emptied(&mut self) {
        let mut keys = Vec::new();
        for sh in 0..self.store.shard_count() {
            self.store.visit_shard(sh, |v| keys.push(v.key.to_vec()));
        }
        for k in &keys {
            self.store.delete(&DeleteRequest {
                key: k,
                ..DeleteRequest::default()
            });
        }
        self.model.clear();
        let key = b"every:size";
        for &size in &self.store.slab_class_sizes() {
            let Some(vlen) = (size as usize).checked_sub(36 + key.len()) else {
                continue;
            };
            if !self.joined_fits(key, vlen, 0) {
                break;
            }
            let value = vec![b'v'; vlen];
            let r = StoreRequest::new(StoreMode::Set, key, &value);
            let out = self.store.store(&r).map(|o| o.status);
            assert_eq!(
                out,
                Ok(StoreStatus::Stored),
                "{size}-byte chunks, memory emptied"
            );
            self.store.delete(&DeleteRequest {
                key,
                ..DeleteRequest::default()
            });
        }
        let st = self.store.stats();
        assert_eq!((st.curr_items, st.evictions), (0, 0));
        assert!(st.total_malloced <= self.limit as u64);
    }

    fn check(&mut self) {
        // enough passes for the expiry walk to cover every slot (2^19 a pass), so that no
        // dead item the walk below skips is still counted in `curr_items`
        let slots = self.store.stats().hash_bytes / 8;
        for _ in 0..=slots >> 19 {
            self.store.maintain();
        }
        let now = self.now();
        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut seen = Vec::new();
        for sh in 0..self.store.shard_count() {
            self.store.visit_shard(sh, |v| {
                count += 1;
                bytes += (36 + v.key.len() + v.value.len()) as u64;
                seen.push((v.key.to_vec(), v.value.to_vec(), v.flags, v.cas, v.exptime));
            });
        }
        for (k, v, f, c, e) in &seen {
            let m = self.model.get(k).filter(|m| Self::alive(m, now));
            let m = m.unwrap_or_else(|| panic!("phantom {:?}", String::from_utf8_lossy(k)));
            assert_eq!((&m.value, m.flags, m.cas, m.exptime), (v, *f, *c, *e));
        }
        // model keys the walk did not find were evicted
        let present: std::collections::HashSet<&Vec<u8>> = seen.iter().map(|s| &s.0).collect();
        let missing: Vec<Vec<u8>> = self
            .model
            .iter()
            .filter(|(k, e)| Self::alive(e, now) && !present.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        self.lost += missing.len() as u64;
        for k in missing {
            self.model.remove(&k);
        }
        self.model.retain(|_, e| Self::alive(e, now));

        let st = self.store.stats();
        let memory = if self.s.slab_reassign {
            self.limit as u64
        } else {
            self.s.memory.max(self.limit) as u64
        };
        assert!(
            st.total_malloced <= memory,
            "pages over the limit: {}",
            st.total_malloced
        );
        let pages: u64 = st.classes.iter().map(|c| c.total_pages).sum();
        let page = self.store.config().page_size as u64;
        assert!((pages + st.slab_global_page_pool) * page <= memory);
        if !self.s.evict {
            assert_eq!(st.evictions, 0, "evictions without eviction");
        }
        assert_eq!(st.curr_items, count, "curr_items vs walk");
        assert_eq!(st.bytes, bytes, "bytes vs walk");
        assert_eq!(st.classes.iter().map(|c| c.number).sum::<u64>(), count);
        assert_eq!(st.classes.iter().map(|c| c.used_chunks).sum::<u64>(), count);
        for c in &st.classes {
            let segments = c.number_hot + c.number_warm + c.number_cold + c.number_temp;
            assert_eq!(segments, c.number);
            assert_eq!(c.used_chunks + c.free_chunks, c.total_chunks);
            assert!(c.mem_requested <= c.used_chunks * c.chunk_size as u64);
        }
        // items a page move had to drop count apart from evictions, as in memcached
        let dropped = st.evictions + st.slab_reassign_evictions_nomem;
        assert!(
            self.lost <= dropped,
            "{} keys lost but only {} evictions",
            self.lost,
            dropped
        );
        if self.s.timeless {
            // the only evictions that lose no key: an operation's own allocation evicting the
            // old version of the key it then stores (it was at the COLD tail); rare
            let gap = dropped - self.lost;
            self.max_gap = self.max_gap.max(gap);
            assert!(
                gap <= 20 + st.evictions / 1000,
                "{gap} evictions lost no key ({} lost, {} evictions)",
                self.lost,
                dropped
            );
        }
        let got = Expect {
            cmd_get: st.cmd_get,
            get_hits: st.get_hits,
            get_misses: st.get_misses,
            cmd_set: st.cmd_set,
            cmd_touch: st.cmd_touch,
            touch_hits: st.touch_hits,
            touch_misses: st.touch_misses,
            delete_hits: st.delete_hits,
            delete_misses: st.delete_misses,
            cas_hits: st.cas_hits,
            cas_misses: st.cas_misses,
            cas_badval: st.cas_badval,
            incr_hits: st.incr_hits,
            incr_misses: st.incr_misses,
            decr_hits: st.decr_hits,
            decr_misses: st.decr_misses,
        };
        assert_eq!(got, self.expect);
    }
}

/// memcached's safe_strtoull, written again from its description (leading whitespace, a
/// sign, digits, then the end or whitespace; a minus only on zero).
fn strtoull(v: &[u8]) -> Option<u64> {
    let ws = |b: &u8| b" \t\n\x0b\x0c\r".contains(b);
    let start = v.iter().position(|b| !ws(b))?;
    let (neg, rest) = match v[start] {
        b'-' => (true, &v[start + 1..]),
        b'+' => (false, &v[start + 1..]),
        _ => (false, &v[start..]),
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // a NUL ends the C string strtoull reads: the number ends there too
    if digits == 0 || rest.get(digits).is_some_and(|b| !ws(b) && *b != 0) {
        return None;
    }
    let n: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    (!neg || n == 0).then_some(n)
}

fn run(seed: u64, wide: bool, keys: u32, timeless: bool) -> (Harness, Stats) {
    run_setup(
        seed,
        Setup {
            wide,
            keys,
            timeless,
            ..Setup::default()
        },
    )
}

fn run_setup(seed: u64, s: Setup) -> (Harness, Stats) {
    let started = std::time::Instant::now();
    let (ops, timeless, memory) = (s.ops, s.timeless, s.memory as u64);
    let described = format!("{s:?}");
    let mut h = Harness::new(seed, s);
    for i in 1..=ops {
        h.step();
        if i % CHECK_EVERY == 0 {
            h.check();
        }
    }
    if h.limit != h.s.memory {
        // back to the configured limit, which the last operations fill again
        h.s.limit_changes = false;
        h.store.set_memory_limit(h.s.memory).unwrap();
        h.limit = h.s.memory;
        for _ in 0..40_000 {
            h.step();
        }
    }
    h.check();
    let st = h.store.stats();
    assert_eq!(st.total_malloced, memory, "memory never filled");
    if h.s.moves_pages {
        assert!(st.slabs_moved > 0, "no page moved");
    }
    assert!(
        timeless || st.get_expired + st.crawler_reclaimed + st.reclaimed > ops / 20_000,
        "expiry never happened"
    );
    eprintln!(
        "{described} seed {seed:#x}: {ops} ops in {:?}: evictions {}, lost {} ({} during the op), out of memory {}, pages moved {}, expired {}+{}+{}, items {}, get_hits {}, evictions - lost at most {}",
        started.elapsed(),
        st.evictions,
        h.lost,
        h.evicted_meanwhile,
        h.out_of_memory,
        st.slabs_moved,
        st.get_expired,
        st.crawler_reclaimed,
        st.reclaimed,
        st.curr_items,
        st.get_hits,
        h.max_gap,
    );
    if !h.s.evict {
        h.every_size_fits_once_emptied();
    }
    (h, st)
}

#[test]
fn random_operations_match_the_model() {
    // a few slab classes, more keys than fit: eviction within classes
    let (_, st) = run(0x5eed_cafe, false, 400_000, false);
    assert!(st.evictions > 5_000, "evictions {}", st.evictions);
    assert!(st.get_hits > 10_000, "get_hits {}", st.get_hits);
}

#[test]
fn random_operations_with_many_sizes_match_the_model() {
    // more classes in use than pages: pages move between classes and shards all the time
    let (_, st) = run(0xfeed_f00d, true, 60_000, false);
    assert!(st.evictions > 1000, "evictions {}", st.evictions);
    assert!(st.slabs_moved > 1000, "pages moved {}", st.slabs_moved);
}

#[test]
fn without_expiry_every_lost_key_is_an_eviction() {
    // lost == evictions exactly: a key that vanishes without being counted as evicted fails
    let (_, st) = run(0xdead_beef, false, 400_000, true);
    assert!(st.evictions > 5_000, "evictions {}", st.evictions);
    let (_, st) = run(0xbead_feed, true, 60_000, true);
    assert!(st.slabs_moved > 1000, "pages moved {}", st.slabs_moved);
}

/// The non-default configurations, each a short run (CI) or, with `FERROCACHE_MODEL_SCALE=n`,
/// n times as long over n seeds (`cargo test --release --test model configurations --
/// --nocapture`, for minutes of random operations locally).
fn configurations() -> Vec<(&'static str, Setup)> {
    let short = Setup {
        ops: 120_000,
        keys: 60_000,
        wide: true,
        ..Setup::default()
    };
    vec![
        (
            "growth 1.05 (63 classes, the cap)",
            Setup {
                growth: 1.05,
                ..short.clone()
            },
        ),
        (
            "growth 1.01 (62 classes of 96 bytes, then pages, as memcached)",
            Setup {
                growth: 1.01,
                ..short.clone()
            },
        ),
        (
            "growth 2.0, 4 shards",
            Setup {
                growth: 2.0,
                shards: 4,
                ..short.clone()
            },
        ),
        (
            "smallest chunk 16 + 48",
            Setup {
                min_size: 16,
                growth: 1.5,
                ..short.clone()
            },
        ),
        (
            "smallest chunk 2000 + 48",
            Setup {
                min_size: 2000,
                ..short.clone()
            },
        ),
        (
            "item max 2 MiB (2 MiB pages), 8 pages",
            Setup {
                item_max: 2 << 20,
                ..short.clone()
            },
        ),
        (
            "item max 1 KiB, 6 pages",
            Setup {
                item_max: 1024,
                memory: 6 << 20,
                keys: 200_000,
                ..short.clone()
            },
        ),
        (
            "4 pages, automove 2",
            Setup {
                memory: 4 << 20,
                automove: 2,
                ..short.clone()
            },
        ),
        (
            "4 pages, automove 0",
            Setup {
                memory: 4 << 20,
                automove: 0,
                ..short.clone()
            },
        ),
        (
            "no eviction (-M)",
            Setup {
                evict: false,
                ..short.clone()
            },
        ),
        (
            "no eviction (-M), 3 pages, 4 shards, 300 keys: pages move to classes left without items",
            Setup {
                evict: false,
                memory: 3 << 20,
                shards: 4,
                keys: 300,
                moves_pages: true,
                ..short.clone()
            },
        ),
        (
            "no eviction (-M), no expiry, 3 pages, 4 shards, item max 2 KiB",
            Setup {
                evict: false,
                timeless: true,
                memory: 3 << 20,
                shards: 4,
                item_max: 2048,
                keys: 20_000,
                ..short.clone()
            },
        ),
        (
            "no eviction (-M), no expiry, 3 pages, automove 2",
            Setup {
                evict: false,
                timeless: true,
                memory: 3 << 20,
                automove: 2,
                ..short.clone()
            },
        ),
        (
            "hash power 4, 1 shard (growth from 16 slots)",
            Setup {
                hash_power: Some(4),
                shards: 1,
                ..short.clone()
            },
        ),
        (
            "hash power 24, no expansion, 8 shards",
            Setup {
                hash_power: Some(24),
                hash_expand: false,
                shards: 8,
                ..short.clone()
            },
        ),
        (
            "hash power 10, no expansion (grows past 15/16)",
            Setup {
                hash_power: Some(10),
                hash_expand: false,
                ..short.clone()
            },
        ),
        (
            "hot 1%, warm 98%",
            Setup {
                hot_pct: 1,
                warm_pct: 98,
                ..short.clone()
            },
        ),
        (
            "hot 60%, warm 0%",
            Setup {
                hot_pct: 60,
                warm_pct: 0,
                ..short.clone()
            },
        ),
        (
            "no CAS (-C), item max 1 MiB",
            Setup {
                use_cas: false,
                item_max: 1 << 20,
                ..short.clone()
            },
        ),
        (
            "memory limit lowered and raised (cache_memlimit)",
            Setup {
                limit_changes: true,
                ..short.clone()
            },
        ),
        (
            "memory limit lowered and raised, few sizes",
            Setup {
                limit_changes: true,
                wide: false,
                memory: 8 << 20,
                keys: 400_000,
                ..short.clone()
            },
        ),
        (
            "flat LRU",
            Setup {
                segmented: false,
                ..short.clone()
            },
        ),
        (
            "TEMP LRU (ttl 20)",
            Setup {
                temp_ttl: Some(20),
                ..short.clone()
            },
        ),
        (
            "no slab reassign, 4 pages",
            Setup {
                slab_reassign: false,
                memory: 4 << 20,
                ..short.clone()
            },
        ),
        (
            "no slab reassign, TEMP LRU (ttl 20), memory limit lowered and raised",
            Setup {
                slab_reassign: false,
                temp_ttl: Some(20),
                limit_changes: true,
                ..short.clone()
            },
        ),
        (
            "no slab reassign, item max 1 KiB, 3 pages",
            Setup {
                slab_reassign: false,
                item_max: 1024,
                memory: 3 << 20,
                keys: 200_000,
                ..short.clone()
            },
        ),
        (
            "no slab reassign, 2 pages, item max 2 KiB",
            Setup {
                slab_reassign: false,
                item_max: 2048,
                memory: 2 << 20,
                keys: 100_000,
                ..short.clone()
            },
        ),
        (
            "2 pages, item max 2 KiB, clock steps",
            Setup {
                item_max: 2048,
                memory: 2 << 20,
                keys: 100_000,
                clock_steps: true,
                flush_rate: 0.2,
                ..short.clone()
            },
        ),
        (
            "clock steps back and forward",
            Setup {
                clock_steps: true,
                flush_rate: 0.2,
                ..short.clone()
            },
        ),
        (
            "clock steps, few sizes",
            Setup {
                clock_steps: true,
                flush_rate: 0.02,
                wide: false,
                memory: 8 << 20,
                keys: 400_000,
                ..short.clone()
            },
        ),
    ]
}

#[test]
fn configurations_match_the_model() {
    let scale: u64 = std::env::var("FERROCACHE_MODEL_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let only = std::env::var("FERROCACHE_MODEL_ONLY").ok();
    for (name, setup) in configurations() {
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        // FERROCACHE_MODEL_SEED=n: only the n-th seed (a long run's failure, again)
        let seeds = match std::env::var("FERROCACHE_MODEL_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(n) => n..n + 1,
            None => 0..scale,
        };
        for n in seeds {
            let seed = 0xc0f1_6000 + n * 7919 + name.len() as u64;
            eprintln!("{name}:");
            let (_, st) = run_setup(
                seed,
                Setup {
                    ops: setup.ops * scale,
                    ..setup.clone()
                },
            );
            if setup.evict && !setup.timeless {
                // (with few pages, the page mover's drops stand in for evictions)
                let dropped = st.evictions + st.slab_reassign_evictions_nomem;
                assert!(dropped > 0, "{name}: nothing evicted");
            }
        }
    }
}

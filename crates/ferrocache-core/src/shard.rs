//! The sharded store: memcached's item lifecycle (items.c / do_store_item / do_add_delta)
//! over shards that each own a hash table and per-class LRUs behind one lock; slab memory
//! is shared by all shards.
//!
//! A request hashes its key once; the high bits pick the shard, the low bits the bucket.
//! Every operation runs under that shard's lock; chunks come from the slab allocator shared
//! by all shards (its mutex is taken after a shard lock, briefly). When the allocator has no
//! chunk and the shard nothing of that class to evict, the operation returns
//! [`Fail::NeedPage`]; the caller drops the lock, has another shard evict or the mover move a
//! page ([`Core::make_room`]) and runs the operation again.

use crate::background::Registration;
use crate::clock::Clock;
use crate::config::{LruTune, Tunables};
use crate::crawler::CrawlState;
use crate::hashtable::{hash_key, HashTable, SlotHint};
use crate::item::{
    memcached_size, total_size, Item, F_ACTIVE, F_FETCHED, F_STALE, F_TOKEN, MAX_VLEN, NIL,
};
use crate::journal::{ItemState, Journal, Record};
use crate::lru::{Lru, COLD, HOT, TEMP, WARM};
use crate::mover::MoveState;
use crate::sizes::{SizesHist, SizesState};
use crate::slab::{ClassMem, PageMeta, SlabAlloc, SlabClasses, SlabMem, MAX_PAGE_SLOTS};
use crate::store::*;
use crate::{Config, ConfigError, SlabClassStats, Stats, StoreError};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Rounds of "make room without locks, retry" before an operation takes every shard lock.
const OPTIMISTIC_ROUNDS: usize = 4;

/// Why an operation could not finish under its shard lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fail {
    Err(StoreError),
    /// Retry after another shard or the mover has made room in this class.
    NeedPage(usize),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Err(e)
    }
}

/// Why a linked item is no longer valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dead {
    Expired,
    Flushed,
}

/// Time as one operation sees it.
pub(crate) struct Ctx {
    pub now: u32,
    /// Seconds since the store started (the items' time base).
    pub rel: u32,
    /// The last flush_all's mark in store seconds (0 = none): from this second on, items
    /// last stamped before it are flushed. An immediate flush marks the second it ran in, a
    /// delayed one the second before its deadline, with [`INCLUSIVE_MARK`] as `flush_cas`
    /// so the items of that second go too (memcached's `settings.oldest_live`:
    /// `realtime(delay) - 1`, and `it->time <= oldest_live` is flushed).
    pub flush_rel: u32,
    /// An immediate flush_all's CAS boundary minus one (0 = none): while the mark is active,
    /// an item of the flush's own second whose CAS is non-zero and below the boundary is
    /// flushed too, so the items stored before the flush in that second go and those stored
    /// after it stay (memcached's `settings.oldest_cas`; memcached applies it to items of
    /// any second, which differs only for a client-given CAS, meta `E`, below the boundary:
    /// memcached hides such an item stored after the flush for good, ferrocache only within
    /// the flush's second).
    pub flush_cas: u64,
}

/// [`Ctx::flush_cas`] of a delayed flush's mark: every item of the mark's second is
/// flushed (each has a CAS of at least 1, so `cas - 1` is below it).
pub(crate) const INCLUSIVE_MARK: u64 = u64::MAX;

impl Ctx {
    #[inline]
    pub fn dead(&self, it: Item) -> Option<Dead> {
        if self.flush_rel != 0 && self.rel >= self.flush_rel {
            // item times saturate at TIME_MASK (~776 days of uptime): a later mark is that
            // second, and the CAS boundary alone tells the items before the flush from
            // those after (else every item stored after it would be dead at once)
            let mark = self.flush_rel.min(crate::item::TIME_MASK);
            let t = it.time();
            if t < mark || (t == mark && it.cas().wrapping_sub(1) < self.flush_cas) {
                return Some(Dead::Flushed);
            }
        }
        let e = it.exptime();
        (e != 0 && e <= self.now).then_some(Dead::Expired)
    }

    /// memcached's exptime; an already expired time becomes 1 (long past).
    fn exptime(&self, exptime: i64) -> u32 {
        Clock::resolve_exptime(exptime, self.now).unwrap_or(1)
    }
}

/// Per-shard counters without a slab class (memcached's thread stats).
#[derive(Default, Clone)]
pub(crate) struct ShardCounters {
    pub total_items: u64,
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_touch: u64,
    pub get_misses: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub delete_misses: u64,
    pub incr_misses: u64,
    pub decr_misses: u64,
    pub cas_misses: u64,
    pub touch_misses: u64,
    pub lru_juggles: u64,
}

/// Per-class counters (memcached's slab_stats and itemstats).
#[derive(Default, Clone)]
pub(crate) struct ClassCounters {
    pub get_hits: u64,
    pub cmd_set: u64,
    pub delete_hits: u64,
    pub incr_hits: u64,
    pub decr_hits: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub evicted: u64,
    pub evicted_nonzero: u64,
    pub evicted_time: u32,
    pub outofmemory: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub evicted_unfetched: u64,
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    pub moves_to_cold: u64,
    pub moves_to_warm: u64,
    pub moves_within_lru: u64,
}

/// One shard: everything behind one lock.
pub(crate) struct Shard {
    pub mem: Arc<SlabMem>,
    pub ht: HashTable,
    /// Bytes (header + key + value) of this shard's items per class (mem_requested).
    pub req: Vec<u64>,
    pub lru: Vec<Lru>,
    pub cs: Vec<ClassCounters>,
    pub st: ShardCounters,
    /// Bumped whenever items vanish behind an operation's back (eviction, page move), so a
    /// handle read before an allocation is known to be stale.
    pub gen: u64,
    /// Scratch for append/prepend (the old value is read before the joined item exists).
    scratch: Vec<u8>,
    /// An item eviction must pass over (NIL: none): the one an append/prepend is joining
    /// while it allocates the joined item.
    pub pinned: u32,
    /// Set while an operation runs again after room was sought in every shard for it and
    /// none was made ([`Shards::run`]): an allocation that still finds none answers out of
    /// memory itself (so the operation answers as memcached's for that: a `set` drops the
    /// old value, an append's joined value is `NOT_STORED`) instead of
    /// [`Fail::NeedPage`].
    room_sought: bool,
    /// This shard's copy of the LRU settings (`lru tune|mode`).
    pub lru_tune: LruTune,
    /// memcached's `stats sizes` buckets of this shard's items, and whether it is on.
    pub sizes: SizesHist,
    pub sizes_state: Arc<SizesState>,
}

/// Shared state of a store; the background threads hold a weak reference to it.
pub(crate) struct Core {
    pub config: Config,
    pub classes: SlabClasses,
    pub mem: Arc<SlabMem>,
    /// The slab allocator; lock order: a shard (or all shards, in index order), then this.
    pub alloc: Mutex<SlabAlloc>,
    pub shards: Box<[Mutex<Shard>]>,
    /// Each shard's current table, for a prefetch before its lock is taken.
    slot_hints: Box<[SlotHint]>,
    pub slabs_moved: AtomicU64,
    shard_shift: u32,
    cas: AtomicU64,
    /// Unix second the store started at, less 2 (memcached's `process_started`).
    start: u32,
    /// Seconds the wall clock has stepped back in all (an NTP step) since the store
    /// started: the engine's time is the wall clock plus this, so it never goes back, as
    /// memcached's monotonic clock. Else a flush_all after a step marks a second below the
    /// items stamped before it and misses them, and expired items come back.
    skew: Arc<AtomicU32>,
    /// The latest engine time (unix seconds) handed out.
    now_high: AtomicU32,
    /// [`Ctx::flush_rel`] and [`Ctx::flush_cas`]: written under every shard lock, read
    /// (relaxed) under one.
    flush_rel: AtomicU32,
    flush_cas: AtomicU64,
    /// An immediate flush may have left flushed items at other shards' LRU tails: an
    /// allocation that finds none at its own shard's asks the others before it evicts
    /// ([`Core::make_room`]); cleared when none has any at its tails.
    pub flush_pending: AtomicBool,
    /// An immediate flush that unlinks every item ([`Shards::flush_all_at_once`]) ran: it
    /// leaves no flush mark, so a snapshot load running meanwhile learns of it here.
    flushed_at_once: AtomicBool,
    cmd_flush: AtomicU64,
    /// Evictions and sets per class at the last automove look.
    pub mover_window: Mutex<Vec<(u64, u64)>>,
    /// Where the crawler continues: (shard, page slot).
    pub crawl_cursor: Mutex<(usize, usize)>,
    /// Settings the admin commands change at runtime.
    pub tune: Tunables,
    /// The crawler's counters and its queue of requested crawls (`crawler.rs`).
    pub crawl: CrawlState,
    /// The mover's counters and its one-at-a-time guard (`mover.rs`).
    pub moves: MoveState,
    /// The store's number in the background schedule (`background::wake` takes it).
    pub bg_id: u64,
    /// Receives every change (the append-only log); unset = one branch per write.
    pub journal: OnceLock<Arc<dyn Journal>>,
    /// Who hears about evictions (`watch evictions`); none = one relaxed load each.
    pub evictions: crate::eviction::EvictionHooks,
    /// Who hears about the background work (`watch sysevents`); none = one relaxed load
    /// per background pass.
    pub sysevents: crate::sysevent::SysEventHooks,
    /// memcached's `stats sizes` histogram: on or off (each shard keeps its buckets).
    pub sizes: Arc<SizesState>,
}

pub(crate) struct Shards {
    core: Arc<Core>,
    /// The store's place on the shared background threads (with `Config::background`).
    background: Option<Registration>,
}

impl Drop for Shards {
    fn drop(&mut self) {
        // off the shared threads (a step of it running ends first) before the memory goes
        self.background.take();
    }
}

impl Shards {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let classes = SlabClasses::new(&config);
        let max_pages = config.memory_limit / config.page_size;
        let max_handle_pages = (1u64 << (32 - classes.chunk_bits())) - 1;
        if max_pages as u64 > max_handle_pages {
            return Err(ConfigError(
                "memory limit is too large for the page size".into(),
            ));
        }
        // the page table covers every limit `set_memory_limit` may raise to (see SlabMem::new)
        let capacity = (max_handle_pages as usize)
            .min(MAX_PAGE_SLOTS)
            .max(max_pages);
        let tables = hash_tables(&config)?;
        let mem = Arc::new(SlabMem::try_new(&classes, capacity).ok_or_else(|| {
            ConfigError(format!("cannot allocate the page table ({capacity} pages)"))
        })?);
        let now = config.clock.now();
        let sizes_state = Arc::new(SizesState::new(config.item_size_max));
        let shards: Box<[Mutex<Shard>]> = tables
            .into_iter()
            .map(|ht| {
                Mutex::new(Shard {
                    mem: mem.clone(),
                    ht,
                    req: vec![0; classes.len()],
                    lru: vec![Lru::default(); classes.len()],
                    cs: vec![ClassCounters::default(); classes.len()],
                    st: ShardCounters::default(),
                    gen: 0,
                    scratch: Vec::new(),
                    pinned: NIL,
                    room_sought: false,
                    lru_tune: LruTune::new(&config),
                    sizes: SizesHist::default(),
                    sizes_state: sizes_state.clone(),
                })
            })
            .collect();
        let slot_hints = shards
            .iter()
            .map(|s: &Mutex<Shard>| SlotHint::new(&s.lock().ht))
            .collect();
        let core = Arc::new(Core {
            slot_hints,
            alloc: Mutex::new(SlabAlloc::new(&classes, max_pages).large_pages(config.large_pages)),
            mem,
            slabs_moved: AtomicU64::new(0),
            shard_shift: 64 - config.shards.trailing_zeros(),
            shards,
            cas: AtomicU64::new(0),
            // a little before now, so an item's time is never 0 and age maths never wraps
            start: now.saturating_sub(2),
            skew: Arc::default(),
            now_high: AtomicU32::new(now),
            flush_rel: AtomicU32::new(0),
            flush_cas: AtomicU64::new(0),
            flush_pending: AtomicBool::new(false),
            flushed_at_once: AtomicBool::new(false),
            cmd_flush: AtomicU64::new(0),
            mover_window: Mutex::new(vec![(0, 0); classes.len()]),
            crawl_cursor: Mutex::new((0, 0)),
            tune: Tunables::new(&config),
            crawl: CrawlState::default(),
            moves: MoveState::default(),
            bg_id: crate::background::new_id(),
            journal: OnceLock::new(),
            evictions: Default::default(),
            sysevents: Default::default(),
            sizes: sizes_state,
            classes,
            config,
        });
        let background = core.config.background.then(|| Registration::new(&core));
        Ok(Shards { core, background })
    }

    pub fn config(&self) -> &Config {
        &self.core.config
    }

    pub fn now(&self) -> u32 {
        self.core.now()
    }

    pub fn to_clock(&self, t: u32) -> u32 {
        self.core.to_clock(t)
    }

    pub fn time(&self) -> crate::clock::StoreTime {
        self.core.time()
    }

    pub fn of_clock(&self, t: u32) -> u32 {
        self.core.of_clock(t)
    }

    /// Runs `op` on the key's shard. On [`Fail::NeedPage`] room is made elsewhere with no lock
    /// held and `op` runs again; when other threads keep taking that room, the last rounds
    /// hold every shard lock (in index order) so the room made is the caller's.
    fn run<T>(
        &self,
        hash: u64,
        mut op: impl FnMut(&mut Shard, &Core, &Ctx) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let si = self.core.shard_index(hash);
        let hint = &self.core.slot_hints[si];
        hint.prefetch(hash);
        for _ in 0..OPTIMISTIC_ROUNDS {
            let mut s = self.core.shards[si].lock();
            // read under the lock: a flush_all (which holds every shard lock) is wholly
            // before or after this operation
            let ctx = self.core.ctx();
            let r = op(&mut s, &self.core, &ctx);
            hint.refresh(&s.ht);
            match r {
                Ok(v) => return Ok(v),
                Err(Fail::Err(e)) => return Err(e),
                Err(Fail::NeedPage(c)) => {
                    drop(s);
                    if !self.core.make_room(si, c) {
                        if !self.core.config.evict {
                            // (-M) no expired item at any shard's tails and no page for the
                            // class; holding every lock would find the same
                            let mut s = self.core.shards[si].lock();
                            let ctx = self.core.ctx();
                            return Self::last_round(&mut s, &self.core, &ctx, &mut op);
                        }
                        break;
                    }
                }
            }
        }
        let mut guards: Vec<_> = self.core.shards.iter().map(|m| m.lock()).collect();
        for _ in 0..16 {
            let ctx = self.core.ctx();
            let r = op(&mut guards[si], &self.core, &ctx);
            hint.refresh(&guards[si].ht);
            match r {
                Ok(v) => return Ok(v),
                Err(Fail::Err(e)) => return Err(e),
                Err(Fail::NeedPage(c)) => {
                    if !self.core.make_room_locked(&mut guards, c) {
                        return Self::last_round(&mut guards[si], &self.core, &ctx, &mut op);
                    }
                }
            }
        }
        Err(StoreError::OutOfMemory)
    }

    /// Runs `op` once more after no room could be made for it: an allocation that still
    /// finds none is refused there (counted in `outofmemory`), so `op` answers as it does
    /// for no memory.
    fn last_round<T>(
        s: &mut Shard,
        core: &Core,
        ctx: &Ctx,
        op: &mut impl FnMut(&mut Shard, &Core, &Ctx) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        s.room_sought = true;
        let r = op(s, core, ctx);
        s.room_sought = false;
        match r {
            Ok(v) => Ok(v),
            Err(Fail::Err(e)) => Err(e),
            Err(Fail::NeedPage(_)) => Err(StoreError::OutOfMemory),
        }
    }

    /// [`Shards::run`] for a change of `key`: with a journal, the key's resulting state is
    /// logged under the same lock when `changed` says the operation changed it (and after an
    /// error, which may have dropped the old value). A write that found no item logs the
    /// key's absence too: a replica may still hold a copy the primary evicted (evictions are
    /// not logged), and must not keep serving it after a delete, incr, touch or cas miss.
    fn run_logged<T>(
        &self,
        hash: u64,
        key: &[u8],
        changed: impl Fn(&T) -> bool,
        mut op: impl FnMut(&mut Shard, &Core, &Ctx) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let Some(j) = self.core.journal.get() else {
            return self.run(hash, op);
        };
        self.run(hash, |s, core, ctx| {
            let r = op(s, core, ctx);
            match &r {
                Ok(v) if !changed(v) => {}
                Ok(_) | Err(Fail::Err(_)) => s.log_key(core, ctx, hash, key, &**j),
                Err(Fail::NeedPage(_)) => {}
            }
            r
        })
    }

    /// Removes `key` without counting a delete, as memcached unlinks the old value of a
    /// refused (too large) set. Whether a live item was removed.
    pub fn unlink_quietly(&self, key: &[u8]) -> bool {
        if !key_ok(key) {
            return false;
        }
        let hash = hash_key(key);
        self.run_logged(
            hash,
            key,
            |gone: &bool| *gone,
            |s, core, ctx| {
                let h = s.lookup(core, ctx, hash, key);
                if h != NIL {
                    s.unlink_item(core, h);
                }
                Ok(h != NIL)
            },
        )
        .unwrap_or(false)
    }

    pub fn get<R>(
        &self,
        key: &[u8],
        o: &GetOptions,
        f: impl FnOnce(&ItemView<'_>) -> R,
    ) -> Option<R> {
        if !key_ok(key) {
            return None;
        }
        let hash = hash_key(key);
        let mut f = Some(f);
        let changes = o.touch.is_some() || o.vivify.is_some();
        self.run_logged(
            hash,
            key,
            |_: &Option<R>| changes,
            |s, core, ctx| s.do_get(core, ctx, hash, key, o, &mut f),
        )
        .ok()
        .flatten()
    }

    pub fn store(&self, r: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        if !key_ok(r.key) {
            return Err(StoreError::BadKey);
        }
        let hash = hash_key(r.key);
        self.run_logged(
            hash,
            r.key,
            |o: &StoreOutcome| o.status != StoreStatus::Exists,
            |s, core, ctx| s.do_store(core, ctx, hash, r),
        )
    }

    pub fn store_restored(
        &self,
        r: &StoreRequest<'_>,
        state: ItemState,
    ) -> Result<StoreOutcome, StoreError> {
        if !key_ok(r.key) {
            return Err(StoreError::BadKey);
        }
        let hash = hash_key(r.key);
        self.run_logged(
            hash,
            r.key,
            |o: &StoreOutcome| o.status != StoreStatus::Exists,
            |s, core, ctx| {
                let out = s.do_store(core, ctx, hash, r)?;
                let h = s.ht.find(&s.mem, hash, r.key);
                if out.status == StoreStatus::Stored && h != NIL {
                    let it = s.mem.item(h);
                    it.set_flag(F_STALE, state.stale);
                    it.set_flag(F_TOKEN, state.win_token);
                    it.set_key_binary(state.key_binary);
                }
                Ok(out)
            },
        )
    }

    pub fn delete(&self, r: &DeleteRequest<'_>) -> DeleteStatus {
        if !key_ok(r.key) {
            return DeleteStatus::NotFound;
        }
        let hash = hash_key(r.key);
        self.run_logged(
            hash,
            r.key,
            |d: &DeleteStatus| *d != DeleteStatus::Exists,
            |s, core, ctx| Ok(s.do_delete(core, ctx, hash, r)),
        )
        .unwrap_or(DeleteStatus::NotFound)
    }

    pub fn arith(&self, r: &ArithRequest<'_>) -> Result<ArithStatus, StoreError> {
        if !key_ok(r.key) {
            return Err(StoreError::BadKey);
        }
        let hash = hash_key(r.key);
        self.run_logged(
            hash,
            r.key,
            |a: &ArithStatus| !matches!(a, ArithStatus::Exists),
            |s, core, ctx| s.do_arith(core, ctx, hash, r),
        )
    }

    pub fn mark_key_binary(&self, key: &[u8]) -> bool {
        if !key_ok(key) {
            return false;
        }
        let hash = hash_key(key);
        // logged: replicas and the log replay echo the key in base64 too
        self.run_logged(
            hash,
            key,
            |marked: &bool| *marked,
            |s, _core, ctx| {
                let h = s.ht.find(&s.mem, hash, key);
                if h == NIL || ctx.dead(s.mem.item(h)).is_some() {
                    return Ok(false);
                }
                s.mem.item(h).set_key_binary(true);
                Ok(true)
            },
        )
        .unwrap_or(false)
    }

    pub fn touch(&self, key: &[u8], exptime: i64) -> bool {
        if !key_ok(key) {
            return false;
        }
        let hash = hash_key(key);
        self.run_logged(
            hash,
            key,
            |_: &bool| true,
            |s, core, ctx| Ok(s.do_touch(core, ctx, hash, key, exptime)),
        )
        .unwrap_or(false)
    }

    pub fn flush_all(&self, delay: i64) {
        self.core.flush_all(delay, false, false);
    }

    /// [`Shards::flush_all`] as memcached's command: a delay acts from the second before
    /// its deadline, that second's items included.
    pub fn flush_all_as_memcached(&self, delay: i64) {
        self.core.flush_all(delay, false, true);
    }

    /// An immediate flush_all that unlinks every item now and clears the flush marks.
    pub fn flush_all_at_once(&self) {
        self.core.flush_all(0, true, false);
    }

    /// memcached's `stats sizes_enable`: from now on the items stored count in the size
    /// histogram (one CAS value is used up as the floor, as memcached's `get_cas_id()`).
    /// `use_cas` false: as memcached with `-C`. Nothing changes if it is on already.
    pub fn sizes_enable(&self, use_cas: bool) {
        let mut guards: Vec<_> = self.core.shards.iter().map(|m| m.lock()).collect();
        if self.core.sizes.enabled() {
            return;
        }
        let floor = if use_cas { self.core.next_cas(None) } else { 0 };
        for g in guards.iter_mut() {
            g.sizes.clear();
        }
        self.core.sizes.enable(floor, use_cas);
    }

    /// memcached's `stats sizes_disable`: the histogram is dropped.
    pub fn sizes_disable(&self) {
        let mut guards: Vec<_> = self.core.shards.iter().map(|m| m.lock()).collect();
        self.core.sizes.disable();
        for g in guards.iter_mut() {
            g.sizes.clear();
        }
    }

    /// memcached's `stats sizes`: `(bucket size in bytes, items)` for each non-empty
    /// 32-byte bucket, smallest first; `None` while the histogram is off.
    pub fn sizes(&self) -> Option<Vec<(u64, u32)>> {
        let guards: Vec<_> = self.core.shards.iter().map(|m| m.lock()).collect();
        if !self.core.sizes.enabled() {
            return None;
        }
        let mut sum = std::collections::BTreeMap::new();
        for g in &guards {
            g.sizes.sum_into(&mut sum);
        }
        Some(crate::sizes::listed(sum))
    }

    /// Drops a delayed flush_all still pending (a replayed or streamed cancel), also when
    /// this store's clock has reached its mark: the store that logged the cancel judged the
    /// deadline not come, and a replica applying it late must keep the items it kept.
    pub fn cancel_pending_flush(&self) {
        self.core.cancel_pending_flush(true);
    }

    /// Whether `key`'s item is hidden by a flush and not unlinked yet; counts nothing.
    pub fn flushed(&self, key: &[u8]) -> bool {
        if !key_ok(key) {
            return false;
        }
        let hash = hash_key(key);
        let s = self.core.shards[self.core.shard_index(hash)].lock();
        let ctx = self.core.ctx();
        let h = s.ht.find(&s.mem, hash, key);
        h != NIL && ctx.dead(s.mem.item(h)) == Some(Dead::Flushed)
    }

    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    pub fn reset_stats(&self) {
        for s in self.core.shards.iter() {
            let mut s = s.lock();
            s.st = ShardCounters::default();
            for c in s.cs.iter_mut() {
                *c = ClassCounters::default();
            }
        }
        self.core.cmd_flush.store(0, Ordering::Relaxed);
        // memcached's `stats reset` zeroes these too (measured)
        for c in [
            &self.core.slabs_moved,
            &self.core.moves.rescues,
            &self.core.moves.evictions_nomem,
            &self.core.crawl.starts,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.core
            .mover_window
            .lock()
            .iter_mut()
            .for_each(|w| *w = (0, 0));
    }

    pub fn shard_count(&self) -> usize {
        self.core.config.shards
    }

    pub fn visit_shard(&self, si: usize, mut f: impl FnMut(&ItemView<'_>)) {
        let Some(m) = self.core.shards.get(si) else {
            return;
        };
        let s = m.lock();
        let ctx = self.core.ctx();
        let mut batch = Vec::new();
        let mut pos = 0;
        while pos < s.ht.walk_len() {
            batch.clear();
            pos = s.ht.collect(&s.mem, pos, 1024, &mut batch);
            for &h in &batch {
                let it = s.mem.item(h);
                if ctx.dead(it).is_none() {
                    f(&view(it, &ctx, false, false));
                }
            }
        }
    }

    /// Gives every shard the LRU settings `t` (under its lock).
    pub fn set_lru_tune(&self, t: LruTune) {
        for m in self.core.shards.iter() {
            m.lock().lru_tune = t;
        }
    }

    pub fn maintain(&self) {
        self.core.maintain()
    }

    /// What memcached 1.6's `stats cachedump` walks: the live items of slab class `id`
    /// (memcached's numbering, from 1) in the COLD LRU segment, newest store (highest CAS)
    /// first, at most `max` of them. Skipped as memcached skips them: items stored with a
    /// base64 key, and ACTIVE ones (read twice: memcached moves those to WARM at once through
    /// its bump queue; here they move when they reach the COLD tail). `f` returns `false` to
    /// stop.
    pub fn visit_cold(&self, id: u32, max: usize, mut f: impl FnMut(&ItemView<'_>) -> bool) {
        let c = id as usize;
        if c == 0 || c > self.core.classes.len() || max == 0 {
            return;
        }
        let c = c - 1;
        // every shard at once (the stats lock order) so the items cannot change under the sort
        let guards: Vec<_> = self.core.shards.iter().map(|m| m.lock()).collect();
        let ctx = self.core.ctx();
        let mut found: Vec<(u64, usize, u32)> = Vec::new();
        for (si, s) in guards.iter().enumerate() {
            let mut h = s.lru[c].head[COLD];
            while h != NIL {
                let it = s.mem.item(h);
                if !it.has(F_ACTIVE) && !it.key_binary() && ctx.dead(it).is_none() {
                    found.push((it.cas(), si, h));
                }
                h = it.next();
            }
        }
        let newest_first = |a: &(u64, usize, u32), b: &(u64, usize, u32)| b.0.cmp(&a.0);
        if found.len() > max {
            found.select_nth_unstable_by(max - 1, newest_first);
            found.truncate(max);
        }
        found.sort_unstable_by(newest_first);
        for (_, si, h) in found {
            if !f(&view(guards[si].mem.item(h), &ctx, false, false)) {
                break;
            }
        }
    }
}

fn key_ok(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN
}

fn view<'a>(it: Item, ctx: &Ctx, won: bool, win_taken: bool) -> ItemView<'a> {
    ItemView {
        key: it.key(),
        value: it.value(),
        flags: it.client_flags(),
        cas: it.cas(),
        exptime: it.exptime(),
        last_access_secs: ctx.rel.saturating_sub(it.time()),
        fetched_before: it.has(F_FETCHED),
        stale: it.has(F_STALE),
        won,
        win_taken,
        key_binary: it.key_binary(),
    }
}

impl Core {
    /// [`memcached_size`] as memcached runs now: 8 bytes less without CAS (`-C`,
    /// [`Tunables::use_cas`](crate::config::Tunables)).
    pub fn memcached_size(&self, klen: usize, vlen: usize, flags: u32) -> usize {
        let size = memcached_size(klen, vlen, flags);
        if self.tune.use_cas.load(Ordering::Relaxed) {
            size
        } else {
            size - 8
        }
    }

    #[inline]
    pub fn shard_index(&self, hash: u64) -> usize {
        if self.shard_shift >= 64 {
            0
        } else {
            (hash >> self.shard_shift) as usize
        }
    }

    pub fn ctx(&self) -> Ctx {
        let now = self.now();
        Ctx {
            now,
            rel: now.saturating_sub(self.start),
            flush_rel: self.flush_rel.load(Ordering::Relaxed),
            flush_cas: self.flush_cas.load(Ordering::Relaxed),
        }
    }

    /// The engine's time: the clock's unix second plus [`Core::skew`], never before a time
    /// already handed out (one relaxed load more per operation; a write once a second).
    pub fn now(&self) -> u32 {
        // the step before the clock: a clock read from before a step with the step added
        // after it would count the step twice and move time ahead for good
        let skew = self.skew.load(Ordering::Acquire);
        let wall = self.config.clock.now();
        let now = wall.saturating_add(skew);
        let high = self.now_high.load(Ordering::Relaxed);
        if now >= high {
            if now > high {
                self.now_high.fetch_max(now, Ordering::Relaxed);
            }
            return now;
        }
        // a second behind is another thread's read of the coarse clock from before a tick;
        // further behind, read again: the first read may be old (this thread was descheduled
        // before loading `high`), and taking it for a step would move time ahead for good
        let wall = self.config.clock.now();
        if wall.saturating_add(skew).saturating_add(1) < high {
            // the clock stepped back: time goes on from `high`
            let _ =
                self.skew
                    .compare_exchange(skew, high - wall, Ordering::Release, Ordering::Relaxed);
        }
        high
    }

    /// The engine's time as the log and replication logs judge deadlines by it.
    pub fn time(&self) -> crate::clock::StoreTime {
        crate::clock::StoreTime::with_skew(self.config.clock.clone(), self.skew.clone())
    }

    /// An engine time (an exptime, a flush deadline; 0 = none) as the clock's unix second:
    /// what the log, snapshots and replicas carry, so a restart (whose time starts at the
    /// clock again), a replica and the log's writer (which read the clock) see the same
    /// instant after the clock stepped back. A time before the step's size is long past (1).
    pub fn to_clock(&self, t: u32) -> u32 {
        if t == 0 {
            0
        } else {
            t.saturating_sub(self.skew.load(Ordering::Relaxed)).max(1)
        }
    }

    /// The clock's unix second (from the log, a snapshot, a primary) as engine time.
    pub fn of_clock(&self, t: u32) -> u32 {
        if t == 0 {
            0
        } else {
            t.saturating_add(self.skew.load(Ordering::Relaxed))
        }
    }

    /// A fresh CAS, or the client's (meta `E`), keeping the counter above any value seen
    /// below 2^63 (a larger one is used as given: raising the counter to it would leave no
    /// room for fresh values before they wrap to 0).
    fn next_cas(&self, given: Option<u64>) -> u64 {
        match given {
            Some(c) => {
                if c < 1 << 63 {
                    self.cas.fetch_max(c, Ordering::Relaxed);
                }
                c
            }
            None => self.cas.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// memcached's flush_all, holding every shard lock (operations read the marks under
    /// theirs), with the record logged under them too, so no change of any key lands on the
    /// wrong side of the flush in the log.
    ///
    /// Immediate (`delay` <= 0, or a deadline already past): marks this second and the next
    /// CAS as the boundary (one CAS is used up, as memcached's `get_cas_id()`); the items
    /// below it are dead from now on, counted in `get_flushed` by the lookups that meet
    /// them, reaped by the next background pass (within a second; memcached's maintainer
    /// takes a fraction of one) or reclaimed by allocation, and counted in
    /// `curr_items` until then. No item is walked. `at_once` instead unlinks every item
    /// now and clears the marks (a replayed log or a replication stream: it hides exactly
    /// the items present, whatever CAS values they carry).
    ///
    /// Delayed: the deadline replaces the mark. memcached's items hidden by an earlier
    /// mark that already took effect would live again until the new deadline if its LRU
    /// maintainer had not reaped them yet (it does within a fraction of a second): they
    /// are unlinked here first.
    fn flush_all(&self, delay: i64, at_once: bool, early: bool) {
        // memcached's realtime() reads a unix time up to a second past its process_started
        // (start - 62 s; ours is start - 2) as 1, so its mark becomes 0: it hides nothing,
        // and a delayed flush still pending never acts. (Its 0 also un-hides what an earlier
        // flush hid and its maintainer has not reaped yet: not followed, see protocol.md.)
        // Either way memcached's mark (its oldest_live) is at or before now, so, as every
        // flush whose mark is, it takes a CAS value (oldest_cas = get_cas_id()): the next
        // item's CAS is one higher.
        if early && delay > crate::clock::REALTIME_MAXDELTA && delay <= self.start as i64 - 59 {
            self.cmd_flush.fetch_add(1, Ordering::Relaxed);
            self.cancel_pending_flush(false);
            self.next_cas(None);
            return;
        }
        let mut guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
        self.cmd_flush.fetch_add(1, Ordering::Relaxed);
        let ctx = self.ctx();
        let at = match delay {
            d if d > 0 => Clock::resolve_exptime(d, ctx.now).filter(|&at| at > ctx.now),
            _ => None,
        };
        let active = ctx.flush_rel != 0 && ctx.rel >= ctx.flush_rel;
        match at {
            Some(at) => {
                if active {
                    self.purge(&mut guards, |it| ctx.dead(it) == Some(Dead::Flushed));
                }
                let at_rel = at.saturating_sub(self.start).max(1);
                // memcached's deadline is realtime(delay) - 1, that second's items included
                // (`flush_all 1` hides what is stored for the rest of the current second):
                // as its command (`early`) the mark is the second before `at`, with every
                // CAS below the boundary (never 0, "none": the store's clock starts at 2);
                // the log and replicas keep `at`, which hides the same items. (memcached
                // keeps its oldest_cas: the same but for items of that second with a
                // client-given CAS below it.) A deadline past the items' saturated time
                // (~776 days of uptime) cannot be told by time: the items present now go
                // at the deadline, those stored until then stay.
                let (mark, boundary) = if at_rel >= crate::item::TIME_MASK {
                    (at_rel, self.cas.load(Ordering::Relaxed))
                } else if early && at_rel >= 2 {
                    (at_rel - 1, INCLUSIVE_MARK)
                } else {
                    (at_rel, 0)
                };
                // memcached takes a CAS value for a mark at or before now (`flush_all 1`)
                if early && mark <= ctx.rel {
                    self.next_cas(None);
                }
                self.flush_rel.store(mark, Ordering::Relaxed);
                self.flush_cas.store(boundary, Ordering::Relaxed);
            }
            None if at_once => {
                self.flushed_at_once.store(true, Ordering::Relaxed);
                self.flush_rel.store(0, Ordering::Relaxed);
                self.flush_cas.store(0, Ordering::Relaxed);
                self.purge(&mut guards, |_| true);
            }
            None => {
                let boundary = self.next_cas(None);
                self.flush_cas
                    .store(boundary.saturating_sub(1), Ordering::Relaxed);
                self.flush_rel.store(ctx.rel.max(1), Ordering::Relaxed);
                self.flush_pending.store(true, Ordering::Relaxed);
            }
        }
        if let Some(j) = self.journal.get() {
            j.record(&Record::Flush {
                at: self.to_clock(at.unwrap_or(0)),
            });
        }
    }

    /// Drops a delayed flush whose mark has not taken effect yet (`logged`: a cancel from
    /// a log or a primary, whose store judged that, whatever this clock says), under every
    /// shard lock, and logs the cancel; nothing (and no record) if none is pending.
    fn cancel_pending_flush(&self, logged: bool) {
        let _guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
        let ctx = self.ctx();
        if ctx.flush_rel == 0 || (!logged && ctx.rel >= ctx.flush_rel) {
            return;
        }
        self.flush_rel.store(0, Ordering::Relaxed);
        self.flush_cas.store(0, Ordering::Relaxed);
        if let Some(j) = self.journal.get() {
            j.record(&Record::FlushCancel);
        }
    }

    /// Unlinks, in every shard (its guards held in index order), the items `pred` picks.
    fn purge(
        &self,
        guards: &mut [parking_lot::MutexGuard<'_, Shard>],
        pred: impl Fn(Item) -> bool,
    ) {
        for s in guards.iter_mut() {
            let mut all = Vec::with_capacity(s.ht.len());
            s.ht.collect(&s.mem, 0, usize::MAX / 2, &mut all);
            for h in all {
                if pred(s.mem.item(h)) {
                    s.unlink_item(self, h);
                }
            }
        }
    }

    fn stats(&self) -> Stats {
        // one consistent snapshot: every shard, then the allocator (the lock order)
        let guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
        let alloc = self.alloc.lock();
        let ctx = self.ctx();
        let slabs_moved = self.slabs_moved.load(Ordering::Relaxed);
        let mut st = Stats {
            limit_maxbytes: self.tune.memory_limit.load(Ordering::Relaxed) as u64,
            total_malloced: (alloc.allocated() * self.config.page_size) as u64,
            slab_global_page_pool: alloc.pool_len() as u64,
            cmd_flush: self.cmd_flush.load(Ordering::Relaxed),
            slabs_moved,
            slab_reassign_count: slabs_moved,
            slab_reassign_rescues: self.moves.rescues.load(Ordering::Relaxed),
            slab_reassign_evictions_nomem: self.moves.evictions_nomem.load(Ordering::Relaxed),
            lru_crawler_running: self.crawl.running.load(Ordering::Relaxed),
            lru_crawler_starts: self.crawl.starts.load(Ordering::Relaxed),
            ..Stats::default()
        };
        let n = self.classes.len();
        let mut classes: Vec<SlabClassStats> = (0..n)
            .map(|c| SlabClassStats {
                id: c as u32 + 1,
                chunk_size: self.classes.sizes[c],
                chunks_per_page: self.classes.per_page[c],
                ..SlabClassStats::default()
            })
            .collect();
        let mut buckets = 0usize;
        for (c, out) in classes.iter_mut().enumerate() {
            out.total_pages = alloc.classes[c].pages as u64;
        }
        for (p, m) in alloc.meta.iter().enumerate() {
            if let Some(c) = classes.get_mut(m.class as usize) {
                debug_assert_eq!(self.mem.class_of(self.mem.handle(p, 0)), m.class as usize);
                c.used_chunks += m.used as u64;
            }
        }
        for s in guards.iter() {
            st.curr_items += s.ht.len() as u64;
            st.hash_bytes += s.ht.bytes() as u64;
            buckets += s.ht.buckets();
            st.hash_is_expanding |= s.ht.is_expanding();
            let t = &s.st;
            st.total_items += t.total_items;
            st.cmd_get += t.cmd_get;
            st.cmd_set += t.cmd_set;
            st.cmd_touch += t.cmd_touch;
            st.get_misses += t.get_misses;
            st.get_expired += t.get_expired;
            st.get_flushed += t.get_flushed;
            st.delete_misses += t.delete_misses;
            st.incr_misses += t.incr_misses;
            st.decr_misses += t.decr_misses;
            st.cas_misses += t.cas_misses;
            st.touch_misses += t.touch_misses;
            st.lru_maintainer_juggles += t.lru_juggles;
            for (c, out) in classes.iter_mut().enumerate() {
                let cc = &s.cs[c];
                let lru = &s.lru[c];
                out.mem_requested += s.req[c];
                out.number += lru.total() as u64;
                out.number_hot += lru.count[HOT] as u64;
                out.number_warm += lru.count[WARM] as u64;
                out.number_cold += lru.count[COLD] as u64;
                out.number_temp += lru.count[TEMP] as u64;
                let age = |h: u32| {
                    if h == NIL {
                        0
                    } else {
                        ctx.rel.saturating_sub(s.mem.item(h).time())
                    }
                };
                out.age_hot = out.age_hot.max(age(lru.tail[HOT]));
                out.age_warm = out.age_warm.max(age(lru.tail[WARM]));
                let oldest = [COLD, WARM, HOT]
                    .iter()
                    .map(|&g| lru.tail[g])
                    .find(|&h| h != NIL)
                    .unwrap_or(NIL);
                out.age = out.age.max(age(oldest));
                out.get_hits += cc.get_hits;
                out.cmd_set += cc.cmd_set;
                out.delete_hits += cc.delete_hits;
                out.incr_hits += cc.incr_hits;
                out.decr_hits += cc.decr_hits;
                out.cas_hits += cc.cas_hits;
                out.cas_badval += cc.cas_badval;
                out.touch_hits += cc.touch_hits;
                out.evicted += cc.evicted;
                out.evicted_nonzero += cc.evicted_nonzero;
                out.evicted_time = out.evicted_time.max(cc.evicted_time);
                out.outofmemory += cc.outofmemory;
                out.reclaimed += cc.reclaimed;
                out.expired_unfetched += cc.expired_unfetched;
                out.evicted_unfetched += cc.evicted_unfetched;
                out.crawler_reclaimed += cc.crawler_reclaimed;
                out.crawler_items_checked += cc.crawler_items_checked;
                out.moves_to_cold += cc.moves_to_cold;
                out.moves_to_warm += cc.moves_to_warm;
                out.moves_within_lru += cc.moves_within_lru;
            }
        }
        for c in classes.iter_mut() {
            c.total_chunks = c.total_pages * c.chunks_per_page as u64;
            c.free_chunks = c.total_chunks - c.used_chunks;
            st.bytes += c.mem_requested;
            st.get_hits += c.get_hits;
            st.delete_hits += c.delete_hits;
            st.incr_hits += c.incr_hits;
            st.decr_hits += c.decr_hits;
            st.cas_hits += c.cas_hits;
            st.cas_badval += c.cas_badval;
            st.touch_hits += c.touch_hits;
            st.evictions += c.evicted;
            st.reclaimed += c.reclaimed;
            st.expired_unfetched += c.expired_unfetched;
            st.evicted_unfetched += c.evicted_unfetched;
            st.crawler_reclaimed += c.crawler_reclaimed;
            st.crawler_items_checked += c.crawler_items_checked;
        }
        st.hash_power_level = buckets.max(1).ilog2();
        st.classes = classes.into_iter().filter(|c| c.total_pages > 0).collect();
        st
    }
}

/// Each shard's first hash table: 2^[`Config::shard_hash_power`] slots. memcached's
/// "Failed to init hashtable." (it exits) when the tables cannot be allocated, or when they
/// would take more than the machine's memory and swap: that is where memcached's one
/// `calloc` of its table fails under Linux's default (heuristic) overcommit, while tables
/// allocated shard by shard would each pass that check. Their memory is mapped lazily, so
/// only the slots items are written to become resident.
fn hash_tables(config: &Config) -> Result<Vec<HashTable>, ConfigError> {
    let power = config.shard_hash_power();
    let bytes = (config.shards as u64) << (power as u32 + 3);
    let refuse = |why: String| Err(ConfigError(format!("Failed to init hashtable. ({why})")));
    if let Some(room) = crate::hashtable::memory_and_swap().filter(|&room| bytes > room) {
        return refuse(format!(
            "{bytes} bytes of hash table, more than this machine's memory and swap ({room} bytes)"
        ));
    }
    let expand = config.hash_expand;
    let tables: Option<Vec<HashTable>> = (0..config.shards)
        .map(|_| HashTable::try_new(power, expand))
        .collect();
    match tables {
        Some(t) => Ok(t),
        None => refuse(format!("cannot allocate {bytes} bytes of hash table")),
    }
}

/// memcached's safe_strtoull over an item's value: optional leading whitespace and sign,
/// decimal digits, then the end, whitespace or a NUL (where C's string ends). `None` when
/// that is not a u64.
pub(crate) fn parse_counter(v: &[u8]) -> Option<u64> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let mut i = 0;
    while i < v.len() && is_space(v[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < v.len() && (v[i] == b'+' || v[i] == b'-') {
        neg = v[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut n: u64 = 0;
    while i < v.len() && v[i].is_ascii_digit() {
        n = n.checked_mul(10)?.checked_add((v[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start || (i < v.len() && !is_space(v[i]) && v[i] != 0) {
        return None;
    }
    // strtoull negates; when the result looks negative as i64 memcached refuses a '-'
    // anywhere in the C string (strchr), after the number too (`18446744073709551615 -0`)
    let n = if neg { n.wrapping_neg() } else { n };
    let c_str = v.split(|&b| b == 0).next().unwrap_or(v);
    if (n as i64) < 0 && c_str.contains(&b'-') {
        return None;
    }
    Some(n)
}

/// Decimal text of `v` in `buf`.
fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

impl Shard {
    #[inline]
    pub(crate) fn class_of(&self, h: u32) -> usize {
        self.mem.class_of(h)
    }

    /// Removes item `h` from the hash table and its LRU and frees its chunk.
    pub(crate) fn unlink_item(&mut self, core: &Core, h: u32) {
        self.unlink_links(h);
        core.alloc.lock().free_chunk(&self.mem, h);
    }

    /// Removes item `h` from the hash table and its LRU; the chunk is the caller's.
    pub(crate) fn unlink_links(&mut self, h: u32) {
        let it = self.mem.item(h);
        let c = self.class_of(h);
        let removed = self.ht.remove(&self.mem, hash_key(it.key()), h);
        debug_assert!(removed);
        self.lru[c].unlink(&self.mem, h);
        self.req[c] -= it.total() as u64;
        if let Some(b) = self.size_bucket(it) {
            self.sizes.remove(b);
        }
    }

    /// The `stats sizes` bucket `it` counts in, if the histogram is on and it counts.
    #[inline]
    fn size_bucket(&self, it: Item) -> Option<u32> {
        if !self.sizes_state.enabled() {
            return None;
        }
        self.sizes_state
            .bucket(it.key().len(), it.vlen(), it.client_flags(), it.cas())
    }

    /// Logs `key`'s state after a change: the live item, or a delete.
    fn log_key(&self, core: &Core, ctx: &Ctx, hash: u64, key: &[u8], j: &dyn Journal) {
        let h = self.ht.find(&self.mem, hash, key);
        let it = (h != NIL).then(|| self.mem.item(h));
        match it.filter(|&it| ctx.dead(it).is_none()) {
            Some(it) => j.record(&Record::Set {
                key,
                value: it.value(),
                flags: it.client_flags(),
                exptime: core.to_clock(it.exptime()),
                cas: it.cas(),
                state: ItemState {
                    stale: it.has(F_STALE),
                    win_token: it.has(F_TOKEN),
                    key_binary: it.key_binary(),
                },
            }),
            None => j.record(&Record::Delete { key }),
        }
    }

    /// The live item with this key, or NIL. A dead one met on the way is unlinked and counted
    /// as memcached's do_item_get does (get_expired / get_flushed), whoever asked.
    fn lookup(&mut self, core: &Core, ctx: &Ctx, hash: u64, key: &[u8]) -> u32 {
        self.ht.help_grow(&self.mem, 1);
        let h = self.ht.find(&self.mem, hash, key);
        if h == NIL {
            return NIL;
        }
        match ctx.dead(self.mem.item(h)) {
            None => h,
            Some(d) => {
                match d {
                    Dead::Expired => self.st.get_expired += 1,
                    Dead::Flushed => self.st.get_flushed += 1,
                }
                self.unlink_item(core, h);
                NIL
            }
        }
    }

    fn link_new(&mut self, hash: u64, h: u32, c: usize, ctx: &Ctx) {
        let it = self.mem.item(h);
        it.set_time(ctx.rel);
        self.req[c] += it.total() as u64;
        self.ht.insert(&self.mem, hash, h);
        self.lru_link_new(c, h, ctx.now);
        self.st.total_items += 1;
        if let Some(b) = self.size_bucket(it) {
            self.sizes.add(b);
        }
    }

    /// A chunk of class `c`: from the allocator (free list, bump page, a new or pooled page),
    /// else by reclaiming expired items at this shard's LRU tails, else by evicting this
    /// shard's least valuable item of the class. With nothing of the class here to evict,
    /// [`Fail::NeedPage`]: the caller makes room elsewhere and retries.
    fn alloc(&mut self, core: &Core, ctx: &Ctx, c: usize) -> Result<u32, Fail> {
        if !self.ht.has_room() && !self.free_entry(core, ctx, c) {
            self.cs[c].outofmemory += 1;
            return Err(Fail::Err(StoreError::OutOfMemory));
        }
        self.alloc_chunk(core, ctx, c)
    }

    /// Frees an entry of a hash table that is as full as it gets and whose growth the system
    /// refused, for a new key: an expired item at a tail of class `c`, else (eviction on)
    /// the class's least valuable item here, else that of the class with most items here.
    /// memcached's chained table takes any number of keys; this one holds as many as it has
    /// room for, and with eviction on a new key takes an old one's place, as when memory is
    /// full (whose eviction of class `c` also frees the chunk the allocation then takes).
    #[cold]
    fn free_entry(&mut self, core: &Core, ctx: &Ctx, c: usize) -> bool {
        if self.lru_reclaim_tails(core, ctx, c) {
            return true;
        }
        if !core.config.evict {
            return false;
        }
        if self.lru_evict(core, ctx, c) {
            return true;
        }
        let most = (0..self.lru.len()).max_by_key(|&k| self.lru[k].evictable());
        most.is_some_and(|k| self.lru_reclaim_tails(core, ctx, k) || self.lru_evict(core, ctx, k))
    }

    /// [`Shard::alloc`] without the hash table's room check: for an item that replaces one
    /// the table holds, which adds no entry.
    fn alloc_chunk(&mut self, core: &Core, ctx: &Ctx, c: usize) -> Result<u32, Fail> {
        for _ in 0..16 {
            if let Some(h) = core.alloc.lock().alloc(&self.mem, &core.classes, c) {
                return Ok(h);
            }
            if self.lru_reclaim_tails(core, ctx, c) {
                continue;
            }
            if core.flush_pending.load(Ordering::Relaxed) && !self.room_sought {
                // other shards' flushed items before any eviction (memcached: one LRU)
                return Err(Fail::NeedPage(c));
            }
            if core.config.evict && self.lru_evict(core, ctx, c) {
                continue;
            }
            if self.room_sought {
                break;
            }
            // nothing of the class here to evict, or no eviction (-M): other shards may
            // evict, or hold expired items of the class at their tails, and a class with no
            // item anywhere may be given a page (under -M one emptied without evicting)
            return Err(Fail::NeedPage(c));
        }
        self.cs[c].outofmemory += 1;
        Err(Fail::Err(StoreError::OutOfMemory))
    }

    /// Allocates and writes an item (value left for the caller), not yet linked. `replaces`:
    /// it takes the place of an item the table holds, so it needs no room in the table.
    #[allow(clippy::too_many_arguments)]
    fn new_item(
        &mut self,
        core: &Core,
        ctx: &Ctx,
        key: &[u8],
        vlen: usize,
        flags: u32,
        exptime: u32,
        cas: Option<u64>,
        replaces: bool,
    ) -> Result<(u32, usize), Fail> {
        let total = total_size(key.len(), vlen);
        if vlen > MAX_VLEN {
            return Err(Fail::Err(StoreError::TooLarge));
        }
        let c = core
            .classes
            .class_for(total)
            .ok_or(Fail::Err(StoreError::TooLarge))?;
        let h = if replaces {
            self.alloc_chunk(core, ctx, c)?
        } else {
            self.alloc(core, ctx, c)?
        };
        self.mem
            .item(h)
            .init(key, vlen, flags, exptime, core.next_cas(cas), ctx.rel);
        Ok((h, c))
    }

    fn do_get<R, F: FnOnce(&ItemView<'_>) -> R>(
        &mut self,
        core: &Core,
        ctx: &Ctx,
        hash: u64,
        key: &[u8],
        o: &GetOptions,
        f: &mut Option<F>,
    ) -> Result<Option<R>, Fail> {
        let counted = !o.no_bump || o.count_unbumped;
        let mut h = self.lookup(core, ctx, hash, key);
        let mut created = false;
        if h == NIL {
            let Some(viv) = o.vivify else {
                // gat/gats count as touches only (as memcached 1.6.18 does), gets and
                // meta mg (with or without T) as gets
                if counted {
                    if o.touch.is_some() && !o.miss_counts_as_get {
                        self.st.cmd_touch += 1;
                        self.st.touch_misses += 1;
                    } else {
                        self.st.cmd_get += 1;
                        self.st.get_misses += 1;
                    }
                }
                return Ok(None);
            };
            // meta N: an empty placeholder item whose creator wins the recache
            let (nh, c) = self.new_item(core, ctx, key, 0, 0, ctx.exptime(viv), None, false)?;
            self.link_new(hash, nh, c, ctx);
            h = nh;
            created = true;
        }
        let it = self.mem.item(h);
        let c = self.class_of(h);
        if let Some(t) = o.touch {
            if !created {
                it.set_exptime(ctx.exptime(t));
            }
        }
        let win_taken = it.has(F_TOKEN);
        let mut won = created && !o.vivify_unwon;
        if let Some(r) = o.recache_below.filter(|_| o.may_win) {
            let e = it.exptime();
            if !win_taken && !created && e != 0 && (e as u64) < ctx.now as u64 + r as u64 {
                won = true;
            }
        }
        if o.recache_won && o.may_win && !win_taken && !created {
            won = true;
        }
        // only meta mg takes the token; memcached's get/gets/gat/binary reads leave it
        if o.may_win && it.has(F_STALE) && !win_taken {
            won = true;
        }
        if won {
            it.set_flag(F_TOKEN, true);
        }
        let v = view(it, ctx, won, win_taken);
        let out = f.take().map(|f| f(&v));
        if counted && !o.uncounted_hit {
            if o.touch.is_some() {
                self.st.cmd_touch += 1;
                self.cs[c].touch_hits += 1;
            } else {
                self.st.cmd_get += 1;
                self.cs[c].get_hits += 1;
            }
        }
        if !o.no_bump {
            // a vivified item counts as fetched too (memcached bumps it on the hit path that
            // follows its creation: `me` shows fetch=yes)
            self.lru_bump(h, ctx.rel);
        }
        Ok(out)
    }

    /// A storage command, in memcached's order: the request's item is allocated first
    /// (`process_update_command`), then the key is looked up (`do_store_item`). Under memory
    /// pressure that allocation may evict the very item the command then looks for: a
    /// `replace`, `append`, `prepend` or `cas` then finds no key (NOT_STORED, NOT_FOUND for
    /// `cas`) and an `add` finds none to refuse, as in memcached 1.6.18.
    fn do_store(
        &mut self,
        core: &Core,
        ctx: &Ctx,
        hash: u64,
        r: &StoreRequest<'_>,
    ) -> Result<StoreOutcome, Fail> {
        let key = r.key;
        let is_cas = r.cas.is_some() && matches!(r.mode, StoreMode::Set | StoreMode::Replace);
        let joins = matches!(r.mode, StoreMode::Append | StoreMode::Prepend);
        // memcached counts a storage command (cmd_set) in the class of the item it allocates
        // for the request's value, whatever the outcome; too large by memcached's count is
        // too large here too (the codecs check it before the value arrives, the embedded
        // cache's stores only here)
        let fits = r.value.len() <= MAX_VLEN
            && core.memcached_size(key.len(), r.value.len(), r.flags) <= core.config.item_size_max;
        let req_class = fits
            .then(|| core.classes.class_for(total_size(key.len(), r.value.len())))
            .flatten();
        let Some(req_class) = req_class else {
            // memcached drops the old value of a `set` that cannot be stored
            if r.mode == StoreMode::Set && !is_cas {
                let old = self.lookup(core, ctx, hash, key);
                if old != NIL {
                    self.unlink_item(core, old);
                }
            }
            return Err(Fail::Err(StoreError::TooLarge));
        };
        // a hash table that cannot grow still takes a key it holds (replaced, not added)
        let first = if self.ht.has_room() || self.ht.find(&self.mem, hash, key) == NIL {
            self.alloc(core, ctx, req_class)
        } else {
            self.alloc_chunk(core, ctx, req_class)
        };
        let first = match first {
            Ok(h) => h,
            // append/prepend store a new item for the joined value; their request item only
            // matters for what its allocation evicts, and with nothing of its class in this
            // shard to evict it cannot evict the key's item (memcached would give the class a
            // page beyond its limit or evict in another thread's items)
            // (not without eviction, -M: there the request's item needs a chunk, as
            // memcached's, which refuses the command when it has none)
            Err(Fail::NeedPage(_)) if joins && core.config.evict => NIL,
            // a set with no memory drops the old value, as memcached's (`drops_old_value`)
            Err(Fail::Err(StoreError::OutOfMemory)) if drops_old_value(core, r) => {
                let old = self.lookup(core, ctx, hash, key);
                if old != NIL {
                    self.unlink_item(core, old);
                }
                return Err(Fail::Err(StoreError::OutOfMemory));
            }
            Err(e) => return Err(e),
        };
        let old = self.lookup(core, ctx, hash, key);
        let old_it = (old != NIL).then(|| self.mem.item(old));
        // refused: the request's chunk goes back, the command still counts
        let refuse = |s: &mut Shard, status| {
            s.free_unlinked(core, first);
            s.count_set(req_class);
            Ok(StoreOutcome { status, cas: 0 })
        };

        let mut stale = false;
        // counted once the store happens, in the class of the item it replaces
        let mut cas_hit = None;
        if is_cas {
            let Some(o) = old_it else {
                self.st.cas_misses += 1;
                return refuse(self, StoreStatus::NotFound);
            };
            let want = r.cas.unwrap_or(0);
            if want != 0 && want == o.cas() {
                cas_hit = Some(self.class_of(old));
            } else if r.invalidate && want != 0 && want < o.cas() {
                stale = true;
                cas_hit = Some(self.class_of(old));
            } else {
                let c = self.class_of(old);
                self.cs[c].cas_badval += 1;
                return refuse(self, StoreStatus::Exists);
            }
        }

        // value, flags and exptime of the new item; append/prepend join the old value aside
        let mut flags = r.flags;
        let mut exptime = Clock::resolve_exptime(r.exptime, ctx.now);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let combine = match (r.mode, old_it) {
            (StoreMode::Add, Some(o)) => {
                // add on a live key fails but refreshes it (memcached's do_item_update)
                o.set_time(ctx.rel);
                self.scratch = scratch;
                return refuse(self, StoreStatus::NotStored);
            }
            (StoreMode::Replace, None) => {
                self.scratch = scratch;
                return refuse(self, StoreStatus::NotStored);
            }
            (StoreMode::Append | StoreMode::Prepend, None) => match r.vivify {
                Some(v) => {
                    exptime = Clock::resolve_exptime(v, ctx.now);
                    false
                }
                None => {
                    self.scratch = scratch;
                    return refuse(self, StoreStatus::NotStored);
                }
            },
            (StoreMode::Append | StoreMode::Prepend, Some(o)) => {
                if let Some(want) = r.cas {
                    if want != 0 && want != o.cas() {
                        self.scratch = scratch;
                        return refuse(self, StoreStatus::Exists);
                    }
                }
                flags = o.client_flags();
                exptime = Some(o.exptime());
                if r.mode == StoreMode::Append {
                    scratch.extend_from_slice(o.value());
                    scratch.extend_from_slice(r.value);
                } else {
                    scratch.extend_from_slice(r.value);
                    scratch.extend_from_slice(o.value());
                }
                true
            }
            _ => false,
        };
        let mut keep_token = false;
        if stale {
            let o = old_it.expect("stale needs an old item");
            exptime = Some(o.exptime());
            keep_token = o.has(F_TOKEN);
        }
        let value: &[u8] = if combine { &scratch } else { r.value };
        if combine && core.memcached_size(key.len(), value.len(), flags) > core.config.item_size_max
        {
            // memcached's do_item_alloc refuses the joined item as too large: NOT_STORED
            self.scratch = scratch;
            return refuse(self, StoreStatus::NotStored);
        }

        let Some(exptime) = exptime else {
            // stored already expired: the key's old value is gone, nothing new to keep
            self.free_unlinked(core, first);
            if old != NIL {
                self.unlink_item(core, old);
            }
            if let Some(oc) = cas_hit {
                self.cs[oc].cas_hits += 1;
            }
            self.count_set(req_class);
            self.st.total_items += 1;
            let cas = core.next_cas(r.new_cas);
            self.scratch = scratch;
            return Ok(StoreOutcome {
                status: StoreStatus::Stored,
                cas,
            });
        };

        let (h, c) = if first != NIL && !combine {
            // the request's item is the one stored
            let cas = core.next_cas(r.new_cas);
            let it = self.mem.item(first);
            it.init(key, value.len(), flags, exptime, cas, ctx.rel);
            (first, req_class)
        } else {
            // the joined value (or a vivified append whose request item was skipped): a
            // second allocation, which may not evict the item it joins (memcached holds
            // that item's lock: its LRU walk skips it)
            self.pinned = old;
            let replaces = old != NIL;
            let got = self.new_item(
                core,
                ctx,
                key,
                value.len(),
                flags,
                exptime,
                r.new_cas,
                replaces,
            );
            self.pinned = NIL;
            self.free_unlinked(core, first);
            match got {
                Ok(v) => v,
                Err(e) => {
                    self.scratch = scratch;
                    return match e {
                        // append/prepend that cannot get room: NOT_STORED, as memcached
                        Fail::Err(_) if combine => {
                            self.count_set(req_class);
                            Ok(StoreOutcome {
                                status: StoreStatus::NotStored,
                                cas: 0,
                            })
                        }
                        _ => Err(e),
                    };
                }
            }
        };
        let it = self.mem.item(h);
        it.value_mut().copy_from_slice(value);
        self.scratch = scratch;
        if stale {
            it.set_flag(F_STALE, true);
            it.set_flag(F_TOKEN, keep_token);
        }
        if old != NIL {
            debug_assert_eq!(self.ht.find(&self.mem, hash, key), old);
            self.unlink_item(core, old);
        }
        if let Some(oc) = cas_hit {
            self.cs[oc].cas_hits += 1;
        }
        self.link_new(hash, h, c, ctx);
        self.count_set(req_class);
        Ok(StoreOutcome {
            status: StoreStatus::Stored,
            cas: it.cas(),
        })
    }

    /// Gives back a chunk that was allocated but never linked (NIL: none).
    fn free_unlinked(&mut self, core: &Core, h: u32) {
        if h != NIL {
            core.alloc.lock().free_chunk(&self.mem, h);
        }
    }

    /// A storage command ran (stored or refused): `cmd_set`, overall and per class.
    fn count_set(&mut self, class: usize) {
        self.st.cmd_set += 1;
        self.cs[class].cmd_set += 1;
    }

    fn do_delete(
        &mut self,
        core: &Core,
        ctx: &Ctx,
        hash: u64,
        r: &DeleteRequest<'_>,
    ) -> DeleteStatus {
        let h = self.lookup(core, ctx, hash, r.key);
        if h == NIL {
            self.st.delete_misses += 1;
            return DeleteStatus::NotFound;
        }
        let it = self.mem.item(h);
        if let Some(want) = r.cas {
            if want != it.cas() {
                if !r.mismatch_uncounted {
                    self.st.delete_misses += 1;
                }
                return DeleteStatus::Exists;
            }
        }
        if r.invalidate {
            // meta md I: keep the item, stale, with a fresh cas and the win token free again
            if let Some(t) = r.exptime {
                it.set_exptime(ctx.exptime(t));
            }
            it.set_flag(F_STALE, true);
            it.set_flag(F_TOKEN, false);
            it.set_cas(core.next_cas(None));
            return DeleteStatus::Deleted;
        }
        let c = self.class_of(h);
        self.cs[c].delete_hits += 1;
        self.unlink_item(core, h);
        DeleteStatus::Deleted
    }

    fn do_touch(&mut self, core: &Core, ctx: &Ctx, hash: u64, key: &[u8], exptime: i64) -> bool {
        self.st.cmd_touch += 1;
        let h = self.lookup(core, ctx, hash, key);
        if h == NIL {
            self.st.touch_misses += 1;
            return false;
        }
        let c = self.class_of(h);
        self.cs[c].touch_hits += 1;
        self.mem.item(h).set_exptime(ctx.exptime(exptime));
        self.lru_bump(h, ctx.rel);
        true
    }

    fn do_arith(
        &mut self,
        core: &Core,
        ctx: &Ctx,
        hash: u64,
        r: &ArithRequest<'_>,
    ) -> Result<ArithStatus, Fail> {
        let mut buf = [0u8; 20];
        let old = self.lookup(core, ctx, hash, r.key);
        if old == NIL {
            let Some((initial, exp)) = r.vivify else {
                if r.incr {
                    self.st.incr_misses += 1;
                } else {
                    self.st.decr_misses += 1;
                }
                return Ok(ArithStatus::NotFound);
            };
            let text = fmt_u64(initial, &mut buf);
            let exptime = ctx.exptime(exp);
            let (h, c) =
                self.new_item(core, ctx, r.key, text.len(), 0, exptime, r.new_cas, false)?;
            let it = self.mem.item(h);
            it.value_mut().copy_from_slice(text);
            self.link_new(hash, h, c, ctx);
            return Ok(ArithStatus::Ok {
                value: initial,
                cas: it.cas(),
                created: true,
            });
        }
        let it = self.mem.item(old);
        // memcached's do_add_delta refuses an empty value, and one it chunks, before it
        // compares the CAS
        if it.vlen() == 0
            || core.memcached_size(r.key.len(), it.vlen(), it.client_flags())
                > core.config.chunk_max()
        {
            return Err(Fail::Err(StoreError::NonNumeric));
        }
        if let Some(want) = r.cas {
            if want != 0 && want != it.cas() {
                return Ok(ArithStatus::Exists);
            }
        }
        let cur = parse_counter(it.value()).ok_or(Fail::Err(StoreError::NonNumeric))?;
        let value = if r.incr {
            cur.wrapping_add(r.delta)
        } else {
            cur.saturating_sub(r.delta)
        };
        let text = fmt_u64(value, &mut buf);
        let c = self.class_of(old);
        let exptime = match r.touch {
            Some(t) => ctx.exptime(t),
            None => it.exptime(),
        };
        let target = if text.len() <= it.vlen() {
            // memcached's do_add_delta: a result no longer than the value is written in
            // place, padded with spaces to the same length (`decr 100 95` reads back "5  ")
            let v = it.value_mut();
            v[..text.len()].copy_from_slice(text);
            v[text.len()..].fill(b' ');
            it.set_cas(core.next_cas(r.new_cas));
            it.set_exptime(exptime);
            it.set_time(ctx.rel);
            it
        } else {
            // a longer one becomes a new item of exactly its length
            let gen = self.gen;
            let flags = it.client_flags();
            let (h, nc) = match self.new_item(
                core,
                ctx,
                r.key,
                text.len(),
                flags,
                exptime,
                r.new_cas,
                true,
            ) {
                Ok(v) => v,
                Err(e) => {
                    // memcached's do_add_delta counts the hit before it allocates (a retry
                    // after room was made elsewhere, `NeedPage`, counts it then)
                    if let Fail::Err(_) = e {
                        self.count_delta_hit(c, r.incr);
                    }
                    return Err(e);
                }
            };
            let nit = self.mem.item(h);
            nit.value_mut().copy_from_slice(text);
            let old = if self.gen != gen {
                self.ht.find(&self.mem, hash, r.key)
            } else {
                old
            };
            if old != NIL {
                self.unlink_item(core, old);
            }
            self.link_new(hash, h, nc, ctx);
            nit
        };
        self.count_delta_hit(c, r.incr);
        Ok(ArithStatus::Ok {
            value,
            cas: target.cas(),
            created: false,
        })
    }

    fn count_delta_hit(&mut self, class: usize, incr: bool) {
        if incr {
            self.cs[class].incr_hits += 1;
        } else {
            self.cs[class].decr_hits += 1;
        }
    }
}

// Snapshot support (used by `snapshot/`): a resumable walk and the CAS counter.
impl Shards {
    /// See [`Store::reserve`].
    pub fn reserve(&self, items: u64) {
        let smallest = self.core.classes.sizes[0] as u64;
        let limit = self.core.tune.memory_limit.load(Ordering::Relaxed);
        let fits = (limit as u64 / smallest).min(items);
        let shards = self.core.shards.len() as u64;
        // an eighth more than the even share: shards differ by a few hundred items per 100k
        let per_shard = (fits / shards + fits / shards / 8) as usize;
        for (si, m) in self.core.shards.iter().enumerate() {
            let mut s = m.lock();
            s.ht.reserve(per_shard);
            self.core.slot_hints[si].refresh(&s.ht);
        }
    }

    /// Visits the live items of the next parts of `cur` in shard `si`, holding the lock
    /// for one batch of about `max_items` items; `true` once the shard is walked.
    pub fn visit_shard_batch(
        &self,
        si: usize,
        cur: &mut ShardCursor,
        max_items: usize,
        mut f: impl FnMut(&ItemView<'_>),
    ) -> bool {
        let Some(m) = self.core.shards.get(si) else {
            return true;
        };
        let s = m.lock();
        let ctx = self.core.ctx();
        if cur.modulus == 0 {
            cur.begin(s.ht.min_len());
        }
        let mut batch = Vec::with_capacity(max_items.min(4096));
        // about one item per part once the table has grown to fit its items
        let want = (max_items / 8).clamp(1, 256);
        // a table made large at start (`Config::hash_power`) may be nearly empty: the parts
        // one hold scans are bounded too, so walking it never holds the lock for long
        let mut parts_left = max_items.max(1).saturating_mul(64);
        while batch.len() < max_items && parts_left > 0 {
            let Some(parts) = cur.next_parts(want) else {
                break;
            };
            parts_left = parts_left.saturating_sub(parts.len());
            s.ht.collect_parts(&s.mem, parts, cur.modulus, &mut batch);
        }
        // the items sit at random places in the slab pages: ask for each a few items before
        // it is read, so the cache misses overlap (the walk is bound by them otherwise)
        const AHEAD: usize = 12;
        for &h in batch.iter().take(AHEAD) {
            s.mem.item(h).prefetch();
        }
        for (i, &h) in batch.iter().enumerate() {
            if let Some(&next) = batch.get(i + AHEAD) {
                s.mem.item(next).prefetch();
            }
            let it = s.mem.item(h);
            if ctx.dead(it).is_none() {
                // win_taken: whether the item's token is held (a full sync sends it along)
                f(&view(it, &ctx, false, it.has(F_TOKEN)));
            }
        }
        cur.done()
    }

    /// [`crate::Store::native_bytes`]: the hash tables and the heap's per-shard, per-class
    /// and per-page vectors at their capacity (the background threads are shared by every
    /// store of the process: counted in none).
    pub fn native_bytes(&self) -> usize {
        use std::mem::size_of;
        let core = &*self.core;
        let mut n = size_of::<Core>() + core.slot_hints.len() * size_of::<SlotHint>();
        for m in core.shards.iter() {
            let s = m.lock();
            n += size_of::<Shard>()
                + s.ht.bytes()
                + s.req.capacity() * size_of::<u64>()
                + s.lru.capacity() * size_of::<Lru>()
                + s.cs.capacity() * size_of::<ClassCounters>()
                + s.scratch.capacity();
        }
        // the page table is mapped and resident only where pages exist: left out
        let a = core.alloc.lock();
        n += a.meta.capacity() * size_of::<PageMeta>()
            + a.classes.capacity() * size_of::<ClassMem>();
        drop(a);
        n
    }

    /// The store-wide CAS counter: every CAS handed out so far is at most this.
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    pub fn cas_high_water(&self) -> u64 {
        self.core.cas.load(Ordering::Relaxed)
    }

    /// The deadline (absolute unix second) of a delayed flush_all whose deadline has not
    /// come yet, if one is pending: the time the client asked for, which the log and
    /// replicas keep (the items it hides are those last stamped before it; the engine
    /// hides them from the second before, see [`Ctx::flush_rel`]).
    pub fn pending_flush_deadline(&self) -> Option<u32> {
        let ctx = self.core.ctx();
        let deadline = ctx.flush_rel + u32::from(ctx.flush_cas == INCLUSIVE_MARK);
        (ctx.flush_rel != 0 && ctx.rel < deadline).then(|| self.core.start.saturating_add(deadline))
    }

    /// The mark of the flush_all in effect now (items last stamped before it are hidden),
    /// if any: it changes when a flush takes effect.
    pub(crate) fn flush_in_effect(&self) -> Option<u32> {
        let ctx = self.core.ctx();
        (ctx.flush_rel != 0 && ctx.rel >= ctx.flush_rel).then_some(ctx.flush_rel)
    }

    /// Whether an immediate flush that unlinks every item ran (a replica's full sync, an
    /// immediate flush in a replication stream or a replayed log): it leaves no mark for
    /// [`Shards::flush_in_effect`].
    pub(crate) fn flushed_at_once(&self) -> bool {
        self.core.flushed_at_once.load(Ordering::Relaxed)
    }

    /// Raises the CAS counter to at least `v` (a restored snapshot's high-water mark).
    pub fn raise_cas(&self, v: u64) {
        self.core.cas.fetch_max(v, Ordering::Relaxed);
    }
}

/// Whether a store refused for memory drops the key's old value, as memcached's: a plain
/// `set` (not `cas`), not of an item memcached chunks (it allocates the chunks while it
/// reads the value, and a refusal there leaves the old item: measured with -M).
fn drops_old_value(core: &Core, r: &StoreRequest<'_>) -> bool {
    r.mode == StoreMode::Set
        && r.cas.is_none()
        && core.memcached_size(r.key.len(), r.value.len(), r.flags) <= core.config.chunk_max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_like_safe_strtoull() {
        assert_eq!(parse_counter(b"0"), Some(0));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"18446744073709551616"), None);
        assert_eq!(parse_counter(b"  42"), Some(42));
        assert_eq!(parse_counter(b"42  "), Some(42));
        assert_eq!(parse_counter(b"+7"), Some(7));
        assert_eq!(parse_counter(b"-1"), None);
        assert_eq!(parse_counter(b"-0"), Some(0));
        assert_eq!(parse_counter(b""), None);
        assert_eq!(parse_counter(b" "), None);
        assert_eq!(parse_counter(b"12a"), None);
        assert_eq!(parse_counter(b"abc"), None);
        assert_eq!(parse_counter(b"5 trailing"), Some(5));
    }

    #[test]
    fn decimal_formatting() {
        let mut b = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut b), b"0");
        assert_eq!(fmt_u64(u64::MAX, &mut b), b"18446744073709551615");
        assert_eq!(fmt_u64(1070, &mut b), b"1070");
    }
}

//! The public face of the engine: [`Store`] and the request/outcome types of its operations.
//!
//! Every operation takes the key as bytes (at most [`MAX_KEY_LEN`]) and memcached's
//! `exptime` as the client sent it (see [`crate::clock::Clock::resolve_exptime`]).
//! Reads hand the caller a borrowed [`ItemView`] inside a closure while the shard lock is
//! held, so a codec can copy the value straight into its reply buffer: one copy.

// CONTRACT (shared by ferrocache-protocol and ferrocache-node; change only with both):
// the names and signatures below are the engine's API.

pub use crate::config::RuntimeSettings;
pub use crate::crawler::CrawlStart;
pub use crate::mover::Reassign;
use crate::{Config, ConfigError, Stats, StoreError};
use std::sync::atomic::Ordering::Relaxed;

/// Longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;

/// A live item, borrowed from its chunk for the duration of a callback.
#[derive(Debug, Clone, Copy)]
pub struct ItemView<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// 32-bit opaque client flags.
    pub flags: u32,
    pub cas: u64,
    /// Absolute expiry in unix seconds; 0 = never.
    pub exptime: u32,
    /// Seconds since the item was last accessed, before this access (meta `l`).
    pub last_access_secs: u32,
    /// Whether the item had been fetched before this access (meta `h`).
    pub fetched_before: bool,
    /// The item was invalidated (meta `I`) and is being served stale (meta `X`).
    pub stale: bool,
    /// This request won the right to recache the item (meta `W`).
    pub won: bool,
    /// Another request already holds the win token (meta `Z`).
    pub win_taken: bool,
    /// The key was stored base64-encoded (meta `b`, [`Store::mark_key_binary`]): meta
    /// replies echo it in base64.
    pub key_binary: bool,
}

/// How a read treats the item and which stats it counts under.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetOptions {
    /// Update the expiry (gat/gats, meta `T`); counts as a touch (cmd_touch, touch_hits).
    pub touch: Option<i64>,
    /// On a miss create an empty item with this exptime and give this request the win
    /// token (meta `N`).
    pub vivify: Option<i64>,
    /// Do not bump the item in the LRU, mark it fetched or count stats (internal reads).
    pub no_bump: bool,
    /// Meta `R(token)`: if the remaining TTL is below this many seconds, win the recache.
    pub recache_below: Option<u32>,
    /// A miss with `touch` counts as a get miss (cmd_get, get_misses), as memcached counts
    /// meta `mg ... T`; without it such a miss is a touch miss (gat/gats).
    pub miss_counts_as_get: bool,
    /// Meta `mg`: this read may take the win token of a stale item (meta `W`, and `Z` to
    /// the readers after it) or, with `recache_below`, of one about to expire. memcached's
    /// other reads (get, gets, gat, gats, binary get/gat, the embedded API, internal peeks)
    /// serve a stale item and leave its token for the next `mg`.
    pub may_win: bool,
    /// Count the read even with `no_bump` (meta `u`: no LRU bump and no fetched mark, but
    /// memcached counts it).
    pub count_unbumped: bool,
    /// A hit counts nothing (an `mg` refused for a too-long opaque: memcached counts its
    /// misses at once and its hits only once the reply is written).
    pub uncounted_hit: bool,
    /// Meta `R` already judged a win on a peek (an `R` before a `T`: memcached judges it on
    /// the expiry the item had); with `may_win`, hands out the token as `recache_below` would.
    pub recache_won: bool,
    /// The item `vivify` creates gets no win token (an `mg … N` refused for a too-long
    /// opaque: memcached has created the item but never writes the reply that hands it out).
    pub vivify_unwon: bool,
}

/// Which storage command a [`StoreRequest`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
}

/// One storage command (set/add/replace/append/prepend/cas, meta `ms`).
#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    pub mode: StoreMode,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub exptime: i64,
    /// Compare-and-swap: `None` = no comparison. `Some(0)` is a compare against 0, which
    /// never matches a live item (memcached's `cas … 0`).
    pub cas: Option<u64>,
    /// Meta `I`: with a CAS older than the item's, mark the item stale instead of failing.
    pub invalidate: bool,
    /// Meta `E`: the CAS value the new item gets instead of a fresh one.
    pub new_cas: Option<u64>,
    /// Meta `N` with append/prepend: create the item on a miss with this exptime.
    pub vivify: Option<i64>,
}

impl<'a> StoreRequest<'a> {
    /// A plain command: flags 0, never expires, no CAS and no meta options. Set other
    /// fields with struct update syntax:
    ///
    /// ```
    /// use ferrocache_core::{StoreMode, StoreRequest};
    /// let req = StoreRequest { flags: 7, ..StoreRequest::new(StoreMode::Add, b"k", b"v") };
    /// assert_eq!((req.flags, req.exptime, req.cas), (7, 0, None));
    /// ```
    pub fn new(mode: StoreMode, key: &'a [u8], value: &'a [u8]) -> Self {
        StoreRequest {
            mode,
            key,
            value,
            flags: 0,
            exptime: 0,
            cas: None,
            invalidate: false,
            new_cas: None,
            vivify: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreStatus {
    Stored,
    NotStored,
    /// CAS mismatch.
    Exists,
    /// CAS given but the key is missing.
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOutcome {
    pub status: StoreStatus,
    /// CAS of the stored item (0 when nothing was stored).
    pub cas: u64,
}

/// delete / meta `md`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteRequest<'a> {
    pub key: &'a [u8],
    pub cas: Option<u64>,
    /// Meta `I`: mark stale (and set the exptime given by `T`, if any) instead of removing.
    pub invalidate: bool,
    /// Meta `T` together with `I`.
    pub exptime: Option<i64>,
    /// A CAS mismatch counts no `delete_misses` (binary delete; meta `md` counts one).
    pub mismatch_uncounted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteStatus {
    Deleted,
    NotFound,
    Exists,
}

/// incr / decr / meta `ma`.
#[derive(Debug, Clone, Copy)]
pub struct ArithRequest<'a> {
    pub key: &'a [u8],
    pub incr: bool,
    pub delta: u64,
    pub cas: Option<u64>,
    /// Meta `N`: on a miss create the item with `initial` (meta `J`) and this exptime.
    pub vivify: Option<(u64, i64)>,
    /// Meta `T`: update the exptime on a hit.
    pub touch: Option<i64>,
    pub new_cas: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithStatus {
    /// The new value (or, when vivified, the initial value).
    Ok {
        value: u64,
        cas: u64,
        /// The item did not exist: meta `N` created it with the initial value.
        created: bool,
    },
    NotFound,
    Exists,
}

/// The storage engine. `Send + Sync`: share it with `Arc`.
pub struct Store {
    pub(crate) inner: crate::shard::Shards,
    /// The journals (append-only log, replication), installed as one on first use.
    hub: std::sync::OnceLock<std::sync::Arc<crate::journal::Hub>>,
}

impl Store {
    /// Builds a store; errors name the bad setting.
    pub fn new(config: Config) -> Result<Store, ConfigError> {
        crate::shard::Shards::new(config).map(|inner| Store {
            inner,
            hub: std::sync::OnceLock::new(),
        })
    }

    pub fn config(&self) -> &Config {
        self.inner.config()
    }

    /// Current unix time in seconds by the store's clock, which never goes back: when the
    /// clock steps back, the store's time goes on from where it was (as memcached's
    /// monotonic clock), ahead of the clock by the step.
    pub fn now(&self) -> u32 {
        self.inner.now()
    }

    /// A time of this store (an exptime, a flush deadline; 0 = none) as the clock's unix
    /// second, as logs, snapshots and replicas carry it: the store's time is ahead of the
    /// clock by the steps back it has seen.
    pub fn to_clock(&self, t: u32) -> u32 {
        self.inner.to_clock(t)
    }

    /// The store's time for a writer outside it: the log's, a replication log's (a delayed
    /// flush's deadline is marked when the store acts on it, also after a step back).
    pub fn time(&self) -> crate::clock::StoreTime {
        self.inner.time()
    }

    /// The clock's unix second (read from a log, a snapshot or a primary) as this store's time.
    pub fn of_clock(&self, t: u32) -> u32 {
        self.inner.of_clock(t)
    }

    /// get / gets / gat / gats / meta `mg`. Returns `None` on a miss (counted in stats).
    /// `f` runs with the key's shard locked: it must not call back into the store.
    pub fn get<R>(
        &self,
        key: &[u8],
        opts: &GetOptions,
        f: impl FnOnce(&ItemView<'_>) -> R,
    ) -> Option<R> {
        self.inner.get(key, opts, f)
    }

    /// set / add / replace / append / prepend / cas / meta `ms`.
    pub fn store(&self, req: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        self.inner.store(req)
    }

    /// A store of a recorded item (append-only log replay, a replica's stream): like
    /// [`Store::store`], and the item keeps the meta state the record carried (stale, win
    /// token, base64 key), set under the same lock hold so no reader sees it without.
    pub fn store_restored(
        &self,
        req: &StoreRequest<'_>,
        state: crate::journal::ItemState,
    ) -> Result<StoreOutcome, StoreError> {
        self.inner.store_restored(req, state)
    }

    pub fn delete(&self, req: &DeleteRequest<'_>) -> DeleteStatus {
        self.inner.delete(req)
    }

    /// Removes `key` without counting a delete (memcached drops the old value of a set it
    /// refuses as too large silently). Whether a live item was removed.
    pub fn unlink_quietly(&self, key: &[u8]) -> bool {
        self.inner.unlink_quietly(key)
    }

    /// incr / decr: 64-bit unsigned; incr wraps, decr floors at 0. A value that is not a
    /// decimal number is [`StoreError::NonNumeric`].
    pub fn arith(&self, req: &ArithRequest<'_>) -> Result<ArithStatus, StoreError> {
        self.inner.arith(req)
    }

    /// Updates the exptime of a live item; `false` on a miss.
    pub fn touch(&self, key: &[u8], exptime: i64) -> bool {
        self.inner.touch(key, exptime)
    }

    /// flush_all, as memcached 1.6.18: with `delay` 0 (or negative) every item stored before
    /// now is invalid at once, otherwise every item stored before now+delay becomes invalid
    /// at that time. Invalid items are not walked: lookups that meet them count
    /// `get_flushed`, the background walk reaps them (`reclaimed`, `expired_unfetched`) and
    /// allocation reuses their memory before it evicts; `curr_items` counts them until then.
    pub fn flush_all(&self, delay: i64) {
        self.inner.flush_all(delay)
    }

    /// [`Store::flush_all`] as memcached's `flush_all <delay>` (`realtime(delay) - 1`):
    /// the items stored or read before now+delay are invalid from the second before it
    /// (`1`: at once, and so is what is stored in the rest of this second). The same items
    /// go; the journal keeps the deadline now+delay.
    pub fn flush_all_as_memcached(&self, delay: i64) {
        self.inner.flush_all_as_memcached(delay)
    }

    /// An immediate flush_all that unlinks every item now (memory back at once, nothing
    /// left to reap): how a replayed log or a replication stream applies an immediate flush,
    /// so it hides exactly the items present whatever CAS values they carry.
    pub fn flush_all_at_once(&self) {
        self.inner.flush_all_at_once()
    }

    /// memcached's `stats sizes_enable`: items stored from now on count in a histogram of
    /// 32-byte buckets of the size memcached 1.6 gives an item (48-byte header, key + NUL,
    /// value + CRLF, 4 bytes of non-zero flags, 8 of CAS unless `use_cas` is false, as
    /// memcached's `-C`). Uses up one CAS value, as memcached does; a no-op when on.
    pub fn sizes_enable(&self, use_cas: bool) {
        self.inner.sizes_enable(use_cas)
    }

    /// memcached's `stats sizes_disable`: the histogram is dropped.
    pub fn sizes_disable(&self) {
        self.inner.sizes_disable()
    }

    /// `false` is memcached's `-C`: its items lack 8 bytes of CAS, so an append/prepend
    /// may grow an item 8 bytes closer to `item_size_max` before it is too large, and an
    /// incr/decr reaches 8 bytes further before the item counts as chunked. CAS values
    /// themselves are the codecs' concern (they show 0). On (`true`) at start.
    pub fn set_use_cas(&self, on: bool) {
        self.inner.core().tune.use_cas.store(on, Relaxed);
    }

    /// Whether [`Store::set_use_cas`] left CAS on.
    pub fn use_cas(&self) -> bool {
        self.inner.core().tune.use_cas.load(Relaxed)
    }

    /// memcached's `stats sizes`: `(size, items)` for each non-empty bucket, `size` the
    /// bucket's upper bound in bytes (a multiple of 32); `None` while it is off.
    pub fn sizes(&self) -> Option<Vec<(u64, u32)>> {
        self.inner.sizes()
    }

    /// Drops a delayed flush_all whose deadline has not come (nothing if none is pending):
    /// what memcached's `flush_all <unix time before its start>` does to one. Logged.
    pub fn cancel_pending_flush(&self) {
        self.inner.cancel_pending_flush()
    }

    /// Whether `key`'s item is hidden by a flush_all and nothing has unlinked it yet (the
    /// next lookup will, counting `get_flushed`). Counts and changes nothing: what
    /// memcached's watch log reports as `status=flushed`.
    pub fn flushed(&self, key: &[u8]) -> bool {
        self.inner.flushed(key)
    }

    /// A snapshot of every counter, with memcached's names.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// `stats reset`: zeroes the resettable counters.
    pub fn reset_stats(&self) {
        self.inner.reset_stats()
    }

    /// Number of shards; [`Store::visit_shard`] walks one of them.
    pub fn shard_count(&self) -> usize {
        self.inner.shard_count()
    }

    /// Sizes the hash tables for about `items` items (never shrinks them), before a bulk
    /// load: a snapshot's items arrive in hash order, which a table that grows as they come
    /// would pile into one cluster at its start. Capped at what the memory limit can hold in
    /// the smallest chunks, so a snapshot larger than the store does not oversize it.
    pub fn reserve(&self, items: u64) {
        self.inner.reserve(items)
    }

    /// Calls `f` for every live item of one shard, holding that shard's lock only (the
    /// walk of a whole store is a consistent per-shard iteration, for snapshots). `f` must
    /// not call back into the store.
    pub fn visit_shard(&self, shard: usize, f: impl FnMut(&ItemView<'_>)) {
        self.inner.visit_shard(shard, f)
    }

    /// The live items of slab class `id` (from 1) in the COLD LRU segment, newest store
    /// first, at most `max`, without base64-keyed or ACTIVE ones: what memcached 1.6's
    /// `stats cachedump` lists. Holds every shard's lock during the walk; `f` must not call
    /// back into the store and returns `false` to stop.
    pub fn visit_cold(&self, id: u32, max: usize, f: impl FnMut(&ItemView<'_>) -> bool) {
        self.inner.visit_cold(id, max, f)
    }

    /// Runs one pass of the background work (expiry crawl, slab automove) now; the
    /// crawler thread calls this periodically, tests call it directly.
    pub fn maintain(&self) {
        self.inner.maintain()
    }

    /// Like [`Store::visit_shard`] in bounded steps: visits about `max_items` live items of
    /// shard `shard` from `cursor` on under one short lock hold and returns `true` once the
    /// shard is done. Between steps the store keeps serving; every key is seen at most once,
    /// and a key not written during the walk exactly once (a written one in its old or new
    /// state), however the hash table grows meanwhile.
    pub fn visit_shard_batch(
        &self,
        shard: usize,
        cursor: &mut ShardCursor,
        max_items: usize,
        f: impl FnMut(&ItemView<'_>),
    ) -> bool {
        self.inner.visit_shard_batch(shard, cursor, max_items, f)
    }

    /// Marks the live item `key` as stored with a base64 key (meta `b`), so meta replies echo
    /// its key encoded however it is asked for, as memcached's ITEM_KEY_BINARY; a later store
    /// of the key without `b` clears it. `false` on a miss.
    pub fn mark_key_binary(&self, key: &[u8]) -> bool {
        self.inner.mark_key_binary(key)
    }

    /// Every CAS value handed out so far is at most this.
    pub fn cas_high_water(&self) -> u64 {
        self.inner.cas_high_water()
    }

    /// The mark of the flush_all in effect now, if any (it changes when one takes effect).
    pub(crate) fn flush_in_effect(&self) -> Option<u32> {
        self.inner.flush_in_effect()
    }

    /// Whether a flush that unlinks every item at once ([`Store::flush_all_at_once`]) ran.
    pub(crate) fn flushed_at_once(&self) -> bool {
        self.inner.flushed_at_once()
    }

    /// The deadline of a delayed `flush_all` that has not taken effect yet, as the clock's
    /// unix second ([`Store::to_clock`], as a log or stream record carries it): a full sync
    /// to a replica sends it, since its items do not carry it.
    pub fn pending_flush_deadline(&self) -> Option<u32> {
        self.inner
            .pending_flush_deadline()
            .map(|t| self.to_clock(t))
    }

    /// Adds a sink of every later change (the append-only log, [`crate::aof`]; replication,
    /// [`crate::replication`]); every sink gets every change, in the order they were added.
    /// Always `true` (kept for callers that checked for an earlier sink).
    pub fn set_journal(&self, j: std::sync::Arc<dyn crate::journal::Journal>) -> bool {
        let hub = self.hub.get_or_init(|| {
            let hub = std::sync::Arc::new(crate::journal::Hub::default());
            let _ = self.inner.core().journal.set(hub.clone());
            hub
        });
        hub.add(j);
        true
    }

    /// Registers `sink` to hear about every later eviction (see [`crate::eviction`]);
    /// false if it was registered already. The store keeps only a weak reference: a sink
    /// dropped elsewhere stops hearing and is forgotten.
    pub fn add_eviction_sink(
        &self,
        sink: std::sync::Weak<dyn crate::eviction::EvictionSink>,
    ) -> bool {
        self.inner.core().evictions.add(sink)
    }

    /// Registers `sink` to hear about the background work from now on: expiry-walk rounds
    /// and automove page moves (see [`crate::sysevent`]); false if it was registered
    /// already. The store keeps only a weak reference, as for eviction sinks.
    pub fn add_sysevent_sink(
        &self,
        sink: std::sync::Weak<dyn crate::sysevent::SysEventSink>,
    ) -> bool {
        self.inner.core().sysevents.add(sink)
    }

    /// Whether writes may be acknowledged now: `false` while the append-only log cannot
    /// write (see [`crate::journal::Journal::accepting`]). Servers check it before a write.
    pub fn accepting_writes(&self) -> bool {
        self.journal().is_none_or(|j| j.accepting())
    }

    /// The installed journal, if any.
    pub fn journal(&self) -> Option<&std::sync::Arc<dyn crate::journal::Journal>> {
        self.inner.core().journal.get()
    }

    /// Bytes of slab pages allocated now (`total_malloced`), read without any lock: one
    /// relaxed load, so an embedder can check it on every write. Pages the background
    /// thread takes or releases show up at the next read.
    #[inline]
    pub fn slab_bytes(&self) -> usize {
        let core = self.inner.core();
        core.mem.live_pages() * core.config.page_size
    }

    /// Bytes the store holds besides its slab pages: hash tables, per-class and per-page
    /// bookkeeping, the background thread's stack as far as it is resident. Takes each
    /// shard's lock in turn.
    pub fn native_bytes(&self) -> usize {
        self.inner.native_bytes()
    }

    /// `cache_memlimit`: changes the memory limit to `bytes` at runtime. Raising it lets
    /// the store take more pages at once. Lowering it below the pages that exist frees the
    /// pages over it (the emptiest page of the class with most pages, its items relocated
    /// into free chunks of their class or evicted): up to 64 before this returns, the rest
    /// within a background pass (all of them now without a background thread). Without
    /// eviction (`-M`) a page whose items cannot be relocated stays until they can. Errors
    /// when the limit holds no slab page or more than the store's page table can name.
    pub fn set_memory_limit(&self, bytes: usize) -> Result<(), ConfigError> {
        self.inner.core().set_memory_limit(bytes)
    }

    /// The settings admin commands change at runtime, as they are now.
    pub fn runtime_settings(&self) -> RuntimeSettings {
        self.inner.core().tune.snapshot()
    }

    /// Number of slab classes (memcached's ids 1 to this).
    pub fn slab_class_count(&self) -> usize {
        self.inner.core().classes.len()
    }

    /// Each slab class's chunk size, class 1 first (`stats slabs`'s `chunk_size`).
    pub fn slab_class_sizes(&self) -> Vec<u32> {
        self.inner.core().classes.sizes.clone()
    }

    /// `slabs reassign <src> <dst>`: moves one page from class `src` to class `dst`
    /// (memcached's ids; 0 = the pool of unassigned pages; src -1 = the next class, round
    /// robin, with two or more pages). The items on the page move to free chunks of their
    /// class or are evicted. Done when this returns.
    pub fn slabs_reassign(&self, src: i64, dst: i64) -> Reassign {
        self.inner.core().reassign(src, dst)
    }

    /// `slabs automove <0|1|2>`: 0 off, 1 the balancer (see `mover.rs`), 2 aggressive (every
    /// class that evicted takes a page from any class with two or more, each pass).
    /// `false` for another mode.
    pub fn set_slab_automove(&self, mode: u8) -> bool {
        let ok = mode <= 2;
        if ok {
            self.inner.core().tune.slab_automove.store(mode, Relaxed);
        }
        ok
    }

    /// `lru tune <hot_pct> <warm_pct> <hot_max_factor> <warm_max_factor>`: HOT and WARM hold
    /// at most these shares of a class's items (checked at each insert), and the background
    /// pass moves a HOT (WARM) tail item older than `hot_max_factor` (`warm_max_factor`)
    /// times the COLD tail's age to COLD. memcached's checks (pcts adding up to 80 at most,
    /// factors above 0) are the caller's.
    pub fn set_lru_tune(
        &self,
        hot_pct: u32,
        warm_pct: u32,
        hot_max_factor: f64,
        warm_max_factor: f64,
    ) {
        let core = self.inner.core();
        let mut t = core.tune.lru.lock();
        t.hot_pct = hot_pct;
        t.warm_pct = warm_pct;
        core.tune
            .hot_max_factor
            .store(hot_max_factor.to_bits(), Relaxed);
        core.tune
            .warm_max_factor
            .store(warm_max_factor.to_bits(), Relaxed);
        self.inner.set_lru_tune(*t);
    }

    /// `lru mode flat|segmented`: `false` is memcached's flat LRU (new items go to COLD, a
    /// read relinks its item at the head at most once a minute, HOT and WARM drain into
    /// COLD in the background pass, eviction takes the COLD tail as it is).
    pub fn set_lru_segmented(&self, segmented: bool) {
        let core = self.inner.core();
        let mut t = core.tune.lru.lock();
        t.segmented = segmented;
        self.inner.set_lru_tune(*t);
    }

    /// `lru temp_ttl <ttl>`: `Some(ttl)` turns memcached's TEMP LRU on: an item stored with
    /// a TTL of at most `ttl` seconds goes to a list of its own, never juggled, bumped to
    /// another list or evicted (reclaimed once expired; with only such items a class answers
    /// out of memory, as memcached); items already stored stay where they are. `None`
    /// turns it off (TEMP items stay there until they expire or are replaced).
    pub fn set_lru_temp_ttl(&self, ttl: Option<u32>) {
        let core = self.inner.core();
        let mut t = core.tune.lru.lock();
        t.temp_ttl = ttl;
        if let Some(ttl) = ttl {
            t.temp_ttl_shown = ttl;
        }
        self.inner.set_lru_tune(*t);
    }

    /// `slabs automove ratio <r>`: automove 1 gives a page of a class that evicts nothing to
    /// the evicting class when the evicting class's oldest item is younger than `r` times
    /// the other's (memcached's `slab_automove_ratio`, default 0.8).
    pub fn set_slab_automove_ratio(&self, ratio: f64) {
        self.inner
            .core()
            .tune
            .automove_ratio
            .store(ratio.to_bits(), Relaxed);
    }

    /// `lru_crawler enable|disable`: starts or stops the expiry walk of the background
    /// pass. `false` when enabling a crawler that runs already (memcached's error).
    pub fn set_crawler_enabled(&self, on: bool) -> bool {
        let was = self.inner.core().tune.crawler.swap(on, Relaxed);
        !(on && was)
    }

    /// `lru_crawler sleep <µs>`: the pause between two lock holds of the background walks.
    pub fn set_crawler_sleep(&self, micros: u32) {
        self.inner
            .core()
            .tune
            .crawler_sleep_us
            .store(micros, Relaxed);
    }

    /// `lru_crawler tocrawl <n>`: items of each class a requested crawl checks, 0 = all.
    pub fn set_crawler_tocrawl(&self, items: u32) {
        self.inner.core().tune.crawler_tocrawl.store(items, Relaxed);
    }

    /// `lru_crawler crawl <classes>`: a pass over the store that unlinks the expired and
    /// flushed items of the classes marked in `classes` (index 0 = class 1), run by the
    /// background thread (woken now), or before this returns when there is none.
    pub fn crawl(&self, classes: Vec<bool>) -> CrawlStart {
        self.inner.core().request_crawl(classes)
    }

    /// Raises the CAS counter to at least `v`, so later items get CAS values above it
    /// (restoring a snapshot: CAS values stay unique across the restart).
    pub fn raise_cas(&self, v: u64) {
        self.inner.raise_cas(v)
    }
}

/// Where a [`Store::visit_shard_batch`] walk continues; start with `ShardCursor::default()`
/// for each shard.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardCursor {
    /// The walk cuts the tag space into this many parts (the hash table's size when it began).
    pub(crate) modulus: usize,
    /// Scattered walks: runs of [`RUN_SCATTERED`] parts, visited in the order
    /// `i * stride % runs`.
    pub(crate) runs: usize,
    pub(crate) stride: usize,
    /// Parts visited (in order) or runs visited (scattered).
    pub(crate) next: usize,
    scattered: bool,
}

/// Parts per run of a scattered walk: each run's items are neighbours in any table.
const RUN_SCATTERED: usize = 8;

impl ShardCursor {
    /// A walk whose items go, in walk order, into a store that is not sized for them (a
    /// replica's full sync). A walk in tag order (`default()`, the faster one: it reads the
    /// table front to back) would give the receiving table, which starts small, every key's
    /// home at its start: one cluster that every insert probes to its end. Scattered runs of
    /// parts arrive as keys in random order do. A snapshot walks in order; its loader sizes
    /// the table first ([`Store::reserve`]).
    pub fn scattered() -> ShardCursor {
        ShardCursor {
            scattered: true,
            ..ShardCursor::default()
        }
    }

    /// Starts a walk over a table of `modulus` parts.
    pub(crate) fn begin(&mut self, modulus: usize) {
        self.modulus = modulus;
        self.runs = modulus.div_ceil(RUN_SCATTERED);
        self.stride = coprime_stride(self.runs);
        self.next = 0;
    }

    /// The next parts to visit, about `want` of them in order (a scattered walk takes one
    /// run whatever `want`), or `None` when the walk is done.
    pub(crate) fn next_parts(&mut self, want: usize) -> Option<std::ops::Range<usize>> {
        if self.done() {
            return None;
        }
        if !self.scattered {
            let from = self.next;
            self.next = (from + want.max(1)).min(self.modulus);
            return Some(from..self.next);
        }
        let run = ((self.next as u64 * self.stride as u64) % self.runs as u64) as usize;
        self.next += 1;
        let from = run * RUN_SCATTERED;
        Some(from..(from + RUN_SCATTERED).min(self.modulus))
    }

    pub(crate) fn done(&self) -> bool {
        self.next
            >= if self.scattered {
                self.runs
            } else {
                self.modulus
            }
    }
}

/// A step near 0.618 × `n` that shares no factor with `n`, so `i * step % n` for `i` in
/// `0..n` visits every run once, neighbours far apart.
fn coprime_stride(n: usize) -> usize {
    if n <= 2 {
        return 1;
    }
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut s = (n as f64 * 0.618) as usize | 1;
    while gcd(s, n) != 1 {
        s += 2;
    }
    s % n
}

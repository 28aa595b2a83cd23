//! The seam between the codecs and the engine: one method per engine operation.
//!
//! The codecs only ever talk to a [`Storage`]; `ferrocache_core::Store` implements it in
//! `engine.rs`, tests may implement it with anything else. Methods mirror
//! `ferrocache_core::Store` one for one and reuse its request/outcome types.

use std::sync::Arc;

pub use ferrocache_core::{
    ArithRequest, ArithStatus, CrawlStart, DeleteRequest, DeleteStatus, GetOptions, ItemView,
    Reassign, RuntimeSettings, ShardCursor, SlabClassStats, Stats, StoreError, StoreMode,
    StoreOutcome, StoreRequest, StoreStatus,
};

/// Where a [`Storage::visit_batch`] walk continues; start with `VisitCursor::default()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct VisitCursor {
    /// The shard being walked (engines without shards: 0 until done).
    pub shard: usize,
    /// Where that shard's walk continues.
    pub within: ShardCursor,
}

/// Bytes memcached 1.6 adds to key and value for an item (header 48 + CAS 8); used to
/// reproduce its "too large" boundary and the `size=` of `me`.
pub const ITEM_HEADER_SIZE: usize = 56;

/// Size memcached accounts for an item: header, key + NUL, value + CRLF, flags if non-zero.
pub fn item_total_size(key_len: usize, value_len: usize, flags: u32) -> usize {
    ITEM_HEADER_SIZE + key_len + 1 + value_len + 2 + if flags != 0 { 4 } else { 0 }
}

/// What the runtime admin commands change in an engine (memcached's `cache_memlimit`,
/// `slabs reassign|automove`, `lru_crawler` and `lru`); mirrors `ferrocache_core::Store`.
pub trait Admin {
    /// `cache_memlimit`: the new memory limit in bytes; false when the engine refuses it.
    fn set_memory_limit(&self, bytes: usize) -> bool;
    /// The settings these commands change, as they are now.
    fn runtime_settings(&self) -> RuntimeSettings;
    /// Number of slab classes (ids 1 to this).
    fn slab_class_count(&self) -> usize;
    /// `slabs reassign <src> <dst>`.
    fn slabs_reassign(&self, src: i64, dst: i64) -> Reassign;
    /// `slabs automove <mode>`; false for a mode the engine lacks.
    fn set_slab_automove(&self, mode: u8) -> bool;
    /// `slabs automove ratio <r>`.
    fn set_slab_automove_ratio(&self, ratio: f64);
    /// `lru tune <hot_pct> <warm_pct> <hot_max_factor> <warm_max_factor>` (checked).
    fn set_lru_tune(&self, hot_pct: u32, warm_pct: u32, hot_max_factor: f64, warm_max_factor: f64);
    /// `lru mode segmented` (true) or `flat`.
    fn set_lru_segmented(&self, segmented: bool);
    /// `lru temp_ttl <ttl>`: `Some` turns the TEMP LRU on with that TTL, `None` off.
    fn set_lru_temp_ttl(&self, ttl: Option<u32>);
    /// `lru_crawler enable|disable`; false when enabling a crawler already enabled.
    fn set_crawler_enabled(&self, on: bool) -> bool;
    /// `lru_crawler sleep <µs>`.
    fn set_crawler_sleep(&self, micros: u32);
    /// `lru_crawler tocrawl <n>`.
    fn set_crawler_tocrawl(&self, items: u32);
    /// `lru_crawler crawl`: the classes (by index) to crawl.
    fn crawl(&self, classes: Vec<bool>) -> CrawlStart;
}

/// What a codec needs from a cache engine. Generic methods keep calls monomorphised.
pub trait Storage {
    /// Current unix time in seconds by the engine's clock.
    fn now(&self) -> u32;
    /// Reads an item; `f` runs while the item is borrowed so the value is copied once.
    fn get<R>(
        &self,
        key: &[u8],
        opts: &GetOptions,
        f: impl FnOnce(&ItemView<'_>) -> R,
    ) -> Option<R>;
    /// set / add / replace / append / prepend / cas.
    fn store(&self, req: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError>;
    /// delete / meta `md`.
    fn delete(&self, req: &DeleteRequest<'_>) -> DeleteStatus;
    /// incr / decr / meta `ma`.
    fn arith(&self, req: &ArithRequest<'_>) -> Result<ArithStatus, StoreError>;
    /// Updates the exptime of a live item; `false` on a miss.
    fn touch(&self, key: &[u8], exptime: i64) -> bool;
    /// flush_all with a delay in seconds (0 = now).
    fn flush_all(&self, delay: i64);
    /// Every counter, with memcached's names.
    fn stats(&self) -> Stats;
    /// `stats reset`.
    fn reset_stats(&self);
    /// Largest item (header, key and value) the engine accepts (`-I`).
    fn item_size_max(&self) -> usize;
    /// Whether `key`'s item is hidden by a flush_all and not unlinked yet (a watch log's
    /// `status=flushed`); counts and changes nothing.
    fn flushed(&self, key: &[u8]) -> bool {
        let _ = key;
        false
    }
    /// Whether a write may be acknowledged now (`false`: the append-only log cannot write,
    /// so writes are refused until it can).
    fn accepting_writes(&self) -> bool {
        true
    }
    /// memcached's slab class id for an item of `total` bytes (for `me`); 0 if none fits.
    fn slab_class(&self, total: usize) -> u32;
    /// Calls `f` for every live item, without bumping them (`stats cachedump`,
    /// `lru_crawler metadump`).
    fn visit(&self, f: impl FnMut(&ItemView<'_>));

    /// [`Storage::visit`] in steps: about `max_items` live items from `cursor` on, then
    /// `true` once every item has been visited. A key not written during the walk is seen
    /// exactly once. The default visits everything in the first step.
    fn visit_batch(
        &self,
        cursor: &mut VisitCursor,
        max_items: usize,
        f: impl FnMut(&ItemView<'_>),
    ) -> bool {
        let _ = max_items;
        if cursor.shard == 0 {
            self.visit(f);
            cursor.shard = 1;
        }
        true
    }

    /// What `stats cachedump` lists: at most `max` live items of slab class `id` in the
    /// COLD LRU segment, newest first, without those stored with a base64 key; `f` returns
    /// `false` to stop. An engine without LRU segments lists every live item of the class
    /// (in [`Storage::visit`] order), minus the base64-keyed ones.
    fn visit_cold(&self, id: u32, max: usize, mut f: impl FnMut(&ItemView<'_>) -> bool) {
        let mut shown = 0;
        let mut go = true;
        self.visit(|it| {
            let total = self.item_size(it.key.len(), it.value.len(), it.flags);
            if go && shown < max && !it.key_binary && self.slab_class(total) == id {
                shown += 1;
                go = f(it);
            }
        });
    }

    /// Whether items carry memcached's 8 bytes of CAS in its accounting (`false`: `-C`).
    fn use_cas(&self) -> bool {
        true
    }

    /// [`item_total_size`] as memcached runs now: without CAS (`-C`) 8 bytes less, which
    /// moves its "too large" bound, `me`'s `size=` and the slab class it names.
    fn item_size(&self, key_len: usize, value_len: usize, flags: u32) -> usize {
        item_total_size(key_len, value_len, flags) - if self.use_cas() { 0 } else { 8 }
    }

    /// Whether an item with this key, value length and flags fits the item size limit,
    /// judged before its value is read so an oversized value can be skipped unbuffered.
    fn item_fits(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        self.item_size(key_len, value_len, flags) <= self.item_size_max()
    }

    /// Whether memcached would chunk this item (larger than its `slab_chunk_max`). It
    /// allocates such an item's chunks as the value is read, so a store refused for memory
    /// answers "SERVER_ERROR Out of memory during read" there.
    fn chunked(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        let _ = (key_len, value_len, flags);
        false
    }

    /// Drops the old value of a set refused as too large, without counting a delete as
    /// memcached does; an engine that cannot ([`Storage::delete`]) counts one.
    fn unlink_refused(&self, key: &[u8]) {
        self.delete(&DeleteRequest {
            key,
            ..Default::default()
        });
    }

    /// memcached's `stats sizes`: `(bucket size, items)` for each non-empty 32-byte bucket
    /// of its item sizes; `None` while the histogram is off or the engine has none.
    fn sizes(&self) -> Option<Vec<(u64, u32)>> {
        None
    }

    /// `stats sizes_enable` (`on`; `use_cas` false as memcached's `-C`) and
    /// `sizes_disable`; `false` for an engine without the histogram.
    fn set_sizes(&self, on: bool, use_cas: bool) -> bool {
        let _ = (on, use_cas);
        false
    }

    /// The engine's runtime settings and page mover, for the admin commands
    /// (`cache_memlimit`, `slabs`, `lru_crawler`: `admin.rs`). An engine without them
    /// answers those commands `ERROR`.
    fn admin(&self) -> Option<&dyn Admin> {
        None
    }

    /// Remembers that the live item `key` was stored with a base64 key (meta `b`), so meta
    /// replies echo its key encoded ([`ItemView::key_binary`]). An engine that cannot keep
    /// it ignores the call: replies then follow the request's `b`.
    fn mark_key_binary(&self, key: &[u8]) {
        let _ = key;
    }

    /// A watcher asked for `watch evictions`: have the engine report its evictions to
    /// `info`'s log from now on (once per server; later calls change nothing). An engine
    /// without an eviction hook ignores the call: such watchers then see no lines.
    fn log_evictions(&self, info: &Arc<crate::info::ServerInfo>) {
        let _ = info;
    }

    /// A watcher asked for `watch sysevents`: have the engine report its background work
    /// (expiry-walk rounds, automove page moves) to `info`'s log from now on (once per
    /// server). An engine without a system-event hook ignores the call: such watchers
    /// then see no lines.
    fn log_sysevents(&self, info: &Arc<crate::info::ServerInfo>) {
        let _ = info;
    }
}

impl<T: Storage + ?Sized> Storage for Arc<T> {
    fn now(&self) -> u32 {
        (**self).now()
    }
    fn get<R>(
        &self,
        key: &[u8],
        opts: &GetOptions,
        f: impl FnOnce(&ItemView<'_>) -> R,
    ) -> Option<R> {
        (**self).get(key, opts, f)
    }
    fn store(&self, req: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        (**self).store(req)
    }
    fn delete(&self, req: &DeleteRequest<'_>) -> DeleteStatus {
        (**self).delete(req)
    }
    fn arith(&self, req: &ArithRequest<'_>) -> Result<ArithStatus, StoreError> {
        (**self).arith(req)
    }
    fn touch(&self, key: &[u8], exptime: i64) -> bool {
        (**self).touch(key, exptime)
    }
    fn flush_all(&self, delay: i64) {
        (**self).flush_all(delay)
    }
    fn flushed(&self, key: &[u8]) -> bool {
        (**self).flushed(key)
    }
    fn stats(&self) -> Stats {
        (**self).stats()
    }
    fn reset_stats(&self) {
        (**self).reset_stats()
    }
    fn item_size_max(&self) -> usize {
        (**self).item_size_max()
    }
    fn accepting_writes(&self) -> bool {
        (**self).accepting_writes()
    }
    fn slab_class(&self, total: usize) -> u32 {
        (**self).slab_class(total)
    }
    fn visit(&self, f: impl FnMut(&ItemView<'_>)) {
        (**self).visit(f)
    }
    fn visit_batch(
        &self,
        cursor: &mut VisitCursor,
        max_items: usize,
        f: impl FnMut(&ItemView<'_>),
    ) -> bool {
        (**self).visit_batch(cursor, max_items, f)
    }
    fn visit_cold(&self, id: u32, max: usize, f: impl FnMut(&ItemView<'_>) -> bool) {
        (**self).visit_cold(id, max, f)
    }
    fn use_cas(&self) -> bool {
        (**self).use_cas()
    }
    fn item_fits(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        (**self).item_fits(key_len, value_len, flags)
    }
    fn chunked(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        (**self).chunked(key_len, value_len, flags)
    }
    fn mark_key_binary(&self, key: &[u8]) {
        (**self).mark_key_binary(key)
    }
    fn admin(&self) -> Option<&dyn Admin> {
        (**self).admin()
    }
    fn sizes(&self) -> Option<Vec<(u64, u32)>> {
        (**self).sizes()
    }
    fn set_sizes(&self, on: bool, use_cas: bool) -> bool {
        (**self).set_sizes(on, use_cas)
    }
    fn unlink_refused(&self, key: &[u8]) {
        (**self).unlink_refused(key)
    }
    fn log_evictions(&self, info: &Arc<crate::info::ServerInfo>) {
        (**self).log_evictions(info)
    }
    fn log_sysevents(&self, info: &Arc<crate::info::ServerInfo>) {
        (**self).log_sysevents(info)
    }
}

//! [`Storage`] for the real engine, `ferrocache_core::Store`: straight delegation.

use crate::storage::*;
use ferrocache_core::Store;

impl Storage for Store {
    fn now(&self) -> u32 {
        Store::now(self)
    }
    fn get<R>(
        &self,
        key: &[u8],
        opts: &GetOptions,
        f: impl FnOnce(&ItemView<'_>) -> R,
    ) -> Option<R> {
        Store::get(self, key, opts, f)
    }
    fn store(&self, req: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        Store::store(self, req)
    }
    fn delete(&self, req: &DeleteRequest<'_>) -> DeleteStatus {
        Store::delete(self, req)
    }
    fn arith(&self, req: &ArithRequest<'_>) -> Result<ArithStatus, StoreError> {
        Store::arith(self, req)
    }
    fn touch(&self, key: &[u8], exptime: i64) -> bool {
        Store::touch(self, key, exptime)
    }
    fn flushed(&self, key: &[u8]) -> bool {
        Store::flushed(self, key)
    }
    fn flush_all(&self, delay: i64) {
        Store::flush_all_as_memcached(self, delay)
    }
    fn stats(&self) -> Stats {
        Store::stats(self)
    }
    fn reset_stats(&self) {
        Store::reset_stats(self)
    }
    fn item_size_max(&self) -> usize {
        self.config().item_size_max
    }
    fn use_cas(&self) -> bool {
        Store::use_cas(self)
    }
    fn accepting_writes(&self) -> bool {
        Store::accepting_writes(self)
    }
    fn slab_class(&self, total: usize) -> u32 {
        let c = self.config();
        match &c.slab_sizes {
            Some(sizes) => slab_class_listed(total, sizes, c.item_size_max),
            None => slab_class_for(
                total,
                c.slab_min_size,
                c.growth_factor,
                c.chunk_max(),
                c.item_size_max,
            ),
        }
    }
    fn mark_key_binary(&self, key: &[u8]) {
        Store::mark_key_binary(self, key);
    }
    fn chunked(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        self.item_size(key_len, value_len, flags) > self.config().chunk_max()
    }
    fn unlink_refused(&self, key: &[u8]) {
        Store::unlink_quietly(self, key);
    }
    fn log_evictions(&self, info: &std::sync::Arc<crate::info::ServerInfo>) {
        let weak: std::sync::Weak<crate::info::ServerInfo> = std::sync::Arc::downgrade(info);
        self.add_eviction_sink(weak);
    }
    fn log_sysevents(&self, info: &std::sync::Arc<crate::info::ServerInfo>) {
        let weak: std::sync::Weak<crate::info::ServerInfo> = std::sync::Arc::downgrade(info);
        self.add_sysevent_sink(weak);
    }
    fn admin(&self) -> Option<&dyn Admin> {
        Some(self)
    }
    fn sizes(&self) -> Option<Vec<(u64, u32)>> {
        Store::sizes(self)
    }
    fn set_sizes(&self, on: bool, use_cas: bool) -> bool {
        if on {
            Store::sizes_enable(self, use_cas);
        } else {
            Store::sizes_disable(self);
        }
        true
    }
    fn visit(&self, mut f: impl FnMut(&ItemView<'_>)) {
        for shard in 0..self.shard_count() {
            self.visit_shard(shard, &mut f);
        }
    }
    fn visit_batch(
        &self,
        cursor: &mut VisitCursor,
        max_items: usize,
        f: impl FnMut(&ItemView<'_>),
    ) -> bool {
        let shards = self.shard_count();
        if cursor.shard < shards
            && self.visit_shard_batch(cursor.shard, &mut cursor.within, max_items, f)
        {
            cursor.shard += 1;
            cursor.within = ShardCursor::default();
        }
        cursor.shard >= shards
    }
    fn visit_cold(&self, id: u32, max: usize, f: impl FnMut(&ItemView<'_>) -> bool) {
        Store::visit_cold(self, id, max, f)
    }
}

/// memcached's `slabs_clsid` over the class table `slabs_init` builds: chunk sizes start
/// at header + `min`, grow by `factor` (8-byte aligned) while below `chunk_max / factor`,
/// then `chunk_max` (its `slab_chunk_max`: 512 KiB, 1 MiB under `no_chunked_items` or
/// `no_modern`, or as `-o slab_chunk_max` sets it) is the last class. An item larger than
/// that (up to `-I`) is chunked and reports the last class (measured on memcached 1.6.18
/// with `-I 2m`: a 2 MB item is in class 39, as with `-I 1m`; with `slab_chunk_max=16384`
/// a 100 KB one in class 23); one over `-I` has none.
pub(crate) fn slab_class_for(
    total: usize,
    min: usize,
    factor: f64,
    chunk_max: usize,
    item_size_max: usize,
) -> u32 {
    if total == 0 || total > item_size_max {
        return 0;
    }
    let mut size = 48 + min;
    let mut id = 1u32;
    while id < 63 && (size as f64) < chunk_max as f64 / factor {
        if !size.is_multiple_of(8) {
            size += 8 - size % 8;
        }
        if total <= size {
            return id;
        }
        size = (size as f64 * factor) as usize;
        id += 1;
    }
    id
}

/// [`slab_class_for`] with memcached's `-o slab_sizes`: class `i + 1` is the `i`th size
/// (8-byte aligned), the class after them `slab_chunk_max` (1 MiB with `no_chunked_items`),
/// which also takes every item larger than the last size up to `-I` (measured on memcached 1.6.18 with
/// `slab_sizes=100-200-300-1000`: a 2000-byte item is `cls=5`, as is a 900 KB one).
pub(crate) fn slab_class_listed(total: usize, sizes: &[u32], item_size_max: usize) -> u32 {
    if total == 0 || total > item_size_max {
        return 0;
    }
    let i = sizes.partition_point(|&s| (s as usize).next_multiple_of(8) < total);
    i as u32 + 1
}

impl Admin for Store {
    fn set_memory_limit(&self, bytes: usize) -> bool {
        Store::set_memory_limit(self, bytes).is_ok()
    }
    fn runtime_settings(&self) -> RuntimeSettings {
        Store::runtime_settings(self)
    }
    fn slab_class_count(&self) -> usize {
        Store::slab_class_count(self)
    }
    fn slabs_reassign(&self, src: i64, dst: i64) -> Reassign {
        Store::slabs_reassign(self, src, dst)
    }
    fn set_slab_automove(&self, mode: u8) -> bool {
        Store::set_slab_automove(self, mode)
    }
    fn set_slab_automove_ratio(&self, ratio: f64) {
        Store::set_slab_automove_ratio(self, ratio)
    }
    fn set_lru_tune(&self, hot_pct: u32, warm_pct: u32, hot_max_factor: f64, warm_max_factor: f64) {
        Store::set_lru_tune(self, hot_pct, warm_pct, hot_max_factor, warm_max_factor)
    }
    fn set_lru_segmented(&self, segmented: bool) {
        Store::set_lru_segmented(self, segmented)
    }
    fn set_lru_temp_ttl(&self, ttl: Option<u32>) {
        Store::set_lru_temp_ttl(self, ttl)
    }
    fn set_crawler_enabled(&self, on: bool) -> bool {
        Store::set_crawler_enabled(self, on)
    }
    fn set_crawler_sleep(&self, micros: u32) {
        Store::set_crawler_sleep(self, micros)
    }
    fn set_crawler_tocrawl(&self, items: u32) {
        Store::set_crawler_tocrawl(self, items)
    }
    fn crawl(&self, classes: Vec<bool>) -> CrawlStart {
        Store::crawl(self, classes)
    }
}

#[cfg(test)]
mod tests {
    use super::{slab_class_for, slab_class_listed};

    #[test]
    fn the_series_numbers_classes_as_memcached_for_its_slab_chunk_max() {
        let class = |total, chunk_max| slab_class_for(total, 48, 1.25, chunk_max, 1 << 20);
        // memcached 1.6.18 me cls=: default 39 classes, no_modern 42, slab_chunk_max=16384 23
        assert_eq!(class(1 << 20, 512 << 10), 39);
        assert_eq!(class(1 << 20, 1 << 20), 42);
        assert_eq!(class(700_000, 1 << 20), 41);
        assert_eq!(class(100_060, 16 << 10), 23);
        assert_eq!(class(2060, 1 << 10), 11);
        assert_eq!(class(2060, 4 << 10), 15);
        assert_eq!(class(2060, 64), 1);
        // -f 2 -n 16: no class of slab_chunk_max / factor (memcached: 12 131072, 13 524288)
        assert_eq!(slab_class_for(200_000, 16, 2.0, 512 << 10, 1 << 20), 13);
    }

    #[test]
    fn listed_sizes_number_classes_as_memcached() {
        let sizes = [100, 200, 300, 1000];
        assert_eq!(
            slab_class_listed(104, &sizes, 1 << 20),
            1,
            "100 aligned to 104"
        );
        assert_eq!(slab_class_listed(105, &sizes, 1 << 20), 2);
        assert_eq!(slab_class_listed(1000, &sizes, 1 << 20), 4);
        assert_eq!(slab_class_listed(1001, &sizes, 1 << 20), 5);
        assert_eq!(slab_class_listed(900_000, &sizes, 1 << 20), 5, "chunked");
        assert_eq!(slab_class_listed((1 << 20) + 1, &sizes, 1 << 20), 0);
    }
}

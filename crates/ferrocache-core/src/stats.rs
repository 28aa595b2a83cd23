//! Counters with memcached's stat names, so one vocabulary describes the cache everywhere.

/// Store-wide counters, named as memcached's `stats` output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub curr_items: u64,
    pub total_items: u64,
    /// Bytes of key + value + header of the live items.
    pub bytes: u64,
    pub limit_maxbytes: u64,
    /// Bytes of slab pages handed to classes.
    pub total_malloced: u64,
    pub hash_bytes: u64,
    pub hash_power_level: u32,
    pub hash_is_expanding: bool,
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_flush: u64,
    pub cmd_touch: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub evictions: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub evicted_unfetched: u64,
    pub crawler_reclaimed: u64,
    /// Items the crawler looked at (background walks and requested crawls).
    pub crawler_items_checked: u64,
    /// A crawl is under way (a requested one, or a background walk not finished yet).
    pub lru_crawler_running: bool,
    /// Crawls started: background walks begun from the start, and requested crawls.
    pub lru_crawler_starts: u64,
    pub slab_reassign_count: u64,
    /// Items the page mover relocated into another chunk of their class.
    pub slab_reassign_rescues: u64,
    /// Items the page mover evicted for want of a free chunk of their class.
    pub slab_reassign_evictions_nomem: u64,
    pub slabs_moved: u64,
    pub slab_global_page_pool: u64,
    pub lru_maintainer_juggles: u64,
    /// Per slab class (only classes with at least one page).
    pub classes: Vec<SlabClassStats>,
}

/// One slab class, named as memcached's `stats slabs` and `stats items`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlabClassStats {
    /// memcached's class id (1-based).
    pub id: u32,
    pub chunk_size: u32,
    pub chunks_per_page: u32,
    pub total_pages: u64,
    pub total_chunks: u64,
    pub used_chunks: u64,
    pub free_chunks: u64,
    pub mem_requested: u64,
    pub get_hits: u64,
    pub cmd_set: u64,
    pub delete_hits: u64,
    pub incr_hits: u64,
    pub decr_hits: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    /// `stats items`
    pub number: u64,
    pub number_hot: u64,
    pub number_warm: u64,
    pub number_cold: u64,
    /// Items in the TEMP LRU (`lru temp_ttl`; shown only while it is on, as memcached).
    pub number_temp: u64,
    pub age_hot: u32,
    pub age_warm: u32,
    /// Seconds since last access of the oldest item (LRU tail).
    pub age: u32,
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

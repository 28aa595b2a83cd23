//! Engine settings, with memcached's defaults and a builder with one documented setter each.

use crate::{Clock, ConfigError};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize};

/// Engine settings. Build with [`Config::default`] and the setters:
///
/// ```
/// use ferrocache_core::{Config, Store};
/// let store = Store::new(Config::default().memory_limit(8 << 20).growth_factor(1.5)).unwrap();
/// assert_eq!(store.config().memory_limit, 8 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Bytes of item memory at start (memcached `-m`, default 64 MiB). Pages never exceed
    /// it; [`crate::Store::set_memory_limit`] changes it at runtime.
    pub memory_limit: usize,
    /// Slab page size (1 MiB; raised to `item_size_max` when that is larger, as memcached).
    pub page_size: usize,
    /// Ratio between consecutive slab class chunk sizes (`-f`, default 1.25).
    pub growth_factor: f64,
    /// Minimum space for key + value + flags in the smallest chunk (`-n`, default 48); the
    /// smallest chunk is 48 + this, 96 bytes by default, the same classes as memcached.
    pub slab_min_size: usize,
    /// Explicit chunk sizes of the first classes (memcached's `-o slab_sizes`), used instead
    /// of the `growth_factor` / `slab_min_size` series. Each is 8-byte aligned as memcached
    /// aligns it; after them come memcached's last class, [`Config::chunk_max`] (left out
    /// when the last size is larger), then the classes for larger items (memcached chunks
    /// those; see [`Config::slab_chunk_max`]). At most 62 sizes, each from `slab_min_size` to
    /// `item_size_max` and more than 8 bytes above the one before (memcached's checks, with
    /// `item_size_max` for its `slab_chunk_max`). A chunk too small for any item (below 37
    /// bytes here, 56 in memcached) is a class nothing is stored in, as in memcached.
    /// `None` (default): the series.
    pub slab_sizes: Option<Vec<u32>>,
    /// memcached's `-o slab_chunk_max`: its largest slab class, where the series (or the
    /// `slab_sizes` list) ends. memcached chunks a larger item (up to `item_size_max`) over
    /// chunks of this size; ferrocache keeps every item whole, in classes of its own past
    /// this one: the series goes on by `growth_factor` while a page holds two chunks, then
    /// a whole page. It also bounds what `incr`/`decr` take (memcached refuses a chunked
    /// item as non-numeric) and numbers memcached's classes for `me`. `None` (default):
    /// 512 KiB, at most `item_size_max` (memcached's half page); 1 MiB is memcached's
    /// `no_chunked_items`. A multiple of 8 from 64 bytes to `item_size_max` (memcached's
    /// must divide `-I` and its 1 MiB page: a power of two).
    pub slab_chunk_max: Option<usize>,
    /// Largest item (`-I`, default 1 MiB), header and key included.
    pub item_size_max: usize,
    /// Evict when memory is full (default). `false` is memcached's `-M`: return an error.
    pub evict: bool,
    /// Number of independently locked shards (a power of two, default 8). Each owns a hash
    /// table and LRUs; slab memory is shared.
    pub shards: usize,
    /// Initial size of the whole store's hash table as a power of two (memcached's
    /// `-o hashpower`): 2^N slots of 8 bytes in all, split evenly between the shards (each
    /// gets 2^(N - log2 shards), at least 2^4). `None` (default): 2^12 slots per shard, 2^15
    /// with 8 shards. 4 to 32; more than the machine's RAM and swap (Linux) is refused when
    /// the store is built. The memory is mapped lazily: only slots written become resident.
    pub hash_power: Option<u8>,
    /// Tables grow once 3/4 full (default). `false` is memcached's `-o no_hashexpand`: a
    /// table keeps its size until 15/16 full; a slot holds one item, so past that it grows
    /// all the same (`hashtable.rs`).
    pub hash_expand: bool,
    /// Slab pages past a store's first two come in 2 MiB-aligned pairs advised for
    /// transparent huge pages (`MADV_HUGEPAGE`), so a pair's items share one TLB entry
    /// (memcached's `-L`, "try to use large memory pages"). Off by default: reads gain a
    /// few percent, but writes into fresh memory measured at about half their throughput
    /// (ferrocached filled over the network, docs/engine.md). Linux with THP only;
    /// elsewhere, or when refused, pages stay 4 KiB-backed.
    pub large_pages: bool,
    /// Percentage of a class's items kept in the hot segment (default 20, memcached's).
    pub hot_lru_pct: u8,
    /// Percentage of a class's items kept in the warm segment (default 40).
    pub warm_lru_pct: u8,
    /// Move slab pages between classes when the size mix shifts (memcached `slab_automove`
    /// 1; `false` is 0). The mode can change at runtime: [`crate::Store::set_slab_automove`].
    pub slab_automove: bool,
    /// Pages may change class (default). `false` is memcached's `-o no_slab_reassign`:
    /// `slabs reassign` is refused ([`crate::Reassign::Disabled`]), automove moves nothing
    /// whatever its mode, and a lowered memory limit frees no page that holds items (new
    /// pages stay within it). A class without a page still gets one (memcached grants a
    /// class its first page past the limit; here it is taken from the class with most).
    pub slab_reassign: bool,
    /// memcached's `-o slab_automove_window` (default 30, at least 3): the samples, one a
    /// second, automove 1 judges a class by without eviction (-M): a class gives a page to
    /// the pool only after this many samples without an eviction, `outofmemory` or new
    /// page. Fixed at start, as memcached's (no command changes it). With eviction the
    /// balancer's own window is used instead (docs/engine.md).
    pub slab_automove_window: u32,
    /// Have the background work (expiry crawler, LRU juggling, automove) run on the threads
    /// all stores of the process share. Tests turn it off and call [`crate::Store::maintain`]
    /// by hand.
    pub background: bool,
    /// Where time comes from.
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            memory_limit: 64 << 20,
            page_size: 1 << 20,
            growth_factor: 1.25,
            slab_min_size: 48,
            slab_sizes: None,
            slab_chunk_max: None,
            item_size_max: 1 << 20,
            evict: true,
            shards: 8,
            hash_power: None,
            hash_expand: true,
            large_pages: false,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            slab_automove: true,
            slab_reassign: true,
            slab_automove_window: SLAB_AUTOMOVE_WINDOW,
            background: true,
            clock: Clock::System,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, v: $ty) -> Self {
            self.$name = v;
            self
        }
    };
}

impl Config {
    setter!(
        /// Sets [`Config::memory_limit`] in bytes (memcached `-m`).
        ///
        /// ```
        /// # use ferrocache_core::{Config, Store};
        /// let store = Store::new(Config::default().memory_limit(16 << 20)).unwrap();
        /// assert_eq!(store.stats().limit_maxbytes, 16 << 20);
        /// ```
        memory_limit: usize);
    setter!(
        /// Sets [`Config::growth_factor`] (memcached `-f`).
        ///
        /// ```
        /// # use ferrocache_core::Config;
        /// assert!(Config::default().growth_factor(2.0).validate().is_ok());
        /// assert!(Config::default().growth_factor(1.0).validate().is_err());
        /// ```
        growth_factor: f64);
    setter!(
        /// Sets [`Config::slab_min_size`] (memcached `-n`).
        ///
        /// ```
        /// # use ferrocache_core::{Config, Store};
        /// let store = Store::new(Config::default().slab_min_size(64)).unwrap();
        /// # drop(store);
        /// ```
        slab_min_size: usize);
    setter!(
        /// Sets [`Config::evict`]; `false` is memcached's `-M`.
        ///
        /// ```
        /// # use ferrocache_core::*;
        /// let store = Store::new(Config::default().memory_limit(1 << 20).evict(false)).unwrap();
        /// let value = vec![0u8; 600 << 10]; // one a page (two 500 KiB items share one)
        /// let set = |key: &'static [u8]| store.store(&StoreRequest {
        ///     mode: StoreMode::Set, key, value: &value, flags: 0, exptime: 0,
        ///     cas: None, invalidate: false, new_cas: None, vivify: None,
        /// });
        /// assert!(set(b"a").is_ok());
        /// assert_eq!(set(b"b"), Err(StoreError::OutOfMemory));
        /// ```
        evict: bool);
    setter!(
        /// Sets [`Config::shards`].
        ///
        /// ```
        /// # use ferrocache_core::{Config, Store};
        /// assert_eq!(Store::new(Config::default().shards(4)).unwrap().shard_count(), 4);
        /// ```
        shards: usize);
    /// Sets [`Config::hash_power`]: 2^`v` slots in all (memcached's `-o hashpower=v`).
    ///
    /// ```
    /// # use ferrocache_core::{Config, Store};
    /// let store = Store::new(Config::default().shards(4).hash_power(16)).unwrap();
    /// assert_eq!(store.stats().hash_bytes, 8 << 16); // 8-byte slots: hash tag + handle
    /// assert_eq!(store.stats().hash_power_level, 16);
    /// ```
    pub fn hash_power(mut self, v: u8) -> Self {
        self.hash_power = Some(v);
        self
    }

    setter!(
        /// Sets [`Config::hash_expand`]; `false` is memcached's `-o no_hashexpand`.
        ///
        /// ```
        /// # use ferrocache_core::*;
        /// let store = Store::new(Config::default().shards(1).hash_power(12).hash_expand(false)).unwrap();
        /// for i in 0..3800 {
        ///     let key = format!("k{i}");
        ///     store.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), b"v")).unwrap();
        /// }
        /// assert_eq!(store.stats().hash_power_level, 12); // 93% full: a growing table would be larger
        /// ```
        hash_expand: bool);
    setter!(
        /// Sets [`Config::large_pages`] (memcached's `-L`).
        ///
        /// ```
        /// # use ferrocache_core::{Config, Store};
        /// let store = Store::new(Config::default().large_pages(true)).unwrap();
        /// assert!(store.config().large_pages);
        /// ```
        large_pages: bool);
    setter!(
        /// Sets [`Config::hot_lru_pct`].
        ///
        /// ```
        /// # use ferrocache_core::Config;
        /// assert!(Config::default().hot_lru_pct(30).validate().is_ok());
        /// ```
        hot_lru_pct: u8);
    setter!(
        /// Sets [`Config::warm_lru_pct`]; hot + warm must stay below 100.
        ///
        /// ```
        /// # use ferrocache_core::Config;
        /// assert!(Config::default().warm_lru_pct(80).validate().is_err());
        /// ```
        warm_lru_pct: u8);
    setter!(
        /// Sets [`Config::slab_automove`].
        ///
        /// ```
        /// # use ferrocache_core::Config;
        /// assert!(!Config::default().slab_automove(false).slab_automove);
        /// ```
        slab_automove: bool);
    setter!(
        /// Sets [`Config::slab_reassign`]; `false` is memcached's `-o no_slab_reassign`.
        ///
        /// ```
        /// # use ferrocache_core::{Config, Reassign, Store};
        /// let store = Store::new(Config::default().slab_reassign(false)).unwrap();
        /// assert_eq!(store.slabs_reassign(1, 2), Reassign::Disabled);
        /// assert!(!store.runtime_settings().slab_reassign);
        /// ```
        slab_reassign: bool);
    setter!(
        /// Sets [`Config::slab_automove_window`] (memcached's `-o slab_automove_window`).
        ///
        /// ```
        /// # use ferrocache_core::Config;
        /// assert!(Config::default().slab_automove_window(3).validate().is_ok());
        /// assert!(Config::default().slab_automove_window(2).validate().is_err());
        /// ```
        slab_automove_window: u32);
    setter!(
        /// Sets [`Config::background`]; without it, call [`crate::Store::maintain`] yourself.
        ///
        /// ```
        /// # use ferrocache_core::{Config, Store};
        /// let store = Store::new(Config::default().background(false)).unwrap();
        /// store.maintain();
        /// ```
        background: bool);
    setter!(
        /// Sets [`Config::clock`].
        ///
        /// ```
        /// # use ferrocache_core::*;
        /// let clock = Clock::manual(1_700_000_000);
        /// let store = Store::new(Config::default().clock(clock.clone())).unwrap();
        /// store.store(&StoreRequest {
        ///     mode: StoreMode::Set, key: b"k", value: b"v", flags: 0, exptime: 10,
        ///     cas: None, invalidate: false, new_cas: None, vivify: None,
        /// }).unwrap();
        /// clock.advance(10);
        /// assert!(store.get(b"k", &GetOptions::default(), |_| ()).is_none());
        /// ```
        clock: Clock);

    /// Sets [`Config::slab_sizes`] (memcached's `-o slab_sizes=100-200-300`).
    ///
    /// ```
    /// # use ferrocache_core::{Config, Store};
    /// let store = Store::new(Config::default().slab_sizes(vec![100, 200, 300])).unwrap();
    /// // aligned as memcached aligns them, then its 512 KiB class, then a page
    /// assert_eq!(store.slab_class_sizes(), vec![104, 200, 304, 512 << 10, 1 << 20]);
    /// assert!(Config::default().slab_sizes(vec![200, 205]).validate().is_err());
    /// ```
    pub fn slab_sizes(mut self, v: Vec<u32>) -> Self {
        self.slab_sizes = Some(v);
        self
    }

    /// Sets [`Config::item_size_max`]; the page size follows when the item is larger.
    ///
    /// ```
    /// # use ferrocache_core::Config;
    /// let c = Config::default().item_size_max(4 << 20);
    /// assert_eq!(c.page_size, 4 << 20);
    /// ```
    pub fn item_size_max(mut self, v: usize) -> Self {
        self.item_size_max = v;
        self.page_size = self.page_size.max(v);
        self
    }

    /// The power of two of each shard's first hash table: [`Config::hash_power`] less the
    /// shards' share, at least 4 (12 without `hash_power`).
    pub fn shard_hash_power(&self) -> u8 {
        match self.hash_power {
            None => 12,
            Some(p) => p
                .saturating_sub(self.shards.max(1).trailing_zeros() as u8)
                .max(4),
        }
    }

    /// memcached's `_parse_slab_sizes` checks, with its messages.
    fn validate_slab_sizes(&self, sizes: &[u32]) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if sizes.is_empty() {
            return err("slab sizes: no sizes given".into());
        }
        if sizes.len() > MOST_SLAB_SIZES {
            return err(format!(
                "slab sizes: too many slab classes specified (at most {MOST_SLAB_SIZES})"
            ));
        }
        let (min, max) = (self.slab_min_size, self.item_size_max);
        let mut last = 0;
        for &size in sizes {
            let size = size as usize;
            if size < min || size > max {
                return err(format!(
                    "slab size {size} is out of valid range ({min} to {max})"
                ));
            }
            if size <= last + 8 {
                return err(format!(
                    "slab size {size} must be at least 8 bytes larger than previous class"
                ));
            }
            last = size;
        }
        Ok(())
    }

    /// Sets [`Config::slab_chunk_max`] (memcached's `-o slab_chunk_max`).
    ///
    /// ```
    /// # use ferrocache_core::{Config, Store};
    /// let store = Store::new(Config::default().slab_chunk_max(16 << 10)).unwrap();
    /// let sizes = store.slab_class_sizes();
    /// // memcached's classes end at 16 KiB; ferrocache's own for larger items follow
    /// assert_eq!(sizes[22], 16 << 10);
    /// assert_eq!(sizes[23], 20 << 10);
    /// assert_eq!(*sizes.last().unwrap(), 1 << 20);
    /// assert!(Config::default().slab_chunk_max(32).validate().is_err());
    /// ```
    pub fn slab_chunk_max(mut self, v: usize) -> Self {
        self.slab_chunk_max = Some(v);
        self
    }

    /// memcached's `slab_chunk_max` as this store has it: [`Config::slab_chunk_max`], else
    /// 512 KiB, at most `item_size_max`.
    pub fn chunk_max(&self) -> usize {
        self.slab_chunk_max
            .unwrap_or(crate::item::SLAB_CHUNK_MAX.min(self.item_size_max))
    }

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.to_string()));
        if self.growth_factor <= 1.0 || !self.growth_factor.is_finite() {
            return err("growth factor must be greater than 1");
        }
        if self.item_size_max < 1024 {
            return err("item size max must be at least 1024 bytes");
        }
        if self.item_size_max > 16 << 20 {
            return err("item size max cannot be larger than 16 MiB");
        }
        if self.item_size_max > self.page_size {
            return err("item size max cannot be larger than the slab page size");
        }
        if self.memory_limit < self.page_size {
            return err("memory limit must hold at least one slab page");
        }
        if self.slab_min_size == 0 || self.slab_min_size + 48 > self.item_size_max / 2 {
            return err("slab min size is out of range");
        }
        if self
            .slab_chunk_max
            .is_some_and(|c| c < MIN_CHUNK_MAX || c > self.item_size_max || c % 8 != 0)
        {
            return err("slab chunk max must be a multiple of 8 from 64 bytes to item size max");
        }
        if let Some(sizes) = &self.slab_sizes {
            self.validate_slab_sizes(sizes)?;
        }
        if self.shards == 0 || !self.shards.is_power_of_two() || self.shards > 256 {
            return err("shards must be a power of two between 1 and 256");
        }
        if self.hash_power.is_some_and(|p| !(4..=32).contains(&p)) {
            return err("hash power must be between 4 and 32");
        }
        if self.slab_automove_window < MIN_SLAB_AUTOMOVE_WINDOW {
            // memcached's own check and words
            return err("slab_automove_window must be > 2");
        }
        if self.hot_lru_pct as u16 + self.warm_lru_pct as u16 >= 100 {
            return err("hot and warm LRU percentages must add up to less than 100");
        }
        Ok(())
    }
}

/// The smallest [`Config::slab_chunk_max`]: a chunk that holds a small item (and keeps
/// chunk handles wide enough for a large memory limit).
pub const MIN_CHUNK_MAX: usize = 64;

/// memcached's default `slab_automove_window` ([`Config::slab_automove_window`]).
pub const SLAB_AUTOMOVE_WINDOW: u32 = 30;
/// The smallest [`Config::slab_automove_window`] (memcached refuses 2 and less).
pub const MIN_SLAB_AUTOMOVE_WINDOW: u32 = 3;

/// Most explicit slab sizes: memcached's `MAX_NUMBER_OF_SLAB_CLASSES` (64) less class 0 and
/// the `slab_chunk_max` class it adds.
pub const MOST_SLAB_SIZES: usize = 62;

/// memcached's default `hot_max_factor`: a HOT item older than this times the age of the
/// COLD tail moves to COLD.
pub const HOT_MAX_FACTOR: f64 = 0.2;
/// memcached's default `warm_max_factor`, the same for WARM.
pub const WARM_MAX_FACTOR: f64 = 2.0;
/// memcached's default `temporary_ttl` (the TEMP LRU itself is off by default).
pub const TEMPORARY_TTL: u32 = 61;
/// memcached's default `slab_automove_ratio`.
pub const SLAB_AUTOMOVE_RATIO: f64 = 0.8;

/// The settings memcached's admin commands change at runtime (`cache_memlimit`, `slabs
/// automove [ratio]`, `lru_crawler enable|disable|sleep|tocrawl`, `lru tune|mode`). Read by
/// the background work and the page allocator's slow path only, never by a get or a store
/// (those read the shard's own copy of the LRU settings, [`LruTune`]).
#[derive(Debug)]
pub(crate) struct Tunables {
    /// Bytes of item memory now ([`Config::memory_limit`] at start).
    pub memory_limit: AtomicUsize,
    /// memcached's `slab_automove`: 0 off, 1 on, 2 aggressive.
    pub slab_automove: AtomicU8,
    /// The expiry crawler runs (memcached's `lru_crawler`).
    pub crawler: AtomicBool,
    /// Microseconds the crawler sleeps between two lock holds (memcached's
    /// `lru_crawler_sleep`, default 100).
    pub crawler_sleep_us: AtomicU32,
    /// Items of each class a requested crawl checks at most, 0 = all (memcached's
    /// `lru_crawler_tocrawl`).
    pub crawler_tocrawl: AtomicU32,
    /// The LRU settings of `lru tune|mode` (each shard holds a copy, set under its lock).
    pub lru: parking_lot::Mutex<LruTune>,
    /// `hot_max_factor` (f64 bits).
    pub hot_max_factor: AtomicU64,
    /// `warm_max_factor` (f64 bits).
    pub warm_max_factor: AtomicU64,
    /// `slab_automove_ratio` (f64 bits): automove 1 takes a page from a class whose oldest
    /// item is older than the evicting class's by more than 1 / this.
    pub automove_ratio: AtomicU64,
    /// Whether memcached's item header would hold 8 bytes of CAS: false is memcached's
    /// `-C`, whose items are 8 bytes smaller, so its "too large" bound lets 8 more in.
    pub use_cas: AtomicBool,
    /// [`Config::slab_reassign`] (fixed at start, as memcached's).
    pub slab_reassign: bool,
}

/// The LRU settings the request path reads, one copy per shard (changed under every shard
/// lock by `lru tune|mode`, so a get or a store reads no shared atomic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LruTune {
    /// memcached's `hot_lru_pct`: HOT holds at most this share of a class's items.
    pub hot_pct: u32,
    /// `warm_lru_pct`.
    pub warm_pct: u32,
    /// `lru_segmented`: false is memcached's flat mode (`lru mode flat`): new items go to
    /// COLD, a read relinks its item at the head at most once a minute, no HOT/WARM.
    pub segmented: bool,
    /// `temp_lru` on with this `temporary_ttl` (`lru temp_ttl <ttl>`), or off.
    pub temp_ttl: Option<u32>,
    /// `temporary_ttl` as `stats settings` shows it (memcached keeps it when the TEMP LRU
    /// is turned off).
    pub temp_ttl_shown: u32,
}

impl LruTune {
    pub fn new(config: &Config) -> LruTune {
        LruTune {
            hot_pct: config.hot_lru_pct as u32,
            warm_pct: config.warm_lru_pct as u32,
            segmented: true,
            temp_ttl: None,
            temp_ttl_shown: TEMPORARY_TTL,
        }
    }
}

impl Tunables {
    pub fn new(config: &Config) -> Tunables {
        Tunables {
            memory_limit: AtomicUsize::new(config.memory_limit),
            slab_automove: AtomicU8::new(config.slab_automove as u8),
            crawler: AtomicBool::new(true),
            crawler_sleep_us: AtomicU32::new(100),
            crawler_tocrawl: AtomicU32::new(0),
            lru: parking_lot::Mutex::new(LruTune::new(config)),
            hot_max_factor: AtomicU64::new(HOT_MAX_FACTOR.to_bits()),
            warm_max_factor: AtomicU64::new(WARM_MAX_FACTOR.to_bits()),
            automove_ratio: AtomicU64::new(SLAB_AUTOMOVE_RATIO.to_bits()),
            use_cas: AtomicBool::new(true),
            slab_reassign: config.slab_reassign,
        }
    }

    pub fn factor(v: &AtomicU64) -> f64 {
        f64::from_bits(v.load(Relaxed))
    }

    pub fn snapshot(&self) -> RuntimeSettings {
        let lru = *self.lru.lock();
        RuntimeSettings {
            hot_lru_pct: lru.hot_pct,
            warm_lru_pct: lru.warm_pct,
            lru_segmented: lru.segmented,
            temp_lru: lru.temp_ttl.is_some(),
            temporary_ttl: lru.temp_ttl_shown,
            hot_max_factor: Self::factor(&self.hot_max_factor),
            warm_max_factor: Self::factor(&self.warm_max_factor),
            slab_automove_ratio: Self::factor(&self.automove_ratio),
            memory_limit: self.memory_limit.load(Relaxed),
            slab_automove: self.slab_automove.load(Relaxed),
            lru_crawler: self.crawler.load(Relaxed),
            lru_crawler_sleep: self.crawler_sleep_us.load(Relaxed),
            lru_crawler_tocrawl: self.crawler_tocrawl.load(Relaxed),
            slab_reassign: self.slab_reassign,
        }
    }
}

/// The runtime-adjustable settings as they are now ([`crate::Store::runtime_settings`]),
/// named as memcached's `stats settings`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimeSettings {
    /// `maxbytes`.
    pub memory_limit: usize,
    /// `slab_automove` (0, 1 or 2).
    pub slab_automove: u8,
    /// `lru_crawler`.
    pub lru_crawler: bool,
    /// `lru_crawler_sleep` (µs).
    pub lru_crawler_sleep: u32,
    /// `lru_crawler_tocrawl`.
    pub lru_crawler_tocrawl: u32,
    /// `hot_lru_pct`.
    pub hot_lru_pct: u32,
    /// `warm_lru_pct`.
    pub warm_lru_pct: u32,
    /// `hot_max_factor`.
    pub hot_max_factor: f64,
    /// `warm_max_factor`.
    pub warm_max_factor: f64,
    /// `lru_segmented` (false: `lru mode flat`).
    pub lru_segmented: bool,
    /// `temp_lru`.
    pub temp_lru: bool,
    /// `temporary_ttl`.
    pub temporary_ttl: u32,
    /// `slab_automove_ratio`.
    pub slab_automove_ratio: f64,
    /// `slab_reassign` ([`Config::slab_reassign`]).
    pub slab_reassign: bool,
}

//! Engine settings, with memcached's defaults and a builder with one documented setter each.

use crate::{Clock, ConfigError};

/// Engine settings. Build with [`Config::default`] and the setters:
///
/// ```
/// use ferrocache_core::{Config, Store};
/// let store = Store::new(Config::default().memory_limit(8 << 20).growth_factor(1.5)).unwrap();
/// assert_eq!(store.config().memory_limit, 8 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Bytes of item memory (memcached `-m`, default 64 MiB). Pages never exceed it.
    pub memory_limit: usize,
    /// Slab page size (1 MiB; raised to `item_size_max` when that is larger, as memcached).
    pub page_size: usize,
    /// Ratio between consecutive slab class chunk sizes (`-f`, default 1.25).
    pub growth_factor: f64,
    /// Minimum space for key + value + flags in the smallest chunk (`-n`, default 48); the
    /// smallest chunk is 48 + this, 96 bytes by default, the same classes as memcached.
    pub slab_min_size: usize,
    /// Largest item (`-I`, default 1 MiB), header and key included.
    pub item_size_max: usize,
    /// Evict when memory is full (default). `false` is memcached's `-M`: return an error.
    pub evict: bool,
    /// Number of independently locked shards (a power of two, default 8). An upper bound:
    /// each shard owns whole pages, so a store keeps at least 8 pages per shard and uses
    /// fewer shards when memory is small (`Store::config().shards` tells the number used).
    pub shards: usize,
    /// Initial hash table size per shard as a power of two (default 12); grows by itself.
    pub hash_power: u8,
    /// Percentage of a class's items kept in the hot segment (default 20, memcached's).
    pub hot_lru_pct: u8,
    /// Percentage of a class's items kept in the warm segment (default 40).
    pub warm_lru_pct: u8,
    /// Move slab pages between classes when the size mix shifts (memcached `slab_automove`).
    pub slab_automove: bool,
    /// Run the background crawler thread (expiry + automove). Tests turn it off and call
    /// [`crate::Store::maintain`] by hand.
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
            item_size_max: 1 << 20,
            evict: true,
            shards: 8,
            hash_power: 12,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            slab_automove: true,
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
    setter!(/// Sets [`Config::memory_limit`] in bytes.
        memory_limit: usize);
    setter!(/// Sets [`Config::growth_factor`].
        growth_factor: f64);
    setter!(/// Sets [`Config::slab_min_size`].
        slab_min_size: usize);
    setter!(/// Sets [`Config::evict`].
        evict: bool);
    setter!(/// Sets [`Config::shards`].
        shards: usize);
    setter!(/// Sets [`Config::hash_power`].
        hash_power: u8);
    setter!(/// Sets [`Config::slab_automove`].
        slab_automove: bool);
    setter!(/// Sets [`Config::background`].
        background: bool);
    setter!(/// Sets [`Config::clock`].
        clock: Clock);

    /// Sets [`Config::item_size_max`]; the page size follows when the item is larger.
    pub fn item_size_max(mut self, v: usize) -> Self {
        self.item_size_max = v;
        self.page_size = self.page_size.max(v);
        self
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
        if self.shards == 0 || !self.shards.is_power_of_two() || self.shards > 256 {
            return err("shards must be a power of two between 1 and 256");
        }
        if !(4..=30).contains(&self.hash_power) {
            return err("hash power must be between 4 and 30");
        }
        if self.hot_lru_pct as u16 + self.warm_lru_pct as u16 >= 100 {
            return err("hot and warm LRU percentages must add up to less than 100");
        }
        Ok(())
    }
}

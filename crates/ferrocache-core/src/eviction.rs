//! The eviction hook: who hears about each item the LRU evicts (memcached's
//! `watch evictions` lines are built from it by the protocol crate).
//!
//! A sink registers with [`crate::Store::add_eviction_sink`]. The eviction path then
//! makes one relaxed atomic load while no sink is registered, and asks each registered
//! sink [`EvictionSink::wants_evictions`] before building an [`Eviction`]: nothing is
//! allocated there while nobody listens. The sink is called with the shard lock held: it
//! must only copy what it needs and return, never call back into the store.

use crate::sinks::Sinks;

/// One item evicted to make room, as memcached's `type=eviction` line describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction<'a> {
    /// The key as stored (a base64 key decoded).
    pub key: &'a [u8],
    /// Whether the item was read since it was stored (memcached's `ITEM_FETCHED`).
    pub fetched: bool,
    /// Seconds left before it would have expired (negative once past); -1 = no expiry.
    pub ttl: i64,
    /// Seconds since its last access.
    pub last_access: u32,
    /// Its slab class id (1-based, as `stats slabs`).
    pub class_id: u32,
    /// Its value's length in bytes.
    pub value_len: usize,
}

/// Receives the store's evictions (see the module doc for what it may do).
pub trait EvictionSink: Send + Sync {
    /// Whether this sink wants evictions now (checked before each one is built).
    fn wants_evictions(&self) -> bool;
    /// One item evicted; runs with the item's shard locked.
    fn evicted(&self, eviction: &Eviction<'_>);
}

/// The registered eviction sinks.
pub(crate) type EvictionHooks = Sinks<dyn EvictionSink>;

impl Sinks<dyn EvictionSink> {
    /// Hands the eviction `build` describes to every sink that wants it (built at most
    /// once, only if one does).
    pub fn notify<'a>(&self, build: impl FnOnce() -> Eviction<'a>) {
        let mut build = Some(build);
        let mut built = None;
        self.each_wanting(
            |s| s.wants_evictions(),
            |s| {
                if let Some(b) = build.take() {
                    built = Some(b());
                }
                if let Some(e) = &built {
                    s.evicted(e);
                }
            },
        );
    }
}

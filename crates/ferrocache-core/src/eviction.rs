//! The eviction hook: who hears about each item the LRU evicts (memcached's
//! `watch evictions` lines are built from it by the protocol crate).
//!
//! A sink registers with [`crate::Store::add_eviction_sink`]. The eviction path then
//! makes one relaxed atomic load while no sink is registered, and asks each registered
//! sink [`EvictionSink::wants_evictions`] before building an [`Eviction`]: nothing is
//! allocated there while nobody listens. The sink is called with the shard lock held: it
//! must only copy what it needs and return, never call back into the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, Weak};

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

/// The registered sinks; a sink that went away is dropped at the next registration.
#[derive(Default)]
pub(crate) struct EvictionHooks {
    any: AtomicBool,
    sinks: RwLock<Vec<Weak<dyn EvictionSink>>>,
}

impl EvictionHooks {
    /// Adds `sink` unless it is registered already; false if it was.
    pub fn add(&self, sink: Weak<dyn EvictionSink>) -> bool {
        let mut sinks = self.sinks.write().unwrap_or_else(|e| e.into_inner());
        sinks.retain(|s| s.strong_count() > 0);
        let fresh = !sinks.iter().any(|s| Weak::ptr_eq(s, &sink));
        if fresh {
            sinks.push(sink);
        }
        self.any.store(!sinks.is_empty(), Ordering::Relaxed);
        fresh
    }

    /// Whether some sink is registered: the eviction path's only cost otherwise.
    #[inline]
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// Hands the eviction `build` describes to every sink that wants it (built at most
    /// once, only if one does).
    pub fn notify<'a>(&self, build: impl FnOnce() -> Eviction<'a>) {
        let sinks = self.sinks.read().unwrap_or_else(|e| e.into_inner());
        let mut built = None;
        let mut build = Some(build);
        for s in sinks.iter() {
            let Some(s) = s.upgrade() else { continue };
            if !s.wants_evictions() {
                continue;
            }
            if let Some(b) = build.take() {
                built = Some(b());
            }
            if let Some(e) = &built {
                s.evicted(e);
            }
        }
    }
}

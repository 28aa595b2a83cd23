//! ferrocache's storage engine, modelled on memcached 1.6 as a library with no global state
//! but the background threads its stores share.
//!
//! A [`Store`] is a set of shards, each behind its own lock, each owning a hash table
//! (incremental growth) and a segmented LRU (hot / warm / cold) per slab class. Items live
//! in chunks of 1 MiB slab pages from one allocator shared by the shards; at most
//! [`Config::memory_limit`] bytes of pages ever exist (a limit lowered at runtime,
//! [`Store::set_memory_limit`], frees the pages over it). Background work (the crawler)
//! reclaims expired items and moves pages between slab classes, on at most two threads all
//! stores of the process share. `docs/engine.md` has the design and the measured figures.
//!
//! Invariants every module keeps:
//! - an item lives in exactly one chunk, is linked in exactly one hash chain and one LRU list;
//! - every mutation gets a fresh CAS value from one store-wide counter (or the client's, meta E);
//! - expiry follows memcached: 0 never, up to 30 days relative, larger absolute, negative expired.
//!
//! The engine knows nothing of protocols or of Node: codecs live in `ferrocache-protocol`,
//! bindings in `ferrocache-node`.

#[cfg(unix)]
mod anon_map;
pub mod aof;
mod background;
pub mod clock;
pub mod config;
mod crawler;
pub mod error;
pub mod eviction;
mod hashtable;
mod item;
pub mod journal;
mod lru;
mod mover;
pub mod replication;
mod shard;
mod sinks;
mod sizes;
mod slab;
pub mod snapshot;
pub mod stats;
mod store;
pub mod sysevent;
mod zeroed;

pub use clock::Clock;
pub use config::Config;
pub use error::{ConfigError, StoreError};
pub use stats::{SlabClassStats, Stats};
pub use store::*;

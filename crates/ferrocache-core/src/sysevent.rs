//! The system-event hook: what the background work did (memcached's `watch sysevents`
//! lines are built from it by the protocol crate).
//!
//! Two kinds of events, those memcached 1.6.18 logs under `sysevents` that the engine has
//! an equivalent for:
//! - [`SysEvent::Crawl`]: a round of the background expiry walk ended (every hash slot of
//!   every shard visited once); one event per slab class and LRU segment the round met
//!   items of, with what it examined and reclaimed there (memcached's `lru_crawler`
//!   status line, which its crawler scheduler writes per class and LRU);
//! - [`SysEvent::SlabMove`]: the automover (`slab_automove 1`) moved a page between classes,
//!   or without eviction from a class to the pool (`dst` 0)
//!   (memcached's `slab_move` line; like memcached, neither `slabs reassign` nor the
//!   aggressive mode 2 nor an allocation's own page move logs one).
//!
//! A sink registers with [`crate::Store::add_sysevent_sink`]. While none is registered the
//! background pass makes one relaxed atomic load per pass and builds nothing; each event
//! asks the sinks [`SysEventSink::wants_sysevents`] first. The sink is called from the
//! background thread with no store lock held; it should only copy what it needs and
//! return (the next background step waits for it).

use crate::sinks::Sinks;

/// The LRU segment names memcached prints (`lru=`), by segment index.
pub const LRU_NAMES: [&str; 4] = ["hot", "warm", "cold", "temp"];

/// One round of the background expiry walk, for one slab class and LRU segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrawlRound {
    /// The slab class id (1-based, as `stats slabs`).
    pub class_id: u32,
    /// The LRU segment the items were in when the walk met them: hot, warm, cold, temp
    /// (index into [`LRU_NAMES`]).
    pub lru: usize,
    /// Seconds since the round ended (0: the event is sent as it ends).
    pub since_run: u32,
    /// Seconds until the next round starts: 0 when it started in the same pass, else the
    /// background thread's interval; `None` without a background thread (the embedder
    /// calls [`crate::Store::maintain`]).
    pub next_run: Option<u32>,
    /// Seconds the round took (the store's clock, whole seconds).
    pub elapsed: u32,
    /// Items of this class and segment the round looked at.
    pub examined: u64,
    /// Of those, the expired or flushed items it unlinked.
    pub reclaimed: u64,
}

/// What the background work did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysEvent {
    /// A round of the expiry walk ended (one event per class and segment it met items of).
    Crawl(CrawlRound),
    /// The automover moved a page from class `src` to class `dst` (1-based class ids; 0 is
    /// the pool, where automove 1 hands pages without eviction).
    SlabMove { src: u32, dst: u32 },
}

/// Receives the store's system events (see the module doc for what it may do).
pub trait SysEventSink: Send + Sync {
    /// Whether this sink wants system events now (checked before each one is sent).
    fn wants_sysevents(&self) -> bool;
    /// One event.
    fn sysevent(&self, event: &SysEvent);
}

/// The registered system-event sinks.
pub(crate) type SysEventHooks = Sinks<dyn SysEventSink>;

impl Sinks<dyn SysEventSink> {
    /// Whether some registered sink wants events now: `false` at the cost of one relaxed
    /// load while none is registered.
    pub fn wanted(&self) -> bool {
        self.any_wants(|s| s.wants_sysevents())
    }

    /// Hands `event` to every sink that wants it.
    pub fn notify(&self, event: &SysEvent) {
        self.each_wanting(|s| s.wants_sysevents(), |s| s.sysevent(event));
    }
}

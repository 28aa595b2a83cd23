//! Background work: the expiry crawler (memcached's crawler.c), LRU juggling and automove.
//!
//! [`Core::maintain`] walks the pages of the shards, one page per lock hold (a page is at
//! most ~11k chunks, a few tens of microseconds) and at most [`CRAWL_PAGES_PER_PASS`] per
//! pass, and unlinks expired or flushed items so their memory returns without anyone asking
//! for them. It then keeps each class's HOT and
//! WARM segments within their limits and lets the page mover look at the eviction window.
//! With `Config::background` a thread runs it every [`INTERVAL`]; the thread holds only a
//! weak reference to the store and is stopped and joined when the store is dropped.

use crate::item::F_FETCHED;
use crate::shard::{Core, Ctx, Dead, Shard};
use parking_lot::{Condvar, Mutex};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Pages crawled per pass: a 64 MiB store is crawled whole every pass, a larger one over
/// several (scanning all of a large cache every second would cost memory bandwidth).
pub const CRAWL_PAGES_PER_PASS: usize = 64;

/// Hash buckets migrated per shard and pass while a table grows.
const GROW_BUCKETS_PER_PASS: usize = 1 << 14;

/// Time between two background passes.
pub const INTERVAL: Duration = Duration::from_secs(1);

impl Shard {
    /// Reclaims the dead items of one page.
    fn crawl_slot(&mut self, ctx: &Ctx, slot: usize) {
        let handles: Vec<u32> = self.slab.chunks_of(slot).collect();
        for h in handles {
            let it = self.slab.item(h);
            if !it.is_live() {
                continue;
            }
            if let Some(dead) = ctx.dead(it) {
                let c = self.class_of(h);
                self.cs[c].crawler_reclaimed += 1;
                if dead == Dead::Expired && !it.has(F_FETCHED) {
                    self.cs[c].expired_unfetched += 1;
                }
                self.unlink_item(h);
            }
        }
    }
}

impl Core {
    /// One pass: crawls up to [`CRAWL_PAGES_PER_PASS`] pages from where the last pass
    /// stopped (each shard's LRUs are juggled and its hash table helped to grow when its
    /// walk completes), then lets the mover look at the eviction window.
    pub(crate) fn maintain(&self) {
        let (hot, warm) = (self.config.hot_lru_pct, self.config.warm_lru_pct);
        let n = self.shards.len();
        let mut cursor = self.crawl_cursor.lock();
        let (mut si, mut slot) = *cursor;
        let mut budget = CRAWL_PAGES_PER_PASS;
        let mut finished_shards = 0;
        while budget > 0 && finished_shards < n {
            let ctx = self.ctx();
            let mut guard = self.shards[si].lock();
            let s = &mut *guard;
            if slot >= s.slab.slots.len() {
                s.ht.help_grow(&s.slab, GROW_BUCKETS_PER_PASS);
                for c in 0..s.lru.len() {
                    if s.lru[c].total() > 0 {
                        s.lru_juggle(c, hot, warm);
                    }
                }
                si = (si + 1) % n;
                slot = 0;
                finished_shards += 1;
                continue;
            }
            if s.slab.chunks_of(slot).next().is_some() {
                s.crawl_slot(&ctx, slot);
                budget -= 1;
            }
            slot += 1;
        }
        *cursor = (si, slot);
        drop(cursor);
        self.automove();
    }
}

/// The background thread; dropping it stops and joins it.
pub(crate) struct Crawler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Crawler {
    pub fn spawn(core: Weak<Core>) -> Crawler {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ferrocache-crawler".into())
            .spawn(move || loop {
                {
                    let mut stopped = flag.0.lock();
                    if !*stopped {
                        flag.1.wait_for(&mut stopped, INTERVAL);
                    }
                    if *stopped {
                        return;
                    }
                }
                match core.upgrade() {
                    Some(c) => c.maintain(),
                    None => return,
                }
            })
            .ok();
        Crawler { stop, thread }
    }
}

impl Drop for Crawler {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

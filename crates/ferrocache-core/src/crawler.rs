//! Background work: the expiry crawler (memcached's crawler.c), LRU juggling and automove.
//!
//! [`Core::maintain`] walks each shard's hash table, [`CRAWL_BATCH`] slots per lock hold
//! and at most [`CRAWL_SLOTS_PER_PASS`] per pass, and unlinks expired or flushed items so
//! their memory returns without anyone asking for them. It then keeps each class's HOT and
//! WARM segments within their limits and lets the page mover look at the eviction window.
//! With `Config::background` a thread runs it every [`INTERVAL`]; the thread holds only a
//! weak reference to the store and is stopped and joined when the store is dropped.

use crate::item::F_FETCHED;
use crate::shard::{Core, Dead};
use parking_lot::{Condvar, Mutex};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Hash slots crawled per pass (tables are 3/8 to 3/4 full, so about half as many items): a
/// store of a few hundred thousand items is crawled whole every pass, a larger one over
/// several (scanning all of a large cache every second would cost memory bandwidth).
pub const CRAWL_SLOTS_PER_PASS: usize = 1 << 19;
/// Slots per lock hold (about 1024 items).
pub const CRAWL_BATCH: usize = 2048;

/// Old hash slots migrated per shard and pass while a table grows.
const GROW_SLOTS_PER_PASS: usize = 1 << 14;

/// ACTIVE items moved from each class's COLD tail to WARM per shard and pass (reads only
/// mark them; see `lru.rs`).
const COLD_PULL_PER_PASS: usize = 64;

/// Time between two background passes.
pub const INTERVAL: Duration = Duration::from_secs(1);

impl Core {
    /// One pass: crawls up to [`CRAWL_SLOTS_PER_PASS`] hash slots from where the last
    /// pass stopped, [`CRAWL_BATCH`] per lock hold, unlinking dead items; when a shard's walk
    /// completes its LRUs are juggled and its hash table helped to grow. Then the mover looks
    /// at the eviction window.
    pub(crate) fn maintain(&self) {
        let (hot, warm) = (self.config.hot_lru_pct, self.config.warm_lru_pct);
        let n = self.shards.len();
        let mut cursor = self.crawl_cursor.lock();
        let (mut si, mut pos) = *cursor;
        let mut budget = CRAWL_SLOTS_PER_PASS;
        let mut finished_shards = 0;
        let mut batch = Vec::new();
        while budget > 0 && finished_shards < n {
            let ctx = self.ctx();
            let mut guard = self.shards[si].lock();
            let s = &mut *guard;
            if pos >= s.ht.walk_len() {
                s.ht.help_grow(&s.mem, GROW_SLOTS_PER_PASS);
                for c in 0..s.lru.len() {
                    if s.lru[c].total() > 0 {
                        s.lru_juggle(c, hot, warm);
                        s.lru_pull_cold(c, COLD_PULL_PER_PASS, warm);
                    }
                }
                si = (si + 1) % n;
                pos = 0;
                finished_shards += 1;
                continue;
            }
            batch.clear();
            pos = s.ht.collect(&s.mem, pos, CRAWL_BATCH, &mut batch);
            budget = budget.saturating_sub(CRAWL_BATCH);
            for &h in &batch {
                let it = s.mem.item(h);
                if let Some(dead) = ctx.dead(it) {
                    let c = s.class_of(h);
                    s.cs[c].crawler_reclaimed += 1;
                    if dead == Dead::Expired && !it.has(F_FETCHED) {
                        s.cs[c].expired_unfetched += 1;
                    }
                    s.unlink_item(self, h);
                }
            }
        }
        *cursor = (si, pos);
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

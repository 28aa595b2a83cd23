//! Background work: the expiry crawler (memcached's crawler.c), LRU juggling and automove.
//!
//! [`Core::maintain`] walks each shard's hash table, [`CRAWL_BATCH`] slots per lock hold
//! and at most [`CRAWL_SLOTS_PER_PASS`] per pass, and unlinks expired or flushed items so
//! their memory returns without anyone asking for them. It then keeps each class's HOT and
//! WARM segments within their limits, lets the page mover look at the eviction window and
//! frees pages a lower memory limit left over budget. With `Config::background` a thread
//! runs it every [`INTERVAL`] (or at once when woken); the thread holds only a weak
//! reference to the store and is stopped and joined when the store is dropped.
//!
//! memcached's `lru_crawler` commands act here: `disable` stops the expiry walk (juggling,
//! automove and hash growth go on: memcached's LRU maintainer is a separate thread),
//! `crawl <classes>` queues one pass over the whole store that reclaims the dead items of
//! those classes only (at most `tocrawl` checked per class), run by the thread (at once
//! by the caller when there is none), and `sleep` is the pause between two lock holds of
//! the thread's walks.
//!
//! While a system-event sink listens (`watch sysevents`, [`crate::sysevent`]) the walk
//! tallies each round's items per class and LRU segment and reports the round when it ends.

use crate::config::Tunables;
use crate::item::F_FETCHED;
use crate::shard::{Core, Dead, Shard};
use crate::sysevent::{CrawlRound, SysEvent};
use parking_lot::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
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

/// Flushed items reaped from each shard's LRU tails per pass while the expiry walk is off.
const FLUSHED_REAP_PER_PASS: usize = 1 << 16;

/// Time between two background passes.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The crawler's counters (memcached's `lru_crawler_running`, `lru_crawler_starts`) and the
/// crawls requested by `lru_crawler crawl`: one may run while one more waits.
#[derive(Debug, Default)]
pub(crate) struct CrawlState {
    pub running: AtomicBool,
    pub starts: AtomicU64,
    /// Classes of the requested crawl that waits (requests that come before it starts
    /// add their classes to it).
    pub requested: Mutex<Option<Vec<bool>>>,
    /// A requested crawl is running.
    active: AtomicBool,
    /// The expiry walk's current round, tallied for `watch sysevents`.
    round: Mutex<Round>,
}

/// One round of the expiry walk (every slot of every shard once), tallied per class and LRU
/// segment while a system-event sink wants it ([`crate::sysevent`]).
#[derive(Debug, Default)]
struct Round {
    /// Store second (`Ctx::rel`) the round started at.
    started: u32,
    /// A sink wanted events in every pass of the round so far: the counts are whole.
    tallied: bool,
    /// Items met and items reclaimed, per class and segment.
    examined: Vec<[u64; 4]>,
    reclaimed: Vec<[u64; 4]>,
}

impl Round {
    fn begin(&mut self, rel: u32, tallied: bool, classes: usize) {
        self.started = rel;
        self.tallied = tallied;
        self.examined.clear();
        self.reclaimed.clear();
        if tallied {
            self.examined.resize(classes, [0; 4]);
            self.reclaimed.resize(classes, [0; 4]);
        }
    }
}

/// Requested crawls one background pass runs at most (requests keep coming: the rest wait
/// for the next pass).
const REQUESTED_CRAWLS_PER_PASS: usize = 4;

/// What [`crate::Store::crawl`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlStart {
    /// Queued (or, without a background thread, done).
    Started,
    /// A requested crawl runs and another waits already: memcached's `BUSY`.
    Busy,
}

impl Core {
    /// One pass of the background work, with no pause between lock holds.
    pub(crate) fn maintain(&self) {
        self.maintain_pass(false)
    }

    /// One pass: a requested crawl, if one waits; the expiry walk (when the crawler is
    /// enabled, otherwise the LRU juggling alone); automove; pages over a lowered memory
    /// limit. `paced`: sleep `lru_crawler_sleep` between lock holds (the background thread).
    pub(crate) fn maintain_pass(&self, paced: bool) {
        for _ in 0..REQUESTED_CRAWLS_PER_PASS {
            if !self.run_requested_crawl(paced) {
                break;
            }
        }
        if self.tune.crawler.load(Relaxed) {
            self.expiry_walk(paced);
        } else {
            for m in self.shards.iter() {
                let mut s = m.lock();
                // memcached's LRU maintainer reaps flushed items at the tails whether its
                // crawler runs or not
                let ctx = self.ctx();
                if ctx.flush_rel != 0 && ctx.rel >= ctx.flush_rel {
                    s.lru_reap_flushed_tails(self, &ctx, FLUSHED_REAP_PER_PASS);
                }
                self.tend_shard(&mut s);
            }
        }
        self.automove();
        self.shrink_to_limit(usize::MAX);
    }

    /// The juggling and hash growth a shard gets once per walk.
    fn tend_shard(&self, s: &mut Shard) {
        let (hot, warm) = (s.lru_tune.hot_pct, s.lru_tune.warm_pct);
        let hot_factor = Tunables::factor(&self.tune.hot_max_factor);
        let warm_factor = Tunables::factor(&self.tune.warm_max_factor);
        let rel = self.ctx().rel;
        s.ht.help_grow(&s.mem, GROW_SLOTS_PER_PASS);
        for c in 0..s.lru.len() {
            if s.lru[c].total() > 0 {
                if s.lru_tune.segmented {
                    s.lru_juggle(c, hot, warm);
                }
                s.lru_age_juggle(c, rel, hot_factor, warm_factor, COLD_PULL_PER_PASS);
                s.lru_pull_cold(c, COLD_PULL_PER_PASS, warm);
            }
        }
    }

    /// Between two lock holds of a walk: with `paced` (the background thread), frees the
    /// pages over a lowered memory limit, then sleeps `lru_crawler sleep` on the wake
    /// condvar. A pass over a large table takes minutes at the longest sleep (1 s per
    /// [`CRAWL_BATCH`]): the limit must not wait for it, and neither must the store stopping.
    /// `false` when the store stops (the walk ends there).
    fn pause(&self, paced: bool) -> bool {
        if !paced {
            return true;
        }
        if self.alloc.lock().over_budget() > 0 {
            self.shrink_to_limit(usize::MAX);
        }
        let us = self.tune.crawler_sleep_us.load(Relaxed);
        let mut stopped = self.wake.0.lock();
        if !*stopped && us > 0 {
            self.wake
                .1
                .wait_for(&mut stopped, Duration::from_micros(us as u64));
        }
        !*stopped
    }

    /// The background expiry walk: up to [`CRAWL_SLOTS_PER_PASS`] hash slots from where the
    /// last pass stopped, [`CRAWL_BATCH`] per lock hold, unlinking dead items; when a
    /// shard's walk completes its LRUs are juggled and its hash table helped to grow.
    /// A round that ends is reported to the system-event sinks ([`Core::report_round`]).
    fn expiry_walk(&self, paced: bool) {
        let n = self.shards.len();
        let mut cursor = self.crawl_cursor.lock();
        let mut round = self.crawl.round.lock();
        // one relaxed load while nobody listens; counted only if someone did all round
        let tally = self.sysevents.wanted();
        let (mut si, mut pos) = *cursor;
        if (si, pos) == (0, 0) {
            self.crawl.starts.fetch_add(1, Relaxed);
            round.begin(self.ctx().rel, tally, self.classes.len());
        } else if !tally {
            round.tallied = false;
        }
        let mut ended = None;
        self.crawl.running.store(true, Relaxed);
        let mut budget = CRAWL_SLOTS_PER_PASS;
        let mut finished_shards = 0;
        let mut batch = Vec::new();
        while budget > 0 && finished_shards < n {
            let ctx = self.ctx();
            let mut guard = self.shards[si].lock();
            let s = &mut *guard;
            if pos >= s.ht.walk_len() {
                self.tend_shard(s);
                si = (si + 1) % n;
                pos = 0;
                finished_shards += 1;
                if si == 0 {
                    // the round ended; the next one starts here
                    let next = std::mem::take(&mut *round);
                    if next.tallied {
                        ended = Some((next, ctx.rel));
                    }
                    round.begin(ctx.rel, tally, self.classes.len());
                }
                continue;
            }
            batch.clear();
            pos = s.ht.collect(&s.mem, pos, CRAWL_BATCH, &mut batch);
            budget = budget.saturating_sub(CRAWL_BATCH);
            for &h in &batch {
                let c = s.class_of(h);
                s.cs[c].crawler_items_checked += 1;
                if round.tallied {
                    let seg = s.mem.item(h).seg();
                    round.examined[c][seg] += 1;
                    if reclaim_if_dead(self, s, &ctx, h, c, Reaper::Walk) {
                        round.reclaimed[c][seg] += 1;
                    }
                } else {
                    reclaim_if_dead(self, s, &ctx, h, c, Reaper::Walk);
                }
            }
            drop(guard);
            if !self.pause(paced) {
                break;
            }
        }
        *cursor = (si, pos);
        drop(round);
        // a walk that did not come round yet is still running
        self.crawl.running.store(
            (si, pos) != (0, 0) || self.crawl.requested.lock().is_some(),
            Relaxed,
        );
        if let Some((r, end)) = ended {
            // the next round began in this pass, or begins with the next one
            let next_run = match (si, pos) != (0, 0) {
                true => Some(0),
                false => self.config.background.then_some(INTERVAL.as_secs() as u32),
            };
            drop(cursor);
            self.report_round(&r, end, next_run);
        }
    }

    /// One `Crawl` event per class and segment the ended round met items of, ordered as
    /// memcached writes its status lines (every class's HOT, then WARM, COLD, TEMP).
    fn report_round(&self, r: &Round, end: u32, next_run: Option<u32>) {
        for lru in 0..4 {
            for (c, examined) in r.examined.iter().enumerate() {
                if examined[lru] == 0 {
                    continue;
                }
                let round = CrawlRound {
                    class_id: c as u32 + 1,
                    lru,
                    since_run: 0,
                    next_run,
                    elapsed: end.saturating_sub(r.started),
                    examined: examined[lru],
                    reclaimed: r.reclaimed[c][lru],
                };
                self.sysevents.notify(&SysEvent::Crawl(round));
            }
        }
    }

    /// Queues a crawl of the classes marked in `classes` (index 0 = memcached's class 1),
    /// or runs it now when there is no background thread.
    pub(crate) fn request_crawl(&self, classes: Vec<bool>) -> CrawlStart {
        {
            let mut req = self.crawl.requested.lock();
            match req.as_mut() {
                Some(_) if self.crawl.active.load(Relaxed) => return CrawlStart::Busy,
                Some(waiting) => waiting.iter_mut().zip(&classes).for_each(|(w, c)| *w |= c),
                None => *req = Some(classes),
            }
        }
        self.crawl.running.store(true, Relaxed);
        if self.config.background {
            self.wake.1.notify_all();
        } else {
            self.run_requested_crawl(false);
        }
        CrawlStart::Started
    }

    /// Runs the queued crawl, if any (`false` when none waits): every shard's table in
    /// batches; the dead items of the requested classes are unlinked, at most `tocrawl`
    /// items of each class are checked.
    fn run_requested_crawl(&self, paced: bool) -> bool {
        let want = {
            let mut req = self.crawl.requested.lock();
            match req.take() {
                Some(w) => {
                    self.crawl.active.store(true, Relaxed);
                    w
                }
                None => return false,
            }
        };
        self.crawl.starts.fetch_add(1, Relaxed);
        let limit = match self.tune.crawler_tocrawl.load(Relaxed) {
            0 => u64::MAX,
            n => n as u64,
        };
        let mut checked = vec![0u64; want.len()];
        let mut batch = Vec::new();
        'shards: for m in self.shards.iter() {
            let mut pos = 0;
            loop {
                let ctx = self.ctx();
                let mut guard = m.lock();
                let s = &mut *guard;
                if pos >= s.ht.walk_len() {
                    break;
                }
                batch.clear();
                pos = s.ht.collect(&s.mem, pos, CRAWL_BATCH, &mut batch);
                for &h in &batch {
                    let c = s.class_of(h);
                    if !want.get(c).copied().unwrap_or(false) || checked[c] >= limit {
                        continue;
                    }
                    checked[c] += 1;
                    s.cs[c].crawler_items_checked += 1;
                    reclaim_if_dead(self, s, &ctx, h, c, Reaper::Requested);
                }
                drop(guard);
                if !self.pause(paced) {
                    break 'shards;
                }
            }
        }
        let waiting = {
            let req = self.crawl.requested.lock();
            self.crawl.active.store(false, Relaxed);
            req.is_some()
        };
        let walking = *self.crawl_cursor.lock() != (0, 0);
        self.crawl.running.store(walking || waiting, Relaxed);
        true
    }
}

/// Which walk met a dead item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reaper {
    /// The background expiry walk.
    Walk,
    /// A crawl requested by `lru_crawler crawl`.
    Requested,
}

/// Unlinks item `h` (class `c`) when it is expired or flushed (`true` then). Counted as memcached counts
/// it: the crawler's (`crawler_reclaimed`, and `expired_unfetched` for an expired item
/// never read), except a flushed item met by the background walk, which stands in for
/// memcached's LRU maintainer: it reaps flushed items at the LRU tails within a fraction
/// of a second of the flush, counting `reclaimed` and, when never read, `expired_unfetched`
/// (measured: `set a`, `set b`, `flush_all`, `get a`, then `reclaimed 1`,
/// `expired_unfetched 1`, `crawler_reclaimed 0`).
fn reclaim_if_dead(
    core: &Core,
    s: &mut Shard,
    ctx: &crate::shard::Ctx,
    h: u32,
    c: usize,
    by: Reaper,
) -> bool {
    let it = s.mem.item(h);
    let Some(dead) = ctx.dead(it) else {
        return false;
    };
    let cs = &mut s.cs[c];
    if dead == Dead::Flushed && by == Reaper::Walk {
        cs.reclaimed += 1;
        if !it.has(F_FETCHED) {
            cs.expired_unfetched += 1;
        }
    } else {
        cs.crawler_reclaimed += 1;
        if dead == Dead::Expired && !it.has(F_FETCHED) {
            cs.expired_unfetched += 1;
        }
    }
    s.unlink_item(core, h);
    true
}

/// The background thread; dropping it stops and joins it.
pub(crate) struct Crawler {
    stop: Arc<(Mutex<bool>, parking_lot::Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Crawler {
    pub fn spawn(core: &Arc<Core>) -> Crawler {
        let stop = core.wake.clone();
        let flag = stop.clone();
        let core = Arc::downgrade(core);
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
                    Some(c) => c.maintain_pass(true),
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

//! Background work: the expiry crawler (memcached's crawler.c), LRU juggling and automove.
//!
//! [`Core::maintain`] walks each shard's hash table, [`CRAWL_BATCH`] slots per lock hold
//! and at most [`CRAWL_SLOTS_PER_PASS`] per pass, and unlinks expired or flushed items so
//! their memory returns without anyone asking for them. It then keeps each class's HOT and
//! WARM segments within their limits, lets the page mover look at the eviction window and
//! frees pages a lower memory limit left over budget. A pass is a sequence of steps
//! ([`Pass`]), each one lock hold of a walk or one bounded piece of the rest: `maintain`
//! runs them back to back; with `Config::background` the threads every store of the process
//! shares ([`crate::background`]) run one step at a time, pausing `lru_crawler sleep` after
//! each lock hold of a walk, and begin the next pass [`INTERVAL`] after one ends (at once
//! when woken).
//!
//! memcached's `lru_crawler` commands act here: `disable` stops the expiry walk (juggling,
//! automove and hash growth go on: memcached's LRU maintainer is a separate thread),
//! `crawl <classes>` queues one pass over the whole store that reclaims the dead items of
//! those classes only (at most `tocrawl` checked per class), run by the thread (at once
//! by the caller when there is none), and `sleep` is the pause between two lock holds of
//! the background walks (other stores' steps run in it).
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
    /// The background pass in progress (only the shared threads' steps take it).
    pass: Mutex<Pass>,
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

/// Where a background pass is: each [`Core::step`] does one lock hold of a walk or one
/// bounded piece of the rest, so a pass can run inline ([`Core::maintain`]) or a step at a
/// time on the threads all stores share ([`crate::background`]).
#[derive(Debug, Default)]
pub(crate) struct Pass {
    phase: Phase,
    /// Handles of the current batch (kept for its capacity).
    batch: Vec<u32>,
}

#[derive(Debug, Default)]
enum Phase {
    /// Requested crawls first: the one running, and how many ran this pass.
    #[default]
    Start,
    Requested {
        crawl: Option<Requested>,
        done: usize,
    },
    /// The expiry walk, while the crawler is enabled.
    Walk(Walk),
    /// With the crawler disabled: each shard's flushed tails and juggling in turn.
    Tend {
        shard: usize,
    },
    /// Automove, then pages over a lowered memory limit.
    Automove,
    Shrink,
}

/// A requested crawl under way.
#[derive(Debug)]
struct Requested {
    want: Vec<bool>,
    checked: Vec<u64>,
    limit: u64,
    shard: usize,
    pos: usize,
}

/// This pass's share of the expiry walk (the walk itself resumes at `Core::crawl_cursor`).
#[derive(Debug)]
struct Walk {
    budget: usize,
    finished_shards: usize,
    /// Whether a system-event sink listened when the pass began.
    tally: bool,
    /// A round that ended in this pass, with its end, reported when the walk stops.
    ended: Option<(Round, u32)>,
}

/// What a step leaves for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Go on at once.
    Next,
    /// A walk's lock hold ended: the background thread pauses `lru_crawler sleep` here.
    Pause,
    /// The pass is over.
    Done,
}

/// Page moves per step while pages are over a lowered memory limit.
const SHRINK_PER_STEP: usize = 16;

impl Core {
    /// One pass of the background work, with no pause between lock holds.
    pub(crate) fn maintain(&self) {
        let mut pass = Pass::default();
        while self.step(&mut pass, false) != Step::Done {}
    }

    /// The next step of this store's background pass (a new pass begins once one is over),
    /// for the shared threads: how long until the step after it is due.
    pub(crate) fn background_step(&self) -> Duration {
        let mut pass = self.crawl.pass.lock();
        match self.step(&mut pass, true) {
            Step::Next => Duration::ZERO,
            Step::Pause => Duration::from_micros(self.tune.crawler_sleep_us.load(Relaxed) as u64),
            Step::Done => INTERVAL,
        }
    }

    /// One step of a pass: the requested crawls, if any wait; the expiry walk (when the
    /// crawler is enabled, otherwise the LRU juggling alone); automove; pages over a
    /// lowered memory limit. `paced` (the background threads): pages over a lowered limit
    /// are freed before the walks go on, so the limit never waits for a walk that takes
    /// minutes at the longest `lru_crawler sleep` (1 s per [`CRAWL_BATCH`]).
    fn step(&self, pass: &mut Pass, paced: bool) -> Step {
        if paced && self.alloc.lock().over_budget() > 0 && self.shrink_some() {
            return Step::Next;
        }
        let batch = &mut pass.batch;
        match &mut pass.phase {
            Phase::Start => {
                pass.phase = Phase::Requested {
                    crawl: None,
                    done: 0,
                };
                Step::Next
            }
            Phase::Requested { crawl, done } => {
                if crawl.is_none() {
                    *crawl = match *done < REQUESTED_CRAWLS_PER_PASS {
                        true => self.take_requested_crawl(),
                        false => None,
                    };
                    if crawl.is_none() {
                        pass.phase = self.begin_walk();
                        return Step::Next;
                    }
                }
                let Some(r) = crawl.as_mut() else {
                    return Step::Next;
                };
                if self.requested_batch(r, batch) {
                    return Step::Pause;
                }
                self.end_requested_crawl();
                *crawl = None;
                *done += 1;
                Step::Next
            }
            Phase::Walk(w) => {
                if self.walk_batch(w, batch) {
                    return Step::Pause;
                }
                if let Phase::Walk(w) = std::mem::replace(&mut pass.phase, Phase::Automove) {
                    self.end_walk(w);
                }
                Step::Next
            }
            Phase::Tend { shard } => {
                match self.shards.get(*shard) {
                    Some(m) => {
                        let mut s = m.lock();
                        // memcached's LRU maintainer reaps flushed items at the tails whether
                        // its crawler runs or not
                        let ctx = self.ctx();
                        if ctx.flush_rel != 0 && ctx.rel >= ctx.flush_rel {
                            s.lru_reap_flushed_tails(self, &ctx, FLUSHED_REAP_PER_PASS);
                        }
                        self.tend_shard(&mut s);
                        *shard += 1;
                    }
                    None => pass.phase = Phase::Automove,
                }
                Step::Next
            }
            Phase::Automove => {
                self.automove();
                pass.phase = Phase::Shrink;
                Step::Next
            }
            Phase::Shrink => {
                if !paced {
                    self.shrink_to_limit(usize::MAX);
                } else if self.shrink_some() {
                    return Step::Next;
                }
                pass.phase = Phase::Start;
                Step::Done
            }
        }
    }

    /// A few page moves toward a lowered memory limit: `true` while more are needed and
    /// these made progress (without eviction, `-M`, items that cannot move yet stop it).
    fn shrink_some(&self) -> bool {
        let before = self.alloc.lock().over_budget();
        if before == 0 || self.shrink_to_limit(SHRINK_PER_STEP) {
            return false;
        }
        self.alloc.lock().over_budget() < before
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

    /// The phase after the requested crawls: this pass's part of the expiry walk (counting
    /// a walk begun from the start), or the juggling alone while the crawler is disabled.
    fn begin_walk(&self) -> Phase {
        if !self.tune.crawler.load(Relaxed) {
            return Phase::Tend { shard: 0 };
        }
        let cursor = self.crawl_cursor.lock();
        let mut round = self.crawl.round.lock();
        // one relaxed load while nobody listens; counted only if someone did all round
        let tally = self.sysevents.wanted();
        if *cursor == (0, 0) {
            self.crawl.starts.fetch_add(1, Relaxed);
            round.begin(self.ctx().rel, tally, self.classes.len());
        } else if !tally {
            round.tallied = false;
        }
        self.crawl.running.store(true, Relaxed);
        Phase::Walk(Walk {
            budget: CRAWL_SLOTS_PER_PASS,
            finished_shards: 0,
            tally,
            ended: None,
        })
    }

    /// One lock hold of the background expiry walk: [`CRAWL_BATCH`] hash slots from where
    /// the walk stopped, unlinking dead items; a shard whose walk completes has its LRUs
    /// juggled and its hash table helped to grow. `false` once this pass's share (at most
    /// [`CRAWL_SLOTS_PER_PASS`] slots, each shard once) is walked.
    fn walk_batch(&self, w: &mut Walk, batch: &mut Vec<u32>) -> bool {
        let n = self.shards.len();
        while w.budget > 0 && w.finished_shards < n {
            let ctx = self.ctx();
            let mut cursor = self.crawl_cursor.lock();
            let mut round = self.crawl.round.lock();
            let (si, pos) = *cursor;
            let mut guard = self.shards[si].lock();
            let s = &mut *guard;
            if pos >= s.ht.walk_len() {
                self.tend_shard(s);
                *cursor = ((si + 1) % n, 0);
                w.finished_shards += 1;
                if cursor.0 == 0 {
                    // the round ended; the next one starts here
                    let next = std::mem::take(&mut *round);
                    if next.tallied {
                        w.ended = Some((next, ctx.rel));
                    }
                    round.begin(ctx.rel, w.tally, self.classes.len());
                }
                continue;
            }
            batch.clear();
            cursor.1 = s.ht.collect(&s.mem, pos, CRAWL_BATCH, batch);
            w.budget = w.budget.saturating_sub(CRAWL_BATCH);
            for &h in batch.iter() {
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
            return true;
        }
        false
    }

    /// This pass's share of the walk is done: a walk that did not come round yet is still
    /// running; a round that ended is reported to the system-event sinks.
    fn end_walk(&self, w: Walk) {
        let cursor = self.crawl_cursor.lock();
        let mid_walk = *cursor != (0, 0);
        self.crawl
            .running
            .store(mid_walk || self.crawl.requested.lock().is_some(), Relaxed);
        drop(cursor);
        if let Some((r, end)) = w.ended {
            // the next round began in this pass, or begins with the next one
            let next_run = match mid_walk {
                true => Some(0),
                false => self.config.background.then_some(INTERVAL.as_secs() as u32),
            };
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
            crate::background::wake(self.bg_id);
        } else if let Some(mut r) = self.take_requested_crawl() {
            let mut batch = Vec::new();
            while self.requested_batch(&mut r, &mut batch) {}
            self.end_requested_crawl();
        }
        CrawlStart::Started
    }

    /// The queued crawl, if any, now running.
    fn take_requested_crawl(&self) -> Option<Requested> {
        let want = self.crawl.requested.lock().take()?;
        self.crawl.active.store(true, Relaxed);
        self.crawl.starts.fetch_add(1, Relaxed);
        let limit = match self.tune.crawler_tocrawl.load(Relaxed) {
            0 => u64::MAX,
            n => n as u64,
        };
        Some(Requested {
            checked: vec![0; want.len()],
            want,
            limit,
            shard: 0,
            pos: 0,
        })
    }

    /// One lock hold of a requested crawl: a batch of a shard's table, whose dead items of
    /// the requested classes are unlinked (at most `tocrawl` items of each class are
    /// checked). `false` once every shard is walked.
    fn requested_batch(&self, r: &mut Requested, batch: &mut Vec<u32>) -> bool {
        while let Some(m) = self.shards.get(r.shard) {
            let ctx = self.ctx();
            let mut guard = m.lock();
            let s = &mut *guard;
            if r.pos >= s.ht.walk_len() {
                (r.shard, r.pos) = (r.shard + 1, 0);
                continue;
            }
            batch.clear();
            r.pos = s.ht.collect(&s.mem, r.pos, CRAWL_BATCH, batch);
            for &h in batch.iter() {
                let c = s.class_of(h);
                if !r.want.get(c).copied().unwrap_or(false) || r.checked[c] >= r.limit {
                    continue;
                }
                r.checked[c] += 1;
                s.cs[c].crawler_items_checked += 1;
                reclaim_if_dead(self, s, &ctx, h, c, Reaper::Requested);
            }
            return true;
        }
        false
    }

    /// A requested crawl ended: the crawler still runs while the walk is mid-table or
    /// another request waits.
    fn end_requested_crawl(&self) {
        let waiting = {
            let req = self.crawl.requested.lock();
            self.crawl.active.store(false, Relaxed);
            req.is_some()
        };
        let walking = *self.crawl_cursor.lock() != (0, 0);
        self.crawl.running.store(walking || waiting, Relaxed);
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

//! The slab page mover (memcached's slab_rebalance / slab_automove).
//!
//! A page leaves a class in three steps, with every shard lock held (in index order, then
//! the allocator's): it is detached (its free chunks leave the free list, it stops being the
//! bump page), each live item on it is relocated into a free chunk of the same class
//! elsewhere (same bytes; its shard's hash chain and LRU links are re-pointed) or, when there
//! is none, evicted from its shard, and the empty page goes to the receiving class or the pool.
//!
//! It runs in two situations:
//! - [`Core::make_room`]: an allocation found no chunk, no page in the budget and nothing of
//!   its class in its own shard to evict. Then the shard with most items of the class evicts
//!   its LRU tail, or, when no shard has any, a page moves to the class;
//! - [`Core::automove`] (each `maintain` pass): when a class evicted during the last window
//!   while another class has a page's worth of free chunks, or did not evict and holds much
//!   older items (or had no sets and items no younger), one of its pages moves to the
//!   evicting class.
//!   So memory follows the value-size mix instead of calcifying. Each such move is a
//!   system event ([`crate::sysevent`], `watch sysevents`). In mode 2 (memcached's
//!   aggressive `slab_automove=2`) every class that evicted during the window takes a page
//!   from any class with two or more, whatever their ages. Without eviction (-M) mode 1 is
//!   memcached's window rule for free chunks instead ([`Core::automove_to_pool`]): a class
//!   with more than 2.5 pages' worth of free chunks and a clean window (30 samples, or
//!   [`crate::Config::slab_automove_window`]) gives a page to
//!   the pool, which any class's allocation takes; mode 2 moves nothing (memcached's asks
//!   for a page only when it evicts);
//! - [`Core::reassign`]: `slabs reassign <src> <dst>`, one page now, as memcached's
//!   `slabs_reassign` decides (class 0 is the pool of unassigned pages, src -1 any class);
//! - [`Core::shrink_to_limit`]: after `cache_memlimit` lowered the limit below the pages
//!   that exist, the class with most pages gives up its emptiest page (items relocated or
//!   evicted), which goes back to the system, until the pages fit the limit again.

use crate::hashtable::hash_key;
use crate::item::NIL;
use crate::lru::{COLD, HOT, WARM};
use crate::shard::{Core, Shard};
use crate::slab::SlabAlloc;
use crate::sysevent::SysEvent;
use crate::ConfigError;
use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Pages automove moves per `maintain` pass.
const AUTOMOVE_PAGES_PER_PASS: usize = 2;

/// Pages automove mode 2 moves per `maintain` pass at most.
const AGGRESSIVE_PAGES_PER_PASS: usize = 8;

/// Without eviction, a class with more than this many pages' worth of free chunks and a
/// clean window gives a page back to the pool (memcached's `MIN_PAGES_FOR_RECLAIM`).
const RECLAIM_FREE_PAGES: f64 = 2.5;

/// Pages automove 1 hands back to the pool per `maintain` pass at most without eviction
/// (memcached runs again at once after each such decision; the next pass goes on).
const POOL_PAGES_PER_PASS: usize = 16;

/// Pages `cache_memlimit` frees before it returns when a background thread can free the
/// rest (a few milliseconds of work; the thread is woken for the others).
const SHRINK_PAGES_INLINE: usize = 64;

/// The mover's counters (memcached's `slab_reassign_rescues`,
/// `slab_reassign_evictions_nomem`), the round-robin cursor of `src -1` and the guard that
/// makes a second concurrent `slabs reassign` answer BUSY.
#[derive(Debug, Default)]
pub(crate) struct MoveState {
    pub rescues: AtomicU64,
    pub evictions_nomem: AtomicU64,
    pick_cursor: AtomicUsize,
    reassigning: Mutex<()>,
    free_window: Mutex<FreeWindow>,
}

/// Automove 1 without eviction (-M): memcached's automover window, of which only the rule
/// for free chunks can move a page here (see [`Core::automove_to_pool`]).
#[derive(Debug, Default)]
struct FreeWindow {
    /// Per class, the window's dirty slots (sample number modulo [`FreeWindow::size`]):
    /// those samples the class evicted, ran out of memory or gained a page during.
    /// memcached keeps every slot, clean ones too (a window in the millions is more memory
    /// than it can allocate); only the dirty ones are kept here.
    dirty: Vec<BTreeSet<u64>>,
    /// Samples taken (memcached's `window_cur`).
    cur: u64,
    /// The samples in the window ([`crate::Config::slab_automove_window`]).
    size: u64,
    /// Per class at the last sample: evictions, `outofmemory`, pages.
    before: Vec<(u64, u64, u32)>,
    /// The store second of the last sample that handed no page back (memcached samples once
    /// a second, and again at once after a page went to the pool).
    last_check: Option<u32>,
    again: bool,
    /// The automove ratio the window was started with (memcached starts a new window when
    /// `slabs automove ratio` changes it).
    ratio: u64,
}

impl FreeWindow {
    /// One sample (memcached's `slab_automove_run` for the free-chunks rule): marks each
    /// class's slot of this sample dirty when it evicted, ran out of memory or gained a page
    /// since the last one, and returns the first class that has more than
    /// [`RECLAIM_FREE_PAGES`] pages' worth of free chunks and no dirty sample in the window
    /// before this one. As memcached's, the classes after that one take no sample this time
    /// (their counters' changes are not looked at).
    fn sample(&mut self, now: &[(u64, u64, u32)], free: &[u64], per_page: &[u32]) -> Option<usize> {
        let n = now.len();
        if self.before.len() != n {
            // the first look: memcached's dry run at the automover's start
            self.before = now.to_vec();
            self.dirty = vec![BTreeSet::new(); n];
        }
        self.cur += 1;
        let slot = self.cur % self.size;
        let mut src = None;
        for c in 0..n {
            // memcached clears this sample's slot, then looks for a dirty one among the rest
            let w = &mut self.dirty[c];
            w.remove(&slot);
            let was_dirty = !w.is_empty();
            let (ev, oom, pages) = now[c];
            let (ev0, oom0, pages0) = self.before[c];
            // memcached compares unsigned differences with > 0: any change counts (a `stats
            // reset` too), a lost page does not
            if ev != ev0 || oom != oom0 || pages > pages0 {
                w.insert(slot);
            }
            if free[c] as f64 > per_page[c] as f64 * RECLAIM_FREE_PAGES && !was_dirty {
                src = Some(c);
                break;
            }
        }
        self.before = now.to_vec();
        src
    }
}

/// The outcome of [`crate::Store::slabs_reassign`], one per reply of memcached's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reassign {
    /// The page moved (`OK`).
    Moved,
    /// Another reassign is under way (`BUSY currently processing reassign request`).
    Busy,
    /// A class id out of range, or src -1 with no class to take from (`BADCLASS …`).
    BadClass,
    /// The source has fewer than two pages, or (without eviction) its items cannot all be
    /// relocated (`NOSPARE source class has no spare pages`).
    NoSpare,
    /// src = dst (`SAME src and dst class are identical`).
    Same,
    /// Pages never change class ([`crate::Config::slab_reassign`] false: `CLIENT_ERROR slab
    /// reassignment disabled`, checked before anything else).
    Disabled,
}

impl Core {
    /// Makes room in class `c` for shard `si`, which holds no lock now and found nothing of
    /// the class to evict (it may have some again by now: then it is a candidate too).
    /// `false` when nothing could be done.
    pub(crate) fn make_room(&self, _si: usize, c: usize) -> bool {
        if self.flush_pending.load(Ordering::Relaxed) {
            // flushed items may sit at other shards' tails: their chunks go first
            for m in self.shards.iter() {
                let mut s = m.lock();
                let ctx = self.ctx();
                if s.lru_reclaim_tails(self, &ctx, c) {
                    return true;
                }
            }
            self.flush_pending.store(false, Ordering::Relaxed);
            if !self.config.evict {
                return true;
            }
        }
        if !self.config.evict {
            return self.make_room_without_eviction(c);
        }
        let mut best: Option<(usize, u32)> = None;
        for (i, m) in self.shards.iter().enumerate() {
            let n = m.lock().lru[c].evictable();
            if n > 0 && best.is_none_or(|(_, b)| n > b) {
                best = Some((i, n));
            }
        }
        match best {
            Some((t, _)) => {
                let ctx = self.ctx();
                let mut s = self.shards[t].lock();
                s.lru_reclaim_tails(self, &ctx, c) || s.lru_evict(self, &ctx, c)
            }
            None => self.move_page(None, Some(c)),
        }
    }

    /// [`Core::make_room`] for a caller that holds every shard lock (so the room it makes
    /// cannot be taken by anyone else before it allocates).
    pub(crate) fn make_room_locked(&self, guards: &mut [MutexGuard<'_, Shard>], c: usize) -> bool {
        if self.flush_pending.load(Ordering::Relaxed) {
            let ctx = self.ctx();
            if guards
                .iter_mut()
                .any(|s| s.lru_reclaim_tails(self, &ctx, c))
            {
                return true;
            }
            self.flush_pending.store(false, Ordering::Relaxed);
            if !self.config.evict {
                return true;
            }
        }
        if !self.config.evict {
            let ctx = self.ctx();
            let mut items = false;
            for s in guards.iter_mut().filter(|s| s.lru[c].evictable() > 0) {
                items = true;
                if s.lru_reclaim_tails(self, &ctx, c) {
                    return true;
                }
            }
            return !items && self.move_page_locked(guards, None, Some(c));
        }
        let best = (0..guards.len())
            .filter(|&i| guards[i].lru[c].evictable() > 0)
            .max_by_key(|&i| guards[i].lru[c].evictable());
        match best {
            Some(t) => {
                let ctx = self.ctx();
                let s = &mut *guards[t];
                s.lru_reclaim_tails(self, &ctx, c) || s.lru_evict(self, &ctx, c)
            }
            None => self.move_page_locked(guards, None, Some(c)),
        }
    }

    /// [`Core::make_room`] without eviction (-M): an expired or flushed item of class `c` at
    /// a shard's tails gives its chunk up (memcached's one LRU per class finds those of every
    /// thread at its tail); a class with no item anywhere gets a page another class can give
    /// up without evicting; else `false`: out of memory. (A class with items gets no page:
    /// memcached grants none past the limit, and its automover hands free pages back only
    /// after a class had 2.5 pages of free chunks all through its window, 30 s by default.)
    fn make_room_without_eviction(&self, c: usize) -> bool {
        let mut items = false;
        for m in self.shards.iter() {
            let mut s = m.lock();
            if s.lru[c].evictable() > 0 {
                items = true;
                let ctx = self.ctx();
                if s.lru_reclaim_tails(self, &ctx, c) {
                    return true;
                }
            }
        }
        !items && self.move_page(None, Some(c))
    }

    /// Moves one page from class `from` (default: the class with most pages) to class `to`
    /// (default: the pool). `true` when `to` can now allocate (or a page went to the pool).
    pub(crate) fn move_page(&self, from: Option<usize>, to: Option<usize>) -> bool {
        let mut guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
        self.move_page_locked(&mut guards, from, to)
    }

    /// [`Core::move_page`] with every shard lock already held (in index order).
    pub(crate) fn move_page_locked(
        &self,
        guards: &mut [MutexGuard<'_, Shard>],
        from: Option<usize>,
        to: Option<usize>,
    ) -> bool {
        if let Some(c) = to {
            let a = self.alloc.lock();
            if a.can_grow() {
                return true; // someone freed a page meanwhile; the retry takes it
            }
            // without page moves only a class with no page gets one (its first, which
            // memcached grants past the limit); one whose items cannot be evicted (TEMP)
            // runs out of memory, as memcached's
            if !self.tune.slab_reassign && a.classes[c].pages > 0 {
                return false;
            }
        }
        self.move_one_page(guards, from, to)
    }

    /// Class `d`'s emptiest page, when it may move: without eviction (-M) only when its
    /// items can all be relocated into free chunks of their class.
    fn movable_page(&self, a: &SlabAlloc, d: usize) -> Option<usize> {
        let p = a.pages_of(d).min_by_key(|&p| a.meta[p].used)?;
        if self.config.evict {
            return Some(p);
        }
        let m = &a.meta[p];
        let cm = &a.classes[d];
        let bump_room = match cm.bump {
            b if b != NIL && b as usize != p => {
                a.meta[b as usize].per_page - a.meta[b as usize].carved
            }
            _ => 0,
        };
        let free_elsewhere = cm.free_count.saturating_sub(m.carved - m.used);
        (free_elsewhere + bump_room >= m.used).then_some(p)
    }

    /// The class a page moves from to `to`: the one with most pages (-M: of those with a
    /// page that can move).
    fn donor(&self, a: &SlabAlloc, to: Option<usize>) -> Option<usize> {
        (0..self.classes.len())
            .filter(|&d| Some(d) != to && a.classes[d].pages > 0)
            .filter(|&d| self.config.evict || self.movable_page(a, d).is_some())
            .max_by_key(|&d| a.classes[d].pages)
    }

    /// Moves a page even when the budget has room (a reassign asks for this very move).
    fn move_one_page(
        &self,
        guards: &mut [MutexGuard<'_, Shard>],
        from: Option<usize>,
        to: Option<usize>,
    ) -> bool {
        let mut a = self.alloc.lock();
        let mem = &*self.mem;
        let donor = match from {
            Some(d) => d,
            None => match self.donor(&a, to) {
                Some(d) => d,
                None => return false,
            },
        };
        let Some(p) = self.movable_page(&a, donor) else {
            return false;
        };
        let ctx = self.ctx();
        a.detach(mem, p);
        let handles: Vec<u32> = a.chunks_of(mem, p).collect();
        for h in handles {
            let it = mem.item(h);
            if !it.is_live() {
                continue;
            }
            let hash = hash_key(it.key());
            let s = &mut *guards[self.shard_index(hash)];
            if ctx.dead(it).is_some() {
                s.cs[donor].reclaimed += 1;
                s.unlink_links(h);
            } else if let Some(nh) = a.alloc_chunk(mem, donor) {
                // relocate: same bytes, same place in the hash chain and the LRU
                it.copy_to(mem.item(nh));
                s.ht.replace(mem, hash, h, nh);
                s.lru[donor].replace(mem, h, nh);
                self.moves.rescues.fetch_add(1, Ordering::Relaxed);
            } else {
                // memcached counts these in slab_reassign_evictions_nomem only, not in
                // `evictions` (measured on 1.6.18: `slabs reassign` of a full page)
                s.unlink_links(h);
                self.moves.evictions_nomem.fetch_add(1, Ordering::Relaxed);
            }
            a.forget_chunk(mem, h);
        }
        // handles read before this move may have changed in any shard
        for g in guards.iter_mut() {
            g.gen += 1;
        }
        a.unassign(p);
        self.slabs_moved.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = to {
            if let Some(p) = a.take_pooled() {
                a.assign(mem, &self.classes, p, c);
            }
        }
        true
    }

    /// memcached's `slabs_reassign_pick_any`: the next class after the last one picked
    /// (round robin) that has two or more pages and is not `dst`.
    fn pick_any(&self, dst: Option<usize>) -> Option<usize> {
        let n = self.classes.len();
        let a = self.alloc.lock();
        for _ in 0..n {
            let c = self.moves.pick_cursor.fetch_add(1, Ordering::Relaxed) % n;
            if Some(c) != dst && a.classes[c].pages > 1 {
                return Some(c);
            }
        }
        None
    }

    /// `slabs reassign <src> <dst>` with memcached's class ids (1-based; 0 = the pool of
    /// unassigned pages; src -1 = any class with a spare page). Synchronous: the page has
    /// moved when this returns [`Reassign::Moved`].
    pub(crate) fn reassign(&self, src: i64, dst: i64) -> Reassign {
        if !self.tune.slab_reassign {
            return Reassign::Disabled;
        }
        let Some(_one) = self.moves.reassigning.try_lock() else {
            return Reassign::Busy;
        };
        if src == dst {
            return Reassign::Same;
        }
        let n = self.classes.len() as i64;
        let class = |id: i64| (id > 0).then(|| id as usize - 1);
        let src = match src {
            -1 => self.pick_any(class(dst)).map_or(-1, |c| c as i64 + 1),
            s => s,
        };
        if !(0..=n).contains(&src) || !(0..=n).contains(&dst) {
            return Reassign::BadClass;
        }
        let mut guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
        let spare = {
            let a = self.alloc.lock();
            match class(src) {
                Some(c) => a.classes[c].pages as usize,
                None => a.pool().len(),
            }
        };
        if spare < 2 {
            return Reassign::NoSpare;
        }
        match class(src) {
            Some(c) => {
                if !self.move_one_page(&mut guards, Some(c), class(dst)) {
                    return Reassign::NoSpare;
                }
            }
            None => {
                // from the pool: the page only changes hands
                let mut a = self.alloc.lock();
                if let (Some(d), Some(p)) = (class(dst), a.take_pooled()) {
                    a.assign(&self.mem, &self.classes, p, d);
                    self.slabs_moved.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Reassign::Moved
    }

    /// `cache_memlimit`: a new limit in bytes. Raising it lets allocations take more pages
    /// at once; lowering it frees pages over it ([`Core::shrink_to_limit`]): a few now, the
    /// rest by the background thread. Errors when the limit holds no page or more than the
    /// page table can name.
    pub(crate) fn set_memory_limit(&self, bytes: usize) -> Result<(), ConfigError> {
        let pages = bytes / self.config.page_size;
        if pages == 0 || pages > self.mem.capacity() {
            return Err(ConfigError(format!(
                "memory limit must hold between 1 and {} pages",
                self.mem.capacity()
            )));
        }
        {
            // both under the allocator's lock, so two changes at once cannot leave the
            // reported limit and the enforced page budget from different requests
            let mut a = self.alloc.lock();
            self.tune.memory_limit.store(bytes, Ordering::Relaxed);
            a.set_max_pages(pages);
        }
        let inline = if self.config.background {
            SHRINK_PAGES_INLINE
        } else {
            usize::MAX
        };
        if !self.shrink_to_limit(inline) && self.config.background {
            crate::background::wake(self.bg_id);
        }
        Ok(())
    }

    /// Frees pages while more exist than the memory limit allows, at most `max_moves` page
    /// moves: pooled pages first, then the emptiest page of the class with most pages
    /// (its items relocated or evicted). `true` once the pages fit the limit.
    pub(crate) fn shrink_to_limit(&self, max_moves: usize) -> bool {
        for _ in 0..max_moves {
            {
                let mut a = self.alloc.lock();
                a.release_over_budget(&self.mem);
                if a.over_budget() == 0 {
                    return true;
                }
            }
            if !self.tune.slab_reassign {
                return false; // pages with items stay (memcached: no rebalancer to empty them)
            }
            let mut guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
            if !self.move_one_page(&mut guards, None, None) {
                return false; // without eviction (-M): items that cannot move yet
            }
        }
        let mut a = self.alloc.lock();
        a.release_over_budget(&self.mem);
        a.over_budget() == 0
    }

    /// One automove decision (memcached `slab_automove=1`, simplified; 2 aggressive): see
    /// the module docs.
    pub(crate) fn automove(&self) {
        let mode = self.tune.slab_automove.load(Ordering::Relaxed);
        // memcached without slab_reassign runs no rebalancer: its automover's requests
        // are never carried out
        if mode == 0 || !self.tune.slab_reassign {
            return;
        }
        if !self.config.evict {
            // memcached's mode 2 asks for a move only when it evicts, which -M never does
            if mode == 1 {
                self.automove_to_pool();
            }
            return;
        }
        let n = self.classes.len();
        let ctx = self.ctx();
        let mut evicted = vec![0u64; n];
        let mut sets = vec![0u64; n];
        let mut age = vec![0u32; n];
        for m in self.shards.iter() {
            let s = m.lock();
            for c in 0..n {
                evicted[c] += s.cs[c].evicted;
                sets[c] += s.cs[c].cmd_set;
                let lru = &s.lru[c];
                if let Some(&t) = [COLD, WARM, HOT]
                    .iter()
                    .map(|&g| &lru.tail[g])
                    .find(|&&h| h != NIL)
                {
                    age[c] = age[c].max(ctx.rel.saturating_sub(s.mem.item(t).time()));
                }
            }
        }
        let (pages, free): (Vec<u64>, Vec<u64>) = {
            let a = self.alloc.lock();
            let pages = a.classes.iter().map(|c| c.pages as u64).collect();
            (pages, a.free_chunks(&self.classes.per_page))
        };
        let mut window = self.mover_window.lock();
        let d_ev: Vec<u64> = (0..n)
            .map(|c| evicted[c].saturating_sub(window[c].0))
            .collect();
        let d_set: Vec<u64> = (0..n)
            .map(|c| sets[c].saturating_sub(window[c].1))
            .collect();
        for c in 0..n {
            window[c] = (evicted[c], sets[c]);
        }
        drop(window);
        if mode == 2 {
            let mut evicting: Vec<usize> = (0..n).filter(|&c| d_ev[c] > 0).collect();
            evicting.sort_by_key(|&c| std::cmp::Reverse(d_ev[c]));
            for &c in evicting.iter().take(AGGRESSIVE_PAGES_PER_PASS) {
                if let Some(src) = self.pick_any(Some(c)) {
                    self.move_page(Some(src), Some(c));
                }
            }
            return;
        }
        let Some(receiver) = (0..n).filter(|&c| d_ev[c] > 0).max_by_key(|&c| d_ev[c]) else {
            return;
        };
        let ratio = crate::config::Tunables::factor(&self.tune.automove_ratio);
        let mut pages = pages;
        let mut free = free;
        for _ in 0..AUTOMOVE_PAGES_PER_PASS {
            let donor = (0..n)
                .filter(|&d| d != receiver && pages[d] > 0)
                .filter_map(|d| {
                    let free_page = free[d] >= self.classes.per_page[d] as u64;
                    // much older items (the receiver's oldest younger than `ratio` times
                    // the donor's, memcached's slab_automove_ratio), or no sets lately and
                    // items no younger than the receiver's: its memory is worth less than
                    // the evicting class's
                    let idle = d_ev[d] == 0
                        && pages[d] >= 2
                        && ((age[receiver] as f64) < age[d] as f64 * ratio
                            || (d_set[d] == 0 && age[d] >= age[receiver]));
                    (free_page || idle).then_some((free_page, age[d], pages[d], d))
                })
                .max()
                .map(|(_, _, _, d)| d);
            let Some(donor) = donor else { return };
            let moved = {
                let mut guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
                if self.alloc.lock().can_grow() {
                    return; // a page came free meanwhile: the receiver takes that one
                }
                self.move_one_page(&mut guards, Some(donor), Some(receiver))
            };
            if !moved {
                return;
            }
            // memcached logs its `slab_automove=1` moves (`watch sysevents`)
            self.sysevents.notify(&SysEvent::SlabMove {
                src: donor as u32 + 1,
                dst: receiver as u32 + 1,
            });
            pages[donor] -= 1;
            free[donor] = free[donor].saturating_sub(self.classes.per_page[donor] as u64);
        }
    }

    /// Automove 1 without eviction (-M), as memcached 1.6.18's: once a second (and again at
    /// once after a page went back), a sample of every class's evictions, `outofmemory` and
    /// pages; the first class with more than 2.5 pages' worth of free chunks that has not
    /// evicted, run out of memory or gained a page all through the window before (30
    /// samples, [`crate::Config::slab_automove_window`]) gives a page back to the pool, where any class's allocation takes it (a
    /// class that was refused for lack of memory included). Its items move into free
    /// chunks of their class (there are more than a page's worth), so none is lost. The
    /// decision rule memcached bases on ages (a page from the class with the oldest items
    /// to one that ran out of memory through half the window) is not taken: memcached's
    /// drops that page's items when they cannot move.
    fn automove_to_pool(&self) {
        let rel = self.ctx().rel;
        let ratio = self.tune.automove_ratio.load(Ordering::Relaxed);
        let mut w = self.moves.free_window.lock();
        let n = self.classes.len();
        if w.ratio != ratio || w.size == 0 {
            let first = w.size == 0;
            *w = FreeWindow {
                ratio,
                size: u64::from(self.config.slab_automove_window),
                ..FreeWindow::default()
            };
            if first {
                // memcached's automover takes its dry run as the server starts, before any
                // request: the first look compares with the store as it was made (nothing
                // stored, no page), not with what came before the first pass a second
                // later (a fill then looked clean, its page moved at once)
                w.before = vec![(0, 0, 0); n];
                w.dirty = vec![BTreeSet::new(); n];
            }
        }
        for _ in 0..POOL_PAGES_PER_PASS {
            if !w.again && w.last_check == Some(rel) {
                return;
            }
            let mut now = vec![(0u64, 0u64, 0u32); n];
            for m in self.shards.iter() {
                let s = m.lock();
                for (c, t) in now.iter_mut().enumerate() {
                    t.0 += s.cs[c].evicted;
                    t.1 += s.cs[c].outofmemory;
                }
            }
            let free: Vec<u64> = {
                let a = self.alloc.lock();
                for (t, c) in now.iter_mut().zip(&a.classes) {
                    t.2 = c.pages;
                }
                a.free_chunks(&self.classes.per_page)
            };
            let Some(src) = w.sample(&now, &free, &self.classes.per_page) else {
                w.again = false;
                w.last_check = Some(rel);
                return;
            };
            // memcached's reassign refuses a class with fewer than two pages (NOSPARE)
            let moved = {
                let mut guards: Vec<_> = self.shards.iter().map(|m| m.lock()).collect();
                self.alloc.lock().classes[src].pages >= 2
                    && self.move_one_page(&mut guards, Some(src), None)
            };
            if !moved {
                w.again = false;
                w.last_check = Some(rel);
                return;
            }
            w.again = true;
            self.sysevents.notify(&SysEvent::SlabMove {
                src: src as u32 + 1,
                dst: 0,
            });
        }
    }
}

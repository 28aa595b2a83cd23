//! The segmented LRU of memcached 1.6 (`doc/new_lru.txt`), one per slab class per shard.
//!
//! - New items enter HOT. HOT holds at most `hot_lru_pct` of the class's items; its tail
//!   flows to WARM when the item was hit twice (ACTIVE), otherwise to COLD.
//! - WARM holds at most `warm_lru_pct`; an ACTIVE tail item is requeued at the WARM head
//!   (losing ACTIVE), an idle one drops to COLD.
//! - A read never relinks: it sets FETCHED, then ACTIVE (and the access time, once per
//!   second). An ACTIVE COLD item moves to WARM when it reaches the COLD tail: at eviction
//!   time, or when `maintain()` pulls the tail (memcached moves it from its LRU maintainer
//!   thread through a bump queue; either way the request path does not pay for the relink).
//! - Eviction takes the COLD tail, then WARM, then HOT.
//!
//! One-hit keys therefore pass HOT -> COLD -> out, and a scan of them cannot push a
//! working set that is being read out of WARM.
//!
//! Besides the count limits, the background pass ([`Shard::lru_age_juggle`], memcached's
//! LRU maintainer) moves a HOT tail item older than `hot_max_factor` times the COLD tail's
//! age to COLD (an ACTIVE one to WARM), and a WARM one older than `warm_max_factor` times it.
//! `lru mode flat` ((`LruTune::segmented`) false) is memcached's flat LRU: new items go to
//! COLD, a read relinks its item at the head of its list at most once a minute, the pass
//! drains HOT and WARM into COLD, and eviction takes the COLD tail without rescuing.
//!
//! The lists are doubly linked through the items' `prev`/`next` header fields; the head is
//! the most recently linked item.

use crate::item::{Item, F_ACTIVE, F_FETCHED, NIL};
use crate::shard::{Core, Ctx, Shard};
use crate::slab::SlabMem;

pub const HOT: usize = 0;
pub const WARM: usize = 1;
pub const COLD: usize = 2;
/// memcached's TEMP LRU (`lru temp_ttl`): items whose TTL is at most `temporary_ttl` when
/// stored. Never juggled, never evicted; only reclaimed once expired.
pub const TEMP: usize = 3;

/// Items moved per juggle call and segment: enough to keep each segment within its limit
/// (every insert adds one item to HOT), little enough to keep the lock hold short.
const JUGGLE_MOVES: usize = 4;
/// Tail items examined for expiry before an allocation evicts (memcached's lru_pull_tail).
const TAIL_RECLAIM_SEARCH: usize = 5;
/// Seconds between two relinks of a read item in flat mode (memcached's
/// ITEM_UPDATE_INTERVAL).
const ITEM_UPDATE_INTERVAL: u32 = 60;

#[derive(Clone)]
pub struct Lru {
    pub head: [u32; 4],
    pub tail: [u32; 4],
    pub count: [u32; 4],
}

impl Default for Lru {
    fn default() -> Self {
        Lru {
            head: [NIL; 4],
            tail: [NIL; 4],
            count: [0; 4],
        }
    }
}

impl Lru {
    /// Links `h` at the head of segment `seg`.
    pub fn link(&mut self, slab: &SlabMem, seg: usize, h: u32) {
        let it = slab.item(h);
        it.set_seg(seg);
        it.set_prev(NIL);
        it.set_next(self.head[seg]);
        if self.head[seg] != NIL {
            slab.item(self.head[seg]).set_prev(h);
        } else {
            self.tail[seg] = h;
        }
        self.head[seg] = h;
        self.count[seg] += 1;
    }

    pub fn unlink(&mut self, slab: &SlabMem, h: u32) {
        let it = slab.item(h);
        let seg = it.seg();
        let (p, n) = (it.prev(), it.next());
        if p != NIL {
            slab.item(p).set_next(n);
        } else {
            self.head[seg] = n;
        }
        if n != NIL {
            slab.item(n).set_prev(p);
        } else {
            self.tail[seg] = p;
        }
        self.count[seg] -= 1;
    }

    /// `new` (a byte copy of `old`) takes `old`'s place in its list.
    pub fn replace(&mut self, slab: &SlabMem, old: u32, new: u32) {
        let it = slab.item(new);
        let seg = it.seg();
        let (p, n) = (it.prev(), it.next());
        if p != NIL {
            slab.item(p).set_next(new);
        } else {
            debug_assert_eq!(self.head[seg], old);
            self.head[seg] = new;
        }
        if n != NIL {
            slab.item(n).set_prev(new);
        } else {
            debug_assert_eq!(self.tail[seg], old);
            self.tail[seg] = new;
        }
    }

    pub fn total(&self) -> u32 {
        self.count.iter().sum()
    }

    /// Items eviction may take (all but TEMP's).
    pub fn evictable(&self) -> u32 {
        self.count[HOT] + self.count[WARM] + self.count[COLD]
    }
}

impl Shard {
    /// Links a new item at the HOT head and keeps the segments within their limits (flat
    /// mode: at the COLD head). With a TEMP LRU (`lru temp_ttl`), an item expiring within
    /// `temp_ttl` seconds of `now` goes there instead (memcached compares the unsigned
    /// difference, so an item that never expires is never TEMP).
    pub(crate) fn lru_link_new(&mut self, c: usize, h: u32, now: u32) {
        let t = self.lru_tune;
        if let Some(ttl) = t.temp_ttl {
            let e = self.mem.item(h).exptime();
            if e != 0 && e.wrapping_sub(now) <= ttl {
                self.lru[c].link(&self.mem, TEMP, h);
                return;
            }
        }
        if !t.segmented {
            self.lru[c].link(&self.mem, COLD, h);
            return;
        }
        self.lru[c].link(&self.mem, HOT, h);
        self.lru_juggle(c, t.hot_pct, t.warm_pct);
    }

    /// Moves HOT and WARM tails on when the segments exceed their share of the class.
    pub(crate) fn lru_juggle(&mut self, c: usize, hot_pct: u32, warm_pct: u32) {
        let total = self.lru[c].evictable() as u64;
        let hot_limit = total * hot_pct as u64 / 100;
        let warm_limit = total * warm_pct as u64 / 100;
        let mut moved = 0;
        for _ in 0..JUGGLE_MOVES {
            if self.lru[c].count[HOT] as u64 <= hot_limit {
                break;
            }
            let h = self.lru[c].tail[HOT];
            let it = self.mem.item(h);
            self.lru[c].unlink(&self.mem, h);
            if it.has(F_ACTIVE) {
                it.set_flag(F_ACTIVE, false);
                self.lru[c].link(&self.mem, WARM, h);
                self.cs[c].moves_to_warm += 1;
            } else {
                self.lru[c].link(&self.mem, COLD, h);
                self.cs[c].moves_to_cold += 1;
            }
            moved += 1;
        }
        for _ in 0..JUGGLE_MOVES {
            if self.lru[c].count[WARM] as u64 <= warm_limit {
                break;
            }
            let h = self.lru[c].tail[WARM];
            let it = self.mem.item(h);
            self.lru[c].unlink(&self.mem, h);
            if it.has(F_ACTIVE) {
                it.set_flag(F_ACTIVE, false);
                self.lru[c].link(&self.mem, WARM, h);
                self.cs[c].moves_within_lru += 1;
            } else {
                self.lru[c].link(&self.mem, COLD, h);
                self.cs[c].moves_to_cold += 1;
            }
            moved += 1;
        }
        self.st.lru_juggles += moved;
    }

    /// A fetch: the first marks FETCHED, the next ACTIVE. Only the item's own header is
    /// written (and only when something changes); an ACTIVE COLD item moves to WARM later,
    /// from the COLD tail ([`Shard::lru_pull_cold`]).
    #[inline]
    pub(crate) fn lru_bump(&mut self, h: u32, rel: u32) {
        if !self.lru_tune.segmented {
            return self.lru_bump_flat(h, rel);
        }
        let it = self.mem.item(h);
        if it.time() != rel.min(crate::item::TIME_MASK) {
            it.set_time(rel); // only on change: repeated hits leave the cache line clean
        }
        if it.has(F_ACTIVE) {
            return;
        }
        if !it.has(F_FETCHED) {
            it.set_flag(F_FETCHED, true);
        } else {
            it.set_flag(F_ACTIVE, true);
        }
    }

    /// A fetch in flat mode (memcached's do_item_update): FETCHED, and the item is relinked
    /// at the head of its list, with its time, when its time is a minute old.
    fn lru_bump_flat(&mut self, h: u32, rel: u32) {
        let it = self.mem.item(h);
        if !it.has(F_FETCHED) {
            it.set_flag(F_FETCHED, true);
        }
        if it.time().saturating_add(ITEM_UPDATE_INTERVAL) < rel.min(crate::item::TIME_MASK) {
            let c = self.class_of(h);
            let seg = it.seg();
            self.lru[c].unlink(&self.mem, h);
            self.lru[c].link(&self.mem, seg, h);
            it.set_time(rel);
        }
    }

    /// memcached's LRU maintainer juggle for class `c`, up to `max` moves per list: a HOT
    /// tail that is ACTIVE moves to WARM, one older than `hot_factor` times the COLD tail's
    /// age to COLD; a WARM tail that is ACTIVE is requeued, one older than `warm_factor`
    /// times that age goes to COLD. In flat mode HOT and WARM drain into COLD. Returns how
    /// many moved.
    pub(crate) fn lru_age_juggle(
        &mut self,
        c: usize,
        rel: u32,
        hot_factor: f64,
        warm_factor: f64,
        max: usize,
    ) -> usize {
        let segmented = self.lru_tune.segmented;
        let cold_tail = self.lru[c].tail[COLD];
        let cold_age = match cold_tail {
            NIL => 0,
            t => rel.saturating_sub(self.mem.item(t).time()),
        };
        // memcached converts the products to its unsigned rel_time_t; flat mode: 0
        let limit = |f: f64| {
            if segmented {
                (cold_age as f64 * f).clamp(0.0, u32::MAX as f64) as u32
            } else {
                0
            }
        };
        let (hot_age, warm_age) = (limit(hot_factor), limit(warm_factor));
        let mut moved = 0;
        for (seg, max_age) in [(HOT, hot_age), (WARM, warm_age)] {
            for _ in 0..max {
                let h = self.lru[c].tail[seg];
                if h == NIL {
                    break;
                }
                let it = self.mem.item(h);
                let to = if it.has(F_ACTIVE) && segmented {
                    WARM
                } else if !segmented || rel.saturating_sub(it.time()) > max_age {
                    COLD
                } else {
                    break;
                };
                it.set_flag(F_ACTIVE, false);
                self.lru[c].unlink(&self.mem, h);
                self.lru[c].link(&self.mem, to, h);
                match (seg, to) {
                    (_, COLD) => self.cs[c].moves_to_cold += 1,
                    (HOT, _) => self.cs[c].moves_to_warm += 1,
                    _ => self.cs[c].moves_within_lru += 1,
                }
                moved += 1;
            }
        }
        self.st.lru_juggles += moved as u64;
        moved
    }

    /// Moves up to `max` ACTIVE items at the COLD tail to WARM (losing ACTIVE), stopping at
    /// the first idle one, then keeps WARM within its limit. Returns how many moved.
    pub(crate) fn lru_pull_cold(&mut self, c: usize, max: usize, warm_pct: u32) -> usize {
        if !self.lru_tune.segmented {
            return 0;
        }
        let mut moved = 0;
        while moved < max {
            let h = self.lru[c].tail[COLD];
            if h == NIL || !self.mem.item(h).has(F_ACTIVE) {
                break;
            }
            self.lru[c].unlink(&self.mem, h);
            self.mem.item(h).set_flag(F_ACTIVE, false);
            self.lru[c].link(&self.mem, WARM, h);
            self.cs[c].moves_to_warm += 1;
            moved += 1;
        }
        if moved > 0 {
            self.lru_juggle(c, 100, warm_pct);
        }
        moved
    }

    /// Frees expired or flushed items found near the LRU tails of class `c` (memory reuse
    /// counted as `reclaimed`). Returns whether any chunk was freed.
    pub(crate) fn lru_reclaim_tails(&mut self, core: &Core, ctx: &Ctx, c: usize) -> bool {
        let mut freed = false;
        for seg in [COLD, HOT, WARM, TEMP] {
            let mut h = self.lru[c].tail[seg];
            for _ in 0..TAIL_RECLAIM_SEARCH {
                if h == NIL {
                    break;
                }
                let it = self.mem.item(h);
                let prev = it.prev();
                if ctx.dead(it).is_some() {
                    // memcached's lru_pull_tail counts a flushed item never read as it counts
                    // an expired one
                    self.cs[c].reclaimed += 1;
                    if !it.has(F_FETCHED) {
                        self.cs[c].expired_unfetched += 1;
                    }
                    self.unlink_item(core, h);
                    freed = true;
                }
                h = prev;
            }
        }
        freed
    }

    /// Unlinks flushed items from the tails of every class and segment, each tail until a
    /// live item, at most `max` in all (memcached's LRU maintainer, which reaps them at
    /// the tails: `reclaimed`, and `expired_unfetched` for one never read). Returns how
    /// many it unlinked.
    pub(crate) fn lru_reap_flushed_tails(&mut self, core: &Core, ctx: &Ctx, max: usize) -> usize {
        let mut reaped = 0;
        for c in 0..self.lru.len() {
            for seg in [HOT, WARM, COLD, TEMP] {
                while reaped < max {
                    let h = self.lru[c].tail[seg];
                    if h == NIL || ctx.dead(self.mem.item(h)) != Some(crate::shard::Dead::Flushed) {
                        break;
                    }
                    self.cs[c].reclaimed += 1;
                    if !self.mem.item(h).has(F_FETCHED) {
                        self.cs[c].expired_unfetched += 1;
                    }
                    self.unlink_item(core, h);
                    reaped += 1;
                }
            }
        }
        reaped
    }

    /// Evicts the least valuable item of class `c`: the COLD tail once its ACTIVE items
    /// have moved to WARM, then WARM, then HOT.
    pub(crate) fn lru_evict(&mut self, core: &Core, ctx: &Ctx, c: usize) -> bool {
        // every ACTIVE item at the tail moves first (each move clears ACTIVE, so the work is
        // paid once per item per two reads, not per eviction; `maintain()` moves some ahead)
        self.lru_pull_cold(c, usize::MAX, self.lru_tune.warm_pct);
        // the pinned item (an append's old item) is passed over, as memcached's tail walk
        // skips an item whose lock is held
        let pinned = self.pinned;
        let Some(h) = [COLD, WARM, HOT]
            .iter()
            .map(|&s| match self.lru[c].tail[s] {
                t if t == pinned && t != NIL => self.mem.item(t).prev(),
                t => t,
            })
            .find(|&h| h != NIL)
        else {
            return false;
        };
        let it = self.mem.item(h);
        self.count_eviction(ctx, c, it);
        if core.evictions.any() {
            core.evictions.notify(|| crate::eviction::Eviction {
                key: it.key(),
                fetched: it.has(F_FETCHED),
                ttl: match it.exptime() {
                    0 => -1,
                    e => e as i64 - ctx.now as i64,
                },
                last_access: ctx.rel.saturating_sub(it.time()),
                class_id: c as u32 + 1,
                value_len: it.value().len(),
            });
        }
        self.unlink_item(core, h);
        true
    }

    pub(crate) fn count_eviction(&mut self, ctx: &Ctx, c: usize, it: Item) {
        let cs = &mut self.cs[c];
        cs.evicted += 1;
        cs.evicted_time = ctx.rel.saturating_sub(it.time());
        if it.exptime() != 0 {
            cs.evicted_nonzero += 1;
        }
        if !it.has(F_FETCHED) {
            cs.evicted_unfetched += 1;
        }
        self.gen += 1;
    }
}

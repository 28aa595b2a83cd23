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
//!   So memory follows the value-size mix instead of calcifying.

use crate::hashtable::hash_key;
use crate::item::NIL;
use crate::lru::{COLD, HOT, WARM};
use crate::shard::{Core, Shard};
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;

/// Pages automove moves per `maintain` pass.
const AUTOMOVE_PAGES_PER_PASS: usize = 2;

impl Core {
    /// Makes room in class `c` for shard `si`, which holds no lock now and found nothing of
    /// the class to evict (it may have some again by now: then it is a candidate too).
    /// `false` when nothing could be done.
    pub(crate) fn make_room(&self, _si: usize, c: usize) -> bool {
        let mut best: Option<(usize, u32)> = None;
        for (i, m) in self.shards.iter().enumerate() {
            let n = m.lock().lru[c].total();
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
        let best = (0..guards.len())
            .filter(|&i| guards[i].lru[c].total() > 0)
            .max_by_key(|&i| guards[i].lru[c].total());
        match best {
            Some(t) => {
                let ctx = self.ctx();
                let s = &mut *guards[t];
                s.lru_reclaim_tails(self, &ctx, c) || s.lru_evict(self, &ctx, c)
            }
            None => self.move_page_locked(guards, None, Some(c)),
        }
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
        let mut a = self.alloc.lock();
        let mem = &*self.mem;
        if to.is_some() && a.can_grow() {
            return true; // someone freed a page meanwhile; the retry takes it
        }
        let donor = match from {
            Some(d) => d,
            None => match (0..self.classes.len())
                .filter(|&d| Some(d) != to && a.classes[d].pages > 0)
                .max_by_key(|&d| a.classes[d].pages)
            {
                Some(d) => d,
                None => return false,
            },
        };
        let Some(p) = a.pages_of(donor).min_by_key(|&p| a.meta[p].used) else {
            return false;
        };
        if !self.config.evict {
            // without eviction (-M) a page may move only when its items can all be relocated
            let m = &a.meta[p];
            let cm = &a.classes[donor];
            let bump_room = match cm.bump {
                b if b != NIL && b as usize != p => {
                    a.meta[b as usize].per_page - a.meta[b as usize].carved
                }
                _ => 0,
            };
            let free_elsewhere = cm.free_count.saturating_sub(m.carved - m.used);
            if free_elsewhere + bump_room < m.used {
                return false;
            }
        }
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
            } else {
                s.count_eviction(&ctx, donor, it);
                s.unlink_links(h);
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

    /// One automove decision (memcached `slab_automove=1`, simplified): see the module docs.
    pub(crate) fn automove(&self) {
        if !self.config.slab_automove || !self.config.evict {
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
            let mut used = vec![0u64; n];
            for m in a.meta.iter() {
                if let Some(u) = used.get_mut(m.class as usize) {
                    *u += m.used as u64;
                }
            }
            (0..n)
                .map(|c| {
                    let p = a.classes[c].pages as u64;
                    (p, p * self.classes.per_page[c] as u64 - used[c])
                })
                .unzip()
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
        let Some(receiver) = (0..n).filter(|&c| d_ev[c] > 0).max_by_key(|&c| d_ev[c]) else {
            return;
        };
        let mut pages = pages;
        let mut free = free;
        for _ in 0..AUTOMOVE_PAGES_PER_PASS {
            let donor = (0..n)
                .filter(|&d| d != receiver && pages[d] > 0)
                .filter_map(|d| {
                    let free_page = free[d] >= self.classes.per_page[d] as u64;
                    // much older items, or no sets lately and items no younger than the
                    // receiver's: its memory is worth less than the evicting class's
                    let idle = d_ev[d] == 0
                        && pages[d] >= 2
                        && (age[d] > age[receiver].saturating_mul(2)
                            || (d_set[d] == 0 && age[d] >= age[receiver]));
                    (free_page || idle).then_some((free_page, age[d], pages[d], d))
                })
                .max()
                .map(|(_, _, _, d)| d);
            let Some(donor) = donor else { return };
            if !self.move_page(Some(donor), Some(receiver)) {
                return;
            }
            pages[donor] -= 1;
            free[donor] = free[donor].saturating_sub(self.classes.per_page[donor] as u64);
        }
    }
}

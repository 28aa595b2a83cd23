//! The slab page mover (memcached's slab_rebalance / slab_automove).
//!
//! A page leaves a class in three steps: it is detached (its free chunks leave the free list,
//! it stops being the bump page), each live item on it is relocated into a free chunk of the
//! same class elsewhere or, when there is none, evicted, and the empty page goes to another
//! class or to the store-wide pool.
//!
//! It runs in two situations:
//! - synchronously, when an allocation finds its class without any item to evict and the
//!   budget exhausted (the class has no page at all): a page comes from another class of
//!   the same shard, or from the fullest other shard via the pool;
//! - from [`Core::automove`] (each `maintain` pass): when a class evicted during the last
//!   window while another class has a page's worth of free chunks or sat idle (no sets, no
//!   evictions) with older items, one of the idle class's pages moves to the pool, where the
//!   evicting class picks it up on its next allocation. So memory follows the size mix.

use crate::hashtable::hash_key;
use crate::item::NIL;
use crate::lru::{COLD, HOT, WARM};
use crate::shard::{Core, Ctx, Shard};
use crate::slab::Page;
use std::sync::atomic::Ordering;

/// Pages automove moves per `maintain` pass.
const AUTOMOVE_PAGES_PER_PASS: usize = 2;

impl Shard {
    /// Empties the page of the class with most pages here (other than `except`) and takes it.
    pub(crate) fn release_any_page(
        &mut self,
        core: &Core,
        ctx: &Ctx,
        except: Option<usize>,
    ) -> Option<Page> {
        let donor = (0..self.slab.classes.len())
            .filter(|&c| Some(c) != except && self.slab.classes[c].pages > 0)
            .max_by_key(|&c| self.slab.classes[c].pages)?;
        self.release_page_of(core, ctx, donor)
    }

    /// Empties the least used page of class `c` (relocating what fits elsewhere in the class,
    /// evicting the rest) and takes it away from the class.
    pub(crate) fn release_page_of(&mut self, core: &Core, ctx: &Ctx, c: usize) -> Option<Page> {
        let slot = self
            .slab
            .live_slots()
            .filter(|&s| self.slab.slots[s].class == c)
            .min_by_key(|&s| self.slab.slots[s].used)?;
        let ps = &self.slab.slots[slot];
        if !core.config.evict {
            // without eviction (-M) a page may only move when all its items can be relocated
            let cm = &self.slab.classes[c];
            let free_here = ps.carved - ps.used;
            let bump_room = if cm.bump != NIL && cm.bump as usize != slot {
                let b = &self.slab.slots[cm.bump as usize];
                b.per_page - b.carved
            } else {
                0
            };
            if cm.free_count - free_here + bump_room < ps.used {
                return None;
            }
        }
        self.slab.detach(slot);
        let handles: Vec<u32> = self.slab.chunks_of(slot).collect();
        for h in handles {
            let it = self.slab.item(h);
            if !it.is_live() {
                continue;
            }
            if ctx.dead(it).is_some() {
                self.cs[c].reclaimed += 1;
                self.unlink_links(h);
            } else if let Some(nh) = self.slab.alloc_chunk(c) {
                // relocate: same bytes, same place in the hash chain and the LRU
                it.copy_to(self.slab.item(nh));
                self.ht.replace(&self.slab, hash_key(it.key()), h, nh);
                self.lru[c].replace(&self.slab, h, nh);
            } else {
                self.count_eviction(ctx, c, it);
                self.unlink_links(h);
            }
            self.slab.forget_chunk(h);
        }
        // handles on this page are gone even when every item was relocated
        self.gen += 1;
        self.st.slabs_moved += 1;
        let page = self.slab.remove_page(slot);
        self.note_pages(core);
        Some(page)
    }
}

impl Core {
    /// Makes the fullest shard other than `exclude` give a page to the pool.
    pub(crate) fn steal_page(&self, exclude: usize) -> bool {
        let Some(j) = (0..self.shards.len())
            .filter(|&j| j != exclude && self.shard_pages[j].load(Ordering::Relaxed) > 0)
            .max_by_key(|&j| self.shard_pages[j].load(Ordering::Relaxed))
        else {
            return false;
        };
        let ctx = self.ctx();
        let page = self.shards[j].lock().release_any_page(self, &ctx, None);
        match page {
            Some(p) => {
                self.budget.give(p);
                true
            }
            None => false,
        }
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
        let mut pages = vec![0u64; n];
        let mut free = vec![0u64; n];
        let mut age = vec![0u32; n];
        for m in self.shards.iter() {
            let s = m.lock();
            for c in 0..n {
                evicted[c] += s.cs[c].evicted;
                sets[c] += s.cs[c].cmd_set;
                let cm = &s.slab.classes[c];
                pages[c] += cm.pages as u64;
                let lru = &s.lru[c];
                if let Some(&t) = [COLD, WARM, HOT]
                    .iter()
                    .map(|&g| &lru.tail[g])
                    .find(|&&h| h != NIL)
                {
                    age[c] = age[c].max(ctx.rel.saturating_sub(s.slab.item(t).time()));
                }
            }
            for slot in s.slab.live_slots() {
                let ps = &s.slab.slots[slot];
                free[ps.class] += (ps.per_page - ps.used) as u64;
            }
        }
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
        for _ in 0..AUTOMOVE_PAGES_PER_PASS {
            let donor = (0..n)
                .filter(|&d| d != receiver && pages[d] > 0)
                .filter_map(|d| {
                    let free_page = free[d] >= self.classes.per_page[d] as u64;
                    let idle = d_ev[d] == 0
                        && pages[d] >= 2
                        && (d_set[d] == 0 || age[d] > age[receiver].saturating_mul(2));
                    (free_page || idle).then_some((free_page, age[d], pages[d], d))
                })
                .max()
                .map(|(_, _, _, d)| d);
            let Some(donor) = donor else { return };
            // the shard where the donor class holds most pages gives one up
            let Some(si) = (0..self.shards.len())
                .max_by_key(|&i| self.shards[i].lock().slab.classes[donor].pages)
            else {
                return;
            };
            let ctx = self.ctx();
            let page = self.shards[si].lock().release_page_of(self, &ctx, donor);
            match page {
                Some(p) => {
                    self.budget.give(p);
                    pages[donor] -= 1;
                    free[donor] = free[donor].saturating_sub(self.classes.per_page[donor] as u64);
                }
                None => return,
            }
        }
    }
}

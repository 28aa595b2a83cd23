//! Slab memory: size classes, 1 MiB pages, the store-wide page budget, and each shard's
//! page table with per-class free lists.
//!
//! Classes follow memcached's `slabs_init`: the smallest chunk is 48 + `slab_min_size`
//! bytes, each next one `growth_factor` times larger, 8-byte aligned, and the last class is
//! a whole page. Pages are zeroed allocations carved lazily (a bump index per page), so a
//! page's untouched tail costs no resident memory. A chunk is named by a u32 handle:
//! page slot in the high bits, chunk index in the low `chunk_bits`.

use crate::item::{Item, NIL};
use crate::Config;
use parking_lot::Mutex;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

const CHUNK_ALIGN: usize = 8;

/// The chunk sizes of a store (shared by all shards).
#[derive(Debug, Clone)]
pub struct SlabClasses {
    /// Chunk size per class; index 0 is memcached's class 1.
    pub sizes: Vec<u32>,
    pub per_page: Vec<u32>,
    /// Largest item total (header + key + value) accepted.
    pub item_max: usize,
}

impl SlabClasses {
    pub fn new(cfg: &Config) -> SlabClasses {
        let page = cfg.page_size;
        let mut sizes = Vec::new();
        let mut size = 48 + cfg.slab_min_size;
        // memcached stops one growth step short of the largest chunk, then adds a full page.
        while sizes.len() < 62 && (size as f64) < page as f64 / cfg.growth_factor {
            if !size.is_multiple_of(CHUNK_ALIGN) {
                size += CHUNK_ALIGN - size % CHUNK_ALIGN;
            }
            sizes.push(size as u32);
            size = (size as f64 * cfg.growth_factor) as usize;
        }
        sizes.push(page as u32);
        let per_page = sizes.iter().map(|&s| (page / s as usize) as u32).collect();
        SlabClasses {
            sizes,
            per_page,
            item_max: cfg.item_size_max.min(page),
        }
    }

    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// The smallest class whose chunk holds `total` bytes, or `None` when too large.
    pub fn class_for(&self, total: usize) -> Option<usize> {
        if total > self.item_max {
            return None;
        }
        let i = self.sizes.partition_point(|&s| (s as usize) < total);
        (i < self.sizes.len()).then_some(i)
    }

    /// Bits needed for a chunk index inside a page.
    pub fn chunk_bits(&self) -> u32 {
        let most = self.per_page.iter().copied().max().unwrap_or(1);
        32 - most.leading_zeros()
    }
}

/// One page of zeroed memory. Freed only when the store is dropped; the mover hands pages
/// from class to class (and shard to shard) without returning them to the allocator.
pub struct Page {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: a Page is plain memory owned by exactly one shard (or the pool) at a time.
unsafe impl Send for Page {}

impl Page {
    fn new(size: usize) -> Page {
        let layout = Layout::from_size_align(size, CHUNK_ALIGN).expect("page layout");
        // SAFETY: size is non-zero (validated config); zeroed so untouched memory stays lazy.
        let p = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Page { ptr, size }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size, CHUNK_ALIGN).expect("page layout");
        // SAFETY: allocated in Page::new with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

/// The store-wide page budget: at most `max_pages` pages ever exist; pages the mover frees
/// wait in the pool until some shard's class needs one.
pub struct PageBudget {
    page_size: usize,
    max_pages: usize,
    allocated: AtomicUsize,
    pool: Mutex<Vec<Page>>,
}

impl PageBudget {
    pub fn new(memory_limit: usize, page_size: usize) -> PageBudget {
        PageBudget {
            page_size,
            max_pages: memory_limit / page_size,
            allocated: AtomicUsize::new(0),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// A page from the pool, else a fresh one while the budget allows.
    pub fn take(&self) -> Option<Page> {
        if let Some(p) = self.pool.lock().pop() {
            return Some(p);
        }
        let mut cur = self.allocated.load(Ordering::Relaxed);
        loop {
            if cur >= self.max_pages {
                return None;
            }
            match self.allocated.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Page::new(self.page_size)),
                Err(seen) => cur = seen,
            }
        }
    }

    pub fn give(&self, p: Page) {
        self.pool.lock().push(p);
    }

    /// Pages that exist (in shards or in the pool); never more than `max_pages`.
    pub fn allocated(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    pub fn pool_len(&self) -> usize {
        self.pool.lock().len()
    }
}

/// A page as a shard holds it: which class carves it and how far.
pub struct PageSlot {
    page: Option<Page>,
    base: *mut u8,
    pub class: usize,
    pub chunk_size: u32,
    pub per_page: u32,
    /// Chunks handed out so far (the rest were never touched).
    pub carved: u32,
    /// Chunks holding a live item.
    pub used: u32,
}

/// Per class, per shard: free list (threaded through the chunks' h_next) and bump page.
#[derive(Clone)]
pub struct ClassMem {
    pub free_head: u32,
    pub free_count: u32,
    pub bump: u32,
    pub pages: u32,
    /// Sum of item totals in the class (memcached's mem_requested).
    pub requested: u64,
}

/// One shard's pages.
pub struct Slab {
    pub slots: Vec<PageSlot>,
    empty_slots: Vec<u32>,
    pub classes: Vec<ClassMem>,
    chunk_bits: u32,
    chunk_mask: u32,
    max_slots: usize,
}

// SAFETY: the raw base pointers point into Pages the Slab owns.
unsafe impl Send for Slab {}

impl Slab {
    pub fn new(classes: &SlabClasses) -> Slab {
        let chunk_bits = classes.chunk_bits();
        Slab {
            slots: Vec::new(),
            empty_slots: Vec::new(),
            classes: vec![
                ClassMem {
                    free_head: NIL,
                    free_count: 0,
                    bump: NIL,
                    pages: 0,
                    requested: 0
                };
                classes.len()
            ],
            chunk_bits,
            chunk_mask: (1u32 << chunk_bits) - 1,
            // handle NIL (all ones) must never be a real chunk
            max_slots: ((1u64 << (32 - chunk_bits)) - 1) as usize,
        }
    }

    #[inline]
    pub fn handle(&self, slot: usize, idx: u32) -> u32 {
        ((slot as u32) << self.chunk_bits) | idx
    }

    #[inline]
    pub fn slot_of(&self, h: u32) -> usize {
        (h >> self.chunk_bits) as usize
    }

    /// The item in chunk `h`.
    #[inline]
    pub fn item(&self, h: u32) -> Item {
        let s = &self.slots[(h >> self.chunk_bits) as usize];
        let idx = (h & self.chunk_mask) as usize;
        debug_assert!(s.page.is_some() && (idx as u32) < s.carved);
        // SAFETY: the handle names a carved chunk of a page this slab owns.
        unsafe { Item::from_ptr(s.base.add(idx * s.chunk_size as usize)) }
    }

    /// Pages this shard holds.
    pub fn page_count(&self) -> usize {
        self.slots.len() - self.empty_slots.len()
    }

    /// A chunk of class `c`, from the free list or the bump page; `None` when both are empty.
    pub fn alloc_chunk(&mut self, c: usize) -> Option<u32> {
        let cm = &self.classes[c];
        if cm.free_head != NIL {
            let h = cm.free_head;
            let next = self.item(h).h_next();
            let slot = self.slot_of(h);
            self.classes[c].free_head = next;
            self.classes[c].free_count -= 1;
            self.slots[slot].used += 1;
            return Some(h);
        }
        if cm.bump != NIL {
            let slot = cm.bump as usize;
            let s = &mut self.slots[slot];
            if s.carved < s.per_page {
                let idx = s.carved;
                s.carved += 1;
                s.used += 1;
                if s.carved == s.per_page {
                    self.classes[c].bump = NIL;
                }
                return Some(self.handle(slot, idx));
            }
            self.classes[c].bump = NIL;
        }
        None
    }

    /// Returns a chunk whose item has been unlinked everywhere.
    pub fn free_chunk(&mut self, h: u32) {
        let slot = self.slot_of(h);
        let c = self.slots[slot].class;
        let it = self.item(h);
        it.clear();
        it.set_h_next(self.classes[c].free_head);
        self.classes[c].free_head = h;
        self.classes[c].free_count += 1;
        self.slots[slot].used -= 1;
    }

    /// Gives class `c` a page to carve; `Err(page)` when the handle space is full.
    pub fn add_page(&mut self, c: usize, page: Page, classes: &SlabClasses) -> Result<(), Page> {
        let slot = match self.empty_slots.pop() {
            Some(s) => s as usize,
            None if self.slots.len() < self.max_slots => {
                self.slots.push(PageSlot {
                    page: None,
                    base: std::ptr::null_mut(),
                    class: 0,
                    chunk_size: 0,
                    per_page: 0,
                    carved: 0,
                    used: 0,
                });
                self.slots.len() - 1
            }
            None => return Err(page),
        };
        let s = &mut self.slots[slot];
        s.base = page.ptr.as_ptr();
        s.page = Some(page);
        s.class = c;
        s.chunk_size = classes.sizes[c];
        s.per_page = classes.per_page[c];
        s.carved = 0;
        s.used = 0;
        self.classes[c].pages += 1;
        // a page whose class has a half-carved bump page keeps it; free chunks go first anyway
        self.classes[c].bump = slot as u32;
        Ok(())
    }

    /// Stops class `c` from handing out chunks of page `slot` (first step of a page move):
    /// its free chunks leave the free list and it is no longer the bump page.
    pub fn detach(&mut self, slot: usize) {
        let c = self.slots[slot].class;
        let mut h = self.classes[c].free_head;
        let mut kept_head = NIL;
        let mut kept_tail = NIL;
        let mut kept = 0;
        while h != NIL {
            let next = self.item(h).h_next();
            if self.slot_of(h) != slot {
                if kept_tail == NIL {
                    kept_head = h;
                } else {
                    self.item(kept_tail).set_h_next(h);
                }
                kept_tail = h;
                kept += 1;
            }
            h = next;
        }
        if kept_tail != NIL {
            self.item(kept_tail).set_h_next(NIL);
        }
        let cm = &mut self.classes[c];
        cm.free_head = kept_head;
        cm.free_count = kept;
        if cm.bump == slot as u32 {
            cm.bump = NIL;
        }
    }

    /// Marks a chunk of a detached page empty without putting it on the free list.
    pub fn forget_chunk(&mut self, h: u32) {
        let slot = self.slot_of(h);
        self.item(h).clear();
        self.slots[slot].used -= 1;
    }

    /// Takes a detached page with no live item left away from its class.
    pub fn remove_page(&mut self, slot: usize) -> Page {
        debug_assert_eq!(self.slots[slot].used, 0);
        let c = self.slots[slot].class;
        self.classes[c].pages -= 1;
        let s = &mut self.slots[slot];
        s.base = std::ptr::null_mut();
        s.carved = 0;
        self.empty_slots.push(slot as u32);
        s.page.take().expect("slot holds a page")
    }

    /// Slots that hold a page.
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.page.is_some())
            .map(|(i, _)| i)
    }

    /// Handles of the carved chunks of one page (live or free).
    pub fn chunks_of(&self, slot: usize) -> impl Iterator<Item = u32> + '_ {
        let carved = if self.slots[slot].page.is_some() {
            self.slots[slot].carved
        } else {
            0
        };
        (0..carved).map(move |i| self.handle(slot, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_memcached_defaults() {
        let c = SlabClasses::new(&Config::default());
        assert_eq!(&c.sizes[..7], &[96, 120, 152, 192, 240, 304, 384]);
        assert_eq!(*c.sizes.last().unwrap(), 1 << 20);
        assert_eq!(c.per_page[2], (1 << 20) / 152);
        assert_eq!(c.class_for(152), Some(2));
        assert_eq!(c.class_for(153), Some(3));
        assert_eq!(c.class_for(1), Some(0));
        assert_eq!(c.class_for((1 << 20) + 1), None);
        assert!(c.sizes.windows(2).all(|w| w[0] < w[1] && w[0] % 8 == 0));
    }

    #[test]
    fn budget_never_hands_out_more_pages_than_the_limit() {
        let b = PageBudget::new(3 << 20, 1 << 20);
        let pages: Vec<_> = std::iter::from_fn(|| b.take()).take(10).collect();
        assert_eq!(pages.len(), 3);
        assert_eq!(b.allocated(), 3);
        for p in pages {
            b.give(p);
        }
        assert_eq!(b.pool_len(), 3);
        assert!(b.take().is_some());
        assert_eq!(b.allocated(), 3);
    }

    #[test]
    fn chunks_come_from_free_list_then_bump_and_pages_can_leave() {
        let cfg = Config::default();
        let classes = SlabClasses::new(&cfg);
        let budget = PageBudget::new(2 << 20, 1 << 20);
        let mut slab = Slab::new(&classes);
        assert_eq!(slab.alloc_chunk(0), None);
        slab.add_page(0, budget.take().unwrap(), &classes)
            .ok()
            .unwrap();
        let a = slab.alloc_chunk(0).unwrap();
        let b = slab.alloc_chunk(0).unwrap();
        assert_ne!(a, b);
        slab.item(a).init(b"k", 1, 0, 0, 1, 0);
        slab.item(b).init(b"j", 1, 0, 0, 2, 0);
        slab.free_chunk(a);
        assert_eq!(slab.classes[0].free_count, 1);
        assert_eq!(slab.alloc_chunk(0), Some(a));
        slab.free_chunk(a);
        slab.free_chunk(b);
        assert_eq!(slab.slots[0].used, 0);
        slab.detach(0);
        let page = slab.remove_page(0);
        assert_eq!(slab.classes[0].free_count, 0);
        assert_eq!(slab.page_count(), 0);
        assert_eq!(slab.alloc_chunk(0), None);
        slab.add_page(5, page, &classes).ok().unwrap();
        assert_eq!(slab.slots[0].class, 5);
        assert!(slab.alloc_chunk(5).is_some());
    }
}

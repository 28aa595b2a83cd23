//! Slab memory (memcached's slabs.c): size classes, 1 MiB pages, the store-wide page budget
//! and the per-class free lists, shared by all shards.
//!
//! Classes follow memcached's `slabs_init`: the smallest chunk is 48 + `slab_min_size`
//! bytes, each next one `growth_factor` times larger, 8-byte aligned, up to memcached's
//! `slab_chunk_max` class; explicit sizes (memcached's `-o slab_sizes`) replace the series.
//! Larger items, which memcached chunks, take classes of their own (the series on while a
//! page holds two chunks, then a whole page). Pages are zeroed memory (each its own
//! mapping on unix) carved lazily (a bump index per page), so a page's untouched tail costs
//! no resident memory, and a page freed by a lower memory limit goes back to the system. A
//! chunk is named by a u32 handle: page number in the high bits, chunk index in the low
//! `chunk_bits`.
//!
//! Two halves: [`SlabMem`] turns a handle into an address without a lock (a fixed table of
//! page bases and chunk sizes; a page's chunk size changes only while the mover holds every
//! shard lock), and [`SlabAlloc`] (behind the store's allocator mutex, always taken after a
//! shard lock, never before) hands out and takes back chunks and pages.

use crate::item::{Item, NIL};
use crate::Config;
#[cfg(not(unix))]
use std::alloc::Layout;

use crate::zeroed::Zeroed;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

const CHUNK_ALIGN: usize = 8;

/// Most page slots a store's page table has (4 TiB of 1 MiB pages; 64 MiB of address
/// space for the table, resident only where pages exist): the ceiling of a runtime
/// memory limit, with the handle space's.
pub const MAX_PAGE_SLOTS: usize = 1 << 22;

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
        let factor = cfg.growth_factor;
        let align = |size: usize| size.next_multiple_of(CHUNK_ALIGN);
        let chunk_max = cfg.chunk_max().min(page);
        let mut sizes = Vec::new();
        // memcached's table: the listed sizes or the series, then `slab_chunk_max`
        if let Some(list) = &cfg.slab_sizes {
            // (a listed size above it: the no_chunked_items sizes the JS API takes as well)
            sizes.extend(list.iter().map(|&s| align(s as usize) as u32));
            if sizes.last().is_none_or(|&last| chunk_max as u32 >= last) {
                sizes.push(chunk_max as u32);
            }
        } else {
            // memcached stops one growth step short of `slab_chunk_max`
            let mut size = 48 + cfg.slab_min_size;
            while sizes.len() < 62 && (size as f64) < chunk_max as f64 / factor {
                size = align(size);
                sizes.push(size as u32);
                size = (size as f64 * factor) as usize;
            }
            sizes.push(chunk_max as u32);
        }
        // Items memcached chunks are kept whole here: the series goes on while a page holds
        // two chunks (a class of one chunk a page is no better than the page), then a page.
        if chunk_max < page {
            let mut size = (*sizes.last().expect("a class") as f64 * factor) as usize;
            while sizes.len() < 62 && align(size) <= page / 2 {
                size = align(size);
                sizes.push(size as u32);
                size = (size as f64 * factor) as usize;
            }
            sizes.push(page as u32);
        }
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

    pub fn page_size(&self) -> usize {
        *self.sizes.last().expect("at least one class") as usize
    }

    /// Bits needed for a chunk index inside a page.
    pub fn chunk_bits(&self) -> u32 {
        let most = self.per_page.iter().copied().max().unwrap_or(1);
        32 - most.leading_zeros()
    }
}

/// One page of zeroed memory. The mover hands pages from class to class without returning
/// them to the allocator; a page goes back only when the memory limit is lowered below the
/// pages that exist ([`SlabAlloc::release_over_budget`]) and when the store is dropped.
pub struct Page {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: a Page is plain memory owned by exactly one shard (or the pool) at a time.
unsafe impl Send for Page {}

impl Page {
    /// On unix a page is its own anonymous mapping ([`crate::anon_map`]: resident as it is
    /// written, unmapped when dropped), so a lower memory limit gives the memory back. Not
    /// the global allocator's: glibc raises its mmap threshold to the size of the first large
    /// block freed, then serves 1 MiB blocks from its heap, where freed ones in the middle
    /// stay resident (and calloc writes them all to zero again).
    ///
    /// `None` when the system refuses the memory (an address-space limit, strict
    /// overcommit): the allocation then goes on as at the memory limit (eviction, else out
    /// of memory, as memcached's refused slab malloc), rather than aborting, which would
    /// take a Node process with it.
    #[cfg(unix)]
    fn new(size: usize) -> Option<Page> {
        // size is non-zero (validated config)
        let ptr = crate::anon_map::map(size)?;
        Some(Page { ptr, size })
    }

    #[cfg(not(unix))]
    fn new(size: usize) -> Option<Page> {
        let layout = Layout::from_size_align(size, CHUNK_ALIGN).expect("page layout");
        // SAFETY: size is non-zero (validated config); zeroed so untouched memory stays lazy.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Page { ptr, size })
    }
}

impl Drop for Page {
    #[cfg(unix)]
    fn drop(&mut self) {
        // SAFETY: mapped in Page::new with this size, or half of a huge region
        // (SlabAlloc::new_page); no handle names it any more.
        unsafe { crate::anon_map::unmap(self.ptr, self.size) };
    }

    #[cfg(not(unix))]
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size, CHUNK_ALIGN).expect("page layout");
        // SAFETY: allocated in Page::new with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

/// Handle → address, without a lock.
pub struct SlabMem {
    base: Zeroed<AtomicPtr<u8>>,
    chunk_size: Zeroed<AtomicU32>,
    class: Zeroed<AtomicU32>,
    chunk_bits: u32,
    chunk_mask: u32,
    /// [`SlabAlloc::allocated`], written under the allocator lock, for readers that must
    /// not take it (an embedder reporting the store's memory on every write).
    live_pages: AtomicUsize,
}

/// `n` zeroed atomics (their own mapping when large): the operating system hands the memory
/// out as it is first written, so a table sized for the largest memory limit a store can be
/// raised to costs resident memory only for the pages that exist. `None` when refused.
fn zeroed<T>(n: usize) -> Option<Zeroed<T>> {
    debug_assert!(std::mem::size_of::<T>() > 0);
    // SAFETY: only used with AtomicPtr and AtomicU32, for which all-zero bits are a valid
    // value (null, 0).
    unsafe { Zeroed::try_new(n) }
}

impl SlabMem {
    /// A table for pages `0..capacity` (every page the handle space can name, so the memory
    /// limit can be raised at runtime without the table moving under lock-free readers).
    #[cfg(test)]
    pub fn new(classes: &SlabClasses, capacity: usize) -> SlabMem {
        SlabMem::try_new(classes, capacity).expect("page table")
    }

    /// [`SlabMem::new`], `None` when the system refuses the memory.
    pub fn try_new(classes: &SlabClasses, capacity: usize) -> Option<SlabMem> {
        let chunk_bits = classes.chunk_bits();
        Some(SlabMem {
            base: zeroed::<AtomicPtr<u8>>(capacity)?,
            chunk_size: zeroed::<AtomicU32>(capacity)?,
            class: zeroed::<AtomicU32>(capacity)?,
            chunk_bits,
            chunk_mask: (1u32 << chunk_bits) - 1,
            live_pages: AtomicUsize::new(0),
        })
    }

    /// Slab pages that exist now, without the allocator lock (one relaxed load).
    #[inline]
    pub fn live_pages(&self) -> usize {
        self.live_pages.load(Ordering::Relaxed)
    }

    /// Pages the table can name.
    pub fn capacity(&self) -> usize {
        self.base.len()
    }

    #[inline]
    pub fn handle(&self, page: usize, idx: u32) -> u32 {
        ((page as u32) << self.chunk_bits) | idx
    }

    #[inline]
    pub fn page_of(&self, h: u32) -> usize {
        (h >> self.chunk_bits) as usize
    }

    /// The item in chunk `h`. The caller holds the lock of the shard that owns the item (or
    /// the allocator lock for a free chunk).
    #[inline]
    pub fn item(&self, h: u32) -> Item {
        let p = self.page_of(h);
        let idx = (h & self.chunk_mask) as usize;
        let base = self.base[p].load(Ordering::Relaxed);
        let size = self.chunk_size[p].load(Ordering::Relaxed) as usize;
        debug_assert!(!base.is_null() && size > 0);
        // SAFETY: the handle names a carved chunk of an allocated page; the page's chunk
        // size only changes when no item lives in it (see the module docs).
        unsafe { Item::from_ptr(base.add(idx * size)) }
    }

    /// The slab class of the page holding chunk `h`.
    #[inline]
    pub fn class_of(&self, h: u32) -> usize {
        self.class[self.page_of(h)].load(Ordering::Relaxed) as usize
    }
}

const UNASSIGNED: u32 = u32::MAX;

/// Bookkeeping of one page.
#[derive(Clone)]
pub struct PageMeta {
    /// Slab class, or UNASSIGNED while in the pool.
    pub class: u32,
    pub per_page: u32,
    /// Chunks handed out so far (the rest were never touched).
    pub carved: u32,
    /// Chunks holding a live item.
    pub used: u32,
}

/// Per class: free list (threaded through the chunks' h_next) and bump page.
#[derive(Clone)]
pub struct ClassMem {
    pub free_head: u32,
    pub free_count: u32,
    pub bump: u32,
    pub pages: u32,
}

/// Chunks and pages; lives behind the store's allocator mutex.
pub struct SlabAlloc {
    /// Page slots (a page number is its index); `None` once a page went back to the system.
    pages: Vec<Option<Page>>,
    pub meta: Vec<PageMeta>,
    pub classes: Vec<ClassMem>,
    /// Allocated pages no class holds (freed by the mover).
    pool: Vec<u32>,
    /// Page slots whose page was released, reused first.
    vacant: Vec<u32>,
    /// Pages that exist (classes + pool).
    live: usize,
    /// The budget: `memory_limit / page_size`, changed by [`SlabAlloc::set_max_pages`].
    max_pages: usize,
    /// The second page of the last huge-page pair ([`SlabAlloc::new_page`]), not yet live.
    #[cfg_attr(not(unix), allow(dead_code))] // pairs are made on unix only
    spare: Option<Page>,
    /// Make huge-page pairs at all ([`crate::Config::large_pages`], off by default).
    #[cfg_attr(not(unix), allow(dead_code))]
    large_pages: bool,
}

/// Pages a store has before new 1 MiB pages come in huge-page pairs: a small store keeps
/// its untouched page tails lazy (many small caches in one process stay small).
#[cfg(unix)]
const PAIRS_FROM: usize = 2;

impl SlabAlloc {
    pub fn new(classes: &SlabClasses, max_pages: usize) -> SlabAlloc {
        SlabAlloc {
            pages: Vec::new(),
            meta: Vec::new(),
            classes: vec![
                ClassMem {
                    free_head: NIL,
                    free_count: 0,
                    bump: NIL,
                    pages: 0
                };
                classes.len()
            ],
            pool: Vec::new(),
            vacant: Vec::new(),
            live: 0,
            max_pages,
            spare: None,
            large_pages: false,
        }
    }

    /// Chunks of each class's pages that hold no item, carved or not: its pages times
    /// `per_page` (chunks a page, [`SlabClasses::per_page`]) less the chunks in use.
    pub fn free_chunks(&self, per_page: &[u32]) -> Vec<u64> {
        let mut used = vec![0u64; self.classes.len()];
        for m in &self.meta {
            if let Some(u) = used.get_mut(m.class as usize) {
                *u += m.used as u64;
            }
        }
        self.classes
            .iter()
            .zip(per_page)
            .zip(used)
            .map(|((c, &n), u)| c.pages as u64 * n as u64 - u)
            .collect()
    }

    /// Turns the huge-page pairs of [`SlabAlloc::new_page`] on or off
    /// ([`crate::Config::large_pages`]).
    pub fn large_pages(mut self, on: bool) -> SlabAlloc {
        self.large_pages = on;
        self
    }

    /// A new page of `size` bytes, `None` when refused. With `large_pages` on (off by
    /// default: writes into fresh memory measured at about half their throughput,
    /// docs/engine.md), past [`PAIRS_FROM`] pages, 1 MiB pages come in
    /// pairs, each pair a 2 MiB-aligned region advised for transparent huge pages
    /// ([`crate::anon_map::map_huge`]): one TLB entry covers two pages' items instead of
    /// 512: a get at 100k keys, TLB-missing on its item, measured a few percent faster. The
    /// pair's second page waits in `spare`; a pair is taken only while the budget has room
    /// for both, so no spare stays behind at the limit. A refused pair falls back to a page
    /// of its own.
    fn new_page(&mut self, size: usize) -> Option<Page> {
        #[cfg(unix)]
        if size * 2 == crate::anon_map::HUGE {
            if let Some(page) = self.spare.take() {
                return Some(page);
            }
            if self.large_pages && self.live >= PAIRS_FROM && self.live + 2 <= self.max_pages {
                if let Some(ptr) = crate::anon_map::map_huge() {
                    // SAFETY: the second half of the region map_huge returned.
                    let second = unsafe { NonNull::new_unchecked(ptr.as_ptr().add(size)) };
                    // each half is unmapped on its own (Page::drop), which anon_map allows
                    self.spare = Some(Page { ptr: second, size });
                    return Some(Page { ptr, size });
                }
            }
        }
        Page::new(size)
    }

    /// Changes the page budget (a new memory limit). Pages already over it stay until
    /// [`SlabAlloc::release_over_budget`] returns pooled ones; the mover empties others.
    pub fn set_max_pages(&mut self, max_pages: usize) {
        if max_pages <= self.live {
            self.spare = None; // no page will be made: its memory goes back
        }
        self.max_pages = max_pages;
    }

    /// Pages over the budget (after a lower memory limit).
    pub fn over_budget(&self) -> usize {
        self.live.saturating_sub(self.max_pages)
    }

    /// Returns pooled pages to the system while more pages exist than the budget allows;
    /// how many went.
    pub fn release_over_budget(&mut self, mem: &SlabMem) -> usize {
        let mut released = 0;
        while self.live > self.max_pages {
            let Some(p) = self.pool.pop() else { break };
            let p = p as usize;
            mem.base[p].store(std::ptr::null_mut(), Ordering::Relaxed);
            mem.chunk_size[p].store(0, Ordering::Relaxed);
            self.pages[p] = None; // dropping the Page frees its memory
            self.vacant.push(p as u32);
            self.live -= 1;
            mem.live_pages.store(self.live, Ordering::Relaxed);
            released += 1;
        }
        released
    }

    /// A chunk of class `c`: free list, bump page, then a page from the pool or the budget.
    pub fn alloc(&mut self, mem: &SlabMem, classes: &SlabClasses, c: usize) -> Option<u32> {
        if let Some(h) = self.alloc_chunk(mem, c) {
            return Some(h);
        }
        if self.live > self.max_pages {
            self.release_over_budget(mem); // a lower limit: pooled pages go, not reused
        }
        let p = match self.pool.pop() {
            Some(p) => p as usize,
            None if self.live < self.max_pages => {
                let page = self.new_page(classes.page_size())?;
                let p = match self.vacant.pop() {
                    Some(p) => p as usize,
                    None if self.pages.len() < mem.capacity() => {
                        self.pages.push(None);
                        self.meta.push(PageMeta {
                            class: UNASSIGNED,
                            per_page: 0,
                            carved: 0,
                            used: 0,
                        });
                        self.pages.len() - 1
                    }
                    None => return None,
                };
                mem.base[p].store(page.ptr.as_ptr(), Ordering::Relaxed);
                self.pages[p] = Some(page);
                self.live += 1;
                mem.live_pages.store(self.live, Ordering::Relaxed);
                p
            }
            None => return None,
        };
        self.assign(mem, classes, p, c);
        self.alloc_chunk(mem, c)
    }

    /// A chunk of class `c` from the free list or the bump page only.
    pub fn alloc_chunk(&mut self, mem: &SlabMem, c: usize) -> Option<u32> {
        let cm = &self.classes[c];
        if cm.free_head != NIL {
            let h = cm.free_head;
            let next = mem.item(h).h_next();
            self.classes[c].free_head = next;
            self.classes[c].free_count -= 1;
            self.meta[mem.page_of(h)].used += 1;
            return Some(h);
        }
        if cm.bump != NIL {
            let p = cm.bump as usize;
            let m = &mut self.meta[p];
            if m.carved < m.per_page {
                let idx = m.carved;
                m.carved += 1;
                m.used += 1;
                if m.carved == m.per_page {
                    self.classes[c].bump = NIL;
                }
                return Some(mem.handle(p, idx));
            }
            self.classes[c].bump = NIL;
        }
        None
    }

    /// Gives page `p` (unassigned) to class `c`.
    pub fn assign(&mut self, mem: &SlabMem, classes: &SlabClasses, p: usize, c: usize) {
        debug_assert_eq!(self.meta[p].class, UNASSIGNED);
        mem.chunk_size[p].store(classes.sizes[c], Ordering::Relaxed);
        mem.class[p].store(c as u32, Ordering::Relaxed);
        self.meta[p] = PageMeta {
            class: c as u32,
            per_page: classes.per_page[c],
            carved: 0,
            used: 0,
        };
        self.classes[c].pages += 1;
        // the class's previous bump page, if any, is full or has lost to this one; free
        // chunks are used first anyway
        self.classes[c].bump = p as u32;
    }

    /// Returns a chunk whose item has been unlinked everywhere.
    pub fn free_chunk(&mut self, mem: &SlabMem, h: u32) {
        let p = mem.page_of(h);
        let c = self.meta[p].class as usize;
        let it = mem.item(h);
        it.clear();
        it.set_h_next(self.classes[c].free_head);
        self.classes[c].free_head = h;
        self.classes[c].free_count += 1;
        self.meta[p].used -= 1;
    }

    /// Stops page `p`'s class from handing out its chunks (first step of a page move): its
    /// free chunks leave the free list and it is no longer the bump page.
    pub fn detach(&mut self, mem: &SlabMem, p: usize) {
        let c = self.meta[p].class as usize;
        let mut h = self.classes[c].free_head;
        let mut kept_head = NIL;
        let mut kept_tail = NIL;
        let mut kept = 0;
        while h != NIL {
            let next = mem.item(h).h_next();
            if mem.page_of(h) != p {
                if kept_tail == NIL {
                    kept_head = h;
                } else {
                    mem.item(kept_tail).set_h_next(h);
                }
                kept_tail = h;
                kept += 1;
            }
            h = next;
        }
        if kept_tail != NIL {
            mem.item(kept_tail).set_h_next(NIL);
        }
        let cm = &mut self.classes[c];
        cm.free_head = kept_head;
        cm.free_count = kept;
        if cm.bump == p as u32 {
            cm.bump = NIL;
        }
    }

    /// Marks a chunk of a detached page empty without putting it on the free list.
    pub fn forget_chunk(&mut self, mem: &SlabMem, h: u32) {
        mem.item(h).clear();
        self.meta[mem.page_of(h)].used -= 1;
    }

    /// Takes a detached page with no live item left away from its class, into the pool.
    pub fn unassign(&mut self, p: usize) {
        debug_assert_eq!(self.meta[p].used, 0);
        let c = self.meta[p].class as usize;
        self.classes[c].pages -= 1;
        self.meta[p] = PageMeta {
            class: UNASSIGNED,
            per_page: 0,
            carved: 0,
            used: 0,
        };
        self.pool.push(p as u32);
    }

    /// Takes a page out of the pool.
    pub fn take_pooled(&mut self) -> Option<usize> {
        self.pool.pop().map(|p| p as usize)
    }

    /// Pages of class `c`.
    pub fn pages_of(&self, c: usize) -> impl Iterator<Item = usize> + '_ {
        self.meta
            .iter()
            .enumerate()
            .filter(move |(_, m)| m.class == c as u32)
            .map(|(i, _)| i)
    }

    /// Handles of the carved chunks of page `p` (live or free).
    pub fn chunks_of<'a>(&self, mem: &'a SlabMem, p: usize) -> impl Iterator<Item = u32> + 'a {
        (0..self.meta[p].carved).map(move |i| mem.handle(p, i))
    }

    /// Pages that exist (in classes or in the pool); more than the budget only between a
    /// lower memory limit and the mover emptying the pages over it.
    pub fn allocated(&self) -> usize {
        self.live
    }

    pub fn pool(&self) -> &[u32] {
        &self.pool
    }

    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// Whether the budget still allows a new page.
    pub fn can_grow(&self) -> bool {
        self.live < self.max_pages || (!self.pool.is_empty() && self.live == self.max_pages)
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
    fn explicit_sizes_are_memcacheds_table_then_a_page() {
        // memcached 1.6.18 -vv with -o slab_sizes=100-200-300-1000: 104 200 304 1000 524288
        let c = SlabClasses::new(&Config::default().slab_sizes(vec![100, 200, 300, 1000]));
        assert_eq!(c.sizes, [104, 200, 304, 1000, 512 << 10, 1 << 20]);
        assert_eq!(c.per_page[4], 2);
        assert_eq!(c.class_for(105), Some(1));
        assert_eq!(
            c.class_for(1001),
            Some(4),
            "above the list: the chunk max class"
        );
        assert_eq!(
            c.class_for((512 << 10) + 1),
            Some(5),
            "memcached chunks it: a page"
        );
        // a listed 524288 repeats as memcached's last class (it lists both)
        let c = SlabClasses::new(&Config::default().slab_sizes(vec![48, 60, 524288]));
        assert_eq!(c.sizes, [48, 64, 512 << 10, 512 << 10, 1 << 20]);
        // no_chunked_items lets sizes past 512 KiB: its chunk max is then the page
        let c = SlabClasses::new(&Config::default().slab_sizes(vec![100, 600_000]));
        assert_eq!(c.sizes, [104, 600_000, 1 << 20]);
        let c = SlabClasses::new(&Config::default().slab_sizes(vec![1 << 20]));
        assert_eq!(c.sizes, [1 << 20, 1 << 20]);
        // -I 2m: the page grows, slab_chunk_max stays 512 KiB; the page holds two of the
        // classes past it
        let cfg = Config::default()
            .item_size_max(2 << 20)
            .slab_sizes(vec![100]);
        assert_eq!(
            SlabClasses::new(&cfg).sizes,
            [104, 512 << 10, 655360, 819200, 1024000, 2 << 20]
        );
    }

    #[test]
    fn slab_chunk_max_ends_memcacheds_table_and_larger_items_keep_their_own_classes() {
        // memcached 1.6.18 -vv: classes 1-38 end at 394840, class 39 is 524288 (default)
        let c = SlabClasses::new(&Config::default());
        assert_eq!(c.sizes.len(), 40);
        assert_eq!(&c.sizes[37..], &[394840, 512 << 10, 1 << 20]);
        assert_eq!(c.class_for(450_000), Some(38), "memcached's class 39");
        // -o no_chunked_items (and no_modern): memcached's 42 classes, the last the page
        let c = SlabClasses::new(&Config::default().slab_chunk_max(1 << 20));
        assert_eq!(c.sizes.len(), 42);
        assert_eq!(&c.sizes[39..], &[616944, 771184, 1 << 20]);
        // -o slab_chunk_max=16384: memcached's 23 classes end at 16384 (-vv), then
        // ferrocache's own by 1.25 while a page holds two, then the page
        let c = SlabClasses::new(&Config::default().slab_chunk_max(16 << 10));
        assert_eq!(&c.sizes[20..24], &[8880, 11104, 16384, 20480]);
        assert_eq!(&c.sizes[c.len() - 2..], &[465792, 1 << 20]);
        assert_eq!(c.class_for(20_000), Some(23));
        assert_eq!(c.class_for(600_000), Some(c.len() - 1));
        // -f 2 -n 16: memcached stops before a size equal to slab_chunk_max / factor
        let c = SlabClasses::new(&Config::default().growth_factor(2.0).slab_min_size(16));
        assert_eq!(&c.sizes[10..], &[65536, 131072, 512 << 10, 1 << 20]);
        // a small chunk max: memcached's only class is it (-vv: class 1, 64 bytes)
        let c = SlabClasses::new(&Config::default().slab_chunk_max(64));
        assert_eq!(&c.sizes[..3], &[64, 80, 104]);
        // slab_sizes end at the chunk max; with no_chunked_items that is the page (no 512 KiB)
        let c = Config::default().slab_sizes(vec![100, 200]);
        assert_eq!(
            SlabClasses::new(&c.clone().slab_chunk_max(1 << 20)).sizes,
            [104, 200, 1 << 20]
        );
        assert_eq!(
            SlabClasses::new(&c.slab_chunk_max(1 << 10)).sizes[..4],
            [104, 200, 1024, 1280]
        );
        // bounds: 64 bytes to -I, a multiple of 8
        for bad in [56, 100, (1 << 20) + 8] {
            assert!(Config::default().slab_chunk_max(bad).validate().is_err());
        }
        assert!(Config::default().slab_chunk_max(64).validate().is_ok());
    }

    #[test]
    fn chunks_come_from_free_list_then_bump_and_pages_stay_within_the_budget() {
        let classes = SlabClasses::new(&Config::default());
        let mem = SlabMem::new(&classes, 2);
        let mut a = SlabAlloc::new(&classes, 2);
        let x = a.alloc(&mem, &classes, 0).unwrap();
        let y = a.alloc(&mem, &classes, 0).unwrap();
        assert_ne!(x, y);
        mem.item(x).init(b"k", 1, 0, 0, 1, 0);
        mem.item(y).init(b"j", 1, 0, 0, 2, 0);
        a.free_chunk(&mem, x);
        assert_eq!(a.classes[0].free_count, 1);
        assert_eq!(a.alloc(&mem, &classes, 0), Some(x));
        // a second class takes the second page, a third finds the budget spent
        assert!(a.alloc(&mem, &classes, 5).is_some());
        assert_eq!(a.alloc(&mem, &classes, 9), None);
        assert_eq!(a.allocated(), 2);
        // move page 0 from class 0 to class 9
        a.free_chunk(&mem, x);
        a.free_chunk(&mem, y);
        a.detach(&mem, 0);
        assert_eq!(a.classes[0].free_count, 0);
        a.unassign(0);
        assert_eq!(a.pool_len(), 1);
        let h = a.alloc(&mem, &classes, 9).unwrap();
        assert_eq!(mem.class_of(h), 9);
        assert_eq!(a.classes[0].pages, 0);
        assert_eq!(a.alloc_chunk(&mem, 0), None);
        assert_eq!(a.allocated(), 2);
    }

    #[test]
    fn live_pages_follows_the_pages_that_exist() {
        let classes = SlabClasses::new(&Config::default());
        let mem = SlabMem::new(&classes, 4);
        let mut a = SlabAlloc::new(&classes, 4);
        assert_eq!(mem.live_pages(), 0);
        let x = a.alloc(&mem, &classes, 0).unwrap();
        assert!(a.alloc(&mem, &classes, 5).is_some());
        assert_eq!(mem.live_pages(), 2);
        // page 0 emptied into the pool, then a lower budget returns it
        mem.item(x).init(b"k", 1, 0, 0, 1, 0);
        a.free_chunk(&mem, x);
        a.detach(&mem, 0);
        a.unassign(0);
        a.set_max_pages(1);
        assert_eq!(a.release_over_budget(&mem), 1);
        assert_eq!(mem.live_pages(), 1);
        assert_eq!(mem.live_pages(), a.allocated());
    }

    /// The `VmFlags` of the mapping holding `addr` (Linux's `/proc/self/smaps`).
    #[cfg(target_os = "linux")]
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split(' ').next().unwrap_or("");
            if let Some((lo, hi)) = range.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = (lo..hi).contains(&addr);
                    continue;
                }
            }
            if let Some(flags) = line.strip_prefix("VmFlags:").filter(|_| inside) {
                return flags.to_string();
            }
        }
        panic!("no mapping holds {addr:#x}")
    }

    /// `n` pages of the 1 MiB class (one chunk a page), each written at both ends; their
    /// addresses.
    #[cfg(unix)]
    fn take_pages(a: &mut SlabAlloc, mem: &SlabMem, classes: &SlabClasses, n: usize) -> Vec<usize> {
        let whole = classes.len() - 1;
        (0..n)
            .map(|_| {
                let h = a.alloc(mem, classes, whole).expect("a page");
                let base = mem.base[mem.page_of(h)].load(Ordering::Relaxed);
                // SAFETY: the chunk's page is 1 MiB of our memory
                unsafe {
                    *base = 1;
                    *base.add((1 << 20) - 1) = 1;
                }
                base as usize
            })
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pages_past_the_first_two_come_in_2_mib_aligned_pairs_advised_for_huge_pages() {
        use crate::anon_map::HUGE;
        let classes = SlabClasses::new(&Config::default());
        let mem = SlabMem::new(&classes, 16);
        let mut a = SlabAlloc::new(&classes, 7).large_pages(true);
        let p = take_pages(&mut a, &mem, &classes, 7);
        for pair in [2, 4] {
            assert_eq!(p[pair] % HUGE, 0, "page {pair} starts a 2 MiB region");
            assert_eq!(
                p[pair + 1],
                p[pair] + (1 << 20),
                "page {} is its second half",
                pair + 1
            );
        }
        // the 7th page is the budget's last: a page of its own, no spare left behind
        assert!(a.spare.is_none());
        let thp = std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists();
        for (i, &base) in p.iter().enumerate() {
            let advised = vm_flags(base).split_whitespace().any(|f| f == "hg");
            let want = thp && (2..6).contains(&i);
            assert_eq!(advised, want, "page {i} advised for huge pages");
        }
        // a lower limit gives a waiting spare back
        let mut a = SlabAlloc::new(&classes, 8).large_pages(true);
        take_pages(&mut a, &mem, &classes, 3);
        assert!(a.spare.is_some());
        a.set_max_pages(3);
        assert!(a.spare.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_refused_huge_region_leaves_pages_of_their_own() {
        let classes = SlabClasses::new(&Config::default());
        let mem = SlabMem::new(&classes, 8);
        let mut a = SlabAlloc::new(&classes, 8).large_pages(true);
        // the 4 MiB map a huge region is cut from is refused; 1 MiB pages are not
        crate::anon_map::refuse(4 << 20..(4 << 20) + 1);
        let p = take_pages(&mut a, &mem, &classes, 6);
        crate::anon_map::refuse(0..0);
        assert_eq!((a.allocated(), p.len()), (6, 6));
        assert!(a.spare.is_none());
        // granted again, pairs resume
        let q = take_pages(&mut a, &mem, &classes, 2);
        assert_eq!(q[1], q[0] + (1 << 20));
    }

    /// Huge pages are opt-in (memcached's `-L`): by default no page is paired or advised.
    #[cfg(target_os = "linux")]
    #[test]
    fn without_large_pages_no_page_is_paired_or_advised_for_huge_pages() {
        let config = Config::default();
        assert!(!config.large_pages);
        let classes = SlabClasses::new(&config);
        let mem = SlabMem::new(&classes, 16);
        let mut a = SlabAlloc::new(&classes, 8);
        let p = take_pages(&mut a, &mem, &classes, 6);
        assert!(a.spare.is_none());
        for (i, &base) in p.iter().enumerate() {
            let advised = vm_flags(base).split_whitespace().any(|f| f == "hg");
            assert!(!advised, "page {i} advised for huge pages");
        }
    }
}

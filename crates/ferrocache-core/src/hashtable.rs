//! One shard's hash table (memcached's assoc.c, laid out differently): open addressing with
//! linear probing over slots of (hash tag, item handle). Keys hash with xxh3; the shard is
//! picked by the high bits of the hash; the low 32 bits are the tag, and the tag scaled to
//! the table's length (`tag * len >> 32`, Lemire's fastrange) is the entry's home slot.
//!
//! A slot keeps the low 32 bits of the key's hash beside the handle, so a lookup reads the
//! item (a cache miss of its own) only when the tag matches: one probe sequence in one or two
//! cache lines of slots, then the item holding the key. A chained table would read every
//! item on the chain before the right one. The tag also gives each entry's home slot, so
//! deletion (backward shift, no tombstones) and growth never rehash a key or touch an item.
//!
//! Growth is incremental: past 3/4 full a table 1.25 times as large is allocated; inserts,
//! and a little every lookup, move whole clusters (runs of full slots) of the old table to the
//! new one, so no operation rehashes the whole table. Lookups search the new table, then the
//! old. Homes by scaling rather than by a power-of-two mask let the table grow by a quarter
//! (10.7-13.3 bytes of slots per item between growths) instead of doubling (10.7-21.3).
//!
//! Without growth (memcached's `-o no_hashexpand`, [`crate::Config::hash_expand`]) a table
//! stays at its size until it is 15/16 full. A slot holds one item, so unlike memcached's
//! chained buckets a table cannot hold more items than it has slots: past 15/16 it grows
//! all the same (a lookup that misses would probe ~128 slots there, 16 cache lines; more
//! would soon be thousands, and a full table none would end).

use crate::item::NIL;
use crate::slab::SlabMem;
use crate::zeroed::Zeroed;

/// Old slots scanned per insert while growing. The new table reaches 3/4 full after
/// 0.1875 × (old length) inserts, by when the old table's 0.75 × (old length) entries must
/// have moved (4 per insert); 32 slots (~24 entries) empty it in a sixth of that time, so
/// both tables are held only briefly.
const MIGRATE_PER_OP: usize = 32;

/// The most slots a table has: a home is `tag * len >> 32` in 64 bits. Handles are 32-bit,
/// so a shard never holds 2^32 items and a table this long always has an empty slot.
const MAX_SLOTS: u64 = 1 << 32;

/// A table's length after growing from `len`: a quarter more, in whole cache lines of slots.
fn grown(len: usize) -> usize {
    ((len + len / 4).div_ceil(8) * 8).min(usize::try_from(MAX_SLOTS).unwrap_or(usize::MAX))
}

/// How full a table may get before it grows, in sixteenths: 3/4 normally, 15/16 with
/// growth turned off.
const GROW_AT: usize = 12;
const GROW_AT_NO_EXPAND: usize = 15;

/// The home slot of `tag` in a table of `len` slots. Monotonic in the tag, so each table
/// keeps entries in tag order (up to probing), whatever its length.
#[inline]
fn home(tag: u32, len: usize) -> usize {
    ((tag as u64 * len as u64) >> 32) as usize
}

/// Bytes of RAM and swap on this machine (Linux), the most one allocation may take under
/// the kernel's default heuristic overcommit.
pub(crate) fn memory_and_swap() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysinfo only writes the struct it is given.
        let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
        if unsafe { libc::sysinfo(&mut info) } == 0 {
            let unit = info.mem_unit.max(1) as u64;
            return Some((info.totalram as u64 + info.totalswap as u64).saturating_mul(unit));
        }
    }
    None
}

#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// An empty slot: all zeros. A slot holds the handle inverted, so an empty one (handle NIL,
/// which never names an item) is 0 and a new table is zeroed memory, which the OS maps
/// lazily: growing costs no write of the whole new table at once.
const EMPTY: u64 = 0;

#[inline]
fn slot(tag: u32, h: u32) -> u64 {
    ((tag as u64) << 32) | !h as u64
}
#[inline]
fn handle_of(s: u64) -> u32 {
    !(s as u32)
}
#[inline]
fn tag_of(s: u64) -> u32 {
    (s >> 32) as u32
}

/// One linear-probing table. Invariant: every slot between an entry's home and the slot it
/// sits in (cyclically) is full, so a probe from the home stops at the first empty slot.
struct Table {
    slots: Zeroed<u64>,
    count: usize,
}

impl Table {
    /// A table of `len` empty slots, or `None` when the allocator refuses the memory (a
    /// large one is mapped lazily, so it costs no resident memory until slots are written).
    fn try_new(len: usize) -> Option<Table> {
        // SAFETY: all-zero bytes are valid u64s (EMPTY).
        let slots = unsafe { Zeroed::try_new(len) }?;
        Some(Table { slots, count: 0 })
    }

    fn none() -> Table {
        Table {
            slots: Zeroed::empty(),
            count: 0,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn home(&self, tag: u32) -> usize {
        home(tag, self.len())
    }

    /// The slot after `i`, wrapping at the end.
    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.len() {
            0
        } else {
            i + 1
        }
    }

    /// How many slots on from `from` to `to`, cyclically.
    #[inline]
    fn dist(&self, from: usize, to: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + self.len() - from
        }
    }

    #[inline]
    fn find(&self, slab: &SlabMem, tag: u32, key: &[u8]) -> u32 {
        let mut i = self.home(tag);
        loop {
            let s = self.slots[i];
            if handle_of(s) == NIL {
                return NIL;
            }
            if tag_of(s) == tag && slab.item(handle_of(s)).key() == key {
                return handle_of(s);
            }
            i = self.next(i);
        }
    }

    /// The slot holding handle `h`.
    fn position(&self, tag: u32, h: u32) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let mut i = self.home(tag);
        loop {
            let s = self.slots[i];
            if handle_of(s) == NIL {
                return None;
            }
            if handle_of(s) == h {
                return Some(i);
            }
            i = self.next(i);
        }
    }

    #[inline]
    fn insert(&mut self, tag: u32, h: u32) {
        let mut i = self.home(tag);
        while handle_of(self.slots[i]) != NIL {
            i = self.next(i);
        }
        self.slots[i] = slot(tag, h);
        self.count += 1;
    }

    /// Empties slot `i`, pulling later entries of its cluster back so every probe sequence
    /// stays unbroken (no tombstones).
    fn remove_at(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = self.next(j);
            let s = self.slots[j];
            if handle_of(s) == NIL {
                break;
            }
            let home = self.home(tag_of(s));
            // the entry at j may fill the hole unless its home lies cyclically in (i, j]
            if self.dist(home, j) >= self.dist(i, j) {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = EMPTY;
        self.count -= 1;
    }

    /// More than `sixteenths`/16 full, and not yet as long as a table gets.
    fn over_load(&self, sixteenths: usize) -> bool {
        self.count * 16 > self.len() * sixteenths && (self.len() as u64) < MAX_SLOTS
    }
}

pub struct HashTable {
    table: Table,
    /// The table being migrated away from; empty (length 0) when not growing.
    old: Table,
    /// Where the migration continues in `old`: always an empty slot or the start of a
    /// cluster, so no cluster is ever half moved when the lock is released.
    cursor: usize,
    /// How full (in sixteenths) the current table gets before it grows.
    grow_at: usize,
}

impl HashTable {
    /// A growing table of 2^`power` slots.
    #[cfg(test)]
    pub fn new(power: u8) -> HashTable {
        HashTable::try_new(power, true).expect("hash table allocation")
    }

    /// A table of 2^`power` slots (at most 2^32) that grows past 3/4 full, or with `expand`
    /// false only past 15/16; `None` when its memory cannot be allocated.
    pub fn try_new(power: u8, expand: bool) -> Option<HashTable> {
        let len = 1u64.checked_shl(power as u32).filter(|&l| l <= MAX_SLOTS)?;
        Some(HashTable {
            table: Table::try_new(usize::try_from(len).ok()?)?,
            old: Table::none(),
            cursor: 0,
            grow_at: if expand { GROW_AT } else { GROW_AT_NO_EXPAND },
        })
    }

    /// The item with this key, or NIL.
    #[inline]
    pub fn find(&self, slab: &SlabMem, hash: u64, key: &[u8]) -> u32 {
        let tag = hash as u32;
        let h = self.table.find(slab, tag, key);
        if h == NIL && self.old.count > 0 {
            return self.old.find(slab, tag, key);
        }
        h
    }

    /// Links item `h` (its key not yet in the table).
    pub fn insert(&mut self, _slab: &SlabMem, hash: u64, h: u32) {
        self.table.insert(hash as u32, h);
        if self.old.count > 0 {
            self.migrate(MIGRATE_PER_OP);
            if self.table.over_load(self.grow_at) {
                self.migrate(usize::MAX); // cannot happen at these rates; stays correct if it does
            }
        }
        if self.old.count == 0 && self.table.over_load(self.grow_at) {
            // refused: this table fills on, up to what `has_room` allows, and the next
            // insert asks again (memcached keeps its table when its expansion fails)
            self.begin_growth(grown(self.table.len()));
        }
        debug_assert!(self.table.count < self.table.len(), "a full table");
    }

    /// Whether a new entry may go in: not into a table past 15/16 full whose growth the
    /// system refuses (an address-space limit, strict overcommit). A lookup that misses
    /// would probe ever more slots there, and a full table none would end; memcached's
    /// chained table takes more at any load, so the shard frees an entry for a new key
    /// instead (`Shard::free_entry`: an expired item, else an eviction).
    pub fn has_room(&mut self) -> bool {
        self.old.count > 0
            || !self.table.over_load(GROW_AT_NO_EXPAND)
            || self.begin_growth(grown(self.table.len()))
    }

    /// Makes a table of `len` slots current and the current one the old one, its entries to
    /// be moved by [`HashTable::migrate`]. The old table must be empty. `false`, and
    /// nothing changes, when the system refuses the memory.
    fn begin_growth(&mut self, len: usize) -> bool {
        let Some(table) = Table::try_new(len) else {
            return false;
        };
        self.old = std::mem::replace(&mut self.table, table);
        // start at an empty slot: a cluster that wraps around the end is moved whole
        self.cursor = self
            .old
            .slots
            .iter()
            .position(|&s| handle_of(s) == NIL)
            .expect("a table at most 15/16 full has an empty slot");
        true
    }

    /// Makes room for `items` entries without growing again (tables never shrink): moves
    /// every entry at once into a table of the size growth would reach. For a bulk load
    /// into a table that is still small, which is cheap then.
    pub fn reserve(&mut self, items: usize) {
        let grow_at = self.grow_at;
        let fits = |len: usize| items * 16 <= len * grow_at || len as u64 >= MAX_SLOTS;
        if fits(self.table.len()) {
            return;
        }
        self.migrate(usize::MAX);
        let mut len = self.table.len();
        while !fits(len) {
            len = grown(len);
        }
        // refused: the table grows as items come, if it can then
        if self.begin_growth(len) {
            self.migrate(usize::MAX);
        }
    }

    /// Unlinks item `h`; `false` when it was not in the table.
    pub fn remove(&mut self, _slab: &SlabMem, hash: u64, h: u32) -> bool {
        let tag = hash as u32;
        if let Some(i) = self.table.position(tag, h) {
            self.table.remove_at(i);
        } else if let Some(i) = self.old.position(tag, h) {
            self.old.remove_at(i);
            self.drop_old_if_empty();
        } else {
            return false;
        }
        true
    }

    /// Puts `new` where `old` is (same key; the mover relocating an item).
    pub fn replace(&mut self, _slab: &SlabMem, hash: u64, old: u32, new: u32) {
        let tag = hash as u32;
        if let Some(i) = self.table.position(tag, old) {
            self.table.slots[i] = slot(tag, new);
        } else if let Some(i) = self.old.position(tag, old) {
            self.old.slots[i] = slot(tag, new);
        } else {
            debug_assert!(false, "replaced item was not linked");
        }
    }

    /// Moves a few old slots along when growing (lookups and the crawler call this, so a
    /// read-only phase does not stay on two tables).
    #[inline]
    pub fn help_grow(&mut self, _slab: &SlabMem, slots: usize) {
        if self.old.count > 0 {
            self.migrate(slots);
        }
    }

    /// Moves the entries of at least `n` old slots, always whole clusters, to the new table.
    fn migrate(&mut self, n: usize) {
        let mut scanned = 0usize;
        while self.old.count > 0 {
            let s = self.old.slots[self.cursor];
            if handle_of(s) == NIL {
                if scanned >= n {
                    break;
                }
            } else {
                // the tag gives the new home: no key is rehashed, no item touched
                self.table.insert(tag_of(s), handle_of(s));
                self.old.slots[self.cursor] = EMPTY;
                self.old.count -= 1;
            }
            self.cursor = self.old.next(self.cursor);
            scanned += 1;
        }
        self.drop_old_if_empty();
    }

    fn drop_old_if_empty(&mut self) {
        if self.old.count == 0 && self.old.len() > 0 {
            self.old = Table::none();
            self.cursor = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.table.count + self.old.count
    }

    /// The current table's slots and length, for [`SlotHint`].
    fn probe_base(&self) -> (*mut u64, usize) {
        (self.table.slots.as_ptr() as *mut u64, self.table.len())
    }

    /// Positions a walk over all items goes through: the new table's slots, then the old's.
    pub fn walk_len(&self) -> usize {
        self.table.len() + self.old.len()
    }

    /// Appends the items of walk positions `from..from + n` (extended to the end of a
    /// cluster) to `out`; returns where the next batch starts. At any instant every item is in
    /// exactly one position. A batch ends at an empty slot, so unlinking the batch's items
    /// (which pulls later entries of their clusters back) cannot move an item the walk has not
    /// reached behind it: a crawl that unlinks as it goes still sees every item.
    pub fn collect(&self, _slab: &SlabMem, from: usize, n: usize, out: &mut Vec<u32>) -> usize {
        let split = self.table.len();
        let at = |i: usize| {
            if i < split {
                self.table.slots[i]
            } else {
                self.old.slots[i - split]
            }
        };
        let mut end = from.saturating_add(n).min(self.walk_len());
        while end < self.walk_len() && end != split && handle_of(at(end)) != NIL {
            end += 1;
        }
        for i in from..end {
            let s = at(i);
            if handle_of(s) != NIL {
                out.push(handle_of(s));
            }
        }
        end
    }

    /// How far entries sit from their homes, on average, in the current table (tests: the
    /// probes a lookup makes beyond its first slot).
    #[cfg(test)]
    fn mean_displacement(&self) -> f64 {
        let t = &self.table;
        let total: usize = (0..t.len())
            .filter(|&i| handle_of(t.slots[i]) != NIL)
            .map(|i| t.dist(t.home(tag_of(t.slots[i])), i))
            .sum();
        total as f64 / t.count.max(1) as f64
    }

    pub fn bytes(&self) -> usize {
        self.walk_len() * std::mem::size_of::<u64>()
    }

    /// Slots of both tables (memcached's buckets, for `hash_power_level`).
    pub fn buckets(&self) -> usize {
        self.walk_len()
    }

    pub fn is_expanding(&self) -> bool {
        self.old.len() > 0
    }

    /// The smaller table's size (the old one while growing): how many parts a walk by
    /// [`HashTable::collect_parts`] may cut the tag space into.
    pub fn min_len(&self) -> usize {
        if self.old.len() == 0 {
            self.table.len()
        } else {
            self.old.len()
        }
    }

    /// Appends the items, in both tables, whose tag falls in parts `parts` of the tag space
    /// cut into `modulus` equal parts (`modulus` at most [`HashTable::min_len`]). An item's
    /// part is fixed by its key's hash (it is the item's home in a table of `modulus` slots)
    /// whichever table holds the item and wherever probing put it, so a walk over the parts
    /// with the lock dropped between steps sees every unmoved item exactly once (the snapshot
    /// writer's walk).
    pub fn collect_parts(
        &self,
        _slab: &SlabMem,
        parts: std::ops::Range<usize>,
        modulus: usize,
        out: &mut Vec<u32>,
    ) {
        debug_assert!(modulus > 0 && modulus <= self.min_len() && parts.end <= modulus);
        if parts.is_empty() {
            return;
        }
        // the tags of parts a..b: from the least tag with home >= a to the least with home >= b
        // (in 128 bits: a part may be 2^32, the end of a table of 2^32 slots)
        let first_tag = |p: usize| (((p as u128) << 32).div_ceil(modulus as u128)) as u64;
        let lo = first_tag(parts.start);
        let hi = first_tag(parts.end); // exclusive; at most 2^32
        if lo >= hi {
            return;
        }
        let in_parts = |tag: u32| (lo..hi).contains(&(tag as u64));
        for t in [&self.table, &self.old] {
            if t.count == 0 {
                continue;
            }
            // entries of those tags have homes from `start` to `end` and sit in the runs of
            // full slots that begin there (a table always has an empty slot: a run never
            // covers all)
            let start = t.home(lo as u32);
            let end = t.home((hi - 1) as u32);
            let span = t.dist(start, end);
            let mut j = start;
            loop {
                let s = t.slots[j];
                if handle_of(s) == NIL {
                    if t.dist(start, j) > span {
                        break;
                    }
                } else if in_parts(tag_of(s)) {
                    out.push(handle_of(s));
                }
                j = t.next(j);
                if j == start {
                    break;
                }
            }
        }
    }
}

/// Where a shard's current table lies, readable without the shard lock: a lookup asks the
/// CPU for its slot's cache line before it takes the lock and reads the clock, so the miss
/// overlaps that work. Updated under the lock whenever the table is replaced; a stale or torn
/// value only prefetches the wrong line (a prefetch never faults).
pub(crate) struct SlotHint {
    base: std::sync::atomic::AtomicPtr<u64>,
    len: std::sync::atomic::AtomicUsize,
}

impl SlotHint {
    pub fn new(ht: &HashTable) -> SlotHint {
        let (base, len) = ht.probe_base();
        SlotHint {
            base: std::sync::atomic::AtomicPtr::new(base),
            len: std::sync::atomic::AtomicUsize::new(len),
        }
    }

    /// Records `ht`'s current table (the caller holds the shard lock).
    #[inline]
    pub fn refresh(&self, ht: &HashTable) {
        use std::sync::atomic::Ordering::Relaxed;
        let (base, len) = ht.probe_base();
        if self.base.load(Relaxed) != base {
            self.base.store(base, Relaxed);
            self.len.store(len, Relaxed);
        }
    }

    /// Starts loading the line of the slot a probe for `hash` begins at.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::sync::atomic::Ordering::Relaxed;
            let i = home(hash as u32, self.len.load(Relaxed));
            let p = self.base.load(Relaxed).wrapping_add(i);
            // SAFETY: a prefetch never faults and changes nothing but the caches.
            unsafe {
                std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::{SlabAlloc, SlabClasses};
    use crate::Config;

    #[test]
    fn grows_incrementally_and_keeps_every_key_findable() {
        let classes = SlabClasses::new(&Config::default());
        let slab = SlabMem::new(&classes, 4);
        let mut alloc = SlabAlloc::new(&classes, 4);
        let mut ht = HashTable::new(4);
        let mut handles = Vec::new();
        let mut saw_expanding = false;
        for i in 0..5000u32 {
            let key = format!("key:{i}");
            let h = alloc.alloc(&slab, &classes, 0).unwrap();
            slab.item(h).init(key.as_bytes(), 0, 0, 0, i as u64, 0);
            ht.insert(&slab, hash_key(key.as_bytes()), h);
            handles.push((key, h));
            saw_expanding |= ht.is_expanding();
            // every key stays findable, and a walk sees each once, in the middle of a migration
            if i % 97 == 0 {
                for (k, h) in &handles {
                    assert_eq!(ht.find(&slab, hash_key(k.as_bytes()), k.as_bytes()), *h);
                }
                let mut all = Vec::new();
                let mut pos = 0;
                while pos < ht.walk_len() {
                    pos = ht.collect(&slab, pos, 100, &mut all);
                }
                all.sort();
                all.dedup();
                assert_eq!(all.len(), handles.len());
            }
        }
        assert!(saw_expanding);
        assert!(ht.bytes() >= 4 << 12, "table grew to {} bytes", ht.bytes());
        for (k, h) in handles.iter().step_by(2) {
            assert!(ht.remove(&slab, hash_key(k.as_bytes()), *h));
        }
        for (i, (k, h)) in handles.iter().enumerate() {
            let found = ht.find(&slab, hash_key(k.as_bytes()), k.as_bytes());
            assert_eq!(found, if i % 2 == 0 { NIL } else { *h });
        }
        assert_eq!(ht.len(), 2500);
        assert!(!ht.remove(&slab, hash_key(b"key:0"), handles[0].1));
    }

    #[test]
    fn slots_cost_at_most_a_quarter_more_than_at_three_quarters_full() {
        // growing by a quarter keeps the table between 60% and 75% full once the old table
        // has emptied: 10.7-13.3 bytes of slots per entry at every size (doubling: up to 21.3)
        let classes = SlabClasses::new(&Config::default());
        let slab = SlabMem::new(&classes, 1);
        let mut ht = HashTable::new(12);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut worst = 0.0f64;
        for i in 1..=300_000usize {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ht.insert(&slab, x, i as u32); // handles only: nothing reads an item here
            if i >= 4096 && !ht.is_expanding() {
                worst = worst.max(ht.bytes() as f64 / ht.len() as f64);
            }
        }
        assert!(worst <= 13.4, "{worst:.2} bytes of slots per entry");
        assert!(worst > 12.0, "{worst:.2}: the table never grew?");
    }

    #[test]
    fn a_walks_items_inserted_in_walk_order_make_no_long_cluster() {
        // what a snapshot load and a replica's full sync do: the walk's items go, in walk
        // order, into a table that starts small. Homes follow tag order, so items in tag order
        // would all land at the new table's start: one cluster as long as the items so far
        // (1M items took 40 s to load that way instead of 0.5 s)
        let classes = SlabClasses::new(&Config::default());
        let slab = SlabMem::new(&classes, 1);
        let mut src = HashTable::new(12);
        let mut tags = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            src.insert(&slab, x, i);
            tags.push(x);
        }
        let walk = |mut cur: crate::ShardCursor| {
            let mut order = Vec::new();
            cur.begin(src.min_len());
            while let Some(parts) = cur.next_parts(256) {
                src.collect_parts(&slab, parts, cur.modulus, &mut order);
            }
            assert_eq!(order.len(), tags.len());
            order
        };
        let load = |order: &[u32], reserve: usize| {
            let mut dst = HashTable::new(12);
            dst.reserve(reserve);
            let mut worst = 0.0f64;
            for (n, &h) in order.iter().enumerate() {
                dst.insert(&slab, tags[h as usize], h);
                if n % 5000 == 0 {
                    worst = worst.max(dst.mean_displacement());
                }
            }
            worst
        };
        // inserted in random order: ~1-2 slots at 60-75% full
        // a replica's full sync: scattered runs into a table that grows as they come
        let worst = load(&walk(crate::ShardCursor::scattered()), 0);
        assert!(
            worst < 4.0,
            "scattered: entries {worst:.1} slots from home on average"
        );
        // a snapshot load: the walk in tag order, into a table sized first
        let worst = load(&walk(crate::ShardCursor::default()), tags.len());
        assert!(
            worst < 4.0,
            "reserved: entries {worst:.1} slots from home on average"
        );
    }

    #[test]
    fn random_inserts_and_removes_while_growing_match_a_set() {
        // a tiny table (many collisions, clusters wrapping the end) through several growths,
        // with removals (backward shifts) in both tables mid-migration; a walk by parts with
        // the table changing between its steps sees each item that stayed exactly once
        let classes = SlabClasses::new(&Config::default());
        let slab = SlabMem::new(&classes, 8);
        let mut alloc = SlabAlloc::new(&classes, 8);
        let mut ht = HashTable::new(4);
        let mut live: Vec<(String, u32)> = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for i in 0..20_000u32 {
            if live.is_empty() || rnd(3) != 0 {
                let key = format!("k{i}");
                let h = alloc.alloc(&slab, &classes, 0).unwrap();
                slab.item(h).init(key.as_bytes(), 0, 0, 0, 0, 0);
                ht.insert(&slab, hash_key(key.as_bytes()), h);
                live.push((key, h));
            } else {
                let (key, h) = live.swap_remove(rnd(live.len()));
                assert!(ht.remove(&slab, hash_key(key.as_bytes()), h));
                assert_eq!(
                    ht.find(&slab, hash_key(key.as_bytes()), key.as_bytes()),
                    NIL
                );
                alloc.free_chunk(&slab, h);
            }
            if i % 1000 == 0 {
                assert_eq!(ht.len(), live.len());
                for (k, h) in &live {
                    assert_eq!(ht.find(&slab, hash_key(k.as_bytes()), k.as_bytes()), *h);
                }
            }
        }
        let before: std::collections::HashSet<u32> = live.iter().map(|l| l.1).collect();
        let modulus = ht.min_len();
        let mut seen = Vec::new();
        for r in 0..modulus {
            ht.collect_parts(&slab, r..r + 1, modulus, &mut seen);
            // the table changes between steps: new keys, which the walk may or may not see
            let key = format!("extra{r}");
            let h = alloc.alloc(&slab, &classes, 0).unwrap();
            slab.item(h).init(key.as_bytes(), 0, 0, 0, 0, 0);
            ht.insert(&slab, hash_key(key.as_bytes()), h);
        }
        let mut old: Vec<u32> = seen
            .iter()
            .copied()
            .filter(|h| before.contains(h))
            .collect();
        old.sort();
        let n = old.len();
        old.dedup();
        assert_eq!(old.len(), n, "an item seen twice");
        assert_eq!(n, before.len(), "an item missed");
    }
}

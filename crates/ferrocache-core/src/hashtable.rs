//! One shard's hash table: buckets of u32 item handles, chained through the items' `h_next`
//! header field (memcached's assoc.c). Keys hash with xxh3; the shard is picked by the high
//! bits of the hash, the bucket by the low bits.
//!
//! Growth is incremental: past 1.5 items per bucket a table twice as large is allocated and
//! every later insert migrates a few buckets from the old one, so no operation rehashes the
//! whole table. Until a bucket has migrated, lookups use the old table for it.

use crate::item::NIL;
use crate::slab::SlabMem;

/// Buckets migrated per insert while growing; the old table is gone long before the new one
/// fills up (it has 2x the buckets and grows again only at 1.5 items per bucket).
const MIGRATE_PER_OP: usize = 8;

#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

pub struct HashTable {
    table: Vec<u32>,
    /// The table being migrated away from; empty when not growing.
    old: Vec<u32>,
    /// Buckets of `old` below this index have moved to `table`.
    migrated: usize,
    count: usize,
}

impl HashTable {
    pub fn new(power: u8) -> HashTable {
        HashTable {
            table: vec![NIL; 1usize << power],
            old: Vec::new(),
            migrated: 0,
            count: 0,
        }
    }

    #[inline]
    fn bucket(&self, hash: u64) -> (bool, usize) {
        if !self.old.is_empty() {
            let oi = hash as usize & (self.old.len() - 1);
            if oi >= self.migrated {
                return (true, oi);
            }
        }
        (false, hash as usize & (self.table.len() - 1))
    }

    #[inline]
    fn head(&self, hash: u64) -> u32 {
        match self.bucket(hash) {
            (true, i) => self.old[i],
            (false, i) => self.table[i],
        }
    }

    #[inline]
    fn head_mut(&mut self, hash: u64) -> &mut u32 {
        match self.bucket(hash) {
            (true, i) => &mut self.old[i],
            (false, i) => &mut self.table[i],
        }
    }

    /// The item with this key, or NIL.
    pub fn find(&self, slab: &SlabMem, hash: u64, key: &[u8]) -> u32 {
        let mut h = self.head(hash);
        while h != NIL {
            let it = slab.item(h);
            if it.key() == key {
                return h;
            }
            h = it.h_next();
        }
        NIL
    }

    /// Links item `h` (not yet in the table).
    pub fn insert(&mut self, slab: &SlabMem, hash: u64, h: u32) {
        let head = self.head_mut(hash);
        slab.item(h).set_h_next(*head);
        *head = h;
        self.count += 1;
        if self.old.is_empty() {
            if self.count > self.table.len() + self.table.len() / 2 {
                let bigger = vec![NIL; self.table.len() * 2];
                self.old = std::mem::replace(&mut self.table, bigger);
                self.migrated = 0;
            }
        } else {
            self.migrate(slab, MIGRATE_PER_OP);
        }
    }

    /// Finds the link that points at `h` in its chain.
    fn link_to(&mut self, slab: &SlabMem, hash: u64, h: u32) -> Option<LinkRef> {
        let head = self.head(hash);
        if head == h {
            return Some(LinkRef::Head);
        }
        let mut p = head;
        while p != NIL {
            let n = slab.item(p).h_next();
            if n == h {
                return Some(LinkRef::Item(p));
            }
            p = n;
        }
        None
    }

    /// Unlinks item `h`; `false` when it was not in the table.
    pub fn remove(&mut self, slab: &SlabMem, hash: u64, h: u32) -> bool {
        let next = slab.item(h).h_next();
        match self.link_to(slab, hash, h) {
            Some(LinkRef::Head) => *self.head_mut(hash) = next,
            Some(LinkRef::Item(p)) => slab.item(p).set_h_next(next),
            None => return false,
        }
        self.count -= 1;
        true
    }

    /// Puts `new` where `old` is in its chain (same key; the mover relocating an item).
    pub fn replace(&mut self, slab: &SlabMem, hash: u64, old: u32, new: u32) {
        let next = slab.item(old).h_next();
        slab.item(new).set_h_next(next);
        match self.link_to(slab, hash, old) {
            Some(LinkRef::Head) => *self.head_mut(hash) = new,
            Some(LinkRef::Item(p)) => slab.item(p).set_h_next(new),
            None => debug_assert!(false, "replaced item was not linked"),
        }
    }

    /// Moves a few buckets along when growing (lookups and the crawler call this, so a
    /// read-only phase does not stay on the smaller table).
    #[inline]
    pub fn help_grow(&mut self, slab: &SlabMem, buckets: usize) {
        if !self.old.is_empty() {
            self.migrate(slab, buckets);
        }
    }

    fn migrate(&mut self, slab: &SlabMem, buckets: usize) {
        let mask = self.table.len() - 1;
        let end = (self.migrated + buckets).min(self.old.len());
        for b in self.migrated..end {
            let mut h = self.old[b];
            while h != NIL {
                let it = slab.item(h);
                let next = it.h_next();
                let i = hash_key(it.key()) as usize & mask;
                it.set_h_next(self.table[i]);
                self.table[i] = h;
                h = next;
            }
            self.old[b] = NIL;
        }
        self.migrated = end;
        if self.migrated == self.old.len() {
            self.old = Vec::new();
            self.migrated = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Positions a walk over all items goes through: the new table, then the old one.
    pub fn walk_len(&self) -> usize {
        self.table.len() + self.old.len()
    }

    /// Appends the items of walk positions `from..from + n` to `out`; returns where the next
    /// batch starts. At any instant every item is in exactly one position.
    pub fn collect(&self, slab: &SlabMem, from: usize, n: usize, out: &mut Vec<u32>) -> usize {
        let end = (from + n).min(self.walk_len());
        for i in from..end {
            let mut h = if i < self.table.len() {
                self.table[i]
            } else {
                self.old[i - self.table.len()]
            };
            while h != NIL {
                out.push(h);
                h = slab.item(h).h_next();
            }
        }
        end
    }

    pub fn bytes(&self) -> usize {
        (self.table.len() + self.old.len()) * 4
    }

    pub fn is_expanding(&self) -> bool {
        !self.old.is_empty()
    }

    /// The smaller table's size (the old one while growing). Tables only grow, so a walk by
    /// bucket residue modulo this size stays valid however the table grows meanwhile.
    pub fn min_len(&self) -> usize {
        if self.old.is_empty() {
            self.table.len()
        } else {
            self.old.len()
        }
    }

    /// Appends the items of every bucket, in both tables, whose index modulo `modulus` (a
    /// power of two no larger than [`HashTable::min_len`]) is in `residues`. An item's
    /// bucket index modulo `modulus` is fixed by its hash whichever table holds it, so a
    /// walk over the residues with the lock dropped between steps sees every unmoved item
    /// exactly once (the snapshot writer's walk).
    pub fn collect_residues(
        &self,
        slab: &SlabMem,
        residues: std::ops::Range<usize>,
        modulus: usize,
        out: &mut Vec<u32>,
    ) {
        debug_assert!(modulus.is_power_of_two() && modulus <= self.min_len());
        let mut level = std::mem::take(out);
        let start = level.len();
        for t in [&self.table, &self.old] {
            for r in residues.clone() {
                let mut i = r;
                while i < t.len() {
                    if t[i] != NIL {
                        level.push(t[i]);
                    }
                    i += modulus;
                }
            }
        }
        // Chains breadth first: each level's h_next loads are independent of each other,
        // so the CPU overlaps their cache misses (following one chain at a time does not).
        let mut from = start;
        while from < level.len() {
            let to = level.len();
            for k in from..to {
                let n = slab.item(level[k]).h_next();
                if n != NIL {
                    level.push(n);
                }
            }
            from = to;
        }
        *out = level;
    }
}

enum LinkRef {
    Head,
    Item(u32),
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
}

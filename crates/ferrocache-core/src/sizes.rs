//! memcached's item size histogram (`stats sizes`, turned on by `stats sizes_enable`):
//! the live items stored since it was turned on, counted in 32-byte buckets of the size
//! memcached gives them (`ITEM_ntotal`: its 48-byte header, the key and a NUL, the value
//! and CRLF, 4 bytes of client flags when non-zero, 8 of CAS), so the figures are
//! memcached's for the same items, not ferrocache's own item layout.
//!
//! As memcached's: turning it on takes a CAS value as the floor (`stats_sizes_cas_min`);
//! an item counts when linked and uncounts when unlinked if its CAS then is at least that
//! floor, so items stored before it never count. Each shard keeps its own buckets under its
//! lock, summed (wrapping, as memcached's `unsigned int`s) when read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// memcached 1.6's `sizeof(item)` on a 64-bit build.
const HEADER: usize = 48;
const BUCKET: usize = 32;
/// The floor while the histogram is off: no CAS reaches it.
const OFF: u64 = u64::MAX;

/// The store-wide part: whether it is on, and the sizes memcached would add.
pub(crate) struct SizesState {
    cas_min: AtomicU64,
    /// 8 when CAS values count in memcached's item (not with `-C`), else 0.
    cas_bytes: AtomicUsize,
    /// Buckets memcached allocates: `item_size_max / 32 + 1`; larger sizes do not count.
    buckets: usize,
}

impl SizesState {
    pub fn new(item_size_max: usize) -> SizesState {
        SizesState {
            cas_min: AtomicU64::new(OFF),
            cas_bytes: AtomicUsize::new(8),
            buckets: item_size_max / BUCKET + 1,
        }
    }

    /// Whether the histogram is on.
    pub fn enabled(&self) -> bool {
        self.cas_min.load(Ordering::Relaxed) != OFF
    }

    /// Turns it on (every shard lock held, their buckets empty) with `cas_min` as the
    /// floor; `use_cas` false: memcached without CAS (`-C`) counts every item, without
    /// the 8 bytes.
    pub fn enable(&self, cas_min: u64, use_cas: bool) {
        self.cas_bytes
            .store(if use_cas { 8 } else { 0 }, Ordering::Relaxed);
        self.cas_min
            .store(if use_cas { cas_min } else { 0 }, Ordering::Relaxed);
    }

    /// Turns it off (every shard lock held; the caller drops their buckets).
    pub fn disable(&self) {
        self.cas_min.store(OFF, Ordering::Relaxed);
    }

    /// The bucket an item counts in, if it counts (on, CAS at least the floor, in range).
    #[inline]
    pub fn bucket(&self, key_len: usize, value_len: usize, flags: u32, cas: u64) -> Option<u32> {
        if cas < self.cas_min.load(Ordering::Relaxed) {
            return None;
        }
        let total = HEADER
            + key_len
            + 1
            + value_len
            + 2
            + if flags != 0 { 4 } else { 0 }
            + self.cas_bytes.load(Ordering::Relaxed);
        let b = total.div_ceil(BUCKET);
        (b < self.buckets).then_some(b as u32)
    }
}

/// One shard's buckets (bucket index → items), wrapping as memcached's counters.
#[derive(Default)]
pub(crate) struct SizesHist(BTreeMap<u32, u32>);

impl SizesHist {
    #[inline]
    pub fn add(&mut self, bucket: u32) {
        let n = self.0.entry(bucket).or_insert(0);
        *n = n.wrapping_add(1);
    }

    #[inline]
    pub fn remove(&mut self, bucket: u32) {
        let n = self.0.entry(bucket).or_insert(0);
        *n = n.wrapping_sub(1);
    }

    pub fn clear(&mut self) {
        self.0 = BTreeMap::new();
    }

    /// Adds this shard's buckets into `into`.
    pub fn sum_into(&self, into: &mut BTreeMap<u32, u32>) {
        for (&b, &n) in &self.0 {
            let t = into.entry(b).or_insert(0);
            *t = t.wrapping_add(n);
        }
    }
}

/// `(size, items)` pairs as memcached prints them: the bucket's upper bound in bytes
/// (`i * 32`), buckets with a non-zero count only, smallest first.
pub(crate) fn listed(sum: BTreeMap<u32, u32>) -> Vec<(u64, u32)> {
    sum.into_iter()
        .filter(|&(_, n)| n != 0)
        .map(|(b, n)| (b as u64 * BUCKET as u64, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_memcacheds() {
        let s = SizesState::new(1 << 20);
        assert_eq!(s.bucket(2, 1, 0, 5), None, "off");
        s.enable(10, true);
        assert_eq!(s.bucket(2, 1, 0, 9), None, "stored before it was on");
        // measured on memcached 1.6.18: `set k2 0 0 1` counts at 64, `set f1 5 0 10` and a
        // 19-byte key with 9 bytes at 96, a 1,000,000-byte value at 1000064
        assert_eq!(s.bucket(2, 1, 0, 10), Some(2));
        assert_eq!(s.bucket(2, 10, 5, 11), Some(3));
        assert_eq!(s.bucket(19, 9, 0, 12), Some(3));
        assert_eq!(s.bucket(3, 1_000_000, 0, 13), Some(1_000_064 / 32));
        s.enable(0, false);
        assert_eq!(
            s.bucket(2, 1, 0, 0),
            Some(2),
            "-C: every item, no CAS bytes (54)"
        );
        s.disable();
        assert!(!s.enabled());
    }
}

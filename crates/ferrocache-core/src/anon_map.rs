//! Private anonymous mappings: the one owner of the `mmap`/`munmap` calls behind slab pages
//! ([`crate::slab`]) and a store's large zeroed tables ([`crate::zeroed`]).
//!
//! A mapping's pages read as zero and become resident only as they are first written, and
//! `munmap` hands them straight back to the system: glibc's heap would write a large
//! `calloc` to zero whole once its mmap threshold has risen, and keep freed blocks in the
//! middle of its heap resident.

#![cfg(unix)]

use std::ptr::NonNull;

#[cfg(test)]
thread_local! {
    /// Tests: the sizes of maps refused on this thread (empty: none).
    static REFUSED: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Tests: from now on this thread's maps of `sizes` bytes are refused, as the system
/// refuses them under an address-space limit or strict overcommit (`0..0`: none).
#[cfg(test)]
pub(crate) fn refuse(sizes: std::ops::Range<usize>) {
    REFUSED.with(|r| r.set((sizes.start, sizes.end)));
}

/// `bytes` (non-zero) of fresh zeroed memory, page-aligned, or `None` when the system
/// refuses it. Give it back with [`unmap`].
pub(crate) fn map(bytes: usize) -> Option<NonNull<u8>> {
    debug_assert!(bytes > 0);
    #[cfg(test)]
    let (from, to) = REFUSED.with(|r| r.get());
    #[cfg(test)]
    if (from..to).contains(&bytes) {
        return None;
    }
    // SAFETY: a fresh private anonymous mapping, placed by the kernel (no address is passed,
    // so no existing mapping is replaced); it aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast::<u8>())
}

/// The size of a transparent huge page (x86-64, and aarch64 with 4 KiB base pages).
pub(crate) const HUGE: usize = 2 << 20;

/// [`HUGE`] bytes of fresh zeroed memory aligned to [`HUGE`] and advised for transparent
/// huge pages (`MADV_HUGEPAGE`, which THP's default `madvise` mode requires), or `None`
/// when the system refuses the mapping. The kernel may still back it with 4 KiB pages (THP
/// `never`, no huge page free, an advice it refuses): the same memory, only more TLB
/// entries. Give it back with [`unmap`], whole or in parts.
pub(crate) fn map_huge() -> Option<NonNull<u8>> {
    // twice the size, so an aligned region lies inside; the rest goes back at once
    let raw = map(2 * HUGE)?;
    let head = (raw.as_ptr() as usize).next_multiple_of(HUGE) - raw.as_ptr() as usize;
    let start = raw.as_ptr().wrapping_add(head);
    // SAFETY: the head and the tail (head + HUGE .. 2 * HUGE) lie inside the fresh mapping
    // and outside the region kept; nothing uses them.
    unsafe {
        if head > 0 {
            libc::munmap(raw.as_ptr().cast(), head);
        }
        libc::munmap(start.add(HUGE).cast(), HUGE - head);
    }
    #[cfg(target_os = "linux")]
    // SAFETY: advice only, on a region of our own mapping; a refusal changes nothing.
    unsafe {
        libc::madvise(start.cast(), HUGE, libc::MADV_HUGEPAGE)
    };
    NonNull::new(start)
}

/// Gives back a mapping [`map`] made, or a [`map_huge`] region or part of one.
///
/// # Safety
/// `ptr` and `bytes` are those of one [`map`] call, or lie inside one [`map_huge`] region,
/// not unmapped yet, and nothing uses the memory after.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, bytes: usize) {
    // SAFETY: the caller's promise: a live mapping of ours (or part of a huge region) that no
    // one uses any more.
    unsafe { libc::munmap(ptr.as_ptr().cast(), bytes) };
}

/// A store whose mappings the system refuses goes on (out of memory, eviction, no growth),
/// as memcached does when its malloc fails; an abort would take a Node process with it.
#[cfg(test)]
mod tests {
    use super::refuse;
    use crate::{
        ArithRequest, ArithStatus, Config, GetOptions, Store, StoreError, StoreMode, StoreRequest,
        StoreStatus,
    };

    fn set(s: &Store, key: &str) -> Result<(), StoreError> {
        let r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &[7u8; 100]);
        s.store(&r).map(|_| ())
    }

    fn has(s: &Store, key: &str) -> bool {
        s.get(key.as_bytes(), &GetOptions::default(), |_| ())
            .is_some()
    }

    /// Refuses maps until dropped, also when an assertion fails.
    struct Refusing;
    impl Refusing {
        fn sizes(sizes: std::ops::Range<usize>) -> Refusing {
            refuse(sizes);
            Refusing
        }
    }
    impl Drop for Refusing {
        fn drop(&mut self) {
            refuse(0..0);
        }
    }

    #[test]
    fn a_refused_slab_page_is_out_of_memory_or_an_eviction() {
        let s = Store::new(Config::default().shards(1).background(false)).unwrap();
        {
            let _r = Refusing::sizes(0..usize::MAX);
            // no page yet: memcached answers SERVER_ERROR out of memory storing object
            assert_eq!(set(&s, "first"), Err(StoreError::OutOfMemory));
            assert_eq!(s.stats().total_malloced, 0);
        }
        set(&s, "k0").unwrap();
        let st = s.stats();
        let per_page = st
            .classes
            .iter()
            .find(|c| c.total_pages == 1)
            .unwrap()
            .total_chunks;
        // slab pages (1 MiB) are refused, not the hash table's growth
        let _r = Refusing::sizes(1 << 20..usize::MAX);
        // the page fills, then its class evicts instead of taking another page
        for i in 1..per_page + 50 {
            set(&s, &format!("k{i}")).unwrap();
        }
        let st = s.stats();
        assert_eq!(st.total_malloced, 1 << 20);
        assert_eq!(st.evictions, 50);
        assert!(!has(&s, "k0") && has(&s, &format!("k{}", per_page + 49)));
    }

    /// A store of one shard whose 2^14 slots (128 KiB: mapped) may not grow (160 KiB is
    /// refused while the returned guard lives; slab pages, 1 MiB, are granted), filled to
    /// its most entries, 15/16 of the slots plus one; and that number.
    fn full_table(cfg: Config) -> (Store, Refusing, usize) {
        let s = Store::new(cfg.shards(1).hash_power(14).background(false)).unwrap();
        let r = Refusing::sizes(0..1 << 20);
        let most = (1 << 14) * 15 / 16 + 1;
        for i in 0..most {
            set(&s, &format!("k{i}")).unwrap();
        }
        (s, r, most)
    }

    #[test]
    fn a_refused_hash_table_growth_fills_the_table_to_15_16_then_evicts_for_new_keys() {
        let (s, _r, most) = full_table(Config::default());
        // memory has room, the table none: a new key takes the oldest key's entry (before,
        // SERVER_ERROR out of memory while memory had room; memcached's chained table
        // takes it without evicting)
        set(&s, "one more").unwrap();
        let st = s.stats();
        assert_eq!((st.curr_items, st.evictions), (most as u64, 1));
        assert!(!has(&s, "k0") && has(&s, "k1") && has(&s, "one more"));
        // a key the table holds is replaced, not added: no eviction
        let r = StoreRequest::new(StoreMode::Set, b"k1", b"new");
        s.store(&r).unwrap();
        let got = s.get(b"k1", &GetOptions::default(), |it| it.value.to_vec());
        assert_eq!(got.as_deref(), Some(&b"new"[..]));
        assert_eq!(s.stats().evictions, 1);
        // a new key of a class no item here is in evicts from the class with most items
        let big = StoreRequest::new(StoreMode::Set, b"big", &[1u8; 5000]);
        s.store(&big).unwrap();
        let st = s.stats();
        assert_eq!((st.curr_items, st.evictions), (most as u64, 2));
        assert!(!has(&s, "k2") && has(&s, "big"));
        refuse(0..0);
        // granted, the table grows again and keeps everything
        for i in most..3 * most {
            set(&s, &format!("k{i}")).unwrap();
        }
        assert!((3..3 * most).all(|i| has(&s, &format!("k{i}"))));
        assert_eq!(s.stats().evictions, 2);
    }

    #[test]
    fn a_refused_hash_table_growth_without_eviction_refuses_new_keys_but_reclaims_expired() {
        let clock = crate::Clock::manual(1_900_000_000);
        let mut cfg = Config::default()
            .shards(1)
            .hash_power(14)
            .background(false)
            .evict(false);
        cfg.clock = clock.clone();
        let s = Store::new(cfg).unwrap();
        let _r = Refusing::sizes(0..1 << 20);
        let most = (1 << 14) * 15 / 16 + 1;
        for i in 0..most {
            let key = format!("k{i}");
            let mut r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &[7u8; 100]);
            // the oldest two expire in 10 s
            r.exptime = if i < 2 { 10 } else { 0 };
            s.store(&r).unwrap();
        }
        // -M: no key is evicted for a new one (memcached's table would take it)
        assert_eq!(set(&s, "one more"), Err(StoreError::OutOfMemory));
        // a key the table holds is replaced, not added: its set goes on, as memcached's
        // (refused, it dropped the old value too)
        let r = StoreRequest::new(StoreMode::Set, b"k5", b"new");
        s.store(&r).unwrap();
        let got = s.get(b"k5", &GetOptions::default(), |it| it.value.to_vec());
        assert_eq!(got.as_deref(), Some(&b"new"[..]));
        // an expired item at a tail gives its entry up
        clock.advance(11);
        set(&s, "one more").unwrap();
        let st = s.stats();
        assert_eq!((st.curr_items, st.evictions), (most as u64 - 1, 0));
        assert!(!has(&s, "k0") && !has(&s, "k1") && has(&s, "one more") && has(&s, "k2"));
    }

    #[test]
    fn a_refused_hash_table_growth_evicts_for_no_append_prepend_or_longer_incr() {
        // as above: 2^14 slots, their growth refused, slab pages granted
        let s = Store::new(Config::default().shards(1).hash_power(14).background(false)).unwrap();
        let _r = Refusing::sizes(0..1 << 20);
        let most = (1 << 14) * 15 / 16 + 1;
        for i in 0..most {
            let key = format!("k{i}");
            s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), b"99"))
                .unwrap();
        }
        // each replaces an item the table holds with a new one, so needs no new entry
        // (memcached's chained table stores them; before, NOT_STORED / out of memory)
        for (mode, key, want) in [
            (StoreMode::Append, "k1", &b"99x"[..]),
            (StoreMode::Prepend, "k2", b"x99"),
        ] {
            let r = StoreRequest::new(mode, key.as_bytes(), b"x");
            assert_eq!(s.store(&r).unwrap().status, StoreStatus::Stored, "{mode:?}");
            let got = s.get(key.as_bytes(), &GetOptions::default(), |it| {
                it.value.to_vec()
            });
            assert_eq!(got.as_deref(), Some(want));
        }
        let incr = |key: &'static [u8], vivify| ArithRequest {
            key,
            incr: true,
            delta: 1,
            cas: None,
            vivify,
            touch: None,
            new_cas: None,
        };
        // "99" + 1 is a digit longer: a new item
        assert!(matches!(
            s.arith(&incr(b"k3", None)),
            Ok(ArithStatus::Ok { value: 100, .. })
        ));
        let got = s.get(b"k3", &GetOptions::default(), |it| it.value.to_vec());
        assert_eq!(got.as_deref(), Some(&b"100"[..]));
        assert_eq!(s.stats().evictions, 0);
        // a key the table does not hold needs an entry: the oldest key's (before, out of
        // memory while memory had room)
        assert!(matches!(
            s.arith(&incr(b"new", Some((0, 0)))),
            Ok(ArithStatus::Ok { value: 0, .. })
        ));
        let st = s.stats();
        assert_eq!((st.curr_items, st.evictions), (most as u64, 1));
        assert!(has(&s, "new") && !has(&s, "k0"));
    }

    #[test]
    fn a_refused_hash_table_growth_takes_new_keys_by_evicting_whether_memory_is_full_or_not() {
        // 2 pages, one of them the 96-byte class's; the table's 2^14 slots hold 15/16
        // of them plus one (15361 entries) at the most, its growth refused
        let s = Store::new(
            Config::default()
                .shards(1)
                .hash_power(14)
                .memory_limit(2 << 20)
                .background(false),
        )
        .unwrap();
        let _r = Refusing::sizes(0..1 << 20);
        let most = (1 << 14) * 15 / 16 + 1;
        let small = (1 << 20) / 96; // "s00000" + 50 bytes + the header: 92, the 96-byte class
        let put = |key: String, len: usize| {
            let r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &[b'v'; 120][..len]);
            s.store(&r).map(|_| ())
        };
        // the rest of the entries in the 120-byte class, whose page keeps free chunks
        for i in 0..most - small {
            put(format!("m{i:05}"), 70).unwrap();
        }
        for i in 0..small {
            put(format!("s{i:05}"), 50).unwrap();
        }
        let st = s.stats();
        assert_eq!((st.curr_items, st.total_malloced), (most as u64, 2 << 20));
        // the 96-byte class is full and evicts its oldest, which frees an entry too
        // (before, out of memory whatever the memory)
        for i in 0..100 {
            put(format!("t{i:05}"), 50).unwrap();
        }
        let st = s.stats();
        assert_eq!((st.curr_items, st.evictions), (most as u64, 100));
        assert!(has(&s, "t00099") && !has(&s, "s00099") && has(&s, "s00100"));
        // memory has room in the 120-byte class: a new key there takes the entry of the
        // class's oldest (before, out of memory), whose chunk it reuses
        put("m-new".into(), 70).unwrap();
        let st = s.stats();
        assert_eq!((st.curr_items, st.evictions), (most as u64, 101));
        assert_eq!(st.total_malloced, 2 << 20);
        assert!(has(&s, "m-new") && !has(&s, "m00000") && has(&s, "m00001"));
    }

    #[test]
    fn a_refused_page_table_is_an_error_from_new() {
        // its page bases: 2^18 - 1 pointers by default (the hash tables, 32 KiB, are granted)
        let _r = Refusing::sizes(1 << 20..usize::MAX);
        let e = Store::new(Config::default().background(false))
            .err()
            .expect("refused");
        assert!(e.0.contains("cannot allocate the page table"), "{e:?}");
    }
}

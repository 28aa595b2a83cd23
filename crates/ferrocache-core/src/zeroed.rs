//! Zeroed arrays for a store's large tables (hash slots, the slab page table).
//!
//! From the global allocator a store's page table was ~4 MiB of `calloc` (2^18 pages ×
//! 16 bytes, mostly never written). glibc raises its mmap threshold to the size of the
//! largest mapped block freed (up to 32 MiB), so once one store was dropped the next stores'
//! tables came from its heap: `calloc` wrote them all to zero (resident at once) and, freed
//! in any order while many dropped caches awaited collection, they fragmented the heap,
//! which stayed resident.
//! 3,000 small caches dropped without `close()` held ~700 MiB that way, 160 MiB with the
//! threshold pinned. Here a large array is its own anonymous mapping on unix (zero pages
//! the kernel fills in as they are first written, unmapped when dropped); small ones, and
//! all of them elsewhere, stay on the global allocator.

use std::ptr::NonNull;

/// Arrays at least this large (bytes) are mapped on unix. Not glibc's 128 KiB mmap
/// threshold, which it consults only when its heap has no room: a default store's hash
/// tables (32 KiB a shard) came from the heap, and with ~150 dropped stores awaiting a GC
/// they grew it by ~50 MiB that stayed resident after collection. The price: the kernel
/// zeroes a mapping's pages as they are written and takes them back on drop, ~0.3 ms more
/// to make, fill and drop a small store.
const MAP_AT: usize = 16 << 10;

/// `len` zeroed `T`s, freed on drop. Dereferences to a slice.
pub(crate) struct Zeroed<T> {
    ptr: NonNull<T>,
    len: usize,
    mapped: bool,
}

// SAFETY: owns its elements like a Box<[T]>.
unsafe impl<T: Send> Send for Zeroed<T> {}
// SAFETY: as above; shared access hands out only &[T].
unsafe impl<T: Sync> Sync for Zeroed<T> {}

impl<T> Zeroed<T> {
    /// `len` zeroed `T`s, or `None` when the memory is refused.
    ///
    /// # Safety
    /// All-zero bits must be a valid `T`.
    pub unsafe fn try_new(len: usize) -> Option<Zeroed<T>> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        if bytes == 0 {
            return Some(Zeroed::empty());
        }
        #[cfg(unix)]
        if bytes >= MAP_AT {
            return Some(Zeroed {
                ptr: crate::anon_map::map(bytes)?.cast::<T>(),
                len,
                mapped: true,
            });
        }
        let layout = std::alloc::Layout::array::<T>(len).ok()?;
        // SAFETY: the layout's size is not zero.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>())?;
        Some(Zeroed {
            ptr,
            len,
            mapped: false,
        })
    }

    pub fn empty() -> Zeroed<T> {
        Zeroed {
            ptr: NonNull::dangling(),
            len: 0,
            mapped: false,
        }
    }
}

impl<T> std::ops::Deref for Zeroed<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised (zeroed) elements owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> std::ops::DerefMut for Zeroed<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref, borrowed uniquely.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Zeroed<T> {
    fn drop(&mut self) {
        // SAFETY: the elements are owned here and not used after.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            ))
        };
        let bytes = self.len * std::mem::size_of::<T>();
        if bytes == 0 {
            return;
        }
        #[cfg(unix)]
        if self.mapped {
            // SAFETY: mapped in try_new with this size; the elements were dropped above.
            unsafe { crate::anon_map::unmap(self.ptr.cast(), bytes) };
            return;
        }
        let layout = std::alloc::Layout::array::<T>(self.len).expect("layout of an allocation");
        // SAFETY: allocated in try_new with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::Zeroed;

    #[test]
    fn small_and_mapped_arrays_are_zeroed_and_writable() {
        for len in [0usize, 3, 1 << 20] {
            // SAFETY: zero is a valid u64.
            let mut z = unsafe { Zeroed::<u64>::try_new(len) }.expect("memory");
            assert_eq!(z.len(), len);
            assert!(z.iter().all(|&v| v == 0));
            if len > 0 {
                z[len - 1] = 7;
                assert_eq!(z[len - 1], 7);
            }
        }
    }
}

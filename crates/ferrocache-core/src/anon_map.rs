//! Private anonymous mappings: the one owner of the `mmap`/`munmap` calls behind slab pages
//! ([`crate::slab`]) and a store's large zeroed tables ([`crate::zeroed`]).
//!
//! A mapping's pages read as zero and become resident only as they are first written, and
//! `munmap` hands them straight back to the system: glibc's heap would write a large
//! `calloc` to zero whole once its mmap threshold has risen, and keep freed blocks in the
//! middle of its heap resident.

#![cfg(unix)]

use std::ptr::NonNull;

/// `bytes` (non-zero) of fresh zeroed memory, page-aligned, or `None` when the system
/// refuses it. Give it back with [`unmap`].
pub(crate) fn map(bytes: usize) -> Option<NonNull<u8>> {
    debug_assert!(bytes > 0);
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

/// Gives back a mapping [`map`] made.
///
/// # Safety
/// `ptr` and `bytes` are those of one [`map`] call, not unmapped yet, and nothing uses the
/// memory after.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, bytes: usize) {
    // SAFETY: the caller's promise: a whole live mapping of ours that no one uses any more.
    unsafe { libc::munmap(ptr.as_ptr().cast(), bytes) };
}

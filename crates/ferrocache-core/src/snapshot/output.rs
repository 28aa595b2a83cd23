//! Where a snapshot's bytes go: 4 KiB-aligned buffers, and a file written with `O_DIRECT`
//! where the filesystem takes it.
//!
//! Direct writes go from the buffer to the device without the page cache: no kernel copy
//! into freshly allocated cache pages (which cost more CPU than the whole walk on a cold
//! cache: 137 MB took ~0.3 s), no 100+ MB of dirty pages for the final fsync to flush, and
//! the host's page cache is not filled with a file nobody reads until a restart. They need
//! the buffer address, the length and the file offset to be multiples of the device's block
//! size ([`ALIGN`] covers every common one), so the walk fills [`AlignedBuf`]s whose whole
//! blocks are written directly; the unaligned rest at the end of the file, and the header
//! patched in at offset 0, go through the page cache and the final fsync. Filesystems that
//! refuse `O_DIRECT` (tmpfs, some FUSE) get ordinary buffered writes, as do other systems.

use std::alloc::{self, Layout};
use std::fs::File;
use std::io::{self, Write};
use std::ptr::NonNull;

/// Alignment of direct writes: address, length and file offset.
pub const ALIGN: usize = 4096;

/// A growable byte buffer whose start is [`ALIGN`]-aligned (a `Vec<u8>` cannot promise it).
///
/// On Unix its memory is its own anonymous mapping, returned to the OS when it is dropped:
/// from malloc, buffers of this size came from the arenas of the (fresh, per-save) snapshot
/// threads and of the libuv pool once glibc's mmap threshold had risen past them, and the
/// freed space stayed in those arenas: a server's RSS grew ~2 MiB per snapshot (measured
/// over 40 snapshots with churn between them).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: the buffer owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    pub fn with_capacity(cap: usize) -> AlignedBuf {
        let cap = cap.max(ALIGN).next_multiple_of(ALIGN);
        let layout = Layout::from_size_align(cap, ALIGN).expect("snapshot buffer size");
        AlignedBuf {
            ptr: map(layout),
            cap,
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised (written by put/put_zeros).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as as_slice; &mut self makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends `bytes`, growing the buffer (still aligned) when they do not fit.
    #[inline]
    pub fn put(&mut self, bytes: &[u8]) {
        if self.cap - self.len < bytes.len() {
            self.grow(self.len + bytes.len());
        }
        // SAFETY: there is room for `bytes` after `len` (checked above); a caller's slice
        // cannot overlap this buffer's spare capacity.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            );
        }
        self.len += bytes.len();
    }

    /// Appends `n` zero bytes (room for a header filled in later).
    pub fn put_zeros(&mut self, n: usize) {
        if self.cap - self.len < n {
            self.grow(self.len + n);
        }
        // SAFETY: as put.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), 0, n) };
        self.len += n;
    }

    #[cold]
    fn grow(&mut self, need: usize) {
        let mut bigger = AlignedBuf::with_capacity(need.max(self.cap * 2));
        bigger.put(self.as_slice());
        *self = bigger;
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        unmap(self.ptr, self.cap);
    }
}

/// `layout.size()` bytes at an [`ALIGN`]-aligned address: a fresh anonymous mapping (Unix).
#[cfg(unix)]
fn map(layout: Layout) -> NonNull<u8> {
    // SAFETY: an anonymous private mapping of a non-zero size; mappings are page-aligned,
    // and pages are at least ALIGN (4 KiB) on every Unix this builds for.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            layout.size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        alloc::handle_alloc_error(layout);
    }
    debug_assert!((p as usize).is_multiple_of(ALIGN));
    NonNull::new(p as *mut u8).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

#[cfg(unix)]
fn unmap(ptr: NonNull<u8>, cap: usize) {
    // SAFETY: `ptr` and `cap` are one mapping made by `map`, unmapped once (on drop).
    unsafe { libc::munmap(ptr.as_ptr() as *mut libc::c_void, cap) };
}

#[cfg(not(unix))]
fn map(layout: Layout) -> NonNull<u8> {
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

#[cfg(not(unix))]
fn unmap(ptr: NonNull<u8>, cap: usize) {
    // SAFETY: allocated by `map` with this size and alignment.
    unsafe { alloc::dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(cap, ALIGN)) }
}

/// How the snapshot file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `O_DIRECT` if the filesystem accepts it, else buffered.
    DirectIfPossible,
    /// Always through the page cache (the tests compare both).
    #[cfg_attr(not(test), allow(dead_code))]
    Buffered,
}

/// Opens a new file (`create_new`) for writing in `mode`; returns the file and whether its
/// writes bypass the page cache.
pub fn create(path: &std::path::Path, mode: Mode) -> io::Result<(File, bool)> {
    let mut opts = std::fs::OpenOptions::new();
    super::files::private(opts.write(true).create_new(true), 0);
    #[cfg(target_os = "linux")]
    if mode == Mode::DirectIfPossible {
        let mut direct = opts.clone();
        super::files::private(&mut direct, libc::O_DIRECT);
        match direct.open(path) {
            Ok(f) => return Ok((f, true)),
            // the filesystem does not do direct I/O: an ordinary file then
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let _ = mode;
    opts.open(path).map(|f| (f, false))
}

/// Writes `bytes` at the file's position. With `*direct`, `bytes` must start at an aligned
/// address and file offset and be whole blocks; if the filesystem still refuses the direct
/// write, the file is switched to buffered writes (`*direct = false`) and written that way.
pub fn write(file: &mut File, direct: &mut bool, bytes: &[u8]) -> io::Result<()> {
    if *direct {
        debug_assert!(
            (bytes.as_ptr() as usize).is_multiple_of(ALIGN) && bytes.len().is_multiple_of(ALIGN)
        );
        let mut done = 0;
        while done < bytes.len() {
            match super::files::retry_interrupted(|| file.write(&bytes[done..])) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if is_einval(&e) => {
                    // some filesystems open with O_DIRECT but refuse the write, and a short
                    // direct write leaves the offset unaligned: finish through the cache
                    set_buffered(file, direct)?;
                    return file.write_all(&bytes[done..]);
                }
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    }
    file.write_all(bytes)
}

/// Turns off `O_DIRECT` on `file` (for the unaligned end and the header).
pub fn set_buffered(file: &File, direct: &mut bool) -> io::Result<()> {
    if !*direct {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this File owns; no memory is passed.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    let _ = file;
    *direct = false;
    Ok(())
}

fn is_einval(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    let einval = Some(libc::EINVAL);
    #[cfg(not(target_os = "linux"))]
    let einval = None;
    einval.is_some() && e.raw_os_error() == einval
}

impl super::format::RecordSink for AlignedBuf {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        AlignedBuf::put(self, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_aligned_when_it_grows() {
        let mut b = AlignedBuf::with_capacity(10);
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
        b.put(b"abc");
        b.put_zeros(2);
        let big = vec![7u8; 3 * ALIGN + 5];
        b.put(&big);
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.len(), 5 + big.len());
        assert_eq!(&b.as_slice()[..5], b"abc\0\0");
        assert!(b.as_slice()[5..].iter().all(|&x| x == 7));
        b.truncate(4);
        assert_eq!(b.as_mut_slice(), b"abc\0");
        b.truncate(0);
        assert_eq!(b.len(), 0);
    }
}

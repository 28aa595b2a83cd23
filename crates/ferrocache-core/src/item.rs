//! The item: one slab chunk holding a 36-byte header, then the key, then the value.
//!
//! ```text
//! offset  size  field
//!      0     4  h_next      next handle in the free list when the chunk is free; in a live
//!                           item its own flags (bit 0 KEY_BINARY), 0 when stored
//!      4     4  prev        LRU neighbour towards the head
//!      8     4  next        LRU neighbour towards the tail
//!     12     8  cas
//!     20     4  exptime     absolute unix seconds, 0 = never
//!     24     4  time word   bits 0..26 last access (seconds since store start, saturating),
//!                           bits 26..28 LRU segment, bits 28..32 FETCHED/ACTIVE/STALE/TOKEN
//!     28     4  client flags
//!     32     4  lengths     key length in bits 24..32, value length in bits 0..24
//!     36        key, then value
//! ```
//! A chunk whose key length is 0 is free (keys are never empty). Fields are read unaligned
//! because the cas sits at offset 12; on x86-64 and aarch64 that costs nothing.

/// Header bytes in front of the key.
pub const HDR: usize = 36;
/// Cache lines [`Item::prefetch`] asks for: the header, the key and the start of the value
/// (the CPU's adjacent-line prefetch fetches more as the copy reads on; measured on a walk of
/// 1M 152-byte items, one to three lines and 8 to 24 items ahead all took the same time).
const PREFETCH_LINES: usize = 2;
/// A live item's flag in the `h_next` word: its key came base64-encoded (meta `b`), so meta
/// replies echo it in base64 (memcached's ITEM_KEY_BINARY).
const X_KEY_BINARY: u32 = 1;
/// "No item": the end of a chain, list or free list.
pub const NIL: u32 = u32::MAX;

const OFF_HNEXT: usize = 0;
const OFF_PREV: usize = 4;
const OFF_NEXT: usize = 8;
const OFF_CAS: usize = 12;
const OFF_EXP: usize = 20;
const OFF_TIME: usize = 24;
const OFF_FLAGS: usize = 28;
const OFF_LEN: usize = 32;

/// Largest value length the 24-bit field holds (item_size_max is at most 16 MiB, header included).
pub const MAX_VLEN: usize = (1 << 24) - 1;

pub const TIME_MASK: u32 = (1 << 26) - 1;
const SEG_SHIFT: u32 = 26;
const SEG_MASK: u32 = 3 << SEG_SHIFT;
/// Fetched at least once (meta `h`).
pub const F_FETCHED: u32 = 1 << 28;
/// Hit again since it last moved in the LRU.
pub const F_ACTIVE: u32 = 1 << 29;
/// Invalidated by meta `I`; served stale.
pub const F_STALE: u32 = 1 << 30;
/// A win token (meta `W`) has been handed out.
pub const F_TOKEN: u32 = 1 << 31;

/// Bytes memcached 1.6 accounts for an item (header 48 + CAS 8, key + NUL, value + CRLF, 4
/// for non-zero flags), its "too large" bound against `-I`; the codecs check a request's
/// value with the same sum (`item_total_size` in ferrocache-protocol), the engine an
/// append/prepend's joined value.
pub fn memcached_size(klen: usize, vlen: usize, flags: u32) -> usize {
    56 + klen + 1 + vlen + 2 + if flags != 0 { 4 } else { 0 }
}

/// memcached's default `slab_chunk_max` (half its 1 MiB slab page; `Config::slab_chunk_max`
/// sets another): an item whose [`memcached_size`] is larger is chunked there, and its
/// incr/decr refuses it as non-numeric.
pub const SLAB_CHUNK_MAX: usize = 512 * 1024;

/// Bytes an item with these lengths occupies before rounding up to its chunk.
pub fn total_size(klen: usize, vlen: usize) -> usize {
    HDR + klen + vlen
}

/// A pointer to a chunk holding an item. Only the shard that owns the page builds one, while
/// holding its lock, and never keeps it across an operation that can free the chunk.
#[derive(Clone, Copy)]
pub struct Item(*mut u8);

impl Item {
    /// # Safety
    /// `p` must point to a chunk of at least [`HDR`] bytes (plus key and value once written)
    /// that stays allocated while the `Item` is used.
    pub unsafe fn from_ptr(p: *mut u8) -> Item {
        Item(p)
    }

    #[inline]
    fn rd32(self, off: usize) -> u32 {
        // SAFETY: offsets are inside the header, which every chunk has (see from_ptr).
        unsafe { (self.0.add(off) as *const u32).read_unaligned() }
    }
    #[inline]
    fn wr32(self, off: usize, v: u32) {
        // SAFETY: as rd32.
        unsafe { (self.0.add(off) as *mut u32).write_unaligned(v) }
    }

    #[inline]
    pub fn h_next(self) -> u32 {
        self.rd32(OFF_HNEXT)
    }
    #[inline]
    pub fn set_h_next(self, v: u32) {
        self.wr32(OFF_HNEXT, v)
    }
    #[inline]
    pub fn prev(self) -> u32 {
        self.rd32(OFF_PREV)
    }
    #[inline]
    pub fn set_prev(self, v: u32) {
        self.wr32(OFF_PREV, v)
    }
    #[inline]
    pub fn next(self) -> u32 {
        self.rd32(OFF_NEXT)
    }
    #[inline]
    pub fn set_next(self, v: u32) {
        self.wr32(OFF_NEXT, v)
    }
    #[inline]
    pub fn cas(self) -> u64 {
        // SAFETY: as rd32.
        unsafe { (self.0.add(OFF_CAS) as *const u64).read_unaligned() }
    }
    #[inline]
    pub fn set_cas(self, v: u64) {
        // SAFETY: as rd32.
        unsafe { (self.0.add(OFF_CAS) as *mut u64).write_unaligned(v) }
    }
    #[inline]
    pub fn exptime(self) -> u32 {
        self.rd32(OFF_EXP)
    }
    #[inline]
    pub fn set_exptime(self, v: u32) {
        self.wr32(OFF_EXP, v)
    }
    /// Last access, seconds since the store started.
    #[inline]
    pub fn time(self) -> u32 {
        self.rd32(OFF_TIME) & TIME_MASK
    }
    #[inline]
    pub fn set_time(self, t: u32) {
        let w = self.rd32(OFF_TIME);
        self.wr32(OFF_TIME, (w & !TIME_MASK) | t.min(TIME_MASK));
    }
    #[inline]
    pub fn seg(self) -> usize {
        ((self.rd32(OFF_TIME) & SEG_MASK) >> SEG_SHIFT) as usize
    }
    #[inline]
    pub fn set_seg(self, s: usize) {
        let w = self.rd32(OFF_TIME);
        self.wr32(OFF_TIME, (w & !SEG_MASK) | ((s as u32) << SEG_SHIFT));
    }
    #[inline]
    pub fn has(self, flag: u32) -> bool {
        self.rd32(OFF_TIME) & flag != 0
    }
    #[inline]
    pub fn set_flag(self, flag: u32, on: bool) {
        let w = self.rd32(OFF_TIME);
        self.wr32(OFF_TIME, if on { w | flag } else { w & !flag });
    }
    #[inline]
    pub fn client_flags(self) -> u32 {
        self.rd32(OFF_FLAGS)
    }
    #[inline]
    pub fn klen(self) -> usize {
        (self.rd32(OFF_LEN) >> 24) as usize
    }
    #[inline]
    pub fn vlen(self) -> usize {
        (self.rd32(OFF_LEN) & 0x00ff_ffff) as usize
    }
    /// Header + key + value bytes.
    #[inline]
    pub fn total(self) -> usize {
        total_size(self.klen(), self.vlen())
    }
    /// A chunk holds an item when its key length is not 0.
    #[inline]
    pub fn is_live(self) -> bool {
        self.klen() != 0
    }
    /// Marks the chunk free (see [`Item::is_live`]).
    #[inline]
    pub fn clear(self) {
        self.wr32(OFF_LEN, 0)
    }

    /// Asks the CPU to start loading the first `PREFETCH_LINES` cache lines of the chunk
    /// (header, key, the start of the value) without waiting: a walk over many items issues
    /// this a few items ahead so their cache misses overlap instead of following each other.
    /// Only a hint: no memory is read, a wrong address cannot fault.
    #[inline]
    pub fn prefetch(self) {
        #[cfg(target_arch = "x86_64")]
        for line in 0..PREFETCH_LINES {
            // SAFETY: a prefetch never faults and changes nothing but the caches; the
            // address stays inside the chunk's page or just past it (wrapping_add).
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    self.0.wrapping_add(line * 64) as *const i8,
                    std::arch::x86_64::_MM_HINT_T0,
                )
            }
        }
    }

    /// Whether the key came base64-encoded (see [`X_KEY_BINARY`]); live items only.
    #[inline]
    pub fn key_binary(self) -> bool {
        self.rd32(OFF_HNEXT) & X_KEY_BINARY != 0
    }
    #[inline]
    pub fn set_key_binary(self, on: bool) {
        let x = self.rd32(OFF_HNEXT);
        self.wr32(
            OFF_HNEXT,
            if on {
                x | X_KEY_BINARY
            } else {
                x & !X_KEY_BINARY
            },
        )
    }

    /// The key. The slice borrows the chunk; the caller keeps the shard locked meanwhile.
    #[inline]
    pub fn key<'a>(self) -> &'a [u8] {
        // SAFETY: the key was written by `init` and lies inside the chunk.
        unsafe { std::slice::from_raw_parts(self.0.add(HDR), self.klen()) }
    }
    #[inline]
    pub fn value<'a>(self) -> &'a [u8] {
        // SAFETY: as key.
        unsafe { std::slice::from_raw_parts(self.0.add(HDR + self.klen()), self.vlen()) }
    }
    /// The value bytes to fill in after [`Item::init`].
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn value_mut<'a>(self) -> &'a mut [u8] {
        // SAFETY: as key; the shard lock gives exclusive access to the chunk.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(HDR + self.klen()), self.vlen()) }
    }

    /// Writes a fresh header and the key; links are NIL, flags and segment clear.
    pub fn init(self, key: &[u8], vlen: usize, flags: u32, exptime: u32, cas: u64, time: u32) {
        debug_assert!(!key.is_empty() && key.len() <= 255 && vlen <= MAX_VLEN);
        self.set_h_next(0); // a live item's own flags: none yet
        self.set_prev(NIL);
        self.set_next(NIL);
        self.set_cas(cas);
        self.set_exptime(exptime);
        self.wr32(OFF_TIME, time.min(TIME_MASK));
        self.wr32(OFF_FLAGS, flags);
        self.wr32(OFF_LEN, ((key.len() as u32) << 24) | vlen as u32);
        // SAFETY: the chunk holds HDR + key + value bytes (the class was chosen by total_size).
        unsafe { std::ptr::copy_nonoverlapping(key.as_ptr(), self.0.add(HDR), key.len()) }
    }

    /// Copies this whole item (header, key, value) into `dst`'s chunk (page mover).
    pub fn copy_to(self, dst: Item) {
        // SAFETY: both chunks belong to the same class, so dst has room for total() bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.0, dst.0, self.total()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_round_trip_without_clobbering_each_other() {
        let mut buf = vec![0u8; 256];
        let it = unsafe { Item::from_ptr(buf.as_mut_ptr()) };
        it.init(b"key", 5, 0xdead_beef, 1234, u64::MAX - 1, 77);
        it.value_mut().copy_from_slice(b"hello");
        it.set_seg(2);
        it.set_flag(F_FETCHED, true);
        it.set_flag(F_TOKEN, true);
        it.set_time(TIME_MASK + 10); // saturates
        assert_eq!(it.key(), b"key");
        assert_eq!(it.value(), b"hello");
        assert_eq!(it.client_flags(), 0xdead_beef);
        assert_eq!(it.exptime(), 1234);
        assert_eq!(it.cas(), u64::MAX - 1);
        assert_eq!(it.seg(), 2);
        assert!(it.has(F_FETCHED) && it.has(F_TOKEN) && !it.has(F_ACTIVE) && !it.has(F_STALE));
        assert_eq!(it.time(), TIME_MASK);
        assert_eq!(it.total(), HDR + 3 + 5);
        assert_eq!(it.klen(), 3);
        it.clear();
        assert!(!it.is_live());
    }

    #[test]
    fn the_headline_item_fits_the_152_byte_class() {
        assert_eq!(total_size(16, 100), 152);
    }
}

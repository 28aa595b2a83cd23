//! memcached's per-prefix stats: `stats detail on|off|dump` and `-D <char>`. With detail on,
//! text `get`/`gets`/`gat`/`gats` (per key, and whether it hit), storage commands and
//! `delete`, and their binary counterparts count under the key's prefix (what comes before
//! the first delimiter; keys without one count nowhere). Meta commands, `touch` and
//! `incr`/`decr` are not counted, as in memcached 1.6.18 (measured). The dump lists the
//! prefixes in memcached's order: its 256 buckets by MurmurHash3 of the prefix, newest
//! first within a bucket.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

/// memcached's `PREFIX_HASH_SIZE`.
const BUCKETS: usize = 256;
/// Prefixes kept at most (memcached has no bound); further ones are not counted.
pub const MAX_PREFIXES: usize = 1 << 16;

#[derive(Debug)]
struct Prefix {
    name: Vec<u8>,
    get: u64,
    hit: u64,
    set: u64,
    del: u64,
}

/// The per-prefix counters and their switch; in [`crate::ServerInfo`].
#[derive(Debug)]
pub struct Detail {
    enabled: AtomicBool,
    delimiter: AtomicU8,
    /// Each bucket newest first; the number of prefixes.
    table: Mutex<(Vec<Vec<Prefix>>, usize)>,
}

impl Default for Detail {
    fn default() -> Self {
        Detail {
            enabled: AtomicBool::new(false),
            delimiter: AtomicU8::new(b':'),
            table: Mutex::new(((0..BUCKETS).map(|_| Vec::new()).collect(), 0)),
        }
    }
}

impl Detail {
    /// Whether requests are counted (`stats detail on`, or `-D`).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }
    /// `stats detail on|off`.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Relaxed);
    }
    /// The delimiter between prefix and id (`-D`; default `:`).
    pub fn delimiter(&self) -> u8 {
        self.delimiter.load(Relaxed)
    }
    /// Sets the delimiter (`-D`).
    pub fn set_delimiter(&self, c: u8) {
        self.delimiter.store(c, Relaxed);
    }

    /// A text or binary get of `key`.
    pub(crate) fn record_get(&self, key: &[u8], hit: bool) {
        self.count(key, |p| {
            p.get += 1;
            p.hit += hit as u64;
        });
    }
    /// A storage command for `key` (counted whatever its outcome).
    pub(crate) fn record_set(&self, key: &[u8]) {
        self.count(key, |p| p.set += 1);
    }
    /// A delete of `key` (found or not).
    pub(crate) fn record_delete(&self, key: &[u8]) {
        self.count(key, |p| p.del += 1);
    }

    fn count(&self, key: &[u8], f: impl FnOnce(&mut Prefix)) {
        if !self.enabled() {
            return;
        }
        let delimiter = self.delimiter();
        // memcached stops at the delimiter or a NUL; no delimiter: not counted
        let Some(len) = key.iter().position(|&b| b == delimiter || b == 0) else {
            return;
        };
        if key[len] == 0 {
            return;
        }
        let name = &key[..len];
        let bucket = murmur3_32(name) as usize % BUCKETS;
        let mut guard = self.table.lock().unwrap();
        let (buckets, count) = &mut *guard;
        // memcached's stats_prefix_find compares with strncmp(prefix, key, length): the first
        // prefix of the bucket that begins with this one is taken (`b:1` counts under `bad`
        // when both hash to one bucket, an empty prefix under bucket 0's first; measured)
        if let Some(p) = buckets[bucket]
            .iter_mut()
            .find(|p| p.name.starts_with(name))
        {
            return f(p);
        }
        if *count >= MAX_PREFIXES {
            return;
        }
        *count += 1;
        let mut p = Prefix {
            name: name.to_vec(),
            get: 0,
            hit: 0,
            set: 0,
            del: 0,
        };
        f(&mut p);
        buckets[bucket].insert(0, p);
    }

    /// `stats detail dump`: `PREFIX <p> get <n> hit <n> set <n> del <n>` lines and `END`.
    pub(crate) fn dump(&self, out: &mut Vec<u8>) {
        let guard = self.table.lock().unwrap();
        for p in guard.0.iter().flatten() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(&p.name);
            out.extend_from_slice(
                format!(
                    " get {} hit {} set {} del {}\r\n",
                    p.get, p.hit, p.set, p.del
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(b"END\r\n");
    }

    /// `stats reset` forgets every prefix, as memcached's.
    pub(crate) fn clear(&self) {
        let mut guard = self.table.lock().unwrap();
        guard.0.iter_mut().for_each(Vec::clear);
        guard.1 = 0;
    }
}

/// MurmurHash3 x86 32-bit, seed 0: memcached 1.6's default `hash` (`hash_algorithm
/// murmur3`), which places prefixes in its buckets.
fn murmur3_32(data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    let mut h = 0u32;
    let blocks = data.chunks_exact(4);
    let tail = blocks.remainder();
    for b in blocks {
        h ^= mix(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let mut k = 0u32;
    for (i, &b) in tail.iter().enumerate() {
        k ^= (b as u32) << (8 * i);
    }
    if !tail.is_empty() {
        h ^= mix(k);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_known_values() {
        // reference values of MurmurHash3_x86_32 with seed 0
        assert_eq!(murmur3_32(b""), 0);
        assert_eq!(murmur3_32(b"hello"), 0x248b_fa47);
        assert_eq!(murmur3_32(b"Hello, world!"), 0xc036_3e43);
    }

    #[test]
    fn counts_by_prefix_only_when_enabled() {
        let d = Detail::default();
        d.record_set(b"a:1");
        d.set_enabled(true);
        d.record_set(b"a:1");
        d.record_get(b"a:2", false);
        d.record_get(b"a:1", true);
        d.record_delete(b"nopfx");
        let mut out = Vec::new();
        d.dump(&mut out);
        assert_eq!(out, b"PREFIX a get 2 hit 1 set 1 del 0\r\nEND\r\n");
        d.clear();
        out.clear();
        d.dump(&mut out);
        assert_eq!(out, b"END\r\n");
    }
}

//! The backlog: the last `capacity` bytes of the replication stream, so a replica that lost
//! its link can resume from its offset instead of a full sync.

/// A ring buffer over stream offsets `[first, end)`.
#[derive(Debug)]
pub struct Backlog {
    buf: Vec<u8>,
    capacity: usize,
    /// Stream offset of the byte after the last one appended.
    end: u64,
    /// Bytes held (at most `capacity`).
    len: usize,
}

impl Backlog {
    /// An empty backlog whose next byte is stream offset `end`; its memory is allocated on
    /// the first append.
    pub fn new(capacity: usize, end: u64) -> Backlog {
        Backlog {
            buf: Vec::new(),
            capacity: capacity.max(1),
            end,
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Offset of the oldest byte held.
    pub fn first(&self) -> u64 {
        self.end - self.len as u64
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn pos(&self, offset: u64) -> usize {
        (offset % self.capacity as u64) as usize
    }

    pub fn append(&mut self, mut data: &[u8]) {
        if data.len() > self.capacity {
            // only the tail fits
            let skip = data.len() - self.capacity;
            self.end += skip as u64;
            self.len = 0;
            data = &data[skip..];
        }
        if self.buf.is_empty() {
            // zeroed memory comes from calloc: pages are only touched as the stream fills them
            self.buf = vec![0u8; self.capacity];
        }
        let mut at = self.pos(self.end);
        let mut rest = data;
        while !rest.is_empty() {
            let n = rest.len().min(self.capacity - at);
            self.buf[at..at + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            at = (at + n) % self.capacity;
        }
        self.end += data.len() as u64;
        self.len = (self.len + data.len()).min(self.capacity);
    }

    /// Copies up to `max` bytes from `offset` on into `out`; `false` if `offset` is not in
    /// `[first, end]` (the replica must resync in full).
    pub fn read(&self, offset: u64, max: usize, out: &mut Vec<u8>) -> bool {
        if offset < self.first() || offset > self.end {
            return false;
        }
        let n = ((self.end - offset) as usize).min(max);
        let mut at = self.pos(offset);
        let mut left = n;
        while left > 0 {
            let k = left.min(self.capacity - at);
            out.extend_from_slice(&self.buf[at..at + k]);
            left -= k;
            at = (at + k) % self.capacity;
        }
        true
    }

    /// Drops the bytes from `end` on (`end` at most [`Backlog::end`]); the next byte
    /// appended is stream offset `end`.
    pub fn truncate(&mut self, end: u64) {
        if end >= self.end {
            return;
        }
        if end < self.first() {
            self.reset(end);
        } else {
            self.len -= (self.end - end) as usize;
            self.end = end;
        }
    }

    /// Forgets everything; the next byte appended is stream offset `end`.
    pub fn reset(&mut self, end: u64) {
        self.end = end;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    #[test]
    fn reads_back_what_the_window_covers() {
        let mut rng = SmallRng::seed_from_u64(5);
        for cap in [1usize, 7, 64, 1000] {
            let mut start = rng.gen_range(0..10_000u64);
            let mut b = Backlog::new(cap, start);
            let mut all: Vec<u8> = Vec::new();
            // bytes the backlog should hold: a truncation can leave fewer than `cap`
            let mut held = 0usize;
            for _ in 0..300 {
                let n = rng.gen_range(0..cap * 2 + 3);
                let chunk: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                b.append(&chunk);
                all.extend_from_slice(&chunk);
                held = (held + n).min(cap);
                let end = start + all.len() as u64;
                assert_eq!(b.end(), end);
                assert_eq!(b.len(), held);
                let first = b.first();
                let from = rng.gen_range(first..=end);
                let max = rng.gen_range(0..cap + 2);
                let mut out = Vec::new();
                assert!(b.read(from, max, &mut out));
                let lo = (from - start) as usize;
                let hi = (lo + max).min(all.len());
                assert_eq!(out, &all[lo..hi]);
                if first > 0 {
                    assert!(!b.read(first - 1, 10, &mut Vec::new()));
                }
                assert!(!b.read(end + 1, 10, &mut Vec::new()));
                if rng.gen_bool(0.1) {
                    // cut a random tail: what stays readable is unchanged, the rest is gone
                    let cut = rng.gen_range(start..=end);
                    let kept_some = cut >= first;
                    b.truncate(cut);
                    held = held.saturating_sub((end - cut) as usize);
                    all.truncate((cut - start) as usize);
                    if !kept_some {
                        // below the window: nothing is held, the stream restarts at `cut`
                        assert!(b.is_empty());
                        start = cut;
                        all.clear();
                    }
                    assert_eq!(b.end(), cut);
                    if !b.is_empty() {
                        let mut out = Vec::new();
                        assert!(b.read(b.first(), usize::MAX, &mut out));
                        assert_eq!(out, &all[all.len() - b.len()..]);
                    }
                }
            }
        }
    }
}

//! Test helpers: a small in-memory [`Storage`] that follows memcached's item semantics
//! (global CAS counter, in-place incr/decr, win tokens), so the codecs can be checked
//! against recorded memcached replies independently of the real engine.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use ferrocache_core::clock::Clock;
use ferrocache_protocol::storage::*;
use ferrocache_protocol::{Control, ServerInfo, Session};

#[derive(Clone)]
struct Item {
    value: Vec<u8>,
    flags: u32,
    cas: u64,
    exptime: u32,
    time: u32,
    fetched: bool,
    stale: bool,
    token_sent: bool,
    /// Stored with a base64 key (meta `b`).
    key_binary: bool,
}

#[derive(Default)]
struct State {
    items: HashMap<Vec<u8>, Item>,
    next_cas: u64,
    flush_at: Option<(u32, u64)>,
    now_offset: u32,
}

/// memcached-like storage for codec tests.
#[derive(Default)]
pub struct Mock {
    st: RefCell<State>,
}

fn now() -> u32 {
    Clock::System.now()
}

impl Mock {
    fn cas(st: &mut State) -> u64 {
        st.next_cas += 1;
        st.next_cas
    }

    /// Looks up a live item, dropping it if expired or flushed.
    fn live<'a>(st: &'a mut State, key: &[u8]) -> Option<&'a mut Item> {
        let n = now();
        let dead = match st.items.get(key) {
            None => return None,
            Some(it) => {
                (it.exptime != 0 && it.exptime <= n)
                    || st.flush_at.is_some_and(|(t, cas)| n >= t && it.cas <= cas)
            }
        };
        if dead {
            st.items.remove(key);
            return None;
        }
        st.items.get_mut(key)
    }

    fn exp(e: i64) -> Option<u32> {
        Clock::resolve_exptime(e, now())
    }

    fn put(st: &mut State, key: &[u8], value: Vec<u8>, flags: u32, exptime: i64) -> u64 {
        let cas = Self::cas(st);
        // memcached stores items with an exptime in the past; they are simply never found.
        let exptime = Self::exp(exptime).unwrap_or(1);
        let it = Item {
            value,
            flags,
            cas,
            exptime,
            time: now(),
            fetched: false,
            stale: false,
            token_sent: false,
            key_binary: false,
        };
        st.items.insert(key.to_vec(), it);
        cas
    }
}

fn view<'a>(
    key: &'a [u8],
    it: &'a Item,
    last: u32,
    fetched: bool,
    won: bool,
    taken: bool,
) -> ItemView<'a> {
    ItemView {
        key,
        value: &it.value,
        flags: it.flags,
        cas: it.cas,
        exptime: it.exptime,
        last_access_secs: last,
        fetched_before: fetched,
        stale: it.stale,
        won,
        win_taken: taken,
        key_binary: it.key_binary,
    }
}

impl Storage for Mock {
    fn now(&self) -> u32 {
        now()
    }

    fn get<R>(&self, key: &[u8], o: &GetOptions, f: impl FnOnce(&ItemView<'_>) -> R) -> Option<R> {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let mut created = false;
        if Self::live(st, key).is_none() {
            let exp = o.vivify?;
            Self::put(st, key, Vec::new(), 0, exp);
            created = true;
        }
        let it = st.items.get_mut(key).unwrap();
        let n = now();
        if let Some(t) = o.touch {
            it.exptime = Self::exp(t).unwrap_or(1);
        }
        let taken = it.token_sent;
        let mut won = created;
        // only meta mg takes the token (memcached 1.6.18's get/gets/gat/binary reads do not)
        if !created && !it.token_sent && o.may_win {
            if let Some(r) = o.recache_below {
                if it.exptime != 0 && it.exptime.saturating_sub(n) < r {
                    won = true;
                }
            }
            if it.stale {
                won = true;
            }
        }
        if won {
            it.token_sent = true;
        }
        let last = n.saturating_sub(it.time);
        let fetched = it.fetched;
        let snapshot = it.clone();
        if !o.no_bump {
            it.fetched = true;
            it.time = n;
        }
        Some(f(&view(key, &snapshot, last, fetched, won, taken && !won)))
    }

    fn store(&self, r: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let old = Self::live(st, r.key).cloned();
        let none = |s| Ok(StoreOutcome { status: s, cas: 0 });
        let mut value = r.value.to_vec();
        let (mut flags, mut exptime) = (r.flags, r.exptime);
        if let Some(c) = r.cas {
            match &old {
                None => return none(StoreStatus::NotFound),
                Some(o) if o.cas != c && !(r.invalidate && c < o.cas) => {
                    return none(StoreStatus::Exists)
                }
                _ => {}
            }
        }
        match r.mode {
            StoreMode::Add if old.is_some() => return none(StoreStatus::NotStored),
            StoreMode::Replace | StoreMode::Append | StoreMode::Prepend if old.is_none() => {
                return none(StoreStatus::NotStored)
            }
            StoreMode::Append | StoreMode::Prepend => {
                let o = old.as_ref().unwrap();
                value = if r.mode == StoreMode::Append {
                    [&o.value[..], r.value].concat()
                } else {
                    [r.value, &o.value[..]].concat()
                };
                flags = o.flags;
                exptime = 0;
            }
            _ => {}
        }
        let stale = r.invalidate
            && r.cas
                .is_some_and(|c| old.as_ref().is_some_and(|o| c < o.cas));
        let cas = Self::put(st, r.key, value, flags, exptime);
        let it = st.items.get_mut(r.key).unwrap();
        if matches!(r.mode, StoreMode::Append | StoreMode::Prepend) {
            it.exptime = old.unwrap().exptime;
        }
        it.stale = stale;
        Ok(StoreOutcome {
            status: StoreStatus::Stored,
            cas,
        })
    }

    fn delete(&self, r: &DeleteRequest<'_>) -> DeleteStatus {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let Some(it) = Self::live(st, r.key) else {
            return DeleteStatus::NotFound;
        };
        if r.cas.is_some_and(|c| c != it.cas) {
            return DeleteStatus::Exists;
        }
        if r.invalidate {
            if let Some(e) = r.exptime {
                it.exptime = Self::exp(e).unwrap_or(1);
            }
            it.stale = true;
            it.token_sent = false;
            let c = Self::cas(st);
            st.items.get_mut(r.key).unwrap().cas = c;
            return DeleteStatus::Deleted;
        }
        st.items.remove(r.key);
        DeleteStatus::Deleted
    }

    fn arith(&self, r: &ArithRequest<'_>) -> Result<ArithStatus, StoreError> {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let Some(it) = Self::live(st, r.key) else {
            return match r.vivify {
                Some((initial, exp)) => {
                    let cas = Self::put(st, r.key, initial.to_string().into_bytes(), 0, exp);
                    Ok(ArithStatus::Ok {
                        value: initial,
                        cas,
                        created: true,
                    })
                }
                None => Ok(ArithStatus::NotFound),
            };
        };
        if r.cas.is_some_and(|c| c != it.cas) {
            return Ok(ArithStatus::Exists);
        }
        let cur = ferrocache_protocol::num::parse_u64(&it.value).ok_or(StoreError::NonNumeric)?;
        let v = if r.incr {
            cur.wrapping_add(r.delta)
        } else {
            cur.saturating_sub(r.delta)
        };
        let digits = v.to_string().into_bytes();
        if digits.len() <= it.value.len() {
            // memcached rewrites in place, padding with spaces.
            let len = it.value.len();
            it.value = digits;
            it.value.resize(len, b' ');
        } else {
            it.value = digits;
        }
        if let Some(t) = r.touch {
            it.exptime = Self::exp(t).unwrap_or(1);
        }
        let c = Self::cas(st);
        st.items.get_mut(r.key).unwrap().cas = c;
        Ok(ArithStatus::Ok {
            value: v,
            cas: c,
            created: false,
        })
    }

    fn mark_key_binary(&self, key: &[u8]) {
        if let Some(it) = Self::live(&mut self.st.borrow_mut(), key) {
            it.key_binary = true;
        }
    }
    fn touch(&self, key: &[u8], exptime: i64) -> bool {
        let mut st = self.st.borrow_mut();
        match Self::live(&mut st, key) {
            Some(it) => {
                it.exptime = Self::exp(exptime).unwrap_or(1);
                true
            }
            None => false,
        }
    }

    fn flush_all(&self, delay: i64) {
        let mut st = self.st.borrow_mut();
        let cas = st.next_cas;
        if delay <= 0 {
            st.items.clear();
        } else {
            st.flush_at = Some((Self::exp(delay).unwrap_or(0), cas));
        }
    }

    fn stats(&self) -> Stats {
        let st = self.st.borrow();
        Stats {
            curr_items: st.items.len() as u64,
            limit_maxbytes: 64 << 20,
            ..Default::default()
        }
    }

    fn reset_stats(&self) {}

    fn item_size_max(&self) -> usize {
        1 << 20
    }

    fn visit(&self, mut f: impl FnMut(&ItemView<'_>)) {
        let st = self.st.borrow();
        let n = now();
        for (k, it) in &st.items {
            if it.exptime == 0 || it.exptime > n {
                f(&view(
                    k,
                    it,
                    n.saturating_sub(it.time),
                    it.fetched,
                    false,
                    false,
                ));
            }
        }
    }

    fn slab_class(&self, total: usize) -> u32 {
        // memcached's default classes: 96, 120, 152, … (factor 1.25, 8-byte aligned).
        let mut size = 96usize;
        let mut id = 1;
        while size < total {
            size = ((size as f64 * 1.25) as usize).div_ceil(8) * 8;
            id += 1;
        }
        id
    }
}

/// A session over a fresh mock, reporting version 1.6.18 like the recorded server.
pub fn mock_session() -> Session<Mock> {
    Session::new(Mock::default(), Arc::new(ServerInfo::new("1.6.18")))
}

/// The replies of the real engine (no background thread) to `input` fed in one piece, as
/// text: for checks of codec and engine together against replies measured on memcached.
pub fn engine_replies(input: &[u8]) -> String {
    let store = Arc::new(
        ferrocache_core::Store::new(ferrocache_core::Config::default().background(false)).unwrap(),
    );
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut out = Vec::new();
    s.feed(input, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Feeds `input` in pieces of `chunk` bytes; returns the replies and whether it closed.
pub fn feed_chunked<S: Storage>(s: &mut Session<S>, input: &[u8], chunk: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        if s.feed(piece, &mut out) != Control::Continue {
            return (out, true);
        }
    }
    (out, false)
}

/// xorshift64*: a small deterministic generator for randomized tests (no dependency).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

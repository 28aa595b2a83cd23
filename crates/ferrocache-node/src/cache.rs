//! The engine's [`Store`] for the embedded `Cache` (`src/cache.ts`).
//!
//! `NativeCache` is the store's lifetime: it builds it, registers it under a small
//! integer id in this thread's registry, and drops it on `close()` (or when collected).
//! The operations are plain functions taking that id, not class methods: napi-rs checks
//! every `&self` method call against a process-wide borrow table, which costs several
//! times the lookup itself. The hot single-key ones are registered by hand (`ops.rs`);
//! the batch ones below are `#[napi]` functions. A call reads its arguments with exactly
//! the napi call each needs (`convert.rs`) and returns hits through the scratch buffer
//! (`scratch.rs`).
//!
//! Only conversions and error mapping live here; the semantics are the engine's.

// napi-rs compiles its export registration out of test builds, so in `cargo test` and
// `clippy --all-targets` everything reached only from JS looks unused.
#![cfg_attr(test, allow(dead_code))]

mod convert;
mod ops;
mod scratch;
mod stats;

use std::cell::RefCell;
use std::ptr;
use std::sync::Arc;

use ferrocache_core::{
    ArithRequest, ArithStatus, Config, DeleteRequest, DeleteStatus, GetOptions, Store, StoreError,
    StoreMode, StoreRequest, StoreStatus,
};
use napi::bindgen_prelude::ObjectFinalize;
use napi::{sys, Env, Error, Result, Status};
use napi_derive::napi;

use convert::{
    array_len, check, encode, error_code, new_bigint, read_key, read_u64, store_error,
    store_error_sized, throw, throw_log_failed, undefined, with_value, JsArg, JsOut, KeyBuf,
    KeyList, KeyName, Kind,
};
use scratch::{number, Out, Placed};

pub(crate) use ops::register_cache_ops;

/// Engine settings from JS; anything left out keeps memcached's default.
#[napi(object)]
pub struct NativeCacheOptions {
    /// Bytes of item memory (memcached `-m`; default 64 MiB).
    pub memory_limit: Option<f64>,
    /// Largest item in bytes, header and key included (`-I`; default 1 MiB).
    pub item_size_max: Option<f64>,
    /// Ratio between slab class chunk sizes (`-f`; default 1.25).
    pub growth_factor: Option<f64>,
    /// Minimum key + value + flags space of the smallest chunk (`-n`; default 48).
    pub slab_min_size: Option<f64>,
    /// Explicit chunk sizes of the first slab classes instead of the growth series
    /// (memcached `-o slab_sizes`); see `Config::slab_sizes`.
    pub slab_sizes: Option<Vec<u32>>,
    /// memcached's largest slab class (`-o slab_chunk_max`); see `Config::slab_chunk_max`.
    pub slab_chunk_max: Option<f64>,
    /// Evict the least recently used items when full (default); `false` fails the write.
    pub evict: Option<bool>,
    /// Number of independently locked shards, a power of two (default 8).
    pub shards: Option<u32>,
    /// Move slab pages between classes as the value-size mix shifts (default true).
    pub slab_automove: Option<bool>,
    /// Pages may change class (default); `false` (memcached `-o no_slab_reassign`) refuses
    /// `slabs reassign`, and automove and a lowered memory limit move no page.
    pub slab_reassign: Option<bool>,
    /// memcached's `-o slab_automove_window` (default 30, at least 3): the samples, one a
    /// second, a class needs without eviction, out-of-memory or new page before automove 1
    /// under `-M` hands one of its pages back to the pool.
    pub slab_automove_window: Option<u32>,
    /// The hash table's first size: 2^N slots in all, split between the shards (memcached
    /// `-o hashpower`; default 2^12 per shard).
    pub hash_power: Option<u32>,
    /// Grow the hash table once 3/4 full (default); `false` (memcached `-o no_hashexpand`)
    /// only once 15/16 full.
    pub hash_expand: Option<bool>,
    /// Slab pages past the first two in 2 MiB pairs advised for transparent huge pages
    /// (memcached `-L`; default false); see `Config::large_pages`.
    pub large_pages: Option<bool>,
}

/// Stores of this thread by id. A slot is reused only after its `NativeCache` is
/// collected, so a closed cache's id can never reach another cache's store.
struct Registry {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
}

/// One live store and the memory V8 was told it holds.
///
/// V8 sees a `NativeCache` as a small object, so without a report a program that drops
/// caches without `close()` grew by their slab pages for as long as no GC happened to run.
/// The report is the store's slab pages (`total_malloced`), not its limit: reported whole,
/// the limit of an empty 1 GiB cache pushed V8 over its external-memory limit and started a
/// full GC for every such cache made. (`process.memoryUsage().external` counts only
/// ArrayBuffers, so it never showed either figure.) The report is brought up
/// to date on this thread after the calls that can allocate, only once it is `step` off
/// (few V8 adjustments; the check is one relaxed load and a compare), and given back on
/// `close()` or when the cache is collected. Pages the engine's background work takes or
/// releases show up at the next such call.
///
/// The rest of the store (`native_bytes`: hash tables, resident as they fill, bookkeeping;
/// ~330 KiB for a default store) is reported once when it is made. Unreported, a program
/// dropping caches it never wrote to showed V8 nothing: 10,000 such caches kept up to 3,508
/// of them alive at once (each had a background thread then; all stores now share two),
/// and their heap stayed resident after collection.
struct Slot {
    store: Arc<Store>,
    /// Bytes reported to V8 for this store's slab pages.
    reported: usize,
    /// Bytes reported to V8 for the rest of the store, once.
    fixed: usize,
    /// How far the slab bytes may drift from `reported` before V8 hears of it.
    step: usize,
}

/// Most a report may lag the store's slab pages: 4 MiB, or a quarter of a smaller limit
/// (at least one 1 MiB page), so that small dropped caches count too.
fn report_step(limit: usize) -> usize {
    (limit / 4).clamp(1 << 20, 4 << 20)
}

/// Most of a store's `native_bytes` V8 hears of: a large hash table (`hashPower`) is mapped
/// lazily and grows resident with the items, whose slab pages are reported; reported whole,
/// an empty cache with a 2^24-slot table would start a full GC.
const FIXED_MAX: usize = 4 << 20;

/// What a write needs to keep the report current: the slot's figures, copied.
#[derive(Clone, Copy)]
struct Mark {
    reported: usize,
    step: usize,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = const {
        RefCell::new(Registry { slots: Vec::new(), free: Vec::new() })
    };
}

/// The store behind `id`, or a thrown "closed" error. The `Arc` is cloned so the registry
/// is not borrowed while the engine runs (a GC during the call may finalize a cache).
fn store_of(env: sys::napi_env, id: u32) -> Result<Arc<Store>> {
    let store = REGISTRY.with(|r| {
        let r = r.borrow();
        r.slots.get(id as usize)?.as_ref().map(|s| s.store.clone())
    });
    store.ok_or_else(|| throw(env, Kind::Error, "FERROCACHE_CLOSED", "the cache is closed"))
}

/// [`store_of`] for a call that can allocate slab pages; pass the mark to [`note_memory`]
/// after it.
fn store_for_write(env: sys::napi_env, id: u32) -> Result<(Arc<Store>, Mark)> {
    let found = REGISTRY.with(|r| {
        let r = r.borrow();
        let s = r.slots.get(id as usize)?.as_ref()?;
        let mark = Mark {
            reported: s.reported,
            step: s.step,
        };
        Some((s.store.clone(), mark))
    });
    found.ok_or_else(|| throw(env, Kind::Error, "FERROCACHE_CLOSED", "the cache is closed"))
}

/// Tells V8 of the store's slab pages once they are a step off the last report.
#[inline(always)]
fn note_memory(env: sys::napi_env, id: u32, store: &Arc<Store>, mark: Mark) {
    if store.slab_bytes().abs_diff(mark.reported) >= mark.step {
        report_memory(env, id, store);
    }
}

/// Reports `store`'s slab bytes for cache `id` to V8 now (nothing if `id` holds another
/// store: a server session may outlive its cache). Also for the server session.
#[inline(never)]
pub(crate) fn report_memory(env: sys::napi_env, id: u32, store: &Arc<Store>) {
    let change = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let slot = r.slots.get_mut(id as usize)?.as_mut()?;
        if !Arc::ptr_eq(&slot.store, store) {
            return None;
        }
        let now = store.slab_bytes();
        let change = now as i64 - slot.reported as i64;
        slot.reported = now;
        Some(change)
    });
    // outside the borrow: V8 may run a GC, and a finalizer may reach the registry
    if let Some(change) = change.filter(|&c| c != 0) {
        adjust_external(env, change);
    }
}

/// [`report_memory`] when the report may be a step off (after a server session's input).
pub(crate) fn note_memory_of(env: sys::napi_env, id: u32, store: &Arc<Store>) {
    let mark = REGISTRY.with(|r| {
        let r = r.borrow();
        let s = r.slots.get(id as usize)?.as_ref()?;
        Some(Mark {
            reported: s.reported,
            step: s.step,
        })
    });
    if let Some(mark) = mark {
        note_memory(env, id, store, mark);
    }
}

fn adjust_external(env: sys::napi_env, change: i64) {
    let mut total = 0i64;
    // SAFETY: called on the JS thread with the env of the current call.
    unsafe { sys::napi_adjust_external_memory(env, change, &mut total) };
}

/// Takes cache `id`'s store out of the registry and gives back what V8 was told it holds.
fn take_slot(env: sys::napi_env, id: u32) -> Option<Arc<Store>> {
    let slot = REGISTRY.with(|r| r.borrow_mut().slots[id as usize].take())?;
    let given = slot.reported + slot.fixed;
    if given != 0 {
        adjust_external(env, -(given as i64));
    }
    Some(slot.store)
}

/// The storage engine behind one embedded cache: its lifetime and stats. The operations
/// are the `cache*` functions, which take `id`. Use `Cache` from the package instead.
#[napi(custom_finalize)]
pub struct NativeCache {
    id: u32,
}

#[napi]
impl NativeCache {
    /// Builds the engine; a bad setting throws a `RangeError` naming it.
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<NativeCacheOptions>) -> Result<Self> {
        let config = match options {
            Some(o) => build_config(o),
            None => Ok(Config::default()),
        };
        let store = match config.and_then(|c| Store::new(c).map_err(|e| e.0)) {
            Ok(store) => Arc::new(store),
            Err(msg) => {
                let msg = format!("invalid cache options: {msg}");
                return Err(throw(env.raw(), Kind::Range, "FERROCACHE_BAD_OPTION", &msg));
            }
        };
        let fixed = store.native_bytes().min(FIXED_MAX);
        let slot = Slot {
            step: report_step(store.config().memory_limit),
            reported: 0,
            fixed,
            store,
        };
        let id = REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            match r.free.pop() {
                Some(id) => {
                    r.slots[id as usize] = Some(slot);
                    id
                }
                None => {
                    r.slots.push(Some(slot));
                    (r.slots.len() - 1) as u32
                }
            }
        });
        // outside the borrow: V8 may run a GC, and a finalizer may reach the registry
        adjust_external(env.raw(), fixed as i64);
        Ok(NativeCache { id })
    }

    /// The id the `cache*` functions take.
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether `close()` has been called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        REGISTRY.with(|r| r.borrow().slots[self.id as usize].is_none())
    }

    /// Unix seconds by the engine's clock: what a ttl over 30 days is counted from, since
    /// memcached reads such an exptime as an absolute time (`Date.now()` may be a test's fake).
    #[napi(getter)]
    pub fn now(&self, env: Env) -> Result<u32> {
        Ok(store_of(env.raw(), self.id)?.now())
    }

    /// memcached's `-C` (`false`): the engine sizes items as memcached does without its 8
    /// bytes of CAS, for the item size limit of an append/prepend and incr/decr's chunked
    /// items (the server's replies show CAS 0 through `NativeServerInfo.setSwitches`).
    #[napi]
    pub fn set_use_cas(&self, env: Env, on: bool) -> Result<()> {
        store_of(env.raw(), self.id)?.set_use_cas(on);
        Ok(())
    }

    /// Every counter with memcached's stat names; per-class figures under `slabs`.
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn stats(&self, env: Env) -> Result<JsOut> {
        let env = env.raw();
        let store = store_of(env, self.id)?;
        stats::stats_object(env, &store.stats(), store.now()).map(JsOut)
    }

    /// Drops the engine: its memory is freed at once unless a server session or a
    /// running snapshot still shares the store. Later calls throw.
    // `&self`, not `&mut self`: napi-rs keeps a shared borrow of the cache for as long as
    // an async task that took it (a snapshot) runs, and a `&mut self` close would throw then.
    #[napi]
    pub fn close(&self, env: Env) {
        let store = take_slot(env.raw(), self.id);
        drop(store); // outside the borrow: dropping waits for a background step of it to end
    }

    /// The engine, shared (e.g. with a network server session); fails once closed.
    pub(crate) fn store(&self) -> Result<Arc<Store>> {
        REGISTRY
            .with(|r| {
                let r = r.borrow();
                r.slots[self.id as usize].as_ref().map(|s| s.store.clone())
            })
            .ok_or_else(|| Error::new(Status::GenericFailure, "the cache is closed"))
    }
}

impl ObjectFinalize for NativeCache {
    /// Collected: the store goes in `drop`, and V8 hears that its memory went with it.
    fn finalize(self, env: Env) -> Result<()> {
        let store = take_slot(env.raw(), self.id);
        drop(store); // `drop(self)` then frees the id
        Ok(())
    }
}

impl Drop for NativeCache {
    fn drop(&mut self) {
        let id = self.id;
        // try_with: at thread exit the registry may already be gone, taking the stores.
        let store = REGISTRY.try_with(|r| {
            let mut r = r.try_borrow_mut().ok()?;
            let slot = r.slots[id as usize].take();
            r.free.push(id);
            slot
        });
        drop(store);
    }
}

fn build_config(o: NativeCacheOptions) -> std::result::Result<Config, String> {
    let mut c = Config::default();
    if let Some(v) = o.memory_limit {
        c = c.memory_limit(to_size(v, "memoryLimit")?);
    }
    if let Some(v) = o.item_size_max {
        c = c.item_size_max(to_size(v, "maxItemSize")?);
    }
    if let Some(v) = o.growth_factor {
        c = c.growth_factor(v);
    }
    if let Some(v) = o.slab_min_size {
        c = c.slab_min_size(to_size(v, "slabMinSize")?);
    }
    if let Some(v) = o.slab_sizes {
        c = c.slab_sizes(v);
    }
    if let Some(v) = o.slab_chunk_max {
        c = c.slab_chunk_max(to_size(v, "slabChunkMax")?);
    }
    if let Some(v) = o.evict {
        c = c.evict(v);
    }
    if let Some(v) = o.shards {
        c = c.shards(v as usize);
    }
    if let Some(v) = o.slab_automove {
        c = c.slab_automove(v);
    }
    if let Some(v) = o.slab_reassign {
        c = c.slab_reassign(v);
    }
    if let Some(v) = o.slab_automove_window {
        c = c.slab_automove_window(v);
    }
    if let Some(v) = o.hash_power {
        let p = u8::try_from(v).map_err(|_| format!("hashPower must be at most 32, got {v}"))?;
        c = c.hash_power(p);
    }
    if let Some(v) = o.hash_expand {
        c = c.hash_expand(v);
    }
    if let Some(v) = o.large_pages {
        c = c.large_pages(v);
    }
    Ok(c)
}

fn to_size(v: f64, name: &str) -> std::result::Result<usize, String> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= usize::MAX as f64 {
        Ok(v as usize)
    } else {
        Err(format!("{name} must be a whole number of bytes, got {v}"))
    }
}

// ---- reads: a hit is the value's length in the scratch buffer, a miss -1 ----

const MISS: i32 = -1;

/// One read (get/gets/gat): a Buffer's bytes go to the read pool (or the scratch buffer
/// when the pool is full), a string's to the scratch buffer; with `with_meta` the CAS and
/// flags go to the scratch buffer too. Returns the value itself when it is too large for
/// the scratch buffer, else nothing (`undefined` in JS: napi leaves the return value
/// unset for a null result) with the length, or -1 for a miss, in the scratch buffer.
fn read(
    env: sys::napi_env,
    id: u32,
    key: sys::napi_value,
    opts: &GetOptions,
    as_string: bool,
    with_meta: bool,
) -> Result<sys::napi_value> {
    let store = store_of(env, id)?;
    let mut buf = KeyBuf::new();
    let key = read_key(env, key, KeyName::Key, &mut buf)?;
    let mut out = Out::new(env)?;
    let hit = store.get(key, opts, |item| {
        if with_meta {
            out.put_meta(item.cas, item.flags);
        }
        out.place(item.value, as_string)
    });
    match hit {
        Some(Placed::Len(n)) => out.set_len(n as i32),
        Some(Placed::Large(bytes)) => return encode(env, &bytes, as_string),
        None => out.set_len(MISS),
    }
    Ok(ptr::null_mut())
}

/// Reads many keys in one crossing (all checked first). One entry per key, in order:
/// -1 for a miss, a length for a value placed next in the scratch buffer (values follow
/// one another from its data offset), or the value itself when it did not fit.
#[napi(ts_return_type = "Array<number | Buffer | string>")]
pub fn cache_get_many(
    env: Env,
    id: u32,
    #[napi(ts_arg_type = "string[]")] keys: JsArg,
    as_string: bool,
) -> Result<JsOut> {
    let env = env.raw();
    let store = store_of(env, id)?;
    let keys = KeyList::read(env, keys.0)?;
    let mut result = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_array_with_length(env, keys.len(), &mut result)
    })?;
    let mut out = Out::new(env)?;
    for i in 0..keys.len() {
        let hit = store.get(keys.get(i), &GetOptions::default(), |item| {
            out.put(item.value, as_string)
        });
        let value = match hit {
            Some(v) => v?,
            None => number(env, MISS)?,
        };
        check(env, unsafe {
            sys::napi_set_element(env, result, i as u32, value)
        })?;
    }
    Ok(JsOut(result))
}

// ---- writes ----

/// The server's rule for a log that cannot write (`Storage::accepting_writes`), checked by
/// every write before its change, so a refused write changes nothing, and after it, so a
/// change whose record failed is not acknowledged (`applied`: it was made). Without a
/// journal this is one load of its empty slot, inlined; the check itself is out of line
/// (inlined, with the check in `with_value`'s closure, it made every set about 110
/// instructions longer under callgrind; now about 20 of the ~2,800 a set takes).
#[inline(always)]
fn log_gate(env: sys::napi_env, store: &Store, applied: bool) -> Result<()> {
    match store.journal() {
        None => Ok(()),
        Some(_) => check_log(env, store, applied),
    }
}

/// [`log_gate`] with a journal: retries a failed log write first (the server's rule).
#[inline(never)]
fn check_log(env: sys::napi_env, store: &Store, applied: bool) -> Result<()> {
    if store.accepting_writes() {
        return Ok(());
    }
    let why = store.journal().and_then(|j| j.last_error());
    Err(throw_log_failed(env, why, applied))
}

fn store_request<'a>(
    mode: StoreMode,
    key: &'a [u8],
    value: &'a [u8],
    flags: u32,
    exptime: i64,
    cas: Option<u64>,
) -> StoreRequest<'a> {
    StoreRequest {
        mode,
        key,
        value,
        flags,
        exptime,
        cas,
        invalidate: false,
        new_cas: None,
        vivify: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn store_one(
    env: sys::napi_env,
    id: u32,
    mode: StoreMode,
    key: sys::napi_value,
    value: sys::napi_value,
    flags: u32,
    exptime: i64,
    cas: Option<u64>,
) -> Result<bool> {
    let (store, mark) = store_for_write(env, id)?;
    let mut buf = KeyBuf::new();
    let key = read_key(env, key, KeyName::Key, &mut buf)?;
    // the log checks stay out of the closure, which is inlined twice (string and bytes)
    log_gate(env, &store, false)?;
    let stored = with_value(env, value, "value", |bytes| {
        let req = store_request(mode, key, bytes, flags, exptime, cas);
        match store.store(&req) {
            Ok(outcome) => Ok(outcome.status == StoreStatus::Stored),
            Err(e) => Err(store_error(env, e, &store, &req)),
        }
    });
    note_memory(env, id, &store, mark);
    let stored = stored?;
    log_gate(env, &store, stored)?;
    Ok(stored)
}

/// memcached `cas`: stores only if the item's CAS is still `cas`; `false` when it
/// changed (EXISTS) or the key is gone (NOT_FOUND).
#[napi]
pub fn cache_cas(
    env: Env,
    id: u32,
    #[napi(ts_arg_type = "string")] key: JsArg,
    #[napi(ts_arg_type = "string | Uint8Array")] value: JsArg,
    flags: u32,
    exptime: i64,
    #[napi(ts_arg_type = "bigint")] cas: JsArg,
) -> Result<bool> {
    let env = env.raw();
    let cas = read_u64(env, cas.0, "cas")?;
    store_one(
        env,
        id,
        StoreMode::Set,
        key.0,
        value.0,
        flags,
        exptime,
        Some(cas),
    )
}

/// Stores many items with the same flags and exptime in one crossing. Every key is
/// checked before anything is stored. An entry too large or out of memory is skipped and
/// the first such error thrown once the others are stored; a log that cannot write stops
/// the batch at that entry, the earlier ones stay stored.
#[napi]
pub fn cache_set_many(
    env: Env,
    id: u32,
    #[napi(ts_arg_type = "string[]")] keys: JsArg,
    #[napi(ts_arg_type = "Array<string | Uint8Array>")] values: JsArg,
    flags: u32,
    exptime: i64,
) -> Result<()> {
    let env = env.raw();
    let (store, mark) = store_for_write(env, id)?;
    let keys = KeyList::read_named(env, keys.0, KeyName::Entry)?;
    if array_len(env, values.0, "values")? != keys.len() {
        let msg = "keys and values must have the same length";
        return Err(throw(env, Kind::Type, "FERROCACHE_BAD_ARGUMENT", msg));
    }
    // the report is brought up to date however the batch ends
    let stored = (|| -> Result<()> {
        // an entry the engine refuses (too large, out of memory) does not stop the batch:
        // the rest is stored and the first refusal thrown after it, as a Client's batch
        // (every entry sent at once) ends
        let mut refused = None;
        for i in 0..keys.len() {
            let mut value = ptr::null_mut();
            check(env, unsafe {
                sys::napi_get_element(env, values.0, i as u32, &mut value)
            })?;
            log_gate(env, &store, i > 0)?;
            with_value(env, value, "value", |bytes| {
                let req = store_request(StoreMode::Set, keys.get(i), bytes, flags, exptime, None);
                if let Err(e) = store.store(&req) {
                    refused.get_or_insert((e, req.key.len(), bytes.len()));
                }
                Ok(())
            })?;
        }
        match refused {
            Some((e, klen, vlen)) => Err(store_error_sized(env, e, &store, klen, vlen)),
            None => Ok(()),
        }
    })();
    note_memory(env, id, &store, mark);
    stored?;
    log_gate(env, &store, keys.len() > 0)
}

/// memcached `incr`/`decr`: the new value, or `undefined` on a miss. incr wraps at 2^64,
/// decr floors at 0; a non-numeric value throws.
#[napi(ts_return_type = "bigint | undefined")]
pub fn cache_arith(
    env: Env,
    id: u32,
    #[napi(ts_arg_type = "string")] key: JsArg,
    incr: bool,
    #[napi(ts_arg_type = "bigint")] delta: JsArg,
) -> Result<JsOut> {
    let env = env.raw();
    let (store, mark) = store_for_write(env, id)?;
    let mut buf = KeyBuf::new();
    let key = read_key(env, key.0, KeyName::Key, &mut buf)?;
    let delta = read_u64(env, delta.0, "delta")?;
    let req = ArithRequest {
        key,
        incr,
        delta,
        cas: None,
        vivify: None,
        touch: None,
        new_cas: None,
    };
    log_gate(env, &store, false)?;
    let res = store.arith(&req);
    note_memory(env, id, &store, mark);
    log_gate(env, &store, matches!(res, Ok(ArithStatus::Ok { .. })))?;
    match res {
        Ok(ArithStatus::Ok { value, .. }) => Ok(JsOut(new_bigint(env, value)?)),
        Ok(ArithStatus::NotFound | ArithStatus::Exists) => undefined(env),
        Err(StoreError::NonNumeric) => Err(throw(
            env,
            Kind::Type,
            "FERROCACHE_NON_NUMERIC",
            "cannot increment or decrement non-numeric value",
        )),
        Err(e) => Err(throw(env, Kind::Error, error_code(e), &e.to_string())),
    }
}

fn delete_one(store: &Store, key: &[u8]) -> bool {
    let req = DeleteRequest {
        key,
        ..DeleteRequest::default()
    };
    store.delete(&req) == DeleteStatus::Deleted
}

/// Deletes many keys in one crossing (all keys are checked first); the number deleted.
/// A log that cannot write stops it at that key, the earlier ones stay deleted.
#[napi]
pub fn cache_delete_many(
    env: Env,
    id: u32,
    #[napi(ts_arg_type = "string[]")] keys: JsArg,
) -> Result<u32> {
    let env = env.raw();
    let store = store_of(env, id)?;
    let keys = KeyList::read(env, keys.0)?;
    let mut deleted = 0u32;
    for i in 0..keys.len() {
        log_gate(env, &store, deleted > 0)?;
        deleted += delete_one(&store, keys.get(i)) as u32;
    }
    log_gate(env, &store, deleted > 0)?;
    Ok(deleted)
}

/// memcached `flush_all [delay]`, the delay in seconds.
#[napi]
pub fn cache_flush_all(env: Env, id: u32, delay: i64) -> Result<()> {
    let env = env.raw();
    let store = store_of(env, id)?;
    log_gate(env, &store, false)?;
    store.flush_all(delay);
    log_gate(env, &store, true)
}

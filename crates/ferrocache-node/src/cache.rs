//! `NativeCache`: the engine's [`Store`] as a JS class, for the embedded `Cache` in
//! `src/cache.ts`.
//!
//! Only conversions and error mapping live here. The hot calls (`get`, `set`, ...) read
//! their arguments with the one napi call each needs instead of napi-rs's owned
//! conversions: a key is copied onto the stack (no `String`), a `Uint8Array` value is
//! borrowed in place, and a hit is copied once, straight from the slab chunk into a new
//! JS `Buffer` (or string) while the shard lock is held.
//!
//! Errors are thrown as the JS class they deserve (`TypeError` for a bad argument,
//! `RangeError` for a value or setting out of range) with a `code` the TypeScript layer
//! and users can test.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::ptr;
use std::sync::Arc;

use ferrocache_core::{
    ArithRequest, ArithStatus, Config, DeleteRequest, DeleteStatus, GetOptions, SlabClassStats,
    Stats, Store, StoreError, StoreMode, StoreRequest, StoreStatus, MAX_KEY_LEN,
};
use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName};
use napi::{sys, Env, Error, Result, Status, ValueType};
use napi_derive::napi;

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
    /// Evict the least recently used items when full (default); `false` fails the write.
    pub evict: Option<bool>,
    /// Number of independently locked shards, a power of two (default 8).
    pub shards: Option<u32>,
    /// Move slab pages between classes as the value-size mix shifts (default true).
    pub slab_automove: Option<bool>,
}

/// The storage engine behind one embedded cache. Use `Cache` from the package instead:
/// this class does no validation beyond what the engine needs.
#[napi]
pub struct NativeCache {
    store: Option<Arc<Store>>,
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
        match config.and_then(|c| Store::new(c).map_err(|e| e.0)) {
            Ok(store) => Ok(NativeCache {
                store: Some(Arc::new(store)),
            }),
            Err(msg) => Err(throw(
                env.raw(),
                Kind::Range,
                "FERROCACHE_BAD_OPTION",
                &format!("invalid cache options: {msg}"),
            )),
        }
    }

    /// The value as a Buffer, or `undefined` on a miss.
    #[napi(ts_return_type = "Buffer | undefined")]
    pub fn get(&self, env: Env, #[napi(ts_arg_type = "string")] key: JsArg) -> Result<JsOut> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        let hit = store.get(key.bytes(), &GetOptions::default(), |item| {
            new_buffer(env, item.value)
        });
        hit.unwrap_or_else(|| undefined(env))
    }

    /// The value decoded as UTF-8 (for the `utf8` and `json` encodings), or `undefined`.
    #[napi(ts_return_type = "string | undefined")]
    pub fn get_string(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
    ) -> Result<JsOut> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        let hit = store.get(key.bytes(), &GetOptions::default(), |item| {
            new_string(env, item.value)
        });
        hit.unwrap_or_else(|| undefined(env))
    }

    /// `{ value, cas, flags }` of a live item, or `undefined`.
    #[napi(ts_return_type = "{ value: Buffer | string; cas: bigint; flags: number } | undefined")]
    pub fn gets(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        as_string: bool,
    ) -> Result<JsOut> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        let hit = store.get(key.bytes(), &GetOptions::default(), |item| {
            let value = encode(env, item.value, as_string)?;
            let obj = new_object(env)?;
            set_prop(env, obj, c"value", value)?;
            set_prop(env, obj, c"cas", new_bigint(env, item.cas)?)?;
            set_prop(env, obj, c"flags", new_number(env, item.flags as f64)?)?;
            Ok(JsOut(obj))
        });
        hit.unwrap_or_else(|| undefined(env))
    }

    /// get-and-touch: sets a new exptime (memcached seconds) and returns the value.
    #[napi(ts_return_type = "Buffer | string | undefined")]
    pub fn gat(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        exptime: i64,
        as_string: bool,
    ) -> Result<JsOut> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        let opts = GetOptions {
            touch: Some(exptime),
            ..GetOptions::default()
        };
        let hit = store.get(key.bytes(), &opts, |item| {
            encode(env, item.value, as_string).map(JsOut)
        });
        hit.unwrap_or_else(|| undefined(env))
    }

    /// Whether the key is live, without counting a get or bumping it in the LRU.
    #[napi]
    pub fn has(&self, env: Env, #[napi(ts_arg_type = "string")] key: JsArg) -> Result<bool> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        let opts = GetOptions {
            no_bump: true,
            ..GetOptions::default()
        };
        Ok(store.get(key.bytes(), &opts, |_| ()).is_some())
    }

    /// Reads many keys in one crossing: an array of values (or `undefined`) in key order.
    #[napi(ts_return_type = "Array<Buffer | string | undefined>")]
    pub fn get_many(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string[]")] keys: JsArg,
        as_string: bool,
    ) -> Result<JsOut> {
        let env = env.raw();
        let store = self.live(env)?;
        let keys = KeyList::read(env, keys.0)?;
        let mut out = ptr::null_mut();
        check(env, unsafe {
            sys::napi_create_array_with_length(env, keys.len(), &mut out)
        })?;
        for i in 0..keys.len() {
            let hit = store.get(keys.get(i), &GetOptions::default(), |item| {
                encode(env, item.value, as_string)
            });
            let value = match hit {
                Some(v) => v?,
                None => undefined(env)?.0,
            };
            check(env, unsafe {
                sys::napi_set_element(env, out, i as u32, value)
            })?;
        }
        Ok(JsOut(out))
    }

    /// memcached `set`: always stores (or throws).
    #[napi]
    pub fn set(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        #[napi(ts_arg_type = "string | Uint8Array")] value: JsArg,
        flags: u32,
        exptime: i64,
    ) -> Result<bool> {
        self.store_one(env.raw(), StoreMode::Set, key, value, flags, exptime, None)
    }

    /// memcached `add`: stores only when the key is missing.
    #[napi]
    pub fn add(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        #[napi(ts_arg_type = "string | Uint8Array")] value: JsArg,
        flags: u32,
        exptime: i64,
    ) -> Result<bool> {
        self.store_one(env.raw(), StoreMode::Add, key, value, flags, exptime, None)
    }

    /// memcached `replace`: stores only when the key exists.
    #[napi]
    pub fn replace(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        #[napi(ts_arg_type = "string | Uint8Array")] value: JsArg,
        flags: u32,
        exptime: i64,
    ) -> Result<bool> {
        self.store_one(
            env.raw(),
            StoreMode::Replace,
            key,
            value,
            flags,
            exptime,
            None,
        )
    }

    /// memcached `append`: adds bytes after an existing value; flags and exptime are kept.
    #[napi]
    pub fn append(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        #[napi(ts_arg_type = "string | Uint8Array")] value: JsArg,
    ) -> Result<bool> {
        self.store_one(env.raw(), StoreMode::Append, key, value, 0, 0, None)
    }

    /// memcached `prepend`: adds bytes before an existing value.
    #[napi]
    pub fn prepend(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        #[napi(ts_arg_type = "string | Uint8Array")] value: JsArg,
    ) -> Result<bool> {
        self.store_one(env.raw(), StoreMode::Prepend, key, value, 0, 0, None)
    }

    /// memcached `cas`: stores only if the item's CAS is still `cas`; `false` when it
    /// changed (EXISTS) or the key is gone (NOT_FOUND).
    #[napi]
    pub fn cas(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        #[napi(ts_arg_type = "string | Uint8Array")] value: JsArg,
        flags: u32,
        exptime: i64,
        #[napi(ts_arg_type = "bigint")] cas: JsArg,
    ) -> Result<bool> {
        let env = env.raw();
        let cas = read_u64(env, cas.0, "cas")?;
        self.store_one(env, StoreMode::Set, key, value, flags, exptime, Some(cas))
    }

    /// Stores many items with the same flags and exptime in one crossing. Every key is
    /// checked before anything is stored; an engine error (too large, out of memory)
    /// stops the batch at that entry, the earlier ones stay stored.
    #[napi]
    pub fn set_many(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string[]")] keys: JsArg,
        #[napi(ts_arg_type = "Array<string | Uint8Array>")] values: JsArg,
        flags: u32,
        exptime: i64,
    ) -> Result<()> {
        let env = env.raw();
        let store = self.live(env)?;
        let keys = KeyList::read(env, keys.0)?;
        if array_len(env, values.0, "values")? != keys.len() {
            return Err(throw(
                env,
                Kind::Type,
                "FERROCACHE_BAD_ARGUMENT",
                "keys and values must have the same length",
            ));
        }
        for i in 0..keys.len() {
            let mut value = ptr::null_mut();
            check(env, unsafe {
                sys::napi_get_element(env, values.0, i as u32, &mut value)
            })?;
            with_value(env, value, "value", |bytes| {
                let req = store_request(StoreMode::Set, keys.get(i), bytes, flags, exptime, None);
                store
                    .store(&req)
                    .map_err(|e| store_error(env, e, store, &req))
            })?;
        }
        Ok(())
    }

    /// memcached `incr`/`decr`: the new value, or `undefined` on a miss. incr wraps at
    /// 2^64, decr floors at 0; a non-numeric value throws.
    #[napi(ts_return_type = "bigint | undefined")]
    pub fn arith(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        incr: bool,
        #[napi(ts_arg_type = "bigint")] delta: JsArg,
    ) -> Result<JsOut> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        let delta = read_u64(env, delta.0, "delta")?;
        let req = ArithRequest {
            key: key.bytes(),
            incr,
            delta,
            cas: None,
            vivify: None,
            touch: None,
            new_cas: None,
        };
        match store.arith(&req) {
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

    /// Sets a new exptime on a live item; `false` on a miss.
    #[napi]
    pub fn touch(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string")] key: JsArg,
        exptime: i64,
    ) -> Result<bool> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        Ok(store.touch(key.bytes(), exptime))
    }

    /// memcached `delete`; `false` when the key was missing.
    #[napi]
    pub fn delete(&self, env: Env, #[napi(ts_arg_type = "string")] key: JsArg) -> Result<bool> {
        let env = env.raw();
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        Ok(delete_one(store, key.bytes()))
    }

    /// Deletes many keys in one crossing (all keys are checked first); the number deleted.
    #[napi]
    pub fn delete_many(
        &self,
        env: Env,
        #[napi(ts_arg_type = "string[]")] keys: JsArg,
    ) -> Result<u32> {
        let env = env.raw();
        let store = self.live(env)?;
        let keys = KeyList::read(env, keys.0)?;
        Ok((0..keys.len())
            .filter(|&i| delete_one(store, keys.get(i)))
            .count() as u32)
    }

    /// memcached `flush_all [delay]`, the delay in seconds.
    #[napi]
    pub fn flush_all(&self, env: Env, delay: i64) -> Result<()> {
        self.live(env.raw())?.flush_all(delay);
        Ok(())
    }

    /// Every counter with memcached's stat names; per-class figures under `slabs`.
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn stats(&self, env: Env) -> Result<JsOut> {
        let env = env.raw();
        let store = self.live(env)?;
        stats_object(env, &store.stats(), store.now()).map(JsOut)
    }

    /// Whether `close()` has been called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.store.is_none()
    }

    /// Drops this handle's reference to the engine; its memory is freed at once unless a
    /// server session still shares the store. Later calls throw.
    #[napi]
    pub fn close(&mut self) {
        self.store = None;
    }
}

impl NativeCache {
    /// The engine, shared (e.g. with a network server session); fails once closed.
    // Used by session.rs, which lands separately.
    #[allow(dead_code)]
    pub(crate) fn store(&self) -> Result<Arc<Store>> {
        self.store
            .clone()
            .ok_or_else(|| Error::new(Status::GenericFailure, "the cache is closed"))
    }

    /// Borrows the engine for one call without touching the `Arc`'s counter.
    fn live(&self, env: sys::napi_env) -> Result<&Store> {
        match &self.store {
            Some(s) => Ok(s),
            None => Err(throw(
                env,
                Kind::Error,
                "FERROCACHE_CLOSED",
                "the cache is closed",
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store_one(
        &self,
        env: sys::napi_env,
        mode: StoreMode,
        key: JsArg,
        value: JsArg,
        flags: u32,
        exptime: i64,
        cas: Option<u64>,
    ) -> Result<bool> {
        let store = self.live(env)?;
        let key = read_key(env, key.0, "key")?;
        with_value(env, value.0, "value", |bytes| {
            let req = store_request(mode, key.bytes(), bytes, flags, exptime, cas);
            match store.store(&req) {
                Ok(outcome) => Ok(outcome.status == StoreStatus::Stored),
                Err(e) => Err(store_error(env, e, store, &req)),
            }
        })
    }
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

fn delete_one(store: &Store, key: &[u8]) -> bool {
    let req = DeleteRequest {
        key,
        ..DeleteRequest::default()
    };
    store.delete(&req) == DeleteStatus::Deleted
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
    if let Some(v) = o.evict {
        c = c.evict(v);
    }
    if let Some(v) = o.shards {
        c = c.shards(v as usize);
    }
    if let Some(v) = o.slab_automove {
        c = c.slab_automove(v);
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

// ---- errors ----

#[derive(Clone, Copy)]
enum Kind {
    Error,
    Type,
    Range,
}

/// Throws a JS error of `kind` with `code`, and returns the error that tells napi-rs an
/// exception is already pending (so it does not throw a second, generic one).
fn throw(env: sys::napi_env, kind: Kind, code: &str, msg: &str) -> Error {
    unsafe {
        let mut js_code = ptr::null_mut();
        let mut js_msg = ptr::null_mut();
        let mut err = ptr::null_mut();
        sys::napi_create_string_utf8(env, code.as_ptr().cast(), code.len() as isize, &mut js_code);
        sys::napi_create_string_utf8(env, msg.as_ptr().cast(), msg.len() as isize, &mut js_msg);
        let create = match kind {
            Kind::Error => sys::napi_create_error,
            Kind::Type => sys::napi_create_type_error,
            Kind::Range => sys::napi_create_range_error,
        };
        if create(env, js_code, js_msg, &mut err) == sys::Status::napi_ok {
            sys::napi_throw(env, err);
        }
    }
    Error::new(Status::PendingException, msg.to_string())
}

/// A failed napi call: surface whatever napi has pending, or a generic error.
fn check(env: sys::napi_env, status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        Err(Error::new(Status::PendingException, String::new()))
    } else {
        Err(Error::new(
            Status::from(status),
            "a napi call failed".to_string(),
        ))
    }
}

fn error_code(e: StoreError) -> &'static str {
    match e {
        StoreError::BadKey => "FERROCACHE_BAD_KEY",
        StoreError::TooLarge => "FERROCACHE_TOO_LARGE",
        StoreError::OutOfMemory => "FERROCACHE_OUT_OF_MEMORY",
        StoreError::NonNumeric => "FERROCACHE_NON_NUMERIC",
    }
}

fn store_error(env: sys::napi_env, e: StoreError, store: &Store, req: &StoreRequest<'_>) -> Error {
    match e {
        StoreError::TooLarge => {
            let msg = format!(
        "value is too large: {} bytes with a {}-byte key do not fit in the item size limit \
         of {} bytes (maxItemSize, header included)",
        req.value.len(),
        req.key.len(),
        store.config().item_size_max
      );
            throw(env, Kind::Range, error_code(e), &msg)
        }
        StoreError::BadKey => throw(env, Kind::Type, error_code(e), "key is not valid"),
        _ => throw(env, Kind::Error, error_code(e), &e.to_string()),
    }
}

// ---- argument conversion ----

/// A JS argument taken as is; the method converts it with exactly the napi call it needs.
pub struct JsArg(pub(crate) sys::napi_value);

impl FromNapiValue for JsArg {
    unsafe fn from_napi_value(_env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        Ok(JsArg(value))
    }
}

impl TypeName for JsArg {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

/// A JS value built by hand, returned as is.
pub struct JsOut(sys::napi_value);

impl ToNapiValue for JsOut {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

impl TypeName for JsOut {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

/// Room for a key of [`MAX_KEY_LEN`] bytes plus napi's NUL, with a margin: napi stops at
/// a character boundary, so a copy of 251 bytes or more proves the key is too long.
const KEY_BUF: usize = 256;

/// A key copied onto the stack (no allocation per call).
pub(crate) struct Key {
    buf: [u8; KEY_BUF],
    len: usize,
}

impl Key {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Reads a JS string key and checks it as memcached's text protocol does: 1 to 250
/// bytes of UTF-8, no spaces or control characters.
pub(crate) fn read_key(env: sys::napi_env, value: sys::napi_value, name: &str) -> Result<Key> {
    let mut key = Key {
        buf: [0; KEY_BUF],
        len: 0,
    };
    let status = unsafe {
        sys::napi_get_value_string_utf8(
            env,
            value,
            key.buf.as_mut_ptr() as *mut c_char,
            KEY_BUF,
            &mut key.len,
        )
    };
    if status == sys::Status::napi_string_expected {
        let msg = format!("{name} must be a string, got {}", type_of(env, value));
        return Err(throw(env, Kind::Type, "FERROCACHE_BAD_KEY", &msg));
    }
    check(env, status)?;
    if let Some(problem) = key_problem(env, value, key.bytes()) {
        let msg = format!("{name} {problem}");
        return Err(throw(env, Kind::Type, "FERROCACHE_BAD_KEY", &msg));
    }
    Ok(key)
}

fn key_problem(env: sys::napi_env, value: sys::napi_value, bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return Some("must not be empty".to_string());
    }
    if bytes.len() > MAX_KEY_LEN {
        let mut full = 0usize;
        unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut full) };
        return Some(format!(
            "is {full} bytes long; memcached keys are at most {MAX_KEY_LEN} bytes"
        ));
    }
    bytes
        .iter()
        .position(|&b| b <= b' ' || b == 0x7f)
        .map(|at| {
            format!(
                "must not contain spaces or control characters (byte 0x{:02x} at offset {at})",
                bytes[at]
            )
        })
}

/// Keys of a batch call, all read and checked before the batch runs.
struct KeyList {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyList {
    fn read(env: sys::napi_env, array: sys::napi_value) -> Result<KeyList> {
        let n = array_len(env, array, "keys")?;
        let mut list = KeyList {
            bytes: Vec::with_capacity(n * 24),
            ends: Vec::with_capacity(n),
        };
        for i in 0..n {
            let mut el = ptr::null_mut();
            check(env, unsafe {
                sys::napi_get_element(env, array, i as u32, &mut el)
            })?;
            let key = read_key(env, el, &format!("keys[{i}]"))?;
            list.bytes.extend_from_slice(key.bytes());
            list.ends.push(list.bytes.len());
        }
        Ok(list)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

fn array_len(env: sys::napi_env, array: sys::napi_value, name: &str) -> Result<usize> {
    let mut n = 0u32;
    let status = unsafe { sys::napi_get_array_length(env, array, &mut n) };
    if status == sys::Status::napi_array_expected {
        let msg = format!("{name} must be an array, got {}", type_of(env, array));
        return Err(throw(env, Kind::Type, "FERROCACHE_BAD_ARGUMENT", &msg));
    }
    check(env, status)?;
    Ok(n as usize)
}

thread_local! {
  /// Reused room for string values, so storing a string allocates nothing per call.
  static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Hands `f` the bytes of a value: a `Uint8Array` (Buffer) is borrowed in place, a string
/// is encoded as UTF-8 into a reused thread-local buffer.
pub(crate) fn with_value<R>(
    env: sys::napi_env,
    value: sys::napi_value,
    name: &str,
    f: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R> {
    let mut kind = 0;
    check(env, unsafe { sys::napi_typeof(env, value, &mut kind) })?;
    if kind == sys::ValueType::napi_string {
        return TEXT.with(|cell| {
            let mut text = cell.borrow_mut();
            let mut len = 0usize;
            check(env, unsafe {
                sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len)
            })?;
            text.clear();
            text.reserve(len + 1);
            let mut written = 0usize;
            check(env, unsafe {
                sys::napi_get_value_string_utf8(
                    env,
                    value,
                    text.as_mut_ptr() as *mut c_char,
                    len + 1,
                    &mut written,
                )
            })?;
            // SAFETY: napi wrote `written` (== len) initialised bytes.
            unsafe { text.set_len(written) };
            let result = f(&text);
            // Keep big one-off values from pinning memory in the thread forever.
            if text.capacity() > 1 << 20 {
                *text = Vec::new();
            }
            result
        });
    }
    if kind == sys::ValueType::napi_object {
        let mut ty = 0;
        let mut len = 0usize;
        let mut data = ptr::null_mut();
        let status = unsafe {
            sys::napi_get_typedarray_info(
                env,
                value,
                &mut ty,
                &mut len,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status == sys::Status::napi_ok && ty == sys::TypedarrayType::uint8_array {
            let bytes = if len == 0 || data.is_null() {
                &[][..]
            } else {
                // SAFETY: the typed array keeps its bytes alive for this synchronous call.
                unsafe { std::slice::from_raw_parts(data as *const u8, len) }
            };
            return f(bytes);
        }
    }
    let msg = format!(
        "{name} must be a string, Buffer or Uint8Array, got {}",
        type_of(env, value)
    );
    Err(throw(env, Kind::Type, "FERROCACHE_BAD_VALUE", &msg))
}

/// A non-negative bigint below 2^64.
fn read_u64(env: sys::napi_env, value: sys::napi_value, name: &str) -> Result<u64> {
    let mut out = 0u64;
    let mut lossless = false;
    let status = unsafe { sys::napi_get_value_bigint_uint64(env, value, &mut out, &mut lossless) };
    if status == sys::Status::napi_bigint_expected {
        let msg = format!("{name} must be a bigint, got {}", type_of(env, value));
        return Err(throw(env, Kind::Type, "FERROCACHE_BAD_ARGUMENT", &msg));
    }
    check(env, status)?;
    if !lossless {
        let msg = format!("{name} must be between 0 and 2^64-1");
        return Err(throw(env, Kind::Range, "FERROCACHE_BAD_ARGUMENT", &msg));
    }
    Ok(out)
}

fn type_of(env: sys::napi_env, value: sys::napi_value) -> &'static str {
    let mut kind = 0;
    unsafe { sys::napi_typeof(env, value, &mut kind) };
    match kind {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "boolean",
        sys::ValueType::napi_number => "number",
        sys::ValueType::napi_string => "string",
        sys::ValueType::napi_symbol => "symbol",
        sys::ValueType::napi_function => "function",
        sys::ValueType::napi_bigint => "bigint",
        _ => "object",
    }
}

// ---- building results ----

fn undefined(env: sys::napi_env) -> Result<JsOut> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_get_undefined(env, &mut out) })?;
    Ok(JsOut(out))
}

fn new_buffer(env: sys::napi_env, bytes: &[u8]) -> Result<JsOut> {
    let mut out = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_buffer_copy(
            env,
            bytes.len(),
            bytes.as_ptr().cast(),
            ptr::null_mut(),
            &mut out,
        )
    })?;
    Ok(JsOut(out))
}

fn new_string(env: sys::napi_env, bytes: &[u8]) -> Result<JsOut> {
    let mut out = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_string_utf8(env, bytes.as_ptr().cast(), bytes.len() as isize, &mut out)
    })?;
    Ok(JsOut(out))
}

fn encode(env: sys::napi_env, bytes: &[u8], as_string: bool) -> Result<sys::napi_value> {
    let out = if as_string {
        new_string(env, bytes)?
    } else {
        new_buffer(env, bytes)?
    };
    Ok(out.0)
}

fn new_object(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_create_object(env, &mut out) })?;
    Ok(out)
}

fn new_number(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_create_double(env, n, &mut out) })?;
    Ok(out)
}

fn new_bigint(env: sys::napi_env, n: u64) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_bigint_uint64(env, n, &mut out)
    })?;
    Ok(out)
}

fn set_prop(
    env: sys::napi_env,
    obj: sys::napi_value,
    name: &CStr,
    v: sys::napi_value,
) -> Result<()> {
    check(env, unsafe {
        sys::napi_set_named_property(env, obj, name.as_ptr(), v)
    })
}

/// Sets numeric properties named exactly as the struct fields (memcached's stat names).
macro_rules! put_numbers {
  ($env:expr, $obj:expr, $src:expr; $($field:ident),* $(,)?) => {
    $(
      set_prop(
        $env,
        $obj,
        CStr::from_bytes_with_nul(concat!(stringify!($field), "\0").as_bytes())
          .expect("a field name has no NUL"),
        new_number($env, $src.$field as f64)?,
      )?;
    )*
  };
}

fn stats_object(env: sys::napi_env, s: &Stats, now: u32) -> Result<sys::napi_value> {
    let obj = new_object(env)?;
    set_prop(env, obj, c"time", new_number(env, now as f64)?)?;
    put_numbers!(env, obj, s;
      curr_items, total_items, bytes, limit_maxbytes, total_malloced, hash_bytes,
      hash_power_level, cmd_get, cmd_set, cmd_flush, cmd_touch, get_hits, get_misses,
      get_expired, get_flushed, delete_hits, delete_misses, incr_hits, incr_misses,
      decr_hits, decr_misses, cas_hits, cas_misses, cas_badval, touch_hits, touch_misses,
      evictions, reclaimed, expired_unfetched, evicted_unfetched, crawler_reclaimed,
      slab_reassign_count, slabs_moved, slab_global_page_pool, lru_maintainer_juggles,
    );
    let mut expanding = ptr::null_mut();
    check(env, unsafe {
        sys::napi_get_boolean(env, s.hash_is_expanding, &mut expanding)
    })?;
    set_prop(env, obj, c"hash_is_expanding", expanding)?;
    let mut slabs = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_array_with_length(env, s.classes.len(), &mut slabs)
    })?;
    for (i, class) in s.classes.iter().enumerate() {
        let c = class_object(env, class)?;
        check(env, unsafe {
            sys::napi_set_element(env, slabs, i as u32, c)
        })?;
    }
    set_prop(env, obj, c"slabs", slabs)?;
    Ok(obj)
}

fn class_object(env: sys::napi_env, c: &SlabClassStats) -> Result<sys::napi_value> {
    let obj = new_object(env)?;
    put_numbers!(env, obj, c;
      id, chunk_size, chunks_per_page, total_pages, total_chunks, used_chunks, free_chunks,
      mem_requested, get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits,
      cas_badval, touch_hits, number, number_hot, number_warm, number_cold, age_hot,
      age_warm, age, evicted, evicted_nonzero, evicted_time, outofmemory, reclaimed,
      expired_unfetched, evicted_unfetched, crawler_reclaimed, moves_to_cold, moves_to_warm,
      moves_within_lru,
    );
    Ok(obj)
}

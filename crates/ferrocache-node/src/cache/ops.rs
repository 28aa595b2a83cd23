//! The hot single-key operations as napi callbacks registered by hand.
//!
//! A `#[napi]` function spends about 70 ns per call in napi-rs's wrapper (argument
//! conversion traits, borrow-scope bookkeeping), as much as a cached lookup; these
//! callbacks read their arguments with one napi call each instead. Their TypeScript
//! signatures are declared in `src/native-ops.ts`, since napi-rs does not see them.
//! Errors are thrown as JS exceptions; a panic becomes an `Error` instead of an abort.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use ferrocache_core::{GetOptions, StoreMode};
use napi::bindgen_prelude::Object;
use napi::{sys, Env, JsValue, Result};

use super::convert::{check, read_key, throw, type_of, KeyBuf, KeyName, Kind};
use super::{delete_one, log_gate, read, store_of, store_one};

/// The first `N` arguments (missing ones are `undefined`), and how many the call passed.
unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Result<([sys::napi_value; N], usize)> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    check(env, unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    })?;
    Ok((argv, argc))
}

fn expected(env: sys::napi_env, name: &str, what: &str, v: sys::napi_value) -> napi::Error {
    let msg = format!("{name} must be {what}, got {}", type_of(env, v));
    throw(env, Kind::Type, "FERROCACHE_BAD_ARGUMENT", &msg)
}

fn arg_u32(env: sys::napi_env, v: sys::napi_value, name: &str) -> Result<u32> {
    let mut out = 0u32;
    match unsafe { sys::napi_get_value_uint32(env, v, &mut out) } {
        sys::Status::napi_ok => Ok(out),
        _ => Err(expected(env, name, "a number", v)),
    }
}

fn arg_i64(env: sys::napi_env, v: sys::napi_value, name: &str) -> Result<i64> {
    let mut out = 0i64;
    match unsafe { sys::napi_get_value_int64(env, v, &mut out) } {
        sys::Status::napi_ok => Ok(out),
        _ => Err(expected(env, name, "a number", v)),
    }
}

fn arg_bool(env: sys::napi_env, v: sys::napi_value, name: &str) -> Result<bool> {
    let mut out = false;
    match unsafe { sys::napi_get_value_bool(env, v, &mut out) } {
        sys::Status::napi_ok => Ok(out),
        _ => Err(expected(env, name, "a boolean", v)),
    }
}

fn boolean(env: sys::napi_env, b: bool) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_get_boolean(env, b, &mut out) })?;
    Ok(out)
}

/// Runs a callback body: its value, or null once the error is thrown in JS.
fn finish(env: sys::napi_env, body: impl FnOnce() -> Result<sys::napi_value>) -> sys::napi_value {
    let error = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e.reason,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("ferrocache internal error: {what}")
        }
    };
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if !pending {
        throw(env, Kind::Error, "FERROCACHE_INTERNAL", &error);
    }
    ptr::null_mut()
}

/// Defines `unsafe extern "C" fn $name(env, info)` over the first `$n` arguments (and,
/// with `$argc`, how many were passed).
macro_rules! callback {
    ($name:ident, $n:literal, |$env:ident, $a:ident| $body:expr) => {
        callback!($name, $n, |$env, $a, _argc| $body);
    };
    ($name:ident, $n:literal, |$env:ident, $a:ident, $argc:ident| $body:expr) => {
        unsafe extern "C" fn $name(
            env: sys::napi_env,
            info: sys::napi_callback_info,
        ) -> sys::napi_value {
            finish(env, || {
                let $env = env;
                let ($a, $argc) = unsafe { args::<$n>(env, info)? };
                $body
            })
        }
    };
}

/// A read's trailing `asString`: a Buffer read leaves it out, which saves reading a
/// boolean through napi on the hottest call (~50 instructions of ~1,200).
fn as_string_arg(env: sys::napi_env, a: &[sys::napi_value], argc: usize, i: usize) -> Result<bool> {
    if argc <= i {
        return Ok(false);
    }
    arg_bool(env, a[i], "asString")
}

const PLAIN: GetOptions = GetOptions {
    touch: None,
    vivify: None,
    no_bump: false,
    recache_below: None,
    miss_counts_as_get: false,
    // as memcached's get: a stale item is served, its win token left for a meta mg
    may_win: false,
    count_unbumped: false,
    uncounted_hit: false,
    recache_won: false,
    vivify_unwon: false,
};

// cacheGet(id, key, asString?): undefined | Buffer | string — see `read`.
callback!(get, 3, |env, a, argc| {
    let id = arg_u32(env, a[0], "id")?;
    let as_string = as_string_arg(env, &a, argc, 2)?;
    read(env, id, a[1], &PLAIN, as_string, false)
});

// cacheGets(id, key, asString?): as cacheGet, plus CAS and flags in the scratch buffer.
callback!(gets, 3, |env, a, argc| {
    let id = arg_u32(env, a[0], "id")?;
    let as_string = as_string_arg(env, &a, argc, 2)?;
    read(env, id, a[1], &PLAIN, as_string, true)
});

// cacheGat(id, key, exptime, asString?): as cacheGet, and sets a new exptime on a hit.
callback!(gat, 4, |env, a, argc| {
    let id = arg_u32(env, a[0], "id")?;
    let opts = GetOptions {
        touch: Some(arg_i64(env, a[2], "exptime")?),
        ..PLAIN
    };
    let as_string = as_string_arg(env, &a, argc, 3)?;
    read(env, id, a[1], &opts, as_string, false)
});

// cacheHas(id, key): boolean, without counting a get or bumping the item in the LRU.
callback!(has, 2, |env, a| {
    let store = store_of(env, arg_u32(env, a[0], "id")?)?;
    let mut buf = KeyBuf::new();
    let key = read_key(env, a[1], KeyName::Key, &mut buf)?;
    let opts = GetOptions {
        no_bump: true,
        ..PLAIN
    };
    boolean(env, store.get(key, &opts, |_| ()).is_some())
});

/// set/add/replace(id, key, value, flags, exptime): whether the item was stored.
fn store_with(
    env: sys::napi_env,
    a: [sys::napi_value; 5],
    mode: StoreMode,
) -> Result<sys::napi_value> {
    let id = arg_u32(env, a[0], "id")?;
    let flags = arg_u32(env, a[3], "flags")?;
    let exptime = arg_i64(env, a[4], "exptime")?;
    boolean(
        env,
        store_one(env, id, mode, a[1], a[2], flags, exptime, None)?,
    )
}

callback!(set, 5, |env, a| store_with(env, a, StoreMode::Set));
callback!(add, 5, |env, a| store_with(env, a, StoreMode::Add));
callback!(replace, 5, |env, a| store_with(env, a, StoreMode::Replace));

// cacheAppend/cachePrepend(id, key, value): whether the key existed.
callback!(append, 3, |env, a| {
    let id = arg_u32(env, a[0], "id")?;
    boolean(
        env,
        store_one(env, id, StoreMode::Append, a[1], a[2], 0, 0, None)?,
    )
});
callback!(prepend, 3, |env, a| {
    let id = arg_u32(env, a[0], "id")?;
    boolean(
        env,
        store_one(env, id, StoreMode::Prepend, a[1], a[2], 0, 0, None)?,
    )
});

// cacheTouch(id, key, exptime): whether the key was live.
callback!(touch, 3, |env, a| {
    let store = store_of(env, arg_u32(env, a[0], "id")?)?;
    let mut buf = KeyBuf::new();
    let key = read_key(env, a[1], KeyName::Key, &mut buf)?;
    let exptime = arg_i64(env, a[2], "exptime")?;
    log_gate(env, &store, false)?;
    let touched = store.touch(key, exptime);
    log_gate(env, &store, touched)?;
    boolean(env, touched)
});

// cacheDelete(id, key): whether the key existed.
callback!(delete, 2, |env, a| {
    let store = store_of(env, arg_u32(env, a[0], "id")?)?;
    let mut buf = KeyBuf::new();
    let key = read_key(env, a[1], KeyName::Key, &mut buf)?;
    log_gate(env, &store, false)?;
    let deleted = delete_one(&store, key);
    log_gate(env, &store, deleted)?;
    boolean(env, deleted)
});

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

const CALLBACKS: [(&std::ffi::CStr, Callback); 11] = [
    (c"cacheGet", get),
    (c"cacheGets", gets),
    (c"cacheGat", gat),
    (c"cacheHas", has),
    (c"cacheSet", set),
    (c"cacheAdd", add),
    (c"cacheReplace", replace),
    (c"cacheAppend", append),
    (c"cachePrepend", prepend),
    (c"cacheTouch", touch),
    (c"cacheDelete", delete),
];

/// Adds the callbacks above to the module's exports (called from lib.rs's one
/// `module_exports` hook: napi-rs keeps a single one).
pub(crate) fn register_cache_ops(exports: &Object, env: Env) -> Result<()> {
    let env = env.raw();
    for (name, cb) in CALLBACKS {
        let mut f = ptr::null_mut();
        check(env, unsafe {
            sys::napi_create_function(
                env,
                name.as_ptr(),
                name.to_bytes().len() as isize,
                Some(cb),
                ptr::null_mut(),
                &mut f,
            )
        })?;
        check(env, unsafe {
            sys::napi_set_named_property(env, exports.raw(), name.as_ptr(), f)
        })?;
    }
    Ok(())
}

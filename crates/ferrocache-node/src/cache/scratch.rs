//! The scratch buffer that reads copy values into.
//!
//! Creating a JS `Buffer` from native code (`napi_create_buffer_copy`) costs about a
//! microsecond, ten times a lookup; JS allocates small Buffers from its pool far faster.
//! So a read copies the value out of its slab chunk into this per-thread buffer (while the
//! shard lock is held) and returns only the length; `src/scratch.ts` turns those bytes
//! into a Buffer or a string. Layout: bytes 0..8 the CAS (little-endian u64), 8..12 the
//! flags (little-endian u32), 12..16 a pooled read's offset (below), 16..20 a single read's
//! length (-1: a miss; see [`Out::set_len`]), values from byte [`DATA`] on. A value that does
//! not fit is returned as a Buffer or string made here instead.
//!
//! A single read that wants a Buffer goes one step further: the value is copied straight
//! into the read pool, an `ArrayBuffer` that `src/scratch.ts` hands over with [`read_pool`],
//! at the offset written to scratch bytes 12..16; JS then returns a view of those bytes with
//! no second copy (as `Buffer.allocUnsafe` slices its own pool). Offset -1 there means the
//! pool was full and the value is in the scratch buffer as usual; JS then starts a new pool.
//!
//! Both belong to a napi env: the module loaded a second time in one thread (a cleared
//! `require.cache`) gets an env of its own, and each env keeps its own scratch buffer and
//! pool, parked in [`PARKED`] while another env's are current.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;

use napi::{sys, Env, Result};
use napi_derive::napi;

use super::convert::{check, encode, JsArg, JsOut};

/// Where values start; the bytes before hold the CAS and flags of the last `gets`, the
/// pooled offset and the length of the last single read.
pub(crate) const DATA: usize = 24;
/// Room for values: enough for every hit of a typical `getMany`.
const CAPACITY: usize = 256 * 1024;

#[derive(Clone, Copy)]
struct Scratch {
    env: sys::napi_env,
    buffer: sys::napi_ref,
    base: *mut u8,
}

/// The read pool of one JS thread: bytes `used..cap` from `base` are free.
#[derive(Clone, Copy)]
struct Pool {
    env: sys::napi_env,
    base: *mut u8,
    cap: usize,
    used: usize,
}

/// Where a pooled read writes the value's offset in the pool (-1: it went to scratch).
const POOL_AT: usize = 12;
/// Where a single read writes the value's length, or -1 for a miss.
const LEN_AT: usize = 16;

thread_local! {
    // One per JS thread (the main thread, each worker); a reference keeps it alive.
    static SCRATCH: Cell<Option<Scratch>> = const { Cell::new(None) };
    // JS keeps the current pool alive and replaces it only through `read_pool`.
    static POOL: Cell<Option<Pool>> = const { Cell::new(None) };
    // The scratch buffers and pools of this thread's other envs, each kept until its env
    // is torn down (see `scratch`).
    static PARKED: RefCell<Vec<(Scratch, Option<Pool>)>> = const { RefCell::new(Vec::new()) };
}

/// Makes `pool` this thread's read pool (internal to `Cache`; `src/scratch.ts` keeps it
/// alive until it passes the next one).
#[napi(ts_args_type = "pool: ArrayBuffer")]
pub fn read_pool(env: Env, pool: JsArg) -> Result<()> {
    let env = env.raw();
    scratch(env)?; // makes this env's state the current one
    let mut data = ptr::null_mut();
    let mut cap = 0usize;
    check(env, unsafe {
        sys::napi_get_arraybuffer_info(env, pool.0, &mut data, &mut cap)
    })?;
    POOL.set(Some(Pool {
        env,
        base: data as *mut u8,
        cap,
        used: 0,
    }));
    Ok(())
}

fn scratch(env: sys::napi_env) -> Result<Scratch> {
    if let Some(s) = SCRATCH.get() {
        if s.env == env {
            return Ok(s);
        }
    }
    switch_env(env)
}

/// Makes `env`'s scratch buffer and pool the current ones, parking the previous env's
/// (out of line: only a thread with the module loaded twice ever gets here twice).
#[inline(never)]
fn switch_env(env: sys::napi_env) -> Result<Scratch> {
    let parked = PARKED.with(|p| {
        let mut p = p.borrow_mut();
        if let Some(current) = SCRATCH.get() {
            p.push((current, POOL.get()));
        }
        let at = p.iter().position(|(s, _)| s.env == env)?;
        Some(p.swap_remove(at))
    });
    SCRATCH.set(None);
    POOL.set(None);
    if let Some((s, pool)) = parked {
        SCRATCH.set(Some(s));
        POOL.set(pool);
        return Ok(s);
    }
    let mut value = ptr::null_mut();
    let mut data = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_buffer(env, DATA + CAPACITY, &mut data, &mut value)
    })?;
    let mut buffer = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_reference(env, value, 1, &mut buffer)
    })?;
    let s = Scratch {
        env,
        buffer,
        base: data as *mut u8,
    };
    // Forget the env's state when it goes, so a later env at the same address starts afresh.
    check(env, unsafe {
        sys::napi_add_env_cleanup_hook(env, Some(forget_env), env as *mut c_void)
    })?;
    SCRATCH.set(Some(s));
    Ok(s)
}

/// Env cleanup hook: drops the state of the env being torn down.
unsafe extern "C" fn forget_env(env: *mut c_void) {
    let env = env as sys::napi_env;
    if SCRATCH.try_with(|s| s.get().is_some_and(|s| s.env == env)) == Ok(true) {
        SCRATCH.set(None);
        POOL.set(None);
    }
    let _ = PARKED.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.retain(|(s, _)| s.env != env);
        }
    });
}

/// This thread's scratch buffer, which reads fill (internal to `Cache`).
#[napi(ts_return_type = "Buffer")]
pub fn scratch_buffer(env: Env) -> Result<JsOut> {
    let env = env.raw();
    let s = scratch(env)?;
    let mut value = ptr::null_mut();
    check(env, unsafe {
        sys::napi_get_reference_value(env, s.buffer, &mut value)
    })?;
    Ok(JsOut(value))
}

/// Fills the scratch buffer during one call: values one after another from [`DATA`].
pub(crate) struct Out {
    env: sys::napi_env,
    base: *mut u8,
    used: usize,
}

impl Out {
    pub(crate) fn new(env: sys::napi_env) -> Result<Out> {
        Ok(Out {
            env,
            base: scratch(env)?.base,
            used: 0,
        })
    }

    /// The value's length as a JS number once copied, or the value itself (a Buffer, or
    /// a string when `as_string`) when it does not fit.
    pub(crate) fn put(&mut self, bytes: &[u8], as_string: bool) -> Result<sys::napi_value> {
        if bytes.len() > CAPACITY - self.used {
            return encode(self.env, bytes, as_string);
        }
        // SAFETY: the buffer is DATA + CAPACITY bytes, kept alive by our reference, and
        // the check above keeps the copy inside it.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(DATA + self.used), bytes.len())
        };
        self.used += bytes.len();
        number(self.env, bytes.len() as i32)
    }

    /// Copies the value of a single read where JS will find it, making no napi call (the
    /// caller still holds the shard lock): a Buffer read into the read pool when it has room
    /// (its offset at scratch byte [`POOL_AT`], else -1 there), otherwise, and for a string,
    /// into scratch; a value too large for scratch is copied out to be made into a JS value
    /// by the caller once the lock is released.
    pub(crate) fn place(&mut self, bytes: &[u8], as_string: bool) -> Placed {
        if !as_string {
            let at: i32 = match POOL.get() {
                Some(mut p) if p.env == self.env && bytes.len() <= p.cap - p.used => {
                    // SAFETY: JS keeps the pool's ArrayBuffer alive while it is current, and
                    // the check above keeps the copy inside it.
                    unsafe {
                        ptr::copy_nonoverlapping(bytes.as_ptr(), p.base.add(p.used), bytes.len())
                    };
                    let at = p.used;
                    p.used = (at + bytes.len() + 7) & !7; // 8-aligned, as Node's own pool
                    POOL.set(Some(p));
                    at as i32
                }
                _ => -1,
            };
            // SAFETY: bytes 12..16 lie inside the scratch buffer.
            unsafe {
                ptr::copy_nonoverlapping(at.to_le_bytes().as_ptr(), self.base.add(POOL_AT), 4)
            };
            if at >= 0 {
                return Placed::Len(bytes.len());
            }
        }
        if bytes.len() > CAPACITY - self.used {
            return Placed::Large(bytes.to_vec());
        }
        // SAFETY: as in `put`.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(DATA + self.used), bytes.len())
        };
        self.used += bytes.len();
        Placed::Len(bytes.len())
    }

    /// Records a single read's outcome where JS finds it: the value's length (its bytes
    /// placed by [`Out::place`]), or -1 for a miss. The call then returns nothing: a JS
    /// number made through napi (`napi_create_int32`) was ~50 instructions of a ~1,700
    /// instruction `getSync`.
    pub(crate) fn set_len(&self, len: i32) {
        // SAFETY: bytes 16..20 lie inside the scratch buffer.
        unsafe { ptr::copy_nonoverlapping(len.to_le_bytes().as_ptr(), self.base.add(LEN_AT), 4) };
    }

    /// Records the CAS and flags of the item just read (for `gets`).
    pub(crate) fn put_meta(&self, cas: u64, flags: u32) {
        // SAFETY: bytes 0..12 lie inside the buffer.
        unsafe {
            ptr::copy_nonoverlapping(cas.to_le_bytes().as_ptr(), self.base, 8);
            ptr::copy_nonoverlapping(flags.to_le_bytes().as_ptr(), self.base.add(8), 4);
        }
    }
}

/// Where [`Out::place`] put a value: small, so returning it from under the shard lock
/// copies next to nothing.
pub(crate) enum Placed {
    /// Copied to the read pool or scratch: JS finds the length there ([`Out::set_len`]).
    Len(usize),
    /// Larger than scratch: becomes a Buffer or string made here.
    Large(Vec<u8>),
}

/// A small integer: a length, or -1 for a miss.
pub(crate) fn number(env: sys::napi_env, n: i32) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_create_int32(env, n, &mut out) })?;
    Ok(out)
}

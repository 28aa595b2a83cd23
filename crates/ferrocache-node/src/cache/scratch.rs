//! The scratch buffer that reads copy values into.
//!
//! Creating a JS `Buffer` from native code (`napi_create_buffer_copy`) costs about a
//! microsecond, ten times a lookup; JS allocates small Buffers from its pool far faster.
//! So a read copies the value out of its slab chunk into this per-thread buffer (while the
//! shard lock is held) and returns only the length; `src/scratch.ts` turns those bytes
//! into a Buffer or a string. Layout: bytes 0..8 the CAS (little-endian u64), 8..12 the
//! flags (little-endian u32), values from byte [`DATA`] on. A value that does not fit is
//! returned as a Buffer or string made here instead.

use std::cell::Cell;
use std::ptr;

use napi::{sys, Env, Result};
use napi_derive::napi;

use super::convert::{check, encode, JsOut};

/// Where values start; the bytes before hold the CAS and flags of the last `gets`.
pub(crate) const DATA: usize = 16;
/// Room for values: enough for every hit of a typical `getMany`.
const CAPACITY: usize = 256 * 1024;

#[derive(Clone, Copy)]
struct Scratch {
    env: sys::napi_env,
    buffer: sys::napi_ref,
    base: *mut u8,
}

thread_local! {
    // One per JS thread (the main thread, each worker); a reference keeps it alive.
    static SCRATCH: Cell<Option<Scratch>> = const { Cell::new(None) };
}

fn scratch(env: sys::napi_env) -> Result<Scratch> {
    if let Some(s) = SCRATCH.get() {
        if s.env == env {
            return Ok(s);
        }
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
    SCRATCH.set(Some(s));
    Ok(s)
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

    /// Records the CAS and flags of the item just read (for `gets`).
    pub(crate) fn put_meta(&self, cas: u64, flags: u32) {
        // SAFETY: bytes 0..12 lie inside the buffer.
        unsafe {
            ptr::copy_nonoverlapping(cas.to_le_bytes().as_ptr(), self.base, 8);
            ptr::copy_nonoverlapping(flags.to_le_bytes().as_ptr(), self.base.add(8), 4);
        }
    }
}

/// A small integer: a length, or -1 for a miss.
pub(crate) fn number(env: sys::napi_env, n: i32) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_create_int32(env, n, &mut out) })?;
    Ok(out)
}

//! Conversions between JS values and the engine's types, done with exactly the napi call
//! each needs (no owned `String`/`Vec` per call), and errors thrown as the JS class they
//! deserve with a `code` callers can test.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;

use ferrocache_core::journal::JournalError;
use ferrocache_core::{Store, StoreError, StoreRequest, MAX_KEY_LEN};
use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName};
use napi::{sys, Error, Result, Status, ValueType};

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Error,
    Type,
    Range,
}

/// Throws a JS error of `kind` with `code`, and returns the error that tells napi-rs an
/// exception is already pending (so it does not throw a second, generic one).
pub(crate) fn throw(env: sys::napi_env, kind: Kind, code: &str, msg: &str) -> Error {
    throw_with(env, kind, code, msg, |_| ())
}

/// [`throw`], with `more` setting further properties on the error before it is thrown.
fn throw_with(
    env: sys::napi_env,
    kind: Kind,
    code: &str,
    msg: &str,
    more: impl FnOnce(sys::napi_value),
) -> Error {
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
            more(err);
            sys::napi_throw(env, err);
        }
    }
    Error::new(Status::PendingException, msg.to_string())
}

/// Throws the error of a write while the append-only log cannot write (`FERROCACHE_LOG_FAILED`,
/// typed as `LogWriteError` in `src/persistence/errors.ts`): the message names the file and
/// the OS error, `path` and `errno` repeat them; `applied` says whether this call's change
/// was made (in memory, its record kept for a retry) before its record failed.
pub(crate) fn throw_log_failed(
    env: sys::napi_env,
    why: Option<JournalError>,
    applied: bool,
) -> Error {
    let detail = why.as_ref().map_or("the log cannot write", |e| &e.message);
    let msg = if applied {
        format!(
            "append-only log write failed: {detail}; this change was made in memory but is \
             not durable (its record is retried), and writes are refused until the log can write"
        )
    } else {
        format!(
            "append-only log write failed: {detail}; writes are refused until the log can \
             write (this change was not made)"
        )
    };
    throw_with(
        env,
        Kind::Error,
        "FERROCACHE_LOG_FAILED",
        &msg,
        |err| unsafe {
            let mut v = ptr::null_mut();
            if let Some(e) = &why {
                let path = e.path.display().to_string();
                sys::napi_create_string_utf8(
                    env,
                    path.as_ptr().cast(),
                    path.len() as isize,
                    &mut v,
                );
                sys::napi_set_named_property(env, err, c"path".as_ptr(), v);
                if let Some(n) = e.errno {
                    sys::napi_create_int32(env, n, &mut v);
                    sys::napi_set_named_property(env, err, c"errno".as_ptr(), v);
                }
            }
            sys::napi_get_boolean(env, applied, &mut v);
            sys::napi_set_named_property(env, err, c"applied".as_ptr(), v);
        },
    )
}

/// A failed napi call: surface whatever napi has pending, or a generic error.
pub(crate) fn check(env: sys::napi_env, status: sys::napi_status) -> Result<()> {
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

pub(crate) fn error_code(e: StoreError) -> &'static str {
    match e {
        StoreError::BadKey => "FERROCACHE_BAD_KEY",
        StoreError::TooLarge => "FERROCACHE_TOO_LARGE",
        StoreError::OutOfMemory => "FERROCACHE_OUT_OF_MEMORY",
        StoreError::NonNumeric => "FERROCACHE_NON_NUMERIC",
    }
}

pub(crate) fn store_error(
    env: sys::napi_env,
    e: StoreError,
    store: &Store,
    req: &StoreRequest<'_>,
) -> Error {
    store_error_sized(env, e, store, req.key.len(), req.value.len())
}

/// [`store_error`] for a request of these key and value lengths.
pub(crate) fn store_error_sized(
    env: sys::napi_env,
    e: StoreError,
    store: &Store,
    klen: usize,
    vlen: usize,
) -> Error {
    match e {
        StoreError::TooLarge => {
            let msg = format!(
        "value is too large: {vlen} bytes with a {klen}-byte key do not fit in the item size limit \
         of {} bytes (maxItemSize; as memcached, an item counts 59 bytes more, 63 with flags)",
        store.config().item_size_max
      );
            throw(env, Kind::Range, error_code(e), &msg)
        }
        StoreError::BadKey => throw(env, Kind::Type, error_code(e), "key is not valid"),
        _ => throw(env, Kind::Error, error_code(e), &e.to_string()),
    }
}

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
pub struct JsOut(pub(crate) sys::napi_value);

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

/// Room for a key on the caller's stack: no allocation, and left uninitialised because
/// napi writes it (zeroing or moving 256 bytes per call shows up in profiles).
pub(crate) struct KeyBuf([MaybeUninit<u8>; KEY_BUF]);

impl KeyBuf {
    pub(crate) const fn new() -> KeyBuf {
        KeyBuf([MaybeUninit::uninit(); KEY_BUF])
    }
}

/// Which argument a key is, for error messages (formatted only on error).
#[derive(Clone, Copy)]
pub(crate) enum KeyName {
    Key,
    Index(usize),
    /// The key of `setMany`'s entry `i` (`entryKeyName` in src/batch-args.ts).
    Entry(usize),
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyName::Key => f.write_str("key"),
            KeyName::Index(i) => write!(f, "keys[{i}]"),
            KeyName::Entry(i) => write!(f, "entries[{i}] key"),
        }
    }
}

/// Reads a JS string key into `buf` and checks it as memcached's text protocol does:
/// 1 to 250 bytes of UTF-8, no spaces or control characters.
pub(crate) fn read_key(
    env: sys::napi_env,
    value: sys::napi_value,
    name: KeyName,
    buf: &mut KeyBuf,
) -> Result<&[u8]> {
    // Fast path: V8 copies a string's UTF-16 units several times faster than it encodes
    // UTF-8 (`WriteUtf8` goes character by character), and a key of printable ASCII is its
    // own UTF-8 and needs no other check. Anything else (non-ASCII, or a key to reject, whose
    // message the path below words) takes napi's UTF-8 conversion.
    let mut units = [MaybeUninit::<u16>::uninit(); KEY_BUF];
    let mut n = 0usize;
    let status = unsafe {
        sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr().cast(), KEY_BUF, &mut n)
    };
    // SAFETY: napi wrote `n` (< KEY_BUF) units at the start of `units` (none on failure).
    let units = match status {
        sys::Status::napi_ok => unsafe {
            std::slice::from_raw_parts(units.as_ptr() as *const u16, n)
        },
        _ => &[][..],
    };
    if n > 0 && n <= MAX_KEY_LEN && narrow_printable_ascii(units, &mut buf.0) {
        // SAFETY: narrow_printable_ascii initialised the first `n` bytes.
        return Ok(unsafe { std::slice::from_raw_parts(buf.0.as_ptr() as *const u8, n) });
    }
    let mut len = 0usize;
    let status = unsafe {
        sys::napi_get_value_string_utf8(
            env,
            value,
            buf.0.as_mut_ptr() as *mut c_char,
            KEY_BUF,
            &mut len,
        )
    };
    if status == sys::Status::napi_string_expected {
        let msg = format!("{name} must be a string, got {}", type_of(env, value));
        return Err(throw(env, Kind::Type, "FERROCACHE_BAD_KEY", &msg));
    }
    check(env, status)?;
    // SAFETY: napi wrote `len` (< KEY_BUF) initialised bytes at the start of `buf`.
    let key = unsafe { std::slice::from_raw_parts(buf.0.as_ptr() as *const u8, len) };
    if let Some(problem) = key_problem(env, value, key).or_else(|| lone_surrogate(key, units)) {
        let msg = format!("{name} {problem}");
        return Err(throw(env, Kind::Type, "FERROCACHE_BAD_KEY", &msg));
    }
    Ok(key)
}

/// A lone surrogate in a key: napi encodes it as U+FFFD, which would make keys that differ
/// only there one key. Looked for only when the UTF-8 holds a U+FFFD (EF BF BD); a key that
/// passed [`key_problem`] is at most 250 bytes, so `units` (up to 255 units) holds all of it.
fn lone_surrogate(key: &[u8], units: &[u16]) -> Option<String> {
    if !key.windows(3).any(|w| w == [0xef, 0xbf, 0xbd]) {
        return None;
    }
    let mut i = 0;
    while i < units.len() {
        let u = units[i];
        let high = (0xd800..0xdc00).contains(&u);
        let low_next = units
            .get(i + 1)
            .is_some_and(|&v| (0xdc00..0xe000).contains(&v));
        if high && low_next {
            i += 2;
            continue;
        }
        if (0xd800..0xe000).contains(&u) {
            return Some(format!(
                "must be well-formed Unicode: a lone surrogate (0x{u:04x}) at index {i}"
            ));
        }
        i += 1;
    }
    None
}

/// Copies `units` into `out` as bytes; `true` when every unit was printable ASCII (0x21 to
/// 0x7e: no space, control character, DEL or non-ASCII), so the bytes are a valid key.
/// Branch-free, so the compiler vectorises it.
#[inline]
fn narrow_printable_ascii(units: &[u16], out: &mut [MaybeUninit<u8>]) -> bool {
    let mut ok = true;
    for (dst, &u) in out.iter_mut().zip(units) {
        ok &= u.wrapping_sub(0x21) < 0x5e;
        dst.write(u as u8);
    }
    ok
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
pub(crate) struct KeyList {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyList {
    pub(crate) fn read(env: sys::napi_env, array: sys::napi_value) -> Result<KeyList> {
        KeyList::read_named(env, array, KeyName::Index)
    }

    /// [`KeyList::read`], each key named in errors by `name(index)`.
    pub(crate) fn read_named(
        env: sys::napi_env,
        array: sys::napi_value,
        name: fn(usize) -> KeyName,
    ) -> Result<KeyList> {
        let n = array_len(env, array, "keys")?;
        // `n` is the array's length, which a sparse array sets to anything up to 2^32-1:
        // reserve for at most 4096 keys, and grow with the keys actually read.
        let reserve = n.min(4096);
        let mut list = KeyList {
            bytes: Vec::with_capacity(reserve * 24),
            ends: Vec::with_capacity(reserve),
        };
        for i in 0..n {
            let mut el = ptr::null_mut();
            check(env, unsafe {
                sys::napi_get_element(env, array, i as u32, &mut el)
            })?;
            let mut buf = KeyBuf::new();
            let key = read_key(env, el, name(i), &mut buf)?;
            list.bytes.extend_from_slice(key);
            list.ends.push(list.bytes.len());
        }
        Ok(list)
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

pub(crate) fn array_len(env: sys::napi_env, array: sys::napi_value, name: &str) -> Result<usize> {
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
    // a Buffer first, the common case: asking the typed array straight away saves the
    // `napi_typeof` (~100 instructions) every value paid before; anything else fails it
    // (no exception, nothing allocated) and is sorted out below
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
            if is_detached_view(env, value) {
                let msg = format!(
                    "{name} is a view of a detached ArrayBuffer (transferred away): \
                     it has no bytes to store"
                );
                return Err(throw(env, Kind::Type, "FERROCACHE_BAD_VALUE", &msg));
            }
            &[][..]
        } else {
            // SAFETY: the typed array keeps its bytes alive for this synchronous call.
            unsafe { std::slice::from_raw_parts(data as *const u8, len) }
        };
        return f(bytes);
    }
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
    let msg = format!(
        "{name} must be a string, Buffer or Uint8Array, got {}",
        type_of(env, value)
    );
    Err(throw(env, Kind::Type, "FERROCACHE_BAD_VALUE", &msg))
}

/// Whether the typed array `view` (of length 0) is over a detached ArrayBuffer: its bytes
/// were transferred away, so storing it would store nothing where the caller meant bytes.
/// Asked only of empty views, as getting the buffer can make V8 allocate one.
#[cold]
fn is_detached_view(env: sys::napi_env, view: sys::napi_value) -> bool {
    let mut buffer = ptr::null_mut();
    let mut detached = false;
    unsafe {
        sys::napi_get_typedarray_info(
            env,
            view,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut buffer,
            ptr::null_mut(),
        ) == sys::Status::napi_ok
            && sys::napi_is_detached_arraybuffer(env, buffer, &mut detached) == sys::Status::napi_ok
            && detached
    }
}

/// A non-negative bigint below 2^64.
pub(crate) fn read_u64(env: sys::napi_env, value: sys::napi_value, name: &str) -> Result<u64> {
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

pub(crate) fn type_of(env: sys::napi_env, value: sys::napi_value) -> &'static str {
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
        _ => {
            // the usual way to pass one: a call missing its `await`; say so
            let mut promise = false;
            unsafe { sys::napi_is_promise(env, value, &mut promise) };
            if promise {
                PROMISE
            } else {
                "object"
            }
        }
    }
}

/// How argument errors name a Promise (`src/encoding.ts` and `src/client/keys.ts` too).
const PROMISE: &str = "Promise (is an await missing?)";

pub(crate) fn undefined(env: sys::napi_env) -> Result<JsOut> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_get_undefined(env, &mut out) })?;
    Ok(JsOut(out))
}

pub(crate) fn new_buffer(env: sys::napi_env, bytes: &[u8]) -> Result<JsOut> {
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

pub(crate) fn new_string(env: sys::napi_env, bytes: &[u8]) -> Result<JsOut> {
    let mut out = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_string_utf8(env, bytes.as_ptr().cast(), bytes.len() as isize, &mut out)
    })?;
    Ok(JsOut(out))
}

pub(crate) fn encode(env: sys::napi_env, bytes: &[u8], as_string: bool) -> Result<sys::napi_value> {
    let out = if as_string {
        new_string(env, bytes)?
    } else {
        new_buffer(env, bytes)?
    };
    Ok(out.0)
}

pub(crate) fn new_object(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_create_object(env, &mut out) })?;
    Ok(out)
}

pub(crate) fn new_number(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe { sys::napi_create_double(env, n, &mut out) })?;
    Ok(out)
}

pub(crate) fn new_bigint(env: sys::napi_env, n: u64) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_bigint_uint64(env, n, &mut out)
    })?;
    Ok(out)
}

pub(crate) fn set_prop(
    env: sys::napi_env,
    obj: sys::napi_value,
    name: &CStr,
    v: sys::napi_value,
) -> Result<()> {
    check(env, unsafe {
        sys::napi_set_named_property(env, obj, name.as_ptr(), v)
    })
}

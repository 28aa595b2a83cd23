//! The network server's per-connection codec as JS classes, for `src/server/`.
//!
//! `NativeServerInfo` wraps the protocol crate's shared [`ServerInfo`] (settings, connection
//! counters, `stats conns`); `NativeSession` wraps one connection's [`Session`]. TypeScript
//! owns the socket and calls `feed` once per read: every complete request in the bytes is
//! executed here and all replies come back as one `Buffer`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrocache_core::Store;
use ferrocache_protocol::{ConnEntry, Control, ServerInfo, Session};
use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi::{Env, Result};
use napi_derive::napi;

use crate::cache::NativeCache;

/// Replies up to this size are copied into a fresh JS Buffer and the Rust buffer is
/// reused; larger ones are handed over without a copy.
const COPY_REPLY_MAX: usize = 64 * 1024;

/// Once one `feed` has produced this much reply, the rest of the input waits (in
/// `pending`) until JS has written the replies out and calls `feed` again: a pipeline of
/// `get`s for large items cannot make one call allocate gigabytes.
const REPLY_BUDGET: usize = 4 << 20;

/// Input is executed in slices of this size, so the budget is checked between them; the
/// reply to one slice is at most its requests times the largest item. A read of a
/// pipeline 16 deep fits in one slice.
const SLICE: usize = 1024;

/// Ids for `stats conns` (memcached prints file descriptors; we number connections).
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Server-wide facts shared by every session of one server: settings for `stats settings`,
/// connection counters, the `-A` switch and the verbosity set by the `verbosity` command.
#[napi]
pub struct NativeServerInfo {
    inner: Arc<ServerInfo>,
}

#[napi]
impl NativeServerInfo {
    /// `version` is what `version` and `stats` report.
    #[napi(constructor)]
    pub fn new(version: String) -> Self {
        NativeServerInfo {
            inner: Arc::new(ServerInfo::new(&version)),
        }
    }

    /// Replaces the `stats settings` list: `[name, value]` pairs in the order printed.
    #[napi]
    pub fn set_settings(&self, settings: Vec<Vec<String>>) {
        let pairs = settings
            .into_iter()
            .filter_map(|mut p| {
                let value = p.pop()?;
                let name = p.pop()?;
                Some((name, value))
            })
            .collect();
        self.inner.set_settings(pairs);
    }

    /// `-c`, shown as `max_connections`.
    #[napi]
    pub fn set_max_connections(&self, n: u32) {
        self.inner
            .max_connections
            .store(n as u64, Ordering::Relaxed);
    }

    /// `-A`: whether the `shutdown` command is honoured.
    #[napi]
    pub fn set_shutdown_enabled(&self, enabled: bool) {
        self.inner
            .shutdown_enabled
            .store(enabled, Ordering::Relaxed);
    }

    /// The verbosity (`-v` count, or what the last `verbosity` command set).
    #[napi(getter)]
    pub fn verbosity(&self) -> u32 {
        self.inner.verbosity.load(Ordering::Relaxed)
    }

    #[napi(setter)]
    pub fn set_verbosity(&self, v: u32) {
        self.inner.verbosity.store(v, Ordering::Relaxed);
    }

    /// Counts a connection refused by the connection limit.
    #[napi]
    pub fn conn_rejected(&self) {
        self.inner.conn_rejected();
    }

    #[napi(getter)]
    pub fn curr_connections(&self) -> f64 {
        self.inner.curr_connections() as f64
    }

    #[napi(getter)]
    pub fn total_connections(&self) -> f64 {
        self.inner.total_connections() as f64
    }

    #[napi(getter)]
    pub fn rejected_connections(&self) -> f64 {
        self.inner.rejected_connections() as f64
    }
}

/// One client connection's protocol state. Counted as open from construction until
/// `close()` (or garbage collection).
#[napi]
pub struct NativeSession {
    session: Option<Session<Arc<Store>>>,
    info: Arc<ServerInfo>,
    id: u64,
    out: Vec<u8>,
    /// Input received but not yet executed because the reply budget ran out.
    pending: Vec<u8>,
    control: Control,
}

#[napi]
impl NativeSession {
    /// A session over `cache`'s engine. `addr` and `listenAddr` are shown by `stats conns`
    /// (e.g. `tcp:127.0.0.1:50112`). Throws if the cache is closed.
    #[napi(constructor)]
    pub fn new(
        cache: &NativeCache,
        info: &NativeServerInfo,
        addr: String,
        listen_addr: String,
    ) -> Result<Self> {
        let store = cache.store()?;
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let opened = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        info.inner.conn_opened(
            id,
            ConnEntry {
                addr,
                listen_addr,
                opened,
            },
        );
        Ok(NativeSession {
            session: Some(Session::new(store, info.inner.clone())),
            info: info.inner.clone(),
            id,
            out: Vec::new(),
            pending: Vec::new(),
            control: Control::Continue,
        })
    }

    /// Executes the complete requests in the bytes received so far and returns their
    /// replies, or `null` when there are none. Incomplete requests stay buffered here. If
    /// the replies pass a budget (4 MiB) the remaining input is held back and `hasPending`
    /// is true: write the replies, then call `feed` again (with an empty buffer).
    #[napi(ts_return_type = "Buffer | null")]
    pub fn feed<'env>(&mut self, env: &'env Env, input: &[u8]) -> Result<Option<Reply<'env>>> {
        let Some(session) = self.session.as_mut() else {
            self.control = Control::Close;
            return Ok(None);
        };
        self.out.clear();
        self.control = Control::Continue;
        // Held-back input goes first; joining them copies, but only after a budget overrun.
        let joined;
        let data: &[u8] = if self.pending.is_empty() {
            input
        } else {
            let mut held = std::mem::take(&mut self.pending);
            held.extend_from_slice(input);
            joined = held;
            &joined
        };
        let mut at = 0;
        while at < data.len() {
            let end = (at + SLICE).min(data.len());
            self.control = session.feed(&data[at..end], &mut self.out);
            at = end;
            if self.control != Control::Continue || self.out.len() >= REPLY_BUDGET {
                break;
            }
        }
        if self.control == Control::Continue && at < data.len() {
            self.pending = data[at..].to_vec();
        }
        if self.out.is_empty() {
            return Ok(None);
        }
        if self.out.len() <= COPY_REPLY_MAX {
            return Ok(Some(Reply::Copied(BufferSlice::copy_from(env, &self.out)?)));
        }
        Ok(Some(Reply::Owned(std::mem::take(&mut self.out).into())))
    }

    /// Whether input is held back waiting for the replies to be written (see `feed`).
    #[napi(getter)]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// What the last `feed` asked for: `"continue"`, `"close"` (write the replies, then
    /// close) or `"shutdown"` (close, then stop the server).
    #[napi(getter, ts_return_type = "'continue' | 'close' | 'shutdown'")]
    pub fn control(&self) -> &'static str {
        match self.control {
            Control::Continue => "continue",
            Control::Close => "close",
            Control::Shutdown => "shutdown",
        }
    }

    /// Bytes of an incomplete request held back.
    #[napi(getter)]
    pub fn buffered(&self) -> u32 {
        self.session.as_ref().map_or(0, |s| s.buffered() as u32)
    }

    /// Frees the session and counts the connection as closed. Idempotent.
    #[napi]
    pub fn close(&mut self) {
        if self.session.take().is_some() {
            self.info.conn_closed(self.id);
        }
        self.out = Vec::new();
        self.pending = Vec::new();
    }
}

impl Drop for NativeSession {
    fn drop(&mut self) {
        self.close();
    }
}

/// A reply buffer: small ones copied, large ones moved to JS.
pub enum Reply<'env> {
    Copied(BufferSlice<'env>),
    Owned(Buffer),
}

impl napi::bindgen_prelude::ToNapiValue for Reply<'_> {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        match val {
            Reply::Copied(b) => unsafe {
                napi::bindgen_prelude::ToNapiValue::to_napi_value(env, &b)
            },
            Reply::Owned(b) => unsafe { Buffer::to_napi_value(env, b) },
        }
    }
}

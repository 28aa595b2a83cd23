//! napi-rs bindings: `#[napi]` wrappers only. Logic lives in ferrocache-core (the engine)
//! and ferrocache-protocol (the codecs); TypeScript in `src/` builds the friendly API.

#![deny(clippy::all)]

mod cache;
mod limits;
mod persist;
mod replication;
mod session;

use napi::bindgen_prelude::Object;
use napi::{Env, Result};
use napi_derive::napi;

/// The callbacks registered by hand (napi-rs runs one `module_exports` hook per module).
#[napi(module_exports)]
pub fn register_hand_ops(exports: Object, env: Env) -> Result<()> {
    cache::register_cache_ops(&exports, env)?;
    session::register_session_ops(&exports, env)
}

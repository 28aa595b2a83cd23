//! napi-rs bindings: `#[napi]` wrappers only. Logic lives in ferrocache-core (the engine)
//! and ferrocache-protocol (the codecs); TypeScript in `src/` builds the friendly API.

#![deny(clippy::all)]

mod cache;
mod persist;
mod session;

//! memcached's text, meta and binary protocols for ferrocache, byte for byte as
//! memcached 1.6.18 speaks them.
//!
//! A server owns sockets; for each connection it creates a [`Session`] and hands it
//! every read with [`Session::feed`], which executes all complete requests and appends
//! their replies. The codecs reach the engine only through [`Storage`] (implemented for
//! `ferrocache_core::Store`), and server-wide facts for `stats` live in a shared
//! [`ServerInfo`].
//!
//! Where a request goes: `session.rs` (buffering, protocol choice) → `text.rs` /
//! `meta.rs` / `binary.rs` (parse, execute, reply) → `storage.rs` (the engine seam).

mod admin;
mod auth;
mod base64;
mod binary;
pub mod detail;
mod engine;
mod info;
mod meta;
/// memcached's number parsing, shared with storages (incr/decr values) and tests.
pub mod num;
mod session;
mod stats;
/// The [`Storage`] trait and the engine types its methods take and return.
pub mod storage;
mod text;
/// memcached's log stream (`watch`): filters, the server-wide [`watch::Logger`], its lines.
pub mod watch;

pub use auth::Users;
pub use info::{ConnEntry, LiveOffset, Protocols, ServerInfo, Switches};
pub use session::{Control, Limits, Session};
pub use storage::Storage;

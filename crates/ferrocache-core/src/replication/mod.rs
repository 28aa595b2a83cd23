//! Primary → replica replication: the record stream, the backlog, and both ends of a sync.
//! The sockets, reconnects and lifecycle live in TypeScript (`src/replication/`); the wire
//! protocol is described in `docs/replication.md`.
//!
//! - [`stream`]: the frames (the journal's records plus heartbeat and sync-end) and the pure
//!   [`stream::decode`].
//! - [`backlog`]: the ring buffer of the last stream bytes, by offset.
//! - [`ReplLog`]: a node's replication id, offset and backlog; the store's journal sink.
//! - [`FullSync`] / [`Applier`]: snapshot frames out of a primary, frames into a replica.

mod apply;
pub mod backlog;
mod log;
pub mod stream;

pub use apply::{Applied, Applier, FullSync};
pub use log::{new_replid, LogInfo, Psync, ReplLog};
pub use stream::{decode, DecodeError, Frame};

#[cfg(test)]
mod tests;

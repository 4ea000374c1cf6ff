//! The peergroup node.
//!
//! This crate puts [`peergroup_protocol`] on disk (redb) and, in later
//! milestones, on the network (libp2p), and ships the `peergroup` binary.
//!
//! # Layout
//!
//! - [`store`]: [`store::RedbStore`], the persistent record database, keystore
//!   and group list in one redb file, with its migrations and error types.

pub use peergroup_protocol as protocol;

pub mod store;

/// The node's version, as the binary reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

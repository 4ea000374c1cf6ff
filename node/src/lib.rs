//! The peergroup node.
//!
//! This crate will put [`peergroup_protocol`] on the network (libp2p) and on
//! disk (redb), and ships the `peergroup` binary. For now it re-exports the
//! protocol core; networking and persistence arrive in later milestones
//! (see the README's roadmap).

pub use peergroup_protocol as protocol;

/// The node's version, as the binary reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

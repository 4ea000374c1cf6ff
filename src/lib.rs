//! peergroup: the Windows Peer-to-Peer Grouping model rebuilt on rust-libp2p.
//!
//! This facade re-exports the workspace's crates:
//!
//! - [`protocol`]: the sans-I/O core (identities, peer names, groups, records,
//!   signed envelopes, merge order, the store trait);
//! - [`node`]: the networked node and the `peergroup` binary.

pub use peergroup_node as node;
pub use peergroup_protocol as protocol;

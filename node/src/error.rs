//! [`NodeError`]: what the node's API returns.

use peergroup_protocol::{Error, StoreError};
use thiserror::Error;

use crate::{behaviour::BehaviourError, config::ConfigError};

/// A node operation's failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A Windows-style peer-group error (`PEER_E_*`); most API errors are these.
    #[error(transparent)]
    Peer(#[from] Error),
    /// The node has shut down; the handle can do nothing more.
    #[error("the node has shut down")]
    Shutdown,
    /// The data directory's database could not be opened (the error names the file).
    #[error(transparent)]
    Open(#[from] crate::store::OpenError),
    /// The record store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The libp2p behaviour could not be built.
    #[error(transparent)]
    Behaviour(#[from] BehaviourError),
    /// The transport could not be set up.
    #[error("transport: {0}")]
    Transport(String),
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
}

impl NodeError {
    /// The peer-group error inside, if this is one.
    pub fn peer(&self) -> Option<&Error> {
        match self {
            NodeError::Peer(e) => Some(e),
            _ => None,
        }
    }
}

impl From<peergroup_protocol::AuthorizeError> for NodeError {
    fn from(e: peergroup_protocol::AuthorizeError) -> NodeError {
        NodeError::Peer(e.into())
    }
}

//! [`Error`]: what the node's API returns.

use std::path::PathBuf;

use peergroup_protocol::StoreError;
use thiserror::Error as ThisError;

use crate::{config::ConfigError, event::OperationError, storage::OpenError};

/// A node operation's failure.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// A Windows-style peer-group error (`PEER_E_*`); most API errors are these.
    #[error(transparent)]
    Peer(#[from] peergroup_protocol::Error),
    /// The node has shut down; the handle can do nothing more.
    #[error("the node has shut down")]
    Shutdown,
    /// The data directory's database could not be opened (the error names the file).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A read of the record store failed (the error names the file).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A write could not be committed (a full disk, an I/O error).
    #[error("the store could not commit: {0}")]
    Write(String),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The libp2p behaviour could not be built.
    #[error(transparent)]
    Behaviour(#[from] BuildError),
    /// The transport could not be set up.
    #[error("transport: {0}")]
    Transport(String),
    /// The node key file could not be read or written.
    #[error("node key file {path}: {reason}")]
    NodeKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
}

/// The name this crate used before `node::Error`; kept for the crate's own code.
pub(crate) type NodeError = Error;

impl Error {
    /// The peer-group error inside, if this is one.
    pub fn peer(&self) -> Option<&peergroup_protocol::Error> {
        match self {
            Error::Peer(e) => Some(e),
            _ => None,
        }
    }
}

impl From<peergroup_protocol::AuthorizeError> for Error {
    fn from(e: peergroup_protocol::AuthorizeError) -> Error {
        Error::Peer(e.into())
    }
}

impl From<OperationError> for Error {
    fn from(e: OperationError) -> Error {
        match e {
            OperationError::Peer(e) => Error::Peer(e),
            OperationError::Store(reason) => Error::Write(reason),
        }
    }
}

/// Why the behaviour could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Gossipsub rejected its configuration.
    #[error("gossipsub configuration: {0}")]
    Gossipsub(String),
    /// mDNS could not start (no usable network interface watcher).
    #[error("mDNS could not start: {0}")]
    Mdns(#[source] std::io::Error),
    /// A worker thread could not start.
    #[error("cannot start a worker thread: {0}")]
    Thread(#[source] std::io::Error),
}

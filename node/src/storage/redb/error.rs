//! The store's errors: [`OpenError`] for opening a file, [`AccessError`] for
//! everything done with an open store. Both name the file.

use std::path::PathBuf;

use peergroup_protocol::StoreError;
use thiserror::Error;

/// What to do about a store file that is damaged, said after the error:
/// the way back is a backup, or the groups' other members, who hold their
/// records; the identities' secret keys live in the same file, so only
/// their exports bring them back.
pub(crate) const DAMAGED_ADVICE: &str = "To recover, restore the file from a backup, or move \
     it aside (a new, empty store is then made) and join your groups again: their members hold \
     the records. The identities' secret keys were in this file too: import them from their \
     exports (`peergroup identity export`) first, or the groups must invite new identities.";

/// Why a store file could not be opened (or created).
///
/// An open never starts a fresh database over a file it cannot read: an
/// empty, foreign, truncated or damaged file is reported, and left as it was.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file or its directory cannot be read or created.
    #[error("cannot open the store {}: {source}", .path.display())]
    Io {
        /// The store file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another handle, in this process or another, has the file open.
    #[error("the store {} is already open (by this or another process)", .path.display())]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The file is not a peergroup store: empty, not a redb database, or a redb
    /// database that another program wrote.
    #[error(
        "{} is not a peergroup store: {reason}. If it is not this node's store, check the \
         path (the data directory). If it is, it is damaged. {DAMAGED_ADVICE}",
        .path.display()
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The file is a peergroup store, but damaged: truncated, altered outside
    /// redb, or holding a row that does not decode.
    #[error("the store {} is corrupt: {reason}. {DAMAGED_ADVICE}", .path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A newer build wrote the file: its schema version is unknown here.
    #[error(
        "the store {} has schema version {found}, newer than this build's {supported}: \
         open it with a newer peergroup",
        .path.display()
    )]
    UnknownSchema {
        /// The store file.
        path: PathBuf,
        /// The schema version the file records.
        found: u64,
        /// The newest schema version this build knows.
        supported: u64,
    },
    /// redb failed in another way (an I/O error part way, an old file format).
    #[error("cannot open the store {}: {source}", .path.display())]
    Backend {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: redb::Error,
    },
}

impl OpenError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            OpenError::Io { path, .. }
            | OpenError::Locked { path }
            | OpenError::NotAStore { path, .. }
            | OpenError::Corrupt { path, .. }
            | OpenError::UnknownSchema { path, .. }
            | OpenError::Backend { path, .. } => path,
        }
    }

    /// Maps a redb error met while opening or migrating `path`.
    pub(super) fn from_redb(path: PathBuf, error: impl Into<redb::Error>) -> OpenError {
        match error.into() {
            redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
                OpenError::Locked { path }
            }
            redb::Error::Corrupted(reason) => OpenError::Corrupt { path, reason },
            redb::Error::Io(source) => match source.kind() {
                // redb's own wording: "Not a redb database: magic number mismatch".
                std::io::ErrorKind::InvalidData => OpenError::NotAStore {
                    path,
                    reason: source.to_string(),
                },
                std::io::ErrorKind::UnexpectedEof => OpenError::Corrupt {
                    path,
                    reason: format!("the file is truncated ({source})"),
                },
                _ => OpenError::Io { path, source },
            },
            redb::Error::TableTypeMismatch { table, .. }
            | redb::Error::TableIsMultimap(table)
            | redb::Error::TableIsNotMultimap(table) => OpenError::NotAStore {
                path,
                reason: format!("its table {table:?} has another layout than a peergroup store's"),
            },
            source => OpenError::Backend { path, source },
        }
    }
}

/// Why an operation on an open store failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Stored bytes no longer decode or verify, or an index disagrees with
    /// the rows: the file was damaged or altered outside peergroup.
    #[error("the store {} is corrupt: {reason}", .path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong, naming the row.
        reason: String,
    },
    /// redb failed (I/O, a full disk).
    #[error("the store {} failed: {source}", .path.display())]
    Backend {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: redb::Error,
    },
    /// A value the store refuses to write (an incoherent group state, say).
    #[error("the store {} refused a write: {reason}", .path.display())]
    Refused {
        /// The store file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl AccessError {
    /// Maps a redb error met while using `path`.
    pub(super) fn from_redb(path: PathBuf, error: impl Into<redb::Error>) -> AccessError {
        match error.into() {
            redb::Error::Corrupted(reason) => AccessError::Corrupt { path, reason },
            source => AccessError::Backend { path, source },
        }
    }
}

impl From<AccessError> for StoreError {
    fn from(error: AccessError) -> StoreError {
        match error {
            AccessError::Corrupt { .. } => StoreError::Corrupt(error.to_string()),
            other => StoreError::Backend(Box::new(other)),
        }
    }
}

/// A failure inside the store, before the file's path is attached (each
/// public method turns it into an [`AccessError`] with [`Failure::at`]).
#[derive(Debug)]
pub(super) enum Failure {
    /// redb failed.
    Redb(redb::Error),
    /// Stored bytes are wrong; the text names the row.
    Corrupt(String),
    /// A write the store refuses; the text says why.
    Refused(String),
}

macro_rules! failure_from_redb {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for Failure {
            fn from(error: $error) -> Failure {
                Failure::Redb(error.into())
            }
        })*
    };
}

failure_from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
);

impl Failure {
    /// The [`AccessError`] for the store file `path`.
    pub(crate) fn at(self, path: &std::path::Path) -> AccessError {
        match self {
            Failure::Redb(error) => AccessError::from_redb(path.to_path_buf(), error),
            Failure::Refused(reason) => AccessError::Refused {
                path: path.to_path_buf(),
                reason,
            },
            Failure::Corrupt(reason) => AccessError::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
        }
    }
}

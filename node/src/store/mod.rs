//! The persistent store: one redb file per node.
//!
//! [`RedbStore`] implements the protocol's [`Store`](peergroup_protocol::Store)
//! trait (every group's records, merged with the protocol's merge order) and
//! keeps the node's local identities with their secret keys, its groups'
//! signed properties and its own credentials, all in one file in the node's
//! data directory ([`FILE_NAME`]). Nothing else runs beside it: redb is
//! embedded.
//!
//! - Records are stored as the verified envelope bytes, verbatim, and
//!   re-verified whenever they are read back, so a byte altered on disk is
//!   reported ([`AccessError::Corrupt`]) and never served.
//! - A merge is one durable write transaction for the whole batch (group
//!   commit); it returns what changed, for record events.
//! - Tables carry a schema version in their name; the file records its schema
//!   version and every open runs the numbered migrations (`migrations`).
//! - Opening checks every page checksum; a file that is empty, foreign,
//!   truncated or damaged gives an [`OpenError`] naming it and is left alone.
//!
//! The byte layout of every table is documented in `tables` and in
//! `docs/store.md`.
//!
//! The store is synchronous: async code reaches it through the node's store
//! actor or `spawn_blocking` (style rule 18).
//!
//! Nothing here may panic on what it reads from disk: the lints below hold
//! the store to the protocol crate's rule (style rule 9).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod backend;
mod database;
mod error;
mod local;
mod merge;
mod migrations;
mod tables;
#[cfg(test)]
mod tests;
mod verify;

pub use self::{
    backend::Backend,
    database::{FILE_NAME, RedbStore},
    error::{AccessError, OpenError},
    local::{GroupEntry, MAX_CREDENTIAL_SIZE},
    verify::decode_records,
};

//! The persistent store: one redb file per node.
//!
//! [`RedbStore`] implements the protocol's [`Store`](peergroup_protocol::Store)
//! trait (every group's records, merged with the protocol's merge order) and
//! the node's [`Backend`](super::Backend), and keeps the node's local
//! identities with their secret keys and the state of its groups (properties,
//! member, credential, readiness), all in one file in the node's data
//! directory ([`FILE_NAME`]). Nothing else runs beside it: redb is embedded.
//!
//! - Records are stored as the envelope bytes that were verified before they
//!   were stored, verbatim, each with a summary row (version, sha2-256,
//!   type, expiry). Reads check an envelope against its hash and decode it
//!   without checking its signature again, so a byte altered on disk is
//!   reported ([`AccessError::Corrupt`]) and never served, at a fraction of a
//!   signature check's cost. `verify_records` runs the full check.
//! - A merge is one durable write transaction for the whole batch (group
//!   commit); it returns what changed, for record events. Only versions
//!   equal to the stored one need the stored envelope.
//! - Tables carry a schema version in their name; the file records its schema
//!   version and every open runs the numbered migrations (`migrations`).
//! - Opening checks every page checksum; a file that is empty, foreign,
//!   truncated or damaged gives an [`OpenError`] naming it and is left alone.
//!
//! The byte layout of every table is documented in `tables` and in
//! `docs/store.md`.
//!
//! The store is synchronous and every method takes `&self` (redb serializes
//! write transactions and runs reads beside them): the node reaches it from
//! its storage worker thread and from readers (style rule 18).
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
mod node_state;
mod peers;
mod read;
mod tables;
#[cfg(test)]
mod tests;
mod verify;

pub use self::{
    database::{FILE_NAME, RedbStore},
    error::{AccessError, OpenError},
    read::RawRecords,
    verify::decode_records,
};

use self::{error::Failure, merge::Merger};

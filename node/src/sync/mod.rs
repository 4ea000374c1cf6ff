//! Synchronization between members (reference 3.5), protocol
//! `/peergroup/sync/4`: range-based set reconciliation
//! (`peergroup_protocol::reconcile`) finds which records one member has that
//! the other lacks, then fetches bring them, in batches bounded by bytes.
//! The session decides what to ask and what to make of the answers
//! (`peergroup_protocol::session`, its `sync` module); this module holds the
//! protocol id, the request correlation (`requests`) while `crate::behaviour`'s `sync`
//! turns the session's requests into libp2p requests and answers.
//!
//! Both ends are authenticated members of the group: requests go only to
//! neighbours that proved their membership in the group authentication
//! exchange (`auth`) of this connection, and a responder serves only peers
//! that proved theirs for the requested group, so a non-member learns nothing
//! through this protocol and cannot answer a joiner's synchronization.
//! Reconciliation answers come from the session's in-memory index of record
//! versions (no envelope is read or decoded); fetches are read on the
//! storage reader thread. The requester verifies every envelope on the
//! verify pool and the session authorizes it before it is merged.
//!
//! Versions: 2 added a page cursor to the first-connect copy; 3 moved the
//! requester's proof into group authentication; 4 replaced the paged copy
//! with reconciliation on every connection.

pub(crate) mod requests;

pub(crate) use self::requests::SyncRequests;

use libp2p::StreamProtocol;
pub use peergroup_protocol::messages::sync::{
    MAX_FETCH_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, Response,
};

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/sync/4");

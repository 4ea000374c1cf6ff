//! The first-connect copy: a paged request-response protocol
//! (`/peergroup/sync/3`) through which a joiner copies a member's database.
//! The session decides what to ask and what to make of the answers; this
//! module holds the messages and their bounds.
//!
//! Both ends are authenticated members of the group: requests go only to
//! neighbours that proved their membership in the group authentication
//! exchange (`auth`) of this connection, and a responder serves only peers
//! that proved theirs for the requested group, so a non-member learns nothing
//! through this protocol and cannot answer a joiner's copy. (Version 2 carried
//! a per-request proof of the requester only; the responder proved nothing.)
//! Pages are bounded by [`PAGE_RECORDS`] records and [`PAGE_BYTES`] bytes;
//! the joiner verifies and authorizes every envelope before merging it.
//! Membership records are copied first, so the records that follow validate
//! at once.
//!
//! Every page names its cursor (`last`), the id the next page starts after,
//! so that a page whose envelopes do not decode still moves the copy forward,
//! and a server that does not move it is caught (the session checks).

mod handler;

use libp2p::StreamProtocol;
pub use peergroup_protocol::messages::sync::{
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PAGE_BYTES, PAGE_RECORDS, Request, Response,
};

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/sync/3");

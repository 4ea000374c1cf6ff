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
use peergroup_protocol::{PeerName, RecordId, RecordType};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/sync/3");

/// The most records in one page.
pub const PAGE_RECORDS: usize = 512;

/// The most envelope bytes in one page (a page may exceed it by one record).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The largest request accepted (a request is under 200 bytes).
pub const MAX_REQUEST_BYTES: u64 = 4 * 1024;

/// The largest response accepted: a full page plus its framing.
pub const MAX_RESPONSE_BYTES: u64 = (PAGE_BYTES as u64) * 2 + 1024 * 1024;

/// A page request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The group.
    #[serde(rename = "g")]
    pub group: PeerName,
    /// Only records of this type.
    #[serde(rename = "t")]
    pub record_type: Option<RecordType>,
    /// Records with ids above this one.
    #[serde(rename = "a")]
    pub after: Option<RecordId>,
}

/// A page, or a refusal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Records in id order; `done` when there are no more.
    #[serde(rename = "page")]
    Page {
        /// The group's current signed properties.
        #[serde(rename = "p")]
        properties: ByteBuf,
        /// Record envelopes.
        #[serde(rename = "r")]
        records: Vec<ByteBuf>,
        /// The cursor: the id of the last record considered for this page
        /// (the request's `after` when the page is empty).
        #[serde(rename = "l")]
        last: Option<RecordId>,
        /// Whether this is the last page.
        #[serde(rename = "d")]
        done: bool,
    },
    /// The responder will not serve this request.
    #[serde(rename = "refused")]
    Refused {
        /// Why (for logs).
        #[serde(rename = "r")]
        reason: String,
    },
}

//! First-connect copy messages (`/peergroup/sync/3`): the protocol is
//! described in the node's `sync` module and in `docs/design.md`.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    peer_name::PeerName,
    record::{RecordId, RecordType},
};

/// The most records in one page.
pub const PAGE_RECORDS: usize = 512;

/// The most envelope bytes in one page (a page may exceed it by one record).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The largest request accepted (a request is under 200 bytes).
pub const MAX_REQUEST_BYTES: u64 = 4 * 1024;

/// The largest response accepted: twice a full page ([`PAGE_BYTES`], which a
/// page may exceed by one record) plus 1 MiB of framing.
pub const MAX_RESPONSE_BYTES: u64 = 9 * 1024 * 1024;

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

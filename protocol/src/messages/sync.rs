//! Synchronization messages (`/peergroup/sync/4`): range-based
//! reconciliation ([`crate::reconcile`]) and fetching the records it finds
//! missing. The protocol is described in the node's `sync` module and in
//! `docs/design.md`.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    peer_name::PeerName,
    reconcile::{Answer, Query},
    record::RecordId,
};

/// The most envelope bytes a fetch may ask for (a response may exceed it by
/// one record).
pub const MAX_FETCH_BYTES: u32 = 4 * 1024 * 1024;

/// The largest request accepted: [`crate::reconcile::MAX_QUERIES`] queries of about 60 bytes,
/// or [`crate::session::FETCH_IDS`] ids of 17, with framing.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// The largest response accepted: a fetch of [`MAX_FETCH_BYTES`] plus one
/// record of the largest size and framing, or the answers to
/// [`crate::reconcile::MAX_QUERIES`] queries (at most 32 items of 36 bytes each).
pub const MAX_RESPONSE_BYTES: u64 = 6 * 1024 * 1024;

/// A synchronization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Reconciliation queries over the requester's set.
    #[serde(rename = "reconcile")]
    Reconcile {
        /// The group.
        #[serde(rename = "g")]
        group: PeerName,
        /// At most [`crate::reconcile::MAX_QUERIES`] queries.
        #[serde(rename = "q")]
        queries: Vec<Query>,
    },
    /// The envelopes of these records.
    #[serde(rename = "fetch")]
    Fetch {
        /// The group.
        #[serde(rename = "g")]
        group: PeerName,
        /// At most [`crate::session::FETCH_IDS`] record ids, in the order to send them.
        #[serde(rename = "i")]
        ids: Vec<RecordId>,
        /// About how many envelope bytes to send (at most
        /// [`MAX_FETCH_BYTES`]; the server sends at least one record).
        #[serde(rename = "b")]
        max_bytes: u32,
    },
}

/// A synchronization response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// One answer per query, in order.
    #[serde(rename = "reconciled")]
    Reconciled {
        /// The group's current signed properties.
        #[serde(rename = "p")]
        properties: ByteBuf,
        /// The answers.
        #[serde(rename = "a")]
        answers: Vec<Answer>,
    },
    /// The envelopes of the records asked for that the server holds.
    #[serde(rename = "records")]
    Records {
        /// The group's current signed properties.
        #[serde(rename = "p")]
        properties: ByteBuf,
        /// Record envelopes, in request order.
        #[serde(rename = "r")]
        records: Vec<ByteBuf>,
        /// How many of the requested ids were considered (the rest did not
        /// fit in the bytes asked for).
        #[serde(rename = "n")]
        considered: u32,
    },
    /// The server will not answer this request.
    #[serde(rename = "refused")]
    Refused {
        /// Why (for logs).
        #[serde(rename = "r")]
        reason: String,
    },
}

//! Group authentication messages (`/peergroup/auth/1`): the exchange is
//! described in the node's `auth` module and in `docs/design.md`.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    auth::{AuthProof, GROUP_TAG_LEN},
    seal::WrappedKey,
    time::Timestamp,
};

/// The largest request or response accepted: a proof with a 24-credential
/// chain is about 12 KiB.
pub const MAX_MESSAGE_BYTES: u64 = 256 * 1024;

/// A request of the exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Step 1: which group, and the initiator's nonce.
    #[serde(rename = "hello")]
    Hello {
        /// The group's tag (`peergroup_protocol::group_tag`).
        #[serde(rename = "t", with = "serde_bytes")]
        tag: [u8; GROUP_TAG_LEN],
        /// The initiator's fresh nonce.
        #[serde(rename = "n", with = "serde_bytes")]
        nonce: [u8; 32],
        /// The initiator's peer time as it sent this (peer time samples).
        #[serde(rename = "w")]
        time: Timestamp,
        /// Whether the initiator's peer time is anchored (see
        /// `PeerClock`): an unanchored clock never moves an anchored one.
        #[serde(rename = "a")]
        anchored: bool,
    },
    /// Step 2: the initiator's proof.
    #[serde(rename = "prove")]
    Prove {
        /// The group's tag.
        #[serde(rename = "t", with = "serde_bytes")]
        tag: [u8; GROUP_TAG_LEN],
        /// The initiator's proof over the transcript.
        #[serde(rename = "p")]
        proof: AuthProof,
    },
}

/// A response of the exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Step 1's answer: the responder's nonce.
    #[serde(rename = "nonce")]
    Nonce {
        /// The responder's fresh nonce.
        #[serde(rename = "n", with = "serde_bytes")]
        nonce: [u8; 32],
        /// The responder's peer time as it answered (peer time samples).
        #[serde(rename = "w")]
        time: Timestamp,
        /// Whether the responder's peer time is anchored.
        #[serde(rename = "a")]
        anchored: bool,
    },
    /// Step 2's answer: the responder's proof, the group key for the
    /// initiator, and the initiator's newer credential if there is one.
    #[serde(rename = "accepted")]
    Accepted {
        /// The responder's proof over the transcript.
        #[serde(rename = "p")]
        proof: AuthProof,
        /// The group's current data key, wrapped for the initiator's identity key.
        #[serde(rename = "k")]
        key: Option<WrappedKey>,
        /// The initiator's credential chain as the responder's group database
        /// holds it, when newer than the one presented.
        #[serde(rename = "c")]
        chain: Option<ByteBuf>,
        /// The group password's secret, wrapped for the initiator, when the
        /// responder holds it and the initiator's role can grant the
        /// password role (it may admit password joiners then).
        #[serde(rename = "w")]
        password: Option<WrappedKey>,
    },
    /// The initiator proved who it is but its credential expired, and the
    /// responder's group database holds a renewed one (stored with
    /// `PEER_GROUP_STORE_CREDENTIALS`): here it is; authenticate again with it.
    #[serde(rename = "renew")]
    Renew {
        /// The initiator's renewed credential chain.
        #[serde(rename = "c")]
        chain: ByteBuf,
    },
    /// The responder will not authenticate (unknown group, bad proof).
    #[serde(rename = "refused")]
    Refused {
        /// Why, for logs.
        #[serde(rename = "r")]
        reason: String,
    },
}

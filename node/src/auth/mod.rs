//! Group authentication on every connection between two nodes of a group
//! (Windows' "Group Connect", reference 3.3.4), over the request-response
//! protocol `/peergroup/auth/1`:
//!
//! 1. A → B `Hello { tag, nonce_a }` (the group by its tag, not its name);
//!    B answers `Nonce { nonce_b }`, or `Refused` if it has no such group.
//! 2. A → B `Prove { tag, proof_a }`: A's signed identity, credential chain
//!    and signature over the transcript (group, both peer ids of this
//!    connection, both nonces; `peergroup_protocol::Transcript`). B checks it
//!    and answers `Accepted { proof_b, key, chain }`: its own proof, the
//!    group's data key wrapped for A's identity key, and A's credential as
//!    B's group database holds it when it is newer than the one A presented
//!    (a renewal or role change an admin stored). A checks B's proof, unwraps
//!    the key, adopts the credential.
//!
//! Both nodes start an exchange when they see the other subscribe to the
//! group's topic; whichever completes first makes the peer an authenticated
//! neighbour on both sides (the responder checks the initiator's proof before
//! it answers). Until then the peer's gossip is ignored (its gossipsub
//! application score is below the graylist threshold) and nothing of the
//! group is sent to it. A failed exchange raises `Event::AuthenticationFailed`
//! and closes the connection; so does a subscriber that has not
//! authenticated within [`AUTH_GRACE`].

mod handler;

pub(crate) use self::handler::Auth;

use std::time::Duration;

use libp2p::StreamProtocol;
use peergroup_protocol::{AuthProof, GROUP_TAG_LEN, WrappedKey};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/auth/1");

/// The largest request or response accepted: a proof with a 24-credential
/// chain is about 12 KiB.
pub const MAX_MESSAGE_BYTES: u64 = 256 * 1024;

/// How long a peer subscribed to one of our groups' topics may stay
/// unauthenticated before the connection is closed.
pub const AUTH_GRACE: Duration = Duration::from_secs(10);

/// How long an exchange may wait for each answer.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

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
    },
    /// The responder will not authenticate (unknown group, bad proof).
    #[serde(rename = "refused")]
    Refused {
        /// Why, for logs.
        #[serde(rename = "r")]
        reason: String,
    },
}

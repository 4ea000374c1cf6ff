//! Password admission messages (`/peergroup/password/1`): a joiner holding a
//! password invitation asks a member that can grant the group's password
//! role to check the password ([`crate::PasswordJoin`] /
//! [`crate::PasswordCheck`]) and admit it.
//!
//! 1. joiner → member `Start { t, i, a, n }`; the member answers `Challenge {
//!    b, c, p, m }` (with its proof of membership over both peer ids and
//!    both nonces, so that the joiner talks only to members that may admit
//!    it), `Busy`, or `Refused` (no such group, cannot admit, or slowed
//!    down: `retry_after_ms`).
//! 2. joiner → member `Confirm { t, c }` once `c` checked out; the member
//!    answers `Admitted { chain, key }` (the joiner's new credential chain
//!    and the group key wrapped for the joiner's identity key), or
//!    `Refused` for a wrong password.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    auth::{AuthProof, GROUP_TAG_LEN},
    seal::WrappedKey,
};

/// The largest request or response accepted (a 24-long chain is about 12 KiB).
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024;

/// A request of the exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Step 1: the group, the joiner's identity and its SPAKE2 message.
    #[serde(rename = "start")]
    Start {
        /// The group's tag.
        #[serde(rename = "t", with = "serde_bytes")]
        tag: [u8; GROUP_TAG_LEN],
        /// The joiner's signed identity info (envelope bytes).
        #[serde(rename = "i")]
        identity: ByteBuf,
        /// SPAKE2 message `A`.
        #[serde(rename = "a")]
        message: ByteBuf,
        /// The joiner's fresh nonce, for the member's proof.
        #[serde(rename = "n", with = "serde_bytes")]
        nonce: [u8; 32],
    },
    /// Step 2: the joiner's key confirmation.
    #[serde(rename = "confirm")]
    Confirm {
        /// The group's tag.
        #[serde(rename = "t", with = "serde_bytes")]
        tag: [u8; GROUP_TAG_LEN],
        /// `confirm_a`.
        #[serde(rename = "c")]
        confirmation: ByteBuf,
    },
}

/// A response of the exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Step 1's answer: SPAKE2 message `B` and the member's key confirmation.
    #[serde(rename = "challenge")]
    Challenge {
        /// SPAKE2 message `B`.
        #[serde(rename = "b")]
        message: ByteBuf,
        /// `confirm_b`.
        #[serde(rename = "c")]
        confirmation: ByteBuf,
        /// The member's proof of membership
        /// (`crate::AuthProof`, role responder) over the transcript of the
        /// group, the joiner's and the member's peer ids, the joiner's
        /// nonce and `nonce`.
        #[serde(rename = "p")]
        proof: AuthProof,
        /// The member's fresh nonce.
        #[serde(rename = "m", with = "serde_bytes")]
        nonce: [u8; 32],
    },
    /// The member has too many exchanges open: try it again after
    /// `retry_after_ms` (nothing was counted).
    #[serde(rename = "busy")]
    Busy {
        /// When to try again, in milliseconds from now.
        #[serde(rename = "w")]
        retry_after_ms: u64,
    },
    /// Step 2's answer: the joiner is a member.
    #[serde(rename = "admitted")]
    Admitted {
        /// The joiner's credential chain (CBOR array of credential envelopes).
        #[serde(rename = "c")]
        chain: ByteBuf,
        /// The group's current data key, wrapped for the joiner's identity key.
        #[serde(rename = "k")]
        key: Option<WrappedKey>,
    },
    /// Not admitted.
    #[serde(rename = "refused")]
    Refused {
        /// Why, for logs and the joiner's event.
        #[serde(rename = "r")]
        reason: String,
        /// When the joiner's peer may try again, in milliseconds from now
        /// (after failed attempts).
        #[serde(rename = "w")]
        retry_after_ms: Option<u64>,
    },
}

//! The request-response messages nodes exchange, as serde types: group
//! authentication ([`auth`]), synchronization ([`sync`]: reconciliation and
//! fetches) and password
//! admission ([`password`]). They travel as CBOR through libp2p's
//! request-response CBOR codec, which decodes with
//! `cbor4ii::serde::from_slice` after a size check; [`decode`] does exactly
//! that, so that tests and fuzz targets read bytes the way a node does.
//! The protocol ids and the handlers live in the node crate.

pub mod auth;
pub mod password;
pub mod sync;

use serde::{Serialize, de::DeserializeOwned};

use crate::error::DecodeError;

/// Decodes a message as a node's codec does: at most `max` bytes, then CBOR.
/// `TooLarge` or `Malformed`; never panics.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: u64) -> Result<T, DecodeError> {
    let size = bytes.len() as u64;
    if size > max {
        return Err(DecodeError::TooLarge {
            what: "message",
            size,
            max,
        });
    }
    cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed {
        what: "message",
        reason: e.to_string(),
    })
}

/// Encodes a message as a node's codec does.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, DecodeError> {
    cbor4ii::serde::to_vec(Vec::new(), message).map_err(|e| DecodeError::Malformed {
        what: "message",
        reason: e.to_string(),
    })
}

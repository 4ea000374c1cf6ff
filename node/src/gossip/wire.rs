//! What a received envelope is, by its kind byte, before any signature check.

use peergroup_protocol::{DecodeError, Error, Kind, SignedProperties, envelope_kind};

/// A received gossip payload, routed by kind.
#[derive(Debug)]
pub(crate) enum Wire {
    /// A record envelope: its signature is checked by the verify pool.
    Record,
    /// Group properties (rare): verified here.
    Properties(Box<Result<SignedProperties, Error>>),
    /// Not something gossip carries: malformed, another kind, or a wire
    /// version this build does not speak (the session tells which is whose fault).
    Invalid(Error),
}

/// Routes `bytes` by their envelope's kind byte.
pub(crate) fn classify(bytes: &[u8]) -> Wire {
    match envelope_kind(bytes) {
        Ok(kind) if kind == Kind::Record.to_byte() => Wire::Record,
        Ok(kind) if kind == Kind::Properties.to_byte() => {
            Wire::Properties(Box::new(SignedProperties::from_bytes(bytes)))
        }
        Ok(found) => Wire::Invalid(
            DecodeError::WrongKind {
                expected: "record or group properties",
                found,
            }
            .into(),
        ),
        Err(e) => Wire::Invalid(e.into()),
    }
}

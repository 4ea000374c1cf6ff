//! What a received payload is: a sealed envelope, opened with the group's
//! key, then routed by the inner envelope's kind byte, before any signature
//! check.

use peergroup_protocol::{
    DecodeError, Error, Kind, PeerName, SignedProperties, envelope_kind, open, sealed_epoch,
    session::GroupState,
};

/// A received gossip payload, opened and routed by kind.
#[derive(Debug)]
pub(crate) enum Wire {
    /// A record envelope (the opened bytes): its signature is checked by the verify pool.
    Record(Vec<u8>),
    /// Group properties (rare): verified here.
    Properties(Box<Result<SignedProperties, Error>>),
    /// Not something gossip carries: malformed, another kind, or a wire
    /// version this build does not speak (the session tells which is whose fault).
    Invalid(Error),
}

/// Opens a sealed gossip payload of `group` with the key it names.
/// Anything but a sealed envelope is invalid on a group topic: members seal
/// everything they publish.
pub(crate) fn unseal(bytes: &[u8], group: &PeerName, state: &GroupState) -> Wire {
    match envelope_kind(bytes) {
        Ok(kind) if kind == Kind::Sealed.to_byte() => {}
        Ok(found) => {
            return Wire::Invalid(
                DecodeError::WrongKind {
                    expected: "sealed envelope",
                    found,
                }
                .into(),
            );
        }
        Err(e) => return Wire::Invalid(e.into()),
    }
    let epoch = match sealed_epoch(bytes) {
        Ok(epoch) => epoch,
        Err(e) => return Wire::Invalid(e),
    };
    let Some(key) = state.key(epoch) else {
        return Wire::Invalid(DecodeError::UnknownKey { epoch }.into());
    };
    match open(key, group, bytes) {
        Ok(plain) => classify(plain),
        Err(e) => Wire::Invalid(e),
    }
}

/// Routes an opened envelope by its kind byte.
fn classify(bytes: Vec<u8>) -> Wire {
    match envelope_kind(&bytes) {
        Ok(kind) if kind == Kind::Record.to_byte() => Wire::Record(bytes),
        Ok(kind) if kind == Kind::Properties.to_byte() => {
            Wire::Properties(Box::new(SignedProperties::from_bytes(&bytes)))
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

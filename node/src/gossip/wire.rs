//! What a received payload is: a sealed envelope, opened with the group's
//! key, then routed by the inner envelope's kind byte, before any signature
//! check.
//!
//! A kind byte this build does not know is a newer build's (a group protocol
//! added since): it is ignored ("unsupported version"), never counted
//! against the sender, so members can upgrade one at a time. A kind this
//! build knows but gossip never carries (an identity, a credential, an
//! invitation, an unsealed payload) is malformed: the sender's fault.

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
    /// An opened payload of another kind (its byte, and the bytes): the
    /// composition hands it to the group protocol that claims the kind, or
    /// refuses it ([`not_carried`]).
    Other {
        /// The inner envelope's kind byte.
        kind: u8,
        /// The opened envelope.
        bytes: Vec<u8>,
    },
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
        Ok(found) => return Wire::Invalid(wrong_kind("sealed envelope", found)),
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
        Ok(kind) => Wire::Other { kind, bytes },
        Err(e) => Wire::Invalid(e.into()),
    }
}

/// Why a payload of `kind` that no group protocol here claims is refused.
pub(crate) fn not_carried(kind: u8) -> Error {
    wrong_kind("record or group properties", kind)
}

/// A payload of kind `found` where gossip expects `expected`: malformed if
/// this build knows the kind, a newer build's otherwise (see the module's
/// documentation).
fn wrong_kind(expected: &'static str, found: u8) -> Error {
    match Kind::from_byte(found) {
        Some(_) => DecodeError::WrongKind { expected, found }.into(),
        None => Error::UnsupportedVersion(format!(
            "payload kind {found}, which this build does not know (expected a {expected})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use peergroup_protocol::{WIRE_VERSION, testing::forge_envelope};

    use super::*;

    fn envelope(kind: u8) -> Vec<u8> {
        forge_envelope(WIRE_VERSION, kind, &[7; 32], b"\xa0", &[9; 64])
    }

    #[test]
    fn a_kind_this_build_does_not_know_is_a_newer_builds_and_not_the_senders_fault() {
        let Wire::Other { kind: 200, .. } = classify(envelope(200)) else {
            panic!("another kind goes to the composition");
        };
        let error = not_carried(200);
        assert!(matches!(error, Error::UnsupportedVersion(_)), "{error}");
    }

    #[test]
    fn a_known_kind_that_gossip_never_carries_is_malformed() {
        for kind in [
            Kind::Identity,
            Kind::Credential,
            Kind::Invitation,
            Kind::Sealed,
        ] {
            let Wire::Other { kind: byte, .. } = classify(envelope(kind.to_byte())) else {
                panic!("{kind:?} goes to the composition");
            };
            let error = not_carried(byte);
            assert!(
                matches!(error, Error::Decode(DecodeError::WrongKind { .. })),
                "{kind:?}: {error}"
            );
        }
    }
}

//! Signed envelopes and the CBOR codec.
//!
//! Everything peergroup signs travels as one envelope, a CBOR map:
//!
//! ```text
//! { "v": 1,            wire version (u8)
//!   "k": kind,         what the body is (u8, see Kind)
//!   "s": bstr(32),     the signer's ed25519 public key
//!   "b": bstr,         the body: the canonical CBOR of the payload
//!   "g": bstr(64) }    ed25519 signature
//! ```
//!
//! The signature covers `len(domain) as u8 || domain || body`, where `domain` is
//! the kind's tag (such as `peergroup/record/v1`). The body bytes that were
//! signed are the bytes that travel and are stored verbatim: nothing is ever
//! re-encoded before verification. Decoding is bounded by
//! [`MAX_ENVELOPE_SIZE`], checks the version and kind, and accepts only the
//! canonical encoding (the decoder re-encodes and compares), so that
//! `encode(decode(b)) == b` for every accepted `b`. Verification uses
//! `verify_strict`, and checks that the signing key is the key of the peer
//! name the payload says must sign ([`Payload::signer`]).

use std::{cmp::Ordering, fmt, hash::Hash};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    error::{DecodeError, Error, VerifyError},
    identity::{Keypair, PublicKey, Signature},
    peer_name::{PeerName, authority_of},
};

/// The wire version this build writes and accepts.
pub const WIRE_VERSION: u8 = 1;

/// The largest envelope accepted, in bytes (512 KiB). It bounds every decode of
/// untrusted bytes; record data is limited further by [`crate::MAX_RECORD_DATA`].
pub const MAX_ENVELOPE_SIZE: usize = 512 * 1024;

/// The largest text form accepted (base64url of the largest envelope plus prefix).
const MAX_TEXT_SIZE: usize = MAX_ENVELOPE_SIZE / 3 * 4 + 256;

/// What an envelope's body holds. The byte value travels; each kind has its own
/// signing domain, so a signature for one kind never verifies as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A group record ([`crate::Record`]).
    Record,
    /// Group properties ([`crate::GroupProperties`]).
    Properties,
    /// An identity's public information ([`crate::IdentityInfo`]).
    Identity,
    /// A credential ([`crate::Credential`]).
    Credential,
    /// An invitation ([`crate::Invitation`]).
    Invitation,
    /// A sealed (encrypted) envelope carrying one of the above (`seal`).
    Sealed,
}

impl Kind {
    /// The kind whose byte is `byte`, if this build knows it (a newer build
    /// may send kinds this one does not).
    pub const fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Record,
            2 => Kind::Properties,
            3 => Kind::Identity,
            4 => Kind::Credential,
            5 => Kind::Invitation,
            6 => Kind::Sealed,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub const fn to_byte(self) -> u8 {
        match self {
            Kind::Record => 1,
            Kind::Properties => 2,
            Kind::Identity => 3,
            Kind::Credential => 4,
            Kind::Invitation => 5,
            Kind::Sealed => 6,
        }
    }

    /// The signing domain tag.
    pub const fn domain(self) -> &'static str {
        match self {
            Kind::Record => "peergroup/record/v1",
            Kind::Properties => "peergroup/properties/v1",
            Kind::Identity => "peergroup/identity/v1",
            Kind::Credential => "peergroup/credential/v1",
            Kind::Invitation => "peergroup/invitation/v1",
            Kind::Sealed => "peergroup/sealed/v1",
        }
    }

    /// A name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Record => "record",
            Kind::Properties => "group properties",
            Kind::Identity => "identity",
            Kind::Credential => "credential",
            Kind::Invitation => "invitation",
            Kind::Sealed => "sealed envelope",
        }
    }
}

/// A type that travels inside a signed envelope.
pub trait Payload: Serialize + DeserializeOwned + Clone + fmt::Debug {
    /// The envelope kind and signing domain of this payload.
    const KIND: Kind;

    /// Structural validity: everything that can be checked without keys or state.
    fn check(&self) -> Result<(), Error>;

    /// The peer name whose key must have signed this payload.
    fn signer(&self) -> &PeerName;
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Envelope<'a> {
    #[serde(rename = "v")]
    pub(crate) version: u8,
    #[serde(rename = "k")]
    pub(crate) kind: u8,
    #[serde(rename = "s", with = "serde_bytes")]
    pub(crate) signer: &'a [u8],
    #[serde(rename = "b", with = "serde_bytes")]
    pub(crate) body: &'a [u8],
    #[serde(rename = "g", with = "serde_bytes")]
    pub(crate) signature: &'a [u8],
}

/// A verified payload together with the exact envelope bytes that carried it.
///
/// The only ways to get one are [`Signed::sign`] and the decoders, both of
/// which check the payload, the signer and the signature; so holding a
/// `Signed<T>` means holding something verified. Equality is byte equality of
/// the envelopes.
#[derive(Clone)]
pub struct Signed<T> {
    payload: T,
    signer: PublicKey,
    signature: Signature,
    bytes: Vec<u8>,
}

impl<T: Payload> Signed<T> {
    /// Checks `payload`, then signs it with `keypair`, which must be the key of
    /// [`Payload::signer`].
    pub fn sign(payload: T, keypair: &Keypair) -> Result<Signed<T>, Error> {
        payload.check()?;
        let signer = keypair.public();
        let expected = payload.signer();
        if !expected.is_owned_by(&signer) {
            return Err(Error::NotAuthorized(format!(
                "this key cannot sign for {expected}"
            )));
        }
        let body = encode(&payload)?;
        let signature = keypair.sign(&signing_message(T::KIND, &body));
        let bytes = encode(&Envelope {
            version: WIRE_VERSION,
            kind: T::KIND.to_byte(),
            signer: signer.as_bytes(),
            body: &body,
            signature: signature.as_bytes(),
        })?;
        check_size(T::KIND.name(), bytes.len())?;
        Ok(Signed {
            payload,
            signer,
            signature,
            bytes,
        })
    }

    /// Decodes and verifies an envelope: bounded, versioned, canonical, checked
    /// payload, matching signer, strict signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signed<T>, Error> {
        let what = T::KIND.name();
        check_size(what, bytes.len())?;
        let envelope: Envelope<'_> = decode_canonical(what, bytes)?;
        if envelope.version != WIRE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: envelope.version,
                supported: WIRE_VERSION,
            }
            .into());
        }
        if envelope.kind != T::KIND.to_byte() {
            return Err(DecodeError::WrongKind {
                expected: what,
                found: envelope.kind,
            }
            .into());
        }
        let signer: &[u8; 32] = envelope
            .signer
            .try_into()
            .map_err(|_| malformed(what, "signer key is not 32 bytes"))?;
        let signature: [u8; 64] = envelope
            .signature
            .try_into()
            .map_err(|_| malformed(what, "signature is not 64 bytes"))?;
        let payload: T = decode_canonical(what, envelope.body)?;
        payload.check()?;
        let signer = PublicKey::from_bytes(signer)?;
        let expected = payload.signer();
        if !expected.is_owned_by(&signer) {
            return Err(VerifyError::SignerMismatch {
                signer: authority_of(&signer),
                expected: expected.to_string(),
            }
            .into());
        }
        let signature = Signature(signature);
        signer.verify(&signing_message(T::KIND, envelope.body), &signature)?;
        Ok(Signed {
            payload,
            signer,
            signature,
            bytes: bytes.to_vec(),
        })
    }

    /// Decodes an envelope that this node verified with [`Signed::from_bytes`]
    /// before it stored it, and whose integrity the caller has checked since
    /// (the store compares a per-row sha2-256): the bounded decode and the
    /// version and kind checks run, but not the canonical re-encoding, the
    /// structural checks or the signature verification, which cost about
    /// 20 times more. Never use it on bytes from the network or from a user:
    /// they would be trusted unverified.
    pub fn decode_trusted(bytes: &[u8]) -> Result<Signed<T>, Error> {
        let what = T::KIND.name();
        check_size(what, bytes.len())?;
        let envelope: Envelope<'_> =
            cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed {
                what,
                reason: e.to_string(),
            })?;
        if envelope.version != WIRE_VERSION || envelope.kind != T::KIND.to_byte() {
            return Err(malformed(what, "unexpected version or kind").into());
        }
        let signer: &[u8; 32] = envelope
            .signer
            .try_into()
            .map_err(|_| malformed(what, "signer key is not 32 bytes"))?;
        let signature: [u8; 64] = envelope
            .signature
            .try_into()
            .map_err(|_| malformed(what, "signature is not 64 bytes"))?;
        let payload: T =
            cbor4ii::serde::from_slice(envelope.body).map_err(|e| DecodeError::Malformed {
                what,
                reason: e.to_string(),
            })?;
        Ok(Signed {
            payload,
            signer: PublicKey::from_bytes(signer)?,
            signature: Signature(signature),
            bytes: bytes.to_vec(),
        })
    }

    /// One line of text: `prefix` followed by the base64url (no padding) of the envelope.
    pub fn to_text(&self, prefix: &str) -> String {
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&self.bytes))
    }

    /// Parses [`Signed::to_text`] output. Whitespace anywhere (line breaks that
    /// mail clients insert, say) is ignored, so the text survives copy and paste.
    pub fn from_text(prefix: &str, text: &str) -> Result<Signed<T>, Error> {
        if text.len() > MAX_TEXT_SIZE {
            return Err(DecodeError::TooLarge {
                what: "text form",
                size: text.len() as u64,
                max: MAX_TEXT_SIZE as u64,
            }
            .into());
        }
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let Some(b64) = compact.strip_prefix(prefix) else {
            return Err(match compact.split_once(':') {
                Some((found, _))
                    if prefix.starts_with(found.trim_end_matches(|c: char| c.is_ascii_digit())) =>
                {
                    Error::UnsupportedVersion(format!("text form {found:?} is not {prefix:?}"))
                }
                _ => DecodeError::Text {
                    reason: format!("does not start with {prefix:?}"),
                }
                .into(),
            });
        };
        let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|e| DecodeError::Text {
            reason: format!("not base64url: {e}"),
        })?;
        Signed::from_bytes(&bytes)
    }
}

impl<T> Signed<T> {
    /// The verified payload.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The key that signed.
    pub fn signer_key(&self) -> &PublicKey {
        &self.signer
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The exact envelope bytes, as they travel and are stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The envelope bytes, consuming `self`.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A signed envelope serializes as its bytes and deserializes through
/// [`Signed::from_bytes`], so a deserialized `Signed<T>` is verified too.
///
/// In human-readable formats (the control API's JSON) it is an object
/// `{"payload": T, "envelope": "<base64 of the bytes>"}`: the payload to
/// read, the envelope to pass back. Deserializing reads the envelope alone
/// (a payload beside it is ignored, never trusted) and verifies it.
impl<T: Serialize> Serialize for Signed<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            use serde::ser::SerializeStruct;
            let mut view = s.serialize_struct("Signed", 2)?;
            view.serialize_field("payload", &self.payload)?;
            view.serialize_field(
                "envelope",
                &base64::engine::general_purpose::STANDARD.encode(&self.bytes),
            )?;
            view.end()
        } else {
            s.serialize_bytes(&self.bytes)
        }
    }
}

impl<'de, T: Payload> Deserialize<'de> for Signed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = if d.is_human_readable() {
            #[derive(Deserialize)]
            struct View {
                #[serde(with = "crate::bytes_text")]
                envelope: Vec<u8>,
            }
            View::deserialize(d)?.envelope
        } else {
            serde_bytes::ByteBuf::deserialize(d)?.into_vec()
        };
        Signed::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T> Eq for Signed<T> {}

impl<T> Hash for Signed<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}

impl<T: fmt::Debug> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("payload", &self.payload)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Orders signatures for the merge rule's last tie-breaks: larger, then higher bytes.
pub(crate) fn cmp_signatures(a: &Signature, b: &Signature) -> Ordering {
    a.as_bytes()
        .len()
        .cmp(&b.as_bytes().len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

pub(crate) fn signing_message(kind: Kind, body: &[u8]) -> Vec<u8> {
    let domain = kind.domain().as_bytes();
    let mut message = Vec::with_capacity(domain.len().saturating_add(body.len()).saturating_add(1));
    // Domain tags are short constants (< 256 bytes), so the length fits a u8.
    message.push(u8::try_from(domain.len()).unwrap_or(u8::MAX));
    message.extend_from_slice(domain);
    message.extend_from_slice(body);
    message
}

fn check_size(what: &'static str, size: usize) -> Result<(), DecodeError> {
    if size > MAX_ENVELOPE_SIZE {
        return Err(DecodeError::TooLarge {
            what,
            size: size as u64,
            max: MAX_ENVELOPE_SIZE as u64,
        });
    }
    Ok(())
}

fn malformed(what: &'static str, reason: &str) -> DecodeError {
    DecodeError::Malformed {
        what,
        reason: reason.to_owned(),
    }
}

/// The kind byte of an envelope (see [`Kind::to_byte`]), after the size
/// bound and the version check, without decoding the body or checking the
/// signature: for routing received bytes to the right decoder. An unknown
/// wire version is [`DecodeError::UnsupportedVersion`].
pub fn envelope_kind(bytes: &[u8]) -> Result<u8, DecodeError> {
    /// The fields every wire version keeps; a newer version may add others.
    #[derive(Deserialize)]
    struct Header {
        #[serde(rename = "v")]
        version: u8,
        #[serde(rename = "k")]
        kind: u8,
    }
    check_size("envelope", bytes.len())?;
    let header: Header = cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed {
        what: "envelope",
        reason: e.to_string(),
    })?;
    if header.version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: header.version,
            supported: WIRE_VERSION,
        });
    }
    Ok(header.kind)
}

/// Encodes `value` as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, DecodeError> {
    cbor4ii::serde::to_vec(Vec::new(), value).map_err(|e| DecodeError::Malformed {
        what: "value",
        reason: format!("cannot encode: {e}"),
    })
}

/// Decodes CBOR and insists that it is the canonical encoding of the result.
///
/// The caller bounds `bytes`; cbor4ii itself caps pre-allocation and nesting depth.
pub fn decode_canonical<'a, T: Serialize + Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, DecodeError> {
    let value: T = cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if encode(&value)? != bytes {
        return Err(DecodeError::NonCanonical { what });
    }
    Ok(value)
}

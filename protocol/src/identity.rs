//! Identities: ed25519 keypairs with a classifier and a friendly name.
//!
//! An [`Identity`] is the counterpart of a Windows identity (`PeerIdentityCreate`):
//! its peer name is `authority(key).classifier`. Its public part, an
//! [`IdentityInfo`] signed by the identity itself, is what an inviter needs;
//! [`Identity::public_text`] gives it as one copy-pasteable line
//! (the `PeerIdentityGetXML` equivalent).
//!
//! Secret keys never print: [`Keypair`]'s `Debug` shows only the public key,
//! and the ed25519-dalek signing key zeroizes itself on drop.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::{
    bytes_text::text_form_problem,
    error::{DecodeError, Error, VerifyError},
    peer_name::{PeerName, validate_classifier},
    signed::{Kind, Payload, Signed},
};

/// The longest friendly name, in Unicode scalar values (Windows: 255 plus NUL).
pub const MAX_FRIENDLY_NAME_CHARS: usize = 255;

/// Text prefix of an identity's public blob; the `v1` is the blob's version.
pub const IDENTITY_TEXT_PREFIX: &str = "peergroup-identity-v1:";

/// An ed25519 public key that is a valid, non-weak curve point.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Validates 32 bytes as a public key; weak (small-order) keys are refused.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, VerifyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| VerifyError::InvalidKey)?;
        if key.is_weak() {
            return Err(VerifyError::InvalidKey);
        }
        Ok(PublicKey(key))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The key's Montgomery form, for X25519 key agreement.
    pub(crate) fn to_montgomery(self) -> curve25519_dalek::MontgomeryPoint {
        self.0.to_montgomery()
    }

    /// Verifies `signature` over `message` with `verify_strict`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), VerifyError> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| VerifyError::BadSignature)
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({})",
            bs58::encode(self.as_bytes()).into_string()
        )
    }
}

/// 32 bytes on the wire; base58 text in human-readable formats (the
/// control API's JSON).
impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&bs58::encode(self.as_bytes()).into_string())
        } else {
            serde_bytes::Serialize::serialize(self.as_bytes(), s)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; 32] = if d.is_human_readable() {
            let text = String::deserialize(d)?;
            let bytes = bs58::decode(&text)
                .into_vec()
                .map_err(|e| serde::de::Error::custom(format!("public key: {e}")))?;
            bytes
                .try_into()
                .map_err(|_| serde::de::Error::custom("a public key is 32 bytes"))?
        } else {
            serde_bytes::Deserialize::deserialize(d)?
        };
        PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A 64-byte ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub(crate) [u8; 64]);

impl Signature {
    /// A signature from its 64 bytes (checked only when verifying).
    pub fn from_bytes(bytes: [u8; 64]) -> Signature {
        Signature(bytes)
    }

    /// The signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", bs58::encode(self.0).into_string())
    }
}

/// An ed25519 keypair. `Debug` prints the public key only; the secret half is
/// zeroized when the keypair is dropped.
#[derive(Clone)]
pub struct Keypair {
    secret: SigningKey,
    public: PublicKey,
}

impl Keypair {
    /// The keypair of a 32-byte secret seed. Randomness is the caller's:
    /// `protocol` reads no RNG, so the node draws the seed from the OS.
    pub fn from_secret_bytes(seed: &[u8; 32]) -> Keypair {
        let secret = SigningKey::from_bytes(seed);
        let public = PublicKey(secret.verifying_key());
        Keypair { secret, public }
    }

    /// The 32-byte secret seed, wiped from memory when the returned value drops.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The secret scalar's bytes (for X25519 key agreement with the
    /// Montgomery form of the key), wiped when dropped.
    pub(crate) fn scalar_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_scalar_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.secret.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .field("secret", &format_args!("SecretKey(..)"))
            .finish()
    }
}

/// A local identity: keypair, classifier and friendly name.
#[derive(Clone)]
pub struct Identity {
    keypair: Keypair,
    peer_name: PeerName,
    friendly_name: String,
}

impl Identity {
    /// An identity named `authority(keypair).classifier`.
    ///
    /// An empty friendly name stands for the peer name, as in Windows.
    pub fn new(keypair: Keypair, classifier: &str, friendly_name: &str) -> Result<Identity, Error> {
        validate_classifier(classifier)?;
        validate_friendly_name(friendly_name)?;
        let peer_name = PeerName::new(&keypair.public(), classifier)?;
        let friendly_name = if friendly_name.is_empty() {
            peer_name.to_string()
        } else {
            friendly_name.to_owned()
        };
        Ok(Identity {
            keypair,
            peer_name,
            friendly_name,
        })
    }

    /// The identity's peer name.
    pub fn peer_name(&self) -> &PeerName {
        &self.peer_name
    }

    /// The friendly name.
    pub fn friendly_name(&self) -> &str {
        &self.friendly_name
    }

    /// The keypair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.keypair.public()
    }

    /// The self-signed public description of this identity.
    pub fn info(&self) -> Result<Signed<IdentityInfo>, Error> {
        Signed::sign(
            IdentityInfo {
                peer_name: self.peer_name.clone(),
                friendly_name: self.friendly_name.clone(),
                key: self.public_key(),
            },
            &self.keypair,
        )
    }

    /// [`Identity::info`] as one line of text that an inviter pastes into
    /// `create_invitation` (the `PeerIdentityGetXML` equivalent).
    pub fn public_text(&self) -> Result<String, Error> {
        Ok(self.info()?.to_text(IDENTITY_TEXT_PREFIX))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_name", &self.peer_name)
            .field("friendly_name", &self.friendly_name)
            .field("keypair", &self.keypair)
            .finish()
    }
}

/// The public part of an identity, signed by the identity's own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityInfo {
    /// The identity's peer name; its authority must be derived from `key`.
    #[serde(rename = "n")]
    pub peer_name: PeerName,
    /// The identity's display name.
    #[serde(rename = "f")]
    pub friendly_name: String,
    /// The identity's public key.
    #[serde(rename = "k")]
    pub key: PublicKey,
}

impl Payload for IdentityInfo {
    const KIND: Kind = Kind::Identity;

    fn check(&self) -> Result<(), Error> {
        self.peer_name.require_secure("identity")?;
        validate_friendly_name(&self.friendly_name)?;
        if !self.peer_name.is_owned_by(&self.key) {
            return Err(Error::InvalidPeerName(format!(
                "{} is not derived from the identity's key",
                self.peer_name
            )));
        }
        Ok(())
    }

    fn signer(&self) -> &PeerName {
        &self.peer_name
    }
}

impl Signed<IdentityInfo> {
    /// Parses and verifies an identity's public text form. A text that
    /// does not read (cut short, damaged, not an identity's) is a
    /// [`DecodeError::Text`] that says what is wrong with it in words.
    pub fn from_identity_text(text: &str) -> Result<Signed<IdentityInfo>, Error> {
        Signed::from_text(IDENTITY_TEXT_PREFIX, text).map_err(|e| {
            match (
                &e,
                text_form_problem("identity", IDENTITY_TEXT_PREFIX, text, &e),
            ) {
                // A signature that does not verify keeps its variant
                // (`PEER_E_INVALID_RECORD`), and its words.
                (Error::Decode(_), Some(reason)) => DecodeError::Text { reason }.into(),
                _ => e,
            }
        })
    }
}

/// Checks a friendly name: at most [`MAX_FRIENDLY_NAME_CHARS`], no control characters.
pub(crate) fn validate_friendly_name(name: &str) -> Result<(), Error> {
    let chars = name.chars().count();
    if chars > MAX_FRIENDLY_NAME_CHARS {
        return Err(Error::InvalidFriendlyName(format!(
            "{chars} characters, more than the limit of {MAX_FRIENDLY_NAME_CHARS}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidFriendlyName(
            "friendly names may not contain control characters".into(),
        ));
    }
    Ok(())
}

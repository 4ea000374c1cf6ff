//! Confidentiality: group data keys, sealed envelopes, and keys wrapped for one member.
//!
//! Every payload a group gossips (signed records, signed properties) travels
//! *sealed* under the group's data key with XChaCha20-Poly1305:
//!
//! ```text
//! { "v": 1,            wire version (u8)
//!   "k": 6,            kind: sealed (u8)
//!   "e": epoch,        which of the group's keys (u32)
//!   "n": bstr(24),     a random nonce
//!   "c": bstr }        ciphertext of the signed envelope, with its 16-byte tag
//! ```
//!
//! The associated data is `len(domain) || "peergroup/sealed/v1" || u16
//! len(group) || group peer name || epoch (u32 BE)`, so a ciphertext opens
//! only for the group and epoch it was made for. The signed envelope inside
//! keeps its own signature, so members still verify who wrote what; only the
//! key is shared. Nonces come from the caller's RNG (192 bits: random nonces
//! do not collide).
//!
//! A member receives the key *wrapped* for its identity key: an ephemeral
//! X25519 key agreement with the Montgomery form of its ed25519 public key
//! (the same conversion libsodium's `crypto_sign_ed25519_pk_to_curve25519`
//! makes), a key-encryption key `sha2-256("peergroup/key-wrap/v1" || shared
//! || ephemeral public || recipient public || context)`, and
//! XChaCha20-Poly1305 over the key. Only the holder of the identity's secret
//! key opens it.

use std::fmt;

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use curve25519_dalek::MontgomeryPoint;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::{
    error::{DecodeError, Error, VerifyError},
    identity::{Keypair, PublicKey},
    peer_name::PeerName,
    signed::{Kind, MAX_ENVELOPE_SIZE, WIRE_VERSION, decode_canonical, encode},
};

/// The length of a group data key, in bytes.
pub const GROUP_KEY_LEN: usize = 32;

/// The largest sealed envelope: the largest signed envelope plus framing and tag.
pub const MAX_SEALED_SIZE: usize = MAX_ENVELOPE_SIZE + 256;

/// Domain of the associated data of sealed envelopes.
const SEAL_DOMAIN: &[u8] = b"peergroup/sealed/v1";

/// Domain of key-encryption keys.
const WRAP_DOMAIN: &[u8] = b"peergroup/key-wrap/v1";

/// A group data key and its epoch. `Debug` is redacted; the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    epoch: u32,
    bytes: Zeroizing<[u8; GROUP_KEY_LEN]>,
}

impl GroupKey {
    /// A key of `epoch` from 32 random bytes (the caller's RNG).
    pub fn new(epoch: u32, bytes: [u8; GROUP_KEY_LEN]) -> GroupKey {
        GroupKey {
            epoch,
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The key's epoch: 0 for the group's first key, one more at each rotation.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The key bytes (for storing them; wiped when the returned value drops).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; GROUP_KEY_LEN]> {
        self.bytes.clone()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.as_ref().into())
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey(epoch {}, ..)", self.epoch)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedWire<'a> {
    #[serde(rename = "v")]
    version: u8,
    #[serde(rename = "k")]
    kind: u8,
    #[serde(rename = "e")]
    epoch: u32,
    #[serde(rename = "n", with = "serde_bytes")]
    nonce: &'a [u8],
    #[serde(rename = "c", with = "serde_bytes")]
    ciphertext: &'a [u8],
}

fn associated_data(group: &PeerName, epoch: u32) -> Vec<u8> {
    let name = group.as_str().as_bytes();
    let mut aad = Vec::with_capacity(
        SEAL_DOMAIN
            .len()
            .saturating_add(name.len())
            .saturating_add(8),
    );
    // The domain is a short constant and a peer name at most 643 bytes.
    aad.push(u8::try_from(SEAL_DOMAIN.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(SEAL_DOMAIN);
    aad.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
    aad.extend_from_slice(name);
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad
}

/// Seals `plaintext` (a signed envelope) for `group` under `key`, with a
/// random 24-byte `nonce` from the caller's RNG.
pub fn seal(
    key: &GroupKey,
    group: &PeerName,
    nonce: [u8; 24],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    if plaintext.len() > MAX_ENVELOPE_SIZE {
        return Err(DecodeError::TooLarge {
            what: "sealed payload",
            size: plaintext.len() as u64,
            max: MAX_ENVELOPE_SIZE as u64,
        }
        .into());
    }
    let aad = associated_data(group, key.epoch);
    let ciphertext = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| Error::InvalidArg("the payload cannot be sealed".into()))?;
    Ok(encode(&SealedWire {
        version: WIRE_VERSION,
        kind: Kind::Sealed.to_byte(),
        epoch: key.epoch,
        nonce: &nonce,
        ciphertext: &ciphertext,
    })?)
}

/// The epoch a sealed envelope names, to look its key up.
pub fn sealed_epoch(bytes: &[u8]) -> Result<u32, Error> {
    Ok(decode_sealed(bytes)?.epoch)
}

fn decode_sealed(bytes: &[u8]) -> Result<SealedWire<'_>, DecodeError> {
    if bytes.len() > MAX_SEALED_SIZE {
        return Err(DecodeError::TooLarge {
            what: "sealed envelope",
            size: bytes.len() as u64,
            max: MAX_SEALED_SIZE as u64,
        });
    }
    let wire: SealedWire<'_> = decode_canonical("sealed envelope", bytes)?;
    if wire.version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: wire.version,
            supported: WIRE_VERSION,
        });
    }
    if wire.kind != Kind::Sealed.to_byte() {
        return Err(DecodeError::WrongKind {
            expected: "sealed envelope",
            found: wire.kind,
        });
    }
    Ok(wire)
}

/// Opens a sealed envelope of `group` with `key` (whose epoch it must name):
/// the plaintext signed envelope. Malformed bytes are a `DecodeError`; a
/// ciphertext that does not open (another key, another group, altered) is
/// `VerifyError::BadCiphertext`.
pub fn open(key: &GroupKey, group: &PeerName, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let wire = decode_sealed(bytes)?;
    if wire.epoch != key.epoch {
        return Err(DecodeError::Malformed {
            what: "sealed envelope",
            reason: format!("sealed under epoch {}, not {}", wire.epoch, key.epoch),
        }
        .into());
    }
    let nonce: [u8; 24] = wire.nonce.try_into().map_err(|_| DecodeError::Malformed {
        what: "sealed envelope",
        reason: "the nonce is not 24 bytes".into(),
    })?;
    let aad = associated_data(group, wire.epoch);
    key.cipher()
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: wire.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| VerifyError::BadCiphertext.into())
}

/// The creator's commitment to a group data key, carried in the signed
/// group properties: the key's epoch and `sha2-256("peergroup/group-key/v1"
/// || u16 len || group || epoch (u32 BE) || key)`. It binds the key to the
/// creator's signature without revealing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCommitment {
    /// The committed key's epoch.
    #[serde(rename = "e")]
    pub epoch: u32,
    /// The digest.
    #[serde(rename = "d", with = "serde_bytes")]
    pub digest: [u8; 32],
}

impl KeyCommitment {
    /// The commitment to `key` for `group`.
    pub fn to(key: &GroupKey, group: &PeerName) -> KeyCommitment {
        let name = group.as_str().as_bytes();
        let digest = Sha256::new()
            .chain_update(b"peergroup/group-key/v1")
            .chain_update(u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes())
            .chain_update(name)
            .chain_update(key.epoch.to_be_bytes())
            .chain_update(key.bytes.as_ref())
            .finalize()
            .into();
        KeyCommitment {
            epoch: key.epoch,
            digest,
        }
    }

    /// Whether `key` is the committed one.
    pub fn matches(&self, key: &GroupKey, group: &PeerName) -> bool {
        *self == KeyCommitment::to(key, group)
    }
}

/// A group key wrapped for one member's identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    /// The key's epoch.
    #[serde(rename = "e")]
    pub epoch: u32,
    /// The ephemeral X25519 public key.
    #[serde(rename = "p", with = "serde_bytes")]
    pub ephemeral: [u8; 32],
    /// The encrypted key with its tag (48 bytes).
    #[serde(rename = "c", with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

fn key_encryption_key(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    recipient: &MontgomeryPoint,
    context: &[u8],
) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(WRAP_DOMAIN);
    h.update(shared.as_bytes());
    h.update(ephemeral.as_bytes());
    h.update(recipient.as_bytes());
    h.update(context);
    Zeroizing::new(h.finalize().into())
}

/// Wraps `key` for the holder of `recipient`'s secret key; `ephemeral_secret`
/// is 32 random bytes from the caller's RNG, `context` binds the wrap to its
/// use (the group name, say).
pub fn wrap_key(
    key: &GroupKey,
    recipient: &PublicKey,
    ephemeral_secret: [u8; 32],
    context: &[u8],
) -> Result<WrappedKey, Error> {
    let ephemeral_secret = Zeroizing::new(ephemeral_secret);
    let recipient = recipient.to_montgomery();
    let ephemeral = MontgomeryPoint::mul_base_clamped(*ephemeral_secret);
    let shared = recipient.mul_clamped(*ephemeral_secret);
    let kek = key_encryption_key(&shared, &ephemeral, &recipient, context);
    let ciphertext = XChaCha20Poly1305::new(kek.as_ref().into())
        .encrypt(
            XNonce::from_slice(&[0; 24]),
            Payload {
                msg: key.bytes.as_ref(),
                aad: &key.epoch.to_be_bytes(),
            },
        )
        .map_err(|_| Error::InvalidArg("the key cannot be wrapped".into()))?;
    Ok(WrappedKey {
        epoch: key.epoch,
        ephemeral: ephemeral.to_bytes(),
        ciphertext,
    })
}

/// Unwraps a key wrapped for `identity` with `context`.
/// `VerifyError::BadCiphertext` if it was not wrapped for this key or context.
pub fn unwrap_key(
    wrapped: &WrappedKey,
    identity: &Keypair,
    context: &[u8],
) -> Result<GroupKey, Error> {
    let ephemeral = MontgomeryPoint(wrapped.ephemeral);
    let recipient = identity.public().to_montgomery();
    let shared = ephemeral.mul_clamped(*identity.scalar_bytes());
    let kek = key_encryption_key(&shared, &ephemeral, &recipient, context);
    // A fixed nonce is sound: every key-encryption key is used once (it
    // depends on a fresh ephemeral key).
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(kek.as_ref().into())
            .decrypt(
                XNonce::from_slice(&[0; 24]),
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: &wrapped.epoch.to_be_bytes(),
                },
            )
            .map_err(|_| Error::from(VerifyError::BadCiphertext))?,
    );
    let bytes: [u8; GROUP_KEY_LEN] = plain
        .as_slice()
        .try_into()
        .map_err(|_| Error::from(VerifyError::BadCiphertext))?;
    Ok(GroupKey::new(wrapped.epoch, bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::testing::{group_of, identity};

    #[test]
    fn sealed_payloads_open_only_with_their_key_group_and_epoch() {
        let alice = identity(1, "alice");
        let group = group_of(&alice, "g");
        let other = group_of(&alice, "h");
        let key = GroupKey::new(0, [7; 32]);
        let sealed = seal(&key, &group, [1; 24], b"signed envelope").unwrap();
        assert_eq!(open(&key, &group, &sealed).unwrap(), b"signed envelope");
        assert!(matches!(
            open(&GroupKey::new(0, [8; 32]), &group, &sealed),
            Err(Error::Verify(VerifyError::BadCiphertext))
        ));
        assert!(matches!(
            open(&key, &other, &sealed),
            Err(Error::Verify(VerifyError::BadCiphertext))
        ));
        assert!(open(&GroupKey::new(1, [7; 32]), &group, &sealed).is_err());
        assert_eq!(sealed_epoch(&sealed).unwrap(), 0);
        // Every flipped bit is refused.
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(open(&key, &group, &bad).is_err(), "bit {i}");
        }
    }

    #[test]
    fn a_wrapped_key_opens_only_for_its_recipient_and_context() {
        let alice = identity(1, "alice");
        let bob = identity(2, "bob");
        let key = GroupKey::new(3, [9; 32]);
        let wrapped = wrap_key(&key, &bob.public_key(), [5; 32], b"ctx").unwrap();
        assert_eq!(unwrap_key(&wrapped, bob.keypair(), b"ctx").unwrap(), key);
        assert!(unwrap_key(&wrapped, alice.keypair(), b"ctx").is_err());
        assert!(unwrap_key(&wrapped, bob.keypair(), b"other").is_err());
        let mut tampered = wrapped.clone();
        tampered.epoch = 4;
        assert!(unwrap_key(&tampered, bob.keypair(), b"ctx").is_err());
        assert!(!format!("{key:?}").contains('9'));
    }
}

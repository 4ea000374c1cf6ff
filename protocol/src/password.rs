//! Password groups (`PeerGroupPasswordJoin`, reference 3.3.4 "Password"):
//! the public policy, the password-equivalent secret, and the sans-I/O
//! admission exchange, a PAKE.
//!
//! The group properties carry a [`PasswordPolicy`]: the role granted to
//! password joiners, a per-group random salt and Argon2id parameters. Nothing
//! derived from the password is published: a policy lets nobody test guesses.
//! The *password secret* ([`PasswordSecret`]) is `w = Argon2id(password,
//! salt)`, 32 bytes; it is a password equivalent and never leaves a node
//! except wrapped for a member that may admit password joiners (see the
//! node's group authentication).
//!
//! Admission is SPAKE2 (the RustCrypto `spake2` crate, Ed25519 group) on `w`,
//! with explicit key confirmation, bound to the group, the joiner's identity
//! and both libp2p peer ids of the connection ([`PakeContext`]):
//!
//! 1. joiner → responder: its SPAKE2 message `A` ([`PasswordJoin::start`]);
//! 2. responder → joiner: `B` and `confirm_b = HMAC-SHA256(K,
//!    "peergroup/password/v1 responder" || th)` ([`PasswordCheck::start`]),
//!    where `K` is the SPAKE2 key and `th = sha2-256(context || A || B)`;
//! 3. the joiner checks `confirm_b` and only then answers `confirm_a` (the
//!    same with `joiner`) ([`PasswordJoin::confirm`]); the responder checks it
//!    ([`PasswordCheck::finish`]) and admits the joiner.
//!
//! What each party can learn: an eavesdropper sees two random-looking group
//! elements and MACs under a key it cannot compute: nothing to test guesses
//! against. A responder that does not know `w` gets `A` only (the joiner stops
//! at a wrong `confirm_b`), which reveals nothing about the password. A joiner
//! that does not know it gets one `B` and `confirm_b` per exchange, against
//! which it can test exactly the one guess it committed to in `A`: one online
//! guess per exchange, which the responder counts and slows down. The
//! password itself never crosses the wire. (The exchange this replaced
//! signed a challenge with a key derived from the password, which let any
//! party that ran it, and anyone holding the group properties, test guesses
//! offline.)

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use spake2::{Ed25519Group, Spake2};
use zeroize::Zeroizing;

use crate::{
    credential::Role,
    error::Error,
    identity::{Keypair, PublicKey},
    peer_name::PeerName,
    seal::{GroupKey, WrappedKey, unwrap_key, wrap_key},
};

/// The shortest password accepted, in characters (`PEER_E_PASSWORD_DOES_NOT_MEET_POLICY` below it).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The length of a password secret, in bytes.
pub const PASSWORD_SECRET_LEN: usize = 32;

/// Domain of the exchange's context and confirmations.
const PAKE_DOMAIN: &[u8] = b"peergroup/password/v1";

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    #[serde(rename = "m")]
    pub m_cost: u32,
    /// Passes.
    #[serde(rename = "t")]
    pub t_cost: u32,
    /// Lanes.
    #[serde(rename = "p")]
    pub p_cost: u32,
}

impl KdfParams {
    /// OWASP's recommended Argon2id minimum: 19 MiB, 2 passes, 1 lane.
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    /// The cheapest parameters a group may carry: 8 MiB, 1 pass, 1 lane.
    pub const MIN: KdfParams = KdfParams {
        m_cost: 8 * 1024,
        t_cost: 1,
        p_cost: 1,
    };
    /// The dearest parameters a group may carry (they bound what a malicious
    /// group can make a joiner compute): 1 GiB, 16 passes, 8 lanes.
    pub const MAX: KdfParams = KdfParams {
        m_cost: 1024 * 1024,
        t_cost: 16,
        p_cost: 8,
    };

    fn check(&self) -> Result<(), Error> {
        let in_range = |v: u32, min: u32, max: u32| (min..=max).contains(&v);
        if in_range(self.m_cost, KdfParams::MIN.m_cost, KdfParams::MAX.m_cost)
            && in_range(self.t_cost, KdfParams::MIN.t_cost, KdfParams::MAX.t_cost)
            && in_range(self.p_cost, KdfParams::MIN.p_cost, KdfParams::MAX.p_cost)
        {
            Ok(())
        } else {
            Err(Error::InvalidGroupProperties(format!(
                "Argon2id parameters {self:?} are outside {:?}..={:?}",
                KdfParams::MIN,
                KdfParams::MAX
            )))
        }
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::DEFAULT
    }
}

/// A group's password policy, as carried in its signed properties. It holds
/// nothing derived from the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    /// The role a password joiner receives.
    #[serde(rename = "r")]
    pub role: Role,
    /// Per-group random salt; a new password gets a new salt.
    #[serde(rename = "s", with = "serde_bytes")]
    pub salt: [u8; 16],
    /// Argon2id parameters.
    #[serde(rename = "k")]
    pub kdf: KdfParams,
}

impl PasswordPolicy {
    /// A policy granting `role`; `salt` comes from the caller's RNG.
    /// `InvalidGroupProperties` for parameters out of bounds.
    pub fn new(role: Role, salt: [u8; 16], kdf: KdfParams) -> Result<PasswordPolicy, Error> {
        kdf.check()?;
        Ok(PasswordPolicy { role, salt, kdf })
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        self.kdf.check()
    }
}

/// Checks a new group password against the policy rules:
/// `PasswordDoesNotMeetPolicy` under [`MIN_PASSWORD_CHARS`] characters.
pub fn check_password(password: &str) -> Result<(), Error> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::PasswordDoesNotMeetPolicy(format!(
            "{chars} characters; at least {MIN_PASSWORD_CHARS} are required"
        )));
    }
    Ok(())
}

/// The password secret of one policy: `Argon2id(password, salt)` and the
/// salt it was derived with. A password equivalent: `Debug` is redacted and
/// the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordSecret {
    salt: [u8; 16],
    w: Zeroizing<[u8; PASSWORD_SECRET_LEN]>,
}

impl PasswordSecret {
    /// Runs Argon2id on `password` with the policy's salt and parameters.
    /// Deliberately slow: tens of milliseconds and 19 MiB with the defaults.
    pub fn derive(password: &str, policy: &PasswordPolicy) -> Result<PasswordSecret, Error> {
        policy.check()?;
        let kdf = &policy.kdf;
        let params = Params::new(
            kdf.m_cost,
            kdf.t_cost,
            kdf.p_cost,
            Some(PASSWORD_SECRET_LEN),
        )
        .map_err(|e| Error::InvalidGroupProperties(format!("Argon2id parameters: {e}")))?;
        let mut w = Zeroizing::new([0u8; PASSWORD_SECRET_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password.as_bytes(), &policy.salt, w.as_mut())
            .map_err(|e| Error::InvalidArg(format!("Argon2id failed: {e}")))?;
        Ok(PasswordSecret {
            salt: policy.salt,
            w,
        })
    }

    /// A secret from its stored parts.
    pub fn from_parts(salt: [u8; 16], w: [u8; PASSWORD_SECRET_LEN]) -> PasswordSecret {
        PasswordSecret {
            salt,
            w: Zeroizing::new(w),
        }
    }

    /// The salt it was derived with.
    pub fn salt(&self) -> [u8; 16] {
        self.salt
    }

    /// The secret bytes (for storing or wrapping them; wiped when dropped).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; PASSWORD_SECRET_LEN]> {
        self.w.clone()
    }

    /// Whether it belongs to `policy` (the same salt: the current password).
    pub fn is_for(&self, policy: &PasswordPolicy) -> bool {
        self.salt == policy.salt
    }
}

impl fmt::Debug for PasswordSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordSecret(..)")
    }
}

/// What binds one admission exchange: the group, the joiner's signed
/// identity info (the credential is minted for it), and the libp2p peer ids
/// of the connection (which Noise authenticates), as bytes.
#[derive(Debug, Clone, Copy)]
pub struct PakeContext<'a> {
    /// The group.
    pub group: &'a PeerName,
    /// The joiner's signed identity info (envelope bytes).
    pub joiner_identity: &'a [u8],
    /// The joiner's peer id.
    pub joiner_peer: &'a [u8],
    /// The responder's peer id.
    pub responder_peer: &'a [u8],
}

impl PakeContext<'_> {
    /// `sha2-256(domain || u32 len || part ...)` over the four parts.
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(PAKE_DOMAIN);
        for part in [
            self.group.as_str().as_bytes(),
            self.joiner_identity,
            self.joiner_peer,
            self.responder_peer,
        ] {
            h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }

    /// SPAKE2's identities: A names the joiner, B the responder, both under
    /// the context digest.
    fn identities(&self) -> (spake2::Identity, spake2::Identity) {
        let digest = self.digest();
        let a = [b"A".as_slice(), &digest].concat();
        let b = [b"B".as_slice(), &digest].concat();
        (spake2::Identity::new(&a), spake2::Identity::new(&b))
    }
}

/// The transcript hash both confirmations cover.
fn transcript(context: &PakeContext<'_>, a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(context.digest());
    for part in [a, b] {
        h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

fn confirmation(key: &[u8], role: &[u8], th: &[u8; 32]) -> Result<Hmac<Sha256>, Error> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|_| Error::InvalidArg("the exchange key has no valid length".into()))?;
    mac.update(PAKE_DOMAIN);
    mac.update(role);
    mac.update(th);
    Ok(mac)
}

const JOINER: &[u8] = b" joiner";
const RESPONDER: &[u8] = b" responder";

/// The wrong password (or a wrong context, or a responder that does not
/// know the password): `NotAuthorized`, as Windows reports a wrong group
/// password (reference 3.2: "CONNECTION_FAILED with PEER_E_NOT_AUTHORIZED").
fn wrong_password() -> Error {
    Error::NotAuthorized("wrong group password".into())
}

fn malformed(e: spake2::Error) -> Error {
    Error::InvalidArg(format!("a malformed password exchange message: {e:?}"))
}

/// The joiner's side of one admission exchange.
pub struct PasswordJoin {
    spake: Spake2<Ed25519Group>,
    message: Vec<u8>,
}

impl fmt::Debug for PasswordJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordJoin(..)")
    }
}

impl PasswordJoin {
    /// Starts an exchange: returns the state and message `A` for the
    /// responder. `rng` is the caller's (a CSPRNG).
    pub fn start(
        secret: &PasswordSecret,
        context: &PakeContext<'_>,
        rng: &mut impl CryptoRng,
    ) -> (PasswordJoin, Vec<u8>) {
        let (a, b) = context.identities();
        let (spake, message) = Spake2::<Ed25519Group>::start_a_with_rng(
            &spake2::Password::new(secret.w.as_ref()),
            &a,
            &b,
            rng,
        );
        (
            PasswordJoin {
                spake,
                message: message.clone(),
            },
            message,
        )
    }

    /// Checks the responder's answer (`B`, `confirm_b`): on success returns
    /// `confirm_a` for it. `NotAuthorized` when the confirmation does not
    /// match (a wrong password, or a responder that does not know it);
    /// nothing is sent back then. `InvalidArg` for a malformed `B`.
    pub fn confirm(
        self,
        context: &PakeContext<'_>,
        b: &[u8],
        confirm_b: &[u8],
    ) -> Result<[u8; 32], Error> {
        let key = Zeroizing::new(self.spake.finish(b).map_err(malformed)?);
        let th = transcript(context, &self.message, b);
        confirmation(&key, RESPONDER, &th)?
            .verify_slice(confirm_b)
            .map_err(|_| wrong_password())?;
        Ok(confirmation(&key, JOINER, &th)?
            .finalize()
            .into_bytes()
            .into())
    }
}

/// The responder's side of one admission exchange.
pub struct PasswordCheck {
    key: Zeroizing<Vec<u8>>,
    th: [u8; 32],
}

impl fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordCheck(..)")
    }
}

impl PasswordCheck {
    /// Answers the joiner's `A`: returns the state, `B` and `confirm_b`.
    /// `InvalidArg` for a malformed `A`.
    pub fn start(
        secret: &PasswordSecret,
        context: &PakeContext<'_>,
        a: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<(PasswordCheck, Vec<u8>, [u8; 32]), Error> {
        let (id_a, id_b) = context.identities();
        let (spake, b) = Spake2::<Ed25519Group>::start_b_with_rng(
            &spake2::Password::new(secret.w.as_ref()),
            &id_a,
            &id_b,
            rng,
        );
        let key = Zeroizing::new(spake.finish(a).map_err(malformed)?);
        let th = transcript(context, a, &b);
        let confirm_b = confirmation(&key, RESPONDER, &th)?
            .finalize()
            .into_bytes()
            .into();
        Ok((PasswordCheck { key, th }, b, confirm_b))
    }

    /// Checks the joiner's `confirm_a`: `NotAuthorized` for a wrong password.
    pub fn finish(self, confirm_a: &[u8]) -> Result<(), Error> {
        confirmation(&self.key, JOINER, &self.th)?
            .verify_slice(confirm_a)
            .map_err(|_| wrong_password())
    }
}

/// The wrapping context of a password secret: its use, the salt (the
/// password it belongs to) and the group.
fn wrap_context(group: &PeerName, salt: &[u8; 16]) -> Vec<u8> {
    [
        b"peergroup/password-secret/v1".as_slice(),
        salt,
        group.as_str().as_bytes(),
    ]
    .concat()
}

/// Wraps `secret` for the member whose identity key is `recipient` (a member
/// that may admit password joiners), as group keys are wrapped
/// ([`crate::wrap_key`]); `ephemeral_secret` is 32 random bytes from the
/// caller's RNG.
pub fn wrap_password_secret(
    secret: &PasswordSecret,
    group: &PeerName,
    recipient: &PublicKey,
    ephemeral_secret: [u8; 32],
) -> Result<WrappedKey, Error> {
    wrap_key(
        &GroupKey::new(0, *secret.secret_bytes()),
        recipient,
        ephemeral_secret,
        &wrap_context(group, &secret.salt),
    )
}

/// Unwraps a password secret of `policy` wrapped for `identity`.
/// `VerifyError::BadCiphertext` if it was wrapped for another key, group or
/// password.
pub fn unwrap_password_secret(
    wrapped: &WrappedKey,
    group: &PeerName,
    policy: &PasswordPolicy,
    identity: &Keypair,
) -> Result<PasswordSecret, Error> {
    let key = unwrap_key(wrapped, identity, &wrap_context(group, &policy.salt))?;
    Ok(PasswordSecret::from_parts(policy.salt, *key.secret_bytes()))
}

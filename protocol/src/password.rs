//! Password groups: the stored verifier and the sans-I/O exchange that checks a
//! password without revealing it.
//!
//! The group properties carry a [`PasswordPolicy`]: the role granted to
//! password joiners, a per-group random salt, Argon2id parameters, and the
//! *verifier*: the ed25519 public key whose secret seed is
//! `Argon2id(password, salt)`. Neither the password nor a fast hash of it is
//! stored anywhere; guessing it from the verifier costs one Argon2id run per
//! guess.
//!
//! The online check (run over an authenticated, encrypted session by the node):
//!
//! 1. the authenticator (a member who can grant the policy's role) sends a
//!    [`PasswordChallenge`]: the group and a fresh 32-byte nonce;
//! 2. the joiner derives the key from the password and returns a
//!    [`PasswordProof`]: a signature over the challenge and the joiner's
//!    identity, under the domain `peergroup/password-proof/v1`;
//! 3. the authenticator checks it against the verifier and, on success, issues
//!    the joiner a credential for the policy's role.
//!
//! Nothing secret crosses the wire, a proof is bound to one nonce and one
//! joiner identity (no replay, no relay to another identity), and a wrong
//! password fails with `NotAuthorized`.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{
    credential::Role,
    error::Error,
    group::GroupProperties,
    identity::{IdentityInfo, Keypair, PublicKey, Signature},
    peer_name::PeerName,
};

/// The shortest password accepted, in characters (`PEER_E_PASSWORD_DOES_NOT_MEET_POLICY` below it).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Signing domain of password proofs.
const PROOF_DOMAIN: &[u8] = b"peergroup/password-proof/v1";

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

/// A group's password policy, as carried in its signed properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    /// The role a password joiner receives.
    #[serde(rename = "r")]
    pub role: Role,
    /// Per-group random salt.
    #[serde(rename = "s", with = "serde_bytes")]
    pub salt: [u8; 16],
    /// Argon2id parameters.
    #[serde(rename = "k")]
    pub kdf: KdfParams,
    /// Public key whose seed is `Argon2id(password, salt)`.
    #[serde(rename = "v")]
    pub verifier: PublicKey,
}

impl PasswordPolicy {
    /// A policy for `password`, granting `role`; `salt` comes from the caller's RNG.
    pub fn new(
        password: &str,
        role: Role,
        salt: [u8; 16],
        kdf: KdfParams,
    ) -> Result<PasswordPolicy, Error> {
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(Error::PasswordDoesNotMeetPolicy(format!(
                "{chars} characters; at least {MIN_PASSWORD_CHARS} are required"
            )));
        }
        kdf.check()?;
        let key = derive(password, &salt, &kdf)?;
        Ok(PasswordPolicy {
            role,
            salt,
            kdf,
            verifier: key.public(),
        })
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        self.kdf.check()
    }
}

/// The key a password derives for one group. `Debug` is redacted.
#[derive(Clone)]
pub struct PasswordKey(Keypair);

impl PasswordKey {
    /// Runs Argon2id on `password` with the group's salt and parameters.
    /// This is deliberately slow (tens of milliseconds with the defaults).
    pub fn derive(password: &str, policy: &PasswordPolicy) -> Result<PasswordKey, Error> {
        policy.check()?;
        derive(password, &policy.salt, &policy.kdf).map(PasswordKey)
    }

    /// Whether this key matches the policy's verifier (the password is right).
    pub fn matches(&self, policy: &PasswordPolicy) -> bool {
        self.0.public() == policy.verifier
    }
}

impl fmt::Debug for PasswordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordKey(..)")
    }
}

fn derive(password: &str, salt: &[u8; 16], kdf: &KdfParams) -> Result<Keypair, Error> {
    let params = Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| Error::InvalidGroupProperties(format!("Argon2id parameters: {e}")))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, seed.as_mut())
        .map_err(|e| Error::InvalidArg(format!("Argon2id failed: {e}")))?;
    Ok(Keypair::from_secret_bytes(&seed))
}

/// Step 1, authenticator to joiner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChallenge {
    /// The group being joined.
    #[serde(rename = "g")]
    pub group: PeerName,
    /// A fresh random nonce from the authenticator's RNG.
    #[serde(rename = "n", with = "serde_bytes")]
    pub nonce: [u8; 32],
}

/// Step 2, joiner to authenticator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordProof {
    /// Signature by the password key over the challenge and the joiner's identity.
    #[serde(rename = "s", with = "serde_bytes")]
    pub signature: [u8; 64],
}

/// What a successful password check grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordGrant {
    /// The joiner, to be issued a credential.
    pub subject: IdentityInfo,
    /// The role the policy grants.
    pub role: Role,
}

/// The authenticator's side of one password check.
#[derive(Debug, Clone)]
pub struct PasswordExchange {
    policy: PasswordPolicy,
    challenge: PasswordChallenge,
    joiner: IdentityInfo,
}

impl PasswordExchange {
    /// Starts a check of `joiner` for the group; `nonce` comes from the caller's
    /// RNG and must never repeat. `NotAuthorized` if the group admits no passwords.
    pub fn start(
        properties: &GroupProperties,
        joiner: IdentityInfo,
        nonce: [u8; 32],
    ) -> Result<(PasswordExchange, PasswordChallenge), Error> {
        let Some(policy) = properties.password.clone() else {
            return Err(Error::NotAuthorized(format!(
                "group {} does not admit members by password",
                properties.group_peer_name
            )));
        };
        let challenge = PasswordChallenge {
            group: properties.group_peer_name.clone(),
            nonce,
        };
        let exchange = PasswordExchange {
            policy,
            challenge: challenge.clone(),
            joiner,
        };
        Ok((exchange, challenge))
    }

    /// Checks the joiner's proof: `NotAuthorized` for a wrong password.
    pub fn finish(self, proof: &PasswordProof) -> Result<PasswordGrant, Error> {
        let message = proof_message(&self.challenge, &self.joiner);
        self.policy
            .verifier
            .verify(&message, &Signature(proof.signature))
            .map_err(|_| Error::NotAuthorized("wrong group password".into()))?;
        Ok(PasswordGrant {
            subject: self.joiner,
            role: self.policy.role,
        })
    }
}

/// The joiner's side: holds the derived key for one group.
#[derive(Debug, Clone)]
pub struct PasswordJoiner {
    key: PasswordKey,
    group: PeerName,
    joiner: IdentityInfo,
}

impl PasswordJoiner {
    /// Derives the key for `properties`' policy. A password that does not match
    /// the verifier is refused here already (`NotAuthorized`), before any
    /// network round trip.
    pub fn new(
        password: &str,
        properties: &GroupProperties,
        joiner: IdentityInfo,
    ) -> Result<PasswordJoiner, Error> {
        let Some(policy) = &properties.password else {
            return Err(Error::NotAuthorized(format!(
                "group {} does not admit members by password",
                properties.group_peer_name
            )));
        };
        let key = PasswordKey::derive(password, policy)?;
        if !key.matches(policy) {
            return Err(Error::NotAuthorized("wrong group password".into()));
        }
        Ok(PasswordJoiner {
            key,
            group: properties.group_peer_name.clone(),
            joiner,
        })
    }

    /// Answers a challenge; refuses one for another group.
    pub fn respond(&self, challenge: &PasswordChallenge) -> Result<PasswordProof, Error> {
        if challenge.group != self.group {
            return Err(Error::InvalidArg(format!(
                "a password challenge for {}, not {}",
                challenge.group, self.group
            )));
        }
        Ok(PasswordProof {
            signature: *self
                .key
                .0
                .sign(&proof_message(challenge, &self.joiner))
                .as_bytes(),
        })
    }
}

/// `domain || u16 len || group || nonce || joiner key || u16 len || joiner name`.
fn proof_message(challenge: &PasswordChallenge, joiner: &IdentityInfo) -> Vec<u8> {
    let group = challenge.group.as_str().as_bytes();
    let name = joiner.peer_name.as_str().as_bytes();
    let mut m = Vec::with_capacity(
        PROOF_DOMAIN
            .len()
            .saturating_add(group.len())
            .saturating_add(name.len())
            .saturating_add(72),
    );
    m.extend_from_slice(PROOF_DOMAIN);
    // Peer names are at most a few hundred bytes, far below u16::MAX.
    m.extend_from_slice(&u16::try_from(group.len()).unwrap_or(u16::MAX).to_be_bytes());
    m.extend_from_slice(group);
    m.extend_from_slice(&challenge.nonce);
    m.extend_from_slice(joiner.key.as_bytes());
    m.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
    m.extend_from_slice(name);
    m
}

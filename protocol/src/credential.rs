//! Roles and credentials: the group membership certificate (GMC) model.
//!
//! A [`Credential`] is signed by its issuer and names the group, the subject's
//! key and peer name, one [`Role`] and a validity window. A
//! [`CredentialChain`] lists the credentials from the one the creator issued
//! down to the subject's; the creator's own credential is implied by the
//! signed group properties (Admin, from the group's creation, "infinite" =
//! 1000 years). [`CredentialChain::verify`] enforces the Windows rules
//! (reference 3.3): at most [`MAX_CHAIN_LEN`] credentials counting the
//! creator's, no key twice, no credential outliving its issuer's, and no
//! issuer granting a role it may not grant.
//!
//! Windows credentials carry a list of roles; the three roles are totally
//! ordered by capability, so peergroup carries one role (the list's maximum).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    error::Error,
    group::GroupProperties,
    identity::{Identity, IdentityInfo, PublicKey},
    peer_name::PeerName,
    signed::{Kind, Payload, Signed, decode_canonical, encode},
    time::Timestamp,
};

/// The longest credential chain, counting the creator's implied credential
/// (`creator -> admin -> member` is 3 long), as in Windows.
pub const MAX_CHAIN_LEN: usize = 24;

/// "Infinite" validity, as Windows defines it: 1000 years (of 365 days), in seconds.
pub const INFINITE_VALIDITY_SECS: u64 = 1000 * 365 * 24 * 3600;

/// A member's role (`PEER_GROUP_ROLE_*`), ordered by capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Adds records, updates and deletes its own.
    #[serde(rename = "member")]
    Member,
    /// A member that may also invite members and inviting members.
    #[serde(rename = "inviting-member")]
    InvitingMember,
    /// Updates and deletes anyone's records; issues credentials for any role.
    #[serde(rename = "admin")]
    Admin,
}

impl Role {
    /// Whether a holder of `self` may issue a credential or invitation for `role`:
    /// admins for any role, inviting members for inviting member and member,
    /// members for none. Nobody grants a role above their own.
    pub fn can_grant(self, role: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::InvitingMember => role <= Role::InvitingMember,
            Role::Member => false,
        }
    }

    /// Whether a holder of `self` may update or delete records created by others.
    pub fn can_modify_others(self) -> bool {
        self == Role::Admin
    }

    /// The Windows role GUID, for reference and display.
    pub fn windows_guid(self) -> &'static str {
        match self {
            Role::Admin => "04387127-aa56-450a-8ce5-4f565c6790f4",
            Role::InvitingMember => "4370fd89-dc18-4cfb-8dbf-9853a8a9f905",
            Role::Member => "f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2",
        }
    }

    /// A lower-case name: `admin`, `inviting-member`, `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::InvitingMember => "inviting-member",
            Role::Member => "member",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "inviting-member" => Ok(Role::InvitingMember),
            "member" => Ok(Role::Member),
            other => Err(Error::InvalidArg(format!(
                "unknown role {other:?} (admin, inviting-member, member)"
            ))),
        }
    }
}

/// A credential (the GMC equivalent), signed by its issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The group it admits to.
    #[serde(rename = "g")]
    pub group: PeerName,
    /// The subject's identity peer name (owned by `subject_key`).
    #[serde(rename = "s")]
    pub subject: PeerName,
    /// The subject's public key.
    #[serde(rename = "k")]
    pub subject_key: PublicKey,
    /// The issuer's identity peer name; the issuer signs.
    #[serde(rename = "i")]
    pub issuer: PeerName,
    /// The role granted.
    #[serde(rename = "r")]
    pub role: Role,
    /// Start of validity (inclusive).
    #[serde(rename = "nb")]
    pub not_before: Timestamp,
    /// End of validity (exclusive).
    #[serde(rename = "na")]
    pub not_after: Timestamp,
}

/// A credential signed by its issuer.
pub type SignedCredential = Signed<Credential>;

impl Payload for Credential {
    const KIND: Kind = Kind::Credential;

    fn check(&self) -> Result<(), Error> {
        self.group.require_secure("group")?;
        self.subject.require_secure("subject")?;
        self.issuer.require_secure("issuer")?;
        if !self.subject.is_owned_by(&self.subject_key) {
            return Err(Error::InvalidCredential(format!(
                "subject {} is not derived from the subject key",
                self.subject
            )));
        }
        if self.not_before >= self.not_after {
            return Err(Error::InvalidTimePeriod(format!(
                "a credential must start ({}) before it ends ({})",
                self.not_before, self.not_after
            )));
        }
        Ok(())
    }

    fn signer(&self) -> &PeerName {
        &self.issuer
    }
}

/// What a verified chain proves about its subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The group.
    pub group: PeerName,
    /// The member's identity peer name.
    pub subject: PeerName,
    /// The member's key.
    pub key: PublicKey,
    /// The member's role.
    pub role: Role,
    /// Start of validity (inclusive).
    pub not_before: Timestamp,
    /// End of validity (exclusive).
    pub not_after: Timestamp,
    /// Chain length, counting the creator's implied credential (the creator's is 1).
    pub chain_len: usize,
}

impl Membership {
    /// The creator's implied membership: Admin, valid from the group's creation
    /// for [`INFINITE_VALIDITY_SECS`].
    pub fn creator(properties: &GroupProperties) -> Membership {
        Membership {
            group: properties.group_peer_name.clone(),
            subject: properties.creator_peer_name.clone(),
            key: properties.creator_key,
            role: Role::Admin,
            not_before: properties.created_at,
            not_after: properties
                .created_at
                .saturating_add_secs(INFINITE_VALIDITY_SECS),
            chain_len: 1,
        }
    }

    /// Whether `[from, to]` lies inside the validity window
    /// (`not_before <= from` and `to <= not_after`).
    pub fn covers(&self, from: Timestamp, to: Timestamp) -> bool {
        self.not_before <= from && to <= self.not_after
    }

    /// `InvalidTimePeriod` unless the membership is valid at `now` (its
    /// start with [`crate::NOT_BEFORE_TOLERANCE`]).
    pub fn check_time(&self, now: Timestamp) -> Result<(), Error> {
        if now.saturating_add(crate::peer_time::NOT_BEFORE_TOLERANCE) < self.not_before {
            return Err(Error::InvalidTimePeriod(format!(
                "{}'s credential is not valid before {} (now {now})",
                self.subject, self.not_before
            )));
        }
        if now >= self.not_after {
            return Err(Error::InvalidTimePeriod(format!(
                "{}'s credential expired at {} (now {now})",
                self.subject, self.not_after
            )));
        }
        Ok(())
    }
}

/// Credentials from the one the creator issued down to the subject's. The
/// empty chain is the creator's own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialChain(Vec<SignedCredential>);

impl CredentialChain {
    /// The creator's chain: no explicit credentials.
    pub fn creator() -> CredentialChain {
        CredentialChain(Vec::new())
    }

    /// A chain from its credentials, root first. Not verified: call [`CredentialChain::verify`].
    pub fn from_credentials(credentials: Vec<SignedCredential>) -> CredentialChain {
        CredentialChain(credentials)
    }

    /// The credentials, root first.
    pub fn credentials(&self) -> &[SignedCredential] {
        &self.0
    }

    /// The length counting the creator's implied credential.
    pub fn len(&self) -> usize {
        self.0.len().saturating_add(1)
    }

    /// Whether this is the creator's own (empty) chain.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Verifies the chain against the group's properties and returns what it
    /// proves about its subject.
    pub fn verify(&self, properties: &GroupProperties) -> Result<Membership, Error> {
        self.memberships(properties)?
            .pop()
            .ok_or_else(|| Error::InvalidCredential("empty membership list".into()))
    }

    /// Verifies the chain and returns the membership of every subject along it
    /// (the creator's first, the chain subject's last).
    pub fn memberships(&self, properties: &GroupProperties) -> Result<Vec<Membership>, Error> {
        let length = self.len();
        if length > MAX_CHAIN_LEN {
            return Err(Error::ChainTooLong {
                length: length as u64,
                max: MAX_CHAIN_LEN as u64,
            });
        }
        let mut issuer = Membership::creator(properties);
        let mut seen = BTreeSet::from([issuer.key]);
        let mut out = Vec::with_capacity(length);
        for signed in &self.0 {
            let credential = signed.payload();
            if credential.group != properties.group_peer_name {
                return Err(Error::InvalidCredential(format!(
                    "a credential for group {} in a chain for {}",
                    credential.group, properties.group_peer_name
                )));
            }
            if credential.issuer != issuer.subject || *signed.signer_key() != issuer.key {
                return Err(Error::InvalidCredential(format!(
                    "the chain is broken: {} issued {}'s credential, but the previous link names {}",
                    credential.issuer, credential.subject, issuer.subject
                )));
            }
            if !seen.insert(credential.subject_key) {
                return Err(Error::CircularChainDetected);
            }
            if !issuer.role.can_grant(credential.role) {
                return Err(Error::NotAuthorized(format!(
                    "{} ({}) cannot grant the {} role",
                    issuer.subject, issuer.role, credential.role
                )));
            }
            if credential.not_before < issuer.not_before || credential.not_after > issuer.not_after
            {
                return Err(Error::InvalidTimePeriod(format!(
                    "{}'s credential outlives its issuer {}'s",
                    credential.subject, issuer.subject
                )));
            }
            let next = Membership {
                group: credential.group.clone(),
                subject: credential.subject.clone(),
                key: credential.subject_key,
                role: credential.role,
                not_before: credential.not_before,
                not_after: credential.not_after,
                chain_len: issuer.chain_len.saturating_add(1),
            };
            out.push(std::mem::replace(&mut issuer, next));
        }
        out.push(issuer);
        Ok(out)
    }

    /// The chain's wire form: a CBOR array of credential envelopes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let list: Vec<ByteBuf> = self
            .0
            .iter()
            .map(|c| ByteBuf::from(c.as_bytes().to_vec()))
            .collect();
        Ok(encode(&list)?)
    }

    /// Decodes [`CredentialChain::to_bytes`], verifying each credential's
    /// signature (not the chain: call [`CredentialChain::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<CredentialChain, Error> {
        let list: Vec<ByteBuf> = decode_canonical("credential chain", bytes)?;
        if list.len() >= MAX_CHAIN_LEN {
            return Err(Error::ChainTooLong {
                length: list.len().saturating_add(1) as u64,
                max: MAX_CHAIN_LEN as u64,
            });
        }
        list.iter()
            .map(|b| Signed::from_bytes(b))
            .collect::<Result<Vec<_>, _>>()
            .map(CredentialChain)
    }
}

/// `PeerGroupIssueCredentials`: `issuer` (holding `issuer_chain`) issues
/// `subject` a credential for `role`, valid over `[not_before, not_after)`,
/// and returns the subject's new chain.
///
/// Refused with `NotAuthorized` when the issuer's chain is not the issuer's or
/// its role cannot grant `role`; `InvalidTimePeriod` when the window is empty
/// or outlives the issuer's; `ChainTooLong` past 24; `CircularChainDetected`
/// when the subject's key is already in the chain.
pub fn issue_credential(
    issuer: &Identity,
    issuer_chain: &CredentialChain,
    properties: &GroupProperties,
    subject: &IdentityInfo,
    role: Role,
    not_before: Timestamp,
    not_after: Timestamp,
) -> Result<CredentialChain, Error> {
    let issuer_membership = issuer_chain.verify(properties)?;
    if &issuer_membership.subject != issuer.peer_name() {
        return Err(Error::NotAuthorized(format!(
            "the chain is {}'s, not the issuer {}'s",
            issuer_membership.subject,
            issuer.peer_name()
        )));
    }
    // The new chain's verification enforces the rest (role superiority,
    // lifetime inside the issuer's, length, cycles) with the same errors a
    // receiver would report.
    let credential = Credential {
        group: properties.group_peer_name.clone(),
        subject: subject.peer_name.clone(),
        subject_key: subject.key,
        issuer: issuer.peer_name().clone(),
        role,
        not_before,
        not_after,
    };
    let signed = Signed::sign(credential, issuer.keypair())?;
    let mut credentials = issuer_chain.0.clone();
    credentials.push(signed);
    let chain = CredentialChain(credentials);
    chain.verify(properties)?;
    Ok(chain)
}

/// Renews or changes the role of an existing member (reference 3.9): a new
/// credential starting at `now`, which must be later than the current one's
/// start, for `role` (default: the current role) and lasting as long as the
/// current one did (capped at the issuer's validity).
pub fn renew_credential(
    issuer: &Identity,
    issuer_chain: &CredentialChain,
    properties: &GroupProperties,
    subject: &IdentityInfo,
    current: &Membership,
    role: Option<Role>,
    now: Timestamp,
) -> Result<CredentialChain, Error> {
    if now <= current.not_before {
        return Err(Error::InvalidTimePeriod(format!(
            "a renewed credential must start after the current one ({})",
            current.not_before
        )));
    }
    if current.key != subject.key {
        return Err(Error::InvalidCredential(
            "the current membership is another key's".into(),
        ));
    }
    let duration = current
        .not_after
        .as_millis()
        .saturating_sub(current.not_before.as_millis());
    let issuer_end = issuer_chain.verify(properties)?.not_after;
    let not_after =
        Timestamp::from_millis(now.as_millis().saturating_add(duration)).min(issuer_end);
    issue_credential(
        issuer,
        issuer_chain,
        properties,
        subject,
        role.unwrap_or(current.role),
        now,
        not_after,
    )
}

//! Invitations: one line of text that admits one identity (or, for password
//! groups, anyone who knows the password) to a group.
//!
//! An invitation is an envelope signed by its issuer holding the group's
//! signed properties and a credential chain: for a credential invitation, the
//! issuer's chain plus the new credential for the subject (so joining yields
//! the member's chain offline); for a password invitation, the issuer's chain
//! only, and no subject. Its text form is
//! `peergroup-invitation-v1:<base64url>`; whitespace is ignored on input.
//!
//! Parsing checks everything that does not depend on who joins or when:
//! signature, properties, chain. Tampering with any byte fails with
//! `InvitationNotTrusted`, another text version with `UnsupportedVersion`.
//! [`InvitationInfo::accept`] adds the join-time checks: the joining identity
//! must be the subject (`InvitationNotTrusted`) and now must lie in the
//! validity window (`InvalidTimePeriod`).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    bytes_text::text_form_problem,
    credential::{CredentialChain, Membership, Role, issue_credential},
    error::Error,
    group::{AuthSchemes, Cloud, GroupProperties, SignedProperties},
    identity::{Identity, IdentityInfo, PublicKey},
    peer_name::PeerName,
    signed::{Kind, Payload, Signed},
    time::Timestamp,
};

/// Text prefix of invitations; `v1` is the invitation format version.
pub const INVITATION_TEXT_PREFIX: &str = "peergroup-invitation-v1:";

/// How an invitation admits its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    /// It carries a credential for one identity.
    #[serde(rename = "credential")]
    Credential,
    /// It names the group; the holder proves the group password when connecting.
    #[serde(rename = "password")]
    Password,
}

/// The signed body of an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    /// The group's signed properties envelope.
    #[serde(rename = "p")]
    pub properties: ByteBuf,
    /// Credential envelopes, root first.
    #[serde(rename = "c")]
    pub chain: Vec<ByteBuf>,
    /// How it admits.
    #[serde(rename = "s")]
    pub scheme: Scheme,
    /// The issuing identity; it signs the invitation.
    #[serde(rename = "i")]
    pub issuer: PeerName,
    /// When it was made.
    #[serde(rename = "t")]
    pub created_at: Timestamp,
}

impl Payload for Invitation {
    const KIND: Kind = Kind::Invitation;

    fn check(&self) -> Result<(), Error> {
        self.issuer.require_secure("issuer")
    }

    fn signer(&self) -> &PeerName {
        &self.issuer
    }
}

/// What a parsed invitation says (`PEER_INVITATION_INFO`), with the verified
/// parts needed to join.
#[derive(Debug, Clone)]
pub struct InvitationInfo {
    /// The group's peer name.
    pub group: PeerName,
    /// The group's friendly name.
    pub group_friendly_name: String,
    /// Where members are found.
    pub cloud: Cloud,
    /// How it admits.
    pub scheme: Scheme,
    /// Who issued it.
    pub issuer: PeerName,
    /// The issuer's role.
    pub issuer_role: Role,
    /// Whom it admits (`None` for password invitations).
    pub subject: Option<PeerName>,
    /// The subject's key (`None` for password invitations).
    pub subject_key: Option<PublicKey>,
    /// The role it grants.
    pub role: Role,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// The group's signed properties.
    pub properties: SignedProperties,
    /// The subject's chain (credential invitations) or the issuer's (password ones).
    pub chain: CredentialChain,
}

fn untrusted(e: Error) -> Error {
    match e {
        Error::UnsupportedVersion(_) | Error::InvitationNotTrusted(_) => e,
        other => Error::InvitationNotTrusted(other.to_string()),
    }
}

impl InvitationInfo {
    /// `PeerGroupParseInvitation`: parses and verifies an invitation's text
    /// form. A text that does not read (cut short, damaged, not an
    /// invitation) is `InvitationNotTrusted` with what is wrong with it in
    /// words.
    pub fn parse(text: &str) -> Result<InvitationInfo, Error> {
        let signed =
            Signed::<Invitation>::from_text(INVITATION_TEXT_PREFIX, text).map_err(|e| {
                match text_form_problem("invitation", INVITATION_TEXT_PREFIX, text, &e) {
                    Some(problem) => Error::InvitationNotTrusted(problem),
                    None => untrusted(e),
                }
            })?;
        InvitationInfo::from_signed(&signed).map_err(untrusted)
    }

    fn from_signed(signed: &Signed<Invitation>) -> Result<InvitationInfo, Error> {
        let invitation = signed.payload();
        let properties = SignedProperties::from_bytes(&invitation.properties)?;
        let props = properties.properties();
        let credentials = invitation
            .chain
            .iter()
            .map(|b| Signed::from_bytes(b))
            .collect::<Result<Vec<_>, _>>()?;
        let chain = CredentialChain::from_credentials(credentials);
        let memberships = chain.memberships(props)?;
        let leaf = memberships
            .last()
            .ok_or_else(|| Error::InvitationNotTrusted("no credentials".into()))?;
        let (issuer, subject): (&Membership, Option<&Membership>) = match invitation.scheme {
            Scheme::Credential => {
                let issuer = memberships
                    .len()
                    .checked_sub(2)
                    .and_then(|i| memberships.get(i))
                    .ok_or_else(|| {
                        Error::InvitationNotTrusted("no credential for a subject".into())
                    })?;
                (issuer, Some(leaf))
            }
            Scheme::Password => (leaf, None),
        };
        if issuer.subject != invitation.issuer {
            return Err(Error::InvitationNotTrusted(format!(
                "signed by {}, but the chain's issuer is {}",
                invitation.issuer, issuer.subject
            )));
        }
        let (role, not_before, not_after) = match (invitation.scheme, subject) {
            (Scheme::Credential, Some(s)) => (s.role, s.not_before, s.not_after),
            _ => {
                let policy = match (
                    &props.password,
                    props.auth_schemes.0 & AuthSchemes::PASSWORD.0,
                ) {
                    (Some(policy), bits) if bits != 0 => policy,
                    _ => {
                        return Err(Error::InvitationNotTrusted(
                            "a password invitation for a group without a password".into(),
                        ));
                    }
                };
                if !issuer.role.can_grant(policy.role) {
                    return Err(Error::InvitationNotTrusted(format!(
                        "a {} cannot admit password joiners as {}",
                        issuer.role, policy.role
                    )));
                }
                (policy.role, issuer.not_before, issuer.not_after)
            }
        };
        Ok(InvitationInfo {
            group: props.group_peer_name.clone(),
            group_friendly_name: props.friendly_name.clone(),
            cloud: props.cloud,
            scheme: invitation.scheme,
            issuer: issuer.subject.clone(),
            issuer_role: issuer.role,
            subject: subject.map(|s| s.subject.clone()),
            subject_key: subject.map(|s| s.key),
            role,
            not_before,
            not_after,
            properties: properties.clone(),
            chain,
        })
    }

    /// `PeerGroupJoin`'s checks: returns `identity`'s credential chain if the
    /// invitation is a credential invitation for `identity`, valid at `now`.
    pub fn accept(&self, identity: &Identity, now: Timestamp) -> Result<CredentialChain, Error> {
        if self.scheme != Scheme::Credential {
            return Err(Error::InvalidArg(
                "a password invitation is joined with the group password".into(),
            ));
        }
        if self.subject.as_ref() != Some(identity.peer_name())
            || self.subject_key != Some(identity.public_key())
        {
            return Err(Error::InvitationNotTrusted(format!(
                "the invitation is for {}, not for {}",
                self.subject
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                identity.peer_name()
            )));
        }
        self.check_time(now)?;
        Ok(self.chain.clone())
    }

    /// `InvalidTimePeriod` unless `now` lies in the invitation's validity
    /// window (its start with [`crate::NOT_BEFORE_TOLERANCE`]).
    pub fn check_time(&self, now: Timestamp) -> Result<(), Error> {
        if now.saturating_add(crate::peer_time::NOT_BEFORE_TOLERANCE) < self.not_before {
            return Err(Error::InvalidTimePeriod(format!(
                "the invitation is not valid before {} (now {now}); check the clocks",
                self.not_before
            )));
        }
        if now >= self.not_after {
            return Err(Error::InvalidTimePeriod(format!(
                "the invitation expired at {} (now {now})",
                self.not_after
            )));
        }
        Ok(())
    }
}

/// `PeerGroupCreateInvitation`: `issuer` (holding `issuer_chain`) invites the
/// identity described by `subject` (its verified public text) as `role`.
///
/// The invitation expires at `expires`, by default and at most when the
/// issuer's credential does (`InvalidTimePeriod` beyond it or in the past).
/// Members cannot invite; inviting members can invite members and inviting
/// members; admins anyone (`NotAuthorized` otherwise).
pub fn create_invitation(
    issuer: &Identity,
    issuer_chain: &CredentialChain,
    properties: &SignedProperties,
    subject: &Signed<IdentityInfo>,
    role: Role,
    expires: Option<Timestamp>,
    now: Timestamp,
) -> Result<String, Error> {
    let props = properties.properties();
    let issuer_membership = issuer_chain.verify(props)?;
    issuer_membership.check_time(now)?;
    let not_after = expires.unwrap_or(issuer_membership.not_after);
    if not_after > issuer_membership.not_after {
        return Err(Error::InvalidTimePeriod(format!(
            "the invitation would expire at {not_after}, after the issuer's credential ({})",
            issuer_membership.not_after
        )));
    }
    if not_after <= now {
        return Err(Error::InvalidTimePeriod(format!(
            "the expiration {not_after} is not later than now ({now})"
        )));
    }
    let chain = issue_credential(
        issuer,
        issuer_chain,
        props,
        subject.payload(),
        role,
        now,
        not_after,
    )?;
    sign_invitation(issuer, properties, &chain, Scheme::Credential, now)
}

/// `PeerGroupCreatePasswordInvitation`: an invitation that names the group
/// and carries no subject; its holder joins with the group password.
pub fn create_password_invitation(
    issuer: &Identity,
    issuer_chain: &CredentialChain,
    properties: &SignedProperties,
    now: Timestamp,
) -> Result<String, Error> {
    let props = properties.properties();
    let Some(policy) = &props.password else {
        return Err(Error::InvalidArg(format!(
            "group {} has no password",
            props.group_peer_name
        )));
    };
    let membership = issuer_chain.verify(props)?;
    if &membership.subject != issuer.peer_name() {
        return Err(Error::NotAuthorized(format!(
            "the chain is {}'s, not {}'s",
            membership.subject,
            issuer.peer_name()
        )));
    }
    membership.check_time(now)?;
    if !membership.role.can_grant(policy.role) {
        return Err(Error::NotAuthorized(format!(
            "a {} cannot admit password joiners as {}",
            membership.role, policy.role
        )));
    }
    sign_invitation(issuer, properties, issuer_chain, Scheme::Password, now)
}

fn sign_invitation(
    issuer: &Identity,
    properties: &SignedProperties,
    chain: &CredentialChain,
    scheme: Scheme,
    now: Timestamp,
) -> Result<String, Error> {
    let invitation = Invitation {
        properties: ByteBuf::from(properties.as_bytes().to_vec()),
        chain: chain
            .credentials()
            .iter()
            .map(|c| ByteBuf::from(c.as_bytes().to_vec()))
            .collect(),
        scheme,
        issuer: issuer.peer_name().clone(),
        created_at: now,
    };
    Ok(Signed::sign(invitation, issuer.keypair())?.to_text(INVITATION_TEXT_PREFIX))
}

impl GroupProperties {
    /// Whether this group admits members by password.
    pub fn admits_passwords(&self) -> bool {
        self.password.is_some() && self.auth_schemes.0 & AuthSchemes::PASSWORD.0 != 0
    }
}

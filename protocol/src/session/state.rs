//! [`GroupState`]: what a node keeps about one of its groups across restarts.

use crate::{
    credential::CredentialChain,
    error::Error,
    group::{GroupProperties, SignedProperties},
    password::PasswordSecret,
    peer_name::PeerName,
    seal::GroupKey,
};

/// A group as this node knows it: the creator-signed properties, the local
/// identity that is the member, its credential chain and whether the group
/// is ready. A session emits it ([`crate::Output::Persist`]) whenever any of
/// it changes; the host stores it in one transaction, so the properties, the
/// credential and the readiness can never disagree after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The group's current signed properties.
    pub properties: SignedProperties,
    /// The local identity that is a member.
    pub member: PeerName,
    /// The member's credential chain: empty only for the group's creator.
    pub chain: CredentialChain,
    /// Whether the group completed its first synchronization (always for the creator).
    pub ready: bool,
    /// The group data keys this member holds, by epoch (oldest first): the
    /// creator makes the first; members receive them wrapped when they
    /// authenticate.
    pub keys: Vec<GroupKey>,
    /// The group password's secret, on members that may check passwords:
    /// the creator (which set it), members that joined with the password,
    /// and members that can grant the password role, which receive it
    /// wrapped when they authenticate with a holder. Never on anyone else.
    pub password: Option<PasswordSecret>,
}

impl GroupState {
    /// The group's peer name.
    pub fn group(&self) -> &PeerName {
        &self.properties().group_peer_name
    }

    /// The group's properties.
    pub fn properties(&self) -> &GroupProperties {
        self.properties.properties()
    }

    /// Whether the local member is the group's creator. Decided by name (the
    /// creator signs the properties, which name it), never by an empty chain.
    pub fn is_creator(&self) -> bool {
        self.member == self.properties().creator_peer_name
    }

    /// The data key that seals what this member publishes: the one the
    /// creator committed to in the properties (the newest held, for a group
    /// from before key commitments).
    pub fn current_key(&self) -> Option<&GroupKey> {
        match self.properties().key_commitment {
            Some(c) => self.key(c.epoch),
            None => self.keys.iter().max_by_key(|k| k.epoch()),
        }
    }

    /// The password secret of the group's current password policy, if this
    /// member holds it (a secret of an older password is never used).
    pub fn password_secret(&self) -> Option<&PasswordSecret> {
        let policy = self.properties().password.as_ref()?;
        self.password.as_ref().filter(|s| s.is_for(policy))
    }

    /// The data key of `epoch`, to open what others sealed.
    pub fn key(&self, epoch: u32) -> Option<&GroupKey> {
        self.keys.iter().find(|k| k.epoch() == epoch)
    }

    /// Checks that the state is coherent: a non-creator member holds a chain
    /// that verifies and names it. `InvalidCredential` otherwise.
    pub fn check(&self) -> Result<(), Error> {
        if self.is_creator() {
            if !self.chain.is_empty() {
                return Err(Error::InvalidCredential(
                    "the group's creator holds no explicit credential".into(),
                ));
            }
            return Ok(());
        }
        if self.chain.is_empty() {
            return Err(Error::InvalidCredential(format!(
                "{} is not the creator of {} and has no credential for it",
                self.member,
                self.group()
            )));
        }
        let membership = self.chain.verify(self.properties())?;
        if membership.subject != self.member {
            return Err(Error::InvalidCredential(format!(
                "the stored credential is {}'s, not {}'s",
                membership.subject, self.member
            )));
        }
        Ok(())
    }
}

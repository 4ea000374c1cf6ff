//! What the session knows of its neighbours' credentials, and of every
//! member's newest membership record: the session is the one source of
//! truth for who is a neighbour of its group (`crate::groups::Groups` asks
//! it), and for the credential chains group authentication hands over.

use crate::{
    authorize::membership_chain,
    credential::{CredentialChain, Membership},
    record::{RecordType, SignedRecord},
    seal::WrappedKey,
    session::Session,
    time::Timestamp,
};

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// `peer` proved, by group authentication, the membership `membership`
    /// (before or with [`crate::session::Input::NeighborUp`]): its held
    /// records count against that member's share, and it stops being a
    /// neighbour when the credential expires ([`Session::expired_neighbors`]).
    pub fn neighbor_authenticated(&mut self, peer: P, membership: &Membership) {
        self.neighbor_members
            .insert(peer, (membership.subject.clone(), membership.not_after));
    }

    /// Whether `peer` is a neighbour (an authenticated member connected
    /// while the group is online).
    pub fn is_neighbor(&self, peer: &P) -> bool {
        self.neighbors.contains(peer)
    }

    /// The neighbours whose credential is no longer valid at `now` (peer
    /// time): the host takes them down and authenticates them again.
    pub fn expired_neighbors(&self, now: Timestamp) -> Vec<P> {
        self.neighbors
            .iter()
            .filter(|peer| {
                self.neighbor_members
                    .get(*peer)
                    .is_some_and(|(_, not_after)| now >= *not_after)
            })
            .cloned()
            .collect()
    }

    /// When the first neighbour's credential expires (peer time).
    pub fn next_neighbor_expiry(&self) -> Option<Timestamp> {
        self.neighbors
            .iter()
            .filter_map(|peer| self.neighbor_members.get(peer).map(|(_, t)| *t))
            .min()
    }

    /// Keeps `record` if it is a member's newest membership record.
    pub(super) fn note_membership_record(&mut self, record: &SignedRecord) {
        let r = record.record();
        if r.record_type != RecordType::MEMBERSHIP {
            return;
        }
        let newer = self
            .membership_records
            .get(&r.creator)
            .is_none_or(|current| record > current);
        if newer {
            self.membership_records
                .insert(r.creator.clone(), record.clone());
        }
    }

    /// The credential chain the group database holds for the member proved
    /// by `membership`, when it is newer than the one it presented (a
    /// renewal or role change an administrator stored,
    /// `PEER_GROUP_STORE_CREDENTIALS`).
    pub fn newer_chain(&self, membership: &Membership) -> Option<CredentialChain> {
        let stored = self.membership_records.get(&membership.subject)?;
        if stored.record().is_deleted() {
            return None;
        }
        let chain = membership_chain(stored.record()).ok()?;
        let newer = chain.verify(self.state.properties()).ok()?;
        (newer.subject == membership.subject && newer.not_before > membership.not_before)
            .then_some(chain)
    }

    /// The group's current data key wrapped for `recipient` (an identity
    /// key) with the ephemeral secret `ephemeral`, if this member has one.
    pub fn wrap_current_key(
        &self,
        recipient: &crate::identity::PublicKey,
        ephemeral: [u8; 32],
    ) -> Option<Result<WrappedKey, crate::error::Error>> {
        let key = self.state.current_key()?;
        Some(crate::seal::wrap_key(
            key,
            recipient,
            ephemeral,
            self.name().as_str().as_bytes(),
        ))
    }
}

//! What the store answers (merges, failures, expiry) becomes events; and the
//! local member's own membership record: noticing it, adopting credentials
//! an admin stored for it, and publishing it.

use crate::{
    authorize::membership_chain,
    error::Error,
    group::GroupFlags,
    record::{RecordType, SignedRecord},
    session::{Event, MemberChange, RecordChange, Session},
    store::{Change, Merged, Version, envelope_hash},
    time::Timestamp,
};

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    // ----- store outcomes --------------------------------------------------------

    /// The store's answer to a merge, in the order the records were asked.
    ///
    /// The version index takes what the store holds for each record: the
    /// record itself when it changed the store, the copy the store kept when
    /// it was stale. Two edits of one version reach members in either order
    /// (a partition heals with an update on one side and a delete on the
    /// other); a member that accepted the loser after holding the winner
    /// must not name the loser, or reconciliation sees two members as equal
    /// that are not, and they never converge. Answers come in merge order,
    /// so the last one for a record names what the store holds; an index
    /// entry of a higher version (accepted since, still in flight) stays.
    pub(super) fn on_merged(&mut self, outcomes: Vec<(SignedRecord, Change)>, now: Timestamp) {
        self.merges_in_flight = self.merges_in_flight.saturating_sub(1);
        for (record, change) in outcomes {
            let r = record.record();
            let held = match change {
                Change::Stale { held } => held,
                _ => Version::of(&record),
            };
            if self
                .versions
                .get(&r.id)
                .is_none_or(|known| known.version <= held.version)
            {
                self.versions.insert(r.id, held);
            }
            let change = match change {
                Change::Added => RecordChange::Added,
                Change::Updated => RecordChange::Updated,
                Change::Deleted => RecordChange::Deleted,
                Change::Expired => RecordChange::Expired,
                Change::Stale { .. } => continue,
            };
            if r.record_type == RecordType::MEMBERSHIP {
                self.emit(Event::MemberChanged {
                    group: self.name().clone(),
                    member: r.creator.clone(),
                    change: if change == RecordChange::Added {
                        MemberChange::Joined
                    } else {
                        MemberChange::Updated
                    },
                });
                continue;
            }
            self.emit(Event::RecordChanged {
                group: self.name().clone(),
                change,
                id: r.id,
                record_type: r.record_type,
            });
        }
        self.sync_merged(now);
    }

    /// A batch that could not be stored: forget the versions it claimed, so
    /// that the records are accepted when they come again.
    ///
    /// The index then lacks a record the store may still hold in an older
    /// copy: reconciliation offers it again, and the next merge answer names
    /// the copy the store holds.
    pub(super) fn on_merge_failed(&mut self, records: Vec<SignedRecord>) {
        self.merges_in_flight = self.merges_in_flight.saturating_sub(1);
        // A first synchronization whose records did not all get stored is none.
        self.sync_merge_failed();
        for record in records {
            let id = record.record().id;
            let hash = envelope_hash(record.as_bytes());
            if self.versions.get(&id).is_some_and(|v| v.hash == hash) {
                self.versions.remove(&id);
            }
        }
    }

    pub(super) fn on_expired(&mut self, outcomes: Vec<Merged>) {
        for merged in outcomes {
            if &merged.group != self.name() {
                continue;
            }
            self.versions.remove(&merged.id);
            if merged.record_type == RecordType::MEMBERSHIP {
                continue;
            }
            self.emit(Event::RecordChanged {
                group: merged.group,
                change: RecordChange::Expired,
                id: merged.id,
                record_type: merged.record_type,
            });
        }
    }

    // ----- membership ------------------------------------------------------------

    /// Notices an accepted membership record: the local member's own, and an
    /// admin's newer credential for it (`PEER_GROUP_STORE_CREDENTIALS`),
    /// which it adopts and persists.
    pub(super) fn note_membership(&mut self, record: &SignedRecord) {
        self.note_membership_record(record);
        let r = record.record();
        if r.record_type != RecordType::MEMBERSHIP || r.creator != self.state.member {
            return;
        }
        let newer = self
            .own_membership
            .as_ref()
            .is_none_or(|current| record > current);
        if newer {
            self.own_membership = Some(record.clone());
        }
        if r.is_deleted() || r.last_toucher() == &self.state.member {
            return;
        }
        let Ok(chain) = membership_chain(r) else {
            return;
        };
        let props = self.state.properties();
        let (Ok(new), Ok(current)) = (chain.verify(props), self.state.chain.verify(props)) else {
            return;
        };
        if chain == self.state.chain || new.not_before <= current.not_before {
            return;
        }
        self.state.chain = chain;
        self.persist();
    }

    /// Whether the group database holds the local member's membership record
    /// with its current chain (always true for the creator, whose membership
    /// is implied).
    pub(super) fn membership_published(&self) -> bool {
        if self.state.is_creator() {
            return true;
        }
        self.own_membership.as_ref().is_some_and(|r| {
            !r.record().is_deleted()
                && membership_chain(r.record()).ok().as_ref() == Some(&self.state.chain)
        })
    }

    /// Publishes the local member's membership record if the group has not
    /// seen it with the current chain (`optional`: only unless the group
    /// sets `MEMBER_DATA_OPTIONAL`, for the publication after the first copy).
    pub(super) fn ensure_membership_published(
        &mut self,
        optional: bool,
        now: Timestamp,
    ) -> Result<(), Error> {
        if self.membership_published() {
            return Ok(());
        }
        if optional
            && self
                .state
                .properties()
                .flags
                .contains(GroupFlags::MEMBER_DATA_OPTIONAL)
        {
            return Ok(());
        }
        let record = crate::authorize::membership_record(
            self.state.properties(),
            &self.state.chain,
            &self.identity,
            self.own_membership.as_ref().map(|r| r.record()),
            now,
        )?;
        self.write_local(record, now)
    }
}

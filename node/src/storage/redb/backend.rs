//! [`Backend`] for [`RedbStore`]: a batch of writes is one durable transaction.

use peergroup_protocol::{
    Identity, PeerName, RecordId, StoreError,
    session::{GroupState, Version},
};

use super::{Failure, Merger, RawRecords, RedbStore};
use crate::storage::backend::{Applied, Backend, KnownPeer, WriteOp};

impl Backend for RedbStore {
    fn apply(&self, ops: &[WriteOp]) -> Result<Vec<Applied>, StoreError> {
        let result = (|| -> Result<Vec<Applied>, Failure> {
            let txn = self.begin_write()?;
            let mut out = Vec::with_capacity(ops.len());
            for op in ops {
                out.push(match op {
                    WriteOp::Merge(records) => {
                        let mut merger = Merger::new(&txn)?;
                        let mut changes = Vec::with_capacity(records.len());
                        for record in records {
                            changes.push(merger.merge(self, record)?);
                        }
                        Applied::Merged(changes)
                    }
                    WriteOp::SaveGroup(state) => {
                        self.put_group_state_in(&txn, state)?;
                        Applied::Done
                    }
                    WriteOp::ForgetGroup(group) => {
                        self.delete_group_in(&txn, group)?;
                        Applied::Done
                    }
                    WriteOp::SavePeer(known) => {
                        self.put_peer_in(&txn, known)?;
                        Applied::Done
                    }
                    WriteOp::ForgetPeer(group, peer) => {
                        self.remove_peer_in(&txn, group, peer)?;
                        Applied::Done
                    }
                    WriteOp::SaveClockOffset(offset) => {
                        self.put_clock_offset_in(&txn, *offset)?;
                        Applied::Done
                    }
                    WriteOp::SaveIdentity(identity) => {
                        self.put_identity_in(&txn, identity)?;
                        Applied::Done
                    }
                    WriteOp::ForgetIdentity(name) => {
                        self.remove_identity_in(&txn, name)?;
                        Applied::Done
                    }
                    WriteOp::Expire { now, keep } => {
                        Applied::Expired(self.expire_in(&txn, *now, keep)?.0)
                    }
                });
            }
            self.commit(txn)?;
            Ok(out)
        })();
        result.map_err(|f| StoreError::from(f.at(&self.path)))
    }

    fn envelopes_of(
        &self,
        group: &PeerName,
        ids: &[RecordId],
        max_bytes: usize,
    ) -> Result<RawRecords, StoreError> {
        Ok(RedbStore::envelopes_of(self, group, ids, max_bytes)?)
    }

    fn versions(&self, group: &PeerName) -> Result<Vec<(RecordId, Version)>, StoreError> {
        Ok(RedbStore::versions(self, group)?)
    }

    fn identities(&self) -> Result<Vec<Identity>, StoreError> {
        Ok(RedbStore::identities(self)?)
    }

    fn groups(&self) -> Result<Vec<GroupState>, StoreError> {
        Ok(self.group_states()?)
    }

    fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError> {
        Ok(RedbStore::known_peers(self)?)
    }

    fn clock_offset(&self) -> Result<Option<i64>, StoreError> {
        Ok(RedbStore::clock_offset(self)?)
    }
}

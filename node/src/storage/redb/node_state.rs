//! The node's own small state ([`NODE_STATE`]): its peer-time offset, kept
//! so that a node that starts again stamps with the group's time.

use redb::{ReadableDatabase, WriteTransaction};

use super::{
    AccessError, Failure, RedbStore,
    tables::{CLOCK_OFFSET_KEY, NODE_STATE},
};

impl RedbStore {
    /// Stores the peer-time offset inside `txn`.
    pub(super) fn put_clock_offset_in(
        &self,
        txn: &WriteTransaction,
        offset: i64,
    ) -> Result<(), Failure> {
        txn.open_table(NODE_STATE)?
            .insert(CLOCK_OFFSET_KEY, offset.to_be_bytes().as_slice())?;
        Ok(())
    }

    /// The peer-time offset last stored, ms.
    pub fn clock_offset(&self) -> Result<Option<i64>, AccessError> {
        let result = (|| -> Result<Option<i64>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(NODE_STATE)?;
            let Some(value) = table.get(CLOCK_OFFSET_KEY)? else {
                return Ok(None);
            };
            let bytes: [u8; 8] = value
                .value()
                .try_into()
                .map_err(|_| Failure::Corrupt(format!("malformed {CLOCK_OFFSET_KEY} row")))?;
            Ok(Some(i64::from_be_bytes(bytes)))
        })();
        result.map_err(|f| f.at(&self.path))
    }
}

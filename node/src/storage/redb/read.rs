//! Reading the record tables: rows checked against their summaries, pages
//! of raw envelopes, the version index, and the full verification.

use std::ops::Bound;

use peergroup_protocol::{PeerName, RecordId, RecordType, SignedRecord, session::Version};
use redb::{ReadableDatabase, ReadableTable};

use super::{
    AccessError, RedbStore,
    error::Failure,
    tables::{
        RECORD_SUMMARIES, RECORDS, RECORDS_BY_EXPIRY, RECORDS_BY_TYPE, Summary, expiry_key,
        expiry_value, group_prefix, parse_type_tail, record_key, split_group, type_key,
    },
};

impl RedbStore {
    /// Decodes a stored envelope that must be `group`'s `id`, after checking
    /// it against its summary's sha2-256 (see `docs/store.md`, "Reads trust
    /// checked rows"). A missing or different summary is corruption.
    pub(super) fn decode_record(
        &self,
        bytes: &[u8],
        summary: Option<&[u8]>,
        group: &str,
        id: &RecordId,
    ) -> Result<SignedRecord, Failure> {
        let Some(Summary { version, .. }) = summary.and_then(Summary::decode) else {
            return Err(Failure::Corrupt(format!(
                "record {id} of group {group} has no valid summary row"
            )));
        };
        if version.hash != envelope_hash(bytes) {
            return Err(Failure::Corrupt(format!(
                "record {id} of group {group} does not match its checksum"
            )));
        }
        let record = SignedRecord::decode_trusted(bytes)
            .map_err(|e| Failure::Corrupt(format!("record {id} of group {group}: {e}")))?;
        let r = record.record();
        if r.group.as_str() != group || r.id != *id || r.version != version.version {
            return Err(Failure::Corrupt(format!(
                "the row of record {id} in group {group} holds record {} version {} of group {}",
                r.id, r.version, r.group
            )));
        }
        Ok(record)
    }

    /// Decodes a `G || id` key, its envelope and its summary.
    fn decode_row(
        &self,
        key: &[u8],
        bytes: &[u8],
        summary: Option<&[u8]>,
    ) -> Result<SignedRecord, Failure> {
        let (group, id) = parse_record_key(key)?;
        self.decode_record(bytes, summary, group, &id)
    }

    /// The stored copy of a record (see [`ReadStore::get`](peergroup_protocol::ReadStore::get)).
    pub fn get_record(
        &self,
        group: &PeerName,
        id: &RecordId,
    ) -> Result<Option<SignedRecord>, AccessError> {
        let result = (|| -> Result<Option<SignedRecord>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(RECORDS)?;
            let summaries = txn.open_table(RECORD_SUMMARIES)?;
            let key = record_key(group, id);
            let Some(bytes) = table.get(key.as_slice())? else {
                return Ok(None);
            };
            let summary = summaries.get(key.as_slice())?;
            Ok(Some(self.decode_record(
                bytes.value(),
                summary.as_ref().map(|s| s.value()),
                group.as_str(),
                id,
            )?))
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Up to `limit` records of `group` after `after`, in id order (see [`ReadStore::records`](peergroup_protocol::ReadStore::records)).
    pub fn list_records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<SignedRecord>, AccessError> {
        let mut out = Vec::new();
        self.scan(group, record_type, after, limit, |key, bytes, summary| {
            out.push(self.decode_row(key, bytes, summary)?);
            Ok(true)
        })
        .map_err(|f| f.at(&self.path))?;
        Ok(out)
    }

    /// Visits up to `limit` rows of `group` after `after` in id order,
    /// optionally of one type, with their key, envelope and summary, until
    /// `visit` returns false.
    fn scan(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
        after: Option<RecordId>,
        limit: usize,
        mut visit: impl FnMut(&[u8], &[u8], Option<&[u8]>) -> Result<bool, Failure>,
    ) -> Result<(), Failure> {
        if limit == 0 {
            return Ok(());
        }
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let summaries = txn.open_table(RECORD_SUMMARIES)?;
        let start = after.unwrap_or(RecordId::ZERO);
        let last = RecordId([0xff; 16]);
        let lower = |key: Vec<u8>| match after {
            Some(_) => Bound::Excluded(key),
            None => Bound::Included(key),
        };
        match record_type {
            None => {
                let lo = lower(record_key(group, &start));
                let hi = record_key(group, &last);
                let bounds = (as_slice(&lo), Bound::Included(hi.as_slice()));
                // Both tables have the same keys: walk them side by side.
                let mut sums = summaries.range::<&[u8]>(bounds)?;
                for row in records.range::<&[u8]>(bounds)?.take(limit) {
                    let (key, value) = row?;
                    let summary = match sums.next() {
                        Some(s) => {
                            let (skey, svalue) = s?;
                            (skey.value() == key.value()).then_some(svalue)
                        }
                        None => None,
                    };
                    if !visit(
                        key.value(),
                        value.value(),
                        summary.as_ref().map(|s| s.value()),
                    )? {
                        break;
                    }
                }
            }
            Some(t) => {
                let by_type = txn.open_table(RECORDS_BY_TYPE)?;
                let lo = lower(type_key(group, &t, &start));
                let hi = type_key(group, &t, &last);
                let range =
                    by_type.range::<&[u8]>((as_slice(&lo), Bound::Included(hi.as_slice())))?;
                let prefix_len = group_prefix(group).len();
                for row in range.take(limit) {
                    let (key, _) = row?;
                    let Some((_, id)) = key.value().get(prefix_len..).and_then(parse_type_tail)
                    else {
                        return Err(Failure::Corrupt(format!(
                            "malformed type index key {:02x?}",
                            key.value()
                        )));
                    };
                    let row_key = record_key(group, &id);
                    let Some(bytes) = records.get(row_key.as_slice())? else {
                        return Err(Failure::Corrupt(format!(
                            "the type index names record {id} of group {group}, which is missing"
                        )));
                    };
                    let summary = summaries.get(row_key.as_slice())?;
                    if !visit(&row_key, bytes.value(), summary.as_ref().map(|s| s.value()))? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The envelopes of `ids` in `group` that are stored, in request order,
    /// until about `max_bytes` (at least one when any is stored); each is
    /// checked against its summary's checksum, none is decoded. `considered`
    /// says how many ids were looked at (the rest did not fit).
    pub fn envelopes_of(
        &self,
        group: &PeerName,
        ids: &[RecordId],
        max_bytes: usize,
    ) -> Result<RawRecords, AccessError> {
        let result = (|| -> Result<RawRecords, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(RECORDS)?;
            let summaries = txn.open_table(RECORD_SUMMARIES)?;
            let mut out = RawRecords {
                envelopes: Vec::new(),
                considered: 0,
            };
            let mut bytes = 0usize;
            for id in ids {
                if bytes >= max_bytes && !out.envelopes.is_empty() {
                    break;
                }
                out.considered = out.considered.saturating_add(1);
                let key = record_key(group, id);
                let Some(envelope) = table.get(key.as_slice())? else {
                    continue;
                };
                let checked = summaries
                    .get(key.as_slice())?
                    .as_ref()
                    .and_then(|s| Summary::decode(s.value()))
                    .is_some_and(|s| s.version.hash == envelope_hash(envelope.value()));
                if !checked {
                    return Err(Failure::Corrupt(format!(
                        "record {id} of group {group} does not match its checksum"
                    )));
                }
                bytes = bytes.saturating_add(envelope.value().len());
                out.envelopes.push(envelope.value().to_vec());
            }
            Ok(out)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Every record id of `group` with its version and envelope hash, from
    /// the summaries alone (nothing is decoded).
    pub fn versions(&self, group: &PeerName) -> Result<Vec<(RecordId, Version)>, AccessError> {
        let result = (|| -> Result<Vec<(RecordId, Version)>, Failure> {
            let txn = self.db.begin_read()?;
            let summaries = txn.open_table(RECORD_SUMMARIES)?;
            let lo = record_key(group, &RecordId::ZERO);
            let hi = record_key(group, &RecordId([0xff; 16]));
            let mut out = Vec::new();
            for row in summaries.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
                let (key, value) = row?;
                let (_, id) = parse_record_key(key.value())?;
                let Some(summary) = Summary::decode(value.value()) else {
                    return Err(Failure::Corrupt(format!(
                        "malformed summary of record {id} of group {group}"
                    )));
                };
                out.push((id, summary.version));
            }
            Ok(out)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Decodes and fully verifies every stored record (signature included),
    /// and checks that its summary and both indexes hold exactly one matching
    /// entry per record. Returns how many records there are.
    ///
    /// Neither opening nor reading does this (see `docs/store.md`): this is
    /// the full check, for tools and tests.
    pub fn verify_records(&self) -> Result<u64, AccessError> {
        let result = (|| -> Result<u64, Failure> {
            let txn = self.db.begin_read()?;
            let records = txn.open_table(RECORDS)?;
            let summaries = txn.open_table(RECORD_SUMMARIES)?;
            let by_type = txn.open_table(RECORDS_BY_TYPE)?;
            let by_expiry = txn.open_table(RECORDS_BY_EXPIRY)?;
            let mut count = 0u64;
            for row in records.iter()? {
                let (key, value) = row?;
                let (group, id) = parse_record_key(key.value())?;
                let record = SignedRecord::from_bytes(value.value())
                    .map_err(|e| Failure::Corrupt(format!("record {id} of group {group}: {e}")))?;
                let r = record.record();
                if r.group.as_str() != group || r.id != id {
                    return Err(Failure::Corrupt(format!(
                        "the row of record {id} in group {group} holds another record"
                    )));
                }
                let expected = Summary::of(r, envelope_hash(value.value())).encode();
                let summary = summaries.get(key.value())?.map(|v| v.value().to_vec());
                let typed = by_type
                    .get(type_key(&r.group, &r.record_type, &r.id).as_slice())?
                    .map(|v| v.value());
                let expiring = by_expiry
                    .get(expiry_key(r.expires_at.as_millis(), &r.group, &r.id).as_slice())?
                    .map(|v| v.value().to_vec());
                if summary.as_deref() != Some(&expected[..])
                    || typed != Some(r.expires_at.as_millis())
                    || expiring.as_deref()
                        != Some(&expiry_value(&r.record_type, r.is_deleted())[..])
                {
                    return Err(Failure::Corrupt(format!(
                        "the summary or indexes disagree with record {} of group {}",
                        r.id, r.group
                    )));
                }
                count = count.saturating_add(1);
            }
            let (sums, types, expiries) = (
                redb::ReadableTableMetadata::len(&summaries)?,
                redb::ReadableTableMetadata::len(&by_type)?,
                redb::ReadableTableMetadata::len(&by_expiry)?,
            );
            if sums != count || types != count || expiries != count {
                return Err(Failure::Corrupt(format!(
                    "{count} records but {sums} summaries, {types} type and {expiries} expiry index entries"
                )));
            }
            Ok(count)
        })();
        result.map_err(|f| f.at(&self.path))
    }
}

/// Envelopes read for a fetch ([`RedbStore::envelopes_of`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRecords {
    /// The envelopes found, in request order.
    pub envelopes: Vec<Vec<u8>>,
    /// How many of the requested ids were looked at.
    pub considered: usize,
}

/// The sha2-256 of an envelope, as summaries hold it (the protocol's).
pub(super) use peergroup_protocol::envelope_hash;

/// Splits a `G || id` key into the group's text and the id.
fn parse_record_key(key: &[u8]) -> Result<(&str, RecordId), Failure> {
    split_group(key)
        .and_then(|(g, id)| Some((g, RecordId(id.try_into().ok()?))))
        .ok_or_else(|| Failure::Corrupt(format!("malformed record key {key:02x?}")))
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

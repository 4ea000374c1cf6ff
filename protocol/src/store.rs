//! The [`Store`] trait every record database implements, and [`MemoryStore`].
//!
//! A store holds verified [`SignedRecord`]s keyed by (group, record id) and
//! merges incoming copies with the merge order: the maximum wins. It does no
//! signature checks and reads no clock: records are verified before they get
//! here (holding a `SignedRecord` proves it), and `now` is a parameter.

use std::{collections::BTreeMap, fmt};

use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::{
    peer_name::PeerName,
    record::{RecordId, RecordType, SignedRecord},
    time::Timestamp,
};

/// A store failure (not a merge decision: those are [`Change`]s).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, a full disk, a lock).
    #[error("store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored bytes no longer decode or verify.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
}

/// The sha2-256 of a record's envelope bytes: what tells two copies of one
/// record version apart (sessions key their version index and held records
/// by it; the redb store checks stored envelopes against it).
pub fn envelope_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A record version as a store holds it and a session indexes it: enough to
/// detect stale and duplicate copies and to reconcile ([`crate::reconcile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// The record's version number.
    pub version: u32,
    /// The sha2-256 of its envelope ([`envelope_hash`]).
    pub hash: [u8; 32],
    /// Its expiration: reconciliation leaves expired records out.
    pub expires_at: Timestamp,
}

impl Version {
    /// The version of `record` (hashes its envelope).
    pub fn of(record: &SignedRecord) -> Version {
        Version {
            version: record.record().version,
            hash: envelope_hash(record.as_bytes()),
            expires_at: record.record().expires_at,
        }
    }
}

/// What a merge or expiry did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The record was not present and now is.
    Added,
    /// A newer live version replaced the stored one.
    Updated,
    /// A tombstone replaced the stored version (or arrived first).
    Deleted,
    /// The incoming copy lost to (or equals) the stored one; nothing changed.
    Stale {
        /// The copy the store holds and keeps. Two edits of one version can
        /// reach a member in either order, and only the store's merge
        /// decides which it keeps: a session's version index takes this, so
        /// that it names what the store holds and reconciliation still sees
        /// the difference with a member holding the other edit.
        held: Version,
    },
    /// The expiry pass removed the record.
    Expired,
}

impl Change {
    /// Whether the store kept what it had ([`Change::Stale`]).
    pub fn is_stale(&self) -> bool {
        matches!(self, Change::Stale { .. })
    }
}

/// One record's outcome of [`Store::merge`] or [`Store::expire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The record's group.
    pub group: PeerName,
    /// The record's id.
    pub id: RecordId,
    /// The record's type.
    pub record_type: RecordType,
    /// What happened.
    pub change: Change,
}

/// A sha2-256 digest of a group's records: equal digests mean equal databases.
///
/// It hashes, in record-id order, each record's 16-byte id followed by the
/// sha2-256 of its envelope bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

/// The wire form of a [`Digest`] (what `derive` gave it first, kept exactly).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "Digest")]
struct DigestWire([u8; 32]);

/// The wire form on the wire (CBOR); hex text in human-readable formats
/// (the control API's JSON).
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            DigestWire(self.0).serialize(s)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            let mut bytes = [0u8; 32];
            let mut pairs = text.as_bytes().chunks(2);
            let valid = text.len() == 64
                && text.bytes().all(|c| c.is_ascii_hexdigit())
                && bytes.iter_mut().all(|b| {
                    pairs
                        .next()
                        .and_then(|pair| std::str::from_utf8(pair).ok())
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                        .map(|v| *b = v)
                        .is_some()
                });
            if !valid {
                return Err(serde::de::Error::custom("a digest is 64 hex digits"));
            }
            Ok(Digest(bytes))
        } else {
            Ok(Digest(DigestWire::deserialize(d)?.0))
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Folds records (in id order) into a [`Digest`].
#[derive(Debug, Clone, Default)]
pub struct DigestBuilder(Sha256);

impl DigestBuilder {
    /// An empty digest.
    pub fn new() -> DigestBuilder {
        DigestBuilder::default()
    }

    /// Adds the next record; records must come in ascending id order.
    pub fn add(&mut self, record: &SignedRecord) {
        self.0.update(record.record().id.0);
        self.0.update(Sha256::digest(record.as_bytes()));
    }

    /// The digest.
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

/// How many records [`ReadStore::digest`]'s default implementation reads at a time.
const DIGEST_PAGE: usize = 1024;

/// The read side of a record database: what every reader of a store
/// needs, whether it owns the store ([`Store`]) or shares it across threads
/// (the node's storage backend, which extends this trait).
pub trait ReadStore {
    /// The stored copy of a record (live or tombstone).
    fn get(&self, group: &PeerName, id: &RecordId) -> Result<Option<SignedRecord>, StoreError>;

    /// Up to `limit` records of `group` with ids above `after`, in id order,
    /// optionally only those of `record_type`. Tombstones are included.
    fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<SignedRecord>, StoreError>;

    /// The digest of `group`'s records.
    fn digest(&self, group: &PeerName) -> Result<Digest, StoreError> {
        let mut digest = DigestBuilder::new();
        let mut after = None;
        loop {
            let page = self.records(group, None, after, DIGEST_PAGE)?;
            for record in &page {
                digest.add(record);
            }
            match page.last() {
                Some(last) if page.len() == DIGEST_PAGE => after = Some(last.record().id),
                _ => return Ok(digest.finish()),
            }
        }
    }
}

/// A record database: one per node, holding every group's records. Its
/// reads are [`ReadStore`]'s.
pub trait Store: ReadStore {
    /// Merges a batch atomically (all or nothing): each incoming record replaces
    /// the stored copy of its (group, id) if it is greater in the merge order.
    /// Returns one [`Merged`] per input, in input order.
    fn merge(&mut self, batch: Vec<SignedRecord>) -> Result<Vec<Merged>, StoreError>;

    /// Removes every record (and tombstone) that expired at `now`, in every
    /// group. Reports [`Change::Expired`] for the live records it removed;
    /// tombstones go silently (their deletion was reported when they arrived).
    fn expire(&mut self, now: Timestamp) -> Result<Vec<Merged>, StoreError>;

    /// Removes all of `group`'s records; returns how many there were.
    fn remove_group(&mut self, group: &PeerName) -> Result<u64, StoreError>;
}

/// Decides one merge: what happens when `incoming` meets `stored`.
///
/// Both backends call this, so they agree by construction.
pub fn merge_decision(stored: Option<&SignedRecord>, incoming: &SignedRecord) -> Change {
    let deleted = incoming.record().is_deleted();
    match stored {
        None if deleted => Change::Deleted,
        None => Change::Added,
        Some(current) if incoming <= current => Change::Stale {
            held: Version::of(current),
        },
        Some(_) if deleted => Change::Deleted,
        Some(_) => Change::Updated,
    }
}

fn merged(record: &SignedRecord, change: Change) -> Merged {
    let r = record.record();
    Merged {
        group: r.group.clone(),
        id: r.id,
        record_type: r.record_type,
        change,
    }
}

/// An in-memory [`Store`], for tests and for nodes that keep nothing on disk.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    records: BTreeMap<(PeerName, RecordId), SignedRecord>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many records (and tombstones) the store holds, over all groups.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl ReadStore for MemoryStore {
    fn get(&self, group: &PeerName, id: &RecordId) -> Result<Option<SignedRecord>, StoreError> {
        Ok(self.records.get(&(group.clone(), *id)).cloned())
    }

    fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<SignedRecord>, StoreError> {
        let start = (group.clone(), after.unwrap_or(RecordId::ZERO));
        Ok(self
            .records
            .range(start..)
            .take_while(|((g, _), _)| g == group)
            .filter(|((_, id), _)| after.is_none_or(|a| *id > a))
            .filter(|(_, r)| record_type.is_none_or(|t| r.record().record_type == t))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }
}

impl Store for MemoryStore {
    fn merge(&mut self, batch: Vec<SignedRecord>) -> Result<Vec<Merged>, StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for incoming in batch {
            let key = (incoming.record().group.clone(), incoming.record().id);
            let change = merge_decision(self.records.get(&key), &incoming);
            outcomes.push(merged(&incoming, change));
            if !change.is_stale() {
                self.records.insert(key, incoming);
            }
        }
        Ok(outcomes)
    }

    fn expire(&mut self, now: Timestamp) -> Result<Vec<Merged>, StoreError> {
        self.expire_except(now, &[])
    }

    fn remove_group(&mut self, group: &PeerName) -> Result<u64, StoreError> {
        let before = self.records.len();
        self.records.retain(|(g, _), _| g != group);
        Ok(before.saturating_sub(self.records.len()) as u64)
    }
}

impl MemoryStore {
    /// [`Store::expire`], leaving the records of the groups in `keep` (groups
    /// with `PEER_DEFER_EXPIRATION` that are offline).
    pub fn expire_except(
        &mut self,
        now: Timestamp,
        keep: &[PeerName],
    ) -> Result<Vec<Merged>, StoreError> {
        let mut expired = Vec::new();
        self.records.retain(|(group, _), record| {
            if !record.record().is_expired(now) || keep.contains(group) {
                return true;
            }
            if !record.record().is_deleted() {
                expired.push(merged(record, Change::Expired));
            }
            false
        });
        Ok(expired)
    }
}

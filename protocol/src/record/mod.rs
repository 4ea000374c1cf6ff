//! Records: the rows of a group's replicated database (`PEER_RECORD`).
//!
//! A [`Record`] is signed by its last toucher (the modifier if it was ever
//! updated, else its creator) and travels as a [`SignedRecord`]. The functions
//! here implement the rules of `PeerGroupAddRecord`, `PeerGroupUpdateRecord`
//! and `PeerGroupDeleteRecord`; who may call them is the membership model's
//! business. The merge rule is [`SignedRecord`]'s [`Ord`]: merge keeps the maximum.

mod attributes;
mod id;

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

pub(crate) use self::id::MEMBERSHIP_NONCE;
pub use self::{
    attributes::{
        Attribute, AttributeValue, Attributes, MAX_ATTRIBUTE_NAME, MAX_ATTRIBUTE_STRING,
        MAX_ATTRIBUTES, RESERVED_ATTRIBUTES,
    },
    id::{RecordFlags, RecordId, RecordType},
};
use crate::{
    error::Error,
    peer_name::PeerName,
    signed::{Kind, Payload, Signed, cmp_signatures},
    time::Timestamp,
};

/// A record signed by its last toucher.
pub type SignedRecord = Signed<Record>;

/// The record structure version. It is the Rust counterpart of
/// `PEER_RECORD.dwSize` (Win32 versions structures by their size): present in
/// every record and never changed by an update.
pub const RECORD_FORMAT: u8 = 1;

/// The largest record data, in bytes (256 KiB). Larger data is refused with
/// [`Error::MaxRecordSizeExceeded`] (`PEER_E_MAX_RECORD_SIZE_EXCEEDED`).
pub const MAX_RECORD_DATA: usize = 256 * 1024;

/// What an application sets to add a record (the members of `PEER_RECORD`
/// that `PeerGroupAddRecord` reads; the infrastructure sets the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// The record's type; required, and not a reserved type.
    pub record_type: RecordType,
    /// When the record expires; required, later than now.
    pub expires_at: Timestamp,
    /// [`RecordFlags::AUTOREFRESH`] or none; [`RecordFlags::DELETED`] is refused.
    pub flags: RecordFlags,
    /// Optional attributes.
    pub attributes: Attributes,
    /// Optional data, at most [`MAX_RECORD_DATA`] bytes.
    #[serde(with = "crate::bytes_text")]
    pub data: Vec<u8>,
}

impl NewRecord {
    /// A record of `record_type` expiring at `expires_at`, without attributes or data.
    pub fn new(record_type: RecordType, expires_at: Timestamp) -> NewRecord {
        NewRecord {
            record_type,
            expires_at,
            flags: RecordFlags::NONE,
            attributes: Attributes::new(),
            data: Vec::new(),
        }
    }

    /// Sets the data.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> NewRecord {
        self.data = data.into();
        self
    }

    /// Sets the attributes.
    pub fn with_attributes(mut self, attributes: Attributes) -> NewRecord {
        self.attributes = attributes;
        self
    }
}

/// A record of a group's database (`PEER_RECORD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The structure version ([`RECORD_FORMAT`]; Win32's `dwSize`).
    #[serde(rename = "f")]
    pub format: u8,
    /// The group this record belongs to.
    #[serde(rename = "g")]
    pub group: PeerName,
    /// The record's id.
    #[serde(rename = "i")]
    pub id: RecordId,
    /// The record's type.
    #[serde(rename = "t")]
    pub record_type: RecordType,
    /// 1 at creation, +1 on every update and on delete.
    #[serde(rename = "n")]
    pub version: u32,
    /// Record flags.
    #[serde(rename = "l")]
    pub flags: RecordFlags,
    /// The identity that created the record.
    #[serde(rename = "c")]
    pub creator: PeerName,
    /// The identity that last updated (or deleted) it; `None` until the first update.
    #[serde(rename = "m")]
    pub modified_by: Option<PeerName>,
    /// Attributes.
    #[serde(rename = "a")]
    pub attributes: Attributes,
    /// Creation time.
    #[serde(rename = "tc")]
    pub created_at: Timestamp,
    /// Expiration time; the record (or tombstone) is dropped by every replica after it.
    #[serde(rename = "te")]
    pub expires_at: Timestamp,
    /// Time of the last modification (the creation time until the first update).
    #[serde(rename = "tm")]
    pub modified_at: Timestamp,
    /// Opaque application data.
    #[serde(rename = "d", with = "crate::bytes_text")]
    pub data: Vec<u8>,
}

impl Record {
    /// `PeerGroupAddRecord`: a version-1 record made from `new` by `creator`.
    ///
    /// The id is [`RecordId::new`]`(creator, nonce)`, with `nonce` from the
    /// caller's RNG. Fails with `NotAuthorized` for a reserved type (only the
    /// infrastructure publishes those: see [`Record::new_reserved`]).
    pub fn new(
        new: NewRecord,
        nonce: [u8; 8],
        group: &PeerName,
        creator: &PeerName,
        now: Timestamp,
    ) -> Result<Record, Error> {
        if new.record_type.is_reserved() {
            return Err(Error::NotAuthorized(format!(
                "record type {} is reserved for the infrastructure",
                new.record_type
            )));
        }
        if nonce == MEMBERSHIP_NONCE {
            return Err(Error::InvalidArg(
                "this record id is reserved for the creator's membership record".into(),
            ));
        }
        Record::new_reserved(new, RecordId::new(creator, nonce), group, creator, now)
    }

    /// Like [`Record::new`] but takes the id and allows reserved types; for the
    /// infrastructure's own records (membership records, for instance). The id
    /// must still belong to `creator` ([`RecordId::is_created_by`]).
    pub fn new_reserved(
        new: NewRecord,
        id: RecordId,
        group: &PeerName,
        creator: &PeerName,
        now: Timestamp,
    ) -> Result<Record, Error> {
        if new.flags.contains(RecordFlags::DELETED) {
            return Err(Error::InvalidArg(
                "the deleted flag is set by delete, not by add".into(),
            ));
        }
        require_future_expiration(new.expires_at, now)?;
        let record = Record {
            format: RECORD_FORMAT,
            group: group.clone(),
            id,
            record_type: new.record_type,
            version: 1,
            flags: new.flags,
            creator: creator.clone(),
            modified_by: None,
            attributes: new.attributes,
            created_at: now,
            expires_at: new.expires_at,
            modified_at: now,
            data: new.data,
        };
        record.check()?;
        Ok(record)
    }

    /// `PeerGroupUpdateRecord`: the next version of `self` with the changes in
    /// `proposed`, made by `modifier` at `now`.
    ///
    /// * may change: `attributes`, `expires_at` (never earlier), `data`;
    /// * must be present and unchanged: `format` (`dwSize`), `id`, `record_type`, `flags`
    ///   (a change is `InvalidArg`);
    /// * ignored: `version`, `creator`, `modified_by`, `created_at`, `modified_at`
    ///   (and `group`, which is the handle's, not the record's to choose).
    ///
    /// A deleted record is `RecordNotFound`.
    pub fn update(
        &self,
        proposed: &Record,
        modifier: &PeerName,
        now: Timestamp,
    ) -> Result<Record, Error> {
        self.require_live()?;
        if proposed.format != self.format {
            return Err(Error::InvalidArg(
                "the record format (dwSize) must be present and unchanged".into(),
            ));
        }
        if proposed.id != self.id {
            return Err(Error::InvalidArg(
                "the record id must be present and unchanged".into(),
            ));
        }
        if proposed.record_type != self.record_type {
            return Err(Error::InvalidArg(
                "the record type must be present and unchanged".into(),
            ));
        }
        if proposed.flags != self.flags {
            return Err(Error::InvalidArg(
                "the record flags must be present and unchanged".into(),
            ));
        }
        if proposed.expires_at < self.expires_at {
            return Err(Error::InvalidRecordExpiration(format!(
                "the expiration may not be shortened (from {} to {})",
                self.expires_at, proposed.expires_at
            )));
        }
        require_future_expiration(proposed.expires_at, now)?;
        let record = Record {
            version: self.next_version()?,
            modified_by: Some(modifier.clone()),
            modified_at: now,
            attributes: proposed.attributes.clone(),
            expires_at: proposed.expires_at,
            data: proposed.data.clone(),
            ..self.clone()
        };
        record.check()?;
        Ok(record)
    }

    /// `PeerGroupDeleteRecord`: the tombstone of `self`: next version, deleted
    /// flag set, data and attributes emptied, expiration kept. A tombstone
    /// replicates like any update and lives until its expiration, so an older
    /// copy can never come back. Deleting a deleted record is `RecordNotFound`.
    pub fn delete(&self, modifier: &PeerName, now: Timestamp) -> Result<Record, Error> {
        self.require_live()?;
        let record = Record {
            version: self.next_version()?,
            flags: self.flags.with(RecordFlags::DELETED),
            modified_by: Some(modifier.clone()),
            modified_at: now,
            attributes: Attributes::new(),
            data: Vec::new(),
            ..self.clone()
        };
        record.check()?;
        Ok(record)
    }

    /// Whether this is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.flags.contains(RecordFlags::DELETED)
    }

    /// The identity whose key signs this version: the modifier, else the creator.
    pub fn last_toucher(&self) -> &PeerName {
        self.modified_by.as_ref().unwrap_or(&self.creator)
    }

    /// Whether the record has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    /// An attribute by name, including the reserved ones the infrastructure
    /// fills in (`peercreatorid`, `peerrecordid`, ...), so that they are searchable.
    pub fn attribute(&self, name: &str) -> Option<AttributeValue> {
        let reserved = |n: &str| name.eq_ignore_ascii_case(n);
        if reserved("peercreatorid") {
            Some(AttributeValue::String(self.creator.to_string()))
        } else if reserved("peerlastmodifiedby") {
            Some(AttributeValue::String(
                self.modified_by
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ))
        } else if reserved("peerlastmodificationtime") {
            Some(AttributeValue::Date(self.modified_at))
        } else if reserved("peercreationtime") {
            Some(AttributeValue::Date(self.created_at))
        } else if reserved("peerrecordid") {
            Some(AttributeValue::String(self.id.to_string()))
        } else if reserved("peerrecordtype") {
            Some(AttributeValue::String(self.record_type.to_string()))
        } else {
            self.attributes.get(name).cloned()
        }
    }

    fn require_live(&self) -> Result<(), Error> {
        if self.is_deleted() {
            Err(Error::RecordNotFound)
        } else {
            Ok(())
        }
    }

    fn next_version(&self) -> Result<u32, Error> {
        self.version
            .checked_add(1)
            .ok_or_else(|| Error::InvalidRecord("the record version is exhausted".into()))
    }
}

fn require_future_expiration(expires_at: Timestamp, now: Timestamp) -> Result<(), Error> {
    if expires_at <= now {
        return Err(Error::InvalidRecordExpiration(format!(
            "the expiration {expires_at} is not later than now ({now})"
        )));
    }
    Ok(())
}

impl Payload for Record {
    const KIND: Kind = Kind::Record;

    /// Structural rules every replica enforces on every record it receives.
    fn check(&self) -> Result<(), Error> {
        if self.format != RECORD_FORMAT {
            return Err(Error::UnsupportedVersion(format!(
                "record format {} (this build speaks {RECORD_FORMAT})",
                self.format
            )));
        }
        self.group.require_secure("group")?;
        self.creator.require_secure("creator")?;
        if let Some(modifier) = &self.modified_by {
            modifier.require_secure("modifier")?;
        }
        if !self.id.is_created_by(&self.creator) {
            return Err(Error::InvalidRecord(format!(
                "record id {} does not belong to creator {}",
                self.id, self.creator
            )));
        }
        if self.version == 0 {
            return Err(Error::InvalidRecord("versions start at 1".into()));
        }
        if (self.version == 1) != self.modified_by.is_none() {
            return Err(Error::InvalidRecord(
                "a record has a modifier exactly when its version is above 1".into(),
            ));
        }
        if self.flags.0 & !RecordFlags::KNOWN != 0 {
            return Err(Error::InvalidRecord(format!(
                "unknown record flags {:#x}",
                self.flags.0
            )));
        }
        if self.is_deleted() && (!self.data.is_empty() || !self.attributes.is_empty()) {
            return Err(Error::InvalidRecord(
                "a deleted record carries no data or attributes".into(),
            ));
        }
        if self.data.len() > MAX_RECORD_DATA {
            return Err(Error::MaxRecordSizeExceeded {
                size: self.data.len() as u64,
                max: MAX_RECORD_DATA as u64,
            });
        }
        if self.expires_at <= self.created_at {
            return Err(Error::InvalidRecordExpiration(
                "a record must expire after its creation".into(),
            ));
        }
        self.attributes.validate()
    }

    fn signer(&self) -> &PeerName {
        self.last_toucher()
    }
}

impl Signed<Record> {
    /// The record.
    pub fn record(&self) -> &Record {
        self.payload()
    }
}

/// The merge order (design.md section 4, Windows [MS-PPGRH] 3.1.7.32), used
/// to pick between two copies of the same record; merge keeps the maximum:
///
/// 1. higher version;
/// 2. updated (has a modifier) beats never updated;
/// 3. higher last-modifier peer name (byte-wise on the UTF-8 text);
/// 4. later modification time;
/// 5. larger signature, then higher signature bytes;
/// 6. higher envelope bytes: two distinct envelopes never compare equal, so
///    the order is total and agrees with `Eq` ("already present" = identical).
impl Ord for Signed<Record> {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.record(), other.record());
        a.version
            .cmp(&b.version)
            .then_with(|| a.modified_by.is_some().cmp(&b.modified_by.is_some()))
            .then_with(|| a.modified_by.cmp(&b.modified_by))
            .then_with(|| a.modified_at.cmp(&b.modified_at))
            .then_with(|| cmp_signatures(self.signature(), other.signature()))
            .then_with(|| self.as_bytes().cmp(other.as_bytes()))
    }
}

impl PartialOrd for Signed<Record> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

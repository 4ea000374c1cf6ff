//! Records: the rows of a group's replicated database (`PEER_RECORD`).
//!
//! A [`Record`] is signed by its last toucher (the modifier if it was ever
//! updated, else its creator) and travels as a [`SignedRecord`]. The functions
//! here implement the rules of `PeerGroupAddRecord`, `PeerGroupUpdateRecord`
//! and `PeerGroupDeleteRecord`; who may call them is the membership model's
//! business. The merge rule is [`SignedRecord`]'s [`Ord`]: merge keeps the maximum.

use std::{cmp::Ordering, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// The most attributes a record may carry.
pub const MAX_ATTRIBUTES: usize = 64;

/// The longest attribute name, in ASCII characters.
pub const MAX_ATTRIBUTE_NAME: usize = 64;

/// The longest string attribute value, in bytes of UTF-8.
pub const MAX_ATTRIBUTE_STRING: usize = 1024;

/// Attribute names the infrastructure fills in: searchable, never settable
/// (compared ASCII case-insensitively).
pub const RESERVED_ATTRIBUTES: [&str; 6] = [
    "peerlastmodifiedby",
    "peercreatorid",
    "peerlastmodificationtime",
    "peerrecordid",
    "peerrecordtype",
    "peercreationtime",
];

macro_rules! id16 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// The id with all bits zero.
            pub const ZERO: $name = $name([0; 16]);

            /// From a `u128`, big-endian.
            pub const fn from_u128(v: u128) -> $name {
                $name(v.to_be_bytes())
            }

            /// Parses the GUID-style text of `Display`
            /// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex, dashes optional).
            pub fn parse(text: &str) -> Result<$name, Error> {
                let hex: String = text.chars().filter(|c| *c != '-').collect();
                if hex.len() != 32 {
                    return Err(Error::InvalidArg(format!(
                        "{} {text:?} is not 32 hex digits", stringify!($name)
                    )));
                }
                u128::from_str_radix(&hex, 16).map($name::from_u128).map_err(|_| {
                    Error::InvalidArg(format!("{} {text:?} is not hex", stringify!($name)))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let v = u128::from_be_bytes(self.0);
                write!(
                    f,
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    v >> 96,
                    (v >> 80) & 0xffff,
                    (v >> 64) & 0xffff,
                    (v >> 48) & 0xffff,
                    v & 0xffff_ffff_ffff
                )
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde_bytes::Serialize::serialize(&self.0, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name(serde_bytes::Deserialize::deserialize(d)?))
            }
        }
    };
}

id16!(
    /// A record's 16-byte id (a GUID in Windows), unique within its group.
    RecordId
);
id16!(
    /// A record's 16-byte type (a GUID in Windows), chosen by the application.
    RecordType
);

/// Domain tag of the creator tag in a record id.
const RECORD_ID_DOMAIN: &[u8] = b"peergroup/record-id/v1";

/// The nonce of a member's membership record id (see [`RecordId::membership`]).
const MEMBERSHIP_NONCE: [u8; 8] = *b"MEMBERSH";

impl RecordId {
    /// The id of a record created by `creator`: an 8-byte tag derived from the
    /// creator's peer name, then the caller's 8 random bytes.
    ///
    /// Binding ids to creators makes the creator of an id immutable by
    /// construction: a version that names another creator for the same id
    /// fails the structural check everywhere, in any arrival order, so nobody
    /// can take over someone else's record by rewriting its creator field.
    pub fn new(creator: &PeerName, nonce: [u8; 8]) -> RecordId {
        let mut id = [0u8; 16];
        let (tag, rest) = id.split_at_mut(8);
        tag.copy_from_slice(&creator_tag(creator));
        rest.copy_from_slice(&nonce);
        RecordId(id)
    }

    /// The id of `subject`'s membership record: one per member, so that a
    /// renewed credential replaces the previous one through the merge order.
    pub fn membership(subject: &PeerName) -> RecordId {
        RecordId::new(subject, MEMBERSHIP_NONCE)
    }

    /// Whether this id was made for records created by `creator`.
    pub fn is_created_by(&self, creator: &PeerName) -> bool {
        self.0.get(..8) == Some(creator_tag(creator).as_slice())
    }

    /// The 8 bytes after the creator tag.
    pub fn nonce(&self) -> [u8; 8] {
        let mut nonce = [0u8; 8];
        if let Some(rest) = self.0.get(8..) {
            nonce.copy_from_slice(rest);
        }
        nonce
    }
}

fn creator_tag(creator: &PeerName) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(RECORD_ID_DOMAIN);
    hasher.update(creator.as_str().as_bytes());
    let digest = hasher.finalize();
    let mut tag = [0u8; 8];
    if let Some(head) = digest.get(..8) {
        tag.copy_from_slice(head);
    }
    tag
}

impl RecordType {
    /// Windows Grouping's Membership record type; peergroup publishes credential chains under it.
    pub const MEMBERSHIP: RecordType = RecordType::from_u128(0x0100_0000 << 96);
    /// Windows Grouping's Security Properties record type.
    pub const SECURITY_PROPERTIES: RecordType = RecordType::from_u128(0x0200_0000 << 96);
    /// Windows Graphing's Presence record type.
    pub const PRESENCE: RecordType = RecordType::from_u128(0x0000_0400 << 96);

    /// Whether the type is reserved for the infrastructure: every type whose last
    /// twelve bytes are zero (this covers all of Windows' reserved graph and group
    /// types and the nil type). Applications may not publish reserved types.
    pub fn is_reserved(&self) -> bool {
        self.0
            .get(4..)
            .is_some_and(|rest| rest.iter().all(|b| *b == 0))
    }
}

/// Record flags (`PEER_RECORD_FLAGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordFlags(pub u32);

impl RecordFlags {
    /// No flags.
    pub const NONE: RecordFlags = RecordFlags(0);
    /// `PEER_RECORD_FLAG_AUTOREFRESH`: the publisher re-publishes before expiry.
    pub const AUTOREFRESH: RecordFlags = RecordFlags(0x1);
    /// `PEER_RECORD_FLAG_DELETED`: a tombstone.
    pub const DELETED: RecordFlags = RecordFlags(0x2);
    const KNOWN: u32 = 0x3;

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: RecordFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` set.
    pub const fn with(self, other: RecordFlags) -> RecordFlags {
        RecordFlags(self.0 | other.0)
    }
}

/// A typed attribute value (`int`, `date`, `string` in Windows' attribute schema).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AttributeValue {
    /// A signed integer.
    #[serde(rename = "i")]
    Int(i64),
    /// A point in time.
    #[serde(rename = "d")]
    Date(Timestamp),
    /// A string of at most [`MAX_ATTRIBUTE_STRING`] bytes.
    #[serde(rename = "s")]
    String(String),
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// ASCII alphanumeric, 1 to [`MAX_ATTRIBUTE_NAME`] characters, case-sensitive.
    #[serde(rename = "n")]
    pub name: String,
    /// The value.
    #[serde(rename = "v")]
    pub value: AttributeValue,
}

/// A record's attributes, kept sorted by name with no name twice (so that
/// equal attribute sets encode identically).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(Vec<Attribute>);

impl Attributes {
    /// No attributes.
    pub const fn new() -> Attributes {
        Attributes(Vec::new())
    }

    /// Validated attributes from any order; a name given twice is an error.
    pub fn from_pairs<I: IntoIterator<Item = (String, AttributeValue)>>(
        items: I,
    ) -> Result<Attributes, Error> {
        let mut list: Vec<Attribute> = items
            .into_iter()
            .map(|(name, value)| Attribute { name, value })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let attributes = Attributes(list);
        attributes.validate()?;
        Ok(attributes)
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: AttributeValue) -> Result<(), Error> {
        validate_attribute(name, &value)?;
        match self.0.binary_search_by(|a| a.name.as_str().cmp(name)) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.value = value;
                }
            }
            Err(i) => {
                if self.0.len() >= MAX_ATTRIBUTES {
                    return Err(Error::TooManyAttributes {
                        count: self.0.len().saturating_add(1) as u64,
                        max: MAX_ATTRIBUTES as u64,
                    });
                }
                self.0.insert(
                    i,
                    Attribute {
                        name: name.to_owned(),
                        value,
                    },
                );
            }
        }
        Ok(())
    }

    /// The value of the attribute `name`, if set.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0
            .binary_search_by(|a| a.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|a| &a.value)
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Attribute> {
        self.0.iter()
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn validate(&self) -> Result<(), Error> {
        if self.0.len() > MAX_ATTRIBUTES {
            return Err(Error::TooManyAttributes {
                count: self.0.len() as u64,
                max: MAX_ATTRIBUTES as u64,
            });
        }
        let mut previous: Option<&str> = None;
        for attribute in &self.0 {
            validate_attribute(&attribute.name, &attribute.value)?;
            if let Some(prev) = previous {
                match prev.cmp(attribute.name.as_str()) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(Error::InvalidAttributes(format!(
                            "attribute {:?} is given twice",
                            attribute.name
                        )));
                    }
                    Ordering::Greater => {
                        return Err(Error::InvalidAttributes(
                            "attributes are not sorted by name".into(),
                        ));
                    }
                }
            }
            previous = Some(&attribute.name);
        }
        Ok(())
    }
}

fn validate_attribute(name: &str, value: &AttributeValue) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME {
        return Err(Error::InvalidAttributes(format!(
            "attribute names are 1 to {MAX_ATTRIBUTE_NAME} characters; {name:?} is not"
        )));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::InvalidAttributes(format!(
            "attribute names are alphanumeric; {name:?} is not"
        )));
    }
    if RESERVED_ATTRIBUTES
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(Error::InvalidAttributes(format!(
            "{name:?} is reserved: the infrastructure sets it"
        )));
    }
    if let AttributeValue::String(s) = value
        && s.len() > MAX_ATTRIBUTE_STRING
    {
        return Err(Error::InvalidAttributes(format!(
            "attribute {name:?} is {} bytes, more than the limit of {MAX_ATTRIBUTE_STRING}",
            s.len()
        )));
    }
    Ok(())
}

/// What an application sets to add a record (the members of `PEER_RECORD`
/// that `PeerGroupAddRecord` reads; the infrastructure sets the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(with = "serde_bytes")]
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
    #[serde(rename = "d", with = "serde_bytes")]
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

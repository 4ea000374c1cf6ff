//! Record ids, types and flags: 16-byte identifiers and `PEER_RECORD_FLAGS`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{error::Error, peer_name::PeerName};

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

        // 16 bytes on the wire (CBOR); the text form in human-readable
        // formats (the control API's JSON).
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    serde_bytes::Serialize::serialize(&self.0, s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = String::deserialize(d)?;
                    $name::parse(&text).map_err(serde::de::Error::custom)
                } else {
                    Ok($name(serde_bytes::Deserialize::deserialize(d)?))
                }
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
pub(crate) const MEMBERSHIP_NONCE: [u8; 8] = *b"MEMBERSH";

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
    pub(crate) const KNOWN: u32 = 0x3;

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: RecordFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` set.
    pub const fn with(self, other: RecordFlags) -> RecordFlags {
        RecordFlags(self.0 | other.0)
    }
}

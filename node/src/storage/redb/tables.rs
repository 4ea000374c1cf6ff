//! The redb tables (schema version 2) and their key and value encodings.
//!
//! Every table name but [`META`]'s carries the schema version that introduced
//! its layout (`records-1`); a migration that changes a layout creates a table
//! under a new name and drops the old one, so an old build never misreads a new
//! layout. All integers are big-endian, so that byte order is numeric order.
//!
//! `G` below is a group peer name as it sorts in keys: `u16 BE length || UTF-8`.
//! The length prefix keeps a group's keys contiguous (no name is a prefix of
//! another name's encoding) and is at most 2 bytes because a peer name is at
//! most 46 + 1 + 149 × 4 bytes.

use peergroup_protocol::{
    CredentialChain, GroupKey, PasswordSecret, PeerName, RecordId, RecordType, SignedProperties,
    session::GroupState, session::Version,
};
use redb::TableDefinition;

/// `meta`: the store's own metadata. Its name and types never change: it is
/// how an open learns which layout the rest of the file has.
///
/// | key | value |
/// | --- | --- |
/// | `"schema-version"` | `u64`: the last migration applied ([`super::migrations::SCHEMA_VERSION`]) |
pub(super) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// The [`META`] key holding the schema version.
pub(super) const SCHEMA_VERSION_KEY: &str = "schema-version";

/// `records-1`: every group's records and tombstones.
///
/// key: `G || record id (16)`; value: the signed record envelope, verbatim as
/// it was verified (`Signed::as_bytes`). Reads check it against its
/// [`RECORD_SUMMARIES`] hash and decode it without verifying the signature again.
pub(super) const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records-1");

/// `records-by-type-1`: index by record type, one entry per row of [`RECORDS`].
///
/// key: `G || record type (16) || record id (16)`; value: the record's
/// `expires_at` (`u64`, ms), so that removing a group finds its
/// [`RECORDS_BY_EXPIRY`] entries without decoding envelopes.
pub(super) const RECORDS_BY_TYPE: TableDefinition<'_, &[u8], u64> =
    TableDefinition::new("records-by-type-1");

/// `records-by-expiry-1`: index by expiration time, one entry per row of [`RECORDS`].
///
/// key: `expires_at (u64 BE, ms) || G || record id (16)`; value (17 bytes):
/// `record type (16) || deleted (u8: 1 for a tombstone, else 0)`, so that an
/// expiry pass reports what it removed without decoding envelopes.
pub(super) const RECORDS_BY_EXPIRY: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("records-by-expiry-1");

/// `identities-1`: the node's local identities, secret keys included.
///
/// key: the identity's peer name (UTF-8); value:
/// `secret seed (32) || u16 BE len(classifier) || classifier (UTF-8) || friendly name (UTF-8)`.
/// The peer name is derived again from the seed and classifier on load and
/// must equal the key.
pub(super) const IDENTITIES: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("identities-1");

/// `record-summaries-2`: one row per row of [`RECORDS`], same key.
///
/// value ([`SUMMARY_LEN`] bytes, see [`Summary::encode`]): `version (u32 BE)
/// || sha2-256 of the envelope (32) || flags (u8: bit 0 set for a tombstone)
/// || record type (16) || expires_at (u64 BE, ms)`. It gives what merging,
/// stale detection and reconciliation need without decoding envelopes, and
/// the checksum every read compares the envelope with.
pub(super) const RECORD_SUMMARIES: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("record-summaries-2");

/// `groups-2`: the groups this node belongs to, each in one row, so that the
/// properties, the member's credential and the readiness change together.
///
/// key: the group peer name (UTF-8); value, format 2: `format (u8, 2) ||
/// flags (u8: bit 0 ready) || u16 BE len(member) || member identity peer name
/// (UTF-8) || u32 BE len(properties) || signed properties envelope || u32 BE
/// len(chain) || credential chain (CBOR array of credential envelopes, empty
/// for the creator) || u8 count || count × (epoch (u32 BE) || data key (32))
/// || u8 has password (0 or 1) || [salt (16) || password secret (32)]`.
/// Format 1 (no data keys; the chain runs to the end) is still read.
/// Everything is re-verified on load; the member is the creator only if the
/// properties name it so, never because the chain is empty. The data keys
/// and the password secret are secrets, like the identities' keys in the
/// same file (mode 0600).
pub(super) const GROUP_STATES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("groups-2");

/// `known-peers-3`: the members this node was an authenticated neighbour
/// of, per group, and where they listen, so that a node that starts again
/// redials them without mDNS or Kademlia.
///
/// key: `G || libp2p peer id (multihash bytes)`; value: `last seen (u64 BE,
/// ms since the epoch) || u8 count || count × (u16 BE len || multiaddr
/// bytes)`. Not secret; at most 64 rows per group (the node forgets the
/// oldest).
pub(super) const KNOWN_PEERS: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("known-peers-3");

/// `node-3`: the node's own small state, one row per item.
///
/// | key | value |
/// | --- | --- |
/// | `"peer-clock-offset"` | `i64 BE`: peer time minus the node's wall clock, ms, as it last stood |
pub(super) const NODE_STATE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("node-3");

/// The [`NODE_STATE`] key of the peer-time offset.
pub(super) const CLOCK_OFFSET_KEY: &str = "peer-clock-offset";

/// Schema 1 (read by migration 2 only, then dropped): `groups-1`, the groups
/// this node belongs to.
///
/// key: the group peer name (UTF-8); value:
/// `u16 BE len(member) || member identity peer name (UTF-8) || signed properties envelope`.
/// The envelope is re-verified on load and must name the key's group.
pub(super) const GROUPS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("groups-1");

/// Schema 1 (read by migration 2 only, then dropped): `credentials-1`, the
/// node's own credentials, one per (group, local identity).
///
/// key: `G || identity peer name (UTF-8)`; value: opaque bytes of at most
/// [`super::MAX_CREDENTIAL_SIZE`]. The membership layer defines and verifies
/// their content.
pub(super) const CREDENTIALS: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("credentials-1");

/// The length of a [`RECORD_SUMMARIES`] value.
pub(super) const SUMMARY_LEN: usize = 61;

/// A [`RECORD_SUMMARIES`] row: what the store knows of a record without
/// decoding its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Summary {
    /// The version number and the envelope's sha2-256.
    pub(super) version: Version,
    /// Whether it is a tombstone.
    pub(super) deleted: bool,
    /// The record's type (where its type index entry is).
    pub(super) record_type: RecordType,
    /// Its expiration, ms (where its expiry index entry is).
    pub(super) expires_at: u64,
}

impl Summary {
    /// The summary of a record and its envelope hash.
    pub(super) fn of(record: &peergroup_protocol::Record, hash: [u8; 32]) -> Summary {
        Summary {
            version: Version {
                version: record.version,
                hash,
                expires_at: record.expires_at,
            },
            deleted: record.is_deleted(),
            record_type: record.record_type,
            expires_at: record.expires_at.as_millis(),
        }
    }

    /// Encodes the row: `version (u32 BE) || sha2-256 (32) || flags (u8: bit
    /// 0 tombstone) || record type (16) || expires_at (u64 BE, ms)`.
    pub(super) fn encode(&self) -> [u8; SUMMARY_LEN] {
        let mut value = [0; SUMMARY_LEN];
        let (version, rest) = value.split_at_mut(4);
        version.copy_from_slice(&self.version.version.to_be_bytes());
        let (hash, rest) = rest.split_at_mut(32);
        hash.copy_from_slice(&self.version.hash);
        let (flags, rest) = rest.split_at_mut(1);
        flags.copy_from_slice(&[u8::from(self.deleted)]);
        let (record_type, expires_at) = rest.split_at_mut(16);
        record_type.copy_from_slice(&self.record_type.0);
        expires_at.copy_from_slice(&self.expires_at.to_be_bytes());
        value
    }

    /// Decodes a row; `None` if it is malformed.
    pub(super) fn decode(value: &[u8]) -> Option<Summary> {
        let value: &[u8; SUMMARY_LEN] = value.try_into().ok()?;
        let (version, rest) = value.split_first_chunk::<4>()?;
        let (hash, rest) = rest.split_first_chunk::<32>()?;
        let (flags, rest) = rest.split_first_chunk::<1>()?;
        let (record_type, rest) = rest.split_first_chunk::<16>()?;
        let expires_at = rest.first_chunk::<8>()?;
        Some(Summary {
            version: Version {
                version: u32::from_be_bytes(*version),
                hash: *hash,
                expires_at: peergroup_protocol::Timestamp::from_millis(u64::from_be_bytes(
                    *expires_at,
                )),
            },
            deleted: flags[0] & 1 != 0,
            record_type: RecordType(*record_type),
            expires_at: u64::from_be_bytes(*expires_at),
        })
    }
}

/// The format byte of the [`GROUP_STATES`] values this build writes.
const GROUP_STATE_FORMAT: u8 = 2;

/// Encodes a [`GROUP_STATES`] value.
pub(super) fn encode_group_state(state: &GroupState) -> Result<Vec<u8>, peergroup_protocol::Error> {
    let member = state.member.as_str().as_bytes();
    let properties = state.properties.as_bytes();
    let chain = state.chain.to_bytes()?;
    let mut value = Vec::with_capacity(
        16usize
            .saturating_add(member.len())
            .saturating_add(properties.len())
            .saturating_add(chain.len())
            .saturating_add(state.keys.len().saturating_mul(36)),
    );
    value.push(GROUP_STATE_FORMAT);
    value.push(u8::from(state.ready));
    // A peer name is at most 643 bytes; an envelope at most 512 KiB.
    value.extend_from_slice(
        &u16::try_from(member.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    value.extend_from_slice(member);
    value.extend_from_slice(
        &u32::try_from(properties.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    value.extend_from_slice(properties);
    value.extend_from_slice(&u32::try_from(chain.len()).unwrap_or(u32::MAX).to_be_bytes());
    value.extend_from_slice(&chain);
    // A member holds one key per rotation; 255 is far more than it keeps.
    let keys = state.keys.iter().take(usize::from(u8::MAX));
    value.push(u8::try_from(keys.len()).unwrap_or(u8::MAX));
    for key in keys {
        value.extend_from_slice(&key.epoch().to_be_bytes());
        value.extend_from_slice(key.secret_bytes().as_slice());
    }
    match &state.password {
        Some(secret) => {
            value.push(1);
            value.extend_from_slice(&secret.salt());
            value.extend_from_slice(secret.secret_bytes().as_slice());
        }
        None => value.push(0),
    }
    Ok(value)
}

/// Decodes a [`GROUP_STATES`] value, re-verifying the properties and the
/// chain and checking that they make a coherent state.
pub(super) fn decode_group_state(value: &[u8]) -> Result<GroupState, String> {
    let (&[format, flags], rest) = value.split_first_chunk::<2>().ok_or("truncated header")?;
    if format != 1 && format != GROUP_STATE_FORMAT {
        return Err(format!("unknown row format {format}"));
    }
    let (len, rest) = rest.split_first_chunk::<2>().ok_or("truncated member")?;
    let (member, rest) = rest
        .split_at_checked(usize::from(u16::from_be_bytes(*len)))
        .ok_or("truncated member")?;
    let member = std::str::from_utf8(member)
        .ok()
        .and_then(|m| PeerName::parse(m).ok())
        .ok_or("malformed member name")?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or("truncated properties")?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| "oversized properties")?;
    let (properties, rest) = rest.split_at_checked(len).ok_or("truncated properties")?;
    let properties = SignedProperties::from_bytes(properties).map_err(|e| e.to_string())?;
    let (chain, keys, password) = if format == 1 {
        (rest, Vec::new(), None)
    } else {
        let (len, rest) = rest.split_first_chunk::<4>().ok_or("truncated chain")?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| "oversized chain")?;
        let (chain, rest) = rest.split_at_checked(len).ok_or("truncated chain")?;
        let (&[count], mut rest) = rest.split_first_chunk::<1>().ok_or("truncated keys")?;
        let mut keys = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let (epoch, after) = rest.split_first_chunk::<4>().ok_or("truncated key")?;
            let (key, after) = after.split_first_chunk::<32>().ok_or("truncated key")?;
            keys.push(GroupKey::new(u32::from_be_bytes(*epoch), *key));
            rest = after;
        }
        let (&[has_password], rest) = rest.split_first_chunk::<1>().ok_or("truncated password")?;
        let (password, rest) = match has_password {
            0 => (None, rest),
            1 => {
                let (salt, rest) = rest.split_first_chunk::<16>().ok_or("truncated password")?;
                let (w, rest) = rest.split_first_chunk::<32>().ok_or("truncated password")?;
                (Some(PasswordSecret::from_parts(*salt, *w)), rest)
            }
            other => return Err(format!("unknown password flag {other}")),
        };
        if !rest.is_empty() {
            return Err("trailing bytes after the password secret".into());
        }
        (chain, keys, password)
    };
    let chain = CredentialChain::from_bytes(chain).map_err(|e| e.to_string())?;
    let state = GroupState {
        properties,
        member,
        chain,
        ready: flags & 1 != 0,
        keys,
        password,
    };
    state.check().map_err(|e| e.to_string())?;
    Ok(state)
}

/// The length of an expiry index value.
pub(super) const EXPIRY_VALUE_LEN: usize = 17;

/// Appends `G`, the sortable encoding of a group name.
fn push_group(key: &mut Vec<u8>, group: &PeerName) {
    let name = group.as_str().as_bytes();
    // A valid peer name is at most 643 bytes; saturate rather than wrap anyway.
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(name);
}

/// `G` alone: the prefix of every key of `group` in the group-first tables.
pub(super) fn group_prefix(group: &PeerName) -> Vec<u8> {
    let mut key = Vec::with_capacity(group.as_str().len().saturating_add(2));
    push_group(&mut key, group);
    key
}

/// A [`RECORDS`] key.
pub(super) fn record_key(group: &PeerName, id: &RecordId) -> Vec<u8> {
    let mut key = group_prefix(group);
    key.extend_from_slice(&id.0);
    key
}

/// A [`RECORDS_BY_TYPE`] key.
pub(super) fn type_key(group: &PeerName, record_type: &RecordType, id: &RecordId) -> Vec<u8> {
    let mut key = group_prefix(group);
    key.extend_from_slice(&record_type.0);
    key.extend_from_slice(&id.0);
    key
}

/// A [`RECORDS_BY_EXPIRY`] key.
pub(super) fn expiry_key(expires_at: u64, group: &PeerName, id: &RecordId) -> Vec<u8> {
    let mut key = Vec::with_capacity(group.as_str().len().saturating_add(26));
    key.extend_from_slice(&expires_at.to_be_bytes());
    push_group(&mut key, group);
    key.extend_from_slice(&id.0);
    key
}

/// A [`RECORDS_BY_EXPIRY`] value.
pub(super) fn expiry_value(record_type: &RecordType, deleted: bool) -> [u8; EXPIRY_VALUE_LEN] {
    let mut value = [0; EXPIRY_VALUE_LEN];
    let (ty, flag) = value.split_at_mut(16);
    ty.copy_from_slice(&record_type.0);
    if let Some(byte) = flag.first_mut() {
        *byte = u8::from(deleted);
    }
    value
}

/// A [`CREDENTIALS`] key.
pub(super) fn credential_key(group: &PeerName, identity: &PeerName) -> Vec<u8> {
    let mut key = group_prefix(group);
    key.extend_from_slice(identity.as_str().as_bytes());
    key
}

/// Splits `G || rest` into the group name text and `rest`.
pub(super) fn split_group(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (name, rest) = rest.split_at_checked(len)?;
    Some((std::str::from_utf8(name).ok()?, rest))
}

/// Parses a [`RECORDS_BY_EXPIRY`] key into (expires_at, `G || id`, group text, id).
pub(super) fn parse_expiry_key(key: &[u8]) -> Option<(u64, &[u8], &str, RecordId)> {
    let (expires_at, record_key) = key.split_first_chunk::<8>()?;
    let (group, id) = split_group(record_key)?;
    let id: [u8; 16] = id.try_into().ok()?;
    Some((
        u64::from_be_bytes(*expires_at),
        record_key,
        group,
        RecordId(id),
    ))
}

/// Parses a [`RECORDS_BY_TYPE`] key's tail (after `G`) into (type, id).
pub(super) fn parse_type_tail(tail: &[u8]) -> Option<(RecordType, RecordId)> {
    let (record_type, id) = tail.split_first_chunk::<16>()?;
    let id: [u8; 16] = id.try_into().ok()?;
    Some((RecordType(*record_type), RecordId(id)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use peergroup_protocol::{
        RecordId,
        testing::{group_of, identity},
    };
    fn rid(n: u64) -> RecordId {
        RecordId::from_u128(u128::from(n))
    }

    use super::*;

    #[test]
    fn a_group_whose_name_extends_another_has_disjoint_keys() {
        let alice = identity(1, "alice");
        let (short, long) = (group_of(&alice, "a"), group_of(&alice, "ab"));
        // Without the length prefix, "…a" || id could sort inside "…ab"'s range.
        assert!(!record_key(&short, &rid(1)).starts_with(&group_prefix(&long)));
        assert!(!record_key(&long, &rid(1)).starts_with(&group_prefix(&short)));
    }

    #[test]
    fn keys_parse_back() {
        let alice = identity(1, "alice");
        let group = group_of(&alice, "chess");
        let key = expiry_key(42, &group, &rid(9));
        let (expires_at, row, name, id) = parse_expiry_key(&key).unwrap();
        assert_eq!((expires_at, name, id), (42, group.as_str(), rid(9)));
        assert_eq!(row, record_key(&group, &rid(9)).as_slice());
        let ty = RecordType::from_u128(7);
        let key = type_key(&group, &ty, &rid(3));
        let (name, tail) = split_group(&key).unwrap();
        assert_eq!(name, group.as_str());
        assert_eq!(parse_type_tail(tail), Some((ty, rid(3))));
        assert_eq!(split_group(&[0, 9, b'x']), None, "a length past the end");
        assert_eq!(parse_expiry_key(&[1, 2, 3]), None);
        // Expiry keys sort by time first.
        assert!(expiry_key(1, &group, &rid(99)) < expiry_key(2, &group, &rid(0)));
        assert_eq!(expiry_value(&ty, true)[16], 1);
    }
}

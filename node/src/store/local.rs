//! What the node keeps about itself: identities (with their secret keys), the
//! groups it belongs to, and its own credentials.

use peergroup_protocol::{Identity, Keypair, MAX_ENVELOPE_SIZE, PeerName, SignedProperties};
use redb::{ReadableDatabase, ReadableTable};
use zeroize::Zeroizing;

use super::{
    AccessError, RedbStore,
    error::Failure,
    tables::{CREDENTIALS, GROUPS, IDENTITIES, credential_key, group_prefix},
};

/// The largest credential the store keeps, in bytes (the largest envelope:
/// 512 KiB). The membership layer bounds its chains far below this; the store
/// only refuses to become a dumping ground.
pub const MAX_CREDENTIAL_SIZE: usize = MAX_ENVELOPE_SIZE;

/// A group this node belongs to: the creator-signed properties, verbatim, and
/// which local identity is the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// The group's signed properties (re-verified on every load).
    pub properties: SignedProperties,
    /// The local identity that is a member of the group.
    pub member: PeerName,
}

impl GroupEntry {
    /// The group's peer name.
    pub fn group(&self) -> &PeerName {
        &self.properties.properties().group_peer_name
    }
}

/// Encodes an identity row: `seed (32) || u16 BE len(classifier) || classifier || friendly name`.
/// The buffer is wiped when dropped.
fn encode_identity(identity: &Identity) -> Zeroizing<Vec<u8>> {
    let classifier = identity.peer_name().classifier().as_bytes();
    let friendly = identity.friendly_name().as_bytes();
    let mut value = Zeroizing::new(Vec::with_capacity(
        34usize
            .saturating_add(classifier.len())
            .saturating_add(friendly.len()),
    ));
    value.extend_from_slice(identity.keypair().secret_bytes().as_slice());
    // A classifier is at most 149 characters, 596 bytes.
    let len = u16::try_from(classifier.len()).unwrap_or(u16::MAX);
    value.extend_from_slice(&len.to_be_bytes());
    value.extend_from_slice(classifier);
    value.extend_from_slice(friendly);
    value
}

/// Decodes an identity row; `None` if it is malformed.
fn decode_identity(value: &[u8]) -> Option<Result<Identity, peergroup_protocol::Error>> {
    let (seed, rest) = value.split_first_chunk::<32>()?;
    let seed = Zeroizing::new(*seed);
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let (classifier, friendly) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let classifier = std::str::from_utf8(classifier).ok()?;
    let friendly = std::str::from_utf8(friendly).ok()?;
    Some(Identity::new(
        Keypair::from_secret_bytes(&seed),
        classifier,
        friendly,
    ))
}

/// Encodes a group row: `u16 BE len(member) || member || properties envelope`.
fn encode_group(properties: &SignedProperties, member: &PeerName) -> Vec<u8> {
    let member = member.as_str().as_bytes();
    let envelope = properties.as_bytes();
    let mut value = Vec::with_capacity(
        2usize
            .saturating_add(member.len())
            .saturating_add(envelope.len()),
    );
    // A peer name is at most 643 bytes.
    let len = u16::try_from(member.len()).unwrap_or(u16::MAX);
    value.extend_from_slice(&len.to_be_bytes());
    value.extend_from_slice(member);
    value.extend_from_slice(envelope);
    value
}

impl RedbStore {
    /// Stores a local identity, its secret key included (replacing one of the
    /// same peer name). The file is created with mode 0600 for this reason.
    pub fn put_identity(&mut self, identity: &Identity) -> Result<(), AccessError> {
        let result = (|| -> Result<(), Failure> {
            let value = encode_identity(identity);
            let txn = self.begin_write()?;
            txn.open_table(IDENTITIES)?
                .insert(identity.peer_name().as_str(), value.as_slice())?;
            self.commit(txn)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// The local identity named `peer_name`, rebuilt from its stored secret key.
    pub fn identity(&self, peer_name: &PeerName) -> Result<Option<Identity>, AccessError> {
        let result = (|| -> Result<Option<Identity>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(IDENTITIES)?;
            let Some(value) = table.get(peer_name.as_str())? else {
                return Ok(None);
            };
            self.identity_row(peer_name.as_str(), value.value())
                .map(Some)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Every local identity, in peer name order.
    pub fn identities(&self) -> Result<Vec<Identity>, AccessError> {
        let result = (|| -> Result<Vec<Identity>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(IDENTITIES)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                out.push(self.identity_row(key.value(), value.value())?);
            }
            Ok(out)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Removes a local identity (and its secret key); returns whether it existed.
    pub fn remove_identity(&mut self, peer_name: &PeerName) -> Result<bool, AccessError> {
        let result = (|| -> Result<bool, Failure> {
            let txn = self.begin_write()?;
            let existed = txn
                .open_table(IDENTITIES)?
                .remove(peer_name.as_str())?
                .is_some();
            self.commit(txn)?;
            Ok(existed)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    fn identity_row(&self, key: &str, value: &[u8]) -> Result<Identity, Failure> {
        // The message never shows the row: it holds a secret key.
        let identity = match decode_identity(value) {
            Some(Ok(identity)) => identity,
            Some(Err(error)) => {
                return Err(Failure::Corrupt(format!("identity {key}: {error}")));
            }
            None => return Err(Failure::Corrupt(format!("identity {key}: malformed row"))),
        };
        if identity.peer_name().as_str() != key {
            return Err(Failure::Corrupt(format!(
                "the row of identity {key} holds the key of {}",
                identity.peer_name()
            )));
        }
        Ok(identity)
    }

    /// Stores a group's signed properties and the local identity that is its
    /// member (replacing what was stored for the group).
    pub fn put_group(
        &mut self,
        properties: &SignedProperties,
        member: &PeerName,
    ) -> Result<(), AccessError> {
        let result = (|| -> Result<(), Failure> {
            let group = &properties.properties().group_peer_name;
            let value = encode_group(properties, member);
            let txn = self.begin_write()?;
            txn.open_table(GROUPS)?
                .insert(group.as_str(), value.as_slice())?;
            self.commit(txn)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// The stored entry of `group`.
    pub fn group(&self, group: &PeerName) -> Result<Option<GroupEntry>, AccessError> {
        let result = (|| -> Result<Option<GroupEntry>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(GROUPS)?;
            let Some(value) = table.get(group.as_str())? else {
                return Ok(None);
            };
            self.group_row(group.as_str(), value.value()).map(Some)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Every stored group, in group name order.
    pub fn groups(&self) -> Result<Vec<GroupEntry>, AccessError> {
        let result = (|| -> Result<Vec<GroupEntry>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(GROUPS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                out.push(self.group_row(key.value(), value.value())?);
            }
            Ok(out)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Deletes everything about `group` in one transaction: its entry, the
    /// node's credentials for it and all its records. Returns whether the
    /// group had an entry.
    pub fn delete_group(&mut self, group: &PeerName) -> Result<bool, AccessError> {
        let result = (|| -> Result<bool, Failure> {
            let txn = self.begin_write()?;
            let existed = txn.open_table(GROUPS)?.remove(group.as_str())?.is_some();
            {
                let mut credentials = txn.open_table(CREDENTIALS)?;
                let prefix = group_prefix(group);
                let mut keys = Vec::new();
                for row in credentials.range(prefix.as_slice()..)? {
                    let (key, _) = row?;
                    if !key.value().starts_with(&prefix) {
                        break;
                    }
                    keys.push(key.value().to_vec());
                }
                for key in keys {
                    credentials.remove(key.as_slice())?;
                }
            }
            self.remove_group_in(&txn, group)?;
            self.commit(txn)?;
            Ok(existed)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    fn group_row(&self, key: &str, value: &[u8]) -> Result<GroupEntry, Failure> {
        let malformed = || Failure::Corrupt(format!("group {key}: malformed row"));
        let (len, rest) = value.split_first_chunk::<2>().ok_or_else(malformed)?;
        let (member, envelope) = rest
            .split_at_checked(usize::from(u16::from_be_bytes(*len)))
            .ok_or_else(malformed)?;
        let member = std::str::from_utf8(member)
            .ok()
            .and_then(|m| PeerName::parse(m).ok())
            .ok_or_else(malformed)?;
        let properties = SignedProperties::from_bytes(envelope)
            .map_err(|error| Failure::Corrupt(format!("group {key}: {error}")))?;
        let entry = GroupEntry { properties, member };
        if entry.group().as_str() != key {
            return Err(Failure::Corrupt(format!(
                "the row of group {key} holds the properties of {}",
                entry.group()
            )));
        }
        Ok(entry)
    }

    /// Stores the node's credential for `identity` in `group`: opaque bytes of
    /// at most [`MAX_CREDENTIAL_SIZE`], which the membership layer defines.
    pub fn put_credential(
        &mut self,
        group: &PeerName,
        identity: &PeerName,
        credential: &[u8],
    ) -> Result<(), AccessError> {
        if credential.len() > MAX_CREDENTIAL_SIZE {
            return Err(AccessError::TooLarge {
                what: "a credential",
                size: credential.len() as u64,
                max: MAX_CREDENTIAL_SIZE as u64,
            });
        }
        let key = credential_key(group, identity);
        let result = (|| -> Result<(), Failure> {
            let txn = self.begin_write()?;
            txn.open_table(CREDENTIALS)?
                .insert(key.as_slice(), credential)?;
            self.commit(txn)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// The node's credential for `identity` in `group`, as stored.
    pub fn credential(
        &self,
        group: &PeerName,
        identity: &PeerName,
    ) -> Result<Option<Vec<u8>>, AccessError> {
        let result = (|| -> Result<Option<Vec<u8>>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(CREDENTIALS)?;
            let key = credential_key(group, identity);
            let value = table.get(key.as_slice())?;
            match value {
                Some(v) if v.value().len() > MAX_CREDENTIAL_SIZE => Err(Failure::Corrupt(format!(
                    "the credential of {identity} in group {group} is {} bytes, over the limit",
                    v.value().len()
                ))),
                Some(v) => Ok(Some(v.value().to_vec())),
                None => Ok(None),
            }
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Removes the node's credential for `identity` in `group`; returns whether it existed.
    pub fn remove_credential(
        &mut self,
        group: &PeerName,
        identity: &PeerName,
    ) -> Result<bool, AccessError> {
        let result = (|| -> Result<bool, Failure> {
            let key = credential_key(group, identity);
            let txn = self.begin_write()?;
            let existed = txn
                .open_table(CREDENTIALS)?
                .remove(key.as_slice())?
                .is_some();
            self.commit(txn)?;
            Ok(existed)
        })();
        result.map_err(|f| f.at(&self.path))
    }
}

//! What the node keeps about itself: identities (with their secret keys) and
//! the state of the groups it belongs to.

use peergroup_protocol::{Identity, Keypair, PeerName, session::GroupState};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use zeroize::Zeroizing;

use super::{
    AccessError, RedbStore,
    error::Failure,
    tables::{GROUP_STATES, IDENTITIES, decode_group_state, encode_group_state},
};

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

impl RedbStore {
    /// Stores a local identity, its secret key included (replacing one of the
    /// same peer name). The file is created with mode 0600 for this reason.
    pub fn put_identity(&self, identity: &Identity) -> Result<(), AccessError> {
        let result = (|| -> Result<(), Failure> {
            let txn = self.begin_write()?;
            self.put_identity_in(&txn, identity)?;
            self.commit(txn)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// [`RedbStore::put_identity`] inside `txn`.
    pub(super) fn put_identity_in(
        &self,
        txn: &WriteTransaction,
        identity: &Identity,
    ) -> Result<(), Failure> {
        let value = encode_identity(identity);
        txn.open_table(IDENTITIES)?
            .insert(identity.peer_name().as_str(), value.as_slice())?;
        Ok(())
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
    pub fn remove_identity(&self, peer_name: &PeerName) -> Result<bool, AccessError> {
        let result = (|| -> Result<bool, Failure> {
            let txn = self.begin_write()?;
            let existed = self.remove_identity_in(&txn, peer_name)?;
            self.commit(txn)?;
            Ok(existed)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// [`RedbStore::remove_identity`] inside `txn`.
    pub(super) fn remove_identity_in(
        &self,
        txn: &WriteTransaction,
        peer_name: &PeerName,
    ) -> Result<bool, Failure> {
        Ok(txn
            .open_table(IDENTITIES)?
            .remove(peer_name.as_str())?
            .is_some())
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

    /// Stores a group's state (properties, member, credential chain,
    /// readiness) in one row, replacing what was stored for the group.
    pub fn put_group_state(&self, state: &GroupState) -> Result<(), AccessError> {
        let result = (|| -> Result<(), Failure> {
            let txn = self.begin_write()?;
            self.put_group_state_in(&txn, state)?;
            self.commit(txn)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// [`RedbStore::put_group_state`] inside `txn`.
    pub(super) fn put_group_state_in(
        &self,
        txn: &WriteTransaction,
        state: &GroupState,
    ) -> Result<(), Failure> {
        // Never store a state that would not load: a non-creator without
        // its credential, say (it would be read back as corrupt).
        state
            .check()
            .map_err(|e| Failure::Refused(format!("group {}: {e}", state.group())))?;
        let value = encode_group_state(state)
            .map_err(|e| Failure::Refused(format!("group {}: {e}", state.group())))?;
        txn.open_table(GROUP_STATES)?
            .insert(state.group().as_str(), value.as_slice())?;
        Ok(())
    }

    /// The stored state of `group`.
    pub fn group_state(&self, group: &PeerName) -> Result<Option<GroupState>, AccessError> {
        let result = (|| -> Result<Option<GroupState>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(GROUP_STATES)?;
            let Some(value) = table.get(group.as_str())? else {
                return Ok(None);
            };
            group_row(group.as_str(), value.value()).map(Some)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Every stored group state, in group name order.
    pub fn group_states(&self) -> Result<Vec<GroupState>, AccessError> {
        let result = (|| -> Result<Vec<GroupState>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(GROUP_STATES)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                out.push(group_row(key.value(), value.value())?);
            }
            Ok(out)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Deletes everything about `group` in one transaction: its state, all
    /// its records and the members it remembers. Returns whether the group had a state.
    pub fn delete_group(&self, group: &PeerName) -> Result<bool, AccessError> {
        let result = (|| -> Result<bool, Failure> {
            let txn = self.begin_write()?;
            let existed = self.delete_group_in(&txn, group)?;
            self.commit(txn)?;
            Ok(existed)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// [`RedbStore::delete_group`] inside `txn`.
    pub(super) fn delete_group_in(
        &self,
        txn: &WriteTransaction,
        group: &PeerName,
    ) -> Result<bool, Failure> {
        let existed = txn
            .open_table(GROUP_STATES)?
            .remove(group.as_str())?
            .is_some();
        self.remove_group_in(txn, group)?;
        self.remove_group_peers_in(txn, group)?;
        Ok(existed)
    }
}

/// Decodes a [`GROUP_STATES`] row and checks that it is `key`'s.
fn group_row(key: &str, value: &[u8]) -> Result<GroupState, Failure> {
    let state = decode_group_state(value)
        .map_err(|reason| Failure::Corrupt(format!("group {key}: {reason}")))?;
    if state.group().as_str() != key {
        return Err(Failure::Corrupt(format!(
            "the row of group {key} holds the state of {}",
            state.group()
        )));
    }
    Ok(state)
}

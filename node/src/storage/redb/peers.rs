//! The members a node was connected to in each group, and where they listen
//! ([`KNOWN_PEERS`]): what a node that starts again redials first.

use libp2p::{Multiaddr, PeerId};
use peergroup_protocol::{PeerName, Timestamp};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{
    AccessError, Failure, RedbStore,
    tables::{KNOWN_PEERS, group_prefix},
};
use crate::storage::backend::KnownPeer;

/// The most addresses a row keeps (the first ones given).
const MAX_ADDRESSES: usize = 16;

impl RedbStore {
    /// [`KNOWN_PEERS`]: stores `known` inside `txn`, replacing the row of its
    /// group and peer.
    pub(super) fn put_peer_in(
        &self,
        txn: &WriteTransaction,
        known: &KnownPeer,
    ) -> Result<(), Failure> {
        let key = peer_key(&known.group, &known.peer);
        let value = encode_peer(known);
        txn.open_table(KNOWN_PEERS)?
            .insert(key.as_slice(), value.as_slice())?;
        Ok(())
    }

    /// Removes the row of `peer` in `group` inside `txn`.
    pub(super) fn remove_peer_in(
        &self,
        txn: &WriteTransaction,
        group: &PeerName,
        peer: &PeerId,
    ) -> Result<(), Failure> {
        txn.open_table(KNOWN_PEERS)?
            .remove(peer_key(group, peer).as_slice())?;
        Ok(())
    }

    /// Removes every row of `group` inside `txn`.
    pub(super) fn remove_group_peers_in(
        &self,
        txn: &WriteTransaction,
        group: &PeerName,
    ) -> Result<(), Failure> {
        let prefix = group_prefix(group);
        let mut table = txn.open_table(KNOWN_PEERS)?;
        let keys: Vec<Vec<u8>> = table
            .range::<&[u8]>(prefix.as_slice()..)?
            .map(|row| row.map(|(k, _)| k.value().to_vec()))
            .take_while(|k| k.as_ref().is_ok_and(|k| k.starts_with(&prefix)))
            .collect::<Result<_, _>>()?;
        for key in keys {
            table.remove(key.as_slice())?;
        }
        Ok(())
    }

    /// Every remembered member, in (group, peer) order.
    pub fn known_peers(&self) -> Result<Vec<KnownPeer>, AccessError> {
        let result = (|| -> Result<Vec<KnownPeer>, Failure> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(KNOWN_PEERS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                out.push(decode_peer(key.value(), value.value()).ok_or_else(|| {
                    Failure::Corrupt(format!("malformed known peer row {:02x?}", key.value()))
                })?);
            }
            Ok(out)
        })();
        result.map_err(|f| f.at(&self.path))
    }
}

/// `G || peer id (multihash bytes)`.
fn peer_key(group: &PeerName, peer: &PeerId) -> Vec<u8> {
    let mut key = group_prefix(group);
    key.extend_from_slice(&peer.to_bytes());
    key
}

/// `seen (u64 BE, ms) || u8 count || count × (u16 BE len || multiaddr bytes)`.
fn encode_peer(known: &KnownPeer) -> Vec<u8> {
    let mut value = known.seen.as_millis().to_be_bytes().to_vec();
    let addresses: Vec<Vec<u8>> = known
        .addresses
        .iter()
        .map(|a| a.to_vec())
        .filter(|a| a.len() <= usize::from(u16::MAX))
        .take(MAX_ADDRESSES)
        .collect();
    value.push(u8::try_from(addresses.len()).unwrap_or(u8::MAX));
    for address in addresses {
        let len = u16::try_from(address.len()).unwrap_or(u16::MAX);
        value.extend_from_slice(&len.to_be_bytes());
        value.extend_from_slice(&address);
    }
    value
}

fn decode_peer(key: &[u8], value: &[u8]) -> Option<KnownPeer> {
    let (len, rest) = key.split_first_chunk::<2>()?;
    let (group, peer) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let group = PeerName::parse(std::str::from_utf8(group).ok()?).ok()?;
    let peer = PeerId::from_bytes(peer).ok()?;
    let (seen, rest) = value.split_first_chunk::<8>()?;
    let (count, mut rest) = rest.split_first()?;
    let mut addresses = Vec::with_capacity(usize::from(*count));
    for _ in 0..*count {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let (address, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        addresses.push(Multiaddr::try_from(address.to_vec()).ok()?);
        rest = tail;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(KnownPeer {
        group,
        peer,
        addresses,
        seen: Timestamp::from_millis(u64::from_be_bytes(*seen)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_row_round_trips_and_damaged_rows_are_refused() {
        use peergroup_protocol::testing::{group_of, identity};
        let group = group_of(&identity(1, "alice"), "g");
        let known = KnownPeer {
            group: group.clone(),
            peer: PeerId::random(),
            addresses: vec![
                "/ip4/127.0.0.1/tcp/4001".parse().unwrap(),
                "/ip6/::1/tcp/4001".parse().unwrap(),
            ],
            seen: Timestamp::from_millis(1_700_000_000_000),
        };
        let key = peer_key(&group, &known.peer);
        let value = encode_peer(&known);
        assert_eq!(decode_peer(&key, &value), Some(known));
        for cut in 0..value.len() {
            assert_eq!(decode_peer(&key, &value[..cut]), None, "cut at {cut}");
        }
        let mut longer = value.clone();
        longer.push(0);
        assert_eq!(decode_peer(&key, &longer), None);
        assert_eq!(decode_peer(&key[..key.len() - 1], &value), None);
    }
}

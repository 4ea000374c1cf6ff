//! Discovery: the global cloud (Kademlia provider records under a key
//! derived from the group name) and the link-local cloud (mDNS), the
//! bootstrap peers, and an address book of what other behaviours learn
//! (`FromSwarm::NewExternalAddrOfPeer`), so that an application that brings
//! its own discovery and switches ours off still connects.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use libp2p::{Multiaddr, PeerId, kad, multiaddr::Protocol};
use peergroup_protocol::PeerName;
use sha2::{Digest as _, Sha256};

use crate::{config::BehaviourConfig, storage::KnownPeer};

/// The most peers the address book remembers (oldest forgotten first).
const ADDRESS_BOOK_PEERS: usize = 1024;

/// The most addresses remembered per peer.
const ADDRESSES_PER_PEER: usize = 8;

/// The Kademlia provider key of a group: sha2-256 of
/// `"peergroup/provider/v1" || group peer name`.
pub fn provider_key(group: &PeerName) -> kad::RecordKey {
    let mut h = Sha256::new();
    h.update(b"peergroup/provider/v1");
    h.update(group.as_str().as_bytes());
    kad::RecordKey::new(&h.finalize().as_slice())
}

/// How long a Kademlia provider record lives on the DHT nodes that store it
/// (given to Kademlia as `provider_record_ttl`).
pub(crate) const PROVIDER_TTL: Duration = Duration::from_secs(3600);

/// How often Kademlia announces the groups a member provides again
/// (`provider_publication_interval`), well inside [`PROVIDER_TTL`].
pub(crate) const PROVIDER_REANNOUNCE: Duration = Duration::from_secs(20 * 60);

/// The first wait before a lost bootstrap node is redialed; it doubles up
/// to [`MAX_BOOTSTRAP_REDIAL`].
pub(crate) const BOOTSTRAP_REDIAL: Duration = Duration::from_secs(2);

/// The longest wait between redials of a lost bootstrap node.
pub(crate) const MAX_BOOTSTRAP_REDIAL: Duration = Duration::from_secs(60);

/// The most former neighbours remembered per group.
const MEMBERS_PER_GROUP: usize = 64;

/// The discovery state: bootstrap peers, the address book, and who to
/// redial when a group has lost its neighbours.
#[derive(Debug)]
pub(crate) struct Discovery {
    pub(crate) bootstrap: Vec<(PeerId, Multiaddr)>,
    pub(crate) started: bool,
    pub(crate) addresses: HashMap<PeerId, Vec<Multiaddr>>,
    pub(crate) order: VecDeque<PeerId>,
    /// Peers that were authenticated neighbours of each group, latest last
    /// (kept in the store too: a node that starts again redials them).
    pub(crate) members: HashMap<PeerName, VecDeque<PeerId>>,
    /// The addresses last stored for each (group, member), so that only a
    /// change is written.
    pub(crate) saved: HashMap<(PeerName, PeerId), Vec<Multiaddr>>,
    /// Peers found on the link by mDNS (still in the address book).
    pub(crate) link_local: HashSet<PeerId>,
    /// Bootstrap nodes that were connected and are not: when to redial
    /// each, and the wait after that.
    pub(crate) lost_bootstrap: HashMap<PeerId, (std::time::Instant, Duration)>,
}

impl Discovery {
    pub(crate) fn new(config: &BehaviourConfig) -> Discovery {
        Discovery {
            bootstrap: config
                .bootstrap
                .iter()
                .filter_map(|addr| match addr.iter().last() {
                    Some(Protocol::P2p(peer)) => Some((peer, addr.clone())),
                    _ => None,
                })
                .collect(),
            started: false,
            addresses: HashMap::new(),
            order: VecDeque::new(),
            members: HashMap::new(),
            saved: HashMap::new(),
            link_local: HashSet::new(),
            lost_bootstrap: HashMap::new(),
        }
    }

    /// Takes back the members the store remembers (at start), latest last.
    pub(crate) fn restore(&mut self, mut known: Vec<KnownPeer>) {
        known.sort_by_key(|k| k.seen);
        for KnownPeer {
            group,
            peer,
            addresses,
            ..
        } in known
        {
            self.remember_member(&group, peer);
            for addr in &addresses {
                self.remember(peer, addr.clone());
            }
            self.saved.insert((group, peer), addresses);
        }
    }

    /// Remembers that `peer` was a neighbour of `group`; returns the member
    /// forgotten to make room, if any.
    pub(crate) fn remember_member(&mut self, group: &PeerName, peer: PeerId) -> Option<PeerId> {
        let list = self.members.entry(group.clone()).or_default();
        list.retain(|p| *p != peer);
        list.push_back(peer);
        if list.len() > MEMBERS_PER_GROUP {
            let old = list.pop_front();
            if let Some(old) = old {
                self.saved.remove(&(group.clone(), old));
            }
            return old;
        }
        None
    }

    /// The groups `peer` is a remembered member of whose stored addresses
    /// differ from what the address book knows now.
    pub(crate) fn stale_saves(&self, peer: &PeerId) -> Vec<PeerName> {
        let now = self.addresses_of(peer);
        self.members
            .iter()
            .filter(|(group, list)| {
                list.contains(peer)
                    && self
                        .saved
                        .get(&((*group).clone(), *peer))
                        .is_none_or(|saved| saved.as_slice() != now)
            })
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// Replaces what the book knows of `peer` by the addresses it says it
    /// listens on (identify): an address it stopped listening on (a node
    /// restarted on another port) is not redialed forever.
    pub(crate) fn set_listen_addresses(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        if addrs.is_empty() {
            return;
        }
        if let Some(list) = self.addresses.get_mut(&peer) {
            list.clear();
        }
        for addr in addrs.iter().take(ADDRESSES_PER_PEER) {
            self.remember(peer, addr.clone());
        }
    }

    /// What the address book knows of `peer`.
    pub(crate) fn addresses_of(&self, peer: &PeerId) -> &[Multiaddr] {
        self.addresses.get(peer).map_or(&[], Vec::as_slice)
    }

    /// Remembers `addr` for `peer`; returns whether the peer is new.
    pub(crate) fn remember(&mut self, peer: PeerId, addr: Multiaddr) -> bool {
        let new = !self.addresses.contains_key(&peer);
        if new {
            self.order.push_back(peer);
            while self.order.len() > ADDRESS_BOOK_PEERS {
                if let Some(old) = self.order.pop_front() {
                    self.addresses.remove(&old);
                    self.link_local.remove(&old);
                }
            }
        }
        let list = self.addresses.entry(peer).or_default();
        if !list.contains(&addr) {
            if list.len() >= ADDRESSES_PER_PEER {
                list.remove(0);
            }
            list.push(addr);
        }
        new
    }
}

//! Discovery: the global cloud (Kademlia provider records under a key
//! derived from the group name) and the link-local cloud (mDNS), the
//! bootstrap peers, and an address book of what other behaviours learn
//! (`FromSwarm::NewExternalAddrOfPeer`), so that an application that brings
//! its own discovery and switches ours off still connects.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use libp2p::{
    Multiaddr, PeerId, identify, kad, mdns,
    multiaddr::Protocol,
    swarm::{
        ToSwarm,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use peergroup_protocol::{PeerName, Timestamp};
use sha2::{Digest as _, Sha256};

use crate::{
    behaviour::Behaviour,
    config::BehaviourConfig,
    pipeline::WriteFor,
    storage::{KnownPeer, WriteOp},
};

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
const BOOTSTRAP_REDIAL: Duration = Duration::from_secs(2);

/// The longest wait between redials of a lost bootstrap node.
const MAX_BOOTSTRAP_REDIAL: Duration = Duration::from_secs(60);

/// The most former neighbours remembered per group.
const MEMBERS_PER_GROUP: usize = 64;

/// The discovery state: bootstrap peers, the address book, and who to
/// redial when a group has lost its neighbours.
#[derive(Debug)]
pub(crate) struct Discovery {
    bootstrap: Vec<(PeerId, Multiaddr)>,
    started: bool,
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    order: VecDeque<PeerId>,
    /// Peers that were authenticated neighbours of each group, latest last
    /// (kept in the store too: a node that starts again redials them).
    members: HashMap<PeerName, VecDeque<PeerId>>,
    /// The addresses last stored for each (group, member), so that only a
    /// change is written.
    saved: HashMap<(PeerName, PeerId), Vec<Multiaddr>>,
    /// Peers found on the link by mDNS (still in the address book).
    link_local: HashSet<PeerId>,
    /// Bootstrap nodes that were connected and are not: when to redial
    /// each, and the wait after that.
    lost_bootstrap: HashMap<PeerId, (Timestamp, Duration)>,
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
    fn remember_member(&mut self, group: &PeerName, peer: PeerId) -> Option<PeerId> {
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
    fn stale_saves(&self, peer: &PeerId) -> Vec<PeerName> {
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
    fn set_listen_addresses(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
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

impl Behaviour {
    /// `peer` is an authenticated neighbour of `group`: remembered, in
    /// memory and in the store, with the addresses it listens on.
    pub(crate) fn remember_member(&mut self, group: &PeerName, peer: PeerId) {
        if let Some(old) = self.discovery.remember_member(group, peer) {
            self.work.queue_write(
                Some(WriteOp::ForgetPeer(group.clone(), old)),
                WriteFor::Other,
            );
        }
        self.save_member(group, peer);
    }

    /// Stores what is known of `group`'s member `peer` now.
    fn save_member(&mut self, group: &PeerName, peer: PeerId) {
        let addresses = self.discovery.addresses_of(&peer).to_vec();
        self.discovery
            .saved
            .insert((group.clone(), peer), addresses.clone());
        let known = KnownPeer {
            group: group.clone(),
            peer,
            addresses,
            seen: self.wall_now(),
        };
        self.work
            .queue_write(Some(WriteOp::SavePeer(Box::new(known))), WriteFor::Other);
    }

    /// The address book's entry for `peer` changed: stores it again for the
    /// groups it is a remembered member of.
    fn member_addresses_changed(&mut self, peer: PeerId) {
        for group in self.discovery.stale_saves(&peer) {
            self.save_member(&group, peer);
        }
    }

    /// Once, at the first poll: adds the bootstrap peers to Kademlia, dials
    /// them and bootstraps.
    pub(crate) fn start_discovery(&mut self) {
        if self.discovery.started {
            return;
        }
        self.discovery.started = true;
        for (peer, addr) in self.discovery.bootstrap.clone() {
            if let Some(kad) = self.inner.kademlia.as_mut() {
                kad.add_address(&peer, addr.clone());
            }
            self.dial(peer, vec![addr]);
        }
        if let Some(kad) = self.inner.kademlia.as_mut()
            && !self.discovery.bootstrap.is_empty()
            && let Err(e) = kad.bootstrap()
        {
            tracing::debug!(error = %e, "kademlia bootstrap not started");
        }
    }

    /// Asks the swarm to dial `peer` (at `addresses`, plus what it knows).
    ///
    /// Addresses just learned (from the user, mDNS, identify, a Kademlia
    /// lookup) are dialed even while another attempt to the same peer is in
    /// flight: that attempt may be to an address the peer no longer listens
    /// on (a restarted node), and libp2p's default condition would drop the
    /// new dial silently. Without new addresses, one attempt at a time.
    pub(crate) fn dial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) {
        let condition = if addresses.is_empty() {
            PeerCondition::DisconnectedAndNotDialing
        } else {
            PeerCondition::Disconnected
        };
        self.dial_if(peer, addresses, condition);
    }

    /// Redials a member at the addresses it was known at: one attempt at a
    /// time (this runs on a timer while a group is lonely).
    fn redial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) {
        self.dial_if(peer, addresses, PeerCondition::DisconnectedAndNotDialing);
    }

    fn dial_if(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, condition: PeerCondition) {
        if peer == self.local_peer || self.connected.contains(&peer) {
            return;
        }
        self.actions.push_back(ToSwarm::Dial {
            opts: DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(condition)
                .build(),
        });
        self.wake();
    }

    /// Dials an address whose peer id may be unknown.
    pub(crate) fn dial_address(&mut self, addr: Multiaddr) {
        if let Some(Protocol::P2p(peer)) = addr.iter().last() {
            self.dial(peer, vec![addr]);
            return;
        }
        self.actions.push_back(ToSwarm::Dial {
            opts: DialOpts::unknown_peer_id().address(addr).build(),
        });
        self.wake();
    }

    /// Whether some online group still looks for members (not ready yet, or
    /// without neighbours).
    fn wants_members(&self) -> bool {
        self.groups.iter().any(|(_, s)| {
            s.is_online() && (s.status().is_ok_and(|st| !st.ready || !st.has_connections))
        })
    }

    /// An address another behaviour learned for `peer`.
    pub(crate) fn learn_address(&mut self, peer: PeerId, addr: &Multiaddr) {
        if peer == self.local_peer {
            return;
        }
        let new = self.discovery.remember(peer, addr.clone());
        self.member_addresses_changed(peer);
        if new && self.wants_members() {
            self.dial(peer, vec![addr.clone()]);
        }
    }

    /// Announces `group` in the global cloud.
    pub(crate) fn start_providing(&mut self, group: &PeerName) {
        if let Some(kad) = self.inner.kademlia.as_mut()
            && let Err(e) = kad.start_providing(provider_key(group))
        {
            tracing::warn!(%group, error = %e, "cannot announce the group in Kademlia");
        }
    }

    /// Stops announcing `group`.
    pub(crate) fn stop_providing(&mut self, group: &PeerName) {
        if let Some(kad) = self.inner.kademlia.as_mut() {
            kad.stop_providing(&provider_key(group));
        }
    }

    /// Looks for `group`'s members: in the global cloud (a provider lookup),
    /// and by redialing the peers that were its neighbours and the peers
    /// mDNS found on the link (mDNS reports a peer once while it stays in
    /// its cache, so a dropped connection is not rediscovered on its own).
    pub(crate) fn find_members(&mut self, group: &PeerName) {
        if let Some(kad) = self.inner.kademlia.as_mut() {
            kad.get_providers(provider_key(group));
        }
        let known: Vec<PeerId> = self
            .discovery
            .members
            .get(group)
            .into_iter()
            .flatten()
            .chain(self.discovery.link_local.iter())
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for peer in known {
            if !self.connected.contains(&peer) {
                let addrs = self.discovery.addresses_of(&peer).to_vec();
                if !addrs.is_empty() {
                    tracing::debug!(%group, %peer, "redialing a known member");
                    self.redial(peer, addrs);
                }
            }
        }
    }

    /// A connection to `peer` opened (`first`: its only one). A bootstrap
    /// node that comes back may have restarted and forgotten every provider
    /// record: announce the groups again, and refresh the routing table.
    pub(crate) fn discovery_connected(&mut self, peer: PeerId, first: bool) {
        if first && self.discovery.lost_bootstrap.remove(&peer).is_some() {
            tracing::debug!(%peer, "a bootstrap node is back; announcing the groups again");
            self.provide_all();
            if let Some(kad) = self.inner.kademlia.as_mut() {
                let _ = kad.bootstrap();
            }
        }
    }

    /// The last connection to `peer` closed: a bootstrap node is redialed
    /// (after [`BOOTSTRAP_REDIAL`], doubling).
    pub(crate) fn discovery_disconnected(&mut self, peer: PeerId) {
        if self.inner.kademlia.as_ref().is_none()
            || !self.discovery.bootstrap.iter().any(|(p, _)| *p == peer)
        {
            return;
        }
        let at = self.wall_now().saturating_add(BOOTSTRAP_REDIAL);
        self.discovery
            .lost_bootstrap
            .insert(peer, (at, BOOTSTRAP_REDIAL));
    }

    /// Redials the lost bootstrap nodes that are due (wall clock); returns
    /// when the next one is.
    pub(crate) fn discovery_timers(&mut self) -> Option<Timestamp> {
        let now = self.wall_now();
        let due: Vec<PeerId> = self
            .discovery
            .lost_bootstrap
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            let addrs: Vec<Multiaddr> = self
                .discovery
                .bootstrap
                .iter()
                .filter(|(p, _)| *p == peer)
                .map(|(_, a)| a.clone())
                .collect();
            if let Some((at, wait)) = self.discovery.lost_bootstrap.get_mut(&peer) {
                *wait = wait.saturating_mul(2).min(MAX_BOOTSTRAP_REDIAL);
                *at = now.saturating_add(*wait);
            }
            tracing::debug!(%peer, "redialing a bootstrap node");
            self.redial(peer, addrs);
        }
        self.discovery
            .lost_bootstrap
            .values()
            .map(|(at, _)| *at)
            .min()
    }

    /// Announces every listening group again (after the routing table gained
    /// a peer: an announcement made while it was empty reached nobody).
    fn provide_all(&mut self) {
        let listening: Vec<PeerName> = self
            .groups
            .iter()
            .filter(|(_, s)| s.status().is_ok_and(|st| st.listening))
            .map(|(name, _)| name.clone())
            .collect();
        for group in listening {
            self.start_providing(&group);
        }
    }

    pub(crate) fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated {
                is_new_peer: true, ..
            } => self.provide_all(),
            kad::Event::OutboundQueryProgressed { result, .. } => match result {
                kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                    providers,
                    ..
                })) => {
                    // Provider records carry peer ids. Dial now, while the
                    // query still holds the addresses it heard, and also look
                    // the id up, which finds them if the query has ended.
                    for peer in providers {
                        if peer != self.local_peer && !self.connected.contains(&peer) {
                            self.dial(peer, Vec::new());
                            if let Some(kad) = self.inner.kademlia.as_mut() {
                                kad.get_closest_peers(peer);
                            }
                        }
                    }
                }
                kad::QueryResult::GetClosestPeers(Ok(kad::GetClosestPeersOk { key, peers })) => {
                    let Ok(target) = PeerId::from_bytes(&key) else {
                        return;
                    };
                    for info in peers {
                        if info.peer_id == target && !info.addrs.is_empty() {
                            self.dial(target, info.addrs);
                        }
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    pub(crate) fn on_mdns_event(&mut self, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                for (peer, addr) in found {
                    if let Some(kad) = self.inner.kademlia.as_mut() {
                        kad.add_address(&peer, addr.clone());
                    }
                    self.discovery.remember(peer, addr.clone());
                    self.discovery.link_local.insert(peer);
                    self.dial(peer, vec![addr]);
                }
            }
            mdns::Event::Expired(_) => {}
        }
    }

    pub(crate) fn on_identify_event(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event {
            if let Some(kad) = self.inner.kademlia.as_mut() {
                for addr in &info.listen_addrs {
                    kad.add_address(&peer_id, addr.clone());
                }
            }
            // Where to redial it (inbound connections come from ephemeral
            // ports), here and after a restart: a member that came back on
            // another port tells its neighbours its new address this way.
            self.discovery
                .set_listen_addresses(peer_id, &info.listen_addrs);
            self.member_addresses_changed(peer_id);
        }
    }
}

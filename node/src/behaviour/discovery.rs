//! The behaviour's side of discovery: Kademlia providers, mDNS, identify,
//! bootstrap and the address book (`crate::discovery::Discovery`) turned
//! into dials, announcements and lookups.

use std::collections::HashSet;

use libp2p::{
    Multiaddr, PeerId, identify, kad, mdns,
    multiaddr::Protocol,
    swarm::{
        ToSwarm,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use peergroup_protocol::PeerName;

use crate::{
    behaviour::Behaviour,
    discovery::*,
    pipeline::WriteFor,
    storage::{KnownPeer, WriteOp},
};

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

    /// A first connection to `peer` opened. A bootstrap
    /// node that comes back may have restarted and forgotten every provider
    /// record: announce the groups again, and refresh the routing table.
    pub(crate) fn discovery_connected(&mut self, peer: PeerId) {
        if self.discovery.lost_bootstrap.remove(&peer).is_some() {
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
        let now = self.clock.instant();
        let at = now.checked_add(BOOTSTRAP_REDIAL).unwrap_or(now);
        self.discovery
            .lost_bootstrap
            .insert(peer, (at, BOOTSTRAP_REDIAL));
    }

    /// Redials the lost bootstrap nodes that are due (monotonic clock);
    /// returns when the next one is.
    pub(crate) fn run_discovery_timers(&mut self) -> Option<std::time::Instant> {
        let now = self.clock.instant();
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
                *at = now.checked_add(*wait).unwrap_or(now);
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

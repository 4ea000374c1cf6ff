//! Peer time (reference 3.6) on the node: the behaviour's wall clock
//! corrected by the groups router's [`PeerClock`](peergroup_protocol::PeerClock),
//! and the conversions the Windows API has. Authentication's clock samples
//! move it (`peergroup_protocol::groups`); timeouts never depend on it.

use peergroup_protocol::{Timestamp, groups::Now};

use super::Behaviour;

impl Behaviour {
    /// Now in peer time (reference 3.6): the behaviour's wall clock
    /// corrected by the median of its neighbours' clocks
    /// (`peergroup_protocol::PeerClock`). Records are stamped with it and
    /// expire by it; an application sets expirations relative to it.
    pub fn now(&self) -> Timestamp {
        self.groups.peer_time(self.clock.now())
    }

    /// Now by the behaviour's own wall clock (the configured `Clock`).
    pub fn wall_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// `PeerGroupUniversalTimeToPeerTime`: the peer time at wall-clock time
    /// `universal` (ms since the Unix epoch, by this node's clock).
    pub fn universal_to_peer_time(&self, universal: Timestamp) -> Timestamp {
        self.groups.peer_time(universal)
    }

    /// `PeerGroupPeerTimeToUniversalTime`: this node's wall-clock time at
    /// peer time `peer`.
    pub fn peer_to_universal_time(&self, peer: Timestamp) -> Timestamp {
        self.groups.clock().to_universal_time(peer)
    }

    /// Peer time now, for a local call into a session (one that may set a
    /// deadline): the groups router reads the clocks first, so that a step
    /// of the wall clock since its last reading has moved the sessions'
    /// deadlines before the call adds one (`Groups::observe`).
    pub(crate) fn observed_now(&mut self) -> Timestamp {
        let now = self.clocks();
        self.groups.observe(now)
    }

    /// Both clocks, read once for a step of the protocol's machines.
    pub(crate) fn clocks(&self) -> Now {
        Now {
            instant: self.clock.instant(),
            wall: self.clock.now(),
        }
    }
}

//! Peer time (reference 3.6) on the node: the behaviour's clock corrected
//! by its [`PeerClock`](peergroup_protocol::PeerClock), the conversions the
//! Windows API has, and how authentication's clock samples move it.

use libp2p::PeerId;
use peergroup_protocol::Timestamp;

use super::Behaviour;

impl Behaviour {
    /// Now in peer time (reference 3.6): the behaviour's wall clock
    /// corrected by the median of its neighbours' clocks
    /// (`peergroup_protocol::PeerClock`). Records are stamped with it and
    /// expire by it; an application sets expirations relative to it.
    pub fn now(&self) -> Timestamp {
        self.peer_clock.to_peer_time(self.clock.now())
    }

    /// Now by the behaviour's own wall clock (the configured `Clock`).
    pub fn wall_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// `PeerGroupUniversalTimeToPeerTime`: the peer time at wall-clock time
    /// `universal` (ms since the Unix epoch, by this node's clock).
    pub fn universal_to_peer_time(&self, universal: Timestamp) -> Timestamp {
        self.peer_clock.to_peer_time(universal)
    }

    /// `PeerGroupPeerTimeToUniversalTime`: this node's wall-clock time at
    /// peer time `peer`.
    pub fn peer_to_universal_time(&self, peer: Timestamp) -> Timestamp {
        self.peer_clock.to_universal_time(peer)
    }

    /// Whether this node's peer time is anchored (see
    /// `peergroup_protocol::PeerClock`): it adopted an anchored neighbour's
    /// time, or it created one of its groups (whose time starts as its
    /// creator's; the clock is anchored then).
    pub(crate) fn clock_anchored(&mut self) -> bool {
        if !self.peer_clock.is_anchored() && self.groups.iter().any(|(_, s)| s.state().is_creator())
        {
            self.peer_clock.anchor();
        }
        self.peer_clock.is_anchored()
    }

    /// Applies `peer`'s clock sample to peer time. When that moves peer
    /// time, every deadline kept in it moves as far, so that waits keep
    /// their length across the step.
    pub(crate) fn sample_clock(&mut self, peer: PeerId, sample: i64, anchored: bool) {
        self.clock_anchored();
        let before = self.peer_clock.offset();
        self.peer_clock.sample(peer, sample, anchored);
        let delta = self.peer_clock.offset().saturating_sub(before);
        if delta == 0 {
            return;
        }
        // Kept across restarts (`PeerClock::restored`).
        self.work.queue_write(
            Some(crate::storage::WriteOp::SaveClockOffset(
                self.peer_clock.offset(),
            )),
            crate::pipeline::WriteFor::Other,
        );
        if delta.unsigned_abs() >= 1_000 {
            tracing::info!(%peer, step_ms = delta, offset_ms = self.peer_clock.offset(), "peer time adjusted");
        } else {
            tracing::debug!(%peer, step_ms = delta, offset_ms = self.peer_clock.offset(), "peer time adjusted");
        }
        for group in self.groups.names() {
            if let Ok(session) = self.groups.get_mut(&group) {
                session.shift_clock(delta);
            }
        }
        self.auth.shift_deadlines(delta);
        self.next_expiry = self.next_expiry.saturating_offset(delta);
        self.timer = None;
    }
}

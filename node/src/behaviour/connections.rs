//! Connection lifecycle: a peer's further connections and connections found
//! dead by ping (its last connection closing is `Happened::PeerGone`).

use libp2p::{
    PeerId,
    swarm::{CloseConnection, ToSwarm},
};

use super::Behaviour;

impl Behaviour {
    /// A further connection to a connected peer: the older one may have died
    /// silently (its ping has not failed yet), and the peer redialed. Every
    /// group it is a neighbour in reconciles with it again, as on a first
    /// connection; without this, what was lost on the dead link waited for
    /// anti-entropy.
    pub(super) fn on_peer_reconnected(&mut self, peer: PeerId) {
        let now = self.clocks();
        self.groups.reconnected(&peer, now);
        self.drive_all();
    }

    /// A failed ping closes its connection (see
    /// [`super::inner::PING_INTERVAL`]); the neighbour then goes down in its
    /// groups, and is redialed and reconciled with like any lost neighbour.
    /// A peer that does not speak ping (an application's own swarm may not)
    /// keeps its connection.
    pub(super) fn on_ping_event(&mut self, event: libp2p::ping::Event) {
        if let Err(error) = event.result {
            if matches!(error, libp2p::ping::Failure::Unsupported) {
                return;
            }
            tracing::debug!(peer = %event.peer, %error, "ping failed: closing the connection");
            self.actions.push_back(ToSwarm::CloseConnection {
                peer_id: event.peer,
                connection: CloseConnection::One(event.connection),
            });
        }
    }
}

//! The `NetworkBehaviour` implementation: every connection hook goes to the
//! inner behaviours; `poll` runs the behaviour's own work first.

use std::task::{Context, Poll};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse},
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
};

use super::{Behaviour, Event, Happened, Inner};

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = THandler<Inner>;
    type ToSwarm = Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let mut found = self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )?;
        if let Some(peer) = maybe_peer {
            for addr in self.discovery.addresses_of(&peer) {
                if !found.contains(addr) {
                    found.push(addr.clone());
                }
            }
        }
        Ok(found)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ConnectionEstablished(e) => {
                // An address we dialed it at is one to redial it at.
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = e.endpoint {
                    self.discovery.remember(e.peer_id, address.clone());
                }
                self.happened(if e.other_established == 0 {
                    Happened::PeerConnected(e.peer_id)
                } else {
                    Happened::PeerReconnected(e.peer_id)
                });
            }
            FromSwarm::ConnectionClosed(e) if e.remaining_established == 0 => {
                self.happened(Happened::PeerGone(e.peer_id));
            }
            FromSwarm::NewExternalAddrOfPeer(e) => self.learn_address(e.peer_id, e.addr),
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.waker = Some(cx.waker().clone());
        self.start_discovery();
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ToSwarm::GenerateEvent(event));
            }
            if let Some(action) = self.actions.pop_front() {
                return Poll::Ready(action);
            }
            if let Poll::Ready(done) = self.work.poll(cx) {
                self.on_work_done(done);
                continue;
            }
            // What the timers did goes out first. Only output loops back: a
            // machine that kept reporting a past deadline without producing
            // anything makes the timer fire at once and wake this task
            // again, and never spins inside one poll.
            if self.poll_timers(cx) && !(self.events.is_empty() && self.actions.is_empty()) {
                continue;
            }
            if self.is_backlogged() {
                // Completions free room and wake this task.
                self.work.flush();
                return Poll::Pending;
            }
            match self.inner.poll(cx) {
                Poll::Ready(ToSwarm::GenerateEvent(event)) => {
                    self.on_inner_event(event);
                    continue;
                }
                Poll::Ready(other) => {
                    return Poll::Ready(
                        other.map_out(|_| unreachable!("GenerateEvent is handled above")),
                    );
                }
                Poll::Pending => {}
            }
            // The end of a round: what it batched leaves the swarm task.
            self.work.flush();
            if self.events.is_empty() && self.actions.is_empty() {
                return Poll::Pending;
            }
        }
    }
}

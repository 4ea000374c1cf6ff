//! The group lifecycle (reference 3.2): open, connect (with its deadline and
//! member lookups), close, and neighbours coming and going.

use std::collections::BTreeSet;

use crate::{
    error::Error,
    session::{ConnectRun, ConnectionChange, Event, Lifecycle, Output, Session},
    time::Timestamp,
};

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    // ----- lifecycle -----------------------------------------------------------

    /// `PeerGroupOpen`: a closed group becomes open (offline, readable).
    pub fn open(&mut self) {
        if self.lifecycle == Lifecycle::Closed {
            self.lifecycle = Lifecycle::Open;
        }
    }

    /// `PeerGroupConnect`: goes online. A ready group listens at once and
    /// [`Output::ConnectOutcome`] is `Ok` now; one that never synchronized
    /// looks for members ([`Output::FindMembers`] every `find_interval`),
    /// copies the database of the first neighbour that serves it, and
    /// reports the outcome when the copy completes or `connect_timeout`
    /// passes (`NoMembersFound`, or `NoMemberConnections` if members were
    /// found but none completed the copy).
    pub fn connect(&mut self, now: Timestamp) -> Result<(), Error> {
        self.check_open()?;
        if self.lifecycle != Lifecycle::Online {
            self.lifecycle = Lifecycle::Online;
            self.outputs.push_back(Output::Subscribe);
        }
        if self.state.ready {
            self.become_listening();
            self.outputs.push_back(Output::ConnectOutcome(Ok(())));
        } else {
            self.connect = Some(ConnectRun {
                deadline: now.saturating_add(self.config.connect_timeout),
                next_find: now,
                tried: BTreeSet::new(),
            });
            self.on_timeout(now);
            self.try_next_copy();
        }
        self.refresh_status();
        self.flush_merges();
        Ok(())
    }

    /// `PeerGroupClose`: back offline; the group stays known (closed). A
    /// pending connect fails with `InvalidGroup`; held gossip messages are
    /// reported as ignored.
    pub fn close(&mut self) -> Result<(), Error> {
        self.check_open()?;
        let was_online = self.lifecycle == Lifecycle::Online;
        self.lifecycle = Lifecycle::Closed;
        self.copy = None;
        if self.connect.take().is_some() {
            self.outputs
                .push_back(Output::ConnectOutcome(Err(Error::InvalidGroup(format!(
                    "group {} was closed while connecting",
                    self.name()
                )))));
        }
        self.release_held_messages();
        if was_online {
            self.outputs.push_back(Output::Unsubscribe);
            self.outputs.push_back(Output::StopProviding);
        }
        for peer in std::mem::take(&mut self.neighbors) {
            self.emit(Event::NeighborConnection {
                group: self.name().clone(),
                peer,
                change: ConnectionChange::Disconnected,
            });
        }
        self.status.listening = false;
        self.refresh_status();
        Ok(())
    }

    pub(super) fn become_listening(&mut self) {
        self.connect = None;
        if !self.status.listening {
            self.status.listening = true;
            self.outputs.push_back(Output::StartProviding);
        }
    }

    pub(super) fn neighbor_up(&mut self, peer: P) {
        if !self.is_online() || !self.neighbors.insert(peer.clone()) {
            return;
        }
        self.emit(Event::NeighborConnection {
            group: self.name().clone(),
            peer,
            change: ConnectionChange::Connected,
        });
        self.refresh_status();
        self.try_next_copy();
    }

    pub(super) fn neighbor_down(&mut self, peer: &P) {
        self.neighbor_members.remove(peer);
        if !self.neighbors.remove(peer) {
            return;
        }
        self.emit(Event::NeighborConnection {
            group: self.name().clone(),
            peer: peer.clone(),
            change: ConnectionChange::Disconnected,
        });
        self.refresh_status();
        if self.copy.as_ref().is_some_and(|c| &c.peer == peer) {
            self.copy = None;
            self.try_next_copy();
        }
    }

    pub(super) fn on_timeout(&mut self, now: Timestamp) {
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        if now >= connect.deadline {
            let found = !connect.tried.is_empty();
            self.connect = None;
            self.copy = None;
            let reason = if found {
                Error::NoMemberConnections(format!(
                    "members of {} were found but none completed the database copy",
                    self.name()
                ))
            } else {
                Error::NoMembersFound(format!(
                    "no member of {} was found within {:?}",
                    self.name(),
                    self.config.connect_timeout
                ))
            };
            // Back offline, still not ready (reference 3.2: a failed connect
            // leaves the group open).
            self.lifecycle = Lifecycle::Open;
            self.release_held_messages();
            self.outputs.push_back(Output::Unsubscribe);
            for peer in std::mem::take(&mut self.neighbors) {
                self.emit(Event::NeighborConnection {
                    group: self.name().clone(),
                    peer,
                    change: ConnectionChange::Disconnected,
                });
            }
            self.refresh_status();
            self.emit(Event::ConnectionFailed {
                group: self.name().clone(),
                reason: reason.clone(),
            });
            self.outputs.push_back(Output::ConnectOutcome(Err(reason)));
            return;
        }
        if now >= connect.next_find {
            connect.next_find = now.saturating_add(self.config.find_interval);
            self.outputs.push_back(Output::FindMembers);
        }
    }
}

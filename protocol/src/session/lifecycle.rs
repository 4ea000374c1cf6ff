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
    /// [`Output::ConnectOutcome`] is `Ok` now (it reconciles with every
    /// neighbour as it comes); one that never synchronized looks for members
    /// ([`Output::FindMembers`] every `find_interval`), synchronizes with
    /// the first neighbour that completes it, and reports the outcome then
    /// or when `connect_timeout` passes (`NoMembersFound`, or
    /// `NoMemberConnections` if members were found but none completed it).
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
            self.try_next_first_sync(now);
        }
        if self.state.ready {
            self.next_anti_entropy = now.saturating_add(self.config.anti_entropy_interval);
            let neighbors: Vec<P> = self.neighbors.iter().cloned().collect();
            for peer in neighbors {
                self.start_sync(peer, now);
            }
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
        self.syncs.clear();
        self.pending_first_retry = false;
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
        self.refresh_status();
    }

    pub(super) fn neighbor_up(&mut self, peer: P, now: Timestamp) {
        if !self.is_online() || !self.neighbors.insert(peer.clone()) {
            return;
        }
        self.emit(Event::NeighborConnection {
            group: self.name().clone(),
            peer: peer.clone(),
            change: ConnectionChange::Connected,
        });
        self.refresh_status();
        // Every new neighbour is reconciled with (reference 3.5); a group
        // that is not ready synchronizes with one at a time.
        if self.state.ready {
            self.start_sync(peer, now);
        } else {
            self.try_next_first_sync(now);
        }
    }

    pub(super) fn neighbor_reconnected(&mut self, peer: &P, now: Timestamp) {
        if !self.is_online() || !self.neighbors.contains(peer) || !self.state.ready {
            return;
        }
        self.end_sync(peer, now);
        self.start_sync(peer.clone(), now);
    }

    pub(super) fn neighbor_down(&mut self, peer: &P, now: Timestamp) {
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
        self.sync_neighbor_down(peer, now);
    }

    pub(super) fn on_timeout(&mut self, now: Timestamp) {
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        if now >= connect.deadline {
            let found = !connect.tried.is_empty();
            self.connect = None;
            self.syncs.clear();
            self.pending_first_retry = false;
            let reason = if found {
                Error::NoMemberConnections(format!(
                    "members of {} were found but none completed a synchronization",
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

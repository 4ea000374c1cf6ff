//! The groups router: every group session of one node, group
//! authentication of its peers, and the policies that span groups.
//!
//! [`Groups`] owns the node's [`Session`]s (by name, and by the tag that
//! names a group on the wire), the authentication exchanges under way
//! ([`crate::auth::Exchanges`]) and peer time ([`PeerClock`]). It decides,
//! sans-I/O:
//!
//! - who is a neighbour in which group: a peer that authenticated for it
//!   (the session's neighbour set is the one source of truth);
//! - when a connection is no longer wanted: a peer that failed to
//!   authenticate (or was cut off) is disconnected unless it is a
//!   neighbour in another group; its gossip stays graylisted meanwhile;
//! - when a neighbour stops being one: its credential expired (peer time),
//!   it left the topic, its last connection closed.
//!
//! The host feeds it what happens (a peer subscribed or left, an
//! authentication request or answer arrived, the last connection to a peer
//! closed, time passed) with [`Now`], and executes its [`Output`]s: send a
//! request, set a gossip score, disconnect, tell the application, and each
//! session's own outputs. It asks to be woken at [`Groups::poll_timeout`],
//! a monotonic instant: a step of peer time never moves a deadline.

mod exchange;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    time::Instant,
};

use crate::{
    auth::{ExchangeId, Exchanges},
    auth::{GROUP_TAG_LEN, group_tag},
    error::Error,
    messages::auth::Request,
    peer_name::PeerName,
    peer_time::PeerClock,
    session::{self, Input, Session},
    time::Timestamp,
};

/// The host's clocks, read once per step.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// The monotonic clock: every deadline the router keeps is on it.
    pub instant: Instant,
    /// The wall clock (ms since the Unix epoch, this node's): peer time is
    /// derived from it ([`Groups::peer_time`]).
    pub wall: Timestamp,
}

/// What the host does for the router.
#[derive(Debug)]
#[allow(missing_docs)] // each variant's doc names its fields
pub enum Output<P, M> {
    /// A session's output, to execute as the session says.
    Session {
        group: PeerName,
        output: session::Output<P, M>,
    },
    /// Send `request` to `peer` on the authentication protocol; hand its
    /// answer to [`Groups::on_auth_response`] and a transport failure to
    /// [`Groups::on_auth_failure`] with `exchange`.
    AuthRequest {
        exchange: ExchangeId,
        peer: P,
        request: Request,
    },
    /// `peer` authenticated as `member` for `group` (a neighbour now):
    /// worth remembering, to redial after a restart.
    Authenticated {
        group: PeerName,
        peer: P,
        member: PeerName,
    },
    /// An authentication with `peer` for `group` failed, or the neighbour
    /// was cut off: the application hears why.
    AuthenticationFailed {
        group: PeerName,
        peer: P,
        reason: Error,
    },
    /// A neighbour's credential expired: it is no neighbour until it
    /// authenticates again with a renewed one (the router asks it).
    CredentialExpired { group: PeerName, peer: P },
    /// Whether `peer`'s gossip is to be ignored (graylisted): a peer
    /// subscribed to one of our groups without having authenticated for any.
    Graylist { peer: P, graylisted: bool },
    /// Close every connection to `peer`: no group wants it.
    Disconnect(P),
    /// Peer time moved by `step_ms`: keep `offset_ms` across restarts.
    ClockAdjusted { offset_ms: i64, step_ms: i64 },
    /// The wall clock stepped by `step_ms` against the monotonic clock (the
    /// system's time was set): the sessions' deadlines moved with it, so
    /// that no wait is cut short or drawn out. For the host's log.
    WallClockStepped { step_ms: i64 },
}

/// The smallest step of the wall clock against the monotonic clock that
/// [`Groups::observe`] compensates (smaller ones are drift and slewing).
pub const WALL_STEP_MS: i64 = 1_000;

/// The groups router. See the module docs.
#[derive(Debug)]
pub struct Groups<P: Ord, M> {
    sessions: BTreeMap<PeerName, Session<P, M>>,
    by_tag: HashMap<[u8; GROUP_TAG_LEN], PeerName>,
    exchanges: Exchanges<P>,
    clock: PeerClock<P>,
    /// This node's peer id, as bytes (authentication transcripts).
    local: Vec<u8>,
    outputs: VecDeque<Output<P, M>>,
    /// Sessions that may have outputs to drain.
    dirty: BTreeSet<PeerName>,
    /// The monotonic instant and the peer time at the last observation of
    /// the clocks ([`Groups::observe`]).
    seen: Option<(Instant, Timestamp)>,
}

impl<P, M> Groups<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// A router for the node whose peer id is `local` (as bytes), with peer
    /// time restored at `clock_offset_ms` (`PeerClock::restored`).
    pub fn new(local: Vec<u8>, clock_offset_ms: i64) -> Groups<P, M> {
        Groups {
            sessions: BTreeMap::new(),
            by_tag: HashMap::new(),
            exchanges: Exchanges::default(),
            clock: PeerClock::restored(clock_offset_ms),
            local,
            outputs: VecDeque::new(),
            dirty: BTreeSet::new(),
            seen: None,
        }
    }

    // ----- sessions -------------------------------------------------------------

    /// Adds a group's session (replacing one of the same name).
    pub fn insert(&mut self, session: Session<P, M>) {
        let name = session.name().clone();
        self.by_tag.insert(group_tag(&name), name.clone());
        self.dirty.insert(name.clone());
        self.sessions.insert(name, session);
    }

    /// Removes a group's session.
    pub fn remove(&mut self, name: &PeerName) -> Option<Session<P, M>> {
        self.by_tag.remove(&group_tag(name));
        self.dirty.remove(name);
        self.exchanges.group_closed(name);
        self.sessions.remove(name)
    }

    /// Whether `name` is a known group.
    pub fn contains(&self, name: &PeerName) -> bool {
        self.sessions.contains_key(name)
    }

    /// The session of `name`, or `InvalidGroup`.
    pub fn get(&self, name: &PeerName) -> Result<&Session<P, M>, Error> {
        self.sessions
            .get(name)
            .ok_or_else(|| Error::InvalidGroup(format!("unknown group {name}")))
    }

    /// The session of `name`, or `InvalidGroup`. Its outputs are drained by
    /// [`Groups::poll_output`] (or by the caller, [`Session::poll_output`]).
    pub fn get_mut(&mut self, name: &PeerName) -> Result<&mut Session<P, M>, Error> {
        let session = self
            .sessions
            .get_mut(name)
            .ok_or_else(|| Error::InvalidGroup(format!("unknown group {name}")))?;
        self.dirty.insert(name.clone());
        Ok(session)
    }

    /// Every group, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerName, &Session<P, M>)> {
        self.sessions.iter()
    }

    /// Every group name, in order.
    pub fn names(&self) -> Vec<PeerName> {
        self.sessions.keys().cloned().collect()
    }

    /// The online group whose tag is `tag`.
    pub fn by_tag(&self, tag: &[u8; GROUP_TAG_LEN]) -> Option<&PeerName> {
        let name = self.by_tag.get(tag)?;
        self.sessions
            .get(name)
            .is_some_and(Session::is_online)
            .then_some(name)
    }

    /// The group whose tag is `tag`, online or not.
    pub fn named_by(&self, tag: &[u8; GROUP_TAG_LEN]) -> Option<&PeerName> {
        self.by_tag.get(tag)
    }

    /// Feeds `input` to `group`'s session.
    pub fn handle(&mut self, group: &PeerName, input: Input<P, M>, now: Now) {
        let peer_now = self.observe(now);
        if let Ok(session) = self.get_mut(group) {
            session.handle(input, peer_now);
        }
    }

    // ----- neighbours -------------------------------------------------------------

    /// Whether `peer` is a neighbour in `group`.
    pub fn is_neighbor(&self, group: &PeerName, peer: &P) -> bool {
        self.sessions
            .get(group)
            .is_some_and(|s| s.is_neighbor(peer))
    }

    /// Whether `peer` is a neighbour in any group.
    pub fn is_neighbor_anywhere(&self, peer: &P) -> bool {
        self.sessions.values().any(|s| s.is_neighbor(peer))
    }

    /// The groups in which `peer` is a neighbour.
    pub fn groups_of(&self, peer: &P) -> Vec<PeerName> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_neighbor(peer))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Whether `peer` waits to authenticate for `group` (its gossip is
    /// ignored meanwhile, not held against it), or left the group's topic
    /// as a neighbour a moment ago.
    pub fn is_pending(&self, group: &PeerName, peer: &P) -> bool {
        self.exchanges.is_pending(group, peer)
    }

    /// A further connection to `peer`: the older one may have died
    /// silently and the peer redialed; every group it is a neighbour in
    /// reconciles with it again.
    pub fn reconnected(&mut self, peer: &P, now: Now) {
        self.observe(now);
        for group in self.groups_of(peer) {
            self.handle(&group, Input::Reconnected(peer.clone()), now);
        }
    }

    /// The last connection to `peer` closed: it is no neighbour anywhere,
    /// and nothing about it is kept (its clock sample included).
    pub fn peer_gone(&mut self, peer: &P, now: Now) {
        self.observe(now);
        self.exchanges.peer_gone(peer);
        self.clock.forget(peer);
        for group in self.groups_of(peer) {
            self.handle(&group, Input::NeighborDown(peer.clone()), now);
        }
    }

    // ----- time -----------------------------------------------------------------

    /// Reads the clocks: returns peer time now. The sessions keep their
    /// deadlines in peer time; when the wall clock stepped against the
    /// monotonic clock since the last reading (by [`WALL_STEP_MS`] or more),
    /// every session's deadlines move by the step, so that a wait keeps its
    /// length whatever the system's time does. Every input that carries
    /// [`Now`] reads them; a host that calls a session's API directly
    /// (with peer time) calls this first.
    pub fn observe(&mut self, now: Now) -> Timestamp {
        let peer_now = self.peer_time(now.wall);
        if let Some((instant, peer)) = self.seen {
            let elapsed = i64::try_from(now.instant.saturating_duration_since(instant).as_millis())
                .unwrap_or(i64::MAX);
            let expected = peer.saturating_offset(elapsed);
            let step = i64::try_from(peer_now.as_millis())
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::try_from(expected.as_millis()).unwrap_or(i64::MAX));
            if step.unsigned_abs() >= WALL_STEP_MS.unsigned_abs() {
                for session in self.sessions.values_mut() {
                    session.shift_clock(step);
                }
                self.outputs
                    .push_back(Output::WallClockStepped { step_ms: step });
            }
        }
        self.seen = Some((now.instant, peer_now));
        peer_now
    }

    /// Peer time (reference 3.6) at wall-clock time `wall`.
    pub fn peer_time(&self, wall: Timestamp) -> Timestamp {
        self.clock.to_peer_time(wall)
    }

    /// The peer clock.
    pub fn clock(&self) -> &PeerClock<P> {
        &self.clock
    }

    /// Whether peer time is anchored: it adopted an anchored neighbour's
    /// time, or this node created one of its groups (whose time starts as
    /// its creator's; the clock is anchored then).
    pub fn clock_anchored(&mut self) -> bool {
        if !self.clock.is_anchored() && self.sessions.values().any(|s| s.state().is_creator()) {
            self.clock.anchor();
        }
        self.clock.is_anchored()
    }

    /// Applies `peer`'s clock sample. When peer time moves, the sessions'
    /// deadlines (kept in peer time) move as far, so that their waits keep
    /// their length; the router's own deadlines are monotonic.
    fn sample_clock(&mut self, peer: &P, sample: i64, anchored: bool) {
        self.clock_anchored();
        let before = self.clock.offset();
        self.clock.sample(peer.clone(), sample, anchored);
        let step_ms = self.clock.offset().saturating_sub(before);
        if step_ms == 0 {
            return;
        }
        for session in self.sessions.values_mut() {
            session.shift_clock(step_ms);
        }
        // The step is accounted for: the next reading does not see it again.
        if let Some((_, peer)) = self.seen.as_mut() {
            *peer = peer.saturating_offset(step_ms);
        }
        self.outputs.push_back(Output::ClockAdjusted {
            offset_ms: self.clock.offset(),
            step_ms,
        });
    }

    /// Runs what is due at `now`: the sessions' timers, subscribers that did
    /// not authenticate within [`crate::auth::AUTH_GRACE`], neighbours
    /// whose credential expired.
    pub fn handle_timeout(&mut self, now: Now, rng: &mut impl rand_core::CryptoRng) {
        let peer_now = self.observe(now);
        for name in self.names() {
            let due = self
                .sessions
                .get(&name)
                .and_then(Session::poll_timeout)
                .is_some_and(|t| t <= peer_now);
            if due {
                self.handle(&name, Input::Timeout, now);
            }
        }
        self.check_exchanges(now, rng);
    }

    /// When [`Groups::handle_timeout`] is next due, on the monotonic clock:
    /// the earliest of the sessions' deadlines (kept in peer time, converted
    /// at `now`), the authentication graces and the neighbours' credential
    /// expiries. `None`: nothing is waited for.
    pub fn poll_timeout(&self, now: Now) -> Option<Instant> {
        let peer_now = self.peer_time(now.wall);
        let in_peer_time = self
            .sessions
            .values()
            .flat_map(|s| [s.poll_timeout(), s.next_neighbor_expiry()])
            .flatten()
            .min()
            .map(|at| {
                now.instant
                    .checked_add(std::time::Duration::from_millis(
                        at.as_millis().saturating_sub(peer_now.as_millis()),
                    ))
                    .unwrap_or(now.instant)
            });
        [in_peer_time, self.exchanges.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- outputs ----------------------------------------------------------------

    /// The next output of `group`'s session alone, for a host that drains
    /// it right after a local call (to treat its merges as local writes).
    /// Like [`Groups::poll_output`], it ends the group's exchanges when the
    /// session goes offline.
    pub fn poll_session_output(&mut self, group: &PeerName) -> Option<session::Output<P, M>> {
        let output = self.sessions.get_mut(group)?.poll_output()?;
        if matches!(output, session::Output::Unsubscribe) {
            self.group_offline(group);
        }
        Some(output)
    }

    /// The next output to execute: the router's own first, then each
    /// session's. Call it after every input until it returns `None`.
    pub fn poll_output(&mut self) -> Option<Output<P, M>> {
        if let Some(output) = self.outputs.pop_front() {
            return Some(output);
        }
        while let Some(name) = self.dirty.first().cloned() {
            let Some(session) = self.sessions.get_mut(&name) else {
                self.dirty.remove(&name);
                continue;
            };
            match session.poll_output() {
                Some(output) => {
                    if matches!(output, session::Output::Unsubscribe) {
                        self.group_offline(&name);
                    }
                    return Some(Output::Session {
                        group: name,
                        output,
                    });
                }
                None => {
                    self.dirty.remove(&name);
                }
            }
        }
        None
    }

    /// `group` went offline: its exchanges end, and the peers that waited
    /// to authenticate for it are graylisted no more unless they wait for
    /// another group.
    fn group_offline(&mut self, group: &PeerName) {
        for peer in self.exchanges.group_closed(group) {
            self.refresh_score(&peer);
        }
    }

    /// Says whether `peer` is graylisted: subscribed to one of our groups
    /// without having authenticated for any.
    fn refresh_score(&mut self, peer: &P) {
        let graylisted =
            self.exchanges.is_pending_anywhere(peer) && !self.is_neighbor_anywhere(peer);
        self.outputs.push_back(Output::Graylist {
            peer: peer.clone(),
            graylisted,
        });
    }
}

//! The group-authentication exchange (Windows' "Group Connect", reference
//! 3.3.4) as a sans-I/O machine: what each side sends, checks and decides.
//! The proofs themselves are `proof`'s ([`AuthProof`] over a [`Transcript`]);
//! the wire messages are
//! [`crate::messages::auth`]; the node only carries requests and answers.
//!
//! 1. A → B `Hello { tag, nonce_a, time_a, anchored_a }` (the group by its
//!    tag); B answers `Nonce { nonce_b, time_b, anchored_b }`, or `Refused`
//!    if it has no such group online. Each side keeps a clock sample of the
//!    other (`crate::PeerClock`; the initiator's, taken against its round
//!    trip, replaces the responder-side one), which counts once the peer
//!    authenticates.
//! 2. A → B `Prove { tag, proof_a }`. B checks it and answers
//!    `Accepted { proof_b, key, chain, password }`: its own proof, the
//!    group's data key wrapped for A, A's credential chain as the group
//!    database holds it when it is newer than the one A presented, and the
//!    password's secret wrapped for A when B holds it and A can grant the
//!    password role. An expired A whose renewal B holds gets
//!    `Renew { chain }` instead, adopts it and starts again.
//!
//! [`Exchanges`] keeps the exchanges under way (started, answered), the
//! subscribers waiting to authenticate ([`AUTH_GRACE`], on the monotonic
//! clock), neighbours that just left a topic, and the clock samples. The
//! groups router ([`crate::groups::Groups`]) drives it with the sessions,
//! which alone say who is a neighbour.

mod proof;

pub use self::proof::{AuthProof, AuthRole, GROUP_TAG_LEN, Transcript, group_tag};

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{peer_name::PeerName, time::Timestamp};

/// How long a peer subscribed to one of our groups' topics may stay
/// unauthenticated before it counts as a failed authentication (and,
/// unless it is a neighbour in another group, is disconnected). Also how
/// long a neighbour that left a group's topic is not held responsible for
/// its messages still in flight.
pub const AUTH_GRACE: Duration = Duration::from_secs(10);

/// One exchange this node started: the answers it waits for carry its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExchangeId(u64);

/// An exchange this node started, by (peer, group).
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) nonce: [u8; 32],
    /// The responder's nonce, once it answered step 1.
    pub(crate) responder_nonce: Option<[u8; 32]>,
    /// The request whose answer this exchange waits for: an answer to an
    /// older one (of an exchange since replaced) is ignored.
    pub(crate) id: ExchangeId,
    /// Our wall clock when we sent step 1 (for the clock sample).
    pub(crate) sent_at: Timestamp,
}

/// The exchanges under way. See the module docs.
#[derive(Debug)]
pub struct Exchanges<P> {
    started: HashMap<(P, PeerName), Started>,
    /// Which (peer, group) each request id belongs to.
    requests: HashMap<ExchangeId, (P, PeerName)>,
    /// Step 1s answered as responder: (initiator nonce, our nonce).
    answered: HashMap<(P, PeerName), ([u8; 32], [u8; 32])>,
    /// Subscribers not authenticated yet, since when (monotonic).
    pending: HashMap<(PeerName, P), Instant>,
    /// Neighbours that left a group's topic, since when: their messages
    /// still in flight are ignored for [`AUTH_GRACE`], not held against them
    /// (gossipsub sends subscription changes ahead of queued messages).
    departed: HashMap<(PeerName, P), Instant>,
    /// Clock samples (offset ms, anchored) of peers whose exchange is under
    /// way; each counts for peer time once the peer authenticates.
    samples: HashMap<P, (i64, bool)>,
    next_id: u64,
}

impl<P> Default for Exchanges<P> {
    fn default() -> Self {
        Exchanges {
            started: HashMap::new(),
            requests: HashMap::new(),
            answered: HashMap::new(),
            pending: HashMap::new(),
            departed: HashMap::new(),
            samples: HashMap::new(),
            next_id: 0,
        }
    }
}

impl<P> Exchanges<P>
where
    P: Clone + Eq + std::hash::Hash,
{
    fn next_id(&mut self) -> ExchangeId {
        self.next_id = self.next_id.wrapping_add(1);
        ExchangeId(self.next_id)
    }

    /// Whether `peer` waits to authenticate for `group`, or left its topic
    /// as a neighbour a moment ago.
    pub(crate) fn is_pending(&self, group: &PeerName, peer: &P) -> bool {
        let key = (group.clone(), peer.clone());
        self.pending.contains_key(&key) || self.departed.contains_key(&key)
    }

    /// Whether `peer` waits to authenticate for any group.
    pub(crate) fn is_pending_anywhere(&self, peer: &P) -> bool {
        self.pending.keys().any(|(_, p)| p == peer)
    }

    /// `peer` subscribed to `group` at `now`: it has [`AUTH_GRACE`] from
    /// its first subscription to authenticate.
    pub(crate) fn subscribed(&mut self, group: &PeerName, peer: &P, now: Instant) {
        let key = (group.clone(), peer.clone());
        self.departed.remove(&key);
        self.pending.entry(key).or_insert(now);
    }

    /// `peer` authenticated for `group`: it waits no longer.
    pub(crate) fn authenticated(&mut self, group: &PeerName, peer: &P) {
        self.pending.remove(&(group.clone(), peer.clone()));
    }

    /// `peer` left `group`'s topic (`was_neighbor`: as a neighbour).
    pub(crate) fn unsubscribed(
        &mut self,
        group: &PeerName,
        peer: &P,
        was_neighbor: bool,
        now: Instant,
    ) {
        let key = (group.clone(), peer.clone());
        self.pending.remove(&key);
        if was_neighbor {
            self.departed.insert(key, now);
        }
        self.stop(group, peer);
    }

    /// Forgets the exchange this node started with `peer` for `group`.
    pub(crate) fn stop(&mut self, group: &PeerName, peer: &P) {
        let key = (peer.clone(), group.clone());
        if let Some(started) = self.started.remove(&key) {
            self.requests.remove(&started.id);
        }
    }

    /// An exchange with `peer` for `group` failed: nothing of it is kept.
    pub(crate) fn failed(&mut self, group: &PeerName, peer: &P) {
        self.stop(group, peer);
        self.pending.remove(&(group.clone(), peer.clone()));
    }

    /// Forgets everything about `peer` (its last connection closed).
    pub(crate) fn peer_gone(&mut self, peer: &P) {
        self.samples.remove(peer);
        self.pending.retain(|(_, p), _| p != peer);
        self.departed.retain(|(_, p), _| p != peer);
        self.started.retain(|(p, _), _| p != peer);
        self.answered.retain(|(p, _), _| p != peer);
        self.requests.retain(|_, (p, _)| p != peer);
    }

    /// Forgets a group's exchanges (it went offline); returns the peers
    /// that were waiting to authenticate for it.
    pub(crate) fn group_closed(&mut self, group: &PeerName) -> Vec<P> {
        let peers = self
            .pending
            .keys()
            .filter(|(g, _)| g == group)
            .map(|(_, p)| p.clone())
            .collect();
        self.pending.retain(|(g, _), _| g != group);
        self.departed.retain(|(g, _), _| g != group);
        self.started.retain(|(_, g), _| g != group);
        self.answered.retain(|(_, g), _| g != group);
        self.requests.retain(|_, (_, g)| g != group);
        peers
    }

    /// Whether an exchange with `peer` for `group` is under way.
    pub(crate) fn is_started(&self, group: &PeerName, peer: &P) -> bool {
        self.started.contains_key(&(peer.clone(), group.clone()))
    }

    /// Starts an exchange: returns the id its step-1 answer will carry.
    pub(crate) fn start(
        &mut self,
        group: &PeerName,
        peer: &P,
        nonce: [u8; 32],
        sent_at: Timestamp,
    ) -> ExchangeId {
        let id = self.next_id();
        self.requests.insert(id, (peer.clone(), group.clone()));
        self.started.insert(
            (peer.clone(), group.clone()),
            Started {
                nonce,
                responder_nonce: None,
                id,
                sent_at,
            },
        );
        id
    }

    /// The exchange `id` belongs to, if it is the one that exchange waits
    /// for (not an answer to a request of an exchange since replaced).
    pub(crate) fn answer_to(&mut self, id: ExchangeId) -> Option<(P, PeerName)> {
        let (peer, group) = self.requests.remove(&id)?;
        self.started
            .get(&(peer.clone(), group.clone()))
            .is_some_and(|s| s.id == id)
            .then_some((peer, group))
    }

    /// The responder answered step 1 with `nonce`: the exchange's step 2
    /// goes out under a new id. Returns (our nonce, the new id, when step 1
    /// was sent), or `None` if no such exchange is under way.
    pub(crate) fn nonce_received(
        &mut self,
        group: &PeerName,
        peer: &P,
        nonce: [u8; 32],
    ) -> Option<([u8; 32], ExchangeId, Timestamp)> {
        let id = self.next_id();
        let started = self.started.get_mut(&(peer.clone(), group.clone()))?;
        started.responder_nonce = Some(nonce);
        started.id = id;
        let out = (started.nonce, id, started.sent_at);
        self.requests.insert(id, (peer.clone(), group.clone()));
        Some(out)
    }

    /// Ends the exchange with `peer` for `group` and returns its nonces
    /// (ours, theirs) if step 1 was answered.
    pub(crate) fn finish(&mut self, group: &PeerName, peer: &P) -> Option<([u8; 32], [u8; 32])> {
        let started = self.started.remove(&(peer.clone(), group.clone()))?;
        self.requests.remove(&started.id);
        Some((started.nonce, started.responder_nonce?))
    }

    /// As responder: step 1 answered with `ours`.
    pub(crate) fn answered(
        &mut self,
        group: &PeerName,
        peer: &P,
        theirs: [u8; 32],
        ours: [u8; 32],
    ) {
        self.answered
            .insert((peer.clone(), group.clone()), (theirs, ours));
    }

    /// As responder: the nonces (theirs, ours) of the step 1 `peer` sent for
    /// `group`, taken (a step 2 is answered once).
    pub(crate) fn take_answered(
        &mut self,
        group: &PeerName,
        peer: &P,
    ) -> Option<([u8; 32], [u8; 32])> {
        self.answered.remove(&(peer.clone(), group.clone()))
    }

    /// Keeps `peer`'s clock sample until it authenticates.
    pub(crate) fn sample(&mut self, peer: &P, offset_ms: i64, anchored: bool) {
        self.samples.insert(peer.clone(), (offset_ms, anchored));
    }

    /// `peer`'s clock sample, if one was taken.
    pub(crate) fn sample_of(&self, peer: &P) -> Option<(i64, bool)> {
        self.samples.get(peer).copied()
    }

    /// Subscribers whose grace ran out at `now`, and drops departed
    /// neighbours whose grace ran out.
    pub(crate) fn late(&mut self, now: Instant) -> Vec<(PeerName, P)> {
        self.departed
            .retain(|_, since| now < since.checked_add(AUTH_GRACE).unwrap_or(*since));
        self.pending
            .iter()
            .filter(|(_, since)| now >= since.checked_add(AUTH_GRACE).unwrap_or(**since))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// When the next grace runs out.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .chain(self.departed.values())
            .filter_map(|since| since.checked_add(AUTH_GRACE))
            .min()
    }
}

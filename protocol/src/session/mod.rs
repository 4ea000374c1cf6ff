//! The per-group session: a sans-I/O state machine holding everything a node
//! decides about one of its groups.
//!
//! A [`Session`] owns the group's [`GroupState`] (properties, local member,
//! credential chain, readiness), its [`Authorizer`] with held (deferred)
//! records, its lifecycle (closed, open, online; reference 3.2), its
//! neighbours, the connect deadline, synchronization and the index of
//! the record versions it knows. It never touches a socket, a disk, a clock
//! or an RNG: the host feeds it [`Input`]s with the current time
//! ([`Session::handle`]), calls its local API (add, update, delete records,
//! invitations, properties), and executes the [`Output`]s it then drains
//! ([`Session::poll_output`]): subscribe, publish, report a gossip verdict,
//! merge records, persist the group state, request a page, announce, emit
//! an event. It asks to be woken at [`Session::poll_timeout`].
//!
//! Persisting is an output like any other, so a state change that is not
//! persisted is a missing output a unit test sees.
//!
//! Records are validated by one function for every origin (gossip, a sync
//! page, a local write): see `validate`. Signature checks happen before a
//! record gets here (the host verifies on worker threads); the session
//! decides group, expiry, staleness and authorization.
//!
//! `P` identifies peers and `M` gossip messages: libp2p's `PeerId` and
//! gossipsub's `MessageId` in the node, small integers in the simulator.
//!
//! (Over 600 lines, on purpose: this file is the session's state, its
//! constructors and its queries; what it does is in the sibling files, one
//! concern each.)

mod api;
mod event;
mod io;
mod lifecycle;
mod neighbors;
mod outcomes;
mod state;
mod sync;
mod validate;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    time::Duration,
};

use crate::{
    authorize::Authorizer,
    credential::{CredentialChain, Membership},
    error::Error,
    group::{GroupProperties, SignedProperties},
    identity::Identity,
    password::PasswordSecret,
    peer_name::PeerName,
    record::{RecordId, SignedRecord},
    seal::{GroupKey, KeyCommitment},
    signed::Signed,
    time::Timestamp,
};

pub use self::{
    event::{ConnectionChange, Event, EventKind, MemberChange, RecordChange, Status},
    io::{Acceptance, Fetched, Input, Origin, Output, SyncRequest},
    state::GroupState,
    sync::{
        FETCH_BYTES, FETCH_IDS, FETCH_PIPELINE, LastSync, MAX_FAILURES, MAX_ROUNDS, MAX_RUNS,
        SyncProgress, SyncStatus,
    },
    validate::{FUTURE_TOLERANCE, MAX_HELD_PER_PEER, Reason},
};

use self::sync::SyncRun;

/// How long `connect` waits for a first copy by default: 30 s, the timeout
/// Windows recommends for `PeerGroupConnect`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a group still looking for a member asks the clouds again by default.
pub const DEFAULT_FIND_INTERVAL: Duration = Duration::from_secs(2);

/// The longest interval between two lookups of a ready group that lost
/// every neighbour.
pub const MAX_FIND_INTERVAL: Duration = Duration::from_secs(60);

/// How often a ready, online member reconciles with one of its neighbours
/// by default (anti-entropy): 30 s. With no differences a round costs one
/// request of one fingerprint and its answer; it repairs what gossip lost
/// (messages dropped under overload, a neighbour that restarted).
pub const DEFAULT_ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(30);

/// A session's tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long `connect` of a group that never synchronized waits for a
    /// first copy before failing. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// How often a group looking for members asks the clouds again
    /// ([`Output::FindMembers`]). Default [`DEFAULT_FIND_INTERVAL`].
    pub find_interval: Duration,
    /// How often a ready member reconciles with a neighbour. Default
    /// [`DEFAULT_ANTI_ENTROPY_INTERVAL`].
    pub anti_entropy_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            find_interval: DEFAULT_FIND_INTERVAL,
            anti_entropy_interval: DEFAULT_ANTI_ENTROPY_INTERVAL,
        }
    }
}

/// The version of a record this session knows, for stale and duplicate
/// detection and for reconciliation: defined with the store, whose merge
/// answers name the version it holds.
pub use crate::store::Version;

/// What a store holds of a group, to rebuild a session after a restart
/// ([`Session::restore`]).
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// Every stored record's id and version (tombstones included).
    pub versions: Vec<(RecordId, Version)>,
    /// Every stored membership record (live ones and tombstones).
    pub memberships: Vec<SignedRecord>,
}

/// Where a group is in its lifecycle (reference 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Lifecycle {
    /// Known, not open: every call but `open` and `delete` is `PEER_E_INVALID_GROUP`.
    Closed,
    /// Open and offline: the local database is readable.
    Open,
    /// Online: subscribed, discoverable, connected to whoever is found.
    Online,
}

/// Whose share of the hold a held record counts against: the member a
/// neighbour authenticated as, or the neighbour itself when the host did not
/// say.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Holder<P> {
    /// An authenticated member identity.
    Member(PeerName),
    /// A peer of unknown identity.
    Peer(P),
}

/// How often held records are checked for expiry while any are held.
const HOLD_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// A connect that waits for the first copy.
#[derive(Debug, Clone)]
pub(crate) struct ConnectRun<P> {
    deadline: Timestamp,
    next_find: Timestamp,
    /// Neighbours asked for a copy during this connect.
    tried: BTreeSet<P>,
}

/// The per-group state machine. See the module docs.
#[derive(Debug)]
pub struct Session<P, M> {
    state: GroupState,
    identity: Identity,
    authorizer: Authorizer,
    config: SessionConfig,
    lifecycle: Lifecycle,
    status: Status,
    /// The status last reported in [`Event::StatusChanged`] (changes made
    /// in steps report once, against this).
    reported: Status,
    neighbors: BTreeSet<P>,
    connect: Option<ConnectRun<P>>,
    /// Synchronizations in progress, by neighbour.
    syncs: BTreeMap<P, SyncRun>,
    /// When each neighbour last completed a synchronization with this member.
    last_synced: BTreeMap<P, Timestamp>,
    /// A first synchronization ended early: try the next neighbour.
    pending_first_retry: bool,
    /// When the next anti-entropy round is due.
    next_anti_entropy: Timestamp,
    /// A ready, online group without neighbours looks for members again:
    /// when next, and the interval (doubling up to [`MAX_FIND_INTERVAL`]).
    lonely_find: Option<(Timestamp, Duration)>,
    /// The highest version known per record, tombstones included, in id
    /// order (reconciliation walks ranges of it).
    versions: BTreeMap<RecordId, Version>,
    /// Gossip messages whose records the authorizer holds, by envelope hash:
    /// each gets its verdict when its record is released or dropped.
    held_messages: HashMap<[u8; 32], Vec<(P, M)>>,
    /// How many held records each peer sent (bounded by `MAX_HELD_PER_PEER`).
    held_by_peer: HashMap<Holder<P>, usize>,
    /// Which peer sent each held record, by envelope hash.
    held_sources: HashMap<[u8; 32], Holder<P>>,
    /// The member identity each neighbour authenticated as, and until when
    /// its credential is valid ([`Session::neighbor_member`],
    /// [`Session::neighbor_authenticated`]): hold quotas count per member,
    /// so one member cannot multiply its share by connecting from many
    /// peers; a neighbour stops being one when its credential expires.
    neighbor_members: HashMap<P, (PeerName, Timestamp)>,
    /// When held records are next checked for expiry ([`crate::HOLD_TTL`]).
    next_hold_check: Timestamp,
    /// The tag of the last synchronization request sent (unique across
    /// runs, so a late answer to an ended run's request matches nothing).
    next_sync_tag: u64,
    /// The local member's membership record, as last seen.
    own_membership: Option<SignedRecord>,
    /// Every member's newest membership record, as accepted (stored or
    /// about to be): the credential chains the group database holds, which
    /// group authentication hands to members whose own is older.
    membership_records: HashMap<PeerName, SignedRecord>,
    /// Records accepted since the last [`Output::Merge`].
    to_merge: Vec<SignedRecord>,
    /// [`Output::Merge`] batches not yet answered by the store.
    merges_in_flight: u64,
    outputs: VecDeque<Output<P, M>>,
}

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    fn build(
        state: GroupState,
        identity: Identity,
        config: SessionConfig,
        lifecycle: Lifecycle,
    ) -> Result<Session<P, M>, Error> {
        state.check()?;
        if identity.peer_name() != &state.member {
            return Err(Error::InvalidArg(format!(
                "the identity {} is not the group's member {}",
                identity.peer_name(),
                state.member
            )));
        }
        let mut authorizer = Authorizer::new(&state.properties);
        authorizer.learn_chain(&state.chain)?;
        let status = Status {
            ready: state.ready,
            ..Status::default()
        };
        Ok(Session {
            state,
            identity,
            authorizer,
            config,
            lifecycle,
            status,
            reported: status,
            neighbors: BTreeSet::new(),
            connect: None,
            syncs: BTreeMap::new(),
            last_synced: BTreeMap::new(),
            pending_first_retry: false,
            next_anti_entropy: Timestamp::EPOCH,
            lonely_find: None,
            versions: BTreeMap::new(),
            held_messages: HashMap::new(),
            held_by_peer: HashMap::new(),
            held_sources: HashMap::new(),
            neighbor_members: HashMap::new(),
            next_hold_check: Timestamp::EPOCH,
            next_sync_tag: 0,
            own_membership: None,
            membership_records: HashMap::new(),
            to_merge: Vec::new(),
            merges_in_flight: 0,
            outputs: VecDeque::new(),
        })
    }

    /// `PeerGroupCreate`: the session of a group `identity` just created with
    /// `properties`, sealing with `key` (32 random bytes from the host, epoch 0).
    /// Properties without a key commitment get one (re-signed by the
    /// creator); a commitment to another key is `InvalidArg`. It is open and
    /// ready; its state is to be persisted.
    pub fn create(
        properties: SignedProperties,
        identity: Identity,
        key: GroupKey,
        config: SessionConfig,
    ) -> Result<Session<P, M>, Error> {
        let group = properties.properties().group_peer_name.clone();
        let properties = match properties.properties().key_commitment {
            Some(c) if c.matches(&key, &group) => properties,
            Some(_) => {
                return Err(Error::InvalidArg(
                    "the properties commit to another group key".into(),
                ));
            }
            None => {
                let mut committed = properties.properties().clone();
                committed.key_commitment = Some(KeyCommitment::to(&key, &group));
                Signed::sign(committed, identity.keypair())?
            }
        };
        let state = GroupState {
            member: identity.peer_name().clone(),
            properties,
            chain: CredentialChain::creator(),
            ready: true,
            keys: vec![key],
            password: None,
        };
        let mut session = Session::build(state, identity, config, Lifecycle::Open)?;
        session.persist();
        Ok(session)
    }

    /// `PeerGroupJoin`: the session of a group `identity` joined with `chain`.
    /// It is open and not ready until its first copy; its state is to be persisted.
    pub fn join(
        properties: SignedProperties,
        identity: Identity,
        chain: CredentialChain,
        config: SessionConfig,
    ) -> Result<Session<P, M>, Error> {
        let state = GroupState {
            member: identity.peer_name().clone(),
            properties,
            chain,
            ready: false,
            keys: Vec::new(),
            password: None,
        };
        let mut session = Session::build(state, identity, config, Lifecycle::Open)?;
        session.persist();
        Ok(session)
    }

    /// A session rebuilt after a restart from its persisted `state` and what
    /// the store holds: the record versions (for stale and duplicate
    /// detection) and the membership records (so that every membership
    /// learned before is known again). It comes back closed.
    pub fn restore(
        state: GroupState,
        identity: Identity,
        config: SessionConfig,
        stored: Stored,
    ) -> Result<Session<P, M>, Error> {
        let mut session = Session::build(state, identity, config, Lifecycle::Closed)?;
        session.versions = stored.versions.into_iter().collect();
        let own = RecordId::membership(&session.state.member);
        for record in stored.memberships {
            if record.record().id == own {
                session.own_membership = Some(record.clone());
            }
            session.note_membership_record(&record);
            // What was stored was accepted before; offering it again only
            // teaches the authorizer the chains it carries. Nothing is merged.
            session.authorizer.handle(record);
        }
        Ok(session)
    }

    // ----- queries -------------------------------------------------------------

    /// The group's peer name.
    pub fn name(&self) -> &PeerName {
        self.state.group()
    }

    /// The persisted state.
    pub fn state(&self) -> &GroupState {
        &self.state
    }

    /// The local member's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The lifecycle stage.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// Whether the group is online (subscribed and looking for neighbours).
    pub fn is_online(&self) -> bool {
        self.lifecycle == Lifecycle::Online
    }

    /// The current neighbours.
    pub fn neighbors(&self) -> impl Iterator<Item = &P> {
        self.neighbors.iter()
    }

    /// The version of `id` this session knows, if any.
    pub fn version(&self, id: &RecordId) -> Option<Version> {
        self.versions.get(id).copied()
    }

    /// How many records the authorizer holds for later validation.
    pub fn held(&self) -> usize {
        self.authorizer.held()
    }

    /// Learns a group data key (received wrapped during authentication);
    /// persists the state if it is new. Returns whether it was.
    /// `NotAuthorized` for a key the creator did not commit to in the
    /// properties (a member substituting its own).
    pub fn learn_key(&mut self, key: GroupKey) -> Result<bool, Error> {
        if let Some(held) = self.state.key(key.epoch()) {
            return if *held == key {
                Ok(false)
            } else {
                Err(Error::NotAuthorized(format!(
                    "a different key for epoch {}: the creator did not commit to it",
                    key.epoch()
                )))
            };
        }
        let group = self.name().clone();
        match self.state.properties().key_commitment {
            Some(c) if c.matches(&key, &group) => {}
            Some(_) => {
                return Err(Error::NotAuthorized(
                    "a group key the creator did not commit to".into(),
                ));
            }
            // A group from before key commitments: its first epoch-0 key only.
            None if key.epoch() == 0 && self.state.keys.is_empty() => {}
            None => {
                return Err(Error::NotAuthorized(
                    "a second group key for a group without a key commitment".into(),
                ));
            }
        }
        self.state.keys.push(key);
        self.state.keys.sort_by_key(GroupKey::epoch);
        self.persist();
        Ok(true)
    }

    /// Keeps the password secret of the group's current password policy
    /// (this member set the password, joined with it, or was handed it by
    /// a holder); persists the state. Returns whether it was new. A secret
    /// of another password (another salt) is not kept.
    pub fn remember_password(&mut self, secret: PasswordSecret) -> bool {
        let current = self
            .state
            .properties()
            .password
            .as_ref()
            .is_some_and(|policy| secret.is_for(policy));
        if !current || self.state.password.as_ref() == Some(&secret) {
            return false;
        }
        self.state.password = Some(secret);
        self.persist();
        true
    }

    /// A password secret a neighbour handed over, the neighbour having proved
    /// `from`: kept (and persisted) when it comes from the creator, which set
    /// the password and overrides any other, or from a member that may admit
    /// password joiners itself while this member holds none. Anything else
    /// is ignored: the secret cannot be checked (nothing derived from the
    /// password is published), so a member that may not admit cannot plant
    /// one. Returns whether it was kept.
    pub fn offer_password(&mut self, secret: PasswordSecret, from: &Membership) -> bool {
        let Some(policy) = self.state.properties().password.as_ref() else {
            return false;
        };
        let from_creator = from.subject == self.state.properties().creator_peer_name;
        let may_admit = from.role.can_grant(policy.role);
        if from_creator || (may_admit && self.state.password_secret().is_none()) {
            self.remember_password(secret)
        } else {
            false
        }
    }

    /// Adopts a credential chain for the local member presented by a
    /// neighbour (renewed or changed, stored in the group database): it must
    /// verify, name the member, and start later than the current one.
    /// Persists the state when adopted. Returns whether it was.
    pub fn adopt_chain(&mut self, chain: CredentialChain) -> bool {
        let props = self.state.properties();
        let (Ok(new), Ok(current)) = (chain.verify(props), self.state.chain.verify(props)) else {
            return false;
        };
        if new.subject != self.state.member
            || chain == self.state.chain
            || new.not_before <= current.not_before
        {
            return false;
        }
        self.state.chain = chain;
        let _ = self.authorizer.learn_chain(&self.state.chain);
        self.persist();
        true
    }

    /// `InvalidGroup` unless the group is open (or online).
    pub fn check_open(&self) -> Result<(), Error> {
        match self.lifecycle {
            Lifecycle::Closed => Err(Error::InvalidGroup(format!(
                "group {} is closed",
                self.name()
            ))),
            Lifecycle::Open | Lifecycle::Online => Ok(()),
        }
    }

    /// `InvalidGroup` unless open, `GroupNotReady` unless ready: what every
    /// record, invitation and property call requires.
    pub fn check_ready(&self) -> Result<(), Error> {
        self.check_open()?;
        if !self.state.ready {
            return Err(Error::GroupNotReady);
        }
        Ok(())
    }

    /// `PeerGroupGetStatus`.
    pub fn status(&self) -> Result<Status, Error> {
        self.check_open()?;
        Ok(self.status)
    }

    /// `PeerGroupEnumConnections`: the neighbours.
    pub fn connections(&self) -> Result<Vec<P>, Error> {
        self.check_open()?;
        Ok(self.neighbors.iter().cloned().collect())
    }

    /// `PeerGroupGetProperties`.
    pub fn properties(&self) -> Result<&GroupProperties, Error> {
        self.check_ready()?;
        Ok(self.state.properties())
    }

    /// `PeerGroupEnumMembers`: the creator and every membership known from
    /// chains and membership records.
    pub fn members(&self) -> Result<Vec<Membership>, Error> {
        self.check_ready()?;
        let mut out = vec![Membership::creator(self.state.properties())];
        for (_, memberships) in self.authorizer.members() {
            out.extend(memberships.iter().filter(|m| m.chain_len > 1).cloned());
        }
        Ok(out)
    }

    // ----- the sans-I/O loop -----------------------------------------------------

    /// Feeds one input at peer time `now` (the host's groups router passes
    /// it, `crate::groups::Groups::handle`). Then drain [`Session::poll_output`].
    pub fn handle(&mut self, input: Input<P, M>, now: Timestamp) {
        self.dispatch(input, now);
        self.flush_merges();
    }

    /// The next output to execute, oldest first. Call it after every
    /// [`Session::handle`] and local API call until it returns `None`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output<P, M>> {
        self.outputs.pop_front()
    }

    /// The host's clock stepped by `delta_ms` (peer time adopted a
    /// neighbour's, `crate::PeerClock`): moves every deadline the session
    /// keeps by as much, so that a timer set before the step fires after
    /// the same wait (a joiner whose clock was 10 minutes slow would
    /// otherwise miss its connect deadline at once; one 10 minutes fast
    /// would wait 10 minutes more).
    pub fn shift_clock(&mut self, delta_ms: i64) {
        if let Some(connect) = self.connect.as_mut() {
            connect.deadline = connect.deadline.saturating_offset(delta_ms);
            connect.next_find = connect.next_find.saturating_offset(delta_ms);
        }
        for at in self.last_synced.values_mut() {
            *at = at.saturating_offset(delta_ms);
        }
        self.next_anti_entropy = self.next_anti_entropy.saturating_offset(delta_ms);
        if let Some((at, _)) = self.lonely_find.as_mut() {
            *at = at.saturating_offset(delta_ms);
        }
        self.next_hold_check = self.next_hold_check.saturating_offset(delta_ms);
    }

    /// When to feed [`Input::Timeout`] next, if the session waits for a time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let connect = self.connect.as_ref().map(|c| c.deadline.min(c.next_find));
        let holds = (self.authorizer.held() > 0).then_some(self.next_hold_check);
        let retry = self.pending_first_retry.then_some(Timestamp::EPOCH);
        [connect, holds, retry, self.sync_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Tells the session which member identity `peer` authenticated as
    /// (before or with [`Input::NeighborUp`]): its held records count
    /// against that member's share.
    pub fn neighbor_member(&mut self, peer: P, member: PeerName) {
        self.neighbor_members
            .insert(peer, (member, Timestamp::from_millis(u64::MAX)));
    }

    fn holder(&self, peer: &P) -> Holder<P> {
        match self.neighbor_members.get(peer) {
            Some((member, _)) => Holder::Member(member.clone()),
            None => Holder::Peer(peer.clone()),
        }
    }

    /// Drops held records that expired or waited [`crate::HOLD_TTL`]; their gossip
    /// messages are reported as ignored.
    pub(super) fn expire_holds(&mut self, now: Timestamp) {
        if now < self.next_hold_check {
            return;
        }
        self.next_hold_check = now.saturating_add(HOLD_CHECK_INTERVAL);
        for record in self.authorizer.expire_held(now) {
            self.report_held(
                crate::store::envelope_hash(record.as_bytes()),
                Reason::Expired,
            );
        }
    }

    // ----- helpers -----------------------------------------------------------------

    pub(crate) fn persist(&mut self) {
        self.outputs
            .push_back(Output::Persist(Box::new(self.state.clone())));
    }

    pub(crate) fn emit(&mut self, event: Event<P>) {
        self.outputs.push_back(Output::Emit(event));
    }

    pub(crate) fn refresh_status(&mut self) {
        self.status.has_connections = !self.neighbors.is_empty();
        self.status.ready = self.state.ready;
        if self.status != self.reported {
            self.reported = self.status;
            self.emit(Event::StatusChanged {
                group: self.name().clone(),
                status: self.status,
            });
        }
    }

    pub(crate) fn flush_merges(&mut self) {
        if !self.to_merge.is_empty() {
            let batch = std::mem::take(&mut self.to_merge);
            self.merges_in_flight = self.merges_in_flight.saturating_add(1);
            self.outputs.push_back(Output::Merge(batch));
        }
    }
}

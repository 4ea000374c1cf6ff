//! [`Behaviour`]: peergroup as a libp2p `NetworkBehaviour` that owns its state.
//!
//! An application embeds peergroup by adding one field of this type to its
//! own `#[derive(NetworkBehaviour)]` struct, calling its methods (they mirror
//! the Windows functions) and matching its [`Event`]s: there is nothing to
//! forward, tick, flush or drain, and no clock or nonce to pass.
//!
//! Inside, a private derived [`Inner`] composes the libp2p behaviours it
//! builds on (gossipsub, the sync request-response protocol, and optional
//! Kademlia, mDNS and identify); every connection hook is forwarded to it.
//! Beside it: the groups' sans-I/O sessions (`peergroup_protocol::Session`),
//! the keystore, the storage worker and the verify pool (both off the swarm
//! task), timers on an injectable clock, a seeded RNG, and an outbox.
//!
//! `poll` works in this order: events and swarm actions already queued;
//! storage completions; verification results; due timers; retries of work
//! that found a full queue; and only then, while nothing is backlogged, the
//! inner behaviours. A full storage or verification queue thus stops the
//! node from reading more from the network instead of growing without bound.

mod admission;
mod api;
mod connections;
mod discovery;
mod gossip;
mod inner;
mod network;
mod peer_time;
mod route;
mod sync;
mod work;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    task::{Context, Waker},
    time::Instant,
};

use futures::FutureExt;
use futures_timer::Delay;
use libp2p::{
    PeerId,
    gossipsub::MessageId,
    identity::Keypair,
    swarm::{THandlerInEvent, ToSwarm},
};
use peergroup_protocol::{
    GroupFlags, GroupKey, KeyCommitment, PeerName, RecordType, Signed, SignedRecord,
    admission::Admission,
    session::{Input, Origin, SessionConfig, Stored},
};
use rand::{RngExt as _, SeedableRng, rngs::StdRng};

use self::inner::Inner;
use self::inner::InnerEvent;
pub use self::{
    api::{DEFAULT_INVITATION_LIFETIME, GroupEntry, live_records},
    inner::{IDENTIFY_PROTOCOL, KAD_PROTOCOL},
};
use crate::{
    auth::AuthRequests,
    config::BehaviourConfig,
    discovery::Discovery,
    error::NodeError,
    groups::{GroupSession, Groups},
    keystore::Keystore,
    password::PasswordRequests,
    pipeline::{Pipeline, WriteFor},
    storage::{Backend, MemoryBackend, RedbStore, WriteOp},
    sync::SyncRequests,
};
pub use crate::{
    clock::{Clock, ManualClock, SystemClock},
    error::BuildError,
    event::{Event, GroupEvent, GroupEventKind, OperationError, OperationId},
};

/// Counters of things that are dropped or late, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Gossip verdicts gossipsub no longer wanted: the message had left its
    /// cache (a held record released late, say).
    pub late_verdicts: u64,
    /// Gossip messages ignored because the verify queue was full.
    pub dropped_busy: u64,
    /// Synchronization requests refused because too many were being served.
    pub refused_busy: u64,
    /// Gossip messages forwarded by peers not authenticated for their group
    /// (never judged, never stored).
    pub gossip_from_strangers: u64,
    /// Group authentications that failed (each also raised
    /// [`Event::AuthenticationFailed`]).
    pub authentication_failures: u64,
    /// Peers disconnected because their gossipsub score fell below the
    /// graylist threshold.
    pub graylisted: u64,
    /// Neighbours cut off for serving invalid synchronization data.
    pub misbehaved: u64,
    /// Password checks this member ran that failed (each an online guess;
    /// each also raised [`Event::AuthenticationFailed`]).
    pub password_failures: u64,
}

/// The peergroup network behaviour. See the module docs.
pub struct Behaviour {
    pub(crate) inner: Inner,
    pub(crate) local_peer: PeerId,
    pub(crate) config: BehaviourConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: StdRng,
    pub(crate) keystore: Keystore,
    /// The sessions, group authentication, neighbours and peer time
    /// (`peergroup_protocol::groups`).
    pub(crate) groups: Groups,
    /// Storage and verification off the swarm task.
    pub(crate) work: Pipeline,
    pub(crate) discovery: Discovery,
    /// Authentication requests in flight, gossip score checks (the
    /// exchange itself is the groups router's).
    pub(crate) auth_requests: AuthRequests,
    /// Password admission (`peergroup_protocol::admission`), both roles.
    pub(crate) admission: Admission<PeerId>,
    /// Which join each password request belongs to.
    pub(crate) password_requests: PasswordRequests,
    pub(crate) connected: HashSet<PeerId>,
    /// Synchronization requests sent, fetches being verified and served.
    pub(crate) sync: SyncRequests,
    pub(crate) connects: HashMap<PeerName, Vec<OperationId>>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) actions: VecDeque<ToSwarm<Event, THandlerInEvent<Inner>>>,
    /// The one timer: when the behaviour next has something due
    /// (monotonic), and the sleep until then.
    pub(crate) timer: Option<(Instant, Delay)>,
    /// When the expiry pass next runs (monotonic).
    pub(crate) next_expiry: Instant,
    pub(crate) next_op: u64,
    pub(crate) waker: Option<Waker>,
    pub(crate) stats: Stats,
    /// Prometheus metrics (no-ops until [`Behaviour::register_metrics`]).
    pub(crate) metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour")
            .field("local_peer", &self.local_peer)
            .field("groups", &self.groups.names())
            .field("work", &self.work)
            .finish_non_exhaustive()
    }
}

impl Behaviour {
    /// Builds the behaviour for the node whose transport key is `key`: opens
    /// the data directory's store if the configuration has one (restoring
    /// identities and groups; groups come back closed) or keeps everything in
    /// memory, and starts the storage and verification threads.
    ///
    /// Errors: an unusable data directory or database file
    /// ([`NodeError::Open`], naming the file), a store whose rows do not
    /// verify, or a behaviour that cannot start.
    pub fn new(key: &Keypair, config: impl Into<BehaviourConfig>) -> Result<Behaviour, NodeError> {
        let config = config.into();
        let backend: Arc<dyn Backend> = match &config.data_dir {
            Some(dir) => Arc::new(RedbStore::open_in_dir(dir)?),
            None => Arc::new(MemoryBackend::new()),
        };
        Behaviour::with_backend(key, config, backend)
    }

    /// Like [`Behaviour::new`], over an already opened backend (the data
    /// directory in `config` is not opened again).
    pub fn with_backend(
        key: &Keypair,
        config: impl Into<BehaviourConfig>,
        backend: Arc<dyn Backend>,
    ) -> Result<Behaviour, NodeError> {
        let config = config.into();
        let inner = Inner::new(&key.public(), &config)?;
        let clock = config.clock.clone();
        let mut rng = match config.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| NodeError::Random(e.to_string()))?;
                StdRng::from_seed(seed)
            }
        };
        let keystore = Keystore::new(backend.identities()?);
        // Peer time as it stood before a restart (a clock that runs fast
        // stamps with the group's time, not its own).
        let mut groups = Groups::new(
            key.public().to_peer_id().to_bytes(),
            backend.clock_offset()?.unwrap_or(0),
        );
        let session_config = session_config(&config);
        for mut state in backend.groups()? {
            let name = state.group().clone();
            if state.keys.is_empty() && state.is_creator() {
                // A group created before group keys existed (a schema-1
                // file, or a groups-2 row of format 1): its creator makes
                // epoch 0 and commits to it in a new revision of the
                // properties, written at once so that it survives the next
                // start; members receive both when they next authenticate
                // with the creator or synchronize. (A member of such a group
                // that restarts before the creator is online has no key and
                // exchanges no gossip until then.)
                let key = GroupKey::new(0, rng.random());
                let creator = keystore.get(&state.member)?.clone();
                let mut properties = state.properties().clone();
                properties.revision = properties.revision.saturating_add(1);
                properties.key_commitment = Some(KeyCommitment::to(&key, &name));
                state.properties =
                    Signed::sign(properties, creator.keypair()).map_err(NodeError::from)?;
                state.keys.push(key);
                backend.apply(&[WriteOp::SaveGroup(Box::new(state.clone()))])?;
            }
            let identity = keystore.get(&state.member)?.clone();
            let stored = Stored {
                versions: backend.versions(&name)?,
                memberships: stored_memberships(&*backend, &name)?,
            };
            groups.insert(GroupSession::restore(
                state,
                identity,
                session_config,
                stored,
            )?);
        }
        let mut discovery = Discovery::new(&config);
        discovery.restore(backend.known_peers()?);
        let work = Pipeline::new(backend).map_err(BuildError::Thread)?;
        let next_expiry = clock
            .instant()
            .checked_add(config.expiry_interval)
            .unwrap_or_else(|| clock.instant());
        Ok(Behaviour {
            inner,
            local_peer: key.public().to_peer_id(),
            discovery,
            auth_requests: AuthRequests::default(),
            admission: Admission::new(key.public().to_peer_id().to_bytes()),
            password_requests: PasswordRequests::default(),
            next_expiry,
            config,
            clock,
            rng,
            keystore,
            groups,
            work,
            connected: HashSet::new(),
            sync: SyncRequests::default(),
            connects: HashMap::new(),
            events: VecDeque::new(),
            actions: VecDeque::new(),
            timer: None,
            next_op: 0,
            waker: None,
            stats: Stats::default(),
            metrics: crate::metrics::Metrics::default(),
        })
    }

    /// Closes the storage worker's queues: the returned handle's
    /// [`Closing::wait`](crate::storage::Closing::wait) blocks until every
    /// write made so far is committed and the store is released (call it on
    /// a thread that may block). Dropping the behaviour also lets the
    /// worker finish, but without waiting for it: dropping never blocks.
    /// Writes made after it fail (`Event::StoreFailed`).
    pub fn close_store(&mut self) -> crate::storage::Closing {
        self.work.flush();
        self.work.close()
    }

    /// The node's libp2p peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer
    }

    /// Registers the behaviour's metrics in `registry`: libp2p's
    /// (gossipsub, Kademlia, identify) and the node's (see the table in
    /// `docs/metrics.md`). Call it once, before the swarm runs; a host that
    /// also wants libp2p's connection metrics records its swarm events with
    /// the same registry ([`crate::Node::spawn_with_metrics`] does both).
    #[cfg(feature = "metrics")]
    pub fn register_metrics(&mut self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics = crate::metrics::Metrics::register(registry);
    }

    /// Counters of dropped and late work.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Writes queued for the store and not committed yet.
    pub(crate) fn queued_writes(&self) -> usize {
        self.work.queued_writes()
    }

    /// Whether work waits for room in the storage or verification queues.
    /// While it does, the behaviour reads nothing more from the network; a
    /// host should also stop taking new commands (the node does).
    pub fn is_backlogged(&self) -> bool {
        self.work.is_backlogged()
    }

    /// The store, for reads off the swarm task (the node answers
    /// enumerations and digests on blocking threads through it). It sees
    /// committed data only; the behaviour's own reads also see local writes
    /// still being committed.
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.work.backend().clone()
    }

    pub(crate) fn operation(&mut self) -> OperationId {
        self.next_op = self.next_op.wrapping_add(1);
        OperationId(self.next_op)
    }

    pub(crate) fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    // ----- sessions ------------------------------------------------------------

    /// Feeds `input` to `group`'s session and executes what follows.
    pub(crate) fn handle(&mut self, group: &PeerName, input: Input<PeerId, MessageId>) {
        let now = self.clocks();
        self.groups.handle(group, input, now);
        self.drive_all();
    }

    /// Executes `group`'s pending outputs (`local`: they follow a local
    /// write, whose records reads must see at once), then everything else
    /// the groups router has.
    pub(crate) fn drive(&mut self, group: &PeerName, local: bool) {
        while let Some(output) = self.groups.poll_session_output(group) {
            self.execute(group, output, local);
        }
        self.drive_all();
    }

    /// Executes the groups router's outputs until it has none.
    pub(crate) fn drive_all(&mut self) {
        while let Some(output) = self.groups.poll_output() {
            self.execute_router(output);
        }
        self.wake();
    }

    /// Runs what is due and arms the one timer for what comes next: the
    /// earliest deadline of the groups router (sessions, authentication
    /// graces, credential expiries), the gossip score check, password
    /// admission, discovery and the expiry pass, all on the monotonic
    /// clock. Returns whether anything ran.
    pub(super) fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        let now = self.clocks();
        // The groups router reads the clocks on every pass: a step of the
        // wall clock moves the sessions' deadlines before anything is due.
        self.groups.observe(now);
        let mut ran = false;
        if self
            .groups
            .poll_timeout(now)
            .is_some_and(|at| at <= now.instant)
        {
            self.groups.handle_timeout(now, &mut self.rng);
            self.drive_all();
            ran = true;
        }
        let graylisted =
            self.auth_requests
                .check_scores(&self.inner.gossipsub, &self.groups, now.instant);
        for (peer, score, groups) in graylisted {
            tracing::warn!(%peer, score, "graylisted by its gossip: disconnecting");
            self.stats.graylisted = self.stats.graylisted.saturating_add(1);
            for group in groups {
                let reason = crate::auth::graylisted_reason(score);
                self.groups.cut_off(&group, &peer, reason, now);
            }
            self.drive_all();
            ran = true;
        }
        let peer_now = self.now();
        ran |= self.admission_timers(now);
        if now.instant >= self.next_expiry {
            self.next_expiry = now
                .instant
                .checked_add(self.config.expiry_interval)
                .unwrap_or(now.instant);
            // `PEER_DEFER_EXPIRATION` (reference 3.4): an offline group's
            // records do not expire until it is connected again.
            let keep = self
                .groups
                .iter()
                .filter(|(_, s)| {
                    !s.is_online()
                        && s.state()
                            .properties()
                            .flags
                            .contains(GroupFlags::DEFER_EXPIRATION)
                })
                .map(|(name, _)| name.clone())
                .collect();
            self.work.queue_write(
                Some(WriteOp::Expire {
                    now: peer_now,
                    keep,
                }),
                WriteFor::Expire,
            );
            ran = true;
        }
        let discovery = self.run_discovery_timers();
        let next = [
            self.groups.poll_timeout(now),
            self.auth_requests.poll_timeout(),
            self.admission.poll_timeout(),
            discovery,
        ]
        .into_iter()
        .flatten()
        .fold(self.next_expiry, Instant::min);
        // One timer: sleep until the earliest deadline (an injected clock
        // that a test moves wakes the behaviour itself).
        self.clock.wake_on_change(cx.waker());
        if self.timer.as_ref().is_none_or(|(at, _)| *at != next) {
            let sleep = next.saturating_duration_since(now.instant);
            self.timer = Some((next, Delay::new(sleep)));
        }
        if let Some((_, delay)) = self.timer.as_mut()
            && delay.poll_unpin(cx).is_ready()
        {
            // Sleep again from now on: the next call re-arms it.
            self.timer = None;
            cx.waker().wake_by_ref();
        }
        ran
    }

    /// Fans out what happened to a peer or a group to every component that
    /// reacts to it: the one place a new component (a group protocol) hooks
    /// into peers and groups coming and going. Raised where libp2p or the
    /// groups router reports it (`network.rs`, `gossip.rs`, `route.rs`).
    pub(super) fn happened(&mut self, what: Happened<'_>) {
        match what {
            Happened::PeerConnected(peer) => {
                self.connected.insert(peer);
                self.discovery_connected(peer);
            }
            Happened::PeerReconnected(peer) => self.on_peer_reconnected(peer),
            Happened::PeerGone(peer) => {
                self.connected.remove(&peer);
                let now = self.clocks();
                self.groups.peer_gone(&peer, now);
                self.drive_all();
                self.admission_peer_gone(&peer, now);
                self.discovery_disconnected(peer);
            }
            Happened::ForeignTopic { topic, peer } => self.admission_candidate(topic, peer),
            Happened::GroupOnline(group) => self.join_topic(group),
            Happened::GroupOffline(group) => self.leave_topic(group),
            Happened::NeighborUp {
                group,
                peer,
                member,
            } => {
                tracing::debug!(%group, %peer, %member, "neighbour authenticated");
                self.remember_member(group, peer);
            }
        }
    }

    /// A payload on `group`'s gossip of a kind that records and properties
    /// are not: a group protocol claims its kind here. None does yet: a kind
    /// this build knows is malformed on gossip, an unknown one a newer
    /// build's, ignored ([`crate::gossip::wire::not_carried`]); the session
    /// gives the verdict.
    pub(super) fn on_group_payload(
        &mut self,
        group: &PeerName,
        origin: Origin<PeerId, MessageId>,
        kind: u8,
        _bytes: Vec<u8>,
    ) {
        let error = crate::gossip::wire::not_carried(kind);
        self.handle(
            group,
            Input::Record {
                record: Err(error),
                origin,
            },
        );
    }

    pub(super) fn on_inner_event(&mut self, event: InnerEvent) {
        match &event {
            InnerEvent::Gossipsub(e) => self.metrics.gossipsub(e),
            InnerEvent::Kademlia(e) => self.metrics.kad(e),
            InnerEvent::Identify(e) => self.metrics.identify(e),
            InnerEvent::Ping(e) => self.metrics.ping(e),
            _ => {}
        }
        match event {
            InnerEvent::Gossipsub(e) => self.on_gossip_event(e),
            InnerEvent::Auth(e) => {
                let now = self.clocks();
                self.auth_requests.on_event(
                    e,
                    &mut self.inner.auth,
                    &mut self.groups,
                    now,
                    &mut self.rng,
                );
                self.drive_all();
            }
            InnerEvent::Password(e) => self.on_password_event(e),
            InnerEvent::Sync(e) => self.on_sync_event(e),
            InnerEvent::Kademlia(e) => self.on_kad_event(e),
            InnerEvent::Mdns(e) => self.on_mdns_event(e),
            InnerEvent::Identify(e) => self.on_identify_event(e),
            InnerEvent::Ping(e) => self.on_ping_event(e),
        }
    }
}

/// What happened to a peer or a group, for [`Behaviour::happened`] to fan
/// out. A fact a new component needs (a neighbour leaving, an address
/// changing) gets a variant here, raised where it is reported.
#[derive(Debug)]
pub(super) enum Happened<'a> {
    /// A first connection to a peer opened.
    PeerConnected(PeerId),
    /// A further connection to a connected peer opened (the older one may
    /// have died silently, and the peer redialed).
    PeerReconnected(PeerId),
    /// The last connection to a peer closed.
    PeerGone(PeerId),
    /// A peer subscribed to a topic that is none of this node's groups'
    /// (a group a password join may be waiting for).
    ForeignTopic {
        /// The topic.
        topic: &'a libp2p::gossipsub::TopicHash,
        /// The peer.
        peer: PeerId,
    },
    /// A group went online here (its session asked to subscribe).
    GroupOnline(&'a PeerName),
    /// A group went offline here.
    GroupOffline(&'a PeerName),
    /// A peer proved its membership of a group: it is a neighbour there.
    NeighborUp {
        /// The group.
        group: &'a PeerName,
        /// The neighbour's peer id.
        peer: PeerId,
        /// The member it authenticated as.
        member: &'a PeerName,
    },
}

/// The session tunables the node's configuration sets.
pub(crate) fn session_config(config: &BehaviourConfig) -> SessionConfig {
    SessionConfig {
        connect_timeout: config.connect_timeout,
        anti_entropy_interval: config.anti_entropy_interval,
        ..SessionConfig::default()
    }
}

/// Every membership record of `group` in the store.
fn stored_memberships(
    backend: &dyn Backend,
    group: &PeerName,
) -> Result<Vec<SignedRecord>, NodeError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = backend.records(group, Some(RecordType::MEMBERSHIP), after, 1024)?;
        let full = page.len() == 1024;
        after = page.last().map(|r| r.record().id);
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

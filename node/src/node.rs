//! [`Node`]: the event loop that owns the `Swarm`, and the [`Handle`] that
//! everything else holds.
//!
//! One task owns the swarm and the [`Engine`]. A [`Handle`] sends it
//! commands over a bounded channel ([`COMMAND_CAPACITY`]); each command
//! carries its own oneshot reply. Events go out through a bounded broadcast
//! ring ([`crate::events::EVENT_CAPACITY`]) that never waits for a slow
//! subscriber. The loop ends on [`Handle::shutdown`] or when every handle is
//! dropped; after that every handle call returns [`NodeError::Shutdown`].

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::{FutureExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, identity, multiaddr::Protocol, noise,
    swarm::SwarmEvent, tcp, yamux,
};
use peergroup_protocol::{
    CredentialChain, Digest, GroupProperties, GroupSpec, IdentityInfo, Membership, MemoryStore,
    NewRecord, PeerName, Record, RecordId, RecordType, Role, Signed, Timestamp,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    behaviour::Behaviour,
    config::Config,
    engine::{ConnectStart, Engine},
    error::NodeError,
    events::{EVENT_CAPACITY, Event, EventFilter, Status, Subscription},
    store::RedbStore,
};

/// How many commands may wait for the event loop; senders wait beyond it
/// (backpressure on API callers, never on the swarm).
pub const COMMAND_CAPACITY: usize = 1024;

/// How long [`Node::spawn`] waits for the first listen address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the loop runs the engine's timers.
const TIMER_INTERVAL: Duration = Duration::from_millis(250);

/// How many ready swarm events the loop handles before merging what they
/// delivered in one store batch.
const EVENT_BURST: usize = 512;

/// Wall-clock now, as the protocol's [`Timestamp`].
pub(crate) fn wall_now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

fn random<const N: usize>() -> Result<[u8; N], NodeError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| NodeError::Random(e.to_string()))?;
    Ok(bytes)
}

/// The state the event loop owns; commands run against it.
struct Ctx {
    swarm: Swarm<Behaviour>,
    engine: Engine,
    events: broadcast::Sender<Event>,
    waiters: HashMap<PeerName, Vec<oneshot::Sender<Result<(), NodeError>>>>,
}

type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

/// A message into the event loop.
///
/// Each request is a job that runs against the loop's state and answers on
/// the oneshot `reply` it captured; [`Handle`]'s typed methods build them.
/// (One variant instead of one per API call: every call needs the same
/// thing, exclusive access to the engine and the swarm, and the typed
/// signatures live on the handle.)
enum Command {
    Run(Job),
    Shutdown { reply: oneshot::Sender<()> },
}

/// A peer-group node: [`Node::spawn`] starts one.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Starts a node on the current tokio runtime: builds the transport (TCP +
    /// Noise + Yamux, plus QUIC with the `quic` feature), listens, and spawns
    /// the event loop. Returns a handle and a subscription to all events.
    pub async fn spawn(config: Config) -> Result<(Handle, Subscription), NodeError> {
        let key = match config.transport_seed {
            Some(seed) => identity::Keypair::ed25519_from_bytes(seed)
                .map_err(|e| NodeError::Transport(e.to_string()))?,
            None => identity::Keypair::generate_ed25519(),
        };
        let behaviour = Behaviour::new(&key, &config)?;
        let builder = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NodeError::Transport(e.to_string()))?;
        #[cfg(feature = "quic")]
        let builder = builder.with_quic();
        let mut swarm = builder
            .with_behaviour(|_| behaviour)
            .map_err(|e| NodeError::Transport(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        listen(&mut swarm, &config)?;

        let mut engine = match &config.data_dir {
            None => Engine::new(
                *swarm.local_peer_id(),
                &config,
                Box::new(MemoryStore::new()),
            ),
            Some(dir) => {
                let store = RedbStore::open_in_dir(dir)?;
                let identities = store.identities().map_err(|e| NodeError::Store(e.into()))?;
                let mut groups = Vec::new();
                for entry in store.groups().map_err(|e| NodeError::Store(e.into()))? {
                    let chain = match store
                        .credential(entry.group(), &entry.member)
                        .map_err(|e| NodeError::Store(e.into()))?
                    {
                        Some(bytes) => CredentialChain::from_bytes(&bytes)?,
                        None => CredentialChain::creator(),
                    };
                    groups.push((entry.properties, entry.member, chain));
                }
                let mut engine = Engine::new(*swarm.local_peer_id(), &config, Box::new(store));
                engine.restore(identities, groups)?;
                engine
            }
        };
        engine.start(swarm.behaviour_mut());

        let (events, first) = broadcast::channel(EVENT_CAPACITY);
        let (commands, rx) = mpsc::channel(COMMAND_CAPACITY);
        let mut ctx = Ctx {
            swarm,
            engine,
            events: events.clone(),
            waiters: HashMap::new(),
        };
        // Return only once the node listens somewhere, so that
        // `Handle::listen_addrs` is never empty for a started node.
        let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
        while ctx.swarm.listeners().next().is_none() {
            match tokio::time::timeout_at(deadline, ctx.swarm.select_next_some()).await {
                Ok(event) => on_swarm_event(&mut ctx, event),
                Err(_) => {
                    return Err(peergroup_protocol::Error::UnableToListen(format!(
                        "no listen address came up within {LISTEN_TIMEOUT:?}"
                    ))
                    .into());
                }
            }
        }
        drain(&mut ctx);
        tokio::spawn(run(ctx, rx, config.expiry_interval));
        let handle = Handle { commands, events };
        Ok((handle, Subscription::new(first, EventFilter::all())))
    }
}

/// Listens on every configured address. An address whose fixed port cannot
/// be bound (taken, typically) falls back to an OS-chosen port. The error
/// from the boxed transport does not keep the `AddrInUse` kind, so any bind
/// failure of a fixed port falls back, and the reason is logged.
fn listen(swarm: &mut Swarm<Behaviour>, config: &Config) -> Result<(), NodeError> {
    let mut listening = 0;
    for addr in &config.listen {
        match swarm.listen_on(addr.clone()) {
            Ok(_) => listening += 1,
            Err(e) => {
                let fixed_port = addr
                    .iter()
                    .any(|p| matches!(p, Protocol::Tcp(port) | Protocol::Udp(port) if port != 0));
                if !fixed_port {
                    tracing::warn!(%addr, error = %e, "cannot listen");
                    continue;
                }
                let fallback: Multiaddr = addr
                    .iter()
                    .map(|p| match p {
                        Protocol::Tcp(_) => Protocol::Tcp(0),
                        Protocol::Udp(_) => Protocol::Udp(0),
                        other => other,
                    })
                    .collect();
                tracing::info!(%addr, %fallback, error = %e, "cannot listen on the port, using an OS-chosen one");
                match swarm.listen_on(fallback.clone()) {
                    Ok(_) => listening += 1,
                    Err(e) => tracing::warn!(addr = %fallback, error = %e, "cannot listen"),
                }
            }
        }
    }
    if listening == 0 {
        return Err(
            peergroup_protocol::Error::UnableToListen("no listen address worked".into()).into(),
        );
    }
    Ok(())
}

async fn run(mut ctx: Ctx, mut commands: mpsc::Receiver<Command>, expiry_interval: Duration) {
    let mut stopped = None;
    let mut timers = tokio::time::interval(TIMER_INTERVAL);
    timers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry = tokio::time::interval(expiry_interval);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Run(job)) => job(&mut ctx),
                Some(Command::Shutdown { reply }) => {
                    stopped = Some(reply);
                    break;
                }
                None => break,
            },
            event = ctx.swarm.select_next_some() => {
                on_swarm_event(&mut ctx, event);
                for _ in 0..EVENT_BURST {
                    match ctx.swarm.next().now_or_never() {
                        Some(Some(event)) => on_swarm_event(&mut ctx, event),
                        _ => break,
                    }
                }
                if let Err(e) = ctx.engine.flush() {
                    tracing::error!(error = %e, "cannot merge received records");
                }
            }
            _ = timers.tick() => {
                let Ctx { swarm, engine, .. } = &mut ctx;
                engine.poll_timers(swarm.behaviour_mut(), Instant::now());
            }
            _ = expiry.tick() => {
                if let Err(e) = ctx.engine.expire(wall_now()) {
                    tracing::error!(error = %e, "expiry pass failed");
                }
            }
        }
        drain(&mut ctx);
    }
    for (_, waiters) in ctx.waiters.drain() {
        for waiter in waiters {
            let _ = waiter.send(Err(NodeError::Shutdown));
        }
    }
    // Release the swarm's sockets and the database file before `shutdown`
    // returns, so that a node can be started again on the same data at once.
    drop(ctx);
    if let Some(reply) = stopped {
        let _ = reply.send(());
    }
}

fn on_swarm_event(ctx: &mut Ctx, event: SwarmEvent<crate::behaviour::BehaviourEvent>) {
    let Ctx { swarm, engine, .. } = ctx;
    match event {
        SwarmEvent::Behaviour(event) => {
            engine.on_behaviour_event(swarm.behaviour_mut(), event, wall_now())
        }
        SwarmEvent::ConnectionEstablished { peer_id, .. } => {
            engine.on_connection_established(peer_id)
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established: 0,
            ..
        } => engine.on_peer_disconnected(peer_id),
        SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "listening"),
        SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
            tracing::debug!(?peer_id, %error, "dial failed");
        }
        _ => {}
    }
}

/// Hands the engine's outputs to the swarm and to subscribers.
fn drain(ctx: &mut Ctx) {
    for dial in ctx.engine.take_dials() {
        if let Err(e) = ctx.swarm.dial(dial) {
            tracing::debug!(error = %e, "dial not started");
        }
    }
    for event in ctx.engine.take_events() {
        // Subscribers see the event before a waiting `connect` returns.
        let _ = ctx.events.send(event.clone());
        match &event {
            Event::StatusChanged {
                group, ready: true, ..
            } => {
                for waiter in ctx.waiters.remove(group).unwrap_or_default() {
                    let _ = waiter.send(Ok(()));
                }
            }
            Event::ConnectionFailed { group, reason } => {
                for waiter in ctx.waiters.remove(group).unwrap_or_default() {
                    let _ = waiter.send(Err(NodeError::Peer(reason.clone())));
                }
            }
            _ => {}
        }
    }
}

/// A cloneable handle to a running [`Node`]. Every method is cancel-safe in
/// the sense that dropping its future never corrupts the node (the command
/// may still run).
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
}

impl Handle {
    /// Runs `f` on the event loop and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            let _ = reply.send(f(ctx));
        });
        self.commands
            .send(Command::Run(job))
            .await
            .map_err(|_| NodeError::Shutdown)?;
        rx.await.map_err(|_| NodeError::Shutdown)?
    }

    /// A new subscription to events passing `filter`.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        Subscription::new(self.events.subscribe(), filter)
    }

    /// The node's libp2p peer id.
    pub async fn peer_id(&self) -> Result<PeerId, NodeError> {
        self.call(|ctx| Ok(*ctx.swarm.local_peer_id())).await
    }

    /// The addresses the node listens on, each ending with `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.call(|ctx| {
            let me = *ctx.swarm.local_peer_id();
            Ok(ctx
                .swarm
                .listeners()
                .map(|a| a.clone().with(Protocol::P2p(me)))
                .collect())
        })
        .await
    }

    /// `PeerIdentityCreate`: a new identity; returns its signed public info.
    pub async fn create_identity(
        &self,
        classifier: &str,
        friendly_name: &str,
    ) -> Result<Signed<IdentityInfo>, NodeError> {
        let (classifier, friendly_name) = (classifier.to_owned(), friendly_name.to_owned());
        let seed = random::<32>()?;
        self.call(move |ctx| {
            ctx.engine
                .create_identity(&classifier, &friendly_name, seed)
        })
        .await
    }

    /// `PeerIdentityImport`: adds an identity whose secret the caller holds.
    pub async fn import_identity(
        &self,
        identity: peergroup_protocol::Identity,
    ) -> Result<Signed<IdentityInfo>, NodeError> {
        self.call(move |ctx| ctx.engine.import_identity(identity))
            .await
    }

    /// `PeerEnumIdentities`.
    pub async fn identities(&self) -> Result<Vec<Signed<IdentityInfo>>, NodeError> {
        self.call(|ctx| Ok(ctx.engine.identities())).await
    }

    /// `PeerIdentityDelete`.
    pub async fn delete_identity(&self, name: &PeerName) -> Result<(), NodeError> {
        let name = name.clone();
        self.call(move |ctx| ctx.engine.delete_identity(&name))
            .await
    }

    /// `PeerGroupCreate`: returns the new group's peer name; it is open and ready.
    pub async fn create_group(&self, spec: GroupSpec) -> Result<PeerName, NodeError> {
        self.call(move |ctx| ctx.engine.create_group(&spec, wall_now()))
            .await
    }

    /// `PeerGroupJoin`: joins with an invitation as `identity`; the group is
    /// open but not ready until [`Handle::connect`] copies its database.
    pub async fn join(&self, identity: &PeerName, invitation: &str) -> Result<PeerName, NodeError> {
        let (identity, invitation) = (identity.clone(), invitation.to_owned());
        self.call(move |ctx| ctx.engine.join(&identity, &invitation, wall_now()))
            .await
    }

    /// `PeerGroupOpen`.
    pub async fn open(&self, group: &PeerName) -> Result<(), NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.open(&group)).await
    }

    /// `PeerGroupConnect`: online. Returns when the group is ready: at once
    /// for a group that has synchronized before (or its creator); for a new
    /// member after its first database copy, or an error (`NoMembersFound`,
    /// `NoMemberConnections`) after the configured connect timeout, with a
    /// `ConnectionFailed` event.
    pub async fn connect(&self, group: &PeerName) -> Result<(), NodeError> {
        self.connect_by_address(group, Vec::new()).await
    }

    /// `PeerGroupConnectByAddress`: like [`Handle::connect`], also dialing `addresses`.
    pub async fn connect_by_address(
        &self,
        group: &PeerName,
        addresses: Vec<Multiaddr>,
    ) -> Result<(), NodeError> {
        let name = group.clone();
        let (tx, rx) = oneshot::channel();
        self.call(move |ctx| {
            let Ctx {
                swarm,
                engine,
                waiters,
                ..
            } = ctx;
            match engine.connect(swarm.behaviour_mut(), &name, addresses, Instant::now())? {
                ConnectStart::Ready => {
                    let _ = tx.send(Ok(()));
                }
                ConnectStart::Pending => waiters.entry(name).or_default().push(tx),
            }
            Ok(())
        })
        .await?;
        rx.await.map_err(|_| NodeError::Shutdown)?
    }

    /// `PeerGroupClose`.
    pub async fn close(&self, group: &PeerName) -> Result<(), NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.close(ctx.swarm.behaviour_mut(), &group))
            .await
    }

    /// `PeerGroupDelete`: removes the local data.
    pub async fn delete_group(&self, group: &PeerName) -> Result<(), NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.delete_group(ctx.swarm.behaviour_mut(), &group))
            .await
    }

    /// The groups known locally, each with whether it is open.
    pub async fn groups(&self) -> Result<Vec<(PeerName, bool)>, NodeError> {
        self.call(|ctx| Ok(ctx.engine.groups())).await
    }

    /// `PeerGroupGetStatus`: status flags and whether the group is ready.
    pub async fn status(&self, group: &PeerName) -> Result<(Status, bool), NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.status(&group)).await
    }

    /// `PeerGroupEnumConnections`: the group's neighbours.
    pub async fn connections(&self, group: &PeerName) -> Result<Vec<PeerId>, NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.connections(&group)).await
    }

    /// `PeerGroupGetProperties`.
    pub async fn properties(&self, group: &PeerName) -> Result<GroupProperties, NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.properties(&group)).await
    }

    /// `PeerGroupSetProperties` (creator only).
    pub async fn set_properties(
        &self,
        group: &PeerName,
        properties: GroupProperties,
    ) -> Result<(), NodeError> {
        let group = group.clone();
        self.call(move |ctx| {
            ctx.engine
                .set_properties(ctx.swarm.behaviour_mut(), &group, properties)
        })
        .await
    }

    /// `PeerGroupEnumMembers`.
    pub async fn members(&self, group: &PeerName) -> Result<Vec<Membership>, NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.members(&group)).await
    }

    /// `PeerGroupCreateInvitation`: invites the identity whose public text is
    /// `subject` (from `peergroup identity show`, say) as `role`.
    pub async fn create_invitation(
        &self,
        group: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
    ) -> Result<String, NodeError> {
        let (group, subject) = (group.clone(), subject.to_owned());
        self.call(move |ctx| {
            ctx.engine
                .create_invitation(&group, &subject, role, expires, wall_now())
        })
        .await
    }

    /// `PeerGroupIssueCredentials`: renews or changes the role of the member
    /// whose public text is `subject`; returns the credential as an
    /// invitation, and with `store` also publishes it as the member's
    /// membership record (the member adopts it when it arrives).
    pub async fn issue_credentials(
        &self,
        group: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
        store: bool,
    ) -> Result<String, NodeError> {
        let (group, subject) = (group.clone(), subject.to_owned());
        self.call(move |ctx| {
            ctx.engine.issue_credentials(
                ctx.swarm.behaviour_mut(),
                &group,
                &subject,
                role,
                expires,
                store,
                wall_now(),
            )
        })
        .await
    }

    /// `PeerGroupCreatePasswordInvitation`.
    pub async fn create_password_invitation(&self, group: &PeerName) -> Result<String, NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.create_password_invitation(&group, wall_now()))
            .await
    }

    /// `PeerGroupAddRecord`: returns the new record's id.
    pub async fn add_record(
        &self,
        group: &PeerName,
        record: NewRecord,
    ) -> Result<RecordId, NodeError> {
        let group = group.clone();
        let nonce = random::<8>()?;
        self.call(move |ctx| {
            ctx.engine
                .add_record(ctx.swarm.behaviour_mut(), &group, record, nonce, wall_now())
        })
        .await
    }

    /// `PeerGroupUpdateRecord`: `record` is the current record with changed
    /// attributes, expiration or data.
    pub async fn update_record(&self, group: &PeerName, record: Record) -> Result<(), NodeError> {
        let group = group.clone();
        self.call(move |ctx| {
            ctx.engine
                .update_record(ctx.swarm.behaviour_mut(), &group, &record, wall_now())
        })
        .await
    }

    /// `PeerGroupDeleteRecord`.
    pub async fn delete_record(&self, group: &PeerName, id: RecordId) -> Result<(), NodeError> {
        let group = group.clone();
        self.call(move |ctx| {
            ctx.engine
                .delete_record(ctx.swarm.behaviour_mut(), &group, &id, wall_now())
        })
        .await
    }

    /// `PeerGroupGetRecord`.
    pub async fn get_record(&self, group: &PeerName, id: RecordId) -> Result<Record, NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.get_record(&group, &id))
            .await
    }

    /// `PeerGroupEnumRecords`, optionally of one type.
    pub async fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
    ) -> Result<Vec<Record>, NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.records(&group, record_type))
            .await
    }

    /// The digest of the group's database (equal digests: identical databases).
    pub async fn digest(&self, group: &PeerName) -> Result<Digest, NodeError> {
        let group = group.clone();
        self.call(move |ctx| ctx.engine.digest(&group)).await
    }

    /// Stops the node. Idempotent: stopping a stopped node is `Ok`.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_err()
        {
            return Ok(());
        }
        let _ = rx.await;
        Ok(())
    }
}

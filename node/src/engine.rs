//! The [`Engine`]: everything a node does with its groups, driven by whoever
//! owns the `Swarm`.
//!
//! The engine holds identities, groups, their authorizers and the record
//! store. It never owns the swarm and never reads a clock or an RNG: the
//! caller passes the [`Behaviour`] it acts on, the current time, and random
//! bytes, feeds it the behaviour's events, and drains what it asks for
//! ([`Engine::take_events`], [`Engine::take_dials`]). The [`crate::Node`]'s
//! event loop is one such caller; an application that embeds [`Behaviour`]
//! in its own swarm is another (`examples/embed.rs`).
//!
//! Gossip validation: every message on a group topic is decoded, verified
//! and authorized before it is merged or forwarded, and gets exactly one
//! verdict (see [`Engine::on_behaviour_event`]).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};

use libp2p::{
    Multiaddr, PeerId,
    gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, TopicHash},
    identify, kad, mdns,
    multiaddr::Protocol,
    request_response::{self, OutboundRequestId, ResponseChannel},
    swarm::dial_opts::DialOpts,
};
use peergroup_protocol::{
    Authorizer, Change, CredentialChain, DecodeError, Digest, Error, GroupFlags, GroupProperties,
    GroupSpec, Identity, IdentityInfo, InvitationInfo, Keypair, Membership, Merged, NewRecord,
    PeerName, Record, RecordId, RecordType, Role, Signed, SignedProperties, SignedRecord,
    StoreError, Timestamp, Verdict, create_invitation, create_password_invitation,
    membership_record,
};
use serde_bytes::ByteBuf;
use sha2::{Digest as _, Sha256};

use crate::{
    behaviour::{Behaviour, BehaviourEvent},
    config::Config,
    error::NodeError,
    events::{ConnectionChange, Event, MemberChange, RecordChange, Status},
    store::Backend,
    sync,
};

/// How often a not-yet-ready group asks Kademlia for members again.
const PROVIDER_QUERY_INTERVAL: Duration = Duration::from_secs(2);

/// The gossip topic of a group: `/peergroup/1/<group peer name>/cbor`.
pub fn topic_of(group: &PeerName) -> IdentTopic {
    IdentTopic::new(format!("/peergroup/1/{group}/cbor"))
}

/// The Kademlia provider key of a group: sha2-256 of
/// `"peergroup/provider/v1" || group peer name`.
pub fn provider_key(group: &PeerName) -> kad::RecordKey {
    let mut h = Sha256::new();
    h.update(b"peergroup/provider/v1");
    h.update(group.as_str().as_bytes());
    kad::RecordKey::new(&h.finalize().as_slice())
}

/// Where a group is in its lifecycle (reference 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Known locally, not open: every call but `open` and `delete` is `InvalidGroup`.
    Closed,
    /// Open and offline: the local database is readable.
    Open,
    /// Online: subscribed, discoverable, connected to whoever is found.
    Online,
}

/// Which part of the first-connect copy is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Memberships,
    Records,
}

#[derive(Debug, Clone)]
struct SyncRun {
    peer: PeerId,
    phase: Phase,
}

/// The result of [`Engine::connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStart {
    /// The group is ready and online now.
    Ready,
    /// The group is looking for a member to copy the database from; a
    /// [`Event::StatusChanged`] with `ready: true` or an
    /// [`Event::ConnectionFailed`] follows.
    Pending,
}

struct Group {
    properties: SignedProperties,
    identity: PeerName,
    chain: CredentialChain,
    authorizer: Authorizer,
    topic: IdentTopic,
    lifecycle: Lifecycle,
    ready: bool,
    status: Status,
    neighbors: HashSet<PeerId>,
    deadline: Option<Instant>,
    next_provider_query: Option<Instant>,
    sync: Option<SyncRun>,
    tried: HashSet<PeerId>,
    /// Highest version and envelope hash seen per record: stale and duplicate detection.
    versions: HashMap<RecordId, (u32, [u8; 32])>,
    /// Gossip messages whose records are held by the authorizer.
    pending: HashMap<RecordId, Vec<(MessageId, PeerId)>>,
    membership_published: bool,
}

impl Group {
    fn props(&self) -> &GroupProperties {
        self.properties.properties()
    }
}

/// What [`Engine::merge`] keeps of each incoming record for its events.
struct Note {
    version: u32,
    hash: [u8; 32],
    /// The record, for membership records only (their events name the member).
    membership: Option<Record>,
}

/// One message's gossip verdict, before it is mapped to gossipsub's.
#[derive(Debug)]
enum GossipVerdict {
    Accept,
    Ignore(&'static str),
    Reject(String),
    Hold,
}

/// The group engine. See the module docs.
pub struct Engine {
    local_peer: PeerId,
    connect_timeout: Duration,
    kademlia: bool,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    identities: BTreeMap<PeerName, Identity>,
    groups: BTreeMap<PeerName, Group>,
    topics: HashMap<TopicHash, PeerName>,
    store: Box<dyn Backend>,
    connected: HashSet<PeerId>,
    pending_sync: HashMap<OutboundRequestId, PeerName>,
    events: Vec<Event>,
    dials: Vec<DialOpts>,
    /// Records accepted from gossip, merged at the next [`Engine::flush`].
    to_merge: Vec<SignedRecord>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("local_peer", &self.local_peer)
            .field("identities", &self.identities.keys().collect::<Vec<_>>())
            .field("groups", &self.groups.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn hash32(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Engine {
    /// An engine for the node `local_peer` keeping its data in `store`.
    pub fn new(local_peer: PeerId, config: &Config, store: Box<dyn Backend>) -> Engine {
        let bootstrap = config
            .bootstrap
            .iter()
            .filter_map(|addr| match addr.iter().last() {
                Some(Protocol::P2p(peer)) => Some((peer, addr.clone())),
                _ => None,
            })
            .collect();
        Engine {
            local_peer,
            connect_timeout: config.connect_timeout,
            kademlia: config.kademlia,
            bootstrap,
            identities: BTreeMap::new(),
            groups: BTreeMap::new(),
            topics: HashMap::new(),
            store,
            connected: HashSet::new(),
            pending_sync: HashMap::new(),
            events: Vec::new(),
            dials: Vec::new(),
            to_merge: Vec::new(),
        }
    }

    /// Starts discovery: adds the bootstrap peers to Kademlia, dials them, and bootstraps.
    pub fn start(&mut self, behaviour: &mut Behaviour) {
        for (peer, addr) in &self.bootstrap {
            if let Some(kad) = behaviour.kademlia.as_mut() {
                kad.add_address(peer, addr.clone());
            }
            self.dials.push(
                DialOpts::peer_id(*peer)
                    .addresses(vec![addr.clone()])
                    .build(),
            );
        }
        if let Some(kad) = behaviour.kademlia.as_mut()
            && !self.bootstrap.is_empty()
            && let Err(e) = kad.bootstrap()
        {
            tracing::debug!(error = %e, "kademlia bootstrap not started");
        }
    }

    /// Events produced since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Dials the engine wants made, oldest first.
    pub fn take_dials(&mut self) -> Vec<DialOpts> {
        std::mem::take(&mut self.dials)
    }

    // ----- identities --------------------------------------------------------

    /// `PeerIdentityCreate`: a new identity from a 32-byte random `seed`.
    pub fn create_identity(
        &mut self,
        classifier: &str,
        friendly_name: &str,
        seed: [u8; 32],
    ) -> Result<Signed<IdentityInfo>, NodeError> {
        let identity = Identity::new(Keypair::from_secret_bytes(&seed), classifier, friendly_name)?;
        self.import_identity(identity)
    }

    /// `PeerIdentityImport`: adds an existing identity; the same name twice is `AlreadyExists`.
    pub fn import_identity(
        &mut self,
        identity: Identity,
    ) -> Result<Signed<IdentityInfo>, NodeError> {
        if self.identities.contains_key(identity.peer_name()) {
            return Err(Error::AlreadyExists(format!("identity {}", identity.peer_name())).into());
        }
        let info = identity.info()?;
        self.store.save_identity(&identity)?;
        self.identities
            .insert(identity.peer_name().clone(), identity);
        Ok(info)
    }

    /// Restores the identities and groups a persistent store kept. Groups
    /// come back closed (open or connect them); one is ready if its creator
    /// is local or its database holds records (after a first copy a member
    /// always has its own membership record at least).
    pub fn restore(
        &mut self,
        identities: Vec<Identity>,
        groups: Vec<(SignedProperties, PeerName, CredentialChain)>,
    ) -> Result<(), NodeError> {
        for identity in identities {
            self.identities
                .insert(identity.peer_name().clone(), identity);
        }
        for (properties, member, chain) in groups {
            let name = properties.properties().group_peer_name.clone();
            let has_records = !self.store.records(&name, None, None, 1)?.is_empty();
            let ready = chain.is_empty() || has_records;
            self.insert_group(properties, member, chain, ready)?;
            if let Some(group) = self.groups.get_mut(&name) {
                group.lifecycle = Lifecycle::Closed;
            }
        }
        Ok(())
    }

    /// `PeerEnumIdentities`.
    pub fn identities(&self) -> Vec<Signed<IdentityInfo>> {
        self.identities
            .values()
            .filter_map(|i| i.info().ok())
            .collect()
    }

    /// `PeerIdentityDelete`: refused while groups use it (`PEER_E_GROUPS_EXIST`).
    pub fn delete_identity(&mut self, name: &PeerName) -> Result<(), NodeError> {
        if !self.identities.contains_key(name) {
            return Err(Error::NotFound(format!("identity {name}")).into());
        }
        if self.groups.values().any(|g| &g.identity == name) {
            return Err(Error::GroupsExist(format!("identity {name} still has groups")).into());
        }
        self.store.forget_identity(name)?;
        self.identities.remove(name);
        Ok(())
    }

    fn identity(&self, name: &PeerName) -> Result<&Identity, NodeError> {
        self.identities
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("identity {name}")).into())
    }

    // ----- groups ------------------------------------------------------------

    fn insert_group(
        &mut self,
        properties: SignedProperties,
        identity: PeerName,
        chain: CredentialChain,
        ready: bool,
    ) -> Result<PeerName, NodeError> {
        let name = properties.properties().group_peer_name.clone();
        let mut authorizer = Authorizer::new(&properties);
        authorizer.learn_chain(&chain)?;
        self.store.save_group(&properties, &identity, &chain)?;
        let topic = topic_of(&name);
        self.topics.insert(topic.hash(), name.clone());
        let is_creator = chain.is_empty();
        self.groups.insert(
            name.clone(),
            Group {
                properties,
                identity,
                chain,
                authorizer,
                topic,
                lifecycle: Lifecycle::Open,
                ready,
                status: Status::default(),
                neighbors: HashSet::new(),
                deadline: None,
                next_provider_query: None,
                sync: None,
                tried: HashSet::new(),
                versions: HashMap::new(),
                pending: HashMap::new(),
                membership_published: is_creator,
            },
        );
        Ok(name)
    }

    /// `PeerGroupCreate`: the group is open (offline) and ready at once.
    pub fn create_group(
        &mut self,
        spec: &GroupSpec,
        now: Timestamp,
    ) -> Result<PeerName, NodeError> {
        let creator_name = spec
            .creator_peer_name
            .as_ref()
            .ok_or_else(|| Error::InvalidArg("the creator peer name is required".into()))?;
        let creator = self.identity(creator_name)?;
        let properties = spec.create(creator, now, |name| self.groups.contains_key(name))?;
        let name = properties.properties().group_peer_name.clone();
        self.insert_group(
            properties,
            creator_name.clone(),
            CredentialChain::creator(),
            true,
        )?;
        Ok(name)
    }

    /// `PeerGroupJoin`: stores the invitation's chain for `identity`; the group
    /// is open (offline) and not ready until its first-connect copy.
    pub fn join(
        &mut self,
        identity: &PeerName,
        invitation: &str,
        now: Timestamp,
    ) -> Result<PeerName, NodeError> {
        let info = InvitationInfo::parse(invitation)?;
        let chain = info.accept(self.identity(identity)?, now)?;
        if let Some(group) = self.groups.get(&info.group) {
            return Err(Error::GroupInUse(format!(
                "group {} is already here (as {})",
                info.group, group.identity
            ))
            .into());
        }
        self.insert_group(info.properties, identity.clone(), chain, false)
    }

    fn group(&self, name: &PeerName) -> Result<&Group, NodeError> {
        match self.groups.get(name) {
            Some(g) if g.lifecycle != Lifecycle::Closed => Ok(g),
            Some(_) => Err(Error::InvalidGroup(format!("group {name} is closed")).into()),
            None => Err(Error::InvalidGroup(format!("unknown group {name}")).into()),
        }
    }

    fn group_mut(&mut self, name: &PeerName) -> Result<&mut Group, NodeError> {
        match self.groups.get_mut(name) {
            Some(g) if g.lifecycle != Lifecycle::Closed => Ok(g),
            Some(_) => Err(Error::InvalidGroup(format!("group {name} is closed")).into()),
            None => Err(Error::InvalidGroup(format!("unknown group {name}")).into()),
        }
    }

    fn ready_group(&self, name: &PeerName) -> Result<&Group, NodeError> {
        let group = self.group(name)?;
        if !group.ready {
            return Err(Error::GroupNotReady.into());
        }
        Ok(group)
    }

    /// The groups this node knows, with whether each is open.
    pub fn groups(&self) -> Vec<(PeerName, bool)> {
        self.groups
            .iter()
            .map(|(n, g)| (n.clone(), g.lifecycle != Lifecycle::Closed))
            .collect()
    }

    /// `PeerGroupOpen`: opens a known group (offline).
    pub fn open(&mut self, name: &PeerName) -> Result<(), NodeError> {
        let group = self
            .groups
            .get_mut(name)
            .ok_or_else(|| Error::InvalidGroup(format!("unknown group {name}")))?;
        if group.lifecycle == Lifecycle::Closed {
            group.lifecycle = Lifecycle::Open;
        }
        Ok(())
    }

    /// `PeerGroupConnect`: goes online. A ready group listens at once; a group
    /// that has never synchronized looks for a member (Kademlia providers,
    /// mDNS, bootstrap peers, `addresses`) and copies its database first.
    pub fn connect(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        addresses: Vec<Multiaddr>,
        now: Instant,
    ) -> Result<ConnectStart, NodeError> {
        let kademlia = self.kademlia;
        let timeout = self.connect_timeout;
        for addr in addresses {
            self.dials.push(dial_opts(addr));
        }
        let group = self.group_mut(name)?;
        if group.lifecycle != Lifecycle::Online {
            behaviour
                .gossipsub
                .subscribe(&group.topic)
                .map_err(|e| Error::ConnectionFailed(format!("cannot subscribe: {e}")))?;
            group.lifecycle = Lifecycle::Online;
        }
        let name = name.clone();
        // Peers that subscribed to the topic before we did announced it
        // already: they are neighbours now.
        let hash = group.topic.hash();
        let subscribed: Vec<PeerId> = behaviour
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in subscribed {
            if self
                .groups
                .get_mut(&name)
                .is_some_and(|g| g.neighbors.insert(peer))
            {
                self.events.push(Event::NeighborConnection {
                    group: name.clone(),
                    peer,
                    change: ConnectionChange::Connected,
                });
            }
        }
        self.set_status(&name, |_| {});
        if self.groups.get(&name).is_some_and(|g| g.ready) {
            self.become_listening(behaviour, &name);
            return Ok(ConnectStart::Ready);
        }
        if let Some(group) = self.groups.get_mut(&name) {
            group.deadline = Some(now + timeout);
            group.tried.clear();
            group.next_provider_query = kademlia.then_some(now);
        }
        // Members may already be connected: ask them.
        let neighbors: Vec<PeerId> = self.connected.iter().copied().collect();
        for peer in neighbors {
            self.maybe_start_sync(behaviour, &name, peer);
        }
        self.poll_timers(behaviour, now);
        Ok(ConnectStart::Pending)
    }

    fn become_listening(&mut self, behaviour: &mut Behaviour, name: &PeerName) {
        let kademlia = self.kademlia;
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        group.deadline = None;
        if kademlia
            && let Some(kad) = behaviour.kademlia.as_mut()
            && let Err(e) = kad.start_providing(provider_key(name))
        {
            tracing::warn!(group = %name, error = %e, "cannot announce the group in Kademlia");
        }
        self.set_status(name, |s| s.listening = true);
    }

    fn set_status(&mut self, name: &PeerName, change: impl FnOnce(&mut Status)) {
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        let before = group.status;
        change(&mut group.status);
        group.status.has_connections = !group.neighbors.is_empty();
        if group.status != before {
            self.events.push(Event::StatusChanged {
                group: name.clone(),
                status: group.status,
                ready: group.ready,
            });
        }
    }

    /// Saves a group's current properties, member and chain.
    fn persist_group(&mut self, name: &PeerName) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        if let Err(e) = self
            .store
            .save_group(&group.properties, &group.identity, &group.chain)
        {
            tracing::error!(group = %name, error = %e, "cannot save the group's properties");
        }
    }

    /// `PeerGroupClose`: back offline; the group stays known (closed).
    pub fn close(&mut self, behaviour: &mut Behaviour, name: &PeerName) -> Result<(), NodeError> {
        let group = self.group_mut(name)?;
        let was_online = group.lifecycle == Lifecycle::Online;
        group.lifecycle = Lifecycle::Closed;
        group.deadline = None;
        group.sync = None;
        group.neighbors.clear();
        let topic = group.topic.clone();
        if was_online {
            behaviour.gossipsub.unsubscribe(&topic);
            if let Some(kad) = behaviour.kademlia.as_mut() {
                kad.stop_providing(&provider_key(name));
            }
        }
        self.set_status(name, |s| *s = Status::default());
        Ok(())
    }

    /// `PeerGroupDelete`: removes the group's local data (its records, its
    /// credentials); other members are not affected.
    pub fn delete_group(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
    ) -> Result<(), NodeError> {
        if !self.groups.contains_key(name) {
            return Err(Error::NotFound(format!("group {name}")).into());
        }
        if self
            .groups
            .get(name)
            .is_some_and(|g| g.lifecycle != Lifecycle::Closed)
        {
            self.close(behaviour, name)?;
        }
        if let Some(group) = self.groups.remove(name) {
            self.topics.remove(&group.topic.hash());
        }
        self.store.forget_group(name).map_err(NodeError::Store)?;
        Ok(())
    }

    /// `PeerGroupGetStatus`: status flags and readiness.
    pub fn status(&self, name: &PeerName) -> Result<(Status, bool), NodeError> {
        let group = self.group(name)?;
        Ok((group.status, group.ready))
    }

    /// `PeerGroupEnumConnections`: the neighbours (peers on the group's topic).
    pub fn connections(&self, name: &PeerName) -> Result<Vec<PeerId>, NodeError> {
        Ok(self.group(name)?.neighbors.iter().copied().collect())
    }

    /// `PeerGroupGetProperties`.
    pub fn properties(&self, name: &PeerName) -> Result<GroupProperties, NodeError> {
        Ok(self.ready_group(name)?.props().clone())
    }

    /// `PeerGroupSetProperties`: only the creator; `newer` must keep the
    /// immutable members. The revision is set here.
    pub fn set_properties(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        mut newer: GroupProperties,
    ) -> Result<(), NodeError> {
        let group = self.ready_group(name)?;
        let current = group.props().clone();
        let identity = self.identity(&group.identity)?;
        if identity.peer_name() != &current.creator_peer_name {
            return Err(Error::NotAuthorized(
                "only the group's creator changes its properties".into(),
            )
            .into());
        }
        newer.revision = current.revision.saturating_add(1);
        current.check_update(&newer)?;
        let signed = Signed::sign(newer, identity.keypair())?;
        let bytes = signed.as_bytes().to_vec();
        if let Some(group) = self.groups.get_mut(name) {
            group.properties = signed;
            if group.lifecycle == Lifecycle::Online {
                publish(behaviour, &group.topic, bytes);
            }
        }
        self.persist_group(name);
        self.events.push(Event::PropertiesChanged {
            group: name.clone(),
        });
        Ok(())
    }

    /// `PeerGroupEnumMembers`: the memberships known from membership records and chains.
    pub fn members(&self, name: &PeerName) -> Result<Vec<Membership>, NodeError> {
        let group = self.ready_group(name)?;
        let mut out = vec![Membership::creator(group.props())];
        for (_, memberships) in group.authorizer.members() {
            out.extend(memberships.iter().filter(|m| m.chain_len > 1).cloned());
        }
        Ok(out)
    }

    /// `PeerGroupCreateInvitation`, as the group's local identity.
    pub fn create_invitation(
        &self,
        name: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<String, NodeError> {
        let group = self.ready_group(name)?;
        let subject = Signed::<IdentityInfo>::from_identity_text(subject)?;
        let issuer = self.identity(&group.identity)?;
        Ok(create_invitation(
            issuer,
            &group.chain,
            &group.properties,
            &subject,
            role,
            expires,
            now,
        )?)
    }

    /// `PeerGroupIssueCredentials`, as the group's local identity: a new
    /// credential for the identity whose public text is `subject` (a renewal
    /// or a role change), returned as an invitation. With `store`
    /// (`PEER_GROUP_STORE_CREDENTIALS`) it is also published as the subject's
    /// membership record, which the subject adopts when it arrives.
    // The engine's calls take the behaviour and the time besides the Windows
    // function's own parameters; a parameter struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn issue_credentials(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
        store: bool,
        now: Timestamp,
    ) -> Result<String, NodeError> {
        let text = self.create_invitation(name, subject, role, expires, now)?;
        if store {
            let chain = InvitationInfo::parse(&text)?.chain;
            let subject_name = chain.verify(self.ready_group(name)?.props())?.subject;
            let previous = self
                .store
                .get(name, &RecordId::membership(&subject_name))
                .map_err(NodeError::Store)?;
            let group = self.ready_group(name)?;
            let issuer = self.identity(&group.identity)?;
            let record = membership_record(
                group.props(),
                &chain,
                issuer,
                previous.as_ref().map(|p| p.record()),
                now,
            )?;
            group.authorizer.check(&record).map_err(Error::from)?;
            if let Some(g) = self.groups.get_mut(name) {
                g.authorizer.handle(record.clone());
            }
            self.commit_and_publish(behaviour, name, record)?;
        }
        Ok(text)
    }

    /// `PeerGroupCreatePasswordInvitation`, as the group's local identity.
    pub fn create_password_invitation(
        &self,
        name: &PeerName,
        now: Timestamp,
    ) -> Result<String, NodeError> {
        let group = self.ready_group(name)?;
        let issuer = self.identity(&group.identity)?;
        Ok(create_password_invitation(
            issuer,
            &group.chain,
            &group.properties,
            now,
        )?)
    }

    // ----- records -------------------------------------------------------------

    /// `PeerGroupAddRecord`: signs, merges and publishes a new record; `nonce`
    /// is 8 random bytes for its id.
    pub fn add_record(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        new: NewRecord,
        nonce: [u8; 8],
        now: Timestamp,
    ) -> Result<RecordId, NodeError> {
        let group = self.ready_group(name)?;
        let record = Record::new(new, nonce, name, &group.identity, now)?;
        if self
            .store
            .get(name, &record.id)
            .map_err(NodeError::Store)?
            .is_some()
        {
            return Err(Error::AlreadyExists(format!("record {}", record.id)).into());
        }
        let id = record.id;
        self.publish_local(behaviour, name, record, now)?;
        Ok(id)
    }

    /// `PeerGroupUpdateRecord`, with the update rules of the seed page.
    pub fn update_record(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        proposed: &Record,
        now: Timestamp,
    ) -> Result<(), NodeError> {
        let group = self.ready_group(name)?;
        let current = self.live(name, &proposed.id)?;
        let record = current.update(proposed, &group.identity, now)?;
        self.publish_local(behaviour, name, record, now)
    }

    /// `PeerGroupDeleteRecord`: publishes the record's tombstone.
    pub fn delete_record(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        id: &RecordId,
        now: Timestamp,
    ) -> Result<(), NodeError> {
        let group = self.ready_group(name)?;
        let current = self.live(name, id)?;
        let record = current.delete(&group.identity, now)?;
        self.publish_local(behaviour, name, record, now)
    }

    fn live(&self, name: &PeerName, id: &RecordId) -> Result<Record, NodeError> {
        match self.store.get(name, id).map_err(NodeError::Store)? {
            Some(r) if !r.record().is_deleted() => Ok(r.record().clone()),
            _ => Err(Error::RecordNotFound.into()),
        }
    }

    /// `PeerGroupGetRecord`: a live record of the local database.
    pub fn get_record(&self, name: &PeerName, id: &RecordId) -> Result<Record, NodeError> {
        self.ready_group(name)?;
        self.live(name, id)
    }

    /// `PeerGroupEnumRecords`: the live records, optionally of one type.
    pub fn records(
        &self,
        name: &PeerName,
        record_type: Option<RecordType>,
    ) -> Result<Vec<Record>, NodeError> {
        self.ready_group(name)?;
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .records(name, record_type, after, 1024)
                .map_err(NodeError::Store)?;
            let Some(last) = page.last() else { break };
            after = Some(last.record().id);
            let full = page.len() == 1024;
            out.extend(
                page.into_iter()
                    .filter(|r| !r.record().is_deleted())
                    .map(|r| r.record().clone()),
            );
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// The digest of a group's database (live records and tombstones).
    pub fn digest(&self, name: &PeerName) -> Result<Digest, NodeError> {
        self.group(name)?;
        self.store.digest(name).map_err(NodeError::Store)
    }

    /// Signs a locally made record, checks it like a received one, merges
    /// and publishes it, publishing the member's membership record first if
    /// the group has not seen it yet.
    fn publish_local(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        record: Record,
        now: Timestamp,
    ) -> Result<(), NodeError> {
        self.ensure_membership_published(behaviour, name, now)?;
        let group = self.ready_group(name)?;
        let identity = self.identity(&group.identity)?;
        let signed = SignedRecord::sign(record, identity.keypair())?;
        group.authorizer.check(&signed).map_err(Error::from)?;
        self.commit_and_publish(behaviour, name, signed)
    }

    fn commit_and_publish(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        signed: SignedRecord,
    ) -> Result<(), NodeError> {
        let bytes = signed.as_bytes().to_vec();
        self.merge(vec![signed])?;
        if let Some(group) = self.groups.get(name)
            && group.lifecycle == Lifecycle::Online
        {
            publish(behaviour, &group.topic, bytes);
        }
        Ok(())
    }

    /// Publishes the local member's membership record if the group has none
    /// from it yet (not for the creator, whose membership is implied, nor
    /// with `MEMBER_DATA_OPTIONAL` unless the member is about to act).
    fn ensure_membership_published(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        now: Timestamp,
    ) -> Result<(), NodeError> {
        let group = self.ready_group(name)?;
        if group.membership_published {
            return Ok(());
        }
        let id = RecordId::membership(&group.identity);
        let previous = self.store.get(name, &id).map_err(NodeError::Store)?;
        // Already published with this chain (before a restart, say): nothing to do.
        if let Some(previous) = &previous
            && !previous.record().is_deleted()
            && peergroup_protocol::membership_chain(previous.record())
                .ok()
                .as_ref()
                == Some(&group.chain)
        {
            if let Some(g) = self.groups.get_mut(name) {
                g.membership_published = true;
            }
            return Ok(());
        }
        let identity = self.identity(&group.identity)?;
        let signed = membership_record(
            group.props(),
            &group.chain,
            identity,
            previous.as_ref().map(|p| p.record()),
            now,
        )?;
        if let Some(g) = self.groups.get_mut(name) {
            g.membership_published = true;
            g.authorizer.handle(signed.clone());
        }
        self.commit_and_publish(behaviour, name, signed)
    }

    /// Merges records into the store and emits their events.
    fn merge(&mut self, batch: Vec<SignedRecord>) -> Result<(), NodeError> {
        if batch.is_empty() {
            return Ok(());
        }
        // What the events need is taken from the incoming records: a merged
        // record is the stored one, so nothing is read back from the store.
        let notes: Vec<Note> = batch
            .iter()
            .map(|r| Note {
                version: r.record().version,
                hash: hash32(r.as_bytes()),
                membership: (r.record().record_type == RecordType::MEMBERSHIP)
                    .then(|| r.record().clone()),
            })
            .collect();
        let outcomes = self.store.merge(batch).map_err(NodeError::Store)?;
        for (merged, note) in outcomes.into_iter().zip(notes) {
            self.note_merged(merged, note);
        }
        Ok(())
    }

    fn note_merged(&mut self, merged: Merged, note: Note) {
        let change = match merged.change {
            Change::Added => RecordChange::Added,
            Change::Updated => RecordChange::Updated,
            Change::Deleted => RecordChange::Deleted,
            Change::Expired => RecordChange::Expired,
            Change::Stale => return,
        };
        if let Some(group) = self.groups.get_mut(&merged.group) {
            group.versions.insert(merged.id, (note.version, note.hash));
        }
        if let Some(record) = note.membership {
            self.adopt_stored_credential(&record);
            let change = if change == RecordChange::Added {
                MemberChange::Joined
            } else {
                MemberChange::Updated
            };
            self.events.push(Event::MemberChanged {
                group: merged.group,
                member: record.creator,
                change,
            });
            return;
        }
        self.events.push(Event::RecordChanged {
            group: merged.group,
            change,
            id: merged.id,
            record_type: merged.record_type,
        });
    }

    /// A membership record for the group's local identity, stored by an
    /// admin (`PEER_GROUP_STORE_CREDENTIALS`), replaces the member's chain
    /// when it verifies and starts later than the current one.
    fn adopt_stored_credential(&mut self, r: &Record) {
        let Some(group) = self.groups.get(&r.group) else {
            return;
        };
        if r.is_deleted() || r.creator != group.identity || r.last_toucher() == &group.identity {
            return;
        }
        let Ok(chain) = peergroup_protocol::membership_chain(r) else {
            return;
        };
        let (Ok(new), Ok(current)) = (
            chain.verify(group.props()),
            group.chain.verify(group.props()),
        ) else {
            return;
        };
        if chain == group.chain || new.not_before <= current.not_before {
            return;
        }
        tracing::info!(group = %r.group, role = %new.role, "adopting newly issued credentials");
        if let Some(group) = self.groups.get_mut(&r.group) {
            group.chain = chain;
        }
        self.persist_group(&r.group);
    }

    /// Merges what gossip delivered since the last call, in one store batch.
    pub fn flush(&mut self) -> Result<(), NodeError> {
        let batch = std::mem::take(&mut self.to_merge);
        self.merge(batch)
    }

    // ----- time ----------------------------------------------------------------

    /// Timers: connect deadlines and Kademlia lookups of groups still looking
    /// for a member. Call it regularly (the node does every 250 ms).
    pub fn poll_timers(&mut self, behaviour: &mut Behaviour, now: Instant) {
        let mut failed = Vec::new();
        for (name, group) in &mut self.groups {
            if group.lifecycle != Lifecycle::Online || group.ready {
                continue;
            }
            if group.deadline.is_some_and(|d| now >= d) {
                failed.push(name.clone());
                continue;
            }
            if group.next_provider_query.is_some_and(|t| now >= t) {
                group.next_provider_query = Some(now + PROVIDER_QUERY_INTERVAL);
                if let Some(kad) = behaviour.kademlia.as_mut() {
                    kad.get_providers(provider_key(name));
                }
            }
        }
        for name in failed {
            let found = self.groups.get(&name).is_some_and(|g| !g.tried.is_empty());
            let reason = if found {
                Error::NoMemberConnections(format!(
                    "members of {name} were found but none completed the database copy"
                ))
            } else {
                Error::NoMembersFound(format!(
                    "no member of {name} was found within {:?}",
                    self.connect_timeout
                ))
            };
            if let Some(group) = self.groups.get_mut(&name) {
                group.lifecycle = Lifecycle::Open;
                group.deadline = None;
                group.sync = None;
                let topic = group.topic.clone();
                behaviour.gossipsub.unsubscribe(&topic);
            }
            self.events.push(Event::ConnectionFailed {
                group: name,
                reason,
            });
        }
    }

    /// The expiry pass: removes expired records and reports them.
    pub fn expire(&mut self, now: Timestamp) -> Result<(), NodeError> {
        let expired = self.store.expire(now).map_err(NodeError::Store)?;
        for merged in expired {
            if let Some(group) = self.groups.get_mut(&merged.group) {
                group.versions.remove(&merged.id);
            }
            if merged.record_type != RecordType::MEMBERSHIP {
                self.events.push(Event::RecordChanged {
                    group: merged.group,
                    change: RecordChange::Expired,
                    id: merged.id,
                    record_type: merged.record_type,
                });
            }
        }
        Ok(())
    }

    // ----- swarm events ----------------------------------------------------------

    /// A connection to `peer` was established.
    pub fn on_connection_established(&mut self, peer: PeerId) {
        self.connected.insert(peer);
    }

    /// The last connection to `peer` closed.
    pub fn on_peer_disconnected(&mut self, peer: PeerId) {
        self.connected.remove(&peer);
        let names: Vec<PeerName> = self
            .groups
            .iter()
            .filter(|(_, g)| g.neighbors.contains(&peer))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            if let Some(group) = self.groups.get_mut(&name) {
                group.neighbors.remove(&peer);
                if group.sync.as_ref().is_some_and(|s| s.peer == peer) {
                    group.sync = None;
                }
            }
            self.events.push(Event::NeighborConnection {
                group: name.clone(),
                peer,
                change: ConnectionChange::Disconnected,
            });
            self.set_status(&name, |_| {});
        }
    }

    /// Feeds one event of the [`Behaviour`].
    pub fn on_behaviour_event(
        &mut self,
        behaviour: &mut Behaviour,
        event: BehaviourEvent,
        now: Timestamp,
    ) {
        match event {
            BehaviourEvent::Gossipsub(e) => self.inject_gossip(behaviour, e, now),
            BehaviourEvent::Sync(e) => self.inject_sync(behaviour, e, now),
            BehaviourEvent::Kademlia(e) => self.inject_kad(behaviour, e),
            BehaviourEvent::Mdns(e) => self.inject_mdns(behaviour, e),
            BehaviourEvent::Identify(e) => inject_identify(behaviour, e),
        }
    }

    fn inject_mdns(&mut self, behaviour: &mut Behaviour, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                for (peer, addr) in found {
                    if let Some(kad) = behaviour.kademlia.as_mut() {
                        kad.add_address(&peer, addr.clone());
                    }
                    if !self.connected.contains(&peer) && peer != self.local_peer {
                        self.dials
                            .push(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                    }
                }
            }
            mdns::Event::Expired(_) => {}
        }
    }

    fn inject_kad(&mut self, behaviour: &mut Behaviour, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed { result, .. } = event else {
            if let kad::Event::RoutingUpdated {
                is_new_peer: true, ..
            } = event
            {
                // A new neighbour in the DHT: announce our groups to it too
                // (an announcement made while the routing table was empty
                // reached nobody).
                self.provide_all(behaviour);
            }
            return;
        };
        let Some(kad) = behaviour.kademlia.as_mut() else {
            return;
        };
        match result {
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                // Provider records carry peer ids; the provider's addresses
                // come from a lookup of its own id.
                for peer in providers {
                    if peer != self.local_peer && !self.connected.contains(&peer) {
                        // Dial now, while the query still holds the addresses
                        // it heard for the provider, and also look its id up,
                        // which finds them if the query has ended.
                        self.dials.push(DialOpts::peer_id(peer).build());
                        kad.get_closest_peers(peer);
                    }
                }
            }
            kad::QueryResult::GetClosestPeers(Ok(kad::GetClosestPeersOk { key, peers })) => {
                let Ok(target) = PeerId::from_bytes(&key) else {
                    return;
                };
                for info in peers {
                    if info.peer_id == target
                        && !self.connected.contains(&target)
                        && !info.addrs.is_empty()
                    {
                        self.dials
                            .push(DialOpts::peer_id(target).addresses(info.addrs).build());
                    }
                }
            }
            _ => {}
        }
    }

    /// Announces every listening group in Kademlia.
    fn provide_all(&mut self, behaviour: &mut Behaviour) {
        if !self.kademlia {
            return;
        }
        let Some(kad) = behaviour.kademlia.as_mut() else {
            return;
        };
        for (name, group) in &self.groups {
            if group.status.listening
                && let Err(e) = kad.start_providing(provider_key(name))
            {
                tracing::debug!(group = %name, error = %e, "cannot announce the group");
            }
        }
    }

    fn inject_gossip(
        &mut self,
        behaviour: &mut Behaviour,
        event: gossipsub::Event,
        now: Timestamp,
    ) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let verdict =
                    self.validate_gossip(behaviour, &message, &message_id, propagation_source, now);
                let acceptance = match verdict {
                    GossipVerdict::Accept => Some(MessageAcceptance::Accept),
                    GossipVerdict::Ignore(why) => {
                        tracing::trace!(%why, "gossip message ignored");
                        Some(MessageAcceptance::Ignore)
                    }
                    GossipVerdict::Reject(why) => {
                        tracing::debug!(peer = %propagation_source, %why, "gossip message rejected");
                        Some(MessageAcceptance::Reject)
                    }
                    GossipVerdict::Hold => None,
                };
                if let Some(acceptance) = acceptance {
                    behaviour.gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        acceptance,
                    );
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                let Some(name) = self.topics.get(&topic).cloned() else {
                    return;
                };
                let Some(group) = self.groups.get_mut(&name) else {
                    return;
                };
                if group.lifecycle != Lifecycle::Online || !group.neighbors.insert(peer_id) {
                    return;
                }
                self.events.push(Event::NeighborConnection {
                    group: name.clone(),
                    peer: peer_id,
                    change: ConnectionChange::Connected,
                });
                self.set_status(&name, |_| {});
                self.maybe_start_sync(behaviour, &name, peer_id);
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                let Some(name) = self.topics.get(&topic).cloned() else {
                    return;
                };
                if self
                    .groups
                    .get_mut(&name)
                    .is_some_and(|g| g.neighbors.remove(&peer_id))
                {
                    self.events.push(Event::NeighborConnection {
                        group: name.clone(),
                        peer: peer_id,
                        change: ConnectionChange::Disconnected,
                    });
                    self.set_status(&name, |_| {});
                }
            }
            gossipsub::Event::GossipsubNotSupported { .. } | gossipsub::Event::SlowPeer { .. } => {}
        }
    }

    /// Decides one gossip message. Records are decoded and verified here
    /// (malformed or forged: Reject), checked against the topic's group
    /// (wrong group: Reject), against what is already stored (stale or
    /// duplicate: Ignore), and authorized (unauthorized: Reject; signer not
    /// known yet: Hold, reported when the authorizer releases or drops it).
    fn validate_gossip(
        &mut self,
        behaviour: &mut Behaviour,
        message: &gossipsub::Message,
        message_id: &MessageId,
        source: PeerId,
        now: Timestamp,
    ) -> GossipVerdict {
        let Some(name) = self.topics.get(&message.topic).cloned() else {
            return GossipVerdict::Ignore("not a group of this node");
        };
        let Some(group) = self.groups.get_mut(&name) else {
            return GossipVerdict::Ignore("not a group of this node");
        };
        if group.lifecycle != Lifecycle::Online {
            return GossipVerdict::Ignore("group is offline");
        }
        let record = match SignedRecord::from_bytes(&message.data) {
            Ok(record) => record,
            Err(Error::Decode(DecodeError::WrongKind { found, .. }))
                if found == peergroup_protocol::Kind::Properties.to_byte() =>
            {
                return self.validate_properties(&name, &message.data);
            }
            Err(e) => return GossipVerdict::Reject(format!("invalid envelope: {e}")),
        };
        let r = record.record();
        if r.group != name {
            return GossipVerdict::Reject(format!(
                "record of group {} on the topic of {name}",
                r.group
            ));
        }
        if r.is_expired(now) {
            // Every replica drops expired records; merging one would only
            // announce its expiry at the next pass.
            return GossipVerdict::Ignore("expired");
        }
        if let Some((version, hash)) = group.versions.get(&r.id) {
            if r.version < *version {
                return GossipVerdict::Ignore("stale");
            }
            if r.version == *version && *hash == hash32(record.as_bytes()) {
                return GossipVerdict::Ignore("duplicate");
            }
        }
        let id = r.id;
        let verdicts = group.authorizer.handle(record);
        let mut first = true;
        let mut own = GossipVerdict::Ignore("no verdict");
        for verdict in verdicts {
            let is_first = std::mem::replace(&mut first, false);
            match verdict {
                Verdict::Accepted(accepted) => {
                    if !is_first {
                        self.report_pending(
                            behaviour,
                            &name,
                            &accepted.record().id,
                            MessageAcceptance::Accept,
                        );
                    } else {
                        own = GossipVerdict::Accept;
                    }
                    self.to_merge.push(accepted);
                }
                Verdict::Held { reason, .. } => {
                    tracing::debug!(group = %name, %reason, "record held for later validation");
                    if let Some(g) = self.groups.get_mut(&name) {
                        g.pending
                            .entry(id)
                            .or_default()
                            .push((message_id.clone(), source));
                    }
                    own = GossipVerdict::Hold;
                }
                Verdict::Refused { reason, .. } => {
                    own = GossipVerdict::Reject(reason.to_string());
                }
                Verdict::Dropped { record } => {
                    let dropped = record.record().id;
                    self.report_pending(behaviour, &name, &dropped, MessageAcceptance::Ignore);
                }
            }
        }
        own
    }

    fn report_pending(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        id: &RecordId,
        acceptance: MessageAcceptance,
    ) {
        let Some(pending) = self.groups.get_mut(name).and_then(|g| g.pending.remove(id)) else {
            return;
        };
        for (message_id, source) in pending {
            behaviour
                .gossipsub
                .report_message_validation_result(&message_id, &source, acceptance);
        }
    }

    fn validate_properties(&mut self, name: &PeerName, bytes: &[u8]) -> GossipVerdict {
        let signed = match SignedProperties::from_bytes(bytes) {
            Ok(signed) => signed,
            Err(e) => return GossipVerdict::Reject(format!("invalid properties: {e}")),
        };
        let Some(group) = self.groups.get_mut(name) else {
            return GossipVerdict::Ignore("not a group of this node");
        };
        let newer = signed.properties();
        if newer.group_peer_name != *name {
            return GossipVerdict::Reject("properties of another group".into());
        }
        if newer.revision <= group.props().revision {
            return GossipVerdict::Ignore("stale properties");
        }
        if let Err(e) = group.props().check_update(newer) {
            return GossipVerdict::Reject(e.to_string());
        }
        group.properties = signed;
        self.events.push(Event::PropertiesChanged {
            group: name.clone(),
        });
        GossipVerdict::Accept
    }

    // ----- first-connect copy ---------------------------------------------------

    fn maybe_start_sync(&mut self, behaviour: &mut Behaviour, name: &PeerName, peer: PeerId) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        if group.ready
            || group.lifecycle != Lifecycle::Online
            || group.sync.is_some()
            || group.tried.contains(&peer)
        {
            return;
        }
        self.request_page(behaviour, name, peer, Phase::Memberships, None);
    }

    fn request_page(
        &mut self,
        behaviour: &mut Behaviour,
        name: &PeerName,
        peer: PeerId,
        phase: Phase,
        after: Option<RecordId>,
    ) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let Some(identity) = self.identities.get(&group.identity) else {
            return;
        };
        let record_type = match phase {
            Phase::Memberships => Some(RecordType::MEMBERSHIP),
            Phase::Records => None,
        };
        let request = match sync::request(
            name,
            identity,
            &group.chain,
            &self.local_peer,
            &peer,
            record_type,
            after,
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(group = %name, error = %e, "cannot build a sync request");
                return;
            }
        };
        let id = behaviour.sync.send_request(&peer, request);
        self.pending_sync.insert(id, name.clone());
        if let Some(group) = self.groups.get_mut(name) {
            group.sync = Some(SyncRun { peer, phase });
            group.tried.insert(peer);
        }
    }

    fn inject_sync(
        &mut self,
        behaviour: &mut Behaviour,
        event: request_response::Event<sync::Request, sync::Response>,
        now: Timestamp,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.serve(behaviour, peer, request, channel, now);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.on_page(behaviour, peer, request_id, response, now);
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(name) = self.pending_sync.remove(&request_id) {
                    self.sync_failed(behaviour, &name);
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn serve(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        request: sync::Request,
        channel: ResponseChannel<sync::Response>,
        now: Timestamp,
    ) {
        let response = match self.page_for(peer, &request, now) {
            Ok(page) => page,
            Err(e) => {
                tracing::debug!(%peer, group = %request.group, error = %e, "sync request refused");
                sync::Response::Refused {
                    reason: e.to_string(),
                }
            }
        };
        if behaviour.sync.send_response(channel, response).is_err() {
            tracing::debug!(%peer, "sync response not sent: the requester is gone");
        }
    }

    fn page_for(
        &self,
        peer: PeerId,
        request: &sync::Request,
        now: Timestamp,
    ) -> Result<sync::Response, NodeError> {
        let group = self.ready_group(&request.group)?;
        sync::authenticate(request, group.props(), &peer, &self.local_peer, now)?;
        let page = self
            .store
            .records(
                &request.group,
                request.record_type,
                request.after,
                sync::PAGE_RECORDS,
            )
            .map_err(NodeError::Store)?;
        let full = page.len() == sync::PAGE_RECORDS;
        let mut bytes = 0usize;
        let mut records = Vec::with_capacity(page.len());
        let mut truncated = false;
        for record in page {
            if bytes >= sync::PAGE_BYTES {
                truncated = true;
                break;
            }
            bytes = bytes.saturating_add(record.as_bytes().len());
            records.push(ByteBuf::from(record.into_bytes()));
        }
        Ok(sync::Response::Page {
            properties: ByteBuf::from(group.properties.as_bytes().to_vec()),
            records,
            done: !full && !truncated,
        })
    }

    fn on_page(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        request_id: OutboundRequestId,
        response: sync::Response,
        now: Timestamp,
    ) {
        let Some(name) = self.pending_sync.remove(&request_id) else {
            return;
        };
        let (properties, records, done) = match response {
            sync::Response::Page {
                properties,
                records,
                done,
            } => (properties, records, done),
            sync::Response::Refused { reason } => {
                tracing::debug!(%peer, group = %name, %reason, "sync refused");
                self.sync_failed(behaviour, &name);
                return;
            }
        };
        if let Ok(newer) = SignedProperties::from_bytes(&properties)
            && let Some(group) = self.groups.get_mut(&name)
            && newer.properties().group_peer_name == name
            && group.props().check_update(newer.properties()).is_ok()
        {
            group.properties = newer;
            self.events.push(Event::PropertiesChanged {
                group: name.clone(),
            });
        }
        let mut accepted = Vec::new();
        let mut last = None;
        for bytes in &records {
            let record = match SignedRecord::from_bytes(bytes) {
                Ok(r) if r.record().group == name => r,
                Ok(_) | Err(_) => {
                    tracing::debug!(%peer, group = %name, "sync page carried an invalid record");
                    continue;
                }
            };
            last = Some(record.record().id);
            if record.record().is_expired(now) {
                continue;
            }
            let Some(group) = self.groups.get_mut(&name) else {
                return;
            };
            for verdict in group.authorizer.handle(record) {
                match verdict {
                    Verdict::Accepted(r) => {
                        // It may have waited for this membership as a gossip message too.
                        self.report_pending(
                            behaviour,
                            &name,
                            &r.record().id,
                            MessageAcceptance::Accept,
                        );
                        accepted.push(r);
                    }
                    Verdict::Dropped { record } => {
                        let id = record.record().id;
                        self.report_pending(behaviour, &name, &id, MessageAcceptance::Ignore);
                    }
                    Verdict::Held { .. } | Verdict::Refused { .. } => {}
                }
            }
        }
        if let Err(e) = self.merge(accepted) {
            tracing::error!(group = %name, error = %e, "cannot store synchronized records");
            self.sync_failed(behaviour, &name);
            return;
        }
        let Some(phase) = self
            .groups
            .get(&name)
            .and_then(|g| g.sync.as_ref())
            .map(|s| s.phase)
        else {
            return;
        };
        match (done, phase) {
            (false, phase) => self.request_page(behaviour, &name, peer, phase, last),
            (true, Phase::Memberships) => {
                self.request_page(behaviour, &name, peer, Phase::Records, None)
            }
            (true, Phase::Records) => self.sync_complete(behaviour, &name, now),
        }
    }

    fn sync_failed(&mut self, behaviour: &mut Behaviour, name: &PeerName) {
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        group.sync = None;
        let next = group
            .neighbors
            .iter()
            .find(|p| !group.tried.contains(p))
            .copied();
        if let Some(peer) = next {
            self.maybe_start_sync(behaviour, name, peer);
        }
    }

    fn sync_complete(&mut self, behaviour: &mut Behaviour, name: &PeerName, now: Timestamp) {
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        group.sync = None;
        group.ready = true;
        let optional = group.props().flags.0 & GroupFlags::MEMBER_DATA_OPTIONAL.0 != 0;
        self.become_listening(behaviour, name);
        // become_listening emits StatusChanged only if a flag changed; the
        // readiness itself must always be announced.
        if let Some(group) = self.groups.get(name)
            && !self.events.iter().any(
                |e| matches!(e, Event::StatusChanged { group: g, ready: true, .. } if g == name),
            )
        {
            self.events.push(Event::StatusChanged {
                group: name.clone(),
                status: group.status,
                ready: true,
            });
        }
        if !optional && let Err(e) = self.ensure_membership_published(behaviour, name, now) {
            tracing::warn!(group = %name, error = %e, "cannot publish the membership record");
        }
    }
}

fn inject_identify(behaviour: &mut Behaviour, event: identify::Event) {
    if let identify::Event::Received { peer_id, info, .. } = event
        && let Some(kad) = behaviour.kademlia.as_mut()
    {
        for addr in info.listen_addrs {
            kad.add_address(&peer_id, addr);
        }
    }
}

fn dial_opts(addr: Multiaddr) -> DialOpts {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => DialOpts::peer_id(peer).addresses(vec![addr]).build(),
        _ => DialOpts::unknown_peer_id().address(addr).build(),
    }
}

fn publish(behaviour: &mut Behaviour, topic: &IdentTopic, bytes: Vec<u8>) {
    match behaviour.gossipsub.publish(topic.clone(), bytes) {
        Ok(_) => {}
        Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
            tracing::trace!(topic = %topic, "no neighbour to publish to yet");
        }
        Err(e) => tracing::warn!(topic = %topic, error = %e, "publish failed"),
    }
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> NodeError {
        NodeError::Store(e)
    }
}

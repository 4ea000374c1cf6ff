//! A deterministic, seeded, virtual-time simulator of several group sessions
//! (style rule 23b): gossip flooding with forwarding on Accept, the
//! synchronization (reconciliation and fetches) over request/response with timeouts, message loss,
//! reordering (random latency), partitions and restarts from the persisted
//! state and the store. A run of thousands of messages takes milliseconds.
//! The simulations themselves are in `runs`.

mod runs;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use peergroup_protocol::{
    CredentialChain, DecodeError, Error, GroupSpec, Identity, InvitationInfo, Kind, MemoryStore,
    NewRecord, ReadStore, RecordType, Role, Signed, SignedProperties, SignedRecord, Store,
    Timestamp, create_invitation,
    reconcile::Answer,
    session::{
        Acceptance, Event, Fetched, GroupState, Input, Origin, Output, Session, SessionConfig,
        Stored, SyncRequest, Version,
    },
    testing::{NOTE, T0, identity},
};
use sha2::{Digest as _, Sha256};

/// How many envelope bytes a simulated server sends per fetch at most
/// (small, so that fetches take several rounds).
const FETCH_BYTES: usize = 16 * 1024;
/// How long a simulated request waits for its response, in ms.
const REQUEST_TIMEOUT: u64 = 5_000;

/// splitmix64: a tiny deterministic RNG for the simulation.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `permille` / 1000.
    pub(crate) fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }
}

pub(crate) type Sess = Session<usize, u64>;

#[derive(Debug)]
enum Msg {
    Gossip {
        from: usize,
        to: usize,
        id: u64,
    },
    Request {
        from: usize,
        to: usize,
        rid: u64,
        request: SyncRequest,
    },
    Response {
        from: usize,
        to: usize,
        rid: u64,
        page: Result<Served, String>,
    },
    RequestTimeout {
        node: usize,
        rid: u64,
    },
    /// A request answered now: a fetch waits for the store commits queued
    /// before it arrived, as the node's storage reader does.
    Serve {
        from: usize,
        to: usize,
        rid: u64,
        request: SyncRequest,
    },
    /// A store commit finishing (storage runs beside the session, so merges
    /// are answered later; a crash before the commit loses the batch).
    Commit {
        node: usize,
        incarnation: u64,
        batch: Vec<SignedRecord>,
    },
    /// A group state written (after every commit queued before it).
    Persisted {
        node: usize,
        incarnation: u64,
        state: Box<GroupState>,
    },
}

#[derive(Debug)]
enum Served {
    Answers(Vec<u8>, Vec<Answer>),
    Records {
        properties: Vec<u8>,
        records: Vec<Vec<u8>>,
        considered: usize,
    },
}

pub(crate) struct Node {
    pub(crate) identity: Identity,
    pub(crate) session: Option<Sess>,
    pub(crate) store: MemoryStore,
    pub(crate) persisted: Option<GroupState>,
    subscribed: bool,
    neighbors: BTreeSet<usize>,
    seen: HashSet<u64>,
    cache: HashMap<u64, Vec<u8>>,
    /// The requests in flight, by request id: the neighbour asked and the
    /// session's tag.
    outstanding: BTreeMap<u64, (usize, u64)>,
    /// Bumped at every crash: work queued before it is lost.
    incarnation: u64,
    /// When the node's storage is free again (writes complete in order).
    storage_free: Timestamp,
    pub(crate) events: Vec<Event<usize>>,
    pub(crate) outcomes: Vec<Result<(), Error>>,
    /// Every verdict reported, by message id: each must be reported once.
    pub(crate) verdicts: HashMap<u64, Vec<Acceptance>>,
    pub(crate) misbehaved: usize,
    pub(crate) persists: usize,
}

impl Node {
    pub(crate) fn session(&mut self) -> &mut Sess {
        self.session.as_mut().expect("the node is up")
    }

    pub(crate) fn is_up(&self) -> bool {
        self.session.is_some()
    }

    pub(crate) fn ready(&self) -> bool {
        self.persisted.as_ref().is_some_and(|s| s.ready)
    }
}

/// The simulated world: nodes of one group on a virtual network.
pub(crate) struct Sim {
    pub(crate) rng: Rng,
    pub(crate) now: Timestamp,
    seq: u64,
    queue: BTreeMap<(Timestamp, u64), Msg>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) properties: SignedProperties,
    pub(crate) config: SessionConfig,
    /// Probability (per mille) that any message is lost.
    pub(crate) loss: u64,
    /// Latency range in ms: `1..=max_latency`; different latencies reorder messages.
    pub(crate) max_latency: u64,
    /// Which side of a partition each node is on (`None`: no partition).
    pub(crate) partition: Option<Vec<u8>>,
    /// Each store write takes `0..storage_delay` ms after the one before.
    pub(crate) storage_delay: u64,
    rids: u64,
}

fn message_id(bytes: &[u8]) -> u64 {
    let d = Sha256::digest(bytes);
    u64::from_be_bytes(d[..8].try_into().unwrap())
}

impl Sim {
    /// A world with a creator (node 0) that created the group, and no other node yet.
    pub(crate) fn new(seed: u64) -> Sim {
        Sim::with_config(seed, SessionConfig::default())
    }

    /// [`Sim::new`] with every session on `config`.
    pub(crate) fn with_config(seed: u64, config: SessionConfig) -> Sim {
        let creator = identity(1, "creator");
        let properties = GroupSpec::new(creator.peer_name(), "sim")
            .create(&creator, T0, |_| false)
            .unwrap();
        let mut sim = Sim {
            rng: Rng::new(seed),
            now: T0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes: Vec::new(),
            properties: properties.clone(),
            config,
            loss: 0,
            max_latency: 30,
            partition: None,
            storage_delay: 6,
            rids: 0,
        };
        let session = Sess::create(
            properties,
            creator.clone(),
            peergroup_protocol::GroupKey::new(0, [0x4b; 32]),
            config,
        )
        .unwrap();
        sim.nodes.push(Node::new(creator, session));
        sim.drain(0);
        sim
    }

    /// Adds a node whose identity `inviter` invites as `role`; it joins (not connected yet).
    pub(crate) fn invite(&mut self, inviter: usize, role: Role) -> usize {
        let n = self.nodes.len();
        let who = identity(u8::try_from(n + 1).unwrap(), &format!("m{n}"));
        let issuer = &self.nodes[inviter];
        let state = issuer.session.as_ref().unwrap().state();
        let text = create_invitation(
            &issuer.identity,
            &state.chain,
            &state.properties,
            &who.info().unwrap(),
            role,
            None,
            self.now,
        )
        .unwrap();
        let info = InvitationInfo::parse(&text).unwrap();
        let chain: CredentialChain = info.accept(&who, self.now).unwrap();
        let session = Sess::join(info.properties, who.clone(), chain, self.config).unwrap();
        self.nodes.push(Node::new(who, session));
        self.drain(n);
        n
    }

    pub(crate) fn group(&self) -> &peergroup_protocol::PeerName {
        &self.properties.properties().group_peer_name
    }

    pub(crate) fn connect(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        node.session().open();
        node.session().connect(now).unwrap();
        self.drain(i);
        self.sync_neighbors();
    }

    /// Stops node `i` (its session is dropped; store and persisted state stay).
    pub(crate) fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.session = None;
        node.subscribed = false;
        node.outstanding.clear();
        node.incarnation += 1;
        node.seen.clear();
        node.cache.clear();
        self.sync_neighbors();
    }

    /// Starts node `i` again from what it persisted and stored; it comes back closed.
    pub(crate) fn restart(&mut self, i: usize) {
        let group = self.group().clone();
        let node = &mut self.nodes[i];
        let state = node
            .persisted
            .clone()
            .expect("the node persisted its state");
        let stored = stored(&node.store, &group);
        node.session =
            Some(Sess::restore(state, node.identity.clone(), self.config, stored).unwrap());
    }

    /// Adds, updates or deletes a record at node `i` (a no-op when it cannot).
    pub(crate) fn random_write(&mut self, i: usize) {
        let now = self.now;
        let group = self.group().clone();
        let pick = self.rng.below(10);
        let nonce = self.rng.next().to_be_bytes();
        let node = &mut self.nodes[i];
        if node.session.is_none() || node.session().check_ready().is_err() {
            return;
        }
        let live: Vec<SignedRecord> = node
            .store
            .records(&group, Some(NOTE), None, usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|r| !r.record().is_deleted())
            .collect();
        let result = if pick < 5 || live.is_empty() {
            let new = NewRecord::new(NOTE, now.saturating_add_secs(3600))
                .with_data(format!("{i} at {}", now.as_millis()).into_bytes());
            node.session().add_record(new, nonce, now).map(|_| ())
        } else {
            let target = live[usize::try_from(self.rng.below(live.len() as u64)).unwrap()].clone();
            if pick < 9 {
                let mut proposed = target.record().clone();
                proposed.data = format!("{i} edits at {}", now.as_millis()).into_bytes();
                node.session().update_record(&proposed, Some(target), now)
            } else {
                node.session().delete_record(Some(target), now)
            }
        };
        match result {
            // Not allowed, or a newer version is being stored (the copy this
            // writer read is outdated): an application reads again and retries.
            Ok(()) | Err(Error::NotAuthorized(_) | Error::AlreadyExists(_)) => {}
            Err(e) => panic!("node {i}: write failed: {e}"),
        }
        self.drain(i);
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        a != b
            && self.nodes[a].is_up()
            && self.nodes[b].is_up()
            && self
                .partition
                .as_ref()
                .is_none_or(|sides| sides[a] == sides[b])
    }

    /// Neighbours are the linked nodes that are both subscribed (what
    /// gossipsub subscriptions tell each side).
    pub(crate) fn sync_neighbors(&mut self) {
        let now = self.now;
        for i in 0..self.nodes.len() {
            let want: BTreeSet<usize> = if self.nodes[i].subscribed {
                (0..self.nodes.len())
                    .filter(|&j| self.linked(i, j) && self.nodes[j].subscribed)
                    .collect()
            } else {
                BTreeSet::new()
            };
            let have = self.nodes[i].neighbors.clone();
            if want == have {
                continue;
            }
            self.nodes[i].neighbors = want.clone();
            if let Some(session) = self.nodes[i].session.as_mut() {
                for gone in have.difference(&want) {
                    session.handle(Input::NeighborDown(*gone), now);
                }
                for new in want.difference(&have) {
                    session.handle(Input::NeighborUp(*new), now);
                }
            }
            self.drain(i);
        }
    }

    fn send(&mut self, msg: Msg) {
        if self.rng.chance(self.loss) {
            return;
        }
        let delay = 1 + self.rng.below(self.max_latency);
        self.seq += 1;
        self.queue
            .insert((self.now.saturating_add_millis(delay), self.seq), msg);
    }

    fn gossip_to_neighbors(&mut self, from: usize, id: u64, except: Option<usize>) {
        let targets: Vec<usize> = self.nodes[from]
            .neighbors
            .iter()
            .copied()
            .filter(|&j| Some(j) != except)
            .collect();
        for to in targets {
            self.send(Msg::Gossip { from, to, id });
        }
    }

    /// Executes node `i`'s outputs until it has none.
    pub(crate) fn drain(&mut self, i: usize) {
        let group = self.group().clone();
        loop {
            let Some(session) = self.nodes[i].session.as_mut() else {
                return;
            };
            let Some(output) = session.poll_output() else {
                break;
            };
            let now = self.now;
            match output {
                Output::Subscribe => {
                    self.nodes[i].subscribed = true;
                    self.sync_neighbors();
                }
                Output::Unsubscribe => {
                    self.nodes[i].subscribed = false;
                    self.sync_neighbors();
                }
                Output::Publish(bytes) => {
                    // Every publication is a message of its own, as the
                    // node's are (each is sealed with a fresh nonce): a
                    // record flooded on after a synchronization is a new
                    // message, not a replay of the one it first came in.
                    self.seq += 1;
                    let id = message_id(&[bytes.as_slice(), &self.seq.to_be_bytes()].concat());
                    self.nodes[i].seen.insert(id);
                    self.nodes[i].cache.insert(id, bytes);
                    self.gossip_to_neighbors(i, id, None);
                }
                Output::Verdict {
                    source,
                    message,
                    reason,
                } => {
                    let acceptance = reason.acceptance();
                    self.nodes[i]
                        .verdicts
                        .entry(message)
                        .or_default()
                        .push(acceptance);
                    if acceptance == Acceptance::Accept {
                        self.gossip_to_neighbors(i, message, Some(source));
                    }
                }
                Output::PeerMisbehaved { .. } => self.nodes[i].misbehaved += 1,
                Output::SyncEnded { .. } => {}
                Output::Merge(batch) => {
                    let incarnation = self.nodes[i].incarnation;
                    self.store_write(
                        i,
                        Msg::Commit {
                            node: i,
                            incarnation,
                            batch,
                        },
                    );
                }
                Output::Persist(state) => {
                    assert_eq!(state.group(), &group);
                    let incarnation = self.nodes[i].incarnation;
                    self.store_write(
                        i,
                        Msg::Persisted {
                            node: i,
                            incarnation,
                            state,
                        },
                    );
                }
                Output::SyncRequest { peer, tag, request } => {
                    self.rids += 1;
                    let rid = self.rids;
                    self.nodes[i].outstanding.insert(rid, (peer, tag));
                    self.send(Msg::Request {
                        from: i,
                        to: peer,
                        rid,
                        request,
                    });
                    self.seq += 1;
                    self.queue.insert(
                        (now.saturating_add_millis(REQUEST_TIMEOUT), self.seq),
                        Msg::RequestTimeout { node: i, rid },
                    );
                }
                Output::StartProviding | Output::StopProviding | Output::FindMembers => {}
                Output::Emit(event) => self.nodes[i].events.push(event),
                Output::ConnectOutcome(outcome) => self.nodes[i].outcomes.push(outcome),
            }
        }
    }

    /// Queues a storage write of node `i`: writes complete in order, each
    /// 0 to `storage_delay - 1` ms after the one before.
    fn store_write(&mut self, i: usize, msg: Msg) {
        let at = self.nodes[i]
            .storage_free
            .max(self.now)
            .saturating_add_millis(self.rng.below(self.storage_delay));
        self.nodes[i].storage_free = at;
        self.seq += 1;
        self.queue.insert((at, self.seq), msg);
    }

    fn serve(&self, at: usize, request: SyncRequest) -> Result<Served, String> {
        let node = &self.nodes[at];
        let session = node.session.as_ref().ok_or("down")?;
        session.check_ready().map_err(|e| e.to_string())?;
        match request {
            SyncRequest::Reconcile(queries) => session
                .answer_reconcile(&queries, self.now)
                .map(|a| Served::Answers(session.state().properties.as_bytes().to_vec(), a))
                .map_err(|e| e.to_string()),
            SyncRequest::Fetch { ids, max_bytes } => {
                let limit = (max_bytes as usize).min(FETCH_BYTES);
                let (mut records, mut considered, mut bytes) = (Vec::new(), 0, 0);
                for id in &ids {
                    if bytes >= limit && !records.is_empty() {
                        break;
                    }
                    considered += 1;
                    if let Some(r) = node.store.get(self.group(), id).unwrap() {
                        bytes += r.as_bytes().len();
                        records.push(r.into_bytes());
                    }
                }
                Ok(Served::Records {
                    properties: session.state().properties.as_bytes().to_vec(),
                    records,
                    considered,
                })
            }
        }
    }

    fn deliver(&mut self, msg: Msg) {
        let now = self.now;
        match msg {
            Msg::Gossip { from, to, id } => {
                if !self.linked(from, to) || !self.nodes[to].subscribed {
                    return;
                }
                let Some(bytes) = self.nodes[from].cache.get(&id).cloned() else {
                    return;
                };
                let node = &mut self.nodes[to];
                if !node.seen.insert(id) {
                    return;
                }
                node.cache.insert(id, bytes.clone());
                let origin = Origin::Gossip {
                    source: from,
                    message: id,
                };
                let input = match SignedRecord::from_bytes(&bytes) {
                    Err(Error::Decode(DecodeError::WrongKind { found, .. }))
                        if found == Kind::Properties.to_byte() =>
                    {
                        Input::Properties {
                            properties: Signed::from_bytes(&bytes),
                            origin,
                        }
                    }
                    record => Input::Record { record, origin },
                };
                node.session().handle(input, now);
                self.drain(to);
            }
            Msg::Request {
                from,
                to,
                rid,
                request,
            } => {
                if !self.linked(from, to) {
                    return;
                }
                // What the session announced must be served: a fetch is
                // read once the writes queued before it are committed.
                let at = match request {
                    SyncRequest::Fetch { .. } => self.nodes[to].storage_free.max(now),
                    SyncRequest::Reconcile(_) => now,
                };
                self.seq += 1;
                self.queue.insert(
                    (at, self.seq),
                    Msg::Serve {
                        from,
                        to,
                        rid,
                        request,
                    },
                );
            }
            Msg::Serve {
                from,
                to,
                rid,
                request,
            } => {
                if !self.linked(from, to) {
                    return;
                }
                let page = self.serve(to, request);
                self.send(Msg::Response {
                    from: to,
                    to: from,
                    rid,
                    page,
                });
            }
            Msg::Response {
                from,
                to,
                rid,
                page,
            } => {
                let node = &mut self.nodes[to];
                let Some((_, tag)) = node.outstanding.remove(&rid) else {
                    return;
                };
                if node.session.is_none() {
                    return;
                }
                let input = match page {
                    Ok(Served::Answers(properties, answers)) => Input::Reconciled {
                        peer: from,
                        tag,
                        properties: Some(SignedProperties::from_bytes(&properties)),
                        answers,
                    },
                    Ok(Served::Records {
                        properties,
                        records,
                        considered,
                    }) => Input::Fetched(Fetched {
                        peer: from,
                        tag,
                        properties: Some(SignedProperties::from_bytes(&properties)),
                        records: records
                            .iter()
                            .map(|b| SignedRecord::from_bytes(b))
                            .collect(),
                        considered,
                    }),
                    Err(reason) => Input::SyncFailed {
                        peer: from,
                        tag,
                        reason,
                        timed_out: false,
                    },
                };
                node.session().handle(input, now);
                self.drain(to);
            }
            Msg::Commit {
                node: i,
                incarnation,
                batch,
            } => {
                let node = &mut self.nodes[i];
                if node.incarnation != incarnation {
                    return;
                }
                let outcomes = node.store.merge(batch.clone()).unwrap();
                let merged = batch
                    .into_iter()
                    .zip(outcomes.into_iter().map(|m| m.change))
                    .collect();
                if node.session.is_some() {
                    node.session().handle(Input::Merged(merged), now);
                    self.drain(i);
                }
            }
            Msg::Persisted {
                node: i,
                incarnation,
                state,
            } => {
                let node = &mut self.nodes[i];
                if node.incarnation != incarnation {
                    return;
                }
                node.persisted = Some(*state);
                node.persists += 1;
            }
            Msg::RequestTimeout { node: i, rid } => {
                let node = &mut self.nodes[i];
                let Some((peer, tag)) = node.outstanding.remove(&rid) else {
                    return;
                };
                if node.session.is_none() {
                    return;
                }
                node.session().handle(
                    Input::SyncFailed {
                        peer,
                        tag,
                        reason: "timeout".into(),
                        timed_out: true,
                    },
                    now,
                );
                self.drain(i);
            }
        }
    }

    /// Runs the world until `until` (virtual time).
    pub(crate) fn run_until(&mut self, until: Timestamp) {
        loop {
            let next_msg = self.queue.keys().next().map(|(t, _)| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.session.as_ref().and_then(|s| s.poll_timeout()))
                .min();
            let next = match (next_msg, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .session
                    .as_ref()
                    .and_then(|s| s.poll_timeout())
                    .is_some_and(|t| t <= self.now);
                if due {
                    let now = self.now;
                    self.nodes[i].session().handle(Input::Timeout, now);
                    self.drain(i);
                }
            }
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let msg = entry.remove();
                self.deliver(msg);
            }
        }
        self.now = self.now.max(until);
    }

    /// Advances virtual time by `min + random(0..spread)` ms.
    pub(crate) fn run_random(&mut self, min: u64, spread: u64) {
        let ms = min + self.rng.below(spread);
        self.run_for(ms);
    }

    /// Advances virtual time by `ms`.
    pub(crate) fn run_for(&mut self, ms: u64) {
        let until = self.now.saturating_add_millis(ms);
        self.run_until(until);
    }

    pub(crate) fn digest(&self, i: usize) -> peergroup_protocol::Digest {
        self.nodes[i].store.digest(self.group()).unwrap()
    }

    /// Panics if a gossip message got more than one verdict at any node.
    pub(crate) fn assert_one_verdict_per_message(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            for (id, verdicts) in &node.verdicts {
                assert_eq!(
                    verdicts.len(),
                    1,
                    "node {i} reported message {id:x} {} times: {verdicts:?}",
                    verdicts.len()
                );
            }
        }
    }
}

impl Node {
    fn new(identity: Identity, session: Sess) -> Node {
        Node {
            identity,
            session: Some(session),
            store: MemoryStore::new(),
            persisted: None,
            subscribed: false,
            neighbors: BTreeSet::new(),
            seen: HashSet::new(),
            cache: HashMap::new(),
            outstanding: BTreeMap::new(),
            incarnation: 0,
            storage_free: Timestamp::EPOCH,
            events: Vec::new(),
            outcomes: Vec::new(),
            verdicts: HashMap::new(),
            misbehaved: 0,
            persists: 0,
        }
    }
}

/// What a restarted node reads from its store to rebuild its session.
pub(crate) fn stored(store: &MemoryStore, group: &peergroup_protocol::PeerName) -> Stored {
    let all = store.records(group, None, None, usize::MAX).unwrap();
    Stored {
        versions: all
            .iter()
            .map(|r| {
                (
                    r.record().id,
                    Version {
                        version: r.record().version,
                        hash: Sha256::digest(r.as_bytes()).into(),
                        expires_at: r.record().expires_at,
                    },
                )
            })
            .collect(),
        memberships: all
            .into_iter()
            .filter(|r| r.record().record_type == RecordType::MEMBERSHIP)
            .collect(),
    }
}

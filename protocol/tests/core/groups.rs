//! The groups router (`peergroup_protocol::groups`) between several nodes,
//! with group authentication carried by a synchronous in-memory network and
//! time moved by hand: who becomes a neighbour, who is cut off and
//! disconnected, and how timeouts behave when peer time steps.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use peergroup_protocol::{
    AuthProof, AuthRole, CredentialChain, Error, GroupKey, GroupSpec, Identity, PeerName, Role,
    SignedProperties, Timestamp, Transcript,
    auth::AUTH_GRACE,
    group_tag,
    groups::{Groups, Now, Output},
    issue_credential, membership_record,
    messages::auth::{Request, Response},
    session::{Output as SessionOutput, Session, SessionConfig, Stored},
    testing::{T0, identity},
};
use rand::{SeedableRng, rngs::StdRng};

type G = Groups<u8, u64>;
type Sess = Session<u8, u64>;

/// What a node's router said, other than requests and session outputs.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    Authenticated(PeerName, u8),
    Failed(PeerName, u8, String),
    Expired(PeerName, u8),
    Disconnect(u8),
    Clock(i64),
    WallStep(i64),
}

struct Node {
    groups: G,
    /// How far this node's wall clock is from the world's (ms).
    skew_ms: i64,
    said: Vec<Said>,
}

/// Nodes on one network, all connected to each other until one
/// disconnects another.
struct World {
    nodes: BTreeMap<u8, Node>,
    instant: Instant,
    wall: Timestamp,
    /// Topic subscriptions: (node, group).
    subscribed: BTreeSet<(u8, PeerName)>,
    connected: BTreeSet<(u8, u8)>,
    /// Nodes that never answer authentication requests.
    mute: BTreeSet<u8>,
    rng: StdRng,
}

impl World {
    fn new() -> World {
        World {
            nodes: BTreeMap::new(),
            instant: Instant::now(),
            wall: T0,
            subscribed: BTreeSet::new(),
            connected: BTreeSet::new(),
            mute: BTreeSet::new(),
            rng: StdRng::seed_from_u64(7),
        }
    }

    fn add(&mut self, id: u8, skew_ms: i64) {
        for other in self.nodes.keys() {
            self.connected.insert((id.min(*other), id.max(*other)));
        }
        self.nodes.insert(
            id,
            Node {
                groups: G::new(vec![id], 0),
                skew_ms,
                said: Vec::new(),
            },
        );
    }

    fn now(&self, id: u8) -> Now {
        let skew = self.nodes.get(&id).map_or(0, |n| n.skew_ms);
        Now {
            instant: self.instant,
            wall: self.wall.saturating_offset(skew),
        }
    }

    fn node(&mut self, id: u8) -> &mut Node {
        self.nodes.get_mut(&id).unwrap()
    }

    fn is_connected(&self, a: u8, b: u8) -> bool {
        self.connected.contains(&(a.min(b), a.max(b)))
    }

    /// Adds `session` to node `id` and takes it online.
    fn online(&mut self, id: u8, mut session: Sess) -> PeerName {
        let name = session.name().clone();
        let now = self.now(id);
        session.open();
        session.connect(now.wall).unwrap();
        self.node(id).groups.insert(session);
        self.pump();
        name
    }

    /// Moves both clocks by `ms` and runs every node's due timers.
    fn advance(&mut self, ms: u64) {
        self.instant += Duration::from_millis(ms);
        self.wall = self.wall.saturating_add_millis(ms);
        self.timers();
    }

    fn timers(&mut self) {
        let ids: Vec<u8> = self.nodes.keys().copied().collect();
        for id in ids {
            let now = self.now(id);
            // As the node does on every poll: read the clocks.
            self.node(id).groups.observe(now);
            let due = self
                .node(id)
                .groups
                .poll_timeout(now)
                .is_some_and(|at| at <= now.instant);
            if due {
                let mut rng = StdRng::seed_from_u64(u64::from(id));
                self.node(id).groups.handle_timeout(now, &mut rng);
            }
        }
        self.pump();
    }

    /// Runs every node's outputs until none is left.
    fn pump(&mut self) {
        loop {
            let mut any = false;
            let ids: Vec<u8> = self.nodes.keys().copied().collect();
            for id in ids {
                while let Some(output) = self.node(id).groups.poll_output() {
                    any = true;
                    self.execute(id, output);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn execute(&mut self, id: u8, output: Output<u8, u64>) {
        match output {
            Output::Session { group, output } => match output {
                SessionOutput::Subscribe => {
                    self.subscribed.insert((id, group.clone()));
                    let others: Vec<u8> = self.nodes.keys().copied().filter(|o| *o != id).collect();
                    for other in others {
                        if !self.is_connected(id, other) {
                            continue;
                        }
                        let now = self.now(other);
                        let mut rng = StdRng::seed_from_u64(u64::from(other) << 8 | u64::from(id));
                        self.node(other)
                            .groups
                            .subscribed(&group, &id, now, &mut rng);
                        if self.subscribed.contains(&(other, group.clone())) {
                            let now = self.now(id);
                            self.node(id)
                                .groups
                                .subscribed(&group, &other, now, &mut rng);
                        }
                    }
                }
                SessionOutput::Unsubscribe => {
                    self.subscribed.remove(&(id, group.clone()));
                    let others: Vec<u8> = self.nodes.keys().copied().filter(|o| *o != id).collect();
                    for other in others {
                        let now = self.now(other);
                        self.node(other).groups.unsubscribed(&group, &id, now);
                    }
                }
                _ => {}
            },
            Output::AuthRequest {
                exchange,
                peer,
                request,
            } => {
                if !self.is_connected(id, peer)
                    || self.mute.contains(&peer)
                    || self.mute.contains(&id)
                {
                    return;
                }
                let now = self.now(peer);
                let mut rng = StdRng::seed_from_u64(self.rng_next());
                let response =
                    self.node(peer)
                        .groups
                        .on_auth_request(&id, &[id], request, now, &mut rng);
                let now = self.now(id);
                self.node(id)
                    .groups
                    .on_auth_response(exchange, &[peer], response, now, &mut rng);
            }
            Output::Authenticated { group, peer, .. } => {
                self.node(id).said.push(Said::Authenticated(group, peer));
            }
            Output::AuthenticationFailed {
                group,
                peer,
                reason,
            } => self
                .node(id)
                .said
                .push(Said::Failed(group, peer, reason.name().to_owned())),
            Output::CredentialExpired { group, peer } => {
                self.node(id).said.push(Said::Expired(group, peer));
            }
            Output::Graylist { .. } => {}
            Output::Disconnect(peer) => {
                self.node(id).said.push(Said::Disconnect(peer));
                if self.connected.remove(&(id.min(peer), id.max(peer))) {
                    let now = self.now(id);
                    self.node(id).groups.peer_gone(&peer, now);
                    let now = self.now(peer);
                    self.node(peer).groups.peer_gone(&id, now);
                }
            }
            Output::ClockAdjusted { step_ms, .. } => self.node(id).said.push(Said::Clock(step_ms)),
            Output::WallClockStepped { step_ms } => {
                self.node(id).said.push(Said::WallStep(step_ms));
            }
        }
    }

    fn rng_next(&mut self) -> u64 {
        use rand::RngExt as _;
        self.rng.random()
    }

    fn said(&self, id: u8) -> &[Said] {
        &self.nodes[&id].said
    }

    fn neighbors(&self, id: u8, group: &PeerName) -> Vec<u8> {
        self.nodes[&id]
            .groups
            .get(group)
            .map(|s| s.neighbors().copied().collect())
            .unwrap_or_default()
    }
}

/// A group made by `creator`, with its creator's session (key committed).
fn created(creator: &Identity, classifier: &str) -> (SignedProperties, Sess) {
    let props = GroupSpec::new(creator.peer_name(), classifier)
        .create(creator, T0, |_| false)
        .unwrap();
    let session = Sess::create(
        props,
        creator.clone(),
        GroupKey::new(0, [7; 32]),
        SessionConfig::default(),
    )
    .unwrap();
    let props = session.state().properties.clone();
    (props, session)
}

fn credential(
    creator: &Identity,
    props: &SignedProperties,
    who: &Identity,
    until: Timestamp,
) -> CredentialChain {
    issue_credential(
        creator,
        &CredentialChain::creator(),
        props.properties(),
        who.info().unwrap().payload(),
        Role::Member,
        T0,
        until,
    )
    .unwrap()
}

/// A joiner's session. Nothing here serves its first synchronization, so
/// its connect would time out (and the group go offline) after the default
/// 30 s: it waits a day instead.
fn joined(props: &SignedProperties, who: &Identity, chain: CredentialChain) -> Sess {
    let config = SessionConfig {
        connect_timeout: Duration::from_secs(86_400),
        ..SessionConfig::default()
    };
    Sess::join(props.clone(), who.clone(), chain, config).unwrap()
}

/// Alice's group online on node 1, and Bob, a member until `until`, online
/// on node 2 (`mute`: Bob answers no authentication request, and asks none).
fn alice_and_bob(until: Timestamp, mute: bool) -> (World, PeerName) {
    let (alice, bob) = (identity(1, "alice"), identity(2, "bob"));
    let (props, session) = created(&alice, "g");
    let mut w = World::new();
    w.add(1, 0);
    w.add(2, 0);
    if mute {
        w.mute.insert(2);
    }
    let group = w.online(1, session);
    let chain = credential(&alice, &props, &bob, until);
    w.online(2, joined(&props, &bob, chain));
    (w, group)
}

const YEAR: u64 = 365 * 86_400;

#[test]
fn members_authenticate_each_other_and_the_joiner_gets_the_key() {
    let (mut w, group) = alice_and_bob(T0.saturating_add_secs(YEAR), false);
    assert_eq!(w.neighbors(1, &group), vec![2]);
    assert_eq!(w.neighbors(2, &group), vec![1]);
    assert!(
        w.nodes[&2]
            .groups
            .get(&group)
            .unwrap()
            .state()
            .current_key()
            .is_some()
    );
    assert!(w.said(1).contains(&Said::Authenticated(group.clone(), 2)));
    assert!(
        !w.said(1)
            .iter()
            .any(|s| matches!(s, Said::Failed(..) | Said::Disconnect(_)))
    );
    // A further connection (the peer redialed) keeps it a neighbour.
    let now = w.now(1);
    w.node(1).groups.reconnected(&2, now);
    w.pump();
    assert_eq!(w.neighbors(1, &group), vec![2]);
}

#[test]
fn an_outsider_that_proves_with_a_forged_chain_is_refused_and_disconnected() {
    let (alice, mallory) = (identity(1, "alice"), identity(9, "mallory"));
    let (props, session) = created(&alice, "g");
    let mut w = World::new();
    w.add(1, 0);
    w.add(9, 0);
    // Mallory speaks the protocol by hand: she has no session of the group
    // (no member would give her a credential).
    w.mute.insert(9);
    let group = w.online(1, session);
    let now = w.now(1);
    let mut rng = StdRng::seed_from_u64(3);
    let tag = group_tag(&group);
    let nonce = [5; 32];
    let answer = w.node(1).groups.on_auth_request(
        &9,
        &[9],
        Request::Hello {
            tag,
            nonce,
            time: now.wall,
            anchored: false,
        },
        now,
        &mut rng,
    );
    let Response::Nonce { nonce: theirs, .. } = answer else {
        panic!("{answer:?}");
    };
    // She claims the creator's empty chain with her own key.
    let proof = AuthProof::new(
        &mallory,
        &CredentialChain::creator(),
        AuthRole::Initiator,
        &Transcript {
            group: &group,
            initiator: &[9],
            responder: &[1],
            initiator_nonce: nonce,
            responder_nonce: theirs,
        },
    )
    .unwrap();
    let answer =
        w.node(1)
            .groups
            .on_auth_request(&9, &[9], Request::Prove { tag, proof }, now, &mut rng);
    assert!(matches!(answer, Response::Refused { .. }), "{answer:?}");
    w.pump();
    assert!(w.neighbors(1, &group).is_empty());
    assert!(
        w.said(1)
            .iter()
            .any(|s| matches!(s, Said::Failed(g, 9, _) if *g == group)),
        "{:?}",
        w.said(1)
    );
    assert!(w.said(1).contains(&Said::Disconnect(9)));
    assert!(!w.is_connected(1, 9));
    // A second proof on the same exchange is refused: nonces are used once.
    let _ = props;
}

#[test]
fn a_subscriber_that_never_authenticates_is_cut_off_after_the_grace_on_the_monotonic_clock() {
    let (mut w, group) = alice_and_bob(T0.saturating_add_secs(YEAR), true);
    assert!(w.nodes[&1].groups.is_pending(&group, &2));
    // Alice's wall clock (and with it her peer time) steps 10 minutes
    // ahead: no timeout of hers moves.
    w.node(1).skew_ms += 600_000;
    w.advance(AUTH_GRACE.as_millis() as u64 - 1);
    assert!(!w.said(1).contains(&Said::Disconnect(2)), "{:?}", w.said(1));
    w.advance(1);
    assert!(w.said(1).contains(&Said::Disconnect(2)), "{:?}", w.said(1));
    assert!(
        w.said(1)
            .iter()
            .any(|s| matches!(s, Said::Failed(g, 2, _) if *g == group))
    );
}

#[test]
fn a_credential_that_expires_mid_session_ends_the_neighbour_and_it_is_cut_off() {
    let (mut w, group) = alice_and_bob(T0.saturating_add_secs(60), false);
    assert_eq!(w.neighbors(1, &group), vec![2], "{:?}", w.said(1));
    w.advance(59_000);
    assert_eq!(w.neighbors(1, &group), vec![2]);
    w.advance(1_000);
    assert!(
        w.said(1).contains(&Said::Expired(group.clone(), 2)),
        "{:?}",
        w.said(1)
    );
    // Asked to authenticate again, it has no renewal: cut off.
    assert!(w.neighbors(1, &group).is_empty());
    assert!(w.said(1).contains(&Said::Disconnect(2)), "{:?}", w.said(1));
}

#[test]
fn an_expired_member_is_handed_its_renewal_and_authenticates_again() {
    let (alice, bob) = (identity(1, "alice"), identity(2, "bob"));
    let (props, session) = created(&alice, "g");
    let mut w = World::new();
    w.add(1, 0);
    w.add(2, 0);
    // Bob's credential ran out; Alice stored his renewal
    // (`PEER_GROUP_STORE_CREDENTIALS`) while he was away.
    let old = credential(&alice, &props, &bob, T0.saturating_add_secs(60));
    w.wall = T0.saturating_add_secs(120);
    let renewed = issue_credential(
        &alice,
        &CredentialChain::creator(),
        props.properties(),
        bob.info().unwrap().payload(),
        Role::Member,
        T0.saturating_add_secs(100),
        T0.saturating_add_secs(YEAR),
    )
    .unwrap();
    let record = membership_record(
        props.properties(),
        &renewed,
        &alice,
        None,
        T0.saturating_add_secs(100),
    )
    .unwrap();
    let state = session.state().clone();
    let session = Sess::restore(
        state,
        alice.clone(),
        SessionConfig::default(),
        Stored {
            versions: Vec::new(),
            memberships: vec![record],
        },
    )
    .unwrap();
    let group = w.online(1, session);
    w.online(2, joined(&props, &bob, old));
    assert_eq!(w.neighbors(1, &group), vec![2], "{:?}", w.said(1));
    assert_eq!(
        w.nodes[&2].groups.get(&group).unwrap().state().chain,
        renewed
    );
    assert!(!w.said(1).contains(&Said::Disconnect(2)));
}

#[test]
fn a_member_cut_off_in_one_of_two_groups_stays_connected_for_the_other() {
    let (alice, bob) = (identity(1, "alice"), identity(2, "bob"));
    let (props1, session1) = created(&alice, "one");
    let (props2, session2) = created(&alice, "two");
    let mut w = World::new();
    w.add(1, 0);
    w.add(2, 0);
    let one = w.online(1, session1);
    let two = w.online(1, session2);
    let until = T0.saturating_add_secs(YEAR);
    w.online(
        2,
        joined(&props1, &bob, credential(&alice, &props1, &bob, until)),
    );
    w.online(
        2,
        joined(&props2, &bob, credential(&alice, &props2, &bob, until)),
    );
    assert_eq!(w.neighbors(1, &one), vec![2]);
    assert_eq!(w.neighbors(1, &two), vec![2]);
    let now = w.now(1);
    w.node(1).groups.cut_off(
        &one,
        &2,
        Error::NotAuthorized("served invalid synchronization data".into()),
        now,
    );
    w.pump();
    assert!(w.neighbors(1, &one).is_empty());
    assert_eq!(w.neighbors(1, &two), vec![2]);
    assert!(!w.said(1).contains(&Said::Disconnect(2)));
    assert!(w.is_connected(1, 2));
    // Cut off from the other group too: now the connection goes.
    let now = w.now(1);
    w.node(1)
        .groups
        .cut_off(&two, &2, Error::NotAuthorized("graylisted".into()), now);
    w.pump();
    assert!(w.said(1).contains(&Said::Disconnect(2)));
}

#[test]
fn a_clock_step_of_ten_minutes_during_an_exchange_moves_no_timeout() {
    // Alice (the creator, anchored) runs 10 minutes ahead of Bob: when Bob
    // authenticates with her, his peer time steps by about 10 minutes. A
    // third peer that never answers was waiting for its grace on Bob's side
    // meanwhile: it is cut off after exactly AUTH_GRACE of monotonic time.
    let (alice, bob, carol) = (
        identity(1, "alice"),
        identity(2, "bob"),
        identity(3, "carol"),
    );
    let (props, session) = created(&alice, "g");
    let until = T0.saturating_add_secs(YEAR);
    let mut w = World::new();
    w.add(2, 0);
    w.add(3, 0);
    w.mute.insert(3);
    let bob_session = joined(&props, &bob, credential(&alice, &props, &bob, until));
    let group = w.online(2, bob_session);
    w.online(
        3,
        joined(&props, &carol, credential(&alice, &props, &carol, until)),
    );
    assert!(w.nodes[&2].groups.is_pending(&group, &3));
    w.advance(5_000);
    // Alice arrives, 10 minutes ahead.
    w.add(1, 600_000);
    w.online(1, session);
    assert_eq!(w.neighbors(2, &group), vec![1]);
    let step = w
        .said(2)
        .iter()
        .find_map(|s| match s {
            Said::Clock(step) => Some(*step),
            _ => None,
        })
        .expect("Bob's peer time adopted Alice's");
    assert!((599_000..=601_000).contains(&step), "step {step}");
    w.advance(4_999);
    assert!(!w.said(2).contains(&Said::Disconnect(3)), "{:?}", w.said(2));
    w.advance(1);
    assert!(w.said(2).contains(&Said::Disconnect(3)), "{:?}", w.said(2));
    // Alice stays a neighbour: her credential (the creator's) never expires.
    assert_eq!(w.neighbors(2, &group), vec![1]);
}

#[test]
fn a_peer_without_the_group_refuses_and_is_disconnected_unless_it_is_a_neighbour_elsewhere() {
    let alice = identity(1, "alice");
    let (_, session) = created(&alice, "g");
    let mut w = World::new();
    w.add(1, 0);
    w.add(4, 0);
    let group = w.online(1, session);
    // Node 4 subscribes to the topic without having the group.
    let now = w.now(1);
    let mut rng = StdRng::seed_from_u64(1);
    w.node(1).groups.subscribed(&group, &4, now, &mut rng);
    w.pump();
    assert!(
        w.said(1).iter().any(
            |s| matches!(s, Said::Failed(g, 4, r) if *g == group && r == "PEER_E_NOT_AUTHORIZED")
        ),
        "{:?}",
        w.said(1)
    );
    assert!(w.said(1).contains(&Said::Disconnect(4)));
}

#[test]
fn a_step_of_the_wall_clock_during_a_connect_does_not_end_it() {
    // Bob joins and connects; nobody serves his first synchronization, so
    // his connect fails after its timeout (30 s here). His system's time is
    // set 10 minutes ahead a second into it: the connect still has 29 s
    // left, and fails only then. (Before, the session's deadline was peer
    // time, and the step ended the connect at once.)
    let (alice, bob) = (identity(1, "alice"), identity(2, "bob"));
    let (props, _) = created(&alice, "g");
    let mut w = World::new();
    w.add(2, 0);
    let config = SessionConfig {
        connect_timeout: Duration::from_secs(30),
        ..SessionConfig::default()
    };
    let chain = credential(&alice, &props, &bob, T0.saturating_add_secs(YEAR));
    let session = Sess::join(props.clone(), bob.clone(), chain, config).unwrap();
    let group = w.online(2, session);
    let online = |w: &World| w.nodes[&2].groups.get(&group).unwrap().is_online();
    w.advance(1_000);
    assert!(online(&w), "offline before the step");
    w.node(2).skew_ms += 600_000;
    w.advance(1_000);
    assert!(
        online(&w),
        "the wall step ended the connect: {:?}",
        w.said(2)
    );
    assert!(
        w.said(2).contains(&Said::WallStep(600_000)),
        "{:?}",
        w.said(2)
    );
    w.advance(27_000);
    assert!(online(&w));
    w.advance(1_001);
    assert!(!online(&w), "the connect outlived its timeout");
}

#[test]
fn closing_a_group_while_a_peer_authenticates_for_it_cuts_nobody_off_later() {
    // Alice closes her group while Bob's exchange for it is under way (he
    // never answers). Her host drains the session's outputs itself, as the
    // node does after a local call (`Groups::poll_session_output`): the
    // exchange ends with the group, and Bob is not cut off 10 s later for
    // a group that is closed.
    let (mut w, group) = alice_and_bob(T0.saturating_add_secs(YEAR), true);
    assert!(w.nodes[&1].groups.is_pending(&group, &2));
    w.node(1).groups.get_mut(&group).unwrap().close().unwrap();
    while let Some(output) = w.node(1).groups.poll_session_output(&group) {
        w.execute(
            1,
            Output::Session {
                group: group.clone(),
                output,
            },
        );
    }
    w.pump();
    assert!(!w.nodes[&1].groups.is_pending(&group, &2));
    w.advance(AUTH_GRACE.as_millis() as u64 + 1);
    assert!(
        !w.said(1)
            .iter()
            .any(|s| matches!(s, Said::Failed(..) | Said::Disconnect(_))),
        "{:?}",
        w.said(1)
    );
}

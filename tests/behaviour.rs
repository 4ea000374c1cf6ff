//! Behaviour tests ("tier 2", architecture.md): peergroup's `Behaviour` in
//! plain swarms on libp2p's memory transport, with a manual clock, testing
//! the glue between the behaviour and its sans-I/O machines: group
//! authentication (`peergroup_protocol::groups`, `node/src/auth`) and
//! password admission (`peergroup_protocol::admission`, `node/src/password`).
//!
//! Nothing here sleeps: a test moves a node's `ManualClock` and polls the
//! swarms until the event it expects arrives. Each test has one overall
//! timeout, a guard against hangs only.
//!
//! The swarms are built here (memory transport, Noise, yamux) rather than
//! with `libp2p-swarm-test`: no new dependency, and its helpers drop the
//! events they do not wait for, which these tests watch.
//!
//! (Over 600 lines, on purpose: one scenario per glue rule, and the small
//! in-memory network they share.)

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use futures::StreamExt as _;
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, Transport as _,
    core::{transport::MemoryTransport, upgrade::Version},
    gossipsub,
    identity::Keypair,
    noise,
    request_response::{self, Message, ProtocolSupport, ResponseChannel},
    swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle},
    yamux,
};
use peergroup::{
    node::{
        Behaviour, Clock as _, Config, Event, GOSSIP_PROTOCOL_PREFIX, GroupEvent,
        MAX_TRANSMIT_SIZE, ManualClock, OperationError, auth, topic_of,
    },
    protocol::{
        AuthProof, AuthRole, CredentialChain, Error, GroupSpec, IDENTITY_TEXT_PREFIX, Identity,
        KdfParams, PeerName, Role, Transcript, testing::identity,
    },
};

use crate::support::{note, now};

/// The hang guard of every test here.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// A peergroup node: the behaviour alone in its swarm.
type Node = Swarm<Behaviour>;

/// Swarms on the in-process memory transport, authenticated with Noise and
/// multiplexed with yamux, as a real host's would be.
fn swarm<B: NetworkBehaviour>(key: Keypair, behaviour: B) -> Swarm<B> {
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            MemoryTransport::default()
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key).unwrap())
                .multiplex(yamux::Config::default())
        })
        .unwrap()
        .with_behaviour(|_| behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Listens on `/memory/0`; returns the address others dial (with the peer id).
async fn listen<B: NetworkBehaviour>(swarm: &mut Swarm<B>) -> Multiaddr {
    swarm.listen_on("/memory/0".parse().unwrap()).unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return address.with_p2p(*swarm.local_peer_id()).unwrap();
        }
    }
}

/// A node on `clock`: no discovery of its own (the tests dial), fast gossip
/// heartbeat, the cheapest password KDF.
async fn node(clock: &ManualClock) -> (Node, Multiaddr) {
    node_with(Some(clock)).await
}

/// A node on `clock`, or on the system clock.
async fn node_with(clock: Option<&ManualClock>) -> (Node, Multiaddr) {
    // RUST_LOG=peergroup_node=debug shows a failing test's logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut config = Config::builder()
        .mdns(false)
        .kademlia(false)
        .identify(false)
        .heartbeat(Duration::from_millis(100))
        .password_kdf(KdfParams::MIN);
    if let Some(clock) = clock {
        config = config.clock(Arc::new(clock.clone()));
    }
    let key = Keypair::generate_ed25519();
    let behaviour = Behaviour::new(&key, config.build_behaviour().unwrap()).unwrap();
    let mut node = swarm(key, behaviour);
    let addr = listen(&mut node).await;
    (node, addr)
}

/// A clock standing at the real time (records' expiries are real times).
fn clock() -> ManualClock {
    ManualClock::new(now())
}

/// A new identity on `node`: its peer name and its public text.
fn new_identity(node: &mut Node, name: &str) -> (PeerName, String) {
    let info = node.behaviour_mut().create_identity(name, "").unwrap();
    (
        info.payload().peer_name.clone(),
        info.to_text(IDENTITY_TEXT_PREFIX),
    )
}

/// A creator's node on `clock` with a new group (named by `classifier`),
/// online.
async fn creator_with_group(clock: &ManualClock, classifier: &str) -> (Node, Multiaddr, PeerName) {
    let (mut creator, addr) = node(clock).await;
    let (me, _) = new_identity(&mut creator, "creator");
    let pg = creator.behaviour_mut();
    let group = pg.create_group(&GroupSpec::new(&me, classifier)).unwrap();
    pg.connect(&group).unwrap();
    (creator, addr, group)
}

// ----- a peer that speaks the wire protocols by hand ----------------------------

/// Gossipsub and, optionally, the authentication protocol, without any of
/// peergroup's logic.
#[derive(NetworkBehaviour)]
struct Wire {
    gossipsub: gossipsub::Behaviour,
    auth: Toggle<request_response::cbor::Behaviour<auth::Request, auth::Response>>,
}

/// How a hand-driven peer takes part in group authentication.
enum Part {
    /// It does not speak `/peergroup/auth/1` at all.
    Mute,
    /// It speaks it but never answers: it keeps every request open.
    Silent,
    /// It answers (never starts) exchanges as this identity, presenting the
    /// creator's (empty) credential chain: what the creator of another group
    /// with the same classifier holds, never invited to this one.
    Outsider(Box<Identity>),
}

/// A hand-driven peer subscribed to a group's topic.
struct Raw {
    swarm: Swarm<Wire>,
    group: PeerName,
    part: Part,
    /// Requests it keeps open (`Part::Silent`).
    held: Vec<ResponseChannel<auth::Response>>,
    /// Exchanges it answered: the initiator's nonce and its own, by peer.
    answered: HashMap<PeerId, ([u8; 32], [u8; 32])>,
    /// Exchanges it was asked to accept (`Prove` requests).
    proofs_received: usize,
}

/// What a hand-driven peer saw that a test may wait for.
#[derive(Debug)]
enum RawSeen {
    /// `peer` started an authentication exchange with it.
    Hello(PeerId),
    Other,
}

impl Raw {
    /// A peer taking `part` in authentication for `group`, subscribed to the
    /// group's topic and dialing `addr`.
    fn new(group: &PeerName, part: Part, addr: Multiaddr) -> Raw {
        // Gossipsub as peergroup configures it (node/src/gossip): its
        // protocol prefix, anonymous messages with content ids.
        let config = gossipsub::ConfigBuilder::default()
            .protocol_id_prefix(GOSSIP_PROTOCOL_PREFIX)
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(|m| {
                use sha2::Digest;
                gossipsub::MessageId::from(sha2::Sha256::digest(&m.data)[..20].to_vec())
            })
            .max_transmit_size(MAX_TRANSMIT_SIZE)
            .heartbeat_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        let mut gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).unwrap();
        gossipsub.subscribe(&topic_of(group)).unwrap();
        let auth = (!matches!(part, Part::Mute)).then(|| {
            request_response::cbor::Behaviour::new(
                [(auth::PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        });
        let mut swarm = swarm(
            Keypair::generate_ed25519(),
            Wire {
                gossipsub,
                auth: auth.into(),
            },
        );
        swarm.dial(addr).unwrap();
        Raw {
            swarm,
            group: group.clone(),
            part,
            held: Vec::new(),
            answered: HashMap::new(),
            proofs_received: 0,
        }
    }

    fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Plays its part; says what a test may want to know.
    fn on_event(&mut self, event: SwarmEvent<WireEvent>) -> RawSeen {
        match event {
            SwarmEvent::Behaviour(WireEvent::Auth(request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            })) => self.on_request(peer, request, channel),
            _ => RawSeen::Other,
        }
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: auth::Request,
        channel: ResponseChannel<auth::Response>,
    ) -> RawSeen {
        let seen = match request {
            auth::Request::Hello { .. } => RawSeen::Hello(peer),
            auth::Request::Prove { .. } => RawSeen::Other,
        };
        let response = match (&self.part, request) {
            (Part::Mute, _) => unreachable!("a mute peer is never asked"),
            (Part::Silent, _) => {
                self.held.push(channel);
                return seen;
            }
            (Part::Outsider(_), auth::Request::Hello { nonce, .. }) => {
                let ours = fresh(&self.peer_id(), u64::try_from(self.answered.len()).unwrap());
                self.answered.insert(peer, (nonce, ours));
                auth::Response::Nonce {
                    nonce: ours,
                    time: now(),
                    anchored: false,
                }
            }
            (Part::Outsider(identity), auth::Request::Prove { .. }) => {
                self.proofs_received += 1;
                let (theirs, ours) = self.answered[&peer];
                let (initiator, responder) = (peer.to_bytes(), self.peer_id().to_bytes());
                let transcript = Transcript {
                    group: &self.group,
                    initiator: &initiator,
                    responder: &responder,
                    initiator_nonce: theirs,
                    responder_nonce: ours,
                };
                let proof = AuthProof::new(
                    identity,
                    &CredentialChain::creator(),
                    AuthRole::Responder,
                    &transcript,
                )
                .unwrap();
                auth::Response::Accepted {
                    proof,
                    key: None,
                    chain: None,
                    password: None,
                }
            }
        };
        if let Some(auth) = self.swarm.behaviour_mut().auth.as_mut() {
            let _ = auth.send_response(channel, response);
        }
        seen
    }
}

/// A nonce (tests need freshness, not secrecy).
fn fresh(peer: &PeerId, n: u64) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest([peer.to_bytes(), n.to_be_bytes().to_vec()].concat()).into()
}

// ----- driving the swarms ---------------------------------------------------------

/// Every swarm of a test, polled together.
struct Net {
    nodes: Vec<Node>,
    raws: Vec<Raw>,
    /// Which swarm is polled first next time (none starves another).
    turn: usize,
}

/// One event of one swarm.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one at a time, moved once
enum Seen {
    Node(usize, SwarmEvent<Event>),
    Raw(usize, RawSeen),
}

impl Net {
    fn new(nodes: Vec<Node>) -> Net {
        Net {
            nodes,
            raws: Vec::new(),
            turn: 0,
        }
    }

    /// The next event of any swarm (a hand-driven peer has played its part
    /// in it already).
    async fn next(&mut self) -> Seen {
        enum Any {
            Node(usize, SwarmEvent<Event>),
            Raw(usize, SwarmEvent<WireEvent>),
        }
        let mut polls: Vec<Pin<Box<dyn Future<Output = Any> + '_>>> = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            polls.push(Box::pin(async move {
                Any::Node(i, node.select_next_some().await)
            }));
        }
        for (i, raw) in self.raws.iter_mut().enumerate() {
            polls.push(Box::pin(async move {
                Any::Raw(i, raw.swarm.select_next_some().await)
            }));
        }
        let first = self.turn % polls.len();
        polls.rotate_left(first);
        self.turn = self.turn.wrapping_add(1);
        let (any, _, rest) = futures::future::select_all(polls).await;
        drop(rest);
        match any {
            Any::Node(i, event) => Seen::Node(i, event),
            Any::Raw(i, event) => Seen::Raw(i, self.raws[i].on_event(event)),
        }
    }

    /// Polls every swarm until `check` returns something for an event.
    async fn until<T>(&mut self, mut check: impl FnMut(&mut Net, Seen) -> Option<T>) -> T {
        loop {
            let seen = self.next().await;
            if let Some(found) = check(self, seen) {
                return found;
            }
        }
    }

    /// Polls every swarm until `holds` does (checked first, then after
    /// every event).
    async fn settle(&mut self, mut holds: impl FnMut(&Net) -> bool) {
        while !holds(self) {
            self.next().await;
        }
    }

    /// Polls every swarm until operation `op` of node `n` completes;
    /// returns its outcome.
    async fn completed(
        &mut self,
        n: usize,
        op: peergroup::node::OperationId,
    ) -> Result<(), OperationError> {
        self.until(|_, seen| match seen {
            Seen::Node(
                i,
                SwarmEvent::Behaviour(Event::OperationCompleted { operation, result }),
            ) if i == n && operation == op => Some(result),
            _ => None,
        })
        .await
    }

    fn connections(&self, n: usize, group: &PeerName) -> Vec<PeerId> {
        self.nodes[n].behaviour().connections(group).unwrap()
    }
}

/// Runs a test body under the hang guard.
async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(HANG_GUARD, body)
        .await
        .expect("hang guard: the expected event never came");
}

// ----- 1. members -----------------------------------------------------------------

/// An invited member connects to the creator by its memory address: the
/// connect completes, each side lists the other among the group's
/// connections, and a record written on either side is read on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_member_connects_and_records_flow_both_ways() {
    guarded(async {
        let (creator_clock, member_clock) = (clock(), clock());
        let (mut creator, creator_addr, group) =
            creator_with_group(&creator_clock, "tier two").await;
        let (mut member, _) = node(&member_clock).await;
        let (me, text) = new_identity(&mut member, "member");
        let invitation = creator
            .behaviour_mut()
            .create_invitation(&group, &text, Role::Member, None)
            .unwrap();
        let pg = member.behaviour_mut();
        pg.join(&me, &invitation).unwrap();
        assert!(!pg.status(&group).unwrap().ready, "ready before any copy");
        let connecting = pg.connect_by_address(&group, vec![creator_addr]).unwrap();
        let (creator_peer, member_peer) = (*creator.local_peer_id(), *member.local_peer_id());
        let mut net = Net::new(vec![creator, member]);
        const CREATOR: usize = 0;
        const MEMBER: usize = 1;

        net.completed(MEMBER, connecting)
            .await
            .expect("the member's connect failed");
        assert!(net.nodes[MEMBER].behaviour().status(&group).unwrap().ready);
        net.settle(|net| {
            net.connections(CREATOR, &group) == [member_peer]
                && net.connections(MEMBER, &group) == [creator_peer]
        })
        .await;

        for (from, to, text) in [
            (CREATOR, MEMBER, "creator's"),
            (MEMBER, CREATOR, "member's"),
        ] {
            let id = net.nodes[from]
                .behaviour_mut()
                .add_record(&group, note(text))
                .unwrap();
            net.until(|_, seen| match seen {
                Seen::Node(
                    i,
                    SwarmEvent::Behaviour(Event::Group(GroupEvent::RecordChanged {
                        id: got, ..
                    })),
                ) if i == to && got == id => Some(()),
                _ => None,
            })
            .await;
            let record = net.nodes[to].behaviour().get_record(&group, &id).unwrap();
            assert_eq!(record.data, text.as_bytes());
        }
        for n in [CREATOR, MEMBER] {
            assert_eq!(net.nodes[n].behaviour().stats().authentication_failures, 0);
        }
    })
    .await;
}

// ----- 2. an outsider ----------------------------------------------------------------

/// An outsider with an identity of its own, never invited (it presents the
/// credential of the creator of its own group with the same classifier),
/// answers the member's authentication: the member raises
/// `AuthenticationFailed` for it and closes the connection, and never lists
/// it among the group's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_is_refused_and_disconnected() {
    guarded(async {
        let member_clock = clock();
        let (member, addr, group) = creator_with_group(&member_clock, "tier two").await;
        let mut net = Net::new(vec![member]);
        let eve = identity(70, "eve");
        assert_ne!(
            peergroup::protocol::testing::group_of(&eve, "tier two"),
            group,
            "eve's own group is another group"
        );
        net.raws
            .push(Raw::new(&group, Part::Outsider(Box::new(eve)), addr));
        let outsider = net.raws[0].peer_id();

        let (mut refused, mut closed) = (None, false);
        net.until(|net, seen| {
            assert!(
                !net.connections(0, &group).contains(&outsider),
                "the outsider became a neighbour"
            );
            match seen {
                Seen::Node(
                    0,
                    SwarmEvent::Behaviour(Event::AuthenticationFailed {
                        group: failed,
                        peer,
                        reason,
                    }),
                ) if peer == outsider => {
                    assert_eq!(failed, group);
                    refused = Some(reason);
                }
                Seen::Node(
                    0,
                    SwarmEvent::ConnectionClosed {
                        peer_id,
                        num_established: 0,
                        ..
                    },
                ) if peer_id == outsider => {
                    assert!(refused.is_some(), "closed before it was refused");
                    closed = true;
                }
                _ => {}
            }
            closed.then_some(())
        })
        .await;
        let reason = refused.unwrap().to_string();
        assert!(reason.contains("not the proving identity's"), "{reason}");
        assert_eq!(net.raws[0].proofs_received, 1, "its proof was asked for");
        assert!(!net.nodes[0].is_connected(&outsider));
        assert_eq!(net.nodes[0].behaviour().stats().authentication_failures, 1);
    })
    .await;
}

// ----- 3. subscribers that never authenticate -------------------------------------

/// Waits for node 0 to cut `peer` off: `AuthenticationFailed` (returned),
/// then the connection closed. Panics if any peer in `spared` is cut off
/// meanwhile.
async fn cut_off(net: &mut Net, group: &PeerName, peer: PeerId, spared: &[PeerId]) -> Error {
    let mut refused = None;
    net.until(|net, seen| {
        assert!(
            !net.connections(0, group).contains(&peer),
            "{peer} became a neighbour"
        );
        match seen {
            Seen::Node(
                0,
                SwarmEvent::Behaviour(Event::AuthenticationFailed {
                    peer: p, reason, ..
                }),
            ) if spared.contains(&p) => {
                panic!("{p} was cut off before its grace ran out: {reason}")
            }
            Seen::Node(0, event @ SwarmEvent::ConnectionClosed { peer_id: p, .. })
                if spared.contains(&p) =>
            {
                panic!("{p} was disconnected before its grace ran out: {event:?}")
            }
            Seen::Node(
                0,
                SwarmEvent::Behaviour(Event::AuthenticationFailed {
                    peer: p, reason, ..
                }),
            ) if p == peer => {
                refused = Some(reason);
                None
            }
            Seen::Node(
                0,
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                },
            ) if peer_id == peer => {
                assert!(refused.is_some(), "closed before it was refused");
                refused.take()
            }
            _ => None,
        }
    })
    .await
}

/// Waits until node 0 starts an exchange with raw peer `r`: it saw the
/// subscription (and took the time it came at).
async fn asked(net: &mut Net, r: usize) {
    net.until(|net, seen| match seen {
        Seen::Node(0, SwarmEvent::Behaviour(Event::AuthenticationFailed { peer, .. })) => {
            panic!("{peer} was cut off at once")
        }
        Seen::Raw(i, RawSeen::Hello(from)) if i == r => {
            assert_eq!(from, *net.nodes[0].local_peer_id());
            Some(())
        }
        _ => None,
    })
    .await;
}

/// Subscribers that speak the authentication protocol but never answer:
/// each is cut off once `AUTH_GRACE` (10 s) has passed since it subscribed,
/// by the member's monotonic clock. A step of the wall clock (10 minutes)
/// does not end a grace, and neither does 9.9 s of it.
///
/// Two subscribers, 100 ms apart: when the first one's grace runs out, the
/// second has had 9.9 s (and the wall step), and must still be there. (A
/// subscriber that does not speak the protocol at all is not given the
/// grace: see the next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_authenticates_is_cut_off_after_the_grace() {
    guarded(async {
        assert_eq!(auth::AUTH_GRACE, Duration::from_secs(10));
        let member_clock = clock();
        let (member, addr, group) = creator_with_group(&member_clock, "tier two").await;
        let mut net = Net::new(vec![member]);
        net.raws.push(Raw::new(&group, Part::Silent, addr.clone()));
        let first = net.raws[0].peer_id();
        asked(&mut net, 0).await;
        member_clock.advance(100);
        net.raws.push(Raw::new(&group, Part::Silent, addr));
        let second = net.raws[1].peer_id();
        asked(&mut net, 1).await;

        // The member's wall clock steps ten minutes ahead, then 9.9 s pass:
        // the first subscriber's grace ran out, not the second's. (The
        // member's own request times out after 10 s of real time, with
        // another reason: this test takes far less.)
        member_clock.set(member_clock.now().saturating_add_secs(600));
        member_clock.advance(9_900);
        let reason = cut_off(&mut net, &group, first, &[second]).await;
        let Error::NotAuthorized(why) = &reason else {
            panic!("cut off for another reason: {reason}")
        };
        assert!(why.contains("without authenticating within"), "{reason}");
        // Everything the member queued with that cut-off has come out: the
        // second subscriber was not in it.
        let barrier = net.nodes[0].behaviour_mut().barrier();
        net.until(|_, seen| match seen {
            Seen::Node(0, SwarmEvent::Behaviour(Event::AuthenticationFailed { peer, .. }))
                if peer == second =>
            {
                panic!("cut off after 9.9 s")
            }
            Seen::Node(0, SwarmEvent::Behaviour(Event::OperationCompleted { operation, .. }))
                if operation == barrier =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
        assert!(net.nodes[0].is_connected(&second));

        member_clock.advance(100);
        let reason = cut_off(&mut net, &group, second, &[]).await;
        assert!(matches!(reason, Error::NotAuthorized(_)), "{reason}");
        assert!(net.raws.iter().all(|r| r.proofs_received == 0));
        assert_eq!(net.nodes[0].behaviour().stats().authentication_failures, 2);
    })
    .await;
}

/// A subscriber that does not speak the authentication protocol at all
/// cannot authenticate: it is cut off at once (the exchange fails), without
/// waiting for the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_without_the_authentication_protocol_is_cut_off_at_once() {
    guarded(async {
        let member_clock = clock();
        let (member, addr, group) = creator_with_group(&member_clock, "tier two").await;
        let mut net = Net::new(vec![member]);
        net.raws.push(Raw::new(&group, Part::Mute, addr));
        let mute = net.raws[0].peer_id();
        // The clock never moves.
        let reason = cut_off(&mut net, &group, mute, &[]).await;
        assert!(matches!(reason, Error::ConnectionFailed(_)), "{reason}");
    })
    .await;
}

// ----- 4. password admission --------------------------------------------------------

const PASSWORD: &str = "correct horse battery";

/// Password admission: a wrong password fails the join with `NotAuthorized`;
/// trying again at once is refused as too many attempts; a step of the
/// creator's wall clock (10 minutes) does not end the wait, 5 s of its
/// monotonic clock do, and the right password then gets in.
///
/// The joiner runs on the system clock: a join that a member refused ends
/// 2 s (`MISMATCH_GRACE`) after the answer, which no event reports, so a
/// test could not know when to move a joiner's manual clock. The failed
/// joins thus take 2 s each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_admission_refuses_slows_down_and_admits() {
    guarded(async {
        let creator_clock = clock();
        let (mut creator, creator_addr) = node(&creator_clock).await;
        let (me, _) = new_identity(&mut creator, "creator");
        let pg = creator.behaviour_mut();
        let group = pg
            .create_password_group(&GroupSpec::new(&me, "pw"), PASSWORD, Role::Member)
            .unwrap();
        pg.connect(&group).unwrap();
        let invitation = pg.create_password_invitation(&group).unwrap();
        let (mut joiner, _) = node_with(None).await;
        let (joiner_identity, _) = new_identity(&mut joiner, "joiner");
        let creator_peer = *creator.local_peer_id();
        let mut net = Net::new(vec![creator, joiner]);
        const CREATOR: usize = 0;
        const JOINER: usize = 1;

        let join = |net: &mut Net, password: &str| {
            net.nodes[JOINER]
                .behaviour_mut()
                .password_join(
                    &joiner_identity,
                    &invitation,
                    password,
                    vec![creator_addr.clone()],
                )
                .unwrap()
        };
        let refused = |result: Result<(), OperationError>| match result {
            Err(OperationError::Peer(e @ Error::NotAuthorized(_))) => e.to_string(),
            other => panic!("expected NotAuthorized, got {other:?}"),
        };

        // A wrong password: refused; the joiner hears from the creator that
        // it did not check out, and stores nothing.
        let wrong = join(&mut net, "not the password");
        let mut told = false;
        let result = net
            .until(|_, seen| match seen {
                Seen::Node(
                    JOINER,
                    SwarmEvent::Behaviour(Event::AuthenticationFailed { peer, .. }),
                ) => {
                    assert_eq!(peer, creator_peer);
                    told = true;
                    None
                }
                Seen::Node(
                    JOINER,
                    SwarmEvent::Behaviour(Event::OperationCompleted { operation, result }),
                ) if operation == wrong => Some(result),
                _ => None,
            })
            .await;
        let error = refused(result);
        assert!(error.contains("wrong group password"), "{error}");
        assert!(told, "no AuthenticationFailed on the joiner");
        assert!(net.nodes[JOINER].behaviour().groups().is_empty());

        // Again at once, with the right password: not even checked.
        let again = join(&mut net, PASSWORD);
        let error = refused(net.completed(JOINER, again).await);
        assert!(error.contains("too many password attempts"), "{error}");
        assert!(net.nodes[JOINER].behaviour().groups().is_empty());

        // The creator's wall clock steps ten minutes ahead: still waiting.
        creator_clock.set(creator_clock.now().saturating_add_secs(600));
        let stepped = join(&mut net, PASSWORD);
        let error = refused(net.completed(JOINER, stepped).await);
        assert!(
            error.contains("too many password attempts"),
            "the step ended the wait: {error}"
        );

        // 5 s pass on the creator's clock: the wait is over.
        creator_clock.advance(5_000);
        let right = join(&mut net, PASSWORD);
        net.completed(JOINER, right)
            .await
            .expect("the right password after the wait");
        let joiner_pg = net.nodes[JOINER].behaviour();
        assert!(joiner_pg.status(&group).unwrap().ready);
        let me = joiner_pg
            .members(&group)
            .unwrap()
            .into_iter()
            .find(|m| m.subject == joiner_identity)
            .expect("the joiner is a member");
        assert_eq!(me.role, Role::Member);
        let joiner_peer = *net.nodes[JOINER].local_peer_id();
        net.settle(|net| {
            net.connections(CREATOR, &group) == [joiner_peer]
                && net.connections(JOINER, &group) == [creator_peer]
        })
        .await;
    })
    .await;
}

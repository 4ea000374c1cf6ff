//! The behaviour embedded in an application's own swarm (no `Node`):
//! applications that bring their own discovery, and the gossip verdict the
//! behaviour reports after gossipsub has forgotten the message.

use std::{collections::VecDeque, task::Poll, time::Duration};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder,
    core::{Endpoint, transport::PortUse},
    noise,
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, SwarmEvent, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
    },
    tcp, yamux,
};
use peergroup::{
    node::{Behaviour, Config, Event, GroupEvent},
    protocol::{
        Error, GroupSpec, IDENTITY_TEXT_PREFIX, InvitationInfo, NewRecord, Record, RecordType,
        Role, SignedRecord, Timestamp, membership_record, testing::identity,
    },
};

/// An application's own discovery: it tells the swarm the addresses it
/// learns (`ToSwarm::NewExternalAddrOfPeer`), as mDNS or a rendezvous would.
#[derive(Default)]
struct Hints(VecDeque<(PeerId, Multiaddr)>);

impl NetworkBehaviour for Hints {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = ();

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.0.pop_front() {
            Some((peer_id, address)) => {
                Poll::Ready(ToSwarm::NewExternalAddrOfPeer { peer_id, address })
            }
            None => Poll::Pending,
        }
    }
}

#[derive(NetworkBehaviour)]
struct App {
    peergroup: Behaviour,
    hints: Hints,
}

/// An application node: no Kademlia, no mDNS, no identify.
fn app() -> Swarm<App> {
    // RUST_LOG=peergroup_node=debug shows a failing test's logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = Config::builder()
        .mdns(false)
        .kademlia(false)
        .identify(false)
        .heartbeat(Duration::from_millis(100))
        .build_behaviour()
        .unwrap();
    let key = libp2p::identity::Keypair::generate_ed25519();
    let app = App {
        peergroup: Behaviour::new(&key, config).unwrap(),
        hints: Hints::default(),
    };
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| app)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    swarm
}

/// An application whose identity "alice" created the group `classifier`.
fn alice_with_group(classifier: &str) -> (Swarm<App>, peergroup::protocol::PeerName) {
    let mut alice = app();
    let pg = &mut alice.behaviour_mut().peergroup;
    let me = pg
        .create_identity("alice", "")
        .unwrap()
        .payload()
        .peer_name
        .clone();
    let group = pg.create_group(&GroupSpec::new(&me, classifier)).unwrap();
    (alice, group)
}

async fn listen_addr<B: NetworkBehaviour>(swarm: &mut Swarm<B>) -> Multiaddr {
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return address;
        }
    }
}

/// An application that switched our discovery off and brings its own: the
/// addresses it learns reach the behaviour, which dials them while a group
/// looks for members. Bob's connect names no address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_with_its_own_discovery_connects() {
    let mut alice = app();
    let mut bob = app();
    let alice_addr = listen_addr(&mut alice).await;
    let alice_peer = *alice.local_peer_id();

    let pg = &mut alice.behaviour_mut().peergroup;
    let me = pg
        .create_identity("alice", "")
        .unwrap()
        .payload()
        .peer_name
        .clone();
    let group = pg
        .create_group(&GroupSpec::new(&me, "own-discovery"))
        .unwrap();
    pg.connect(&group).unwrap();
    let bob_info = bob
        .behaviour_mut()
        .peergroup
        .create_identity("bob", "")
        .unwrap();
    let invitation = alice
        .behaviour_mut()
        .peergroup
        .create_invitation(
            &group,
            &bob_info.to_text(IDENTITY_TEXT_PREFIX),
            Role::Member,
            None,
        )
        .unwrap();
    let pg = &mut bob.behaviour_mut().peergroup;
    pg.join(&bob_info.payload().peer_name, &invitation).unwrap();
    let connecting = pg.connect(&group).unwrap();
    // The application's discovery learns where Alice is.
    bob.behaviour_mut()
        .hints
        .0
        .push_back((alice_peer, alice_addr));

    let deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = alice.select_next_some() => {}
            event = bob.select_next_some() => {
                if let SwarmEvent::Behaviour(AppEvent::Peergroup(Event::OperationCompleted { operation, result })) = event
                    && operation == connecting
                {
                    result.unwrap();
                    break;
                }
            }
            () = &mut deadline => panic!("bob never connected through the application's discovery"),
        }
    }
    assert!(bob.behaviour().peergroup.status(&group).unwrap().ready);
}

/// Regression (issue 8, bug 6): a held record's verdict, reported after
/// gossipsub dropped the message from its cache, is counted (gossipsub's
/// `false` was ignored before), and the record is still stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_verdict_is_counted() {
    let mut alice = app();
    let alice_addr = listen_addr(&mut alice).await;
    let pg = &mut alice.behaviour_mut().peergroup;
    let me = pg
        .create_identity("alice", "")
        .unwrap()
        .payload()
        .peer_name
        .clone();
    let group = pg.create_group(&GroupSpec::new(&me, "late")).unwrap();
    pg.connect(&group).unwrap();
    // Mallory is a member whose membership Alice has not seen yet.
    let mallory = identity(50, "mallory");
    let invitation = alice
        .behaviour_mut()
        .peergroup
        .create_invitation(&group, &mallory.public_text().unwrap(), Role::Member, None)
        .unwrap();
    let info = InvitationInfo::parse(&invitation).unwrap();
    let now = alice.behaviour().peergroup.now();
    let chain = info.accept(&mallory, now).unwrap();
    let membership =
        membership_record(info.properties.properties(), &chain, &mallory, None, now).unwrap();
    let note = NewRecord::new(
        RecordType::from_u128(0x42 << 64),
        now.saturating_add_secs(600),
    );
    let record = Record::new(note, [3; 8], &group, mallory.peer_name(), now).unwrap();
    let record = SignedRecord::sign(record, mallory.keypair()).unwrap();

    // Mallory speaks the wire protocols by hand: it authenticates, then
    // publishes its record before its membership.
    let alice_peer = *alice.local_peer_id();
    let mut raw = crate::raw::RawPeer::member(&group, &mallory, chain).await;
    raw.join_topic(alice_addr);
    // Once Mallory holds the group key, publish the record: it is held
    // (Mallory's membership is unknown).
    let mut phase = 0;
    let mut published_at = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::select! {
            event = alice.select_next_some() => {
                if let SwarmEvent::Behaviour(AppEvent::Peergroup(Event::Group(GroupEvent::RecordChanged { id, .. }))) = event
                    && id == record.record().id
                {
                    break;
                }
            }
            event = raw.swarm.select_next_some() => {
                raw.on_event(event);
                if phase == 0 && raw.key.is_some() && raw.seen.accepted_by.contains(&alice_peer) {
                    // Give the mesh a moment to form.
                    published_at = tokio::time::Instant::now();
                    phase = 1;
                }
            }
            () = tokio::time::sleep_until(published_at + Duration::from_millis(500)), if phase == 1 => {
                assert!(raw.publish_sealed(record.as_bytes()));
                published_at = tokio::time::Instant::now();
                phase = 2;
            }
            () = tokio::time::sleep_until(published_at + Duration::from_millis(8000)), if phase == 2 => {
                // Gossipsub's cache (5 heartbeats of 100 ms, after its first
                // heartbeat at 5 s) has let the record's message go: now the
                // membership arrives. (1.5 s of margin over the 6.5 s this
                // needs on a quiet machine: heartbeats run late under load.)
                assert!(raw.publish_sealed(membership.as_bytes()));
                phase = 3;
            }
            () = tokio::time::sleep_until(deadline) => panic!("the held record was never stored (phase {phase})"),
        }
    }
    let stats = alice.behaviour().peergroup.stats();
    assert_eq!(stats.late_verdicts, 1, "{stats:?}");
    assert!(
        alice
            .behaviour()
            .peergroup
            .get_record(&group, &record.record().id)
            .is_ok()
    );
}

/// Issue 10: a member that lost its connection to the others (here the
/// connection is closed under it, as a network drop would) finds and
/// redials them: neither side waits for a discovery that will not come
/// again (mDNS reports a peer once while it is cached; this application
/// has no discovery at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_redialed() {
    let mut alice = app();
    let mut bob = app();
    let alice_addr = listen_addr(&mut alice).await;
    let alice_peer = *alice.local_peer_id();
    let pg = &mut alice.behaviour_mut().peergroup;
    let me = pg
        .create_identity("alice", "")
        .unwrap()
        .payload()
        .peer_name
        .clone();
    let group = pg.create_group(&GroupSpec::new(&me, "redial")).unwrap();
    pg.connect(&group).unwrap();
    let bob_info = bob
        .behaviour_mut()
        .peergroup
        .create_identity("bob", "")
        .unwrap();
    let invitation = alice
        .behaviour_mut()
        .peergroup
        .create_invitation(
            &group,
            &bob_info.to_text(IDENTITY_TEXT_PREFIX),
            Role::Member,
            None,
        )
        .unwrap();
    let pg = &mut bob.behaviour_mut().peergroup;
    pg.join(&bob_info.payload().peer_name, &invitation).unwrap();
    pg.connect_by_address(&group, vec![alice_addr]).unwrap();

    let neighbours = |swarm: &Swarm<App>| {
        swarm
            .behaviour()
            .peergroup
            .connections(&group)
            .unwrap()
            .len()
    };
    // 0: until neighbours; 1: dropped, until the connection is gone on both
    // sides; 2: until neighbours again.
    let mut phase = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = alice.select_next_some() => {}
            _ = bob.select_next_some() => {}
            () = &mut deadline => panic!("bob never came back (phase {phase})"),
        }
        let ready = bob.behaviour().peergroup.status(&group).unwrap().ready;
        let linked = neighbours(&bob) == 1 && neighbours(&alice) == 1;
        match phase {
            0 if ready && linked => {
                // The connection drops.
                assert!(bob.disconnect_peer_id(alice_peer).is_ok());
                phase = 1;
            }
            1 if !bob.is_connected(&alice_peer)
                && !alice.is_connected(bob.local_peer_id())
                && neighbours(&bob) == 0 =>
            {
                phase = 2;
            }
            2 if linked => break,
            _ => {}
        }
    }
}

/// Issue 15: an invitation an embedder makes without an expiry lasts a
/// year, as the node's do, not as long as the creator's credential (about
/// a thousand years); an expiry given is kept, and one beyond the
/// inviter's credential is refused.
#[tokio::test]
async fn an_invitation_without_an_expiry_lasts_a_year() {
    let (mut alice, group) = alice_with_group("a year");
    let pg = &mut alice.behaviour_mut().peergroup;
    let bob = identity(51, "bob").public_text().unwrap();
    let until = |expires| {
        let invitation = pg
            .create_invitation(&group, &bob, Role::Member, expires)
            .unwrap();
        InvitationInfo::parse(&invitation).unwrap().not_after
    };
    let now = pg.now();
    let year = now.saturating_add(Duration::from_secs(365 * 24 * 3600));
    let default = until(None);
    assert!(
        default.as_millis().abs_diff(year.as_millis()) < 60_000,
        "valid until {default}, a year from now is {year}"
    );
    let week = now.saturating_add(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(until(Some(week)), week);
    let refused = pg.create_invitation(&group, &bob, Role::Member, Some(Timestamp::MAX));
    assert!(
        matches!(refused, Err(e) if matches!(e.peer(), Some(Error::InvalidTimePeriod(_)))),
        "beyond the inviter's credential"
    );
}

/// Issue 16: an application reads its own writes at once, before they are
/// committed (the swarm is not even polled here), through `get_record` and
/// `records` alike: an add, an update and a delete.
#[tokio::test]
async fn own_writes_are_read_back_by_get_record_and_records_alike() {
    let (mut alice, group) = alice_with_group("own writes");
    let pg = &mut alice.behaviour_mut().peergroup;
    let kind = RecordType::from_u128(0x6f776e00_0000_4000_8000_000000000001);
    let expires = pg.now().saturating_add(Duration::from_secs(3600));
    let mut new = NewRecord::new(kind, expires);
    new.data = b"first".to_vec();
    let id = pg.add_record(&group, new).unwrap();
    let listed = |pg: &Behaviour| -> Vec<Record> { pg.records(&group, Some(kind)).unwrap() };
    assert_eq!(pg.get_record(&group, &id).unwrap().data, b"first");
    assert_eq!(listed(pg).len(), 1, "records() sees the uncommitted add");
    assert_eq!(listed(pg)[0].data, b"first");

    let mut record = pg.get_record(&group, &id).unwrap();
    record.data = b"second".to_vec();
    pg.update_record(&group, &record).unwrap();
    assert_eq!(pg.get_record(&group, &id).unwrap().data, b"second");
    assert_eq!(listed(pg)[0].data, b"second", "records() sees the update");

    pg.delete_record(&group, &id).unwrap();
    assert!(pg.get_record(&group, &id).is_err());
    assert!(listed(pg).is_empty(), "records() sees the delete");
}

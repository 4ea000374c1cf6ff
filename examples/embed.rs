//! Embedding peergroup in an application's own libp2p `Swarm`.
//!
//! The application composes `peergroup_node::Behaviour` with its own
//! behaviours (here `ping`) in one `#[derive(NetworkBehaviour)]`, runs its
//! own event loop, and hands peergroup's events to a `peergroup_node::Engine`.
//! Two such applications, Alice and Bob, run in this process: Alice creates a
//! group and invites Bob, Bob joins by address, Alice publishes a record, and
//! Bob receives it.
//!
//! Run it with `cargo run --example embed`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use libp2p::{
    Multiaddr, Swarm, SwarmBuilder, noise, ping,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use peergroup::{
    node::{Behaviour, Config, Engine, Event},
    protocol::{
        GroupSpec, IDENTITY_TEXT_PREFIX, MemoryStore, NewRecord, PeerName, RecordType, Role,
        Timestamp,
    },
};

/// The application's behaviour: peergroup next to its own protocols.
#[derive(NetworkBehaviour)]
struct App {
    peergroup: Behaviour,
    ping: ping::Behaviour,
}

struct Peer {
    swarm: Swarm<App>,
    engine: Engine,
}

fn wall() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

impl Peer {
    fn new() -> Result<Peer> {
        let config = Config::builder()
            .listen(["/ip4/127.0.0.1/tcp/0".parse()?])
            .mdns(false)
            .kademlia(false)
            .heartbeat(Duration::from_millis(200))
            .build()?;
        let key = libp2p::identity::Keypair::generate_ed25519();
        let app = App {
            peergroup: Behaviour::new(&key, &config)?,
            ping: ping::Behaviour::default(),
        };
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| app)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.listen_on(config.listen()[0].clone())?;
        let engine = Engine::new(
            *swarm.local_peer_id(),
            &config,
            Box::new(MemoryStore::new()),
        );
        Ok(Peer { swarm, engine })
    }

    /// One step of the application's event loop: a swarm event, or a timer tick.
    async fn step(&mut self) -> Vec<Event> {
        tokio::select! {
            event = self.swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(AppEvent::Peergroup(event)) => {
                    self.engine.on_behaviour_event(&mut self.swarm.behaviour_mut().peergroup, event, wall());
                }
                SwarmEvent::Behaviour(AppEvent::Ping(ping::Event { peer, result: Ok(rtt), .. })) => {
                    println!("ping {peer}: {rtt:?}");
                }
                SwarmEvent::ConnectionEstablished { peer_id, .. } => self.engine.on_connection_established(peer_id),
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    self.engine.on_peer_disconnected(peer_id);
                }
                _ => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                self.engine.poll_timers(&mut self.swarm.behaviour_mut().peergroup, Instant::now());
            }
        }
        if let Err(e) = self.engine.flush() {
            eprintln!("store error: {e}");
        }
        for dial in self.engine.take_dials() {
            let _ = self.swarm.dial(dial);
        }
        self.engine.take_events()
    }

    async fn address(&mut self) -> Multiaddr {
        loop {
            if let Some(addr) = self.swarm.listeners().next() {
                let me = *self.swarm.local_peer_id();
                return addr.clone().with(libp2p::multiaddr::Protocol::P2p(me));
            }
            self.step().await;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut alice = Peer::new()?;
    let mut bob = Peer::new()?;

    // Alice: an identity, a group, online at once (she created it).
    let me = alice.engine.create_identity("alice", "Alice", [1; 32])?;
    let me: PeerName = me.payload().peer_name.clone();
    let group = alice
        .engine
        .create_group(&GroupSpec::new(&me, "embedded"), wall())?;
    alice.engine.connect(
        &mut alice.swarm.behaviour_mut().peergroup,
        &group,
        vec![],
        Instant::now(),
    )?;

    // Bob: an identity, invited out of band, joins and connects by address.
    let bob_info = bob.engine.create_identity("bob", "Bob", [2; 32])?;
    let invitation = alice.engine.create_invitation(
        &group,
        &bob_info.to_text(IDENTITY_TEXT_PREFIX),
        Role::Member,
        None,
        wall(),
    )?;
    bob.engine
        .join(&bob_info.payload().peer_name, &invitation, wall())?;
    let address = alice.address().await;
    bob.engine.connect(
        &mut bob.swarm.behaviour_mut().peergroup,
        &group,
        vec![address],
        Instant::now(),
    )?;

    // Both applications run their loops; Alice publishes once Bob's engine
    // reports the group ready (its first-connect copy is done).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut published = None;
    while Instant::now() < deadline {
        alice.step().await;
        for event in bob.step().await {
            if let Event::StatusChanged { ready: true, .. } = event
                && published.is_none()
            {
                println!("bob is ready in {group}");
                let note = NewRecord::new(
                    RecordType::from_u128(0x6e6f7465),
                    wall().saturating_add_secs(600),
                )
                .with_data(b"hello from an embedded swarm".to_vec());
                let behaviour = &mut alice.swarm.behaviour_mut().peergroup;
                published =
                    Some(
                        alice
                            .engine
                            .add_record(behaviour, &group, note, [7; 8], wall())?,
                    );
            }
        }
        if let Some(id) = published
            && let Ok(record) = bob.engine.get_record(&group, &id)
        {
            println!("bob received: {}", String::from_utf8_lossy(&record.data));
            return Ok(());
        }
    }
    if published.is_none() {
        bail!("bob never became ready");
    }
    Err(anyhow::anyhow!("bob never received the record")).context("embedding example")
}

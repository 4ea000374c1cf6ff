//! Embedding peergroup in an application's own libp2p `Swarm`.
//!
//! The application adds `peergroup_node::Behaviour` as one field of its own
//! `#[derive(NetworkBehaviour)]` struct, next to its own behaviours (here
//! `ping`), calls its methods and matches its events. There is nothing to
//! forward, tick, flush or drain, and no clock or nonce to pass.
//!
//! Two such applications, Alice and Bob, run in this process: Alice creates a
//! group and invites Bob; Bob joins and connects to Alice's address; once
//! Bob's connect completes (his first copy is done), Alice adds a record and
//! Bob receives it.
//!
//! Run it with `cargo run --example embed`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use libp2p::{
    Multiaddr, Swarm, SwarmBuilder, noise, ping,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use peergroup::{
    node::{Behaviour, Config, Event, GroupEvent, RecordChange},
    protocol::{GroupSpec, IDENTITY_TEXT_PREFIX, NewRecord, RecordType, Role},
};

/// The application's behaviour: peergroup next to its own protocols.
#[derive(NetworkBehaviour)]
struct App {
    peergroup: Behaviour,
    ping: ping::Behaviour,
}

fn swarm() -> Result<Swarm<App>> {
    // Protocol settings only: the swarm below listens, and the application
    // runs its own ping, so peergroup's is off.
    let config = Config::builder()
        .mdns(false)
        .kademlia(false)
        .ping(false)
        .heartbeat(Duration::from_millis(200))
        .build_behaviour()?;
    let key = libp2p::identity::Keypair::generate_ed25519();
    let app = App {
        peergroup: Behaviour::new(&key, config)?,
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
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    Ok(swarm)
}

/// Waits for `swarm`'s first listen address.
async fn address(swarm: &mut Swarm<App>) -> Multiaddr {
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            let me = *swarm.local_peer_id();
            return address.with(libp2p::multiaddr::Protocol::P2p(me));
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut alice = swarm()?;
    let mut bob = swarm()?;
    let alice_addr = address(&mut alice).await;

    // Alice: an identity, a group, online at once (she created it).
    let pg = &mut alice.behaviour_mut().peergroup;
    let me = pg
        .create_identity("alice", "Alice")?
        .payload()
        .peer_name
        .clone();
    let group = pg.create_group(&GroupSpec::new(&me, "embedded"))?;
    pg.connect(&group)?;

    // Bob: an identity, invited out of band; joins and connects by address.
    let bob_info = bob
        .behaviour_mut()
        .peergroup
        .create_identity("bob", "Bob")?;
    let invitation = alice.behaviour_mut().peergroup.create_invitation(
        &group,
        &bob_info.to_text(IDENTITY_TEXT_PREFIX),
        Role::Member,
        None,
    )?;
    let pg = &mut bob.behaviour_mut().peergroup;
    pg.join(&bob_info.payload().peer_name, &invitation)?;
    let connecting = pg.connect_by_address(&group, vec![alice_addr])?;

    let note = RecordType::from_u128(0x6e6f7465);
    let mut published = None;
    let deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = alice.select_next_some() => {
                if let SwarmEvent::Behaviour(AppEvent::Ping(ping::Event { peer, result: Ok(rtt), .. })) = event {
                    println!("alice pinged {peer}: {rtt:?}");
                }
            }
            event = bob.select_next_some() => match event {
                SwarmEvent::Behaviour(AppEvent::Peergroup(Event::OperationCompleted { operation, result }))
                    if operation == connecting =>
                {
                    result.context("bob's connect failed")?;
                    println!("bob is ready in {group}");
                    let pg = &mut alice.behaviour_mut().peergroup;
                    let expires = pg.now().saturating_add_secs(600);
                    let record = NewRecord::new(note, expires)
                        .with_data(b"hello from an embedded swarm".to_vec());
                    published = Some(pg.add_record(&group, record)?);
                }
                SwarmEvent::Behaviour(AppEvent::Peergroup(Event::Group(GroupEvent::RecordChanged {
                    id, change: RecordChange::Added, ..
                }))) if Some(id) == published => {
                    let record = bob.behaviour().peergroup.get_record(&group, &id)?;
                    println!("bob received: {}", String::from_utf8_lossy(&record.data));
                    return Ok(());
                }
                _ => {}
            },
            () = &mut deadline => {
                if published.is_none() {
                    bail!("bob never became ready");
                }
                bail!("bob never received the record");
            }
        }
    }
}

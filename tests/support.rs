//! Helpers for multi-node tests: nodes on loopback, a group with members.
#![allow(dead_code)] // shared by test modules; not every test uses every helper

use std::time::Duration;

use libp2p::Multiaddr;
use peergroup::node::{Config, Event, EventFilter, EventKind, Handle, Node, Subscription};
use peergroup::protocol::{Digest, GroupSpec, PeerName, Role};

/// Loopback, OS-chosen port.
pub(crate) fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

/// A test node: loopback only, no mDNS, no Kademlia unless asked, fast heartbeat.
pub(crate) fn config() -> peergroup::node::ConfigBuilder {
    Config::builder()
        .listen([loopback()])
        .mdns(false)
        .kademlia(false)
        .heartbeat(Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(20))
}

pub(crate) async fn node(config: peergroup::node::ConfigBuilder) -> (Handle, Subscription) {
    // RUST_LOG=peergroup_node=debug shows a failing test's node logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Node::spawn(config.build().unwrap()).await.unwrap()
}

/// Waits (at most `secs`) until `check` holds, polling every 50 ms.
pub(crate) async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {secs} s waiting for: {what}");
}

/// A member of a test group.
pub(crate) struct Member {
    pub(crate) handle: Handle,
    pub(crate) identity: PeerName,
    pub(crate) events: Subscription,
}

/// The creator makes a group and connects; returns the creator and the group name.
pub(crate) async fn group_with_creator(
    builder: peergroup::node::ConfigBuilder,
) -> (Member, PeerName) {
    let (handle, events) = node(builder).await;
    let identity = handle.create_identity("creator", "Creator").await.unwrap();
    let identity = identity.payload().peer_name.clone();
    let group = handle
        .create_group(GroupSpec::new(&identity, "test"))
        .await
        .unwrap();
    handle.connect(&group).await.unwrap();
    (
        Member {
            handle,
            identity,
            events,
        },
        group,
    )
}

/// Starts a node, creates an identity, gets it invited by `inviter` as `role`,
/// joins and connects through `addrs`.
pub(crate) async fn join(
    inviter: &Member,
    group: &PeerName,
    role: Role,
    builder: peergroup::node::ConfigBuilder,
    addrs: Vec<Multiaddr>,
) -> Member {
    let member = invited(inviter, group, role, builder, None).await;
    member
        .handle
        .connect_by_address(group, addrs)
        .await
        .unwrap();
    member
}

/// Starts a node with `identity` (or a new one), gets it invited by
/// `inviter` as `role` and joins, without connecting.
pub(crate) async fn invited(
    inviter: &Member,
    group: &PeerName,
    role: Role,
    builder: peergroup::node::ConfigBuilder,
    identity: Option<peergroup::protocol::Identity>,
) -> Member {
    let (handle, events) = node(builder).await;
    let info = match identity {
        Some(identity) => handle.import_identity(identity).await.unwrap(),
        None => handle.create_identity("member", "").await.unwrap(),
    };
    let identity = info.payload().peer_name.clone();
    let text = info.to_text(peergroup::protocol::IDENTITY_TEXT_PREFIX);
    let invitation = inviter
        .handle
        .create_invitation(group, &text, role, None)
        .await
        .unwrap();
    handle.join(&identity, &invitation).await.unwrap();
    Member {
        handle,
        identity,
        events,
    }
}

pub(crate) async fn digests(members: &[&Member], group: &PeerName) -> Vec<Digest> {
    let mut out = Vec::new();
    for m in members {
        out.push(m.handle.digest(group).await.unwrap());
    }
    out
}

/// Drains queued events of `kind` from a subscription.
pub(crate) fn drain(sub: &mut Subscription, kind: impl Into<EventKind>) -> Vec<Event> {
    let filter = EventFilter::kinds([kind]);
    let mut out = Vec::new();
    while let Some(Ok(e)) = sub.try_recv() {
        if filter.matches(&e) {
            out.push(e);
        }
    }
    out
}

/// Wall-clock now.
pub(crate) fn now() -> peergroup::protocol::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    peergroup::protocol::Timestamp::from_millis(ms as u64)
}

/// A note record expiring in an hour, with `data`.
pub(crate) fn note(data: &str) -> peergroup::protocol::NewRecord {
    peergroup::protocol::NewRecord::new(
        peergroup::protocol::RecordType::from_u128(0x6e6f7465_0000_4000_8000_000000000001),
        now().saturating_add_secs(3600),
    )
    .with_data(data.as_bytes().to_vec())
}

/// A plain libp2p swarm speaking gossipsub the way peergroup nodes do
/// (same protocol prefix, anonymous messages, content ids), publishing
/// whatever it likes on a group's topic.
pub(crate) fn rogue() -> libp2p::Swarm<libp2p::gossipsub::Behaviour> {
    use libp2p::gossipsub;
    let key = libp2p::identity::Keypair::generate_ed25519();
    let config = gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(peergroup::node::GOSSIP_PROTOCOL_PREFIX)
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(|m| {
            use sha2::Digest;
            gossipsub::MessageId::from(sha2::Sha256::digest(&m.data)[..20].to_vec())
        })
        .max_transmit_size(peergroup::node::MAX_TRANSMIT_SIZE)
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).unwrap();
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

//! The libp2p [`Behaviour`]: gossipsub for propagation, Kademlia (the global
//! cloud) and mDNS (the link-local cloud) for discovery, identify so that
//! Kademlia learns listen addresses, and request-response for the
//! first-connect copy. Every protocol id is private (`/peergroup/...`).
//!
//! An application can put this behaviour into its own `Swarm` next to its own
//! behaviours and drive it with an [`crate::Engine`] (see
//! `examples/embed.rs`); the [`crate::Node`] does exactly that in its event loop.

use std::time::Duration;

use libp2p::{
    StreamProtocol, gossipsub, identify,
    identity::Keypair,
    kad, mdns,
    request_response::{self, ProtocolSupport},
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::{config::Config, sync};

/// The gossipsub protocol id prefix.
pub const GOSSIP_PROTOCOL_PREFIX: &str = "/peergroup/gossip";
/// The Kademlia protocol id.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/kad/1.0.0");
/// The identify protocol id.
pub const IDENTIFY_PROTOCOL: &str = "/peergroup/id/1.0.0";

/// The largest gossip frame, the same on every node: 2 MiB, four times the
/// largest envelope ([`peergroup_protocol::MAX_ENVELOPE_SIZE`]), because
/// gossipsub 0.50 checks whole RPC frames (which batch several messages)
/// against it; a tight limit was seen to kill streams on bursts of
/// near-limit messages.
pub const MAX_TRANSMIT_SIZE: usize = 2 * 1024 * 1024;

/// Why the behaviour could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BehaviourError {
    /// Gossipsub rejected its configuration.
    #[error("gossipsub configuration: {0}")]
    Gossipsub(String),
    /// mDNS could not start (no usable network interface watcher).
    #[error("mDNS could not start: {0}")]
    Mdns(#[source] std::io::Error),
}

/// The composed libp2p behaviour of a peergroup node.
///
/// No sub-behaviour denies connections, so the field order only sets the
/// order in which events are polled: gossip first, as it carries the traffic.
#[derive(NetworkBehaviour)]
#[allow(missing_debug_implementations)] // the derive's generated types have none
pub struct Behaviour {
    /// Propagation: one topic per group.
    pub gossipsub: gossipsub::Behaviour,
    /// The first-connect copy.
    pub sync: request_response::cbor::Behaviour<sync::Request, sync::Response>,
    /// The global cloud.
    pub kademlia: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    /// The link-local cloud.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Tells Kademlia the listen addresses of peers that dialed us.
    pub identify: identify::Behaviour,
}

impl Behaviour {
    /// Builds the behaviour for the transport key `key`.
    pub fn new(key: &Keypair, config: &Config) -> Result<Behaviour, BehaviourError> {
        let peer_id = key.public().to_peer_id();
        let gossip_config = gossipsub::ConfigBuilder::default()
            .protocol_id_prefix(GOSSIP_PROTOCOL_PREFIX)
            // Records carry their own signatures; signing gossip messages too
            // would double the crypto (measured: ~22k/s signed vs ~97k/s
            // anonymous between two processes). Anonymous messages have no
            // source or sequence number, so ids must come from the content.
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(|message| {
                let digest = Sha256::digest(&message.data);
                gossipsub::MessageId::from(digest.get(..20).unwrap_or(&digest[..]).to_vec())
            })
            // Nothing is forwarded before the engine has verified and authorized it.
            .validate_messages()
            .max_transmit_size(MAX_TRANSMIT_SIZE)
            .heartbeat_interval(config.heartbeat)
            // Give slow receivers time before gossipsub drops queued messages.
            .forward_queue_duration(Duration::from_secs(5))
            .publish_queue_duration(Duration::from_secs(10))
            .connection_handler_queue_len(20_000)
            .build()
            .map_err(|e| BehaviourError::Gossipsub(e.to_string()))?;
        let gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
                .map_err(|e| BehaviourError::Gossipsub(e.to_owned()))?;

        let codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(sync::MAX_REQUEST_BYTES)
            .set_response_size_maximum(sync::MAX_RESPONSE_BYTES);
        let sync = request_response::Behaviour::with_codec(
            codec,
            [(sync::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );

        let kademlia = config.kademlia.then(|| {
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config.set_query_timeout(Duration::from_secs(30));
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                kad::store::MemoryStore::new(peer_id),
                kad_config,
            );
            // Every node answers queries: peergroup nodes are servers, and
            // on loopback or LAN no external address would ever be confirmed.
            kad.set_mode(Some(kad::Mode::Server));
            kad
        });

        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(BehaviourError::Mdns)?,
            )
        } else {
            None
        };

        let identify = identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.to_owned(),
            key.public(),
        ));

        Ok(Behaviour {
            gossipsub,
            sync,
            kademlia: kademlia.into(),
            mdns: mdns.into(),
            identify,
        })
    }
}

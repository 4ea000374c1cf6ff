//! Gossip: one gossipsub topic per group, its configuration, and routing of
//! received messages (`handler`): decode by kind byte (`wire`), signatures
//! checked off the swarm task (the verify pool), then the group's session
//! judges, and the behaviour reports exactly one verdict per message.

mod handler;
pub(crate) mod wire;

use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic};
use peergroup_protocol::PeerName;
use sha2::{Digest, Sha256};

use crate::{behaviour::BuildError, config::Config};

/// The gossipsub protocol id prefix.
pub const GOSSIP_PROTOCOL_PREFIX: &str = "/peergroup/gossip";

/// The largest gossip frame, the same on every node: 2 MiB, four times the
/// largest envelope ([`peergroup_protocol::MAX_ENVELOPE_SIZE`]), because
/// gossipsub 0.50 checks whole RPC frames (which batch several messages)
/// against it; a tight limit was seen to kill streams on bursts of
/// near-limit messages.
pub const MAX_TRANSMIT_SIZE: usize = 2 * 1024 * 1024;

/// The gossip topic of a group: `/peergroup/1/<group peer name>/cbor`.
pub fn topic_of(group: &PeerName) -> IdentTopic {
    IdentTopic::new(format!("/peergroup/1/{group}/cbor"))
}

/// The gossipsub behaviour of a node.
pub(crate) fn behaviour(config: &Config) -> Result<gossipsub::Behaviour, BuildError> {
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
        // Nothing is forwarded before its group's session has judged it.
        .validate_messages()
        .max_transmit_size(MAX_TRANSMIT_SIZE)
        .heartbeat_interval(config.heartbeat)
        // Give slow receivers time before gossipsub drops queued messages.
        .forward_queue_duration(Duration::from_secs(5))
        .publish_queue_duration(Duration::from_secs(10))
        .connection_handler_queue_len(20_000)
        .build()
        .map_err(|e| BuildError::Gossipsub(e.to_string()))?;
    gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
        .map_err(|e| BuildError::Gossipsub(e.to_owned()))
}

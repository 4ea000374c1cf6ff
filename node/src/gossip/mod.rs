//! Gossip: one gossipsub topic per group, its configuration, and routing of
//! received messages (`crate::behaviour`'s `gossip`): every payload is sealed under the group's
//! data key; it is opened, routed by its inner kind byte (`wire`), its
//! signature checked off the swarm task (the verify pool), then the group's
//! session judges, and the behaviour reports exactly one verdict per message.
//! Peer scoring is on: unauthenticated subscribers and senders of invalid
//! messages are graylisted.

pub(crate) mod verdict;
pub(crate) use self::verdict::Verdict;
pub(crate) mod wire;

use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic};
use peergroup_protocol::PeerName;
use sha2::{Digest, Sha256};

use crate::{config::BehaviourConfig, error::BuildError};

/// The gossipsub protocol id prefix.
pub const GOSSIP_PROTOCOL_PREFIX: &str = "/peergroup/gossip";

/// The largest gossip frame, the same on every node: 2 MiB, four times the
/// largest envelope ([`peergroup_protocol::MAX_ENVELOPE_SIZE`]), because
/// gossipsub 0.50 checks whole RPC frames (which batch several messages)
/// against it; a tight limit was seen to kill streams on bursts of
/// near-limit messages.
pub const MAX_TRANSMIT_SIZE: usize = 2 * 1024 * 1024;

/// The gossip topic of a group: `/peergroup/2/<hex of the group tag>/sealed`.
/// The tag (`peergroup_protocol::group_tag`) names the group without
/// revealing its name to anyone who does not know it already.
pub fn topic_of(group: &PeerName) -> IdentTopic {
    let tag: String = peergroup_protocol::group_tag(group)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    IdentTopic::new(format!("/peergroup/2/{tag}/sealed"))
}

/// Peer scoring thresholds (gossipsub's defaults): below -10 a peer gets no
/// gossip, below -50 nothing we publish, below -80 everything it sends is
/// ignored (graylisted).
pub(crate) fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds::default()
}

/// Peer scoring: the application score carries group authentication (a
/// subscriber to one of our groups that has not authenticated is far below
/// the graylist threshold; see `auth`), and each group topic penalizes
/// invalid messages ([`topic_score_params`]). IP colocation is not penalized:
/// a group's members often share one host or one NAT, and loopback tests run
/// every node on 127.0.0.1.
fn score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    }
}

/// A group topic's scoring: every rejected message (malformed, forged, sealed
/// under no key of the group, unauthorized) costs its sender the square of
/// its count times 30, decaying by 10 % a second, so two rejected messages
/// graylist it. Delivery rates are not scored: a quiet group is no fault.
pub(crate) fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -30.0,
        invalid_message_deliveries_decay: 0.9,
        ..gossipsub::TopicScoreParams::default()
    }
}

/// The gossipsub behaviour of a node.
pub(crate) fn behaviour(config: &BehaviourConfig) -> Result<gossipsub::Behaviour, BuildError> {
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
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(|e| BuildError::Gossipsub(e.to_owned()))?;
    behaviour
        .with_peer_score(score_params(), score_thresholds())
        .map_err(BuildError::Gossipsub)?;
    Ok(behaviour)
}

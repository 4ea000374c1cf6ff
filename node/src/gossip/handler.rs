//! Received gossip: routing messages to their group's session (through the
//! verify pool for records), neighbours coming and going, and the one place
//! that reports verdicts to gossipsub.

use libp2p::{
    PeerId,
    gossipsub::{self, MessageAcceptance, MessageId},
};
use peergroup_protocol::{
    PeerName,
    session::{Acceptance, Input, Origin, Reason},
};

use crate::{
    behaviour::{Behaviour, GossipRef},
    gossip::{
        topic_of,
        wire::{Wire, classify},
    },
};

impl Behaviour {
    pub(crate) fn on_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_gossip_message(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic } => {
                if let Some(group) = self.groups.by_topic(&topic).cloned() {
                    self.handle(&group, Input::NeighborUp(peer_id));
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(group) = self.groups.by_topic(&topic).cloned() {
                    self.handle(&group, Input::NeighborDown(peer_id));
                }
            }
            gossipsub::Event::GossipsubNotSupported { .. } | gossipsub::Event::SlowPeer { .. } => {}
        }
    }

    fn on_gossip_message(
        &mut self,
        source: PeerId,
        message_id: MessageId,
        message: gossipsub::Message,
    ) {
        let Some(group) = self.groups.by_topic(&message.topic).cloned() else {
            // Not a group of this node (any more): nothing to judge it by.
            self.inner.gossipsub.report_message_validation_result(
                &message_id,
                &source,
                MessageAcceptance::Ignore,
            );
            return;
        };
        let origin = Origin::Gossip {
            source,
            message: message_id.clone(),
        };
        match classify(&message.data) {
            Wire::Record => self.queue_gossip(
                message.data,
                GossipRef {
                    group,
                    source,
                    message: message_id,
                },
            ),
            Wire::Properties(properties) => {
                let properties = *properties;
                self.handle(&group, Input::Properties { properties, origin });
            }
            Wire::Invalid(error) => {
                self.handle(
                    &group,
                    Input::Record {
                        record: Err(error),
                        origin,
                    },
                );
            }
        }
    }

    /// Reports a session's verdict to gossipsub: the only call site of
    /// `report_message_validation_result` for judged messages.
    pub(crate) fn report_verdict(
        &mut self,
        group: &PeerName,
        source: PeerId,
        message: &MessageId,
        reason: &Reason,
    ) {
        let acceptance = match reason.acceptance() {
            Acceptance::Accept => MessageAcceptance::Accept,
            Acceptance::Ignore => MessageAcceptance::Ignore,
            Acceptance::Reject => MessageAcceptance::Reject,
        };
        match acceptance {
            MessageAcceptance::Reject => {
                tracing::debug!(%group, peer = %source, %reason, "gossip message rejected")
            }
            MessageAcceptance::Ignore | MessageAcceptance::Accept => {
                tracing::trace!(%group, peer = %source, %reason, "gossip verdict")
            }
        }
        let known = self
            .inner
            .gossipsub
            .report_message_validation_result(message, &source, acceptance);
        if !known {
            // The message left gossipsub's cache before its verdict (a held
            // record released late): it is not forwarded, nor penalized.
            self.stats.late_verdicts = self.stats.late_verdicts.saturating_add(1);
            tracing::debug!(%group, peer = %source, %reason, "verdict for a message gossipsub no longer holds");
        }
    }

    /// Publishes `bytes` on `group`'s topic.
    pub(crate) fn publish(&mut self, group: &PeerName, bytes: Vec<u8>) {
        match self.inner.gossipsub.publish(topic_of(group), bytes) {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::trace!(%group, "no neighbour to publish to yet");
            }
            Err(e) => tracing::warn!(%group, error = %e, "publish failed"),
        }
    }
}

//! Received gossip: routing messages to their group's session (through the
//! verify pool for records), neighbours coming and going, and the one place
//! that reports verdicts to gossipsub (`verdict`).

use libp2p::{
    PeerId,
    gossipsub::{self, MessageAcceptance, MessageId},
};
use peergroup_protocol::{
    PeerName,
    session::{Input, Origin},
};

use rand::RngExt as _;

use crate::{
    behaviour::{Behaviour, Happened},
    gossip::{
        topic_of,
        verdict::{Verdict, acceptance_name},
        wire::{Wire, unseal},
    },
    pipeline::GossipRef,
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
                if let Some(group) = self.group_of_topic(&topic) {
                    let now = self.clocks();
                    self.groups.subscribed(&group, &peer_id, now, &mut self.rng);
                    self.drive_all();
                } else {
                    self.happened(Happened::ForeignTopic {
                        topic: &topic,
                        peer: peer_id,
                    });
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(group) = self.group_of_topic(&topic) {
                    let now = self.clocks();
                    self.groups.unsubscribed(&group, &peer_id, now);
                    self.drive_all();
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
        let Some(group) = self.group_of_topic(&message.topic) else {
            // Not a group of this node (any more): nothing to judge it by.
            self.report_verdict(None, source, &message_id, Verdict::UnknownTopic);
            return;
        };
        if !self.groups.get(&group).is_ok_and(|s| s.is_online()) {
            // Closed here a moment ago: messages in flight are nobody's fault.
            self.report_verdict(Some(&group), source, &message_id, Verdict::Offline);
            return;
        }
        if !self.groups.is_neighbor(&group, &source) {
            self.gossip_from_stranger(&group, source, &message_id);
            return;
        }
        let origin = Origin::Gossip {
            source,
            message: message_id.clone(),
        };
        let wire = match self.groups.get(&group) {
            Ok(session) => unseal(&message.data, &group, session.state()),
            Err(e) => Wire::Invalid(e),
        };
        match wire {
            Wire::Record(envelope) => self.work.queue_gossip(
                envelope,
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
            Wire::Other { kind, bytes } => self.on_group_payload(&group, origin, kind, bytes),
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

    /// A message for `group` forwarded by a peer that has not authenticated
    /// for it. Gossipsub ignores graylisted peers itself, so this is a peer
    /// in its first moments (its exchange is under way: ignored, no penalty)
    /// or one that publishes to the topic without subscribing (rejected,
    /// which costs its topic score, and treated as a failed authentication:
    /// the connection closes). Nothing of it reaches the session.
    fn gossip_from_stranger(&mut self, group: &PeerName, source: PeerId, message: &MessageId) {
        let pending = self.groups.is_pending(group, &source);
        self.stats.gossip_from_strangers = self.stats.gossip_from_strangers.saturating_add(1);
        self.report_verdict(Some(group), source, message, Verdict::Stranger { pending });
        if !pending {
            let now = self.clocks();
            self.groups.cut_off(
                group,
                &source,
                peergroup_protocol::Error::NotAuthorized(
                    "published to the group without authenticating".into(),
                ),
                now,
            );
            self.drive_all();
        }
    }

    /// Reports a verdict to gossipsub: the only call site of
    /// `report_message_validation_result`, with a metric per reason.
    pub(crate) fn report_verdict(
        &mut self,
        group: Option<&PeerName>,
        source: PeerId,
        message: &MessageId,
        verdict: Verdict<'_>,
    ) {
        let acceptance = verdict.acceptance();
        self.metrics
            .verdict(acceptance_name(&acceptance), verdict.name());
        let reason = match verdict {
            Verdict::Judged(reason) => reason.to_string(),
            other => other.name().to_owned(),
        };
        match acceptance {
            MessageAcceptance::Reject => {
                tracing::debug!(?group, peer = %source, %reason, "gossip message rejected")
            }
            MessageAcceptance::Ignore | MessageAcceptance::Accept => {
                tracing::trace!(?group, peer = %source, %reason, "gossip verdict")
            }
        }
        let known = self
            .inner
            .gossipsub
            .report_message_validation_result(message, &source, acceptance);
        if !known && matches!(verdict, Verdict::Judged(_)) {
            // The message left gossipsub's cache before its verdict (a held
            // record released late): it is not forwarded, nor penalized.
            self.stats.late_verdicts = self.stats.late_verdicts.saturating_add(1);
            tracing::debug!(?group, peer = %source, %reason, "verdict for a message gossipsub no longer holds");
        }
    }

    /// Seals `bytes` (a signed envelope) under `group`'s current data key and
    /// publishes it on the group's topic.
    pub(crate) fn publish(&mut self, group: &PeerName, bytes: Vec<u8>) {
        let Some(key) = self
            .groups
            .get(group)
            .ok()
            .and_then(|s| s.state().current_key().cloned())
        else {
            // A joiner gets the key when it first authenticates with a
            // member, before its copy completes; without one there is
            // nobody to publish to yet. Sync delivers the record instead.
            tracing::debug!(%group, "no group key yet: not published");
            return;
        };
        let nonce: [u8; 24] = self.rng.random();
        let sealed = match peergroup_protocol::seal(&key, group, nonce, &bytes) {
            Ok(sealed) => sealed,
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot seal a payload");
                return;
            }
        };
        match self.inner.gossipsub.publish(topic_of(group), sealed) {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::trace!(%group, "no neighbour to publish to yet");
            }
            Err(e) => tracing::warn!(%group, error = %e, "publish failed"),
        }
    }
}

impl Behaviour {
    /// Gossip the verify queue had no room for: ignored (it was not judged).
    pub(crate) fn report_busy(&mut self, group: &PeerName, source: PeerId, message: &MessageId) {
        self.report_verdict(Some(group), source, message, Verdict::Busy);
    }
}

impl Behaviour {
    /// Subscribes to `group`'s topic (it went online here), scores it, and
    /// starts authenticating the peers that subscribed before us (they
    /// announced it already).
    pub(super) fn join_topic(&mut self, group: &PeerName) {
        let topic = topic_of(group);
        if let Err(e) = self.inner.gossipsub.subscribe(&topic) {
            tracing::warn!(%group, error = %e, "cannot subscribe to the group's topic");
        }
        if let Err(e) = self
            .inner
            .gossipsub
            .set_topic_params(topic.clone(), crate::gossip::topic_score_params())
        {
            tracing::warn!(%group, error = %e, "cannot score the group's topic");
        }
        let subscribed = self.topic_subscribers(group);
        let now = self.clocks();
        for peer in subscribed {
            self.groups.subscribed(group, &peer, now, &mut self.rng);
        }
    }

    /// Leaves `group`'s topic (it went offline here).
    pub(super) fn leave_topic(&mut self, group: &PeerName) {
        self.inner.gossipsub.unsubscribe(&topic_of(group));
    }

    /// The connected peers subscribed to `group`'s topic.
    pub(crate) fn topic_subscribers(&self, group: &PeerName) -> Vec<PeerId> {
        let topic = topic_of(group).hash();
        self.inner
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// The group (known here, online or not) whose topic is `topic`.
    fn group_of_topic(&self, topic: &gossipsub::TopicHash) -> Option<PeerName> {
        let tag = crate::groups::tag_of_topic(topic)?;
        self.groups.named_by(&tag).cloned()
    }
}

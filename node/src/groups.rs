//! The node's groups: group name to session, and the topic index that routes
//! gossip to them.

use std::collections::{BTreeMap, HashMap};

use libp2p::{PeerId, gossipsub::MessageId, gossipsub::TopicHash};
use peergroup_protocol::{Error, PeerName, Session};

use crate::gossip::topic_of;

/// A group's session in the node: peers are libp2p peer ids, gossip
/// messages gossipsub's message ids.
pub(crate) type GroupSession = Session<PeerId, MessageId>;

/// Every group this node knows, open or closed.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    sessions: BTreeMap<PeerName, GroupSession>,
    topics: HashMap<TopicHash, PeerName>,
}

impl Groups {
    /// Adds a group's session.
    pub(crate) fn insert(&mut self, session: GroupSession) {
        let name = session.name().clone();
        self.topics.insert(topic_of(&name).hash(), name.clone());
        self.sessions.insert(name, session);
    }

    /// Removes a group's session.
    pub(crate) fn remove(&mut self, name: &PeerName) -> Option<GroupSession> {
        self.topics.remove(&topic_of(name).hash());
        self.sessions.remove(name)
    }

    /// Whether `name` is a known group.
    pub(crate) fn contains(&self, name: &PeerName) -> bool {
        self.sessions.contains_key(name)
    }

    /// The session of `name`, or `InvalidGroup`.
    pub(crate) fn get(&self, name: &PeerName) -> Result<&GroupSession, Error> {
        self.sessions
            .get(name)
            .ok_or_else(|| Error::InvalidGroup(format!("unknown group {name}")))
    }

    /// The session of `name`, or `InvalidGroup`.
    pub(crate) fn get_mut(&mut self, name: &PeerName) -> Result<&mut GroupSession, Error> {
        self.sessions
            .get_mut(name)
            .ok_or_else(|| Error::InvalidGroup(format!("unknown group {name}")))
    }

    /// The group whose topic is `topic`.
    pub(crate) fn by_topic(&self, topic: &TopicHash) -> Option<&PeerName> {
        self.topics.get(topic)
    }

    /// Every group, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PeerName, &GroupSession)> {
        self.sessions.iter()
    }

    /// Every group name, in order (owned, for loops that mutate sessions).
    pub(crate) fn names(&self) -> Vec<PeerName> {
        self.sessions.keys().cloned().collect()
    }
}

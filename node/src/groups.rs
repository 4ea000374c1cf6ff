//! The node's groups: the protocol's groups router
//! (`peergroup_protocol::groups::Groups`) over libp2p peer ids and
//! gossipsub message ids, and the gossip topic that names a group.

use libp2p::{
    PeerId,
    gossipsub::{MessageId, TopicHash},
};
use peergroup_protocol::{GROUP_TAG_LEN, Session};

/// A group's session in the node.
pub(crate) type GroupSession = Session<PeerId, MessageId>;

/// Every group this node knows, open or closed, and who is a neighbour in
/// which.
pub(crate) type Groups = peergroup_protocol::groups::Groups<PeerId, MessageId>;

/// The group tag a topic names (`crate::gossip::topic_of`), if it is a
/// peergroup topic.
pub(crate) fn tag_of_topic(topic: &TopicHash) -> Option<[u8; GROUP_TAG_LEN]> {
    let hex = topic
        .as_str()
        .strip_prefix("/peergroup/2/")?
        .strip_suffix("/sealed")?;
    if hex.len() != GROUP_TAG_LEN * 2 {
        return None;
    }
    let mut tag = [0u8; GROUP_TAG_LEN];
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(tag)
}

#[cfg(test)]
mod tests {
    use peergroup_protocol::{PeerName, group_tag};

    use super::*;
    use crate::gossip::topic_of;

    #[test]
    fn a_group_topic_names_its_tag_and_nothing_else_parses() {
        let group = PeerName::parse("0.topics").unwrap();
        assert_eq!(
            tag_of_topic(&topic_of(&group).hash()),
            Some(group_tag(&group))
        );
        for other in [
            "",
            "/peergroup/2//sealed",
            "/peergroup/2/zz/sealed",
            "/other/1",
        ] {
            assert_eq!(tag_of_topic(&TopicHash::from_raw(other)), None, "{other}");
        }
    }
}

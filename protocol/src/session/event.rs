//! What a group session reports to the application (`PeerGroupRegisterEvent`).

use serde::{Deserialize, Serialize};

use crate::{error::Error, peer_name::PeerName, record::RecordId, record::RecordType};

/// A group's status (`PEER_GROUP_STATUS` plus readiness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Status {
    /// `PEER_GROUP_STATUS_LISTENING`: online and accepting members.
    pub listening: bool,
    /// `PEER_GROUP_STATUS_HAS_CONNECTIONS`: at least one neighbour is connected.
    pub has_connections: bool,
    /// Whether the group is ready: it completed its first synchronization with
    /// a member (the creator is ready at once). Until then record, invitation
    /// and property calls fail with `PEER_E_GROUP_NOT_READY` (reference 3.2).
    pub ready: bool,
}

/// What happened to a record (`PEER_RECORD_CHANGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordChange {
    /// `PEER_RECORD_ADDED`: a new record.
    Added,
    /// `PEER_RECORD_UPDATED`: a newer version of a record.
    Updated,
    /// `PEER_RECORD_DELETED`: a tombstone.
    Deleted,
    /// `PEER_RECORD_EXPIRED`: the record's expiration passed.
    Expired,
}

/// What happened to a member (`PEER_MEMBER_CHANGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberChange {
    /// Its first membership record arrived.
    Joined,
    /// A newer membership record arrived (renewal, role change).
    Updated,
}

/// Whether a neighbour came or went (`PEER_CONNECTION_STATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionChange {
    /// `PEER_CONNECTED`.
    Connected,
    /// `PEER_DISCONNECTED`.
    Disconnected,
}

/// An event of one group; `P` identifies peers (a libp2p `PeerId` in the node).
///
/// This is the one definition of the group events: the node's event wraps it
/// (`Event::Group`), and its kinds ([`EventKind`]) and their names derive
/// from it. It serializes as an object tagged by `type`, the variant's name
/// (the control API's event stream); errors serialize as `{"name":
/// "PEER_E_…", "code": HRESULT, "message": "…"}`.
///
/// Not `#[non_exhaustive]` on purpose: the node's control API keeps a sample
/// of every variant, and a new variant must fail its build, not vanish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(EventKind),
    vis(pub),
    derive(
        Hash,
        Serialize,
        Deserialize,
        strum::VariantArray,
        strum::IntoStaticStr
    ),
    doc = "The kinds of group [`Event`]s: one per variant, by the variant's name."
)]
#[serde(tag = "type")]
pub enum Event<P> {
    /// `PEER_GROUP_EVENT_STATUS_CHANGED`.
    StatusChanged {
        /// The group.
        group: PeerName,
        /// Its new status.
        status: Status,
    },
    /// `PEER_GROUP_EVENT_PROPERTY_CHANGED`.
    PropertiesChanged {
        /// The group.
        group: PeerName,
    },
    /// `PEER_GROUP_EVENT_RECORD_CHANGED`, raised once the change is stored.
    RecordChanged {
        /// The group.
        group: PeerName,
        /// What happened.
        change: RecordChange,
        /// The record's id.
        id: RecordId,
        /// The record's type.
        record_type: RecordType,
    },
    /// `PEER_GROUP_EVENT_MEMBER_CHANGED`, raised once the membership record is stored.
    MemberChanged {
        /// The group.
        group: PeerName,
        /// The member's identity.
        member: PeerName,
        /// What happened.
        change: MemberChange,
    },
    /// `PEER_GROUP_EVENT_NEIGHBOR_CONNECTION`.
    NeighborConnection {
        /// The group.
        group: PeerName,
        /// The neighbour.
        peer: P,
        /// Connected or disconnected.
        change: ConnectionChange,
    },
    /// `PEER_GROUP_EVENT_CONNECTION_FAILED`, with `hrConnectionFailedReason`.
    ConnectionFailed {
        /// The group.
        group: PeerName,
        /// Why.
        reason: Error,
    },
    /// A synchronization with a neighbour brought records (one event per
    /// fetched batch): for progress bars while a group joins.
    SyncProgress {
        /// The group.
        group: PeerName,
        /// The neighbour.
        peer: P,
        /// Records received from it so far in this synchronization.
        received: u64,
        /// The records expected in all (an estimate until reconciliation
        /// ends; for a first synchronization, at least the neighbour's count).
        estimated_total: u64,
    },
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [EventKind] = <EventKind as strum::VariantArray>::VARIANTS;

    /// The kind's name: its variant's, as the event's `type` tag gives it.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl<P> Event<P> {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }

    /// The group the event belongs to.
    pub fn group(&self) -> &PeerName {
        match self {
            Event::StatusChanged { group, .. }
            | Event::PropertiesChanged { group }
            | Event::RecordChanged { group, .. }
            | Event::MemberChanged { group, .. }
            | Event::NeighborConnection { group, .. }
            | Event::ConnectionFailed { group, .. }
            | Event::SyncProgress { group, .. } => group,
        }
    }

    /// The same event with its peer identifiers mapped by `f`.
    pub fn map_peer<Q>(self, f: impl FnOnce(P) -> Q) -> Event<Q> {
        match self {
            Event::StatusChanged { group, status } => Event::StatusChanged { group, status },
            Event::PropertiesChanged { group } => Event::PropertiesChanged { group },
            Event::RecordChanged {
                group,
                change,
                id,
                record_type,
            } => Event::RecordChanged {
                group,
                change,
                id,
                record_type,
            },
            Event::MemberChanged {
                group,
                member,
                change,
            } => Event::MemberChanged {
                group,
                member,
                change,
            },
            Event::NeighborConnection {
                group,
                peer,
                change,
            } => Event::NeighborConnection {
                group,
                peer: f(peer),
                change,
            },
            Event::ConnectionFailed { group, reason } => Event::ConnectionFailed { group, reason },
            Event::SyncProgress {
                group,
                peer,
                received,
                estimated_total,
            } => Event::SyncProgress {
                group,
                peer: f(peer),
                received,
                estimated_total,
            },
        }
    }
}

//! [`Event`]: what the [`crate::Behaviour`] reports to the swarm's owner, and
//! the [`OperationId`]s that network operations return.

use libp2p::PeerId;
use peergroup_protocol::{
    Error, PeerName, RecordId, RecordType, session,
    session::{ConnectionChange, MemberChange, RecordChange, Status},
};
use serde::{Deserialize, Serialize};

/// Identifies an operation that completes later (a connect, a durability
/// barrier); its outcome arrives as [`Event::OperationCompleted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OperationId(pub(crate) u64);

impl std::fmt::Display for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "op-{}", self.0)
    }
}

/// Why an operation failed: a peer-group error, or the storage's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum OperationError {
    /// A Windows-style peer-group error (`PEER_E_*`).
    #[error(transparent)]
    Peer(
        #[from]
        #[serde(serialize_with = "crate::error::serialize_peer_error")]
        Error,
    ),
    /// The store could not commit (a full disk, an I/O error).
    #[error("the store failed: {0}")]
    Store(String),
}

/// An event of the peergroup behaviour. The group events mirror
/// `PeerGroupRegisterEvent`'s and are the sessions' own
/// (`peergroup_protocol::session::Event`), flattened into this one enum with
/// the behaviour's events so that an application matches a single type.
///
/// It serializes (for the control API's event stream) as an object tagged
/// by `type`, the variant's name; errors serialize as
/// `{"name": "PEER_E_…", "code": HRESULT, "message": "…"}`.
///
/// Its kinds, for filters, are [`EventKind`], derived from this one
/// definition (as are their names, [`EventKind::name`]).
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
    doc = "The kinds of [`Event`], for filters: one per variant, by the variant's name.",
    non_exhaustive
)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// `PEER_GROUP_EVENT_STATUS_CHANGED`.
    StatusChanged {
        /// The group.
        group: PeerName,
        /// Its new status (listening, has connections, ready).
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
    /// `PEER_GROUP_EVENT_MEMBER_CHANGED`, raised once the membership is stored.
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
        /// The neighbour's libp2p peer id.
        peer: PeerId,
        /// Connected or disconnected.
        change: ConnectionChange,
    },
    /// `PEER_GROUP_EVENT_CONNECTION_FAILED`, with `hrConnectionFailedReason`.
    ConnectionFailed {
        /// The group.
        group: PeerName,
        /// Why.
        #[serde(serialize_with = "crate::error::serialize_peer_error")]
        reason: Error,
    },
    /// A synchronization with a neighbour brought records (one event per
    /// fetched batch): for progress bars while a group joins.
    SyncProgress {
        /// The group.
        group: PeerName,
        /// The neighbour.
        peer: PeerId,
        /// Records received from it so far in this synchronization.
        received: u64,
        /// The records expected in all (an estimate until reconciliation
        /// ends; for a first synchronization, at least the neighbour's count).
        estimated_total: u64,
    },
    /// A peer failed group authentication (or its credential expired): it
    /// is not a neighbour, and the connection is closed unless it is a
    /// member of another of our groups.
    AuthenticationFailed {
        /// The group.
        group: PeerName,
        /// The peer.
        peer: PeerId,
        /// Why.
        #[serde(serialize_with = "crate::error::serialize_peer_error")]
        reason: Error,
    },
    /// An operation that returned an [`OperationId`] completed.
    OperationCompleted {
        /// The operation.
        operation: OperationId,
        /// Its outcome.
        result: Result<(), OperationError>,
    },
    /// A write to the store failed; what it carried is not stored (records
    /// come again through gossip or the next synchronization).
    StoreFailed {
        /// Why, for logs.
        reason: String,
    },
}

impl Event {
    /// The group the event belongs to, if it is a group event.
    pub fn group(&self) -> Option<&PeerName> {
        match self {
            Event::StatusChanged { group, .. }
            | Event::PropertiesChanged { group }
            | Event::RecordChanged { group, .. }
            | Event::MemberChanged { group, .. }
            | Event::NeighborConnection { group, .. }
            | Event::ConnectionFailed { group, .. }
            | Event::SyncProgress { group, .. }
            | Event::AuthenticationFailed { group, .. } => Some(group),
            Event::OperationCompleted { .. } | Event::StoreFailed { .. } => None,
        }
    }
}

impl From<session::Event<PeerId>> for Event {
    fn from(event: session::Event<PeerId>) -> Event {
        match event {
            session::Event::StatusChanged { group, status } => {
                Event::StatusChanged { group, status }
            }
            session::Event::PropertiesChanged { group } => Event::PropertiesChanged { group },
            session::Event::RecordChanged {
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
            session::Event::MemberChanged {
                group,
                member,
                change,
            } => Event::MemberChanged {
                group,
                member,
                change,
            },
            session::Event::NeighborConnection {
                group,
                peer,
                change,
            } => Event::NeighborConnection {
                group,
                peer,
                change,
            },
            session::Event::ConnectionFailed { group, reason } => {
                Event::ConnectionFailed { group, reason }
            }
            session::Event::SyncProgress {
                group,
                peer,
                received,
                estimated_total,
            } => Event::SyncProgress {
                group,
                peer,
                received,
                estimated_total,
            },
        }
    }
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [EventKind] = <EventKind as strum::VariantArray>::VARIANTS;

    /// The kind's name: its variant's, as the control API's `kind` filter
    /// and the event stream's `type` field give it.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_derived_from_events_and_named_as_serde_names_them() {
        assert_eq!(EventKind::ALL.len(), 10);
        for kind in EventKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::Value::String(kind.name().to_owned()));
            let back: EventKind = serde_json::from_value(json).unwrap();
            assert_eq!(back, *kind);
        }
        let event = Event::StoreFailed {
            reason: "disk".into(),
        };
        assert_eq!(event.kind(), EventKind::StoreFailed);
        let tagged = serde_json::to_value(&event).unwrap();
        assert_eq!(tagged["type"], event.kind().name());
    }
}

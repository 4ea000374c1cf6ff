//! Events (`PeerGroupRegisterEvent`) and filtered subscriptions.
//!
//! The event loop broadcasts every [`Event`] into one bounded ring
//! ([`EVENT_CAPACITY`]); each [`Subscription`] reads it at its own pace and
//! applies its own [`EventFilter`]. A subscriber that falls more than the
//! ring's capacity behind is never waited for: its next read reports how many
//! events it missed ([`Missed`]) and it carries on from the oldest retained one.

use libp2p::PeerId;
use peergroup_protocol::{Error, PeerName, RecordId, RecordType};
use tokio::sync::broadcast;

/// How many events the ring keeps for slow subscribers.
pub const EVENT_CAPACITY: usize = 4096;

/// A group's status flags (`PEER_GROUP_STATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status {
    /// `PEER_GROUP_STATUS_LISTENING`: online and accepting members.
    pub listening: bool,
    /// `PEER_GROUP_STATUS_HAS_CONNECTIONS`: at least one neighbour is connected.
    pub has_connections: bool,
}

/// What happened to a record (`PEER_RECORD_CHANGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordChange {
    /// A new record.
    Added,
    /// A newer version of a record.
    Updated,
    /// A tombstone.
    Deleted,
    /// The record's expiration passed.
    Expired,
}

/// What happened to a member (`PEER_MEMBER_CHANGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberChange {
    /// Its first membership record arrived.
    Joined,
    /// A newer membership record arrived (renewal, role change).
    Updated,
}

/// Whether a neighbour came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionChange {
    /// `PEER_CONNECTED`.
    Connected,
    /// `PEER_DISCONNECTED`.
    Disconnected,
}

/// An event of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `PEER_GROUP_EVENT_STATUS_CHANGED`.
    StatusChanged {
        /// The group.
        group: PeerName,
        /// Its new status.
        status: Status,
        /// Whether the group is ready (has completed its first synchronization).
        ready: bool,
    },
    /// `PEER_GROUP_EVENT_PROPERTY_CHANGED`.
    PropertiesChanged {
        /// The group.
        group: PeerName,
    },
    /// `PEER_GROUP_EVENT_RECORD_CHANGED`.
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
    /// `PEER_GROUP_EVENT_MEMBER_CHANGED`.
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
        reason: Error,
    },
}

/// The kinds of [`Event`], for filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`Event::StatusChanged`].
    StatusChanged,
    /// [`Event::PropertiesChanged`].
    PropertiesChanged,
    /// [`Event::RecordChanged`].
    RecordChanged,
    /// [`Event::MemberChanged`].
    MemberChanged,
    /// [`Event::NeighborConnection`].
    NeighborConnection,
    /// [`Event::ConnectionFailed`].
    ConnectionFailed,
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::StatusChanged { .. } => EventKind::StatusChanged,
            Event::PropertiesChanged { .. } => EventKind::PropertiesChanged,
            Event::RecordChanged { .. } => EventKind::RecordChanged,
            Event::MemberChanged { .. } => EventKind::MemberChanged,
            Event::NeighborConnection { .. } => EventKind::NeighborConnection,
            Event::ConnectionFailed { .. } => EventKind::ConnectionFailed,
        }
    }

    /// The group the event belongs to.
    pub fn group(&self) -> &PeerName {
        match self {
            Event::StatusChanged { group, .. }
            | Event::PropertiesChanged { group }
            | Event::RecordChanged { group, .. }
            | Event::MemberChanged { group, .. }
            | Event::NeighborConnection { group, .. }
            | Event::ConnectionFailed { group, .. } => group,
        }
    }
}

/// Which events a subscription wants (`PEER_GROUP_EVENT_REGISTRATION`).
/// The default wants everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these kinds (empty: all kinds).
    pub kinds: Vec<EventKind>,
    /// Only this group.
    pub group: Option<PeerName>,
    /// Only record changes of this type (other kinds are unaffected).
    pub record_type: Option<RecordType>,
}

impl EventFilter {
    /// Everything.
    pub fn all() -> EventFilter {
        EventFilter::default()
    }

    /// Only these kinds.
    pub fn kinds(kinds: impl IntoIterator<Item = EventKind>) -> EventFilter {
        EventFilter {
            kinds: kinds.into_iter().collect(),
            ..EventFilter::default()
        }
    }

    /// Restricts to `group`.
    pub fn with_group(mut self, group: PeerName) -> EventFilter {
        self.group = Some(group);
        self
    }

    /// Restricts record changes to `record_type`.
    pub fn with_record_type(mut self, record_type: RecordType) -> EventFilter {
        self.record_type = Some(record_type);
        self
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&event.kind()) {
            return false;
        }
        if self.group.as_ref().is_some_and(|g| g != event.group()) {
            return false;
        }
        match (self.record_type, event) {
            (Some(wanted), Event::RecordChanged { record_type, .. }) => *record_type == wanted,
            _ => true,
        }
    }
}

/// A subscriber fell behind and `0` events were dropped for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscriber fell behind and missed {0} events")]
pub struct Missed(pub u64);

/// A filtered stream of events.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Event>,
    filter: EventFilter,
}

impl Subscription {
    pub(crate) fn new(rx: broadcast::Receiver<Event>, filter: EventFilter) -> Subscription {
        Subscription { rx, filter }
    }

    /// The next matching event; `Some(Err(Missed(n)))` if `n` events (of any
    /// kind) were dropped because this subscriber was too slow; `None` once
    /// the node has shut down. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Event, Missed>> {
        loop {
            match self.rx.recv().await {
                Ok(event) if self.filter.matches(&event) => return Some(Ok(event)),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(Err(Missed(n))),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Like [`Subscription::recv`] but without waiting: `None` when no
    /// matching event is queued now (or the node is gone).
    pub fn try_recv(&mut self) -> Option<Result<Event, Missed>> {
        loop {
            match self.rx.try_recv() {
                Ok(event) if self.filter.matches(&event) => return Some(Ok(event)),
                Ok(_) => continue,
                Err(broadcast::error::TryRecvError::Lagged(n)) => return Some(Err(Missed(n))),
                Err(_) => return None,
            }
        }
    }
}

//! [`Event`]: what the [`crate::Behaviour`] reports to the swarm's owner, and
//! the [`OperationId`]s that network operations return.

use libp2p::PeerId;
use peergroup_protocol::{Error, PeerName, session};
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
    Peer(#[from] Error),
    /// The store could not commit (a full disk, an I/O error).
    #[error("the store failed: {0}")]
    Store(String),
}

/// A group's event, as its session reports it: the one definition of the
/// group events (`PeerGroupRegisterEvent`'s).
pub type GroupEvent = session::Event<PeerId>;

/// The kinds of [`GroupEvent`], derived from it.
pub use peergroup_protocol::session::EventKind as GroupEventKind;

/// An event of the peergroup behaviour: a group's event, as its session
/// reports it, or one of the behaviour's own.
///
/// It serializes (for the control API's event stream) as an object tagged
/// by `type`, the kind's name ([`EventKind::name`]): a group event as the
/// session's event serializes, the others by their variant's name. Errors
/// serialize as `{"name": "PEER_E_…", "code": HRESULT, "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// A peer failed group authentication (or its credential expired): it
    /// is not a neighbour, and the connection is closed unless it is a
    /// member of another of our groups.
    AuthenticationFailed {
        /// The group.
        group: PeerName,
        /// The peer.
        peer: PeerId,
        /// Why.
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
    /// A group's event (status, properties, records, members, neighbours,
    /// connection failures, synchronization progress).
    #[serde(untagged)]
    Group(GroupEvent),
}

impl Event {
    /// The group the event belongs to, if it is a group event.
    pub fn group(&self) -> Option<&PeerName> {
        match self {
            Event::Group(event) => Some(event.group()),
            Event::AuthenticationFailed { group, .. } => Some(group),
            Event::OperationCompleted { .. } | Event::StoreFailed { .. } => None,
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Group(event) => EventKind::Group(event.kind()),
            Event::AuthenticationFailed { .. } => EventKind::AuthenticationFailed,
            Event::OperationCompleted { .. } => EventKind::OperationCompleted,
            Event::StoreFailed { .. } => EventKind::StoreFailed,
        }
    }
}

impl From<GroupEvent> for Event {
    fn from(event: GroupEvent) -> Event {
        Event::Group(event)
    }
}

/// The kinds of [`Event`], for filters: the group events' kinds and the
/// behaviour's own. Each is named by its variant ([`EventKind::name`]), as
/// the event's `type` tag and the control API's `kind` filter give it; it
/// serializes, deserializes and prints (`Debug`) as that name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum EventKind {
    /// A group event's kind.
    Group(GroupEventKind),
    /// [`Event::AuthenticationFailed`].
    AuthenticationFailed,
    /// [`Event::OperationCompleted`].
    OperationCompleted,
    /// [`Event::StoreFailed`].
    StoreFailed,
}

impl EventKind {
    /// Every kind: the group events' in their declaration order, then the
    /// behaviour's own.
    pub fn all() -> &'static [EventKind] {
        &KINDS.0
    }

    /// Every kind's name, in [`EventKind::all`]'s order.
    pub fn names() -> &'static [&'static str] {
        &KINDS.1
    }

    /// The kind's name: its variant's, as the event's `type` tag gives it.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Group(kind) => kind.name(),
            other => other.into(),
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::all().iter().copied().find(|k| k.name() == name)
    }
}

/// Every kind and its name, built once: the group events' kinds (derived
/// from [`GroupEvent`]) and the behaviour's own (a kind missing here has no
/// name in the control API's filter: its schema test fails).
static KINDS: std::sync::LazyLock<(Vec<EventKind>, Vec<&'static str>)> =
    std::sync::LazyLock::new(|| {
        let kinds: Vec<EventKind> = GroupEventKind::ALL
            .iter()
            .map(|k| EventKind::Group(*k))
            .chain([
                EventKind::AuthenticationFailed,
                EventKind::OperationCompleted,
                EventKind::StoreFailed,
            ])
            .collect();
        let names = kinds.iter().map(|k| k.name()).collect();
        (kinds, names)
    });

impl From<GroupEventKind> for EventKind {
    fn from(kind: GroupEventKind) -> EventKind {
        EventKind::Group(kind)
    }
}

impl std::fmt::Debug for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EventKind, D::Error> {
        struct Kind;
        impl<'de> serde::de::Visitor<'de> for Kind {
            type Value = EventKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "one of {}", EventKind::names().join(", "))
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<EventKind, E> {
                EventKind::from_name(name)
                    .ok_or_else(|| E::unknown_variant(name, EventKind::names()))
            }
            fn visit_enum<A: serde::de::EnumAccess<'de>>(
                self,
                data: A,
            ) -> Result<EventKind, A::Error> {
                use serde::de::{Error as _, VariantAccess as _};
                let (name, variant): (String, _) = data.variant()?;
                variant.unit_variant()?;
                EventKind::from_name(&name)
                    .ok_or_else(|| A::Error::unknown_variant(&name, EventKind::names()))
            }
        }
        d.deserialize_enum("EventKind", EventKind::names(), Kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_derived_from_events_and_named_as_serde_names_them() {
        assert_eq!(EventKind::all().len(), 10);
        for kind in EventKind::all() {
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
        let group = Event::Group(GroupEvent::PropertiesChanged {
            group: peergroup_protocol::testing::group_of(
                &peergroup_protocol::testing::identity(1, "alice"),
                "g",
            ),
        });
        assert_eq!(
            group.kind(),
            EventKind::Group(GroupEventKind::PropertiesChanged)
        );
        let tagged = serde_json::to_value(&group).unwrap();
        assert_eq!(tagged["type"], "PropertiesChanged");
        assert_eq!(tagged.as_object().unwrap().len(), 2, "{tagged}");
    }
}

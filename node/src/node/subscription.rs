//! Filtered subscriptions to the node's events (`PeerGroupRegisterEvent`).
//!
//! The event loop broadcasts every [`Event`] into one bounded ring
//! ([`EVENT_CAPACITY`]); each [`Subscription`] reads it at its own pace and
//! applies its own [`EventFilter`]. A subscriber that falls more than the
//! ring's capacity behind is never waited for: its next read reports how many
//! events it missed ([`Missed`]) and it carries on from the oldest retained one.

use peergroup_protocol::{PeerName, RecordType};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use crate::event::EventKind;
use crate::event::{Event, GroupEvent};

/// How many events the ring keeps for slow subscribers.
pub const EVENT_CAPACITY: usize = 4096;

/// Which events a subscription wants (`PEER_GROUP_EVENT_REGISTRATION`).
/// The default wants everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only these kinds (empty: all kinds).
    pub kinds: Vec<EventKind>,
    /// Only this group (events of no group, such as store failures, pass).
    pub group: Option<PeerName>,
    /// Only record changes of this type (other kinds are unaffected).
    pub record_type: Option<RecordType>,
}

impl EventFilter {
    /// Everything.
    pub fn all() -> EventFilter {
        EventFilter::default()
    }

    /// Only these kinds: [`EventKind`]s, or group events' kinds
    /// ([`crate::GroupEventKind`]).
    pub fn kinds<K: Into<EventKind>>(kinds: impl IntoIterator<Item = K>) -> EventFilter {
        EventFilter {
            kinds: kinds.into_iter().map(Into::into).collect(),
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
        if let (Some(wanted), Some(group)) = (&self.group, event.group())
            && wanted != group
        {
            return false;
        }
        match (self.record_type, event) {
            (Some(wanted), Event::Group(GroupEvent::RecordChanged { record_type, .. })) => {
                *record_type == wanted
            }
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

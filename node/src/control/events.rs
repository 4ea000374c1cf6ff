//! `GET /v1/events`: the node's events as server-sent events.
//!
//! Each event is one SSE message whose `event` field is the event's kind
//! (`RecordChanged`, ...) and whose `data` is the event as JSON (tagged by
//! `type`, see [`crate::Event`]); `id` counts the messages of this stream
//! from 1. A client that reads too slowly is never waited for: when the
//! node's event ring overtook it, it gets a message of kind `missed` with
//! `{"missed": N}` and the stream continues from the oldest retained event
//! (the same contract as [`crate::Subscription`]). Comments are sent every
//! 15 s so that idle proxies keep the connection.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    response::sse::{Event as SseEvent, KeepAlive, Sse},
};
use futures::Stream;
use peergroup_protocol::{PeerName, RecordType};
use serde::Deserialize;

use super::{Api, ApiError, parse_event_kind};
use crate::node::{EventFilter, Subscription};

/// The query string of `/v1/events`.
#[derive(Debug, Deserialize)]
pub(super) struct Filter {
    /// Comma-separated event kinds; all kinds when absent.
    kind: Option<String>,
    /// A group's peer name.
    group: Option<String>,
    /// A record type (GUID text); only record changes of this type.
    record_type: Option<String>,
}

impl Filter {
    fn parse(self) -> Result<EventFilter, ApiError> {
        let mut filter = EventFilter::all();
        if let Some(kinds) = self.kind.filter(|k| !k.is_empty()) {
            filter.kinds = kinds
                .split(',')
                .map(|k| parse_event_kind(k.trim()))
                .collect::<Result<_, _>>()?;
        }
        if let Some(group) = self.group {
            filter.group = Some(
                PeerName::parse(&group)
                    .map_err(|e| ApiError::bad_request(format!("group {group:?}: {e}")))?,
            );
        }
        if let Some(record_type) = self.record_type {
            filter.record_type =
                Some(RecordType::parse(&record_type).map_err(|e| {
                    ApiError::bad_request(format!("record_type {record_type:?}: {e}"))
                })?);
        }
        Ok(filter)
    }
}

/// `GET /v1/events?kind=...&group=...&record_type=...`.
pub(super) async fn stream(
    State(api): State<Api>,
    query: Result<Query<Filter>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(filter) =
        query.map_err(|e| ApiError::bad_request(format!("bad event filter: {e}")))?;
    let subscription = api.handle.subscribe(filter.parse()?);
    let events = futures::stream::unfold((subscription, 0u64), next);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn next(
    (mut subscription, mut id): (Subscription, u64),
) -> Option<(Result<SseEvent, Infallible>, (Subscription, u64))> {
    let message = match subscription.recv().await? {
        Ok(event) => {
            let kind = format!("{:?}", event.kind());
            let data = serde_json::to_string(&event).unwrap_or_else(|e| {
                // Serializing our own event types cannot fail; if it ever
                // did, the client still learns that something happened.
                serde_json::json!({ "type": kind, "error": e.to_string() }).to_string()
            });
            SseEvent::default().event(kind).data(data)
        }
        Err(missed) => SseEvent::default()
            .event("missed")
            .data(serde_json::json!({ "missed": missed.0 }).to_string()),
    };
    id += 1;
    Some((Ok(message.id(id.to_string())), (subscription, id)))
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use tokio::sync::broadcast;

    use super::*;
    use crate::behaviour::Event;

    /// The SSE body a subscription gives once the node is gone.
    async fn body(subscription: Subscription) -> String {
        let events = futures::stream::unfold((subscription, 0u64), next);
        let response = Sse::new(events).into_response();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn failed(n: u32) -> Event {
        Event::StoreFailed {
            reason: format!("failure {n}"),
        }
    }

    /// (event name, data, id) of each message.
    fn messages(body: &str) -> Vec<(String, String, String)> {
        body.split("\n\n")
            .filter(|m| !m.trim().is_empty())
            .map(|m| {
                let field = |name: &str| {
                    m.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                };
                (field("event:"), field("data:"), field("id:"))
            })
            .collect()
    }

    #[tokio::test]
    async fn events_arrive_in_order_with_their_kind_and_json() {
        let (tx, rx) = broadcast::channel(16);
        for n in 0..3 {
            tx.send(failed(n)).unwrap();
        }
        drop(tx);
        let got = messages(&body(Subscription::new(rx, EventFilter::all())).await);
        assert_eq!(got.len(), 3, "{got:?}");
        for (n, (kind, data, id)) in got.iter().enumerate() {
            assert_eq!(kind, "StoreFailed");
            assert_eq!(id, &(n + 1).to_string());
            let json: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(json["type"], "StoreFailed");
            assert_eq!(json["reason"], format!("failure {n}"));
        }
    }

    #[tokio::test]
    async fn a_lagging_client_is_told_how_many_events_it_missed_and_goes_on() {
        // A ring of 2: the client reads nothing while 5 events pass.
        let (tx, rx) = broadcast::channel(2);
        for n in 0..5 {
            tx.send(failed(n)).unwrap();
        }
        drop(tx);
        let got = messages(&body(Subscription::new(rx, EventFilter::all())).await);
        let kinds: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(kinds, ["missed", "StoreFailed", "StoreFailed"], "{got:?}");
        let missed: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
        assert_eq!(missed["missed"], 3);
        // It goes on from the oldest retained event, in order.
        assert!(got[1].1.contains("failure 3") && got[2].1.contains("failure 4"));
    }

    #[test]
    fn a_bad_filter_is_a_clear_error() {
        let filter = Filter {
            kind: Some("RecordChanged,Nonsense".into()),
            group: None,
            record_type: None,
        };
        let e = filter.parse().unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("Nonsense"), "{}", e.message);
        let filter = Filter {
            kind: None,
            group: Some("not a peer name".into()),
            record_type: None,
        };
        assert_eq!(
            filter.parse().unwrap_err().status,
            axum::http::StatusCode::BAD_REQUEST
        );
        let filter = Filter {
            kind: Some("RecordChanged, MemberChanged".into()),
            group: None,
            record_type: Some("70656572-6772-6f75-7000-00000000c11d".into()),
        };
        let parsed = filter.parse().unwrap();
        assert_eq!(parsed.kinds.len(), 2);
        assert!(parsed.record_type.is_some());
    }
}

//! Group authentication on every connection between two nodes of a group
//! (Windows' "Group Connect", reference 3.3.4), over the request-response
//! protocol `/peergroup/auth/1`. The exchange and every decision about it
//! are the protocol crate's (`peergroup_protocol::auth` for the messages'
//! meaning, `peergroup_protocol::groups` for who is a neighbour and when a
//! peer is cut off); this module carries its requests and answers:
//!
//! 1. A → B `Hello { tag, nonce_a, time_a, anchored_a }`; B answers
//!    `Nonce { nonce_b, time_b, anchored_b }`, or `Refused`.
//! 2. A → B `Prove { tag, proof_a }`; B answers `Accepted { proof_b, key,
//!    chain, password }` (or `Renew { chain }` for an expired member whose
//!    renewal it holds, or `Refused`).
//!
//! Both nodes start an exchange when they see the other subscribe to the
//! group's topic; whichever completes first makes the peer an authenticated
//! neighbour on both sides. Until then the peer's gossip is ignored (its
//! gossipsub application score is below the graylist threshold,
//! `UNAUTHENTICATED_SCORE`) and nothing of the group is sent to it. A
//! failed exchange raises `Event::AuthenticationFailed` and closes the
//! connection unless the peer is a neighbour in another group; so does a
//! subscriber that has not authenticated within [`AUTH_GRACE`], and a
//! neighbour whose own gossip pushed its score below the graylist
//! threshold (`AuthRequests::check_scores`).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use libp2p::{
    PeerId, StreamProtocol, gossipsub,
    request_response::{self, Message, OutboundRequestId},
};
pub use peergroup_protocol::auth::AUTH_GRACE;
pub use peergroup_protocol::messages::auth::{MAX_MESSAGE_BYTES, Request, Response};
use peergroup_protocol::{Error, PeerName, auth::ExchangeId, groups::Now};
use rand::rngs::StdRng;

use crate::groups::Groups;

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/auth/1");

/// How long an exchange may wait for each answer.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The gossipsub application score of a peer subscribed to one of our
/// groups' topics that has not authenticated for it: far below the graylist
/// threshold, so that nothing of the group is exchanged with it.
pub(crate) const UNAUTHENTICATED_SCORE: f64 = -1000.0;

/// How often connected peers' gossipsub scores are looked at.
const SCORE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The libp2p side of authentication: which exchange each request carries,
/// and when gossip scores are next looked at.
#[derive(Debug, Default)]
pub(crate) struct AuthRequests {
    exchanges: HashMap<OutboundRequestId, ExchangeId>,
    next_score_check: Option<Instant>,
}

/// The auth request-response behaviour.
pub(crate) type Transport = request_response::cbor::Behaviour<Request, Response>;

impl AuthRequests {
    /// Sends the router's `request` for `exchange` to `peer`.
    pub(crate) fn send(
        &mut self,
        transport: &mut Transport,
        peer: &PeerId,
        exchange: ExchangeId,
        request: Request,
    ) {
        let id = transport.send_request(peer, request);
        self.exchanges.insert(id, exchange);
    }

    /// Hands a request, answer or failure of the auth protocol to the
    /// router; answers to requests go back at once.
    pub(crate) fn on_event(
        &mut self,
        event: request_response::Event<Request, Response>,
        transport: &mut Transport,
        groups: &mut Groups,
        now: Now,
        rng: &mut StdRng,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => {
                    let response =
                        groups.on_auth_request(&peer, &peer.to_bytes(), request, now, rng);
                    if transport.send_response(channel, response).is_err() {
                        tracing::debug!("authentication answer not sent: the peer is gone");
                    }
                }
                Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(exchange) = self.exchanges.remove(&request_id) {
                        groups.on_auth_response(exchange, &peer.to_bytes(), response, now, rng);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(exchange) = self.exchanges.remove(&request_id) {
                    groups.on_auth_failure(exchange, &error.to_string(), now);
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// When the next score check is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_score_check
    }

    /// The authenticated neighbours whose gossipsub score fell below the
    /// graylist threshold through their own messages (rejected gossip; a
    /// neighbour's application score is 0), with the score, once per
    /// [`SCORE_CHECK_INTERVAL`]. The caller cuts each off from every group
    /// (the connection closes). Other peers never get that far: a
    /// subscriber that does not authenticate, or a peer that publishes to a
    /// group's topic without having authenticated, is cut off at once.
    /// Gossipsub keeps a disconnected peer's score for an hour, so a
    /// neighbour that reconnects at once is cut off again.
    pub(crate) fn check_scores(
        &mut self,
        gossipsub: &gossipsub::Behaviour,
        groups: &Groups,
        now: Instant,
    ) -> Vec<(PeerId, f64, Vec<PeerName>)> {
        if self.next_score_check.is_some_and(|at| now < at) {
            return Vec::new();
        }
        self.next_score_check = now.checked_add(SCORE_CHECK_INTERVAL);
        let threshold = crate::gossip::score_thresholds().graylist_threshold;
        let neighbours: HashSet<PeerId> = groups
            .iter()
            .flat_map(|(_, s)| s.neighbors().copied())
            .collect();
        neighbours
            .into_iter()
            .filter_map(|peer| {
                let score = gossipsub.peer_score(&peer)?;
                (score < threshold).then(|| (peer, score, groups.groups_of(&peer)))
            })
            .collect()
    }
}

/// Why a graylisted neighbour is cut off.
pub(crate) fn graylisted_reason(score: f64) -> Error {
    let threshold = crate::gossip::score_thresholds().graylist_threshold;
    Error::NotAuthorized(format!(
        "graylisted: its gossip score {score:.0} is below {threshold}"
    ))
}

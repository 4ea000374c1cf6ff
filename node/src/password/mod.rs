//! Password admission over the network (`PeerGroupPasswordJoin`, reference
//! 3.3.4 "Password"), protocol `/peergroup/password/1`.
//!
//! A joiner holding a password invitation and the password connects to the
//! group's members (the addresses it was given, Kademlia providers, mDNS)
//! and asks one that can grant the group's password role, and holds the
//! password's secret, to check the password with a PAKE (SPAKE2 on
//! `Argon2id(password, salt)` with key confirmation, bound to both peer ids
//! and the joiner's identity). On success the member mints the joiner's
//! credential for the password role and hands over the group key wrapped
//! for the joiner; the joiner then joins and connects like any member. The
//! password never crosses the wire, and neither an eavesdropper nor a
//! responder that does not know the password can test guesses offline.
//!
//! Every decision (whom to ask, when to give up, whom to slow down: each
//! exchange a peer starts is one online guess, answered after
//! [`FIRST_BACKOFF`] doubling up to [`MAX_BACKOFF`]) is the protocol
//! crate's sans-I/O machine (`peergroup_protocol::admission`), whose
//! deadlines run on the monotonic clock. This module carries its requests
//! and answers (`PasswordRequests`).
//!
//! Who can check: the creator (which set the password), members that joined
//! with it, and members that can grant the password role, which receive the
//! secret wrapped for them when they authenticate with a holder (see
//! `auth`). Members that cannot grant the role never hold it.

use std::{collections::HashMap, time::Instant};

use libp2p::{
    PeerId, StreamProtocol,
    request_response::{self, Message, OutboundRequestId},
};
pub(crate) use peergroup_protocol::admission::PASSWORD_TIMEOUT;
pub use peergroup_protocol::admission::{FIRST_BACKOFF, MAX_BACKOFF};
pub use peergroup_protocol::messages::password::{MAX_MESSAGE_BYTES, Request, Response};
use peergroup_protocol::{
    PeerName, Timestamp,
    admission::{Admission, tag_of},
};
use rand::rngs::StdRng;

use crate::groups::Groups;

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/password/1");

/// The password request-response behaviour.
pub(crate) type Transport = request_response::cbor::Behaviour<Request, Response>;

/// Which join each request this node sent belongs to.
#[derive(Debug, Default)]
pub(crate) struct PasswordRequests {
    requests: HashMap<OutboundRequestId, (PeerName, PeerId)>,
}

impl PasswordRequests {
    /// Sends the machine's `request` for `group`'s join to `peer`.
    pub(crate) fn send(
        &mut self,
        transport: &mut Transport,
        group: PeerName,
        peer: PeerId,
        request: Request,
    ) {
        let id = transport.send_request(&peer, request);
        self.requests.insert(id, (group, peer));
    }

    /// Hands a request, answer or failure of the password protocol to the
    /// admission machine; requests are answered at once.
    #[allow(clippy::too_many_arguments)] // the borrowed parts of the behaviour it needs
    pub(crate) fn on_event(
        &mut self,
        event: request_response::Event<Request, Response>,
        transport: &mut Transport,
        admission: &mut Admission<PeerId>,
        groups: &Groups,
        now: Instant,
        peer_time: Timestamp,
        rng: &mut StdRng,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => {
                    let group = groups
                        .by_tag(tag_of(&request))
                        .and_then(|name| groups.get(name).ok())
                        .map(|session| (session.state(), session.identity()));
                    let response = admission.answer(
                        peer,
                        &peer.to_bytes(),
                        request,
                        group,
                        peer_time,
                        now,
                        rng,
                    );
                    if transport.send_response(channel, response).is_err() {
                        tracing::debug!("password answer not sent: the peer is gone");
                    }
                }
                Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((group, peer)) = self.requests.remove(&request_id) {
                        admission.on_response(&group, &peer, response, peer_time, now, rng);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((group, peer)) = self.requests.remove(&request_id) {
                    tracing::debug!(%group, %peer, %error, "password exchange failed");
                    admission.on_failure(&group, &peer, error.to_string(), now, rng);
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }
}

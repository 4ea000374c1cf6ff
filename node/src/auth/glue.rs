//! The behaviour's side of group authentication: starting exchanges,
//! answering them, and what follows (neighbours, keys, scores, failures).

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use libp2p::{
    PeerId,
    request_response::{self, Message, OutboundRequestId, ResponseChannel},
    swarm::{CloseConnection, ToSwarm},
};
use peergroup_protocol::{
    AuthProof, AuthRole, CredentialChain, Error, GROUP_TAG_LEN, Membership, PeerName, RecordId,
    Timestamp, Transcript, membership_chain, session::Input, unwrap_key, unwrap_password_secret,
    wrap_key, wrap_password_secret,
};
use rand::RngExt as _;
use serde_bytes::ByteBuf;

use super::{AUTH_GRACE, Request, Response};
use crate::behaviour::{Behaviour, Event};

/// The gossipsub application score of a peer subscribed to one of our
/// groups' topics that has not authenticated for it: far below the graylist
/// threshold, so that nothing of the group is exchanged with it.
pub(crate) const UNAUTHENTICATED_SCORE: f64 = -1000.0;

/// How often connected peers' gossipsub scores are looked at.
const SCORE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// An exchange this node started, by (peer, group).
#[derive(Debug, Clone)]
struct Started {
    nonce: [u8; 32],
    /// The responder's nonce, once it answered step 1.
    responder_nonce: Option<[u8; 32]>,
    /// The request whose answer this exchange waits for: an answer to an
    /// older request (of an exchange this one replaced) is ignored.
    request: OutboundRequestId,
    /// Our wall clock when we sent step 1 (peer time samples).
    sent_at: Timestamp,
}

/// An authenticated neighbour of a group.
#[derive(Debug, Clone)]
pub(crate) struct Authed {
    /// When its credential expires: it stops being a neighbour then.
    pub(crate) not_after: Timestamp,
}

/// Group authentication state. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Auth {
    started: HashMap<(PeerId, PeerName), Started>,
    requests: HashMap<OutboundRequestId, (PeerId, PeerName)>,
    /// Step 1s answered as responder: (initiator nonce, our nonce).
    answered: HashMap<(PeerId, PeerName), ([u8; 32], [u8; 32])>,
    /// Authenticated neighbours, by (group, peer).
    members: HashMap<(PeerName, PeerId), Authed>,
    /// Subscribers not authenticated yet, since when.
    pending: HashMap<(PeerName, PeerId), Timestamp>,
    /// Neighbours that left a group's topic, since when: their messages
    /// still in flight are ignored for [`AUTH_GRACE`], not held against them
    /// (gossipsub sends subscription changes ahead of queued messages).
    departed: HashMap<(PeerName, PeerId), Timestamp>,
    /// When connected peers' gossipsub scores are next looked at.
    next_score_check: Timestamp,
    /// Clock samples (offset ms, anchored) of peers whose exchange is under
    /// way; each counts for peer time once the peer authenticates.
    samples: HashMap<PeerId, (i64, bool)>,
}

impl Auth {
    /// Whether `peer` authenticated as a member of `group`.
    pub(crate) fn is_member(&self, group: &PeerName, peer: &PeerId) -> bool {
        self.members.contains_key(&(group.clone(), *peer))
    }

    /// Whether `peer` subscribed to `group` and its exchange is under way,
    /// or it was a neighbour that left the group's topic a moment ago.
    pub(crate) fn is_pending(&self, group: &PeerName, peer: &PeerId) -> bool {
        let key = (group.clone(), *peer);
        self.pending.contains_key(&key) || self.departed.contains_key(&key)
    }

    fn is_member_anywhere(&self, peer: &PeerId) -> bool {
        self.members.keys().any(|(_, p)| p == peer)
    }

    /// Peer time stepped by `delta_ms`: the grace periods and the next
    /// score check move with it.
    pub(crate) fn shift_deadlines(&mut self, delta_ms: i64) {
        for at in self.pending.values_mut().chain(self.departed.values_mut()) {
            *at = at.saturating_offset(delta_ms);
        }
        self.next_score_check = self.next_score_check.saturating_offset(delta_ms);
    }

    fn is_pending_anywhere(&self, peer: &PeerId) -> bool {
        self.pending.keys().any(|(_, p)| p == peer)
    }
}

impl Behaviour {
    /// A peer subscribed to `group`'s topic: authenticate it (it is ignored
    /// meanwhile).
    pub(crate) fn peer_subscribed(&mut self, group: &PeerName, peer: PeerId) {
        if !self.groups.get(group).is_ok_and(|s| s.is_online()) {
            return;
        }
        if self.auth.is_member(group, &peer) {
            self.handle(group, Input::NeighborUp(peer));
            return;
        }
        let now = self.now();
        self.auth.departed.remove(&(group.clone(), peer));
        self.auth
            .pending
            .entry((group.clone(), peer))
            .or_insert(now);
        self.refresh_score(&peer);
        self.start_auth(group, peer);
    }

    /// A peer left `group`'s topic.
    pub(crate) fn peer_unsubscribed(&mut self, group: &PeerName, peer: PeerId) {
        let key = (group.clone(), peer);
        self.auth.pending.remove(&key);
        if self.auth.members.remove(&key).is_some() {
            let now = self.now();
            self.auth.departed.insert(key, now);
        }
        self.auth.started.remove(&(peer, group.clone()));
        self.auth
            .requests
            .retain(|_, (p, g)| !(*p == peer && g == group));
        if !self.auth.is_member_anywhere(&peer) {
            self.peer_clock.forget(&peer);
        }
        self.refresh_score(&peer);
        self.handle(group, Input::NeighborDown(peer));
    }

    /// Forgets everything about `peer` (its last connection closed).
    pub(crate) fn auth_peer_gone(&mut self, peer: &PeerId) {
        self.auth.samples.remove(peer);
        self.peer_clock.forget(peer);
        self.auth.pending.retain(|(_, p), _| p != peer);
        self.auth.departed.retain(|(_, p), _| p != peer);
        self.auth.members.retain(|(_, p), _| p != peer);
        self.auth.started.retain(|(p, _), _| p != peer);
        self.auth.answered.retain(|(p, _), _| p != peer);
        self.auth.requests.retain(|_, (p, _)| p != peer);
    }

    /// Forgets a group's authentications (it went offline).
    pub(crate) fn auth_group_closed(&mut self, group: &PeerName) {
        let peers: HashSet<PeerId> = self
            .auth
            .members
            .keys()
            .chain(self.auth.pending.keys())
            .filter(|(g, _)| g == group)
            .map(|(_, p)| *p)
            .collect();
        self.auth.pending.retain(|(g, _), _| g != group);
        self.auth.members.retain(|(g, _), _| g != group);
        self.auth.started.retain(|(_, g), _| g != group);
        self.auth.requests.retain(|_, (_, g)| g != group);
        for peer in peers {
            self.refresh_score(&peer);
        }
    }

    /// Sets `peer`'s gossipsub application score: graylisted while it is
    /// subscribed to one of our groups without having authenticated for any,
    /// neutral otherwise.
    fn refresh_score(&mut self, peer: &PeerId) {
        let score = if self.auth.is_pending_anywhere(peer) && !self.auth.is_member_anywhere(peer) {
            UNAUTHENTICATED_SCORE
        } else {
            0.0
        };
        self.inner.gossipsub.set_application_score(peer, score);
    }

    fn start_auth(&mut self, group: &PeerName, peer: PeerId) {
        let key = (peer, group.clone());
        if self.auth.started.contains_key(&key) {
            return;
        }
        let nonce: [u8; 32] = self.rng.random();
        let tag = peergroup_protocol::group_tag(group);
        let sent_at = self.wall_now();
        let (time, anchored) = (self.now(), self.clock_anchored());
        let id = self.inner.auth.send_request(
            &peer,
            Request::Hello {
                tag,
                nonce,
                time,
                anchored,
            },
        );
        self.auth.requests.insert(id, key.clone());
        self.auth.started.insert(
            key,
            Started {
                nonce,
                responder_nonce: None,
                request: id,
                sent_at,
            },
        );
    }

    pub(crate) fn on_auth_event(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => self.answer_auth(peer, request, channel),
                Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((peer, group)) = self.current_request(request_id) {
                        self.on_auth_response(peer, group, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((peer, group)) = self.current_request(request_id) {
                    self.auth_failed(
                        &group,
                        peer,
                        Error::ConnectionFailed(format!(
                            "the authentication exchange failed: {error}"
                        )),
                    );
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// The exchange `request` belongs to, if it is the one that exchange
    /// waits for (not an answer to a request of an exchange since replaced).
    fn current_request(&mut self, request: OutboundRequestId) -> Option<(PeerId, PeerName)> {
        let (peer, group) = self.auth.requests.remove(&request)?;
        self.auth
            .started
            .get(&(peer, group.clone()))
            .is_some_and(|s| s.request == request)
            .then_some((peer, group))
    }

    /// The group whose tag is `tag`, if this node has it online.
    pub(crate) fn group_by_tag(&self, tag: &[u8; GROUP_TAG_LEN]) -> Option<PeerName> {
        self.groups
            .iter()
            .find(|(name, s)| s.is_online() && peergroup_protocol::group_tag(name) == *tag)
            .map(|(name, _)| name.clone())
    }

    fn respond_auth(&mut self, channel: ResponseChannel<Response>, response: Response) {
        if self.inner.auth.send_response(channel, response).is_err() {
            tracing::debug!("authentication answer not sent: the peer is gone");
        }
    }

    fn answer_auth(&mut self, peer: PeerId, request: Request, channel: ResponseChannel<Response>) {
        match request {
            Request::Hello {
                tag,
                nonce,
                time,
                anchored,
            } => {
                let Some(group) = self.group_by_tag(&tag) else {
                    self.respond_auth(
                        channel,
                        Response::Refused {
                            reason: "no such group here".into(),
                        },
                    );
                    return;
                };
                let ours: [u8; 32] = self.rng.random();
                let received = self.wall_now();
                let sample = peergroup_protocol::sample_one_way(time, received);
                self.auth.samples.insert(peer, (sample, anchored));
                self.auth.answered.insert((peer, group), (nonce, ours));
                let (time, anchored) = (self.now(), self.clock_anchored());
                self.respond_auth(
                    channel,
                    Response::Nonce {
                        nonce: ours,
                        time,
                        anchored,
                    },
                );
            }
            Request::Prove { tag, proof } => {
                let Some(group) = self.group_by_tag(&tag) else {
                    self.respond_auth(
                        channel,
                        Response::Refused {
                            reason: "no such group here".into(),
                        },
                    );
                    return;
                };
                let Some((theirs, ours)) = self.auth.answered.remove(&(peer, group.clone())) else {
                    self.respond_auth(
                        channel,
                        Response::Refused {
                            reason: "no exchange was started".into(),
                        },
                    );
                    return;
                };
                let now = self.now();
                let (initiator, responder) = (peer.to_bytes(), self.local_peer.to_bytes());
                let answer = self.groups.get(&group).and_then(|session| {
                    let transcript = Transcript {
                        group: &group,
                        initiator: &initiator,
                        responder: &responder,
                        initiator_nonce: theirs,
                        responder_nonce: ours,
                    };
                    let (info, membership) = proof.verify(
                        session.state().properties(),
                        AuthRole::Initiator,
                        &transcript,
                        now,
                    )?;
                    let own = AuthProof::new(
                        session.identity(),
                        &session.state().chain,
                        AuthRole::Responder,
                        &transcript,
                    )?;
                    Ok((info, membership, own))
                });
                match answer {
                    Ok((info, membership, own)) => {
                        let key = self.wrap_current_key(&group, &info.key);
                        let chain = self.newer_chain(&group, &membership);
                        let password = self.wrap_password_for(&group, &membership, &info.key);
                        self.authenticated(&group, peer, &membership);
                        self.respond_auth(
                            channel,
                            Response::Accepted {
                                proof: own,
                                key,
                                chain,
                                password,
                            },
                        );
                    }
                    Err(e) => {
                        // An expired member that proved who it is gets its
                        // renewed credential, if the group database holds
                        // one: it could not receive it any other way.
                        let renewal = self.renewal_for(
                            &group,
                            &proof,
                            AuthRole::Initiator,
                            &Transcript {
                                group: &group,
                                initiator: &initiator,
                                responder: &responder,
                                initiator_nonce: theirs,
                                responder_nonce: ours,
                            },
                            now,
                        );
                        if let Some(chain) = renewal {
                            tracing::info!(%group, %peer, "handed an expired member its renewed credential");
                            self.respond_auth(channel, Response::Renew { chain });
                            return;
                        }
                        // The peer learns the kind of failure only: the
                        // details name the group, which the peer may not
                        // know (the exchange names it by its tag).
                        self.respond_auth(
                            channel,
                            Response::Refused {
                                reason: e.name().into(),
                            },
                        );
                        self.auth_failed(&group, peer, e);
                    }
                }
            }
        }
    }

    fn on_auth_response(&mut self, peer: PeerId, group: PeerName, response: Response) {
        let key = (peer, group.clone());
        match response {
            Response::Nonce {
                nonce,
                time,
                anchored,
            } => {
                let received = self.wall_now();
                let Some(started) = self.auth.started.get_mut(&key) else {
                    return;
                };
                // The initiator's sample is the better one (it knows the
                // round trip): it replaces the responder-side one.
                let sample = peergroup_protocol::sample_round_trip(started.sent_at, time, received);
                self.auth.samples.insert(peer, (sample, anchored));
                started.responder_nonce = Some(nonce);
                let ours = started.nonce;
                let (initiator, responder) = (self.local_peer.to_bytes(), peer.to_bytes());
                let proof = self.groups.get(&group).and_then(|session| {
                    AuthProof::new(
                        session.identity(),
                        &session.state().chain,
                        AuthRole::Initiator,
                        &Transcript {
                            group: &group,
                            initiator: &initiator,
                            responder: &responder,
                            initiator_nonce: ours,
                            responder_nonce: nonce,
                        },
                    )
                });
                match proof {
                    Ok(proof) => {
                        let tag = peergroup_protocol::group_tag(&group);
                        let id = self
                            .inner
                            .auth
                            .send_request(&peer, Request::Prove { tag, proof });
                        self.auth.requests.insert(id, key.clone());
                        if let Some(started) = self.auth.started.get_mut(&key) {
                            started.request = id;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%group, error = %e, "cannot prove our membership");
                        self.auth.started.remove(&key);
                    }
                }
            }
            Response::Accepted {
                proof,
                key: wrapped,
                chain,
                password,
            } => {
                let Some(started) = self.auth.started.remove(&key) else {
                    return;
                };
                let Some(theirs) = started.responder_nonce else {
                    return;
                };
                let now = self.now();
                let (initiator, responder) = (self.local_peer.to_bytes(), peer.to_bytes());
                let transcript = Transcript {
                    group: &group,
                    initiator: &initiator,
                    responder: &responder,
                    initiator_nonce: started.nonce,
                    responder_nonce: theirs,
                };
                let verified = self.groups.get(&group).and_then(|session| {
                    proof.verify(
                        session.state().properties(),
                        AuthRole::Responder,
                        &transcript,
                        now,
                    )
                });
                match verified {
                    Ok((_, membership)) => {
                        match self.adopt_from_neighbour(
                            &group,
                            &membership,
                            wrapped,
                            chain,
                            password,
                        ) {
                            Ok(()) => self.authenticated(&group, peer, &membership),
                            Err(e) => self.auth_failed(&group, peer, e),
                        }
                    }
                    // The responder's credential expired and we hold its
                    // renewal: its own exchange with us hands it over
                    // (`Renew`), so it is left pending, not cut off.
                    Err(_)
                        if self
                            .renewal_for(&group, &proof, AuthRole::Responder, &transcript, now)
                            .is_some() =>
                    {
                        tracing::debug!(%group, %peer, "an expired neighbour; its renewal is on its way");
                    }
                    Err(e) => self.auth_failed(&group, peer, e),
                }
            }
            Response::Renew { chain } => {
                self.auth.started.remove(&key);
                let adopted = CredentialChain::from_bytes(&chain)
                    .ok()
                    .zip(self.groups.get_mut(&group).ok())
                    .is_some_and(|(chain, session)| session.adopt_chain(chain));
                if adopted {
                    tracing::info!(%group, %peer, "adopted a renewed credential; authenticating again");
                    self.drive(&group, false);
                    self.start_auth(&group, peer);
                } else {
                    self.auth_failed(
                        &group,
                        peer,
                        Error::InvalidTimePeriod(
                            "our credential expired and the renewal offered is not ours".into(),
                        ),
                    );
                }
            }
            Response::Refused { reason } => {
                self.auth.started.remove(&key);
                self.auth_failed(&group, peer, Error::NotAuthorized(reason));
            }
        }
    }

    /// The group's current key wrapped for `recipient`, if this node has one.
    pub(crate) fn wrap_current_key(
        &mut self,
        group: &PeerName,
        recipient: &peergroup_protocol::PublicKey,
    ) -> Option<peergroup_protocol::WrappedKey> {
        let key = self.groups.get(group).ok()?.state().current_key()?.clone();
        let ephemeral: [u8; 32] = self.rng.random();
        wrap_key(&key, recipient, ephemeral, group.as_str().as_bytes())
            .map_err(|e| tracing::warn!(%group, error = %e, "cannot wrap the group key"))
            .ok()
    }

    /// The group password's secret wrapped for the member proved by
    /// `membership` (identity key `recipient`), if this node holds it and
    /// that member's role can grant the password role.
    fn wrap_password_for(
        &mut self,
        group: &PeerName,
        membership: &Membership,
        recipient: &peergroup_protocol::PublicKey,
    ) -> Option<peergroup_protocol::WrappedKey> {
        let state = self.groups.get(group).ok()?.state();
        let policy = state.properties().password.as_ref()?;
        if !membership.role.can_grant(policy.role) {
            return None;
        }
        let secret = state.password_secret()?.clone();
        let ephemeral: [u8; 32] = self.rng.random();
        wrap_password_secret(&secret, group, recipient, ephemeral)
            .map_err(|e| tracing::warn!(%group, error = %e, "cannot wrap the password secret"))
            .ok()
    }

    /// The renewed credential the group database holds for the initiator of
    /// an exchange whose proof failed only because its credential expired.
    fn renewal_for(
        &self,
        group: &PeerName,
        proof: &AuthProof,
        role: AuthRole,
        transcript: &Transcript<'_>,
        now: Timestamp,
    ) -> Option<ByteBuf> {
        let session = self.groups.get(group).ok()?;
        let (_, membership) = proof
            .verify_identity(session.state().properties(), role, transcript)
            .ok()?;
        if membership.check_time(now).is_ok() {
            return None;
        }
        let bytes = self.newer_chain(group, &membership)?;
        let renewed = CredentialChain::from_bytes(&bytes)
            .ok()?
            .verify(session.state().properties())
            .ok()?;
        renewed.check_time(now).ok().map(|()| bytes)
    }

    /// The credential chain the group database holds for the member proved
    /// by `membership`, when it is newer than the one it presented.
    fn newer_chain(&self, group: &PeerName, membership: &Membership) -> Option<ByteBuf> {
        let stored = self
            .work
            .current(group, &RecordId::membership(&membership.subject))
            .ok()??;
        if stored.record().is_deleted() {
            return None;
        }
        let chain = membership_chain(stored.record()).ok()?;
        let props = self.groups.get(group).ok()?.state().properties().clone();
        let newer = chain.verify(&props).ok()?;
        (newer.subject == membership.subject && newer.not_before > membership.not_before)
            .then(|| chain.to_bytes().ok().map(ByteBuf::from))
            .flatten()
    }

    /// What an accepting neighbour (proved as `responder`) handed over: the
    /// group key, a newer credential for us, the password's secret.
    /// `NotAuthorized` for a key the creator did not commit to (the
    /// neighbour substitutes its own): the caller cuts it off.
    fn adopt_from_neighbour(
        &mut self,
        group: &PeerName,
        responder: &Membership,
        wrapped: Option<peergroup_protocol::WrappedKey>,
        chain: Option<ByteBuf>,
        password: Option<peergroup_protocol::WrappedKey>,
    ) -> Result<(), Error> {
        let session = self.groups.get_mut(group)?;
        if let Some(wrapped) = wrapped {
            let key = unwrap_key(
                &wrapped,
                session.identity().keypair(),
                group.as_str().as_bytes(),
            )?;
            session.learn_key(key)?;
        }
        if let Some(bytes) = chain
            && let Ok(chain) = CredentialChain::from_bytes(&bytes)
            && session.adopt_chain(chain)
        {
            tracing::info!(%group, "adopted a newer credential from the group database");
        }
        // Whether to keep it is the session's rule (`offer_password`).
        if let Some(wrapped) = password
            && let Some(policy) = session.state().properties().password.clone()
        {
            match unwrap_password_secret(&wrapped, group, &policy, session.identity().keypair()) {
                Ok(secret) => {
                    if session.offer_password(secret, responder) {
                        tracing::info!(%group, "received the group password's secret: this member can admit password joiners");
                    }
                }
                Err(e) => {
                    tracing::warn!(%group, error = %e, "a neighbour's password secret does not open")
                }
            }
        }
        self.drive(group, false);
        Ok(())
    }

    /// `peer` proved its membership of `group`: a neighbour now.
    fn authenticated(&mut self, group: &PeerName, peer: PeerId, membership: &Membership) {
        let key = (group.clone(), peer);
        self.auth.pending.remove(&key);
        let new = self
            .auth
            .members
            .insert(
                key,
                Authed {
                    not_after: membership.not_after,
                },
            )
            .is_none();
        self.refresh_score(&peer);
        if let Ok(session) = self.groups.get_mut(group) {
            session.neighbor_member(peer, membership.subject.clone());
        }
        self.remember_member(group, peer);
        if let Some((sample, anchored)) = self.auth.samples.get(&peer).copied() {
            self.sample_clock(peer, sample, anchored);
        }
        if new {
            tracing::debug!(%group, %peer, member = %membership.subject, "neighbour authenticated");
            self.handle(group, Input::NeighborUp(peer));
        }
    }

    /// An exchange with `peer` for `group` failed: it is no neighbour; the
    /// application hears why; the connection closes unless the peer is a
    /// member of another of our groups.
    pub(crate) fn auth_failed(&mut self, group: &PeerName, peer: PeerId, reason: Error) {
        self.metrics.authentication_failed();
        tracing::warn!(%group, %peer, %reason, "group authentication failed");
        self.stats.authentication_failures = self.stats.authentication_failures.saturating_add(1);
        let key = (group.clone(), peer);
        self.auth.started.remove(&(peer, group.clone()));
        let was_member = self.auth.members.remove(&key).is_some();
        self.auth.pending.remove(&key);
        if was_member {
            self.handle(group, Input::NeighborDown(peer));
        }
        // Keep it graylisted until it leaves, unless it is a neighbour in
        // another of our groups (its score there stays its own); its clock
        // no longer counts for peer time.
        if !self.auth.is_member_anywhere(&peer) {
            self.peer_clock.forget(&peer);
            self.inner
                .gossipsub
                .set_application_score(&peer, UNAUTHENTICATED_SCORE);
        }
        self.events.push_back(Event::AuthenticationFailed {
            group: group.clone(),
            peer,
            reason,
        });
        if !self.auth.is_member_anywhere(&peer) {
            self.actions.push_back(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::All,
            });
        }
        self.wake();
    }

    /// Subscribers that did not authenticate in time, and neighbours whose
    /// credential expired; called with the behaviour's timers.
    pub(crate) fn check_auth_deadlines(&mut self, now: Timestamp) {
        if now >= self.auth.next_score_check {
            self.auth.next_score_check = now.saturating_add(SCORE_CHECK_INTERVAL);
            self.disconnect_graylisted();
        }
        let grace = AUTH_GRACE;
        self.auth
            .departed
            .retain(|_, since| now < since.saturating_add(grace));
        let late: Vec<(PeerName, PeerId)> = self
            .auth
            .pending
            .iter()
            .filter(|(_, since)| now >= since.saturating_add(grace))
            .map(|(k, _)| k.clone())
            .collect();
        for (group, peer) in late {
            self.auth_failed(
                &group,
                peer,
                Error::NotAuthorized(format!(
                    "subscribed to the group without authenticating within {grace:?}"
                )),
            );
        }
        let expired: Vec<(PeerName, PeerId)> = self
            .auth
            .members
            .iter()
            .filter(|(_, a)| now >= a.not_after)
            .map(|(k, _)| k.clone())
            .collect();
        for (group, peer) in expired {
            self.auth.members.remove(&(group.clone(), peer));
            self.handle(&group, Input::NeighborDown(peer));
            self.events.push_back(Event::AuthenticationFailed {
                group: group.clone(),
                peer,
                reason: Error::InvalidTimePeriod("the neighbour's credential expired".into()),
            });
            // A renewed credential authenticates again.
            self.auth.pending.insert((group.clone(), peer), now);
            self.refresh_score(&peer);
            self.start_auth(&group, peer);
        }
    }

    /// Disconnects every authenticated neighbour whose gossipsub score fell
    /// below the graylist threshold through its own messages (rejected
    /// gossip; see `gossip::topic_score_params`; a neighbour's application
    /// score is 0): it stops being a neighbour of every group and the
    /// connection closes. Other peers never get that far: a subscriber that
    /// does not authenticate, or a peer that publishes to a group's topic
    /// without having authenticated, is disconnected at once. Gossipsub
    /// keeps a disconnected peer's score for an hour, so a neighbour that
    /// reconnects at once is disconnected again.
    fn disconnect_graylisted(&mut self) {
        let graylist = crate::gossip::score_thresholds().graylist_threshold;
        let neighbours: HashSet<PeerId> = self.auth.members.keys().map(|(_, p)| *p).collect();
        let graylisted: Vec<(PeerId, f64)> = neighbours
            .iter()
            .filter_map(|peer| {
                let score = self.inner.gossipsub.peer_score(peer)?;
                (score < graylist).then_some((*peer, score))
            })
            .collect();
        for (peer, score) in graylisted {
            tracing::warn!(%peer, score, "graylisted by its gossip: disconnecting");
            self.stats.graylisted = self.stats.graylisted.saturating_add(1);
            let groups: Vec<PeerName> = self
                .auth
                .members
                .keys()
                .filter(|(_, p)| *p == peer)
                .map(|(g, _)| g.clone())
                .collect();
            for group in &groups {
                self.auth_failed(
                    group,
                    peer,
                    Error::NotAuthorized(format!(
                        "graylisted: its gossip score {score:.0} is below {graylist}"
                    )),
                );
            }
        }
    }
}

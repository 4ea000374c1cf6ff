//! The router's side of group authentication (see [`crate::auth`]): both
//! roles of the exchange, what an accepted exchange hands over, and the
//! failures that cut a peer off.

use rand_core::CryptoRng;
use serde_bytes::ByteBuf;

use super::{Groups, Now, Output};
use crate::{
    auth::{AuthProof, AuthRole, GROUP_TAG_LEN, Transcript, group_tag},
    credential::{CredentialChain, Membership},
    error::Error,
    messages::auth::{Request, Response},
    password::{unwrap_password_secret, wrap_password_secret},
    peer_name::PeerName,
    peer_time::{sample_one_way, sample_round_trip},
    seal::{WrappedKey, unwrap_key},
    session::Input,
    time::Timestamp,
};

fn random32(rng: &mut impl CryptoRng) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    bytes
}

impl<P, M> Groups<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// `peer` subscribed to `group`'s topic: it is authenticated (and
    /// graylisted until then); an authenticated neighbour that subscribes
    /// again is one already.
    pub fn subscribed(&mut self, group: &PeerName, peer: &P, now: Now, rng: &mut impl CryptoRng) {
        self.observe(now);
        if !self.sessions.get(group).is_some_and(|s| s.is_online()) {
            return;
        }
        if self.is_neighbor(group, peer) {
            return;
        }
        self.exchanges.subscribed(group, peer, now.instant);
        self.refresh_score(peer);
        self.start(group, peer, now, rng);
    }

    /// `peer` left `group`'s topic: it is no neighbour there any more.
    pub fn unsubscribed(&mut self, group: &PeerName, peer: &P, now: Now) {
        self.observe(now);
        let was_neighbor = self.is_neighbor(group, peer);
        self.exchanges
            .unsubscribed(group, peer, was_neighbor, now.instant);
        self.handle(group, Input::NeighborDown(peer.clone()), now);
        if !self.is_neighbor_anywhere(peer) {
            self.clock.forget(peer);
        }
        self.refresh_score(peer);
    }

    /// Starts an exchange with `peer` for `group` (step 1), unless one is
    /// under way.
    fn start(&mut self, group: &PeerName, peer: &P, now: Now, rng: &mut impl CryptoRng) {
        if self.exchanges.is_started(group, peer) {
            return;
        }
        let nonce = random32(rng);
        let time = self.peer_time(now.wall);
        let anchored = self.clock_anchored();
        let exchange = self.exchanges.start(group, peer, nonce, now.wall);
        self.outputs.push_back(Output::AuthRequest {
            exchange,
            peer: peer.clone(),
            request: Request::Hello {
                tag: group_tag(group),
                nonce,
                time,
                anchored,
            },
        });
    }

    /// `peer` (whose peer id is `remote`, as bytes) asks: the answer to send
    /// back. A group this node does not have online is refused without
    /// saying more (the request names it by its tag only).
    pub fn on_auth_request(
        &mut self,
        peer: &P,
        remote: &[u8],
        request: Request,
        now: Now,
        rng: &mut impl CryptoRng,
    ) -> Response {
        self.observe(now);
        match request {
            Request::Hello {
                tag,
                nonce,
                time,
                anchored,
            } => {
                let Some(group) = self.by_tag(&tag).cloned() else {
                    return refused("no such group here");
                };
                let ours = random32(rng);
                self.exchanges
                    .sample(peer, sample_one_way(time, now.wall), anchored);
                self.exchanges.answered(&group, peer, nonce, ours);
                Response::Nonce {
                    nonce: ours,
                    time: self.peer_time(now.wall),
                    anchored: self.clock_anchored(),
                }
            }
            Request::Prove { tag, proof } => self.prove(peer, remote, &tag, &proof, now, rng),
        }
    }

    /// Step 2 as responder: checks the initiator's proof and answers.
    fn prove(
        &mut self,
        peer: &P,
        remote: &[u8],
        tag: &[u8; GROUP_TAG_LEN],
        proof: &AuthProof,
        now: Now,
        rng: &mut impl CryptoRng,
    ) -> Response {
        let Some(group) = self.by_tag(tag).cloned() else {
            return refused("no such group here");
        };
        let Some((theirs, ours)) = self.exchanges.take_answered(&group, peer) else {
            return refused("no exchange was started");
        };
        let peer_now = self.peer_time(now.wall);
        let local = self.local.clone();
        let transcript = Transcript {
            group: &group,
            initiator: remote,
            responder: &local,
            initiator_nonce: theirs,
            responder_nonce: ours,
        };
        let answer = self.get(&group).and_then(|session| {
            let (info, membership) = proof.verify(
                session.state().properties(),
                AuthRole::Initiator,
                &transcript,
                peer_now,
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
                let key = self.wrap_key_for(&group, &info.key, rng);
                let chain = self
                    .get(&group)
                    .ok()
                    .and_then(|s| s.newer_chain(&membership))
                    .and_then(|c| c.to_bytes().ok())
                    .map(ByteBuf::from);
                let password = self.wrap_password_for(&group, &membership, &info.key, rng);
                self.authenticated(&group, peer, &membership, now);
                Response::Accepted {
                    proof: own,
                    key,
                    chain,
                    password,
                }
            }
            Err(e) => {
                // An expired member that proved who it is gets its renewed
                // credential, if the group database holds one: it could not
                // receive it any other way.
                if let Some(chain) =
                    self.renewal_for(&group, proof, AuthRole::Initiator, &transcript, peer_now)
                {
                    return Response::Renew { chain };
                }
                // The peer learns the kind of failure only: the details
                // name the group, which the peer may not know.
                let response = refused(e.name());
                self.cut_off(&group, peer, e, now);
                response
            }
        }
    }

    /// The answer to exchange `exchange` from `peer` (peer id bytes
    /// `remote`). An answer to an exchange since replaced or ended is
    /// ignored.
    pub fn on_auth_response(
        &mut self,
        exchange: crate::auth::ExchangeId,
        remote: &[u8],
        response: Response,
        now: Now,
        rng: &mut impl CryptoRng,
    ) {
        self.observe(now);
        let Some((peer, group)) = self.exchanges.answer_to(exchange) else {
            return;
        };
        match response {
            Response::Nonce {
                nonce,
                time,
                anchored,
            } => self.nonce_received(&group, &peer, remote, nonce, time, anchored, now),
            Response::Accepted {
                proof,
                key,
                chain,
                password,
            } => {
                let Some((ours, theirs)) = self.exchanges.finish(&group, &peer) else {
                    return;
                };
                let peer_now = self.peer_time(now.wall);
                let local = self.local.clone();
                let transcript = Transcript {
                    group: &group,
                    initiator: &local,
                    responder: remote,
                    initiator_nonce: ours,
                    responder_nonce: theirs,
                };
                let verified = self.get(&group).and_then(|session| {
                    proof.verify(
                        session.state().properties(),
                        AuthRole::Responder,
                        &transcript,
                        peer_now,
                    )
                });
                match verified {
                    Ok((_, membership)) => {
                        match self.adopt(&group, &membership, key, chain, password) {
                            Ok(()) => self.authenticated(&group, &peer, &membership, now),
                            Err(e) => self.cut_off(&group, &peer, e, now),
                        }
                    }
                    // The responder's credential expired and we hold its
                    // renewal: its own exchange with us hands it over
                    // (`Renew`), so it is left pending, not cut off.
                    Err(_)
                        if self
                            .renewal_for(&group, &proof, AuthRole::Responder, &transcript, peer_now)
                            .is_some() => {}
                    Err(e) => self.cut_off(&group, &peer, e, now),
                }
            }
            Response::Renew { chain } => {
                self.exchanges.stop(&group, &peer);
                let adopted = CredentialChain::from_bytes(&chain)
                    .ok()
                    .zip(self.get_mut(&group).ok())
                    .is_some_and(|(chain, session)| session.adopt_chain(chain));
                if adopted {
                    // Authenticate again with the renewed credential.
                    self.start(&group, &peer, now, rng);
                } else {
                    self.cut_off(
                        &group,
                        &peer,
                        Error::InvalidTimePeriod(
                            "our credential expired and the renewal offered is not ours".into(),
                        ),
                        now,
                    );
                }
            }
            Response::Refused { reason } => {
                self.exchanges.stop(&group, &peer);
                self.cut_off(&group, &peer, Error::NotAuthorized(reason), now);
            }
        }
    }

    /// Exchange `exchange` failed in transport (timeout, stream closed).
    pub fn on_auth_failure(&mut self, exchange: crate::auth::ExchangeId, error: &str, now: Now) {
        if let Some((peer, group)) = self.exchanges.answer_to(exchange) {
            self.cut_off(
                &group,
                &peer,
                Error::ConnectionFailed(format!("the authentication exchange failed: {error}")),
                now,
            );
        }
    }

    #[allow(clippy::too_many_arguments)] // one step of the exchange, all of it
    fn nonce_received(
        &mut self,
        group: &PeerName,
        peer: &P,
        remote: &[u8],
        nonce: [u8; 32],
        time: Timestamp,
        anchored: bool,
        now: Now,
    ) {
        let Some((ours, exchange, sent_at)) = self.exchanges.nonce_received(group, peer, nonce)
        else {
            return;
        };
        // The initiator's sample is the better one (it knows the round
        // trip): it replaces the responder-side one.
        self.exchanges
            .sample(peer, sample_round_trip(sent_at, time, now.wall), anchored);
        let local = self.local.clone();
        let proof = self.get(group).and_then(|session| {
            AuthProof::new(
                session.identity(),
                &session.state().chain,
                AuthRole::Initiator,
                &Transcript {
                    group,
                    initiator: &local,
                    responder: remote,
                    initiator_nonce: ours,
                    responder_nonce: nonce,
                },
            )
        });
        match proof {
            Ok(proof) => self.outputs.push_back(Output::AuthRequest {
                exchange,
                peer: peer.clone(),
                request: Request::Prove {
                    tag: group_tag(group),
                    proof,
                },
            }),
            // Our own credential cannot prove (a state this node should not
            // be in): the exchange ends, the peer stays pending.
            Err(_) => self.exchanges.stop(group, peer),
        }
    }

    /// `peer` proved `membership` of `group`: a neighbour now.
    fn authenticated(&mut self, group: &PeerName, peer: &P, membership: &Membership, now: Now) {
        self.exchanges.authenticated(group, peer);
        let new = !self.is_neighbor(group, peer);
        if let Ok(session) = self.get_mut(group) {
            session.neighbor_authenticated(peer.clone(), membership);
        }
        if let Some((sample, anchored)) = self.exchanges.sample_of(peer) {
            self.sample_clock(peer, sample, anchored);
        }
        if new {
            self.handle(group, Input::NeighborUp(peer.clone()), now);
        }
        self.refresh_score(peer);
        self.outputs.push_back(Output::Authenticated {
            group: group.clone(),
            peer: peer.clone(),
            member: membership.subject.clone(),
        });
    }

    /// Cuts `peer` off from `group`: an exchange failed, or the neighbour
    /// misbehaved (invalid synchronization data, gossip without
    /// authenticating, a gossip score below the graylist threshold). It is
    /// no neighbour there; the application hears why; unless it is a
    /// neighbour in another group, its clock no longer counts, its gossip
    /// is graylisted and its connections close.
    pub fn cut_off(&mut self, group: &PeerName, peer: &P, reason: Error, now: Now) {
        self.observe(now);
        self.exchanges.failed(group, peer);
        if self.is_neighbor(group, peer) {
            self.handle(group, Input::NeighborDown(peer.clone()), now);
        }
        self.outputs.push_back(Output::AuthenticationFailed {
            group: group.clone(),
            peer: peer.clone(),
            reason,
        });
        if !self.is_neighbor_anywhere(peer) {
            self.clock.forget(peer);
            self.outputs.push_back(Output::Graylist {
                peer: peer.clone(),
                graylisted: true,
            });
            self.outputs.push_back(Output::Disconnect(peer.clone()));
        }
    }

    /// Subscribers whose grace ran out, and neighbours whose credential
    /// expired (they are asked to authenticate again).
    pub(super) fn check_exchanges(&mut self, now: Now, rng: &mut impl CryptoRng) {
        for (group, peer) in self.exchanges.late(now.instant) {
            self.cut_off(
                &group,
                &peer,
                Error::NotAuthorized(format!(
                    "subscribed to the group without authenticating within {:?}",
                    crate::auth::AUTH_GRACE
                )),
                now,
            );
        }
        let peer_now = self.peer_time(now.wall);
        let expired: Vec<(PeerName, P)> = self
            .sessions
            .iter()
            .flat_map(|(name, s)| {
                s.expired_neighbors(peer_now)
                    .into_iter()
                    .map(move |p| (name.clone(), p))
            })
            .collect();
        for (group, peer) in expired {
            self.handle(&group, Input::NeighborDown(peer.clone()), now);
            self.outputs.push_back(Output::CredentialExpired {
                group: group.clone(),
                peer: peer.clone(),
            });
            // A renewed credential authenticates again.
            self.exchanges.subscribed(&group, &peer, now.instant);
            self.refresh_score(&peer);
            self.start(&group, &peer, now, rng);
        }
    }

    // ----- what an exchange hands over ----------------------------------------------

    /// The group's current key wrapped for `recipient`, if this node has one.
    fn wrap_key_for(
        &self,
        group: &PeerName,
        recipient: &crate::identity::PublicKey,
        rng: &mut impl CryptoRng,
    ) -> Option<WrappedKey> {
        self.get(group)
            .ok()?
            .wrap_current_key(recipient, random32(rng))?
            .ok()
    }

    /// The group password's secret wrapped for the member proved by
    /// `membership` (identity key `recipient`), if this node holds it and
    /// that member's role can grant the password role.
    fn wrap_password_for(
        &self,
        group: &PeerName,
        membership: &Membership,
        recipient: &crate::identity::PublicKey,
        rng: &mut impl CryptoRng,
    ) -> Option<WrappedKey> {
        let state = self.get(group).ok()?.state();
        let policy = state.properties().password.as_ref()?;
        if !membership.role.can_grant(policy.role) {
            return None;
        }
        let secret = state.password_secret()?;
        wrap_password_secret(secret, group, recipient, random32(rng)).ok()
    }

    /// The renewed credential the group database holds for the prover of an
    /// exchange whose proof failed only because its credential expired.
    fn renewal_for(
        &self,
        group: &PeerName,
        proof: &AuthProof,
        role: AuthRole,
        transcript: &Transcript<'_>,
        now: Timestamp,
    ) -> Option<ByteBuf> {
        let session = self.get(group).ok()?;
        let (_, membership) = proof
            .verify_identity(session.state().properties(), role, transcript)
            .ok()?;
        if membership.check_time(now).is_ok() {
            return None;
        }
        let renewed = session.newer_chain(&membership)?;
        renewed
            .verify(session.state().properties())
            .ok()?
            .check_time(now)
            .ok()?;
        renewed.to_bytes().ok().map(ByteBuf::from)
    }

    /// What an accepting neighbour (proved as `responder`) handed over: the
    /// group key, a newer credential for us, the password's secret.
    /// `NotAuthorized` for a key the creator did not commit to (the
    /// neighbour substitutes its own): the caller cuts it off.
    fn adopt(
        &mut self,
        group: &PeerName,
        responder: &Membership,
        wrapped: Option<WrappedKey>,
        chain: Option<ByteBuf>,
        password: Option<WrappedKey>,
    ) -> Result<(), Error> {
        let session = self.get_mut(group)?;
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
        {
            session.adopt_chain(chain);
        }
        // Whether to keep it is the session's rule (`offer_password`).
        if let Some(wrapped) = password
            && let Some(policy) = session.state().properties().password.clone()
            && let Ok(secret) =
                unwrap_password_secret(&wrapped, group, &policy, session.identity().keypair())
        {
            session.offer_password(secret, responder);
        }
        Ok(())
    }
}

fn refused(reason: &str) -> Response {
    Response::Refused {
        reason: reason.into(),
    }
}

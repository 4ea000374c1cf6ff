//! The behaviour's side of password admission: the joiner's search for a
//! member that can admit it, and the member's checks. See the module docs.

use std::collections::{HashMap, HashSet};

use libp2p::{
    PeerId,
    request_response::{self, Message, OutboundRequestId, ResponseChannel},
};
use peergroup_protocol::{
    CredentialChain, Error, Identity, IdentityInfo, PakeContext, PasswordCheck, PasswordJoin,
    PasswordSecret, PeerName, Signed, SignedProperties, Timestamp, issue_credential, unwrap_key,
};
use rand::RngExt as _;
use serde_bytes::ByteBuf;

use super::{
    FIRST_BACKOFF, MAX_BACKOFF, MAX_OPEN_CHECKS, MISMATCH_GRACE, PASSWORD_TIMEOUT, Request,
    Response,
};
use crate::{
    behaviour::{Behaviour, Event, OperationError, OperationId},
    gossip::topic_of,
    groups::GroupSession,
};

/// A password join under way (the joiner's side), by group.
#[derive(Debug)]
pub(crate) struct Joining {
    pub(crate) operation: OperationId,
    pub(crate) identity: Identity,
    pub(crate) properties: SignedProperties,
    pub(crate) secret: PasswordSecret,
    pub(crate) deadline: Timestamp,
    /// Members asked already (each is asked once per join).
    tried: HashSet<PeerId>,
    /// The member being asked, our nonce for its proof, and the exchange's
    /// state until its challenge checked out.
    current: Option<(PeerId, [u8; 32], Option<PasswordJoin>)>,
    /// A member said it was busy: ask again from then on.
    wait_until: Option<Timestamp>,
    /// Members whose challenge did not check out: the password is wrong, or
    /// the member does not know it.
    mismatches: u32,
    /// The last refusal, for the final error.
    refusal: Option<String>,
    /// A member said to wait this long (ms) before trying again.
    slowed: Option<u64>,
    /// Every member at hand was asked and one of them gave an answer that
    /// ends the join (a challenge that did not check out, a wait): it ends
    /// then, unless a member that connects meanwhile admits it.
    fail_at: Option<Timestamp>,
}

impl Joining {
    pub(crate) fn new(
        operation: OperationId,
        identity: Identity,
        properties: SignedProperties,
        secret: PasswordSecret,
        deadline: Timestamp,
    ) -> Joining {
        Joining {
            operation,
            identity,
            properties,
            secret,
            deadline,
            tried: HashSet::new(),
            current: None,
            mismatches: 0,
            refusal: None,
            slowed: None,
            fail_at: None,
            wait_until: None,
        }
    }
}

/// A check this member started (the responder's side).
#[derive(Debug)]
struct Checking {
    check: PasswordCheck,
    joiner: IdentityInfo,
    since: Timestamp,
}

/// A member's answer to a `Start`: SPAKE2 `B`, `confirm_b`, its proof of
/// membership and its nonce.
#[derive(Debug)]
struct Challenge {
    b: Vec<u8>,
    confirm_b: [u8; 32],
    proof: peergroup_protocol::AuthProof,
    nonce: [u8; 32],
}

/// Attempts of one peer: how many since its last success, and until when
/// it must wait.
#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    until: Timestamp,
}

/// Password admission state. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Password {
    pub(crate) joins: HashMap<PeerName, Joining>,
    requests: HashMap<OutboundRequestId, (PeerName, PeerId)>,
    checks: HashMap<(PeerId, PeerName), Checking>,
    attempts: HashMap<PeerId, Attempts>,
}

/// How long a peer's attempts are remembered after its last wait ended.
const ATTEMPTS_MEMORY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The most peers whose attempts are remembered.
const ATTEMPTS_REMEMBERED: usize = 65_536;

/// The wait after `count` attempts: 5 s, 10 s, 20 s, ... up to 10 minutes.
fn backoff(count: u32) -> std::time::Duration {
    let doublings = count.saturating_sub(1).min(20);
    FIRST_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF)
}

impl Behaviour {
    // ----- the joiner ------------------------------------------------------------

    /// Asks the next member that might admit the joiner of `group`, if no
    /// exchange is under way: a connected peer subscribed to the group's
    /// topic that was not asked yet. With none left after a member's
    /// challenge failed to check out, the join fails: the password is wrong.
    pub(crate) fn password_try_next(&mut self, group: &PeerName) {
        let topic = topic_of(group).hash();
        let Some(joining) = self.password.joins.get(group) else {
            return;
        };
        if joining.current.is_some() || joining.wait_until.is_some_and(|t| self.now() < t) {
            return;
        }
        let candidate = self
            .inner
            .gossipsub
            .all_peers()
            .filter(|(peer, topics)| topics.contains(&&topic) && !joining.tried.contains(peer))
            .map(|(peer, _)| *peer)
            .next();
        let Some(peer) = candidate else {
            // Every member at hand was asked. A challenge that did not check
            // out, or a member that slows this peer down, is an answer: the
            // join ends after MISMATCH_GRACE unless a member that connects
            // meanwhile (the dial of another address may still be under
            // way) admits it, so that an impostor answering first cannot
            // end it. A refusal for another reason (this member cannot
            // admit) waits for other members until the deadline.
            if (joining.mismatches > 0 || joining.slowed.is_some()) && joining.fail_at.is_none() {
                let at = self.now().saturating_add(MISMATCH_GRACE);
                if let Some(joining) = self.password.joins.get_mut(group) {
                    joining.fail_at = Some(at);
                }
            }
            return;
        };
        let identity = match joining.identity.info() {
            Ok(info) => info.into_bytes(),
            Err(e) => {
                self.password_join_failed(group, e);
                return;
            }
        };
        let (me, them) = (self.local_peer.to_bytes(), peer.to_bytes());
        let context = PakeContext {
            group,
            joiner_identity: &identity,
            joiner_peer: &me,
            responder_peer: &them,
        };
        let (join, message) = PasswordJoin::start(&joining.secret, &context, &mut self.rng);
        let nonce: [u8; 32] = self.rng.random();
        let request = Request::Start {
            tag: peergroup_protocol::group_tag(group),
            identity: ByteBuf::from(identity),
            message: ByteBuf::from(message),
            nonce,
        };
        let id = self.inner.password.send_request(&peer, request);
        self.password.requests.insert(id, (group.clone(), peer));
        if let Some(joining) = self.password.joins.get_mut(group) {
            joining.tried.insert(peer);
            joining.current = Some((peer, nonce, Some(join)));
            joining.fail_at = None;
            joining.wait_until = None;
        }
    }

    /// A peer subscribed to some topic: a password join for that topic's
    /// group may have a member to ask now.
    pub(crate) fn password_peer_subscribed(&mut self, topic: &libp2p::gossipsub::TopicHash) {
        let groups: Vec<PeerName> = self
            .password
            .joins
            .keys()
            .filter(|g| topic_of(g).hash() == *topic)
            .cloned()
            .collect();
        for group in groups {
            self.password_try_next(&group);
        }
    }

    fn password_join_failed(&mut self, group: &PeerName, error: Error) {
        let Some(joining) = self.password.joins.remove(group) else {
            return;
        };
        tracing::warn!(%group, %error, "password join failed");
        self.events.push_back(Event::OperationCompleted {
            operation: joining.operation,
            result: Err(OperationError::Peer(error)),
        });
        self.wake();
    }

    /// A member answered the joiner.
    fn on_password_response(&mut self, group: PeerName, peer: PeerId, response: Response) {
        let now = self.now();
        let local = self.local_peer;
        let Some(joining) = self.password.joins.get_mut(&group) else {
            return;
        };
        if joining.current.as_ref().map(|(p, _, _)| *p) != Some(peer) {
            return;
        }
        match response {
            Response::Challenge {
                message,
                confirmation,
                proof,
                nonce: theirs,
            } => {
                let Some((_, ours, Some(join))) = joining.current.take() else {
                    return;
                };
                // Only a member that may admit us gets to run the exchange
                // (an impostor would learn whether its guess of the password
                // was right from whether we confirm).
                let (me, them) = (local.to_bytes(), peer.to_bytes());
                let policy_role = joining
                    .properties
                    .properties()
                    .password
                    .as_ref()
                    .map(|p| p.role);
                let proven = proof
                    .verify(
                        joining.properties.properties(),
                        peergroup_protocol::AuthRole::Responder,
                        &peergroup_protocol::Transcript {
                            group: &group,
                            initiator: &me,
                            responder: &them,
                            initiator_nonce: ours,
                            responder_nonce: theirs,
                        },
                        now,
                    )
                    .and_then(|(_, membership)| match policy_role {
                        Some(role) if membership.role.can_grant(role) => Ok(()),
                        _ => Err(Error::NotAuthorized(
                            "the member that answered cannot admit password joiners".into(),
                        )),
                    });
                if let Err(e) = proven {
                    self.events.push_back(Event::AuthenticationFailed {
                        group: group.clone(),
                        peer,
                        reason: e,
                    });
                    self.password_try_next(&group);
                    return;
                }
                let identity = match joining.identity.info() {
                    Ok(info) => info.into_bytes(),
                    Err(e) => {
                        self.password_join_failed(&group, e);
                        return;
                    }
                };
                let (me, them) = (self.local_peer.to_bytes(), peer.to_bytes());
                let context = PakeContext {
                    group: &group,
                    joiner_identity: &identity,
                    joiner_peer: &me,
                    responder_peer: &them,
                };
                match join.confirm(&context, &message, &confirmation) {
                    Ok(confirm) => {
                        let request = Request::Confirm {
                            tag: peergroup_protocol::group_tag(&group),
                            confirmation: ByteBuf::from(confirm.to_vec()),
                        };
                        let id = self.inner.password.send_request(&peer, request);
                        self.password.requests.insert(id, (group.clone(), peer));
                        if let Some(joining) = self.password.joins.get_mut(&group) {
                            joining.current = Some((peer, ours, None));
                        }
                    }
                    Err(e) => {
                        // The password is wrong, or this member does not know
                        // it: nothing is sent back; try another member.
                        if let Some(joining) = self.password.joins.get_mut(&group) {
                            joining.mismatches = joining.mismatches.saturating_add(1);
                        }
                        self.events.push_back(Event::AuthenticationFailed {
                            group: group.clone(),
                            peer,
                            reason: e,
                        });
                        self.password_try_next(&group);
                    }
                }
            }
            Response::Admitted { chain, key } => {
                // Only an answer to our confirmation admits: a member that
                // skips the exchange has not shown it knows the password.
                if !matches!(joining.current, Some((_, _, None))) {
                    joining.current = None;
                    joining.mismatches = joining.mismatches.saturating_add(1);
                    self.password_try_next(&group);
                    return;
                }
                joining.current = None;
                if let Err(e) = self.password_admitted(&group, peer, &chain, key) {
                    self.events.push_back(Event::AuthenticationFailed {
                        group: group.clone(),
                        peer,
                        reason: e.clone(),
                    });
                    self.password_join_failed(&group, e);
                }
            }
            Response::Busy { retry_after_ms } => {
                // Nothing was counted: ask this member again later.
                let wait = retry_after_ms.clamp(100, 10_000);
                joining.current = None;
                joining.tried.remove(&peer);
                joining.wait_until = Some(now.saturating_add_millis(wait));
            }
            Response::Refused {
                reason,
                retry_after_ms,
            } => {
                tracing::debug!(%group, %peer, %reason, ?retry_after_ms, "password join refused");
                joining.current = None;
                joining.refusal = Some(reason);
                joining.slowed = retry_after_ms.or(joining.slowed);
                self.password_try_next(&group);
            }
        }
    }

    /// The member admitted us: join with the credential it minted, keep the
    /// key and the password's secret, and connect (authentication and the
    /// first copy follow; the join's operation completes with that connect).
    fn password_admitted(
        &mut self,
        group: &PeerName,
        peer: PeerId,
        chain: &[u8],
        key: Option<peergroup_protocol::WrappedKey>,
    ) -> Result<(), Error> {
        let Some(joining) = self.password.joins.remove(group) else {
            return Ok(());
        };
        let now = self.now();
        let chain = CredentialChain::from_bytes(chain)?;
        let membership = chain.verify(joining.properties.properties())?;
        membership.check_time(now)?;
        if &membership.subject != joining.identity.peer_name()
            || membership.key != joining.identity.keypair().public()
        {
            return Err(Error::InvalidCredential(
                "the minted credential is not for the joining identity".into(),
            ));
        }
        let mut session = GroupSession::join(
            joining.properties,
            joining.identity,
            chain,
            crate::behaviour::session_config(&self.config),
        )?;
        if let Some(wrapped) = key {
            let key = unwrap_key(
                &wrapped,
                session.identity().keypair(),
                group.as_str().as_bytes(),
            )?;
            session.learn_key(key)?;
        }
        session.remember_password(joining.secret);
        tracing::info!(%group, %peer, role = %membership.role, "admitted by password");
        self.groups.insert(session);
        self.connects
            .entry(group.clone())
            .or_default()
            .push(joining.operation);
        if let Err(e) = self
            .groups
            .get_mut(group)
            .and_then(|session| session.connect(now))
        {
            self.connects.remove(group);
            return Err(e);
        }
        self.drive(group, false);
        Ok(())
    }

    // ----- the member ------------------------------------------------------------

    pub(crate) fn on_password_event(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => self.answer_password(peer, request, channel),
                Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((group, peer)) = self.password.requests.remove(&request_id) {
                        self.on_password_response(group, peer, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((group, peer)) = self.password.requests.remove(&request_id)
                    && let Some(joining) = self.password.joins.get_mut(&group)
                    && joining.current.as_ref().map(|(p, _, _)| *p) == Some(peer)
                {
                    tracing::debug!(%group, %peer, %error, "password exchange failed");
                    joining.current = None;
                    joining.refusal = Some(error.to_string());
                    self.password_try_next(&group);
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn refuse_password(
        &mut self,
        channel: ResponseChannel<Response>,
        reason: String,
        retry_after_ms: Option<u64>,
    ) {
        let response = Response::Refused {
            reason,
            retry_after_ms,
        };
        if self
            .inner
            .password
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("password answer not sent: the peer is gone");
        }
    }

    fn answer_password(
        &mut self,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        let now = self.now();
        match request {
            Request::Start {
                tag,
                identity,
                message,
                nonce,
            } => {
                let Some(group) = self.groups.by_tag(&tag).cloned() else {
                    self.refuse_password(channel, "no such group here".into(), None);
                    return;
                };
                if let Some(wait) = self.password_wait(&peer, now) {
                    self.refuse_password(
                        channel,
                        "too many attempts: try again later".into(),
                        Some(wait),
                    );
                    return;
                }
                if self.password.checks.len() >= MAX_OPEN_CHECKS {
                    let response = Response::Busy {
                        retry_after_ms: 1000,
                    };
                    if self
                        .inner
                        .password
                        .send_response(channel, response)
                        .is_err()
                    {
                        tracing::debug!("password answer not sent: the peer is gone");
                    }
                    return;
                }
                match self.start_check(&group, peer, &identity, &message, nonce, now) {
                    Ok(challenge) => {
                        let response = Response::Challenge {
                            message: ByteBuf::from(challenge.b),
                            confirmation: ByteBuf::from(challenge.confirm_b.to_vec()),
                            proof: challenge.proof,
                            nonce: challenge.nonce,
                        };
                        if self
                            .inner
                            .password
                            .send_response(channel, response)
                            .is_err()
                        {
                            tracing::debug!("password challenge not sent: the peer is gone");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%group, %peer, error = %e, "password exchange refused");
                        self.refuse_password(channel, e.name().into(), None)
                    }
                }
            }
            Request::Confirm { tag, confirmation } => {
                let Some(group) = self.groups.by_tag(&tag).cloned() else {
                    self.refuse_password(channel, "no such group here".into(), None);
                    return;
                };
                let Some(checking) = self.password.checks.remove(&(peer, group.clone())) else {
                    self.refuse_password(channel, "no exchange was started".into(), None);
                    return;
                };
                if let Err(e) = checking.check.finish(&confirmation) {
                    self.password_attempt_failed(&group, peer, e.clone());
                    let wait = self.password_wait(&peer, now);
                    self.refuse_password(channel, e.name().into(), wait);
                    return;
                }
                match self.admit(&group, &checking.joiner, now) {
                    Ok((chain, key)) => {
                        self.password.attempts.remove(&peer);
                        tracing::info!(%group, %peer, joiner = %checking.joiner.peer_name, "admitted a password joiner");
                        let response = Response::Admitted {
                            chain: ByteBuf::from(chain),
                            key,
                        };
                        if self
                            .inner
                            .password
                            .send_response(channel, response)
                            .is_err()
                        {
                            tracing::debug!("password admission not sent: the peer is gone");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%group, %peer, error = %e, "password exchange refused");
                        self.refuse_password(channel, e.name().into(), None)
                    }
                }
            }
        }
    }

    /// How long `peer` must still wait before its next attempt, in ms.
    fn password_wait(&self, peer: &PeerId, now: Timestamp) -> Option<u64> {
        let attempts = self.password.attempts.get(peer)?;
        (now < attempts.until).then(|| attempts.until.as_millis().saturating_sub(now.as_millis()))
    }

    /// Checks that this member can admit password joiners of `group`, counts
    /// the attempt and starts the check: returns `B`, `confirm_b`, this
    /// member's proof over the joiner's nonce `theirs` and its own nonce.
    fn start_check(
        &mut self,
        group: &PeerName,
        peer: PeerId,
        identity: &[u8],
        message: &[u8],
        theirs: [u8; 32],
        now: Timestamp,
    ) -> Result<Challenge, Error> {
        let session = self.groups.get(group)?;
        let state = session.state();
        let policy = state.properties().password.clone().ok_or_else(|| {
            Error::NotAuthorized("this group does not admit members by password".into())
        })?;
        let secret = state.password_secret().cloned().ok_or_else(|| {
            Error::NotAuthorized("this member cannot check the group password".into())
        })?;
        let mine = state.chain.verify(state.properties())?;
        mine.check_time(now)?;
        if !mine.role.can_grant(policy.role) {
            return Err(Error::NotAuthorized(format!(
                "a {} cannot admit password joiners as {}",
                mine.role, policy.role
            )));
        }
        let joiner = Signed::<IdentityInfo>::from_bytes(identity)?
            .payload()
            .clone();
        // Every exchange is one online guess: count it now (a joiner that
        // never confirms has still tested its guess against confirm_b).
        let attempts = self.password.attempts.entry(peer).or_insert(Attempts {
            count: 0,
            until: now,
        });
        attempts.count = attempts.count.saturating_add(1);
        attempts.until = now.saturating_add(backoff(attempts.count));
        let me = self.local_peer.to_bytes();
        let them = peer.to_bytes();
        let context = PakeContext {
            group,
            joiner_identity: identity,
            joiner_peer: &them,
            responder_peer: &me,
        };
        let (check, b, confirm_b) =
            PasswordCheck::start(&secret, &context, message, &mut self.rng)?;
        let ours: [u8; 32] = self.rng.random();
        let session = self.groups.get(group)?;
        let proof = peergroup_protocol::AuthProof::new(
            session.identity(),
            &session.state().chain,
            peergroup_protocol::AuthRole::Responder,
            &peergroup_protocol::Transcript {
                group,
                initiator: &them,
                responder: &me,
                initiator_nonce: theirs,
                responder_nonce: ours,
            },
        )?;
        self.password.checks.insert(
            (peer, group.clone()),
            Checking {
                check,
                joiner,
                since: now,
            },
        );
        Ok(Challenge {
            b,
            confirm_b,
            proof,
            nonce: ours,
        })
    }

    /// Mints `joiner`'s credential for the password role (valid as long as
    /// this member's own) and wraps the group key for it.
    fn admit(
        &mut self,
        group: &PeerName,
        joiner: &IdentityInfo,
        now: Timestamp,
    ) -> Result<(Vec<u8>, Option<peergroup_protocol::WrappedKey>), Error> {
        let session = self.groups.get(group)?;
        let state = session.state();
        let policy = state.properties().password.clone().ok_or_else(|| {
            Error::NotAuthorized("this group does not admit members by password".into())
        })?;
        let mine = state.chain.verify(state.properties())?;
        let chain = issue_credential(
            session.identity(),
            &state.chain,
            state.properties(),
            joiner,
            policy.role,
            now,
            mine.not_after,
        )?;
        let bytes = chain.to_bytes()?;
        let ephemeral: [u8; 32] = self.rng.random();
        let key = session
            .wrap_current_key(&joiner.key, ephemeral)
            .and_then(|wrapped| {
                wrapped
                    .map_err(|e| tracing::warn!(%group, error = %e, "cannot wrap the group key"))
                    .ok()
            });
        Ok((bytes, key))
    }

    fn password_attempt_failed(&mut self, group: &PeerName, peer: PeerId, reason: Error) {
        tracing::warn!(%group, %peer, %reason, "password check failed");
        self.stats.password_failures = self.stats.password_failures.saturating_add(1);
        self.events.push_back(Event::AuthenticationFailed {
            group: group.clone(),
            peer,
            reason,
        });
        self.wake();
    }

    /// Checks never confirmed (the joiner's guess was wrong: it stops at our
    /// confirmation) and joins past their deadline; called with the timers.
    pub(crate) fn check_password_deadlines(&mut self, now: Timestamp) {
        let stale: Vec<(PeerId, PeerName)> = self
            .password
            .checks
            .iter()
            .filter(|(_, c)| now >= c.since.saturating_add(PASSWORD_TIMEOUT))
            .map(|(k, _)| k.clone())
            .collect();
        for (peer, group) in stale {
            self.password.checks.remove(&(peer, group.clone()));
            self.password_attempt_failed(
                &group,
                peer,
                Error::NotAuthorized(
                    "the joiner did not confirm the password exchange (a wrong password)".into(),
                ),
            );
        }
        let late: Vec<PeerName> = self
            .password
            .joins
            .iter()
            .filter(|(_, j)| {
                now >= j.deadline || (j.current.is_none() && j.fail_at.is_some_and(|at| now >= at))
            })
            .map(|(g, _)| g.clone())
            .collect();
        for group in late {
            let error = match self.password.joins.get(&group) {
                Some(j) if j.mismatches > 0 => Error::NotAuthorized("wrong group password".into()),
                Some(Joining {
                    slowed: Some(wait), ..
                }) => Error::NotAuthorized(format!(
                    "too many password attempts: try again in {wait} ms"
                )),
                Some(Joining {
                    refusal: Some(reason),
                    ..
                }) => Error::NotAuthorized(format!("no member admitted the password: {reason}")),
                _ => Error::NoMembersFound(format!(
                    "no member of {group} that can check the password was found"
                )),
            };
            self.password_join_failed(&group, error);
        }
        // A peer's attempts are remembered for a day after its last wait
        // ended, so that waiting out a long backoff does not reset it; at
        // most ATTEMPTS_REMEMBERED peers (the oldest are forgotten first).
        self.password
            .attempts
            .retain(|_, a| now < a.until.saturating_add(ATTEMPTS_MEMORY));
        if self.password.attempts.len() > ATTEMPTS_REMEMBERED {
            let mut untils: Vec<Timestamp> =
                self.password.attempts.values().map(|a| a.until).collect();
            untils.sort_unstable();
            let excess = self.password.attempts.len() - ATTEMPTS_REMEMBERED;
            if let Some(cut) = untils.get(excess) {
                let cut = *cut;
                self.password.attempts.retain(|_, a| a.until >= cut);
            }
        }
    }

    /// Forgets what `peer` was asked or asked us (its last connection closed).
    pub(crate) fn password_peer_gone(&mut self, peer: &PeerId) {
        self.password.checks.retain(|(p, _), _| p != peer);
        let groups: Vec<PeerName> = self
            .password
            .joins
            .iter_mut()
            .filter(|(_, j)| j.current.as_ref().map(|(p, _, _)| p) == Some(peer))
            .map(|(g, j)| {
                j.current = None;
                g.clone()
            })
            .collect();
        for group in groups {
            self.password_try_next(&group);
        }
    }
}

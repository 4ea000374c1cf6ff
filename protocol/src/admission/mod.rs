//! Password admission (`PeerGroupPasswordJoin`, reference 3.3.4
//! "Password") as a sans-I/O state machine: which member a joiner asks, what
//! a member answers, when to give up, and whom to slow down. The exchange
//! itself is the [`PasswordJoin`] / [`PasswordCheck`] PAKE of the `password`
//! module; the messages are [`messages::password`](crate::messages::password).
//!
//! One [`Admission`] per node plays both parts:
//!
//! - **Joiner.** A node holding a password invitation and the password
//!   ([`Admission::join`]) asks the members it is told about
//!   ([`Admission::candidate`]), one at a time and each once, to check the
//!   password. A member must first prove, over a transcript of both peers and
//!   both nonces, that it may grant the group's password role; only then does
//!   the joiner confirm the PAKE (an impostor would otherwise learn whether
//!   its guess of the password was right). A member that admits it returns
//!   the joiner's new credential chain and the group key wrapped for it
//!   ([`Output::Admitted`]). When every member at hand was asked and one of
//!   them said the password is wrong (its confirmation did not check out) or
//!   said to wait, the join ends [`MISMATCH_GRACE`] later unless a member
//!   that connects meanwhile admits it: an impostor answering first cannot
//!   end a join. Otherwise it ends at its deadline ([`Output::JoinFailed`]).
//! - **Member.** A member that holds the password secret and can grant the
//!   password role answers ([`Admission::answer`]). Every exchange a peer
//!   starts is one online guess: the member counts it and makes that peer
//!   wait [`FIRST_BACKOFF`] after its first attempt, doubling with every
//!   further attempt up to [`MAX_BACKOFF`]; a successful admission clears the
//!   count. A check the joiner does not confirm within [`PASSWORD_TIMEOUT`]
//!   is a failed guess (the joiner stops at a wrong `confirm_b`), as is a
//!   wrong confirmation ([`Output::AttemptFailed`]). At most
//!   [`MAX_OPEN_CHECKS`] checks are open at once; more are answered `Busy`.
//!   Peer ids are free to make, so the bound per peer slows a patient
//!   attacker down rather than stopping it: a group password should be long.
//!
//! # Time and randomness
//!
//! Two clocks come in as parameters, and the machine reads neither itself:
//!
//! - `now: Instant`, monotonic, for every deadline: a check's
//!   [`PASSWORD_TIMEOUT`], a peer's backoff, the attempts memory, a join's
//!   deadline and its [`MISMATCH_GRACE`], a `Busy` member's wait. Callers
//!   must never pass an earlier `now` than before.
//! - `peer_time: Timestamp`, the group clock (peer time), only for what
//!   credentials say: the validity of the member's proof and of the minted
//!   credential, and the minted credential's `not_before`. A step of peer
//!   time never moves or fires a timeout.
//!
//! Every call that may draw randomness (SPAKE2 scalars, nonces, key-wrap
//! ephemerals) takes `rng: &mut impl CryptoRng`, the host's CSPRNG.
//!
//! # What the host does
//!
//! - Sends each [`Output::Send`] as a request to its peer on
//!   `/peergroup/password/1`, remembers which `(group, peer)` the request was
//!   for, and hands the answer back to [`Admission::on_response`] or a
//!   transport failure (including the request timeout, which should be
//!   [`PASSWORD_TIMEOUT`]) to [`Admission::on_failure`]. The machine does not
//!   time out a joiner's request itself.
//! - Tells the machine about members to ask: the peers at hand when the join
//!   starts, then every peer that subscribes to the group's topic
//!   ([`Admission::candidate`]), and every peer whose last connection closed
//!   ([`Admission::peer_gone`]).
//! - Answers each inbound request with [`Admission::answer`], given the
//!   group the request's tag ([`tag_of`]) names, if it is here.
//! - Sleeps until [`Admission::poll_timeout`], then calls
//!   [`Admission::handle_timeout`]; after every call, drains
//!   [`Admission::poll_output`].
//! - On [`Output::Admitted`], creates the group (`Session::join`), learns the
//!   key, remembers the password secret and connects; if that fails, it
//!   completes the join's operation with that error itself.
//!
//! (Over 600 lines, on purpose: one machine with both roles of one
//! exchange, half of it the docs of its rules; its tests are `tests.rs`.)

#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt,
    hash::Hash,
    time::{Duration, Instant},
};

use rand_core::CryptoRng;
use serde_bytes::ByteBuf;

use crate::{
    auth::{AuthProof, AuthRole, GROUP_TAG_LEN, Transcript, group_tag},
    credential::{CredentialChain, issue_credential},
    error::Error,
    group::SignedProperties,
    identity::{Identity, IdentityInfo},
    messages::password::{Request, Response},
    password::{PakeContext, PasswordCheck, PasswordJoin, PasswordSecret},
    peer_name::PeerName,
    seal::{GroupKey, WrappedKey, unwrap_key, wrap_key},
    session::GroupState,
    signed::Signed,
    time::Timestamp,
};

/// How long a peer waits after its first attempt; each further attempt
/// doubles it (5 s, 10 s, 20 s, ... 10 minutes: about a dozen guesses in
/// the first hour from one peer, then 6 an hour).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// The longest wait between two attempts of one peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// How long one exchange may wait for each answer; a started check the
/// joiner never confirms counts as a failed attempt after it.
pub const PASSWORD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a joiner that asked every member at hand, and was told its
/// password is wrong (or to wait), waits for another member to connect
/// before the join fails.
pub const MISMATCH_GRACE: Duration = Duration::from_secs(2);

/// The most checks a member keeps open at once; more are refused (busy).
pub const MAX_OPEN_CHECKS: usize = 1024;

/// How long a peer's attempts are remembered after its last wait ended, so
/// that waiting out a long backoff does not reset the count.
pub const ATTEMPTS_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The most peers whose attempts are remembered (the ones whose wait ended
/// first are forgotten first).
pub const ATTEMPTS_REMEMBERED: usize = 65_536;

/// What a busy member tells the joiner to wait, in milliseconds.
const BUSY_RETRY_MS: u64 = 1000;

/// The shortest and longest wait a joiner accepts from a `Busy` answer, in
/// milliseconds (a member cannot make it spin, nor stall it for long).
const BUSY_WAIT_MS: (u64, u64) = (100, 10_000);

/// The group tag a request names (the host finds the group by it).
pub fn tag_of(request: &Request) -> &[u8; GROUP_TAG_LEN] {
    match request {
        Request::Start { tag, .. } | Request::Confirm { tag, .. } => tag,
    }
}

/// What the host passes to [`Admission::join`].
#[derive(Debug)]
pub struct JoinStart {
    /// The host's id for the join, echoed in [`Output::Admitted`] and
    /// [`Output::JoinFailed`].
    pub operation: u64,
    /// The local identity that joins.
    pub identity: Identity,
    /// The group's signed properties, from the invitation: they name the
    /// group and carry the password policy.
    pub properties: SignedProperties,
    /// The password secret derived from the password and the policy
    /// ([`PasswordSecret::derive`]).
    pub secret: PasswordSecret,
    /// When the join fails if no member admitted it by then (monotonic; the
    /// node uses its connect timeout from the call).
    pub deadline: Instant,
}

/// What the machine asks its host to do or tells it; drained with
/// [`Admission::poll_output`].
#[derive(Debug)]
// `Admitted` carries the joiner's identity and properties by value: it comes
// once per join and leaves the queue at the next poll, so boxing it would
// only make the host's match clumsier.
#[allow(clippy::large_enum_variant)]
pub enum Output<P> {
    /// Joiner: send `request` to `peer` for `group`. Its answer comes back
    /// through [`Admission::on_response`], a transport failure (timeout
    /// included) through [`Admission::on_failure`].
    Send {
        /// The group being joined.
        group: PeerName,
        /// The member asked.
        peer: P,
        /// `Start` or `Confirm`.
        request: Request,
    },
    /// Joiner: a member admitted us. The join is over in the machine; the
    /// host creates the group (`Session::join(properties, identity, chain,
    /// ..)`), learns `key`, remembers `secret` and connects, and completes
    /// `operation` as a connect (or with the error if any of that fails).
    /// `chain` verified against the properties, is for `identity` and was
    /// valid at the peer time of the answer.
    Admitted {
        /// The group joined.
        group: PeerName,
        /// The join's operation ([`JoinStart::operation`]).
        operation: u64,
        /// The member that admitted us.
        peer: P,
        /// The joining identity ([`JoinStart::identity`]).
        identity: Identity,
        /// The group's properties ([`JoinStart::properties`]).
        properties: SignedProperties,
        /// The password secret ([`JoinStart::secret`]): the joiner may now
        /// check the password for others.
        secret: PasswordSecret,
        /// The credential chain the member minted for `identity`.
        chain: CredentialChain,
        /// The group's current data key, unwrapped (`None` if the member
        /// sent none).
        key: Option<GroupKey>,
    },
    /// Joiner: the join failed and is forgotten. The error, chosen when the
    /// join ends: `NotAuthorized("wrong group password")` if a member's
    /// confirmation did not check out (or a member admitted without our
    /// confirmation); else `NotAuthorized("too many password attempts: try
    /// again in {ms} ms")` if a member said to wait; else
    /// `NotAuthorized("no member admitted the password: {reason}")` with the
    /// last refusal or transport failure; else `NoMembersFound("no member of
    /// {group} that can check the password was found")`. A member's
    /// admission that does not check out (see [`Output::Admitted`]) fails the
    /// join with that error at once, after an
    /// [`Output::AuthenticationFailed`].
    JoinFailed {
        /// The group.
        group: PeerName,
        /// The join's operation ([`JoinStart::operation`]).
        operation: u64,
        /// Why.
        error: Error,
    },
    /// Joiner: a member's proof, challenge or admission did not check out
    /// (the node's `Event::AuthenticationFailed`); the join goes on with the
    /// next member unless a [`Output::JoinFailed`] follows.
    AuthenticationFailed {
        /// The group being joined.
        group: PeerName,
        /// The member.
        peer: P,
        /// What did not check out.
        reason: Error,
    },
    /// Member: a check failed (a wrong confirmation, or a check not confirmed
    /// within [`PASSWORD_TIMEOUT`]). The host counts it as a password failure
    /// and raises `Event::AuthenticationFailed`.
    AttemptFailed {
        /// The group.
        group: PeerName,
        /// The joiner's peer.
        peer: P,
        /// Why (`NotAuthorized`).
        reason: Error,
    },
    /// Member: admitted a joiner (for logs).
    AdmittedJoiner {
        /// The group.
        group: PeerName,
        /// The joiner's peer.
        peer: P,
        /// The joiner's identity.
        joiner: PeerName,
    },
}

/// Password admission: the joiner's searches and the member's checks. See
/// the [module docs](self).
#[derive(Debug)]
pub struct Admission<P> {
    /// The local peer id, as bytes (PAKE contexts and transcripts).
    local: Vec<u8>,
    joins: HashMap<PeerName, Joining<P>>,
    checks: HashMap<(P, PeerName), Checking>,
    attempts: HashMap<P, Attempts>,
    /// No attempt is forgotten before this (an early bound: the table is
    /// pruned then and the bound recomputed).
    prune_at: Option<Instant>,
    outputs: VecDeque<Output<P>>,
}

/// A password join under way (the joiner's side).
#[derive(Debug)]
struct Joining<P> {
    operation: u64,
    identity: Identity,
    /// The identity's signed info (envelope bytes), made once.
    identity_bytes: Vec<u8>,
    properties: SignedProperties,
    secret: PasswordSecret,
    deadline: Instant,
    /// Peers to ask, in arrival order, with their bytes; a peer leaves when
    /// its last connection closes.
    candidates: Vec<(P, Vec<u8>)>,
    /// Members asked already (each is asked once per join, except one that
    /// said it was busy).
    tried: HashSet<P>,
    /// The exchange under way.
    current: Option<Exchange<P>>,
    /// A member said it was busy: nobody is asked before then.
    wait_until: Option<Instant>,
    /// Members whose challenge did not check out (the password is wrong, or
    /// the member does not know it), or that admitted without our
    /// confirmation.
    mismatches: u32,
    /// The last refusal or transport failure, for the final error.
    refusal: Option<String>,
    /// A member said to wait this long (ms) before trying again.
    slowed: Option<u64>,
    /// Every member at hand was asked and one of them gave an answer that
    /// ends the join (a challenge that did not check out, a wait): it ends
    /// then, unless a member that connects meanwhile admits it.
    fail_at: Option<Instant>,
}

impl<P: Eq + Hash> Joining<P> {
    fn add_candidate(&mut self, peer: P, bytes: Vec<u8>) {
        if !self.candidates.iter().any(|(p, _)| *p == peer) {
            self.candidates.push((peer, bytes));
        }
    }

    /// The error the join ends with (see [`Output::JoinFailed`]).
    fn final_error(&self, group: &PeerName) -> Error {
        if self.mismatches > 0 {
            Error::NotAuthorized("wrong group password".into())
        } else if let Some(wait) = self.slowed {
            Error::NotAuthorized(format!(
                "too many password attempts: try again in {wait} ms"
            ))
        } else if let Some(reason) = &self.refusal {
            Error::NotAuthorized(format!("no member admitted the password: {reason}"))
        } else {
            Error::NoMembersFound(format!(
                "no member of {group} that can check the password was found"
            ))
        }
    }
}

/// The joiner's exchange with one member.
#[derive(Debug)]
struct Exchange<P> {
    peer: P,
    peer_bytes: Vec<u8>,
    /// Our nonce for the member's proof.
    nonce: [u8; 32],
    step: Step,
}

#[derive(Debug)]
enum Step {
    /// `Start` sent: waiting for the challenge.
    Started(PasswordJoin),
    /// `Confirm` sent: waiting for the admission.
    Confirmed,
}

/// A check this member started (the responder's side).
#[derive(Debug)]
struct Checking {
    check: PasswordCheck,
    joiner: IdentityInfo,
    /// It fails at `since + PASSWORD_TIMEOUT` unless confirmed.
    since: Instant,
}

/// Attempts of one peer: how many since its last success (or since it was
/// forgotten), and until when it must wait.
#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    until: Instant,
}

/// The wait after `count` attempts: 5 s, 10 s, 20 s, ... up to 10 minutes.
fn backoff(count: u32) -> Duration {
    let doublings = count.saturating_sub(1).min(20);
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF)
}

/// `now + d`. Every `d` here is at most a day, which no monotonic clock is
/// that close to overflowing; should one be, the instant stays `now`.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn random_32(rng: &mut impl CryptoRng) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn refused(reason: impl Into<String>, retry_after_ms: Option<u64>) -> Response {
    Response::Refused {
        reason: reason.into(),
        retry_after_ms,
    }
}

impl<P> Admission<P>
where
    P: Clone + Eq + Hash + fmt::Debug,
{
    /// A machine for the node whose peer id is `local_peer_bytes` (the
    /// libp2p `PeerId::to_bytes()`; both sides bind the exchange to both
    /// peers' bytes, so they must be the ones the other side sees).
    pub fn new(local_peer_bytes: Vec<u8>) -> Admission<P> {
        Admission {
            local: local_peer_bytes,
            joins: HashMap::new(),
            checks: HashMap::new(),
            attempts: HashMap::new(),
            prune_at: None,
            outputs: VecDeque::new(),
        }
    }

    // ----- the joiner ------------------------------------------------------------

    /// Whether a join of `group` is under way.
    pub fn is_joining(&self, group: &PeerName) -> bool {
        self.joins.contains_key(group)
    }

    /// The groups being joined (to match a subscribed topic to its join).
    pub fn joining(&self) -> impl Iterator<Item = &PeerName> {
        self.joins.keys()
    }

    /// Starts joining the group `start.properties` names: `candidates` are
    /// the peers at hand known to be subscribed to its topic (peer, peer id
    /// bytes), asked in that order; more come through
    /// [`Admission::candidate`]. Sends the first `Start` if there is a
    /// candidate.
    ///
    /// Errors, with nothing kept: `GroupInUse` if a join of that group is
    /// under way (the host also refuses a group it has already);
    /// `InvalidArg` if the group admits no passwords or `start.secret` is not
    /// for its password policy; the identity's error if its info cannot be
    /// signed.
    pub fn join(
        &mut self,
        start: JoinStart,
        candidates: impl IntoIterator<Item = (P, Vec<u8>)>,
        now: Instant,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Error> {
        let properties = start.properties.properties();
        let group = properties.group_peer_name.clone();
        if self.joins.contains_key(&group) {
            return Err(Error::GroupInUse(format!(
                "group {group} is already being joined"
            )));
        }
        let policy = properties
            .password
            .as_ref()
            .ok_or_else(|| Error::InvalidArg("the group admits no passwords".into()))?;
        if !start.secret.is_for(policy) {
            return Err(Error::InvalidArg(
                "the password secret is not for the group's password policy".into(),
            ));
        }
        let identity_bytes = start.identity.info()?.into_bytes();
        let mut joining = Joining {
            operation: start.operation,
            identity: start.identity,
            identity_bytes,
            properties: start.properties,
            secret: start.secret,
            deadline: start.deadline,
            candidates: Vec::new(),
            tried: HashSet::new(),
            current: None,
            wait_until: None,
            mismatches: 0,
            refusal: None,
            slowed: None,
            fail_at: None,
        };
        for (peer, bytes) in candidates {
            joining.add_candidate(peer, bytes);
        }
        self.joins.insert(group.clone(), joining);
        self.try_next(&group, now, rng);
        Ok(())
    }

    /// `peer` (id bytes `peer_bytes`) is subscribed to `group`'s topic: a
    /// member to ask, kept after the earlier ones (a peer already kept stays
    /// where it is). Ignored unless a join of `group` is under way. If no
    /// exchange is under way and no `Busy` wait runs, the first candidate not
    /// asked yet is asked at once. A peer already asked in this join is not
    /// asked again (unless it answered `Busy`), even after it went and came
    /// back.
    pub fn candidate(
        &mut self,
        group: &PeerName,
        peer: P,
        peer_bytes: Vec<u8>,
        now: Instant,
        rng: &mut impl CryptoRng,
    ) {
        let Some(joining) = self.joins.get_mut(group) else {
            return;
        };
        joining.add_candidate(peer, peer_bytes);
        self.try_next(group, now, rng);
    }

    /// `peer` answered the request of `group`'s join it was sent
    /// ([`Output::Send`]). Ignored unless `peer` is the member being asked.
    /// `peer_time` checks the member's proof and the minted credential.
    ///
    /// - `Challenge`: the member's proof must verify (role responder, our
    ///   nonce, valid at `peer_time`) and its role grant the policy's role,
    ///   else [`Output::AuthenticationFailed`] and the next member. Then the
    ///   PAKE: our `Confirm` is sent, or, when its confirmation does not
    ///   check out, a mismatch, [`Output::AuthenticationFailed`] and the next
    ///   member.
    /// - `Admitted`: only as the answer to our `Confirm` (else a mismatch
    ///   and the next member). The chain must verify, be valid at
    ///   `peer_time` and be for the joining identity, and the key unwrap:
    ///   [`Output::Admitted`], else [`Output::AuthenticationFailed`] and
    ///   [`Output::JoinFailed`] with that error.
    /// - `Busy`: this member is asked again after its wait (clamped to
    ///   0.1–10 s), nobody before; [`Admission::handle_timeout`] retries.
    /// - `Refused`: remembered for the final error (`retry_after_ms` as
    ///   "slowed"); the next member.
    pub fn on_response(
        &mut self,
        group: &PeerName,
        peer: &P,
        response: Response,
        peer_time: Timestamp,
        now: Instant,
        rng: &mut impl CryptoRng,
    ) {
        let Some(joining) = self.joins.get_mut(group) else {
            return;
        };
        let Some(exchange) = joining.current.take_if(|e| e.peer == *peer) else {
            return;
        };
        match response {
            Response::Challenge {
                message,
                confirmation,
                proof,
                nonce,
            } => self.on_challenge(
                group,
                exchange,
                (message.as_slice(), confirmation.as_slice(), &proof, nonce),
                peer_time,
                now,
                rng,
            ),
            Response::Admitted { chain, key } => {
                if !matches!(exchange.step, Step::Confirmed) {
                    // Only an answer to our confirmation admits: a member
                    // that skips the exchange has not shown it knows the
                    // password.
                    joining.mismatches = joining.mismatches.saturating_add(1);
                    self.try_next(group, now, rng);
                    return;
                }
                let Some(joining) = self.joins.remove(group) else {
                    return;
                };
                self.admitted(group, joining, exchange.peer, &chain, key, peer_time);
            }
            Response::Busy { retry_after_ms } => {
                // Nothing was counted: ask this member again later.
                let wait = retry_after_ms.clamp(BUSY_WAIT_MS.0, BUSY_WAIT_MS.1);
                joining.tried.remove(peer);
                joining.wait_until = Some(after(now, Duration::from_millis(wait)));
            }
            Response::Refused {
                reason,
                retry_after_ms,
            } => {
                joining.refusal = Some(reason);
                joining.slowed = retry_after_ms.or(joining.slowed);
                self.try_next(group, now, rng);
            }
        }
    }

    /// The request of `group`'s join sent to `peer` failed (`error`: the
    /// transport's words, kept for the final error). Ignored unless `peer`
    /// is the member being asked; the next member is asked.
    pub fn on_failure(
        &mut self,
        group: &PeerName,
        peer: &P,
        error: String,
        now: Instant,
        rng: &mut impl CryptoRng,
    ) {
        let Some(joining) = self.joins.get_mut(group) else {
            return;
        };
        if joining.current.take_if(|e| e.peer == *peer).is_none() {
            return;
        }
        joining.refusal = Some(error);
        self.try_next(group, now, rng);
    }

    /// Asks the next member for `group`'s join if no exchange is under way
    /// and no `Busy` wait runs: the first candidate not asked yet. With none
    /// left after a mismatch or a wait, the join ends after MISMATCH_GRACE.
    fn try_next(&mut self, group: &PeerName, now: Instant, rng: &mut impl CryptoRng) {
        let Some(joining) = self.joins.get_mut(group) else {
            return;
        };
        if joining.current.is_some() {
            return;
        }
        if let Some(until) = joining.wait_until {
            if now < until {
                return;
            }
            joining.wait_until = None;
        }
        let next = joining
            .candidates
            .iter()
            .find(|(peer, _)| !joining.tried.contains(peer))
            .cloned();
        let Some((peer, peer_bytes)) = next else {
            // Every member at hand was asked. A challenge that did not check
            // out, or a member that slows this peer down, is an answer: the
            // join ends after MISMATCH_GRACE unless a member that connects
            // meanwhile (the dial of another address may still be under way)
            // admits it, so that an impostor answering first cannot end it.
            // A refusal for another reason (this member cannot admit) waits
            // for other members until the deadline.
            if (joining.mismatches > 0 || joining.slowed.is_some()) && joining.fail_at.is_none() {
                joining.fail_at = Some(after(now, MISMATCH_GRACE));
            }
            return;
        };
        let context = PakeContext {
            group,
            joiner_identity: &joining.identity_bytes,
            joiner_peer: &self.local,
            responder_peer: &peer_bytes,
        };
        let (join, message) = PasswordJoin::start(&joining.secret, &context, rng);
        let nonce = random_32(rng);
        let request = Request::Start {
            tag: group_tag(group),
            identity: ByteBuf::from(joining.identity_bytes.clone()),
            message: ByteBuf::from(message),
            nonce,
        };
        joining.tried.insert(peer.clone());
        joining.current = Some(Exchange {
            peer: peer.clone(),
            peer_bytes,
            nonce,
            step: Step::Started(join),
        });
        joining.fail_at = None;
        self.outputs.push_back(Output::Send {
            group: group.clone(),
            peer,
            request,
        });
    }

    /// A member's challenge (`B`, `confirm_b`, its proof, its nonce) for the
    /// exchange `exchange` of `group`'s join (taken out of the join).
    fn on_challenge(
        &mut self,
        group: &PeerName,
        exchange: Exchange<P>,
        (message, confirmation, proof, theirs): (&[u8], &[u8], &AuthProof, [u8; 32]),
        peer_time: Timestamp,
        now: Instant,
        rng: &mut impl CryptoRng,
    ) {
        let Some(joining) = self.joins.get_mut(group) else {
            return;
        };
        let Exchange {
            peer,
            peer_bytes,
            nonce: ours,
            step,
        } = exchange;
        let Step::Started(join) = step else {
            // A challenge in answer to our confirmation: no member sends
            // that. Drop the exchange and ask the next member.
            self.try_next(group, now, rng);
            return;
        };
        // Only a member that may admit us gets to run the exchange (an
        // impostor would learn whether its guess of the password was right
        // from whether we confirm).
        let properties = joining.properties.properties();
        let policy_role = properties.password.as_ref().map(|p| p.role);
        let transcript = Transcript {
            group,
            initiator: &self.local,
            responder: &peer_bytes,
            initiator_nonce: ours,
            responder_nonce: theirs,
        };
        let proven = proof
            .verify(properties, AuthRole::Responder, &transcript, peer_time)
            .and_then(|(_, membership)| match policy_role {
                Some(role) if membership.role.can_grant(role) => Ok(()),
                _ => Err(Error::NotAuthorized(
                    "the member that answered cannot admit password joiners".into(),
                )),
            });
        if let Err(reason) = proven {
            self.outputs.push_back(Output::AuthenticationFailed {
                group: group.clone(),
                peer,
                reason,
            });
            self.try_next(group, now, rng);
            return;
        }
        let context = PakeContext {
            group,
            joiner_identity: &joining.identity_bytes,
            joiner_peer: &self.local,
            responder_peer: &peer_bytes,
        };
        match join.confirm(&context, message, confirmation) {
            Ok(confirm) => {
                self.outputs.push_back(Output::Send {
                    group: group.clone(),
                    peer: peer.clone(),
                    request: Request::Confirm {
                        tag: group_tag(group),
                        confirmation: ByteBuf::from(confirm.to_vec()),
                    },
                });
                joining.current = Some(Exchange {
                    peer,
                    peer_bytes,
                    nonce: ours,
                    step: Step::Confirmed,
                });
            }
            Err(reason) => {
                // The password is wrong, or this member does not know it:
                // nothing is sent back; try another member.
                joining.mismatches = joining.mismatches.saturating_add(1);
                self.outputs.push_back(Output::AuthenticationFailed {
                    group: group.clone(),
                    peer,
                    reason,
                });
                self.try_next(group, now, rng);
            }
        }
    }

    /// The member admitted `joining` (removed from the joins): checks what
    /// it sent and emits the admission, or the failure.
    fn admitted(
        &mut self,
        group: &PeerName,
        joining: Joining<P>,
        peer: P,
        chain: &[u8],
        key: Option<WrappedKey>,
        peer_time: Timestamp,
    ) {
        let checked = check_admission(group, &joining, chain, key, peer_time);
        match checked {
            Ok((chain, key)) => self.outputs.push_back(Output::Admitted {
                group: group.clone(),
                operation: joining.operation,
                peer,
                identity: joining.identity,
                properties: joining.properties,
                secret: joining.secret,
                chain,
                key,
            }),
            Err(error) => {
                self.outputs.push_back(Output::AuthenticationFailed {
                    group: group.clone(),
                    peer,
                    reason: error.clone(),
                });
                self.outputs.push_back(Output::JoinFailed {
                    group: group.clone(),
                    operation: joining.operation,
                    error,
                });
            }
        }
    }

    // ----- the member ------------------------------------------------------------

    /// Answers `peer`'s (id bytes `peer_bytes`) request. `group` is the
    /// group the request's [`tag_of`] names and the local identity that is
    /// its member (`session.state()`, `session.identity()`), or `None` if
    /// that group is not here (a group whose tag differs counts as none).
    /// `peer_time` is the group clock: it checks this member's own
    /// credential and is the minted credential's `not_before`. Outputs
    /// (failed attempts, admissions) are queued for
    /// [`Admission::poll_output`].
    ///
    /// `Start`, refused in this order: "no such group here"; "too many
    /// attempts: try again later" with the peer's remaining wait in ms;
    /// `Busy` (retry after 1000 ms, nothing counted) with
    /// [`MAX_OPEN_CHECKS`] checks open; the error's name (`e.name()`, no
    /// wait, nothing counted) if the group admits no passwords, this member
    /// does not hold the secret, its credential does not verify or is not
    /// valid at `peer_time`, its role cannot grant the policy's role, or the
    /// joiner's identity does not decode. Otherwise the attempt is counted
    /// (the peer must wait [`FIRST_BACKOFF`], doubled per attempt up to
    /// [`MAX_BACKOFF`], before its next `Start`) and the check starts:
    /// `Challenge`, or the name of the error if the joiner's SPAKE2 message
    /// is malformed. A new `Start` replaces the peer's open check.
    ///
    /// `Confirm`: "no such group here"; "no exchange was started" without an
    /// open check; a wrong confirmation is an [`Output::AttemptFailed`] and
    /// `Refused` with its name and the remaining wait. Otherwise the joiner's
    /// credential for the policy's role is minted (from `peer_time` until
    /// this member's own expires), the group's current key wrapped for it
    /// (none if there is none or it cannot be wrapped), the peer's count
    /// cleared, and [`Output::AdmittedJoiner`]: `Admitted`; or `Refused`
    /// with the name of the error if minting fails.
    #[allow(clippy::too_many_arguments)] // The fixed shape of the host's call.
    pub fn answer(
        &mut self,
        peer: P,
        peer_bytes: &[u8],
        request: Request,
        group: Option<(&GroupState, &Identity)>,
        peer_time: Timestamp,
        now: Instant,
        rng: &mut impl CryptoRng,
    ) -> Response {
        let tag = *tag_of(&request);
        let Some((state, identity)) = group.filter(|(state, _)| group_tag(state.group()) == tag)
        else {
            return refused("no such group here", None);
        };
        match request {
            Request::Start {
                identity: joiner,
                message,
                nonce,
                ..
            } => {
                if let Some(wait) = self.wait_ms(&peer, now) {
                    return refused("too many attempts: try again later", Some(wait));
                }
                if self.checks.len() >= MAX_OPEN_CHECKS {
                    return Response::Busy {
                        retry_after_ms: BUSY_RETRY_MS,
                    };
                }
                let check = Check {
                    state,
                    identity,
                    peer,
                    peer_bytes,
                    joiner: &joiner,
                    message: &message,
                    nonce,
                };
                match self.start_check(check, peer_time, now, rng) {
                    Ok(challenge) => challenge,
                    Err(e) => refused(e.name(), None),
                }
            }
            Request::Confirm { confirmation, .. } => {
                let group = state.group();
                let Some(checking) = self.checks.remove(&(peer.clone(), group.clone())) else {
                    return refused("no exchange was started", None);
                };
                if let Err(e) = checking.check.finish(&confirmation) {
                    let wait = self.wait_ms(&peer, now);
                    self.outputs.push_back(Output::AttemptFailed {
                        group: group.clone(),
                        peer,
                        reason: e.clone(),
                    });
                    return refused(e.name(), wait);
                }
                match admit(state, identity, &checking.joiner, peer_time, rng) {
                    Ok((chain, key)) => {
                        self.attempts.remove(&peer);
                        self.outputs.push_back(Output::AdmittedJoiner {
                            group: group.clone(),
                            peer,
                            joiner: checking.joiner.peer_name,
                        });
                        Response::Admitted {
                            chain: ByteBuf::from(chain),
                            key,
                        }
                    }
                    Err(e) => refused(e.name(), None),
                }
            }
        }
    }

    /// How long `peer` must still wait before its next attempt, in ms.
    fn wait_ms(&self, peer: &P, now: Instant) -> Option<u64> {
        let attempts = self.attempts.get(peer)?;
        (now < attempts.until).then(|| {
            let wait = attempts.until.saturating_duration_since(now).as_millis();
            u64::try_from(wait).unwrap_or(u64::MAX)
        })
    }

    /// Checks that this member can admit password joiners, counts the
    /// attempt and starts the check: returns the `Challenge`.
    fn start_check(
        &mut self,
        check: Check<'_, P>,
        peer_time: Timestamp,
        now: Instant,
        rng: &mut impl CryptoRng,
    ) -> Result<Response, Error> {
        let Check {
            state,
            identity,
            peer,
            peer_bytes,
            joiner,
            message,
            nonce: theirs,
        } = check;
        let group = state.group();
        let policy = state.properties().password.as_ref().ok_or_else(|| {
            Error::NotAuthorized("this group does not admit members by password".into())
        })?;
        let secret = state.password_secret().ok_or_else(|| {
            Error::NotAuthorized("this member cannot check the group password".into())
        })?;
        let mine = state.chain.verify(state.properties())?;
        mine.check_time(peer_time)?;
        if !mine.role.can_grant(policy.role) {
            return Err(Error::NotAuthorized(format!(
                "a {} cannot admit password joiners as {}",
                mine.role, policy.role
            )));
        }
        let joiner_info = Signed::<IdentityInfo>::from_bytes(joiner)?
            .payload()
            .clone();
        // Every exchange is one online guess: count it now (a joiner that
        // never confirms has still tested its guess against confirm_b).
        self.count_attempt(&peer, now);
        let context = PakeContext {
            group,
            joiner_identity: joiner,
            joiner_peer: peer_bytes,
            responder_peer: &self.local,
        };
        let (pake, b, confirm_b) = PasswordCheck::start(secret, &context, message, rng)?;
        let ours = random_32(rng);
        let proof = AuthProof::new(
            identity,
            &state.chain,
            AuthRole::Responder,
            &Transcript {
                group,
                initiator: peer_bytes,
                responder: &self.local,
                initiator_nonce: theirs,
                responder_nonce: ours,
            },
        )?;
        let replaced = self.checks.insert(
            (peer.clone(), group.clone()),
            Checking {
                check: pake,
                joiner: joiner_info,
                since: now,
            },
        );
        // A joiner that starts again while its previous check is still open
        // never confirmed that one: it was a wrong guess (the joiner stops at
        // a bad `confirm_b`), reported like one that timed out.
        if replaced.is_some() {
            self.outputs.push_back(Output::AttemptFailed {
                group: group.clone(),
                peer,
                reason: Error::NotAuthorized(
                    "the joiner did not confirm the password exchange (a wrong password)".into(),
                ),
            });
        }
        Ok(Response::Challenge {
            message: ByteBuf::from(b),
            confirmation: ByteBuf::from(confirm_b.to_vec()),
            proof,
            nonce: ours,
        })
    }

    /// One more attempt of `peer`: its wait doubles.
    fn count_attempt(&mut self, peer: &P, now: Instant) {
        let attempts = self.attempts.entry(peer.clone()).or_insert(Attempts {
            count: 0,
            until: now,
        });
        // Forgotten a day after its last wait ended, whether or not the
        // table was pruned since.
        if now >= after(attempts.until, ATTEMPTS_MEMORY) {
            attempts.count = 0;
        }
        attempts.count = attempts.count.saturating_add(1);
        attempts.until = after(now, backoff(attempts.count));
        let forget = after(attempts.until, ATTEMPTS_MEMORY);
        self.prune_at = earliest(self.prune_at, Some(forget));
        if self.attempts.len() > ATTEMPTS_REMEMBERED {
            // Over the bound: prune at the next timeout, which is now.
            self.prune_at = earliest(self.prune_at, Some(now));
        }
    }

    /// Forgets attempts a day after their wait ended, then the ones whose
    /// wait ended first while more than ATTEMPTS_REMEMBERED peers are left.
    fn prune_attempts(&mut self, now: Instant) {
        self.attempts
            .retain(|_, a| now < after(a.until, ATTEMPTS_MEMORY));
        let excess = self.attempts.len().saturating_sub(ATTEMPTS_REMEMBERED);
        if excess > 0 {
            let mut untils: Vec<Instant> = self.attempts.values().map(|a| a.until).collect();
            untils.sort_unstable();
            if let Some(cut) = untils.get(excess).copied() {
                self.attempts.retain(|_, a| a.until >= cut);
            }
        }
        self.prune_at = self
            .attempts
            .values()
            .map(|a| after(a.until, ATTEMPTS_MEMORY))
            .min();
    }

    // ----- both ------------------------------------------------------------------

    /// `peer`'s last connection closed: its open checks are dropped (not
    /// counted as failures: the attempt was counted when it started), it is
    /// no longer a candidate, and a join that was asking it asks the next
    /// member. What it attempted is still remembered.
    pub fn peer_gone(&mut self, peer: &P, now: Instant, rng: &mut impl CryptoRng) {
        self.checks.retain(|(p, _), _| p != peer);
        let mut asking = Vec::new();
        for (group, joining) in &mut self.joins {
            joining.candidates.retain(|(p, _)| p != peer);
            if joining.current.take_if(|e| e.peer == *peer).is_some() {
                asking.push(group.clone());
            }
        }
        for group in asking {
            self.try_next(&group, now, rng);
        }
    }

    /// Runs what is due at `now`: checks not confirmed within
    /// [`PASSWORD_TIMEOUT`] fail ([`Output::AttemptFailed`]); joins past
    /// their deadline, or past their [`MISMATCH_GRACE`] with no exchange
    /// under way, fail ([`Output::JoinFailed`]); joins whose `Busy` wait
    /// ended ask again (hence the `rng`); attempts are forgotten as
    /// [`ATTEMPTS_MEMORY`] and [`ATTEMPTS_REMEMBERED`] say. Calling it early
    /// or often is harmless.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut impl CryptoRng) {
        let mut stale: Vec<((P, PeerName), Instant)> = self
            .checks
            .iter()
            .filter(|(_, c)| now >= after(c.since, PASSWORD_TIMEOUT))
            .map(|(k, c)| (k.clone(), c.since))
            .collect();
        stale.sort_by_key(|(_, since)| *since);
        for (key, _) in stale {
            self.checks.remove(&key);
            let (peer, group) = key;
            self.outputs.push_back(Output::AttemptFailed {
                group,
                peer,
                reason: Error::NotAuthorized(
                    "the joiner did not confirm the password exchange (a wrong password)".into(),
                ),
            });
        }
        let late: Vec<PeerName> = self
            .joins
            .iter()
            .filter(|(_, j)| {
                now >= j.deadline || (j.current.is_none() && j.fail_at.is_some_and(|at| now >= at))
            })
            .map(|(g, _)| g.clone())
            .collect();
        for group in late {
            if let Some(joining) = self.joins.remove(&group) {
                let error = joining.final_error(&group);
                self.outputs.push_back(Output::JoinFailed {
                    group,
                    operation: joining.operation,
                    error,
                });
            }
        }
        let waited: Vec<PeerName> = self
            .joins
            .iter()
            .filter(|(_, j)| j.current.is_none() && j.wait_until.is_some_and(|t| now >= t))
            .map(|(g, _)| g.clone())
            .collect();
        for group in waited {
            self.try_next(&group, now, rng);
        }
        if self.prune_at.is_some_and(|t| now >= t) {
            self.prune_attempts(now);
        }
    }

    /// The earliest instant [`Admission::handle_timeout`] has something to
    /// do: a join's deadline, its end after [`MISMATCH_GRACE`], the end of a
    /// `Busy` wait, an open check's [`PASSWORD_TIMEOUT`], or (possibly early)
    /// the next time attempts may be forgotten. `None`: nothing to wait for.
    /// Costs one pass over the open checks (at most [`MAX_OPEN_CHECKS`]) and
    /// the joins.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let checks = self
            .checks
            .values()
            .map(|c| after(c.since, PASSWORD_TIMEOUT))
            .min();
        let joins = self
            .joins
            .values()
            .flat_map(|j| {
                let idle = j.current.is_none();
                [
                    Some(j.deadline),
                    j.fail_at.filter(|_| idle),
                    j.wait_until.filter(|_| idle),
                ]
            })
            .flatten()
            .min();
        earliest(earliest(checks, joins), self.prune_at)
    }

    /// The next output, oldest first; call it until `None` after every other
    /// call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output<P>> {
        self.outputs.pop_front()
    }
}

/// What a `Start` brings to [`Admission::start_check`].
#[derive(Debug)]
struct Check<'a, P> {
    state: &'a GroupState,
    identity: &'a Identity,
    peer: P,
    peer_bytes: &'a [u8],
    /// The joiner's signed identity info (envelope bytes).
    joiner: &'a [u8],
    /// SPAKE2 `A`.
    message: &'a [u8],
    /// The joiner's nonce.
    nonce: [u8; 32],
}

/// Checks a member's admission of `joining`: the chain (CBOR) must verify,
/// be valid at `peer_time` and name the joining identity and its key; the
/// wrapped key must open for that identity.
fn check_admission<P>(
    group: &PeerName,
    joining: &Joining<P>,
    chain: &[u8],
    key: Option<WrappedKey>,
    peer_time: Timestamp,
) -> Result<(CredentialChain, Option<GroupKey>), Error> {
    let chain = CredentialChain::from_bytes(chain)?;
    let membership = chain.verify(joining.properties.properties())?;
    membership.check_time(peer_time)?;
    if &membership.subject != joining.identity.peer_name()
        || membership.key != joining.identity.keypair().public()
    {
        return Err(Error::InvalidCredential(
            "the minted credential is not for the joining identity".into(),
        ));
    }
    let key = key
        .map(|wrapped| {
            unwrap_key(
                &wrapped,
                joining.identity.keypair(),
                group.as_str().as_bytes(),
            )
        })
        .transpose()?;
    Ok((chain, key))
}

/// Mints `joiner`'s credential for the password role (from `peer_time`,
/// valid as long as this member's own) and wraps the group's current key
/// for it: the chain's bytes and the wrapped key.
fn admit(
    state: &GroupState,
    identity: &Identity,
    joiner: &IdentityInfo,
    peer_time: Timestamp,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Option<WrappedKey>), Error> {
    let policy = state.properties().password.as_ref().ok_or_else(|| {
        Error::NotAuthorized("this group does not admit members by password".into())
    })?;
    let mine = state.chain.verify(state.properties())?;
    let chain = issue_credential(
        identity,
        &state.chain,
        state.properties(),
        joiner,
        policy.role,
        peer_time,
        mine.not_after,
    )?;
    let bytes = chain.to_bytes()?;
    // As the node's group authentication does: a key that cannot be wrapped
    // is not sent (the joiner gets it when it authenticates).
    let key = state.current_key().and_then(|key| {
        wrap_key(
            key,
            &joiner.key,
            random_32(rng),
            state.group().as_str().as_bytes(),
        )
        .ok()
    });
    Ok((bytes, key))
}

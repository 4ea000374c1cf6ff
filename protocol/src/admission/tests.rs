//! A joiner's and members' machines driven against each other, with real
//! identities, a real password group (cheap Argon2 costs), a virtual
//! monotonic clock and a separate peer time.
//!
//! (Over 600 lines, on purpose: one scenario per admission rule.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::HashMap;

use rand::{SeedableRng, rngs::StdRng};

use super::*;
use crate::{
    GroupSpec, INFINITE_VALIDITY_SECS, KdfParams, PasswordPolicy, Role,
    testing::{T0, identity},
};

const PASSWORD: &str = "correct horse";
const JOINER: u8 = 1;
const MEMBER: u8 = 2;
const OTHER: u8 = 3;

/// Peer time in the tests: a day after the group was created.
const NOW: Timestamp = T0.saturating_add_secs(86_400);

/// How long a test join may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// A peer's id bytes.
fn bytes(peer: impl fmt::Display) -> Vec<u8> {
    format!("peer id {peer}").into_bytes()
}

/// A password group that grants `Member` to password joiners, its creator,
/// its key and the secrets of the right and of a wrong password.
struct World {
    creator: Identity,
    props: SignedProperties,
    group: PeerName,
    key: GroupKey,
    right: PasswordSecret,
    wrong: PasswordSecret,
}

fn world() -> World {
    let creator = identity(1, "creator");
    let policy = PasswordPolicy::new(Role::Member, [7; 16], KdfParams::MIN).unwrap();
    let props = GroupSpec {
        password: Some(policy.clone()),
        ..GroupSpec::new(creator.peer_name(), "pw")
    }
    .create(&creator, T0, |_| false)
    .unwrap();
    World {
        group: props.properties().group_peer_name.clone(),
        creator,
        props,
        key: GroupKey::new(0, [0x4b; 32]),
        right: PasswordSecret::derive(PASSWORD, &policy).unwrap(),
        wrong: PasswordSecret::derive("correct horsf", &policy).unwrap(),
    }
}

impl World {
    /// The creator's group state, holding `secret` as the password's.
    fn creator_state(&self, secret: &PasswordSecret) -> GroupState {
        GroupState {
            properties: self.props.clone(),
            member: self.creator.peer_name().clone(),
            chain: CredentialChain::creator(),
            ready: true,
            keys: vec![self.key.clone()],
            password: Some(secret.clone()),
        }
    }

    /// `who`'s credential for `role`, valid from T0 for a year.
    fn chain(&self, who: &Identity, role: Role) -> CredentialChain {
        issue_credential(
            &self.creator,
            &CredentialChain::creator(),
            self.props.properties(),
            who.info().unwrap().payload(),
            role,
            T0,
            T0.saturating_add_secs(365 * 86_400),
        )
        .unwrap()
    }

    /// `who`'s group state as a member of `role` holding the right secret.
    fn member_state(&self, who: &Identity, role: Role) -> GroupState {
        GroupState {
            member: who.peer_name().clone(),
            chain: self.chain(who, role),
            ..self.creator_state(&self.right)
        }
    }

    /// A `Start` of `who` on peer `joiner_peer` to the member on
    /// `member_peer`, with `secret`; the joiner's state to confirm.
    fn start_request(
        &self,
        who: &Identity,
        secret: &PasswordSecret,
        joiner_peer: &[u8],
        member_peer: &[u8],
        rng: &mut StdRng,
    ) -> (PasswordJoin, Request) {
        let info = who.info().unwrap().into_bytes();
        let context = PakeContext {
            group: &self.group,
            joiner_identity: &info,
            joiner_peer,
            responder_peer: member_peer,
        };
        let (join, message) = PasswordJoin::start(secret, &context, rng);
        let request = Request::Start {
            tag: group_tag(&self.group),
            identity: ByteBuf::from(info),
            message: ByteBuf::from(message),
            nonce: [5; 32],
        };
        (join, request)
    }

    fn confirm_request(&self, confirmation: &[u8]) -> Request {
        Request::Confirm {
            tag: group_tag(&self.group),
            confirmation: ByteBuf::from(confirmation.to_vec()),
        }
    }
}

/// A member machine and the group it answers for.
struct Member {
    machine: Admission<u8>,
    state: GroupState,
    identity: Identity,
}

/// A joiner (peer [`JOINER`], identity "bob") and members by peer; the
/// joiner's Sends go to the member they name.
struct Net {
    w: World,
    rng: StdRng,
    /// The monotonic clock's start and its current reading.
    base: Instant,
    now: Instant,
    peer_time: Timestamp,
    me: Identity,
    joiner: Admission<u8>,
    members: HashMap<u8, Member>,
    /// The joiner's outputs other than Sends, in order.
    out: Vec<Output<u8>>,
}

impl Net {
    /// The creator on [`MEMBER`] holds the right secret.
    fn new() -> Net {
        let w = world();
        let state = w.creator_state(&w.right);
        let creator = w.creator.clone();
        let base = Instant::now();
        let mut net = Net {
            w,
            rng: StdRng::seed_from_u64(7),
            base,
            now: base,
            peer_time: NOW,
            me: identity(20, "bob"),
            joiner: Admission::new(bytes(JOINER)),
            members: HashMap::new(),
            out: Vec::new(),
        };
        net.add_member(MEMBER, state, creator);
        net
    }

    fn add_member(&mut self, peer: u8, state: GroupState, identity: Identity) {
        self.members.insert(
            peer,
            Member {
                machine: Admission::new(bytes(peer)),
                state,
                identity,
            },
        );
    }

    fn join_start(&self, secret: &PasswordSecret) -> JoinStart {
        JoinStart {
            operation: 42,
            identity: self.me.clone(),
            properties: self.w.props.clone(),
            secret: secret.clone(),
            deadline: self.now + JOIN_TIMEOUT,
        }
    }

    fn join(&mut self, secret: &PasswordSecret, candidates: &[u8]) {
        let start = self.join_start(secret);
        self.joiner
            .join(
                start,
                candidates.iter().map(|p| (*p, bytes(p))),
                self.now,
                &mut self.rng,
            )
            .unwrap();
    }

    /// The joiner's next Send; its other outputs go to `out`.
    fn next_send(&mut self) -> Option<(u8, Request)> {
        while let Some(output) = self.joiner.poll_output() {
            match output {
                Output::Send {
                    group,
                    peer,
                    request,
                } => {
                    assert_eq!(group, self.w.group);
                    return Some((peer, request));
                }
                other => self.out.push(other),
            }
        }
        None
    }

    /// Member `peer` answers the joiner's `request`.
    fn ask(&mut self, peer: u8, request: Request) -> Response {
        let member = self.members.get_mut(&peer).expect("a member on that peer");
        member.machine.answer(
            JOINER,
            &bytes(JOINER),
            request,
            Some((&member.state, &member.identity)),
            self.peer_time,
            self.now,
            &mut self.rng,
        )
    }

    /// Member `peer`'s answer reaches the joiner.
    fn reply(&mut self, peer: u8, response: Response) {
        let group = self.w.group.clone();
        self.joiner.on_response(
            &group,
            &peer,
            response,
            self.peer_time,
            self.now,
            &mut self.rng,
        );
    }

    /// Delivers every Send to its member and the answer back, until the
    /// joiner sends nothing more; returns the Sends to peers that are no
    /// members here (unanswered).
    fn run(&mut self) -> Vec<(u8, Request)> {
        let mut unanswered = Vec::new();
        while let Some((peer, request)) = self.next_send() {
            if self.members.contains_key(&peer) {
                let response = self.ask(peer, request);
                self.reply(peer, response);
            } else {
                unanswered.push((peer, request));
            }
        }
        unanswered
    }

    /// Moves the monotonic clock to `base + at` and runs every machine's
    /// timeouts (then [`Net::run`]).
    fn at(&mut self, at: Duration) -> Vec<(u8, Request)> {
        self.now = self.base + at;
        self.joiner.handle_timeout(self.now, &mut self.rng);
        for member in self.members.values_mut() {
            member.machine.handle_timeout(self.now, &mut self.rng);
        }
        self.run()
    }

    /// What member `peer` emitted since last asked.
    fn member_out(&mut self, peer: u8) -> Vec<Output<u8>> {
        let machine = &mut self.members.get_mut(&peer).unwrap().machine;
        std::iter::from_fn(|| machine.poll_output()).collect()
    }

    /// The joiner's outputs other than Sends, since last asked.
    fn take_out(&mut self) -> Vec<Output<u8>> {
        assert!(self.next_send().is_none(), "a Send was left undelivered");
        std::mem::take(&mut self.out)
    }

    /// The join's end: its error.
    fn join_failed(&mut self) -> Error {
        let out = self.take_out();
        match out.as_slice() {
            [
                Output::JoinFailed {
                    group,
                    operation: 42,
                    error,
                },
            ] if *group == self.w.group => error.clone(),
            other => panic!("expected the join to fail, got {other:?}"),
        }
    }
}

fn is_refused(response: &Response, want: &str, wait: Option<u64>) -> bool {
    matches!(response, Response::Refused { reason, retry_after_ms } if reason == want && *retry_after_ms == wait)
}

// ----- 1. the right password ----------------------------------------------------

#[test]
fn the_right_password_admits_with_the_policy_role_and_the_group_key() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[MEMBER]);
    assert!(net.joiner.is_joining(&net.w.group));
    assert!(net.run().is_empty());
    let out = net.take_out();
    let [
        Output::Admitted {
            group,
            operation,
            peer,
            identity,
            properties,
            secret,
            chain,
            key,
        },
    ] = out.as_slice()
    else {
        panic!("expected an admission, got {out:?}");
    };
    assert_eq!((group, *operation, *peer), (&net.w.group, 42, MEMBER));
    assert_eq!(identity.peer_name(), net.me.peer_name());
    assert_eq!(properties, &net.w.props);
    assert_eq!(secret, &net.w.right);
    let membership = chain.verify(net.w.props.properties()).unwrap();
    assert_eq!(&membership.subject, net.me.peer_name());
    assert_eq!(membership.key, net.me.keypair().public());
    assert_eq!(membership.role, Role::Member, "the policy's role");
    // Minted at peer time, valid as long as the creator's own credential.
    assert_eq!(membership.not_before, NOW);
    assert_eq!(
        membership.not_after,
        T0.saturating_add_secs(INFINITE_VALIDITY_SECS)
    );
    assert_eq!(key.as_ref(), Some(&net.w.key));
    assert!(!net.joiner.is_joining(&net.w.group));
    assert_eq!(net.joiner.poll_timeout(), None);
    let me = net.me.peer_name().clone();
    let member = net.member_out(MEMBER);
    assert!(
        matches!(member.as_slice(), [Output::AdmittedJoiner { peer: JOINER, joiner, .. }] if *joiner == me),
        "{member:?}"
    );
    assert!(net.members[&MEMBER].machine.checks.is_empty());
}

#[test]
fn a_member_that_joined_by_password_and_can_grant_admits_too() {
    let mut net = Net::new();
    let admin = identity(6, "admin");
    let state = net.w.member_state(&admin, Role::InvitingMember);
    net.add_member(OTHER, state, admin.clone());
    let right = net.w.right.clone();
    net.join(&right, &[OTHER]);
    net.run();
    let out = net.take_out();
    let [Output::Admitted { peer, chain, .. }] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(*peer, OTHER);
    // The chain runs through the inviting member's credential.
    assert_eq!(chain.len(), 3);
    let membership = chain.verify(net.w.props.properties()).unwrap();
    assert_eq!(membership.not_after, T0.saturating_add_secs(365 * 86_400));
}

// ----- 2. a wrong password ----------------------------------------------------------

#[test]
fn a_wrong_password_is_counted_and_ends_the_join_after_the_grace() {
    let mut net = Net::new();
    let wrong = net.w.wrong.clone();
    net.join(&wrong, &[MEMBER]);
    net.run();
    let out = net.take_out();
    assert!(
        matches!(
            out.as_slice(),
            [Output::AuthenticationFailed {
                peer: MEMBER,
                reason: Error::NotAuthorized(_),
                ..
            }]
        ),
        "{out:?}"
    );
    // Nobody else to ask: the join ends MISMATCH_GRACE later.
    assert!(net.joiner.is_joining(&net.w.group));
    assert_eq!(net.joiner.poll_timeout(), Some(net.base + MISMATCH_GRACE));
    // The member's check is open until PASSWORD_TIMEOUT.
    assert_eq!(
        net.members[&MEMBER].machine.poll_timeout(),
        Some(net.base + PASSWORD_TIMEOUT)
    );
    net.at(MISMATCH_GRACE - Duration::from_millis(1));
    assert!(net.take_out().is_empty());
    net.at(MISMATCH_GRACE);
    assert_eq!(
        net.join_failed(),
        Error::NotAuthorized("wrong group password".into())
    );
    assert!(!net.joiner.is_joining(&net.w.group));
    assert!(net.member_out(MEMBER).is_empty());
    net.at(PASSWORD_TIMEOUT - Duration::from_millis(1));
    assert!(net.member_out(MEMBER).is_empty());
    net.at(PASSWORD_TIMEOUT);
    let member = net.member_out(MEMBER);
    assert!(
        matches!(member.as_slice(), [Output::AttemptFailed { peer: JOINER, reason: Error::NotAuthorized(r), group }]
            if r.contains("did not confirm") && *group == net.w.group),
        "{member:?}"
    );
}

#[test]
fn a_member_that_connects_within_the_grace_still_admits() {
    // An impostor (it does not know the password) answers first.
    let mut net = Net::new();
    let impostor = net.w.creator_state(&net.w.wrong);
    let creator = net.w.creator.clone();
    net.add_member(OTHER, impostor, creator);
    let right = net.w.right.clone();
    net.join(&right, &[OTHER]);
    net.run();
    assert!(matches!(
        net.take_out().as_slice(),
        [Output::AuthenticationFailed { peer: OTHER, .. }]
    ));
    assert_eq!(net.joiner.poll_timeout(), Some(net.base + MISMATCH_GRACE));
    net.at(Duration::from_secs(1));
    let group = net.w.group.clone();
    net.joiner
        .candidate(&group, MEMBER, bytes(MEMBER), net.now, &mut net.rng);
    net.run();
    assert!(matches!(
        net.take_out().as_slice(),
        [Output::Admitted { peer: MEMBER, .. }]
    ));
}

#[test]
fn an_admission_without_our_confirmation_is_a_mismatch() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[MEMBER]);
    let (peer, _start) = net.next_send().unwrap();
    // A member that skips the exchange: it has not shown it knows the password.
    let me = net.me.clone();
    let chain = net.w.chain(&me, Role::Member).to_bytes().unwrap();
    net.reply(
        peer,
        Response::Admitted {
            chain: ByteBuf::from(chain),
            key: None,
        },
    );
    assert!(net.take_out().is_empty());
    net.at(MISMATCH_GRACE);
    assert_eq!(
        net.join_failed(),
        Error::NotAuthorized("wrong group password".into())
    );
}

#[test]
fn a_credential_minted_for_another_identity_fails_the_join() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[MEMBER]);
    let (peer, start) = net.next_send().unwrap();
    let challenge = net.ask(peer, start);
    net.reply(peer, challenge);
    let (peer, confirm) = net.next_send().unwrap();
    assert!(matches!(confirm, Request::Confirm { .. }));
    let Response::Admitted { key, .. } = net.ask(peer, confirm) else {
        panic!("not admitted");
    };
    let eve = identity(9, "eve");
    let chain = net.w.chain(&eve, Role::Member).to_bytes().unwrap();
    net.reply(
        peer,
        Response::Admitted {
            chain: ByteBuf::from(chain),
            key,
        },
    );
    let out = net.take_out();
    assert!(
        matches!(
            out.as_slice(),
            [
                Output::AuthenticationFailed {
                    peer: MEMBER,
                    reason: Error::InvalidCredential(_),
                    ..
                },
                Output::JoinFailed {
                    operation: 42,
                    error: Error::InvalidCredential(_),
                    ..
                },
            ]
        ),
        "{out:?}"
    );
    assert!(!net.joiner.is_joining(&net.w.group));
}

// ----- 3. a guesser -----------------------------------------------------------------

#[test]
fn a_guesser_waits_doubling_up_to_ten_minutes_and_a_success_clears_it() {
    let mut net = Net::new();
    let (me, wrong) = (net.me.clone(), net.w.wrong.clone());
    let mut wait = FIRST_BACKOFF;
    let mut at = Duration::ZERO;
    let mut seen = Vec::new();
    for _ in 0..10 {
        net.now = net.base + at;
        let (_, start) =
            net.w
                .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
        assert!(matches!(
            net.ask(MEMBER, start.clone()),
            Response::Challenge { .. }
        ));
        let again = net.ask(MEMBER, start.clone());
        assert!(
            is_refused(&again, "too many attempts: try again later", Some(ms(wait))),
            "{again:?}"
        );
        seen.push(ms(wait) / 1000);
        // Still refused 1 ms before the wait ends.
        net.now = net.base + at + wait - Duration::from_millis(1);
        assert!(is_refused(
            &net.ask(MEMBER, start),
            "too many attempts: try again later",
            Some(1)
        ));
        at += wait;
        wait = (wait * 2).min(MAX_BACKOFF);
    }
    assert_eq!(seen, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    // Each new start found the previous check still open (no timeout ran
    // here): that one was never confirmed, a wrong guess, reported once.
    let out = net.member_out(MEMBER);
    assert_eq!(out.len(), 9, "{out:?}");
    assert!(
        out.iter()
            .all(|o| matches!(o, Output::AttemptFailed { peer: JOINER, .. })),
        "{out:?}"
    );

    // The right password, once the wait is over: admitted, and the count
    // starts again from zero.
    net.now = net.base + at;
    let right = net.w.right.clone();
    net.join(&right, &[MEMBER]);
    net.run();
    assert!(matches!(
        net.take_out().as_slice(),
        [Output::Admitted { .. }]
    ));
    let (_, start) = net
        .w
        .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    assert!(matches!(
        net.ask(MEMBER, start.clone()),
        Response::Challenge { .. }
    ));
    assert!(is_refused(
        &net.ask(MEMBER, start),
        "too many attempts: try again later",
        Some(ms(FIRST_BACKOFF))
    ));
}

#[test]
fn a_wrong_confirmation_is_a_failed_attempt() {
    let mut net = Net::new();
    let (me, wrong) = (net.me.clone(), net.w.wrong.clone());
    let (_, start) = net
        .w
        .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    assert!(matches!(net.ask(MEMBER, start), Response::Challenge { .. }));
    net.now += Duration::from_secs(1);
    let confirm = net.w.confirm_request(&[0; 32]);
    let refusal = net.ask(MEMBER, confirm.clone());
    assert!(
        is_refused(&refusal, "PEER_E_NOT_AUTHORIZED", Some(4000)),
        "{refusal:?}"
    );
    let out = net.member_out(MEMBER);
    assert!(
        matches!(
            out.as_slice(),
            [Output::AttemptFailed {
                peer: JOINER,
                reason: Error::NotAuthorized(_),
                ..
            }]
        ),
        "{out:?}"
    );
    // The check is over: a second confirmation finds none.
    assert!(is_refused(
        &net.ask(MEMBER, confirm),
        "no exchange was started",
        None
    ));
}

// ----- 4. an unconfirmed check --------------------------------------------------------

#[test]
fn an_unconfirmed_check_times_out_as_a_failed_attempt() {
    let mut net = Net::new();
    let (me, wrong) = (net.me.clone(), net.w.wrong.clone());
    let (_, start) = net
        .w
        .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    assert!(matches!(net.ask(MEMBER, start), Response::Challenge { .. }));
    let member = &net.members[&MEMBER].machine;
    assert_eq!(member.poll_timeout(), Some(net.base + PASSWORD_TIMEOUT));
    net.at(PASSWORD_TIMEOUT - Duration::from_millis(1));
    assert!(net.member_out(MEMBER).is_empty());
    assert_eq!(net.members[&MEMBER].machine.checks.len(), 1);
    net.at(PASSWORD_TIMEOUT);
    let out = net.member_out(MEMBER);
    assert!(
        matches!(out.as_slice(), [Output::AttemptFailed { peer: JOINER, reason: Error::NotAuthorized(r), .. }] if r.contains("did not confirm")),
        "{out:?}"
    );
    let confirm = net.w.confirm_request(&[0; 32]);
    assert!(is_refused(
        &net.ask(MEMBER, confirm),
        "no exchange was started",
        None
    ));
    // The attempt stays counted: the next one waits twice as long.
    let (_, start) = net
        .w
        .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    assert!(matches!(
        net.ask(MEMBER, start.clone()),
        Response::Challenge { .. }
    ));
    assert!(is_refused(
        &net.ask(MEMBER, start),
        "too many attempts: try again later",
        Some(10_000)
    ));
}

#[test]
fn a_new_start_over_an_open_check_reports_the_old_one_as_a_failed_attempt() {
    // Found by the behaviour tests: a joiner whose wait ended (5 s) starts
    // again before its unconfirmed check timed out (10 s). The new check
    // replaced the old one silently: the wrong guess was never reported.
    let mut net = Net::new();
    let (me, wrong) = (net.me.clone(), net.w.wrong.clone());
    let (_, start) = net
        .w
        .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    assert!(matches!(net.ask(MEMBER, start), Response::Challenge { .. }));
    net.at(FIRST_BACKOFF);
    assert!(net.member_out(MEMBER).is_empty());
    let (_, again) = net
        .w
        .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    assert!(matches!(net.ask(MEMBER, again), Response::Challenge { .. }));
    let out = net.member_out(MEMBER);
    assert!(
        matches!(out.as_slice(), [Output::AttemptFailed { peer: JOINER, reason: Error::NotAuthorized(r), .. }] if r.contains("did not confirm")),
        "{out:?}"
    );
    assert_eq!(net.members[&MEMBER].machine.checks.len(), 1);
}

// ----- 5. a step of peer time -----------------------------------------------------------

#[test]
fn a_step_of_peer_time_moves_no_timeout() {
    for step in [600_000i64, -600_000] {
        let mut net = Net::new();
        let right = net.w.right.clone();
        net.join(&right, &[MEMBER]);
        let (peer, start) = net.next_send().unwrap();
        let challenge = net.ask(peer, start);
        // A check is open on the member, an exchange under way on the joiner.
        let joiner_timeout = net.joiner.poll_timeout();
        let member_timeout = net.members[&MEMBER].machine.poll_timeout();
        assert_eq!(joiner_timeout, Some(net.base + JOIN_TIMEOUT));
        assert_eq!(member_timeout, Some(net.base + PASSWORD_TIMEOUT));
        net.peer_time = NOW.saturating_offset(step);
        assert!(net.at(Duration::from_secs(1)).is_empty());
        assert!(net.take_out().is_empty(), "step {step}");
        assert!(net.member_out(MEMBER).is_empty(), "step {step}");
        assert!(net.joiner.is_joining(&net.w.group));
        assert_eq!(net.members[&MEMBER].machine.checks.len(), 1);
        assert_eq!(net.joiner.poll_timeout(), joiner_timeout, "step {step}");
        assert_eq!(
            net.members[&MEMBER].machine.poll_timeout(),
            member_timeout,
            "step {step}"
        );
        // The exchange completes at the new peer time.
        net.reply(peer, challenge);
        net.run();
        let out = net.take_out();
        let [Output::Admitted { chain, .. }] = out.as_slice() else {
            panic!("step {step}: {out:?}");
        };
        let membership = chain.verify(net.w.props.properties()).unwrap();
        assert_eq!(membership.not_before, net.peer_time, "step {step}");
    }
}

// ----- 6. busy members, members that cannot admit, odd requests, peers gone ---------------

#[test]
fn a_member_with_every_check_open_is_busy_and_counts_nothing() {
    let w = world();
    let state = w.creator_state(&w.right);
    let me = identity(20, "bob");
    let mut rng = StdRng::seed_from_u64(3);
    let now = Instant::now();
    let mut member: Admission<u16> = Admission::new(bytes(MEMBER));
    let ask = |member: &mut Admission<u16>, peer: u16, rng: &mut StdRng| {
        let (_, start) = w.start_request(&me, &w.wrong, &bytes(peer), &bytes(MEMBER), rng);
        member.answer(
            peer,
            &bytes(peer),
            start,
            Some((&state, &w.creator)),
            NOW,
            now,
            rng,
        )
    };
    for peer in 0..u16::try_from(MAX_OPEN_CHECKS).unwrap() {
        assert!(matches!(
            ask(&mut member, peer, &mut rng),
            Response::Challenge { .. }
        ));
    }
    let late = 5000;
    assert!(matches!(
        ask(&mut member, late, &mut rng),
        Response::Busy {
            retry_after_ms: 1000
        }
    ));
    assert!(!member.attempts.contains_key(&late), "nothing counted");
    // A joiner gone frees its check (not counted as a failure).
    member.peer_gone(&0, now, &mut rng);
    assert!(matches!(
        ask(&mut member, late, &mut rng),
        Response::Challenge { .. }
    ));
    member.handle_timeout(now + PASSWORD_TIMEOUT, &mut rng);
    let failed = std::iter::from_fn(|| member.poll_output()).count();
    assert_eq!(failed, MAX_OPEN_CHECKS, "every check but the gone one's");
}

#[test]
fn a_busy_member_is_asked_again_after_its_wait() {
    // OTHER (not answered automatically) says it is busy; MEMBER would admit.
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[OTHER, MEMBER]);
    let (peer, _) = net.next_send().unwrap();
    assert_eq!(peer, OTHER);
    net.reply(OTHER, Response::Busy { retry_after_ms: 0 });
    // At least 100 ms, and nobody else is asked meanwhile.
    assert!(net.next_send().is_none());
    let group = net.w.group.clone();
    net.joiner
        .candidate(&group, 4, bytes(4), net.now, &mut net.rng);
    assert!(net.next_send().is_none());
    assert_eq!(
        net.joiner.poll_timeout(),
        Some(net.base + Duration::from_millis(100))
    );
    let sends = net.at(Duration::from_millis(100));
    assert!(
        matches!(sends.as_slice(), [(OTHER, Request::Start { .. })]),
        "the busy member again, before the others: {sends:?}"
    );
    net.reply(
        OTHER,
        Response::Busy {
            retry_after_ms: u64::MAX,
        },
    );
    // At most 10 s.
    let wait = Duration::from_millis(100) + Duration::from_secs(10);
    assert_eq!(net.joiner.poll_timeout(), Some(net.base + wait));
    assert!(net.at(wait - Duration::from_millis(1)).is_empty());
    let sends = net.at(wait);
    assert!(matches!(sends.as_slice(), [(OTHER, Request::Start { .. })]));
    assert!(net.take_out().is_empty());
    // It never answers and goes: the next candidate in arrival order
    // (MEMBER, before 4) admits.
    net.joiner.peer_gone(&OTHER, net.now, &mut net.rng);
    assert!(net.run().is_empty());
    assert!(matches!(
        net.take_out().as_slice(),
        [Output::Admitted { peer: MEMBER, .. }]
    ));
    assert!(net.joiner.poll_timeout().is_none());
}

#[test]
fn a_member_that_cannot_grant_the_role_refuses_without_counting() {
    let mut net = Net::new();
    let plain = identity(5, "plain");
    let state = net.w.member_state(&plain, Role::Member);
    net.add_member(OTHER, state, plain);
    let (me, right) = (net.me.clone(), net.w.right.clone());
    for _ in 0..2 {
        let (_, start) =
            net.w
                .start_request(&me, &right, &bytes(JOINER), &bytes(OTHER), &mut net.rng);
        let refusal = net.ask(OTHER, start);
        assert!(
            is_refused(&refusal, "PEER_E_NOT_AUTHORIZED", None),
            "{refusal:?}"
        );
    }
    assert!(net.members[&OTHER].machine.attempts.is_empty());
    // A joiner told so by every member waits for others until its deadline,
    // then reports the refusal.
    net.join(&right, &[OTHER]);
    net.run();
    assert!(net.take_out().is_empty());
    assert_eq!(net.joiner.poll_timeout(), Some(net.base + JOIN_TIMEOUT));
    net.at(JOIN_TIMEOUT);
    assert_eq!(
        net.join_failed(),
        Error::NotAuthorized("no member admitted the password: PEER_E_NOT_AUTHORIZED".into())
    );
}

#[test]
fn a_joiner_does_not_confirm_to_a_member_that_cannot_admit_or_does_not_prove() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[OTHER, 4, MEMBER]);
    let info = net.me.info().unwrap().into_bytes();
    let plain = identity(5, "plain");
    // OTHER knows the password but is a plain member; 4 answers with the
    // creator's proof over another nonce. Neither gets a confirmation.
    let mut pending = net.next_send().unwrap();
    for (peer, prover, chain, nonce_ok) in [
        (
            OTHER,
            plain.clone(),
            net.w.chain(&plain, Role::Member),
            true,
        ),
        (4, net.w.creator.clone(), CredentialChain::creator(), false),
    ] {
        let (asked, start) = pending;
        assert_eq!(asked, peer);
        let Request::Start { message, nonce, .. } = start else {
            panic!("not a start");
        };
        let member_bytes = bytes(peer);
        let context = PakeContext {
            group: &net.w.group,
            joiner_identity: &info,
            joiner_peer: &bytes(JOINER),
            responder_peer: &member_bytes,
        };
        let (_, b, confirm_b) =
            PasswordCheck::start(&net.w.right, &context, &message, &mut net.rng).unwrap();
        let proof = AuthProof::new(
            &prover,
            &chain,
            AuthRole::Responder,
            &Transcript {
                group: &net.w.group,
                initiator: &bytes(JOINER),
                responder: &member_bytes,
                initiator_nonce: if nonce_ok { nonce } else { [0; 32] },
                responder_nonce: [3; 32],
            },
        )
        .unwrap();
        net.reply(
            peer,
            Response::Challenge {
                message: ByteBuf::from(b),
                confirmation: ByteBuf::from(confirm_b.to_vec()),
                proof,
                nonce: [3; 32],
            },
        );
        pending = net.next_send().unwrap();
        assert!(
            matches!(pending.1, Request::Start { .. }),
            "no confirmation: the next member is asked"
        );
        let out = std::mem::take(&mut net.out);
        assert!(
            matches!(out.as_slice(), [Output::AuthenticationFailed { peer: p, .. }] if *p == peer),
            "{out:?}"
        );
        if nonce_ok {
            assert!(matches!(
                &out[0],
                Output::AuthenticationFailed { reason: Error::NotAuthorized(r), .. }
                    if r == "the member that answered cannot admit password joiners"
            ));
        }
    }
    // Neither was a mismatch (the password was not tested).
    assert_eq!(net.joiner.joins[&net.w.group].mismatches, 0);
    let (peer, start) = pending;
    assert_eq!(peer, MEMBER);
    let challenge = net.ask(peer, start);
    net.reply(peer, challenge);
    net.run();
    assert!(matches!(
        net.take_out().as_slice(),
        [Output::Admitted { peer: MEMBER, .. }]
    ));
}

#[test]
fn requests_for_no_group_here_or_no_exchange_are_refused() {
    let mut net = Net::new();
    let (me, right) = (net.me.clone(), net.w.right.clone());
    let (_, start) = net
        .w
        .start_request(&me, &right, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    let member = net.members.get_mut(&MEMBER).unwrap();
    let none = member.machine.answer(
        JOINER,
        &bytes(JOINER),
        start.clone(),
        None,
        NOW,
        net.now,
        &mut net.rng,
    );
    assert!(is_refused(&none, "no such group here", None));
    // A group whose tag is not the request's is no such group either.
    let other_creator = identity(8, "other");
    let other_props = GroupSpec {
        password: net.w.props.properties().password.clone(),
        ..GroupSpec::new(other_creator.peer_name(), "pw")
    }
    .create(&other_creator, T0, |_| false)
    .unwrap();
    let other = GroupState {
        properties: other_props,
        member: other_creator.peer_name().clone(),
        ..net.w.creator_state(&right)
    };
    let wrong_group = member.machine.answer(
        JOINER,
        &bytes(JOINER),
        start,
        Some((&other, &other_creator)),
        NOW,
        net.now,
        &mut net.rng,
    );
    assert!(is_refused(&wrong_group, "no such group here", None));
    assert!(member.machine.attempts.is_empty());
    let confirm = net.w.confirm_request(&[1; 32]);
    assert!(is_refused(
        &net.ask(MEMBER, confirm),
        "no exchange was started",
        None
    ));
    assert!(net.member_out(MEMBER).is_empty());
}

#[test]
fn a_member_gone_hands_over_to_the_next_candidate() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[OTHER, MEMBER]);
    let (peer, start) = net.next_send().unwrap();
    assert_eq!(peer, OTHER);
    assert!(matches!(start, Request::Start { .. }));
    net.joiner.peer_gone(&OTHER, net.now, &mut net.rng);
    // A late answer from the gone member is ignored.
    net.reply(
        OTHER,
        Response::Busy {
            retry_after_ms: 5000,
        },
    );
    net.run();
    assert!(matches!(
        net.take_out().as_slice(),
        [Output::Admitted { peer: MEMBER, .. }]
    ));
}

#[test]
fn a_joiner_gone_drops_its_check_uncounted_as_a_failure() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[MEMBER]);
    let (peer, start) = net.next_send().unwrap();
    let _challenge = net.ask(peer, start);
    let member = &mut net.members.get_mut(&MEMBER).unwrap().machine;
    member.peer_gone(&JOINER, net.now, &mut net.rng);
    assert!(member.checks.is_empty());
    net.at(PASSWORD_TIMEOUT);
    assert!(net.member_out(MEMBER).is_empty());
}

#[test]
fn refusals_failures_and_waits_pick_the_final_error() {
    // A member that says to wait ends the join after the grace.
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[MEMBER]);
    let (peer, _) = net.next_send().unwrap();
    net.reply(
        peer,
        Response::Refused {
            reason: "too many attempts: try again later".into(),
            retry_after_ms: Some(4000),
        },
    );
    assert_eq!(net.joiner.poll_timeout(), Some(net.base + MISMATCH_GRACE));
    net.at(MISMATCH_GRACE);
    assert_eq!(
        net.join_failed(),
        Error::NotAuthorized("too many password attempts: try again in 4000 ms".into())
    );

    // A transport failure waits for other members until the deadline.
    let mut net = Net::new();
    net.join(&right, &[MEMBER]);
    let (peer, _) = net.next_send().unwrap();
    let group = net.w.group.clone();
    net.joiner
        .on_failure(&group, &OTHER, "not asked".into(), net.now, &mut net.rng);
    net.joiner
        .on_failure(&group, &peer, "timeout".into(), net.now, &mut net.rng);
    assert_eq!(net.joiner.poll_timeout(), Some(net.base + JOIN_TIMEOUT));
    net.at(JOIN_TIMEOUT - Duration::from_millis(1));
    assert!(net.take_out().is_empty());
    net.at(JOIN_TIMEOUT);
    assert_eq!(
        net.join_failed(),
        Error::NotAuthorized("no member admitted the password: timeout".into())
    );
}

#[test]
fn a_group_is_joined_once_at_a_time() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[]);
    let start = net.join_start(&right);
    assert!(matches!(
        net.joiner.join(start, [], net.now, &mut net.rng),
        Err(Error::GroupInUse(_))
    ));
    let mut wrong_policy = net.join_start(&right);
    let other_policy = PasswordPolicy::new(Role::Member, [8; 16], KdfParams::MIN).unwrap();
    wrong_policy.secret = PasswordSecret::derive(PASSWORD, &other_policy).unwrap();
    let mut fresh: Admission<u8> = Admission::new(bytes(JOINER));
    assert!(matches!(
        fresh.join(wrong_policy, [], net.now, &mut net.rng),
        Err(Error::InvalidArg(_))
    ));
    assert!(!fresh.is_joining(&net.w.group));
}

// ----- 7. no member at all -------------------------------------------------------------

#[test]
fn the_deadline_with_no_candidates_is_no_members_found() {
    let mut net = Net::new();
    let right = net.w.right.clone();
    net.join(&right, &[]);
    assert!(net.next_send().is_none());
    assert_eq!(net.joiner.poll_timeout(), Some(net.base + JOIN_TIMEOUT));
    net.at(JOIN_TIMEOUT - Duration::from_millis(1));
    assert!(net.take_out().is_empty());
    net.at(JOIN_TIMEOUT);
    let error = net.join_failed();
    assert_eq!(
        error,
        Error::NoMembersFound(format!(
            "no member of {} that can check the password was found",
            net.w.group
        ))
    );
    assert_eq!(net.joiner.poll_timeout(), None);
}

// ----- attempts memory -------------------------------------------------------------------

#[test]
fn attempts_are_forgotten_a_day_after_the_wait_ended() {
    let mut net = Net::new();
    let (me, wrong) = (net.me.clone(), net.w.wrong.clone());
    let start = |net: &mut Net| {
        net.w
            .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng)
            .1
    };
    // Two attempts: the second wait (10 s) ends at 15 s.
    let first = start(&mut net);
    assert!(matches!(net.ask(MEMBER, first), Response::Challenge { .. }));
    net.now = net.base + FIRST_BACKOFF;
    let second = start(&mut net);
    assert!(matches!(
        net.ask(MEMBER, second),
        Response::Challenge { .. }
    ));
    let ended = FIRST_BACKOFF + 2 * FIRST_BACKOFF;
    // Remembered up to a day after that: the third attempt waits 20 s.
    net.at(ended + ATTEMPTS_MEMORY - Duration::from_millis(1));
    assert_eq!(net.members[&MEMBER].machine.attempts.len(), 1);
    // Forgotten then; the next attempt is a first one again.
    net.at(ended + ATTEMPTS_MEMORY);
    assert!(net.members[&MEMBER].machine.attempts.is_empty());
    let third = start(&mut net);
    assert!(matches!(
        net.ask(MEMBER, third.clone()),
        Response::Challenge { .. }
    ));
    assert!(is_refused(
        &net.ask(MEMBER, third),
        "too many attempts: try again later",
        Some(ms(FIRST_BACKOFF))
    ));
}

#[test]
fn at_most_so_many_peers_are_remembered_the_earliest_forgotten_first() {
    let mut m: Admission<u32> = Admission::new(bytes(MEMBER));
    let mut rng = StdRng::seed_from_u64(1);
    let base = Instant::now();
    let n = u32::try_from(ATTEMPTS_REMEMBERED).unwrap();
    for peer in 0..n {
        m.count_attempt(&peer, base + Duration::from_millis(u64::from(peer)));
    }
    assert_eq!(
        m.poll_timeout(),
        Some(base + FIRST_BACKOFF + ATTEMPTS_MEMORY)
    );
    let last = base + Duration::from_millis(u64::from(n));
    m.count_attempt(&n, last);
    assert_eq!(m.poll_timeout(), Some(last), "over the bound: prune now");
    m.handle_timeout(last, &mut rng);
    assert_eq!(m.attempts.len(), ATTEMPTS_REMEMBERED);
    assert!(!m.attempts.contains_key(&0));
    assert!(m.attempts.contains_key(&1) && m.attempts.contains_key(&n));
    assert_eq!(
        m.poll_timeout(),
        Some(base + Duration::from_millis(1) + FIRST_BACKOFF + ATTEMPTS_MEMORY)
    );
}

#[test]
fn backoff_doubles_from_five_seconds_to_ten_minutes() {
    let waits: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(
        waits,
        [5, 10, 20, 40, 80, 160, 320, 600, 600, 600, 600, 600]
    );
    assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
}

#[test]
fn an_attempt_a_day_after_the_wait_is_a_first_one_even_before_pruning() {
    let mut net = Net::new();
    let (me, wrong) = (net.me.clone(), net.w.wrong.clone());
    for at in [Duration::ZERO, FIRST_BACKOFF] {
        net.now = net.base + at;
        let (_, start) =
            net.w
                .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
        assert!(matches!(net.ask(MEMBER, start), Response::Challenge { .. }));
    }
    // No timeout ran: the table still holds the attempts, yet they are over.
    net.now = net.base + 3 * FIRST_BACKOFF + ATTEMPTS_MEMORY;
    assert_eq!(net.members[&MEMBER].machine.attempts.len(), 1);
    let (_, start) = net
        .w
        .start_request(&me, &wrong, &bytes(JOINER), &bytes(MEMBER), &mut net.rng);
    assert!(matches!(
        net.ask(MEMBER, start.clone()),
        Response::Challenge { .. }
    ));
    assert!(is_refused(
        &net.ask(MEMBER, start),
        "too many attempts: try again later",
        Some(ms(FIRST_BACKOFF))
    ));
}

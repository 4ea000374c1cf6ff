//! The session's rules for what neighbours hand over (group keys, password
//! secrets) and for the hold of deferred records: who may plant what, and
//! what leaves the hold on its own.

use peergroup_protocol::{
    Authorizer, CredentialChain, GroupKey, GroupSpec, HOLD_TTL, Identity, KdfParams, KeyCommitment,
    Membership, PasswordPolicy, PasswordSecret, Record, Role, SignedProperties, SignedRecord,
    issue_credential,
    session::{GroupState, Session, SessionConfig, Stored},
    testing::{NOTE, T0, identity},
};

type Sess = Session<u32, u64>;

const KEY: [u8; 32] = [0x4b; 32];

/// A password group (Member role by password) and its creator.
fn group() -> (Identity, SignedProperties) {
    let creator = identity(1, "creator");
    let policy = PasswordPolicy::new(Role::Member, [3; 16], KdfParams::MIN).unwrap();
    let props = GroupSpec {
        password: Some(policy),
        ..GroupSpec::new(creator.peer_name(), "secure")
    }
    .create(&creator, T0, |_| false)
    .unwrap();
    // The creator's session commits to its key in the properties.
    let session = Sess::create(
        props,
        creator.clone(),
        GroupKey::new(0, KEY),
        SessionConfig::default(),
    )
    .unwrap();
    (creator, session.state().properties.clone())
}

fn chain(
    creator: &Identity,
    props: &SignedProperties,
    who: &Identity,
    role: Role,
) -> CredentialChain {
    issue_credential(
        creator,
        &CredentialChain::creator(),
        props.properties(),
        who.info().unwrap().payload(),
        role,
        T0,
        T0.saturating_add_secs(365 * 86_400),
    )
    .unwrap()
}

fn membership(
    creator: &Identity,
    props: &SignedProperties,
    who: &Identity,
    role: Role,
) -> Membership {
    chain(creator, props, who, role)
        .verify(props.properties())
        .unwrap()
}

/// `who`'s restored session of the group, as a member of `role`, holding no
/// key and no password secret.
fn member(creator: &Identity, props: &SignedProperties, who: &Identity, role: Role) -> Sess {
    Sess::restore(
        GroupState {
            properties: props.clone(),
            member: who.peer_name().clone(),
            chain: chain(creator, props, who, role),
            ready: true,
            keys: Vec::new(),
            password: None,
        },
        who.clone(),
        SessionConfig::default(),
        Stored::default(),
    )
    .unwrap()
}

#[test]
fn the_creator_commits_to_its_key_and_members_take_no_other() {
    let (creator, props) = group();
    let commitment = props.properties().key_commitment.unwrap();
    assert!(commitment.matches(&GroupKey::new(0, KEY), &props.properties().group_peer_name));
    let bob = identity(2, "bob");
    let mut s = member(&creator, &props, &bob, Role::Member);
    // A key of the same epoch, or of any other, that the creator did not
    // commit to: refused, nothing kept.
    for substitute in [
        GroupKey::new(0, [0x66; 32]),
        GroupKey::new(u32::MAX, [0x66; 32]),
    ] {
        assert!(s.learn_key(substitute).is_err());
        assert!(s.state().current_key().is_none());
    }
    assert_eq!(s.learn_key(GroupKey::new(0, KEY)), Ok(true));
    assert_eq!(s.learn_key(GroupKey::new(0, KEY)), Ok(false));
    // Once held, a different key for its epoch is refused too.
    assert!(s.learn_key(GroupKey::new(0, [0x67; 32])).is_err());
    assert_eq!(s.state().current_key(), Some(&GroupKey::new(0, KEY)));
    assert_eq!(
        KeyCommitment::to(s.state().current_key().unwrap(), s.name()),
        commitment
    );
}

#[test]
fn only_members_that_may_admit_can_hand_over_the_password_secret() {
    let (creator, props) = group();
    let policy = props.properties().password.clone().unwrap();
    let real = PasswordSecret::derive("correct horse battery", &policy).unwrap();
    let planted = PasswordSecret::from_parts(policy.salt, [0x66; 32]);
    let admin = identity(3, "admin");
    let member_only = identity(4, "member");
    let mut s = member(&creator, &props, &admin, Role::Admin);

    // A plain member may not admit password joiners: what it hands over is ignored.
    let from_member = membership(&creator, &props, &member_only, Role::Member);
    assert!(!s.offer_password(planted.clone(), &from_member));
    assert!(s.state().password_secret().is_none());
    // Another admin's is kept while none is held.
    let other_admin = identity(5, "other admin");
    let from_admin = membership(&creator, &props, &other_admin, Role::Admin);
    assert!(s.offer_password(planted.clone(), &from_admin));
    // The creator's overrides it; an admin's does not override a held one.
    let from_creator = Membership::creator(props.properties());
    assert!(s.offer_password(real.clone(), &from_creator));
    assert!(!s.offer_password(planted, &from_admin));
    assert_eq!(s.state().password_secret(), Some(&real));
}

fn held_note(signer: &Identity, props: &SignedProperties, n: u8, expires_in: u64) -> SignedRecord {
    let record = Record::new(
        peergroup_protocol::NewRecord::new(NOTE, T0.saturating_add_secs(expires_in)),
        [n; 8],
        &props.properties().group_peer_name,
        signer.peer_name(),
        T0,
    )
    .unwrap();
    SignedRecord::sign(record, signer.keypair()).unwrap()
}

#[test]
fn held_records_leave_when_they_expire_or_wait_too_long() {
    let (_, props) = group();
    let stranger = identity(9, "unknown signer");
    let mut a = Authorizer::new(&props);
    let short = held_note(&stranger, &props, 1, 60);
    let long = held_note(&stranger, &props, 2, 86_400);
    a.handle_at(short.clone(), T0);
    a.handle_at(long.clone(), T0);
    // The same envelope again is held once.
    a.handle_at(long.clone(), T0);
    assert_eq!(a.held(), 2);
    assert!(a.expire_held(T0.saturating_add_secs(30)).is_empty());
    assert_eq!(a.expire_held(T0.saturating_add_secs(61)), vec![short]);
    assert_eq!(a.held(), 1);
    assert_eq!(a.expire_held(T0.saturating_add(HOLD_TTL)), vec![long]);
    assert_eq!(a.held(), 0);
}

#[test]
fn a_member_shares_one_hold_quota_across_its_peers() {
    use peergroup_protocol::session::{Input, Origin, Output, Reason};
    let (creator, props) = group();
    let mut s = Sess::create(
        props.clone(),
        creator.clone(),
        GroupKey::new(0, KEY),
        SessionConfig::default(),
    )
    .unwrap();
    s.connect(T0).unwrap();
    let mallory = identity(6, "mallory");
    // Mallory's two nodes.
    for peer in [1, 2] {
        s.neighbor_member(peer, mallory.peer_name().clone());
        s.handle(Input::NeighborUp(peer), T0);
    }
    while s.poll_output().is_some() {}
    let limit = peergroup_protocol::session::MAX_HELD_PER_PEER;
    let signers: Vec<Identity> = (0..(limit / 200 + 2) as u8)
        .map(|i| identity(100u8.wrapping_add(i), "unknown"))
        .collect();
    let mut sent = 0u64;
    let mut hold_full = Vec::new();
    'outer: for signer in &signers {
        for n in 0..200u8 {
            // Half from each of Mallory's peers.
            let peer = if sent.is_multiple_of(2) { 1 } else { 2 };
            let record = held_note(signer, &props, n, 86_400);
            s.handle(
                Input::Record {
                    record: Ok(record),
                    origin: Origin::Gossip {
                        source: peer,
                        message: sent,
                    },
                },
                T0,
            );
            while let Some(output) = s.poll_output() {
                if let Output::Verdict {
                    message,
                    reason: Reason::HoldFull,
                    ..
                } = output
                {
                    hold_full.push(message);
                }
            }
            sent += 1;
            if sent as usize >= limit + 10 {
                break 'outer;
            }
        }
    }
    // Across both peers, Mallory gets one share: the records past it are
    // not held.
    assert_eq!(s.held(), limit);
    assert_eq!(hold_full.len(), 10);
}

//! The authorization table (reference 3.3.5), deferred validation, and order
//! independence of authorization decisions.

use std::collections::BTreeSet;

use peergroup_protocol::{
    AuthorizeError, Authorizer, CredentialChain, Error, GroupSpec, Identity, NewRecord, Record,
    RecordId, RecordType, Role, SignedRecord, Verdict, authorize, create_invitation,
    membership_record,
    testing::{T0, add, delete, identity, update},
};
use proptest::prelude::*;

use crate::membership::{Group, t};

/// A group with a member of every role, each with a chain and a published
/// membership record.
struct World {
    g: Group,
    admin: Identity,
    inviter: Identity,
    member: Identity,
    other: Identity,
    chains: Vec<(Identity, CredentialChain)>,
}

fn world() -> World {
    let g = Group::new();
    let root = CredentialChain::creator();
    let admin = identity(2, "admin");
    let inviter = identity(3, "inviter");
    let member = identity(4, "member");
    let other = identity(5, "other");
    let ca = g
        .grant(&g.creator, &root, &admin, Role::Admin, 365)
        .unwrap();
    let ci = g
        .grant(&g.creator, &root, &inviter, Role::InvitingMember, 365)
        .unwrap();
    let cm = g.grant(&admin, &ca, &member, Role::Member, 300).unwrap();
    let co = g.grant(&inviter, &ci, &other, Role::Member, 300).unwrap();
    let chains = vec![
        (admin.clone(), ca),
        (inviter.clone(), ci),
        (member.clone(), cm),
        (other.clone(), co),
    ];
    World {
        g,
        admin,
        inviter,
        member,
        other,
        chains,
    }
}

impl World {
    fn group(&self) -> &peergroup_protocol::PeerName {
        &self.g.p().group_peer_name
    }

    /// An authorizer that knows every member.
    fn authorizer(&self) -> Authorizer {
        let mut a = Authorizer::new(&self.g.props);
        for (_, chain) in &self.chains {
            a.learn_chain(chain).unwrap();
        }
        a
    }

    fn membership_records(&self) -> Vec<SignedRecord> {
        self.chains
            .iter()
            .map(|(who, chain)| membership_record(self.g.p(), chain, who, None, T0).unwrap())
            .collect()
    }
}

fn accepted(verdicts: &[Verdict]) -> bool {
    matches!(verdicts.first(), Some(Verdict::Accepted(_)))
}

#[test]
fn authorization_table_records() {
    let w = world();
    let a = w.authorizer();
    let g = w.group();
    let actors: [(&str, &Identity, bool); 4] = [
        ("creator", &w.g.creator, true),
        ("admin", &w.admin, true),
        ("inviting member", &w.inviter, false),
        ("member", &w.member, false),
    ];
    for (name, actor, may_change_others) in actors {
        // Add record: everyone.
        let own = add(actor, g, 1, b"mine", T0, 3600);
        assert!(a.check(&own).is_ok(), "{name} adds a record");
        // Update / delete own record: everyone.
        assert!(
            a.check(&update(actor, &own, b"v2", t(1))).is_ok(),
            "{name} updates own"
        );
        assert!(
            a.check(&delete(actor, &own, t(1))).is_ok(),
            "{name} deletes own"
        );
        // Update / delete others' records: creator and admins only.
        let theirs = add(&w.other, g, 7, b"theirs", T0, 3600);
        for change in [
            update(actor, &theirs, b"x", t(1)),
            delete(actor, &theirs, t(1)),
        ] {
            let verdict = a.check(&change);
            assert_eq!(
                verdict.is_ok(),
                may_change_others,
                "{name} changes others': {verdict:?}"
            );
            if !may_change_others {
                assert!(matches!(verdict, Err(AuthorizeError::NotAuthorized { .. })));
            }
        }
    }
}

#[test]
fn authorization_table_invitations_and_properties() {
    let w = world();
    let subject = identity(40, "newcomer").info().unwrap();
    let root = CredentialChain::creator();
    let chain_of = |who: &Identity| {
        w.chains
            .iter()
            .find(|(i, _)| i.peer_name() == who.peer_name())
            .map(|(_, c)| c.clone())
            .unwrap()
    };
    let cases: [(&str, &Identity, CredentialChain, [bool; 3]); 4] = [
        ("creator", &w.g.creator, root, [true, true, true]),
        ("admin", &w.admin, chain_of(&w.admin), [true, true, true]),
        (
            "inviting member",
            &w.inviter,
            chain_of(&w.inviter),
            [false, true, true],
        ),
        (
            "member",
            &w.member,
            chain_of(&w.member),
            [false, false, false],
        ),
    ];
    for (name, actor, chain, allowed) in cases {
        for (role, ok) in [Role::Admin, Role::InvitingMember, Role::Member]
            .into_iter()
            .zip(allowed)
        {
            let r = create_invitation(
                actor,
                &chain,
                &w.g.props,
                &subject,
                role,
                Some(t(3600)),
                t(1),
            );
            assert_eq!(r.is_ok(), ok, "{name} invites a {role}: {r:?}");
            if !ok {
                assert!(matches!(r, Err(Error::NotAuthorized(_))));
            }
        }
    }
    // Set properties: only the creator can sign them.
    let mut newer = w.g.p().clone();
    newer.revision = 2;
    newer.comment = "new rules".into();
    for who in [&w.admin, &w.inviter, &w.member] {
        assert!(matches!(
            peergroup_protocol::Signed::sign(newer.clone(), who.keypair()),
            Err(Error::NotAuthorized(_))
        ));
    }
    let signed = peergroup_protocol::Signed::sign(newer.clone(), w.g.creator.keypair()).unwrap();
    assert!(w.g.p().check_update(signed.properties()).is_ok());
    let mut renamed = newer.clone();
    renamed.cloud = peergroup_protocol::Cloud::LinkLocal;
    assert!(matches!(
        w.g.p().check_update(&renamed),
        Err(Error::InvalidGroupProperties(_))
    ));
    assert!(matches!(
        signed.properties().check_update(w.g.p()),
        Err(Error::InvalidGroupProperties(_))
    ));
}

#[test]
fn record_lifetime_must_lie_inside_the_touchers_credential() {
    let w = world();
    let a = w.authorizer();
    let g = w.group();
    // The member's credential ends after 300 days.
    let inside = add(&w.member, g, 1, b"", T0, 300 * 86_400);
    assert!(a.check(&inside).is_ok());
    let beyond = add(&w.member, g, 2, b"", T0, 300 * 86_400 + 1);
    assert!(matches!(
        a.check(&beyond),
        Err(AuthorizeError::NotAuthorized { .. })
    ));
    let too_early = add(
        &w.member,
        g,
        3,
        b"",
        peergroup_protocol::Timestamp::from_millis(T0.as_millis() - 1),
        60,
    );
    assert!(matches!(
        a.check(&too_early),
        Err(AuthorizeError::NotAuthorized { .. })
    ));
}

#[test]
fn wrong_group_reserved_types_and_strangers() {
    let w = world();
    let mut a = w.authorizer();
    let elsewhere = {
        let c = identity(60, "c");
        GroupSpec::new(c.peer_name(), "x")
            .create(&c, T0, |_| false)
            .unwrap()
            .properties()
            .group_peer_name
            .clone()
    };
    let misplaced = add(&w.member, &elsewhere, 1, b"", T0, 60);
    assert!(matches!(
        a.check(&misplaced),
        Err(AuthorizeError::WrongGroup { .. })
    ));
    let presence = NewRecord::new(RecordType::PRESENCE, t(60));
    let id = RecordId::new(w.member.peer_name(), [9; 8]);
    let r = Record::new_reserved(presence, id, w.group(), w.member.peer_name(), T0).unwrap();
    let r = SignedRecord::sign(r, w.member.keypair()).unwrap();
    assert!(matches!(a.check(&r), Err(AuthorizeError::ReservedType(_))));
    let stranger = identity(61, "stranger");
    let s = add(&stranger, w.group(), 1, b"", T0, 60);
    let v = a.handle(s);
    assert!(matches!(
        &v[0],
        Verdict::Held {
            reason: AuthorizeError::UnknownMember(_),
            ..
        }
    ));
    assert_eq!(a.held(), 1);
    assert!(
        Error::from(AuthorizeError::UnknownMember(stranger.peer_name().clone())).name()
            == "PEER_E_DEFERRED_VALIDATION"
    );
}

#[test]
fn deferred_validation_resolves_in_either_order() {
    let w = world();
    let records = w.membership_records();
    let member_membership = records[2].clone();
    let admin_membership = records[0].clone();
    let note = add(&w.member, w.group(), 1, b"hello", T0, 60);

    // Record first: held, then released by the membership record.
    let mut a = Authorizer::new(&w.g.props);
    // The member's chain was issued by the admin: the admin's own membership
    // record is not needed to verify it (the chain carries every link).
    let v = a.handle(note.clone());
    assert!(matches!(
        &v[..],
        [Verdict::Held {
            reason: AuthorizeError::UnknownMember(_),
            ..
        }]
    ));
    let v = a.handle(member_membership.clone());
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(matches!(&v[0], Verdict::Accepted(r) if r == &member_membership));
    assert!(matches!(&v[1], Verdict::Accepted(r) if r == &note));
    assert_eq!(a.held(), 0);

    // Membership first: the record is accepted at once.
    let mut b = Authorizer::new(&w.g.props);
    assert!(accepted(&b.handle(member_membership)));
    assert!(accepted(&b.handle(note)));

    // A membership record stored by an admin whose own membership is unknown
    // waits for it, and its release cascades to records waiting on the member.
    let admin_chain = &w.chains[0].1;
    let renewed = g_renew(&w, admin_chain);
    let stored_by_admin = membership_record(w.g.p(), &renewed, &w.admin, None, t(5)).unwrap();
    let late_note = add(&w.other, w.group(), 3, b"late", t(5), 60);
    let mut c = Authorizer::new(&w.g.props);
    assert!(matches!(
        &c.handle(late_note.clone())[..],
        [Verdict::Held { .. }]
    ));
    let v = c.handle(stored_by_admin.clone());
    assert!(
        matches!(
            &v[..],
            [Verdict::Held {
                reason: AuthorizeError::UnknownMember(_),
                ..
            }]
        ),
        "{v:?}"
    );
    let v = c.handle(admin_membership);
    let accepted: Vec<_> = v
        .iter()
        .filter_map(|v| match v {
            Verdict::Accepted(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(accepted.len(), 3, "{v:?}");
    assert!(accepted.contains(&stored_by_admin) && accepted.contains(&late_note));
}

/// The admin re-issues `other`'s credential (as with PEER_GROUP_STORE_CREDENTIALS).
fn g_renew(w: &World, admin_chain: &CredentialChain) -> CredentialChain {
    w.g.grant(&w.admin, admin_chain, &w.other, Role::Member, 200)
        .unwrap()
}

#[test]
fn invalid_membership_records_are_refused_for_good() {
    let w = world();
    let mut a = Authorizer::new(&w.g.props);
    // The member publishes the admin's chain as its own membership.
    let admin_chain = &w.chains[0].1;
    let wrong_subject = {
        let mut r = membership_record(w.g.p(), admin_chain, &w.admin, None, T0)
            .unwrap()
            .record()
            .clone();
        r.creator = w.member.peer_name().clone();
        r.id = RecordId::membership(w.member.peer_name());
        SignedRecord::sign(r, w.member.keypair()).unwrap()
    };
    let v = a.handle(wrong_subject);
    assert!(
        matches!(
            &v[..],
            [Verdict::Refused {
                reason: AuthorizeError::InvalidMembership(_),
                ..
            }]
        ),
        "{v:?}"
    );
    // Garbage data under the membership type.
    let garbage = {
        let mut r = membership_record(w.g.p(), &w.chains[2].1, &w.member, None, T0)
            .unwrap()
            .record()
            .clone();
        r.data = b"not a chain".to_vec();
        SignedRecord::sign(r, w.member.keypair()).unwrap()
    };
    assert!(matches!(&a.handle(garbage)[..], [Verdict::Refused { .. }]));
    assert_eq!(a.held(), 0);
}

#[test]
fn the_hold_is_bounded() {
    let w = world();
    let mut a = Authorizer::new(&w.g.props).with_max_held(3);
    let stranger = identity(70, "s");
    let mut dropped = Vec::new();
    for n in 0..5 {
        for v in a.handle(add(&stranger, w.group(), n, b"", T0, 60)) {
            if let Verdict::Dropped { record } = v {
                let id = record.record().id;
                dropped.push(id);
            }
        }
    }
    assert_eq!(a.held(), 3);
    let expected: Vec<RecordId> = (3..5)
        .map(|n| RecordId::new(stranger.peer_name(), (n as u64).to_be_bytes()))
        .collect();
    assert_eq!(
        dropped, expected,
        "held records are never evicted: the new ones are not held"
    );
}

/// One signer cannot fill the hold: past its share its records are not
/// held, and another signer's deferred record is still held, then accepted
/// when its membership arrives (issue 9: an outsider flooding self-signed
/// records cannot push a member's deferred record out).
#[test]
fn one_signer_cannot_take_the_hold() {
    let w = world();
    let mut a = Authorizer::new(&w.g.props)
        .with_max_held(10)
        .with_max_held_per_signer(4);
    let flooder = identity(71, "flooder");
    for n in 0..50 {
        a.handle(add(&flooder, w.group(), n, b"", T0, 60));
    }
    assert_eq!(a.held(), 4);
    let late = add(&w.member, w.group(), 1, b"deferred", T0, 60);
    assert!(matches!(
        &a.handle(late.clone())[..],
        [Verdict::Held { .. }]
    ));
    let memberships = w.membership_records();
    let released: Vec<_> = memberships
        .into_iter()
        .flat_map(|m| a.handle(m))
        .filter_map(|v| match v {
            Verdict::Accepted(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(
        released.contains(&late),
        "the member's record was kept and released"
    );
}

/// Every record of a busy group: memberships (self-published and stored by
/// admins, including a promotion), records by every member, unauthorized
/// changes, strangers, records outside credentials, a wrong group.
fn scenario(w: &World) -> Vec<SignedRecord> {
    let g = w.group();
    let mut all = w.membership_records();
    // The creator promotes the member to admin and stores the credential.
    let promoted =
        w.g.grant(
            &w.g.creator,
            &CredentialChain::creator(),
            &w.member,
            Role::Admin,
            100,
        )
        .unwrap();
    let previous = all[2].record().clone();
    all.push(membership_record(w.g.p(), &promoted, &w.g.creator, Some(&previous), t(10)).unwrap());
    let m1 = add(&w.member, g, 1, b"m1", T0, 3600);
    let o1 = add(&w.other, g, 1, b"o1", T0, 3600);
    let i1 = add(&w.inviter, g, 1, b"i1", T0, 3600);
    let stranger = identity(80, "stranger");
    all.extend([
        m1.clone(),
        o1.clone(),
        i1.clone(),
        update(&w.member, &o1, b"member edits other's", t(20)), // valid once promoted
        update(&w.other, &m1, b"other edits member's", t(20)),  // never valid
        delete(&w.admin, &i1, t(30)),
        update(&w.inviter, &i1, b"i2", t(25)),
        add(&stranger, g, 1, b"who?", T0, 60),
        add(&w.other, g, 2, b"too long", T0, 301 * 86_400),
    ]);
    all
}

fn accepted_set(authorizer: &mut Authorizer, records: &[SignedRecord]) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    for r in records {
        for v in authorizer.handle(r.clone()) {
            if let Verdict::Accepted(r) = v {
                out.insert(r.as_bytes().to_vec());
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn decisions_do_not_depend_on_arrival_order(seed in any::<u64>()) {
        let w = world();
        let records = scenario(&w);
        // The oracle: everything known first, then every record judged once.
        let mut oracle = w.authorizer();
        for r in w.membership_records() { oracle.handle(r); }
        let promoted = w.g.grant(&w.g.creator, &CredentialChain::creator(), &w.member, Role::Admin, 100).unwrap();
        oracle.learn_chain(&promoted).unwrap();
        let expected: BTreeSet<Vec<u8>> = records.iter()
            .filter(|r| authorize(r, w.g.p(), &oracle_members(&oracle)).is_ok())
            .map(|r| r.as_bytes().to_vec())
            .collect();
        prop_assert_eq!(expected.len(), records.len() - 3, "three records are never valid");

        let mut shuffled = records.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let got = accepted_set(&mut Authorizer::new(&w.g.props), &shuffled);
        prop_assert_eq!(got, expected);
    }
}

fn oracle_members(
    a: &Authorizer,
) -> std::collections::BTreeMap<peergroup_protocol::PeerName, Vec<peergroup_protocol::Membership>> {
    a.members().map(|(k, v)| (k.clone(), v.to_vec())).collect()
}

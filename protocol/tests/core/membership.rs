//! Roles, credentials and chains (reference 3.3, 3.9).

use peergroup_protocol::{
    CredentialChain, Error, GroupProperties, GroupSpec, INFINITE_VALIDITY_SECS, Identity,
    MAX_CHAIN_LEN, Membership, Role, SignedProperties, Timestamp, issue_credential,
    renew_credential,
    testing::{T0, identity},
};

pub(crate) struct Group {
    pub(crate) creator: Identity,
    pub(crate) props: SignedProperties,
}

impl Group {
    pub(crate) fn new() -> Group {
        let creator = identity(1, "creator");
        let props = GroupSpec::new(creator.peer_name(), "club")
            .create(&creator, T0, |_| false)
            .unwrap();
        Group { creator, props }
    }

    pub(crate) fn p(&self) -> &GroupProperties {
        self.props.properties()
    }

    /// `issuer` (with `chain`) grants `subject` `role` over `[T0, T0 + days)`.
    pub(crate) fn grant(
        &self,
        issuer: &Identity,
        chain: &CredentialChain,
        subject: &Identity,
        role: Role,
        days: u64,
    ) -> Result<CredentialChain, Error> {
        let info = subject.info().unwrap();
        issue_credential(
            issuer,
            chain,
            self.p(),
            info.payload(),
            role,
            T0,
            t(days * 86_400),
        )
    }
}

pub(crate) fn t(secs: u64) -> Timestamp {
    T0.saturating_add_secs(secs)
}

#[test]
fn role_capabilities_follow_windows() {
    use Role::*;
    for (issuer, grants) in [
        (Admin, vec![Admin, InvitingMember, Member]),
        (InvitingMember, vec![InvitingMember, Member]),
        (Member, vec![]),
    ] {
        for role in [Admin, InvitingMember, Member] {
            assert_eq!(
                issuer.can_grant(role),
                grants.contains(&role),
                "{issuer} granting {role}"
            );
        }
    }
    assert!(Admin.can_modify_others());
    assert!(!InvitingMember.can_modify_others());
    assert!(!Member.can_modify_others());
    assert_eq!("inviting-member".parse::<Role>().unwrap(), InvitingMember);
    assert!("owner".parse::<Role>().is_err());
}

#[test]
fn creator_membership_is_implied_admin_and_infinite() {
    let g = Group::new();
    let m = CredentialChain::creator().verify(g.p()).unwrap();
    assert_eq!(m, Membership::creator(g.p()));
    assert_eq!(m.role, Role::Admin);
    assert_eq!(m.chain_len, 1);
    assert_eq!(&m.subject, g.creator.peer_name());
    assert_eq!(m.not_after, T0.saturating_add_secs(INFINITE_VALIDITY_SECS));
}

/// Builds a chain of `len` (counting the creator) of admins, each issued by the previous.
fn admin_chain(g: &Group, len: usize) -> (Identity, CredentialChain) {
    let mut holder = g.creator.clone();
    let mut chain = CredentialChain::creator();
    for i in 1..len {
        let next = identity(10 + i as u8, &format!("admin{i}"));
        chain = g.grant(&holder, &chain, &next, Role::Admin, 365).unwrap();
        holder = next;
    }
    (holder, chain)
}

#[test]
fn chains_of_length_1_and_24_verify_and_25_does_not() {
    let g = Group::new();
    let (_, one) = admin_chain(&g, 1);
    assert_eq!(one.verify(g.p()).unwrap().chain_len, 1);
    let (last, full) = admin_chain(&g, MAX_CHAIN_LEN);
    assert_eq!(full.len(), 24);
    let m = full.verify(g.p()).unwrap();
    assert_eq!((m.chain_len, &m.subject), (24, last.peer_name()));
    // Extending a 24-long chain is refused when issuing...
    let extra = identity(99, "extra");
    assert!(matches!(
        g.grant(&last, &full, &extra, Role::Member, 30),
        Err(Error::ChainTooLong {
            length: 25,
            max: 24
        })
    ));
    // ...and a 25-long chain built by hand is refused when verifying.
    let info = extra.info().unwrap();
    let forged = peergroup_protocol::Credential {
        group: g.p().group_peer_name.clone(),
        subject: extra.peer_name().clone(),
        subject_key: extra.public_key(),
        issuer: last.peer_name().clone(),
        role: Role::Member,
        not_before: T0,
        not_after: t(86_400),
    };
    let _ = info;
    let mut creds = full.credentials().to_vec();
    creds.push(peergroup_protocol::Signed::sign(forged, last.keypair()).unwrap());
    let long = CredentialChain::from_credentials(creds);
    assert!(matches!(
        long.verify(g.p()),
        Err(Error::ChainTooLong {
            length: 25,
            max: 24
        })
    ));
    assert!(matches!(
        CredentialChain::from_bytes(&long.to_bytes().unwrap()),
        Err(Error::ChainTooLong { .. })
    ));
    // The wire form round-trips.
    assert_eq!(
        CredentialChain::from_bytes(&full.to_bytes().unwrap()).unwrap(),
        full
    );
}

#[test]
fn circular_chains_are_detected() {
    let g = Group::new();
    let a = identity(2, "a");
    let b = identity(3, "b");
    let ca = g
        .grant(
            &g.creator,
            &CredentialChain::creator(),
            &a,
            Role::Admin,
            365,
        )
        .unwrap();
    let cb = g.grant(&a, &ca, &b, Role::Admin, 300).unwrap();
    // A invites B invites A (same key, even under another classifier).
    let a_again = Identity::new(a.keypair().clone(), "a2", "").unwrap();
    assert!(matches!(
        g.grant(&b, &cb, &a, Role::Member, 100),
        Err(Error::CircularChainDetected)
    ));
    let a_again_info = a_again.info().unwrap();
    assert!(matches!(
        issue_credential(
            &b,
            &cb,
            g.p(),
            a_again_info.payload(),
            Role::Member,
            T0,
            t(100)
        ),
        Err(Error::CircularChainDetected)
    ));
    // Nobody can put the creator in its own chain either.
    assert!(matches!(
        g.grant(&a, &ca, &g.creator, Role::Member, 100),
        Err(Error::CircularChainDetected)
    ));
}

#[test]
fn credentials_never_outlive_their_issuer() {
    let g = Group::new();
    let a = identity(2, "a");
    let m = identity(3, "m");
    let ca = g
        .grant(&g.creator, &CredentialChain::creator(), &a, Role::Admin, 10)
        .unwrap();
    assert!(matches!(
        g.grant(&a, &ca, &m, Role::Member, 11),
        Err(Error::InvalidTimePeriod(_))
    ));
    assert!(g.grant(&a, &ca, &m, Role::Member, 10).is_ok());
    // Starting before the issuer's validity is refused too.
    let info = m.info().unwrap();
    let a_m = ca.verify(g.p()).unwrap();
    assert_eq!(a_m.not_before, T0);
    let early = Timestamp::from_millis(T0.as_millis() - 1);
    assert!(matches!(
        issue_credential(&a, &ca, g.p(), info.payload(), Role::Member, early, t(100)),
        Err(Error::InvalidTimePeriod(_))
    ));
    // An expired issuer's credential cannot cover anything new: any window
    // inside it is already in the past, and invitations check the issuer at now.
    assert!(a_m.check_time(t(10 * 86_400)).is_err());
    assert!(a_m.check_time(t(86_400)).is_ok());
}

#[test]
fn role_escalation_is_refused() {
    let g = Group::new();
    let inviter = identity(2, "inviter");
    let member = identity(3, "member");
    let x = identity(4, "x");
    let root = CredentialChain::creator();
    let ci = g
        .grant(&g.creator, &root, &inviter, Role::InvitingMember, 100)
        .unwrap();
    let cm = g
        .grant(&g.creator, &root, &member, Role::Member, 100)
        .unwrap();
    assert!(matches!(
        g.grant(&inviter, &ci, &x, Role::Admin, 10),
        Err(Error::NotAuthorized(_))
    ));
    assert!(g.grant(&inviter, &ci, &x, Role::InvitingMember, 10).is_ok());
    assert!(g.grant(&inviter, &ci, &x, Role::Member, 10).is_ok());
    for role in [Role::Admin, Role::InvitingMember, Role::Member] {
        assert!(
            matches!(
                g.grant(&member, &cm, &x, role, 10),
                Err(Error::NotAuthorized(_))
            ),
            "{role}"
        );
    }
    // Using someone else's chain is refused.
    assert!(matches!(
        g.grant(&x, &ci, &member, Role::Member, 10),
        Err(Error::NotAuthorized(_))
    ));
    // A hand-made escalation (a member signing an admin credential) fails verification.
    let forged = peergroup_protocol::Credential {
        group: g.p().group_peer_name.clone(),
        subject: x.peer_name().clone(),
        subject_key: x.public_key(),
        issuer: member.peer_name().clone(),
        role: Role::Admin,
        not_before: T0,
        not_after: t(10),
    };
    let mut creds = cm.credentials().to_vec();
    creds.push(peergroup_protocol::Signed::sign(forged, member.keypair()).unwrap());
    assert!(matches!(
        CredentialChain::from_credentials(creds).verify(g.p()),
        Err(Error::NotAuthorized(_))
    ));
}

#[test]
fn chains_are_bound_to_their_group_and_links() {
    let g = Group::new();
    let other = {
        let creator = identity(7, "other");
        let props = GroupSpec::new(creator.peer_name(), "elsewhere")
            .create(&creator, T0, |_| false)
            .unwrap();
        Group { creator, props }
    };
    let a = identity(2, "a");
    let ca = other
        .grant(
            &other.creator,
            &CredentialChain::creator(),
            &a,
            Role::Admin,
            10,
        )
        .unwrap();
    assert!(matches!(ca.verify(g.p()), Err(Error::InvalidCredential(_))));
    // A chain with a missing middle link is broken.
    let b = identity(3, "b");
    let m = identity(4, "m");
    let cb = g
        .grant(&g.creator, &CredentialChain::creator(), &b, Role::Admin, 10)
        .unwrap();
    let cm = g.grant(&b, &cb, &m, Role::Member, 10).unwrap();
    let skipped = CredentialChain::from_credentials(vec![cm.credentials()[1].clone()]);
    assert!(matches!(
        skipped.verify(g.p()),
        Err(Error::InvalidCredential(_))
    ));
}

#[test]
fn renewing_and_changing_roles() {
    let g = Group::new();
    let m = identity(3, "m");
    let root = CredentialChain::creator();
    let first = g.grant(&g.creator, &root, &m, Role::Member, 30).unwrap();
    let current = first.verify(g.p()).unwrap();
    let info = m.info().unwrap();
    let renewed = renew_credential(
        &g.creator,
        &root,
        g.p(),
        info.payload(),
        &current,
        None,
        t(86_400),
    )
    .unwrap();
    let r = renewed.verify(g.p()).unwrap();
    assert_eq!(r.role, Role::Member);
    assert_eq!(r.not_before, t(86_400));
    assert_eq!(r.not_after, t(31 * 86_400), "same duration as before");
    let promoted = renew_credential(
        &g.creator,
        &root,
        g.p(),
        info.payload(),
        &current,
        Some(Role::Admin),
        t(2),
    )
    .unwrap();
    assert_eq!(promoted.verify(g.p()).unwrap().role, Role::Admin);
    // The new start must be later than the current credential's.
    assert!(matches!(
        renew_credential(&g.creator, &root, g.p(), info.payload(), &current, None, T0),
        Err(Error::InvalidTimePeriod(_))
    ));
}

//! Invitations: text round trip, tamper detection, join-time checks.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use peergroup_protocol::{
    CredentialChain, Error, INVITATION_TEXT_PREFIX, InvitationInfo, Role, Scheme,
    create_invitation, create_password_invitation, testing::identity,
};

use crate::membership::{Group, t};

fn invitation_for(g: &Group, role: Role, expires: Option<peergroup_protocol::Timestamp>) -> String {
    let bob = identity(20, "bob").info().unwrap();
    create_invitation(
        &g.creator,
        &CredentialChain::creator(),
        &g.props,
        &bob,
        role,
        expires,
        t(1),
    )
    .unwrap()
}

#[test]
fn invitation_round_trips_through_its_text_form() {
    let g = Group::new();
    let bob = identity(20, "bob");
    let text = invitation_for(&g, Role::Member, Some(t(3600)));
    assert!(text.starts_with(INVITATION_TEXT_PREFIX));
    assert_eq!(text.lines().count(), 1, "one line");
    let info = InvitationInfo::parse(&text).unwrap();
    assert_eq!(info.group, g.p().group_peer_name);
    assert_eq!(info.group_friendly_name, g.p().friendly_name);
    assert_eq!(&info.issuer, g.creator.peer_name());
    assert_eq!(info.issuer_role, Role::Admin);
    assert_eq!(info.subject.as_ref(), Some(bob.peer_name()));
    assert_eq!(info.role, Role::Member);
    assert_eq!((info.not_before, info.not_after), (t(1), t(3600)));
    assert_eq!(info.scheme, Scheme::Credential);
    // Joining yields bob's verified chain.
    let chain = info.accept(&bob, t(2)).unwrap();
    let m = chain.verify(g.p()).unwrap();
    assert_eq!((&m.subject, m.role), (bob.peer_name(), Role::Member));
    // Pasted with line breaks and indentation, it still parses.
    let wrapped: String = text
        .as_bytes()
        .chunks(64)
        .map(|c| format!("    {}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    assert_eq!(InvitationInfo::parse(&wrapped).unwrap().chain, info.chain);
}

#[test]
fn expiry_defaults_to_and_is_bounded_by_the_issuers_validity() {
    let g = Group::new();
    let admin = identity(2, "admin");
    let ca = g
        .grant(
            &g.creator,
            &CredentialChain::creator(),
            &admin,
            Role::Admin,
            10,
        )
        .unwrap();
    let bob = identity(20, "bob").info().unwrap();
    let default = create_invitation(&admin, &ca, &g.props, &bob, Role::Member, None, t(1)).unwrap();
    assert_eq!(
        InvitationInfo::parse(&default).unwrap().not_after,
        t(10 * 86_400)
    );
    assert!(matches!(
        create_invitation(
            &admin,
            &ca,
            &g.props,
            &bob,
            Role::Member,
            Some(t(10 * 86_400 + 1)),
            t(1)
        ),
        Err(Error::InvalidTimePeriod(_))
    ));
    assert!(matches!(
        create_invitation(&admin, &ca, &g.props, &bob, Role::Member, Some(t(1)), t(1)),
        Err(Error::InvalidTimePeriod(_))
    ));
    // An issuer whose credential has expired cannot invite.
    assert!(matches!(
        create_invitation(
            &admin,
            &ca,
            &g.props,
            &bob,
            Role::Member,
            None,
            t(11 * 86_400)
        ),
        Err(Error::InvalidTimePeriod(_))
    ));
}

#[test]
fn join_time_checks() {
    let g = Group::new();
    let text = invitation_for(&g, Role::Member, Some(t(3600)));
    let info = InvitationInfo::parse(&text).unwrap();
    let bob = identity(20, "bob");
    let mallory = identity(21, "mallory");
    assert!(matches!(
        info.accept(&mallory, t(2)),
        Err(Error::InvitationNotTrusted(_))
    ));
    // Same key, other classifier: another identity.
    let bob_alt = peergroup_protocol::Identity::new(bob.keypair().clone(), "bob2", "").unwrap();
    assert!(matches!(
        info.accept(&bob_alt, t(2)),
        Err(Error::InvitationNotTrusted(_))
    ));
    assert!(matches!(
        info.accept(&bob, t(3600)),
        Err(Error::InvalidTimePeriod(_))
    ));
    // The start of validity tolerates a clock up to 15 minutes slow.
    let tolerance = i64::try_from(peergroup_protocol::NOT_BEFORE_TOLERANCE.as_millis()).unwrap();
    let start = info.not_before;
    assert!(
        matches!(
            info.accept(&bob, start.saturating_offset(-tolerance - 1)),
            Err(Error::InvalidTimePeriod(_))
        ),
        "before validity"
    );
    assert!(
        info.accept(&bob, start.saturating_offset(-tolerance))
            .is_ok()
    );
    assert!(info.accept(&bob, t(3599)).is_ok());
}

#[test]
fn tampering_with_any_byte_is_detected() {
    let g = Group::new();
    let text = invitation_for(&g, Role::Member, Some(t(3600)));
    let bytes = URL_SAFE_NO_PAD
        .decode(&text[INVITATION_TEXT_PREFIX.len()..])
        .unwrap();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let tampered = format!("{INVITATION_TEXT_PREFIX}{}", URL_SAFE_NO_PAD.encode(&b));
        let err = InvitationInfo::parse(&tampered).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvitationNotTrusted(_) | Error::UnsupportedVersion(_)
            ),
            "byte {i}: {err:?}"
        );
    }
    // Truncated text is not trusted either.
    assert!(matches!(
        InvitationInfo::parse(&text[..text.len() - 5]),
        Err(Error::InvitationNotTrusted(_))
    ));
}

#[test]
fn unsupported_versions_are_named() {
    let g = Group::new();
    let text = invitation_for(&g, Role::Member, None);
    let v9 = text.replacen("-v1:", "-v9:", 1);
    assert!(matches!(
        InvitationInfo::parse(&v9),
        Err(Error::UnsupportedVersion(_))
    ));
    assert!(matches!(
        InvitationInfo::parse("hello"),
        Err(Error::InvitationNotTrusted(_))
    ));
}

#[test]
fn an_identity_blob_is_not_an_invitation() {
    let bob = identity(20, "bob").public_text().unwrap();
    let relabelled = bob.replacen("peergroup-identity-v1:", INVITATION_TEXT_PREFIX, 1);
    assert!(matches!(
        InvitationInfo::parse(&relabelled),
        Err(Error::InvitationNotTrusted(_))
    ));
}

#[test]
fn password_invitations_carry_no_subject() {
    let (creator, props) = crate::password::password_group();
    assert!(props.properties().admits_passwords());
    let text =
        create_password_invitation(&creator, &CredentialChain::creator(), &props, t(1)).unwrap();
    let info = InvitationInfo::parse(&text).unwrap();
    assert_eq!(info.scheme, Scheme::Password);
    assert_eq!(info.subject, None);
    assert_eq!(info.role, Role::Member);
    assert!(matches!(
        info.accept(&identity(20, "bob"), t(2)),
        Err(Error::InvalidArg(_))
    ));
    // A group without a password has no password invitations.
    let g = Group::new();
    assert!(matches!(
        create_password_invitation(&g.creator, &CredentialChain::creator(), &g.props, t(1)),
        Err(Error::InvalidArg(_))
    ));
}

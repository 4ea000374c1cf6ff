//! Password groups: verifier, policy, and the proof exchange.

use peergroup_protocol::{
    CredentialChain, Error, GroupSpec, KdfParams, PasswordExchange, PasswordJoiner, PasswordKey,
    PasswordPolicy, Role, issue_credential,
    testing::{T0, identity},
};

/// A password group ("correct horse", members by password) and its creator.
pub(crate) fn password_group() -> (
    peergroup_protocol::Identity,
    peergroup_protocol::SignedProperties,
) {
    let creator = identity(1, "creator");
    let policy =
        PasswordPolicy::new("correct horse", Role::Member, [7; 16], KdfParams::MIN).unwrap();
    let spec = GroupSpec {
        password: Some(policy),
        ..GroupSpec::new(creator.peer_name(), "pw")
    };
    (
        creator.clone(),
        spec.create(&creator, T0, |_| false).unwrap(),
    )
}

#[test]
fn right_password_gets_a_credential() {
    let (creator, props) = password_group();
    let p = props.properties();
    let bob = identity(20, "bob");
    let joiner =
        PasswordJoiner::new("correct horse", p, bob.info().unwrap().payload().clone()).unwrap();
    let (exchange, challenge) =
        PasswordExchange::start(p, bob.info().unwrap().payload().clone(), [42; 32]).unwrap();
    let proof = joiner.respond(&challenge).unwrap();
    let grant = exchange.finish(&proof).unwrap();
    assert_eq!(grant.role, Role::Member);
    assert_eq!(&grant.subject.peer_name, bob.peer_name());
    let chain = issue_credential(
        &creator,
        &CredentialChain::creator(),
        p,
        &grant.subject,
        grant.role,
        T0,
        T0.saturating_add_secs(3600),
    )
    .unwrap();
    assert_eq!(chain.verify(p).unwrap().subject, *bob.peer_name());
}

#[test]
fn wrong_password_is_refused() {
    let (_, props) = password_group();
    let p = props.properties();
    let bob = identity(20, "bob").info().unwrap().payload().clone();
    assert!(matches!(
        PasswordJoiner::new("correct horsf", p, bob.clone()),
        Err(Error::NotAuthorized(_))
    ));
    // Even a joiner that skips its local check cannot produce a valid proof.
    let wrong_policy =
        PasswordPolicy::new("battery staple", Role::Member, [7; 16], KdfParams::MIN).unwrap();
    let mut fake = p.clone();
    fake.password = Some(wrong_policy);
    let liar = PasswordJoiner::new("battery staple", &fake, bob.clone()).unwrap();
    let (exchange, challenge) = PasswordExchange::start(p, bob, [1; 32]).unwrap();
    let proof = liar.respond(&challenge).unwrap();
    assert!(matches!(
        exchange.finish(&proof),
        Err(Error::NotAuthorized(_))
    ));
}

#[test]
fn proofs_do_not_replay_or_transfer() {
    let (_, props) = password_group();
    let p = props.properties();
    let bob = identity(20, "bob").info().unwrap().payload().clone();
    let eve = identity(21, "eve").info().unwrap().payload().clone();
    let joiner = PasswordJoiner::new("correct horse", p, bob.clone()).unwrap();
    let (_, first) = PasswordExchange::start(p, bob.clone(), [1; 32]).unwrap();
    let proof = joiner.respond(&first).unwrap();
    // Another nonce: the old proof fails.
    let (second, _) = PasswordExchange::start(p, bob, [2; 32]).unwrap();
    assert!(second.finish(&proof).is_err());
    // Same nonce, another joiner identity (a relay): fails.
    let (relay, _) = PasswordExchange::start(p, eve, [1; 32]).unwrap();
    assert!(relay.finish(&proof).is_err());
}

#[test]
fn the_group_stores_a_verifier_not_the_password() {
    let (_, props) = password_group();
    let bytes = props.as_bytes();
    let needle = b"correct horse";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    let policy = props.properties().password.as_ref().unwrap();
    let key = PasswordKey::derive("correct horse", policy).unwrap();
    assert!(key.matches(policy));
    assert!(
        !PasswordKey::derive("Correct horse", policy)
            .unwrap()
            .matches(policy)
    );
    assert_eq!(format!("{key:?}"), "PasswordKey(..)");
    // Another salt gives another verifier for the same password.
    let other =
        PasswordPolicy::new("correct horse", Role::Member, [8; 16], KdfParams::MIN).unwrap();
    assert_ne!(other.verifier, policy.verifier);
}

#[test]
fn policy_rules() {
    assert!(matches!(
        PasswordPolicy::new("short", Role::Member, [0; 16], KdfParams::MIN),
        Err(Error::PasswordDoesNotMeetPolicy(_))
    ));
    let cheap = KdfParams {
        m_cost: 64,
        ..KdfParams::MIN
    };
    assert!(matches!(
        PasswordPolicy::new("long enough", Role::Member, [0; 16], cheap),
        Err(Error::InvalidGroupProperties(_))
    ));
    // Password scheme and policy go together.
    let creator = identity(1, "creator");
    let spec = GroupSpec {
        auth_schemes: peergroup_protocol::AuthSchemes(3),
        ..GroupSpec::new(creator.peer_name(), "pw")
    };
    assert!(matches!(
        spec.create(&creator, T0, |_| false),
        Err(Error::InvalidGroupProperties(_))
    ));
    let g = crate::membership::Group::new();
    assert!(matches!(
        PasswordExchange::start(
            g.p(),
            identity(5, "x").info().unwrap().payload().clone(),
            [0; 32]
        ),
        Err(Error::NotAuthorized(_))
    ));
}

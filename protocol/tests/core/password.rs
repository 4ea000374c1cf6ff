//! Password groups: the policy, the password secret, and the admission
//! exchange (SPAKE2 with key confirmation).

use peergroup_protocol::{
    Error, GroupSpec, KdfParams, PakeContext, PasswordCheck, PasswordJoin, PasswordPolicy,
    PasswordSecret, PeerName, Role, check_password,
    testing::{T0, identity},
    unwrap_password_secret, wrap_password_secret,
};
use rand::{SeedableRng, rngs::StdRng};

/// A password group (members by password) and its creator. The password is
/// [`PASSWORD`]; the group's properties know only its salt and costs.
pub(crate) fn password_group() -> (
    peergroup_protocol::Identity,
    peergroup_protocol::SignedProperties,
) {
    let creator = identity(1, "creator");
    let policy = PasswordPolicy::new(Role::Member, [7; 16], KdfParams::MIN).unwrap();
    let spec = GroupSpec {
        password: Some(policy),
        ..GroupSpec::new(creator.peer_name(), "pw")
    };
    (
        creator.clone(),
        spec.create(&creator, T0, |_| false).unwrap(),
    )
}

pub(crate) const PASSWORD: &str = "correct horse";

fn secret(password: &str) -> PasswordSecret {
    let (_, props) = password_group();
    PasswordSecret::derive(password, props.properties().password.as_ref().unwrap()).unwrap()
}

/// The parts of one exchange's context.
struct Parts {
    group: PeerName,
    joiner: Vec<u8>,
    joiner_peer: Vec<u8>,
    responder_peer: Vec<u8>,
}

impl Parts {
    fn new() -> Parts {
        let (_, props) = password_group();
        Parts {
            group: props.properties().group_peer_name.clone(),
            joiner: identity(20, "bob").info().unwrap().into_bytes(),
            joiner_peer: b"joiner peer id".to_vec(),
            responder_peer: b"responder peer id".to_vec(),
        }
    }

    fn context(&self) -> PakeContext<'_> {
        PakeContext {
            group: &self.group,
            joiner_identity: &self.joiner,
            joiner_peer: &self.joiner_peer,
            responder_peer: &self.responder_peer,
        }
    }
}

/// Runs one exchange: the joiner knows `joiner_password`, the responder
/// holds the secret of `responder_password`; the responder's context may
/// differ from the joiner's. Returns what the joiner's check and then the
/// responder's check said.
fn exchange(
    joiner_password: &str,
    responder_password: &str,
    joiner_side: &Parts,
    responder_side: &Parts,
) -> (Result<(), Error>, Option<Result<(), Error>>) {
    let mut rng = StdRng::seed_from_u64(1);
    let (join, a) = PasswordJoin::start(&secret(joiner_password), &joiner_side.context(), &mut rng);
    let (check, b, confirm_b) = PasswordCheck::start(
        &secret(responder_password),
        &responder_side.context(),
        &a,
        &mut rng,
    )
    .unwrap();
    match join.confirm(&joiner_side.context(), &b, &confirm_b) {
        // The joiner sends nothing more: the responder never sees confirm_a.
        Err(e) => (Err(e), None),
        Ok(confirm_a) => (Ok(()), Some(check.finish(&confirm_a))),
    }
}

#[test]
fn the_right_password_completes_the_exchange_on_both_sides() {
    let parts = Parts::new();
    let (joiner, responder) = exchange(PASSWORD, PASSWORD, &parts, &parts);
    assert!(joiner.is_ok());
    assert!(matches!(responder, Some(Ok(()))));
}

#[test]
fn a_wrong_password_fails_before_the_joiner_confirms() {
    let parts = Parts::new();
    let (joiner, responder) = exchange("correct horsf", PASSWORD, &parts, &parts);
    assert!(matches!(joiner, Err(Error::NotAuthorized(_))), "{joiner:?}");
    assert!(responder.is_none());
    // A responder that does not know the password (an impostor) fails the
    // same way, and so gets nothing to test guesses against.
    let (joiner, responder) = exchange(PASSWORD, "impostor's guess", &parts, &parts);
    assert!(matches!(joiner, Err(Error::NotAuthorized(_))));
    assert!(responder.is_none());
}

#[test]
fn a_joiner_cannot_fake_the_confirmation() {
    let parts = Parts::new();
    let mut rng = StdRng::seed_from_u64(2);
    let (_, a) = PasswordJoin::start(&secret("wrong password"), &parts.context(), &mut rng);
    let (check, _, _) =
        PasswordCheck::start(&secret(PASSWORD), &parts.context(), &a, &mut rng).unwrap();
    assert!(matches!(
        check.finish(&[0u8; 32]),
        Err(Error::NotAuthorized(_))
    ));
}

#[test]
fn the_exchange_is_bound_to_the_joiner_and_the_connection() {
    let joiner_side = Parts::new();
    // A relay: the responder sees another joiner identity, or other peer ids.
    let other_identity = Parts {
        joiner: identity(21, "eve").info().unwrap().into_bytes(),
        ..Parts::new()
    };
    let other_connection = Parts {
        joiner_peer: b"another peer".to_vec(),
        ..Parts::new()
    };
    for responder_side in [&other_identity, &other_connection] {
        let (joiner, responder) = exchange(PASSWORD, PASSWORD, &joiner_side, responder_side);
        assert!(matches!(joiner, Err(Error::NotAuthorized(_))));
        assert!(responder.is_none());
    }
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let parts = Parts::new();
    let mut rng = StdRng::seed_from_u64(3);
    for bad in [&[][..], &[0x41][..], &[0u8; 33][..], &[0xffu8; 33][..]] {
        assert!(PasswordCheck::start(&secret(PASSWORD), &parts.context(), bad, &mut rng).is_err());
        let (join, _) = PasswordJoin::start(&secret(PASSWORD), &parts.context(), &mut rng);
        assert!(join.confirm(&parts.context(), bad, &[0; 32]).is_err());
    }
}

#[test]
fn the_group_publishes_nothing_derived_from_the_password() {
    let (_, props) = password_group();
    let bytes = props.as_bytes();
    let needle = PASSWORD.as_bytes();
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    // The policy is the same whatever the password: nothing in the
    // properties lets anyone test a guess.
    let policy = props.properties().password.clone().unwrap();
    assert_eq!(
        policy,
        PasswordPolicy::new(Role::Member, [7; 16], KdfParams::MIN).unwrap()
    );
    let w = secret(PASSWORD).secret_bytes();
    assert!(!bytes.windows(w.len()).any(|x| x == w.as_slice()));
}

#[test]
fn secrets_depend_on_password_and_salt_and_stay_redacted() {
    let (_, props) = password_group();
    let policy = props.properties().password.clone().unwrap();
    let right = PasswordSecret::derive(PASSWORD, &policy).unwrap();
    assert_eq!(right, PasswordSecret::derive(PASSWORD, &policy).unwrap());
    assert_ne!(
        right,
        PasswordSecret::derive("Correct horse", &policy).unwrap()
    );
    let resalted = PasswordPolicy {
        salt: [8; 16],
        ..policy.clone()
    };
    let other = PasswordSecret::derive(PASSWORD, &resalted).unwrap();
    assert_ne!(right.secret_bytes(), other.secret_bytes());
    assert!(right.is_for(&policy) && !right.is_for(&resalted));
    assert_eq!(format!("{right:?}"), "PasswordSecret(..)");
}

#[test]
fn a_secret_wrapped_for_a_member_opens_only_for_it_and_its_password() {
    let (_, props) = password_group();
    let group = props.properties().group_peer_name.clone();
    let policy = props.properties().password.clone().unwrap();
    let admin = identity(30, "admin");
    let s = secret(PASSWORD);
    let wrapped = wrap_password_secret(&s, &group, &admin.keypair().public(), [9; 32]).unwrap();
    let opened = unwrap_password_secret(&wrapped, &group, &policy, admin.keypair()).unwrap();
    assert_eq!(opened, s);
    let other = identity(31, "other");
    assert!(unwrap_password_secret(&wrapped, &group, &policy, other.keypair()).is_err());
    let resalted = PasswordPolicy {
        salt: [8; 16],
        ..policy
    };
    assert!(unwrap_password_secret(&wrapped, &group, &resalted, admin.keypair()).is_err());
}

#[test]
fn policy_rules() {
    assert!(matches!(
        check_password("short"),
        Err(Error::PasswordDoesNotMeetPolicy(_))
    ));
    assert!(check_password("long enough").is_ok());
    let cheap = KdfParams {
        m_cost: 64,
        ..KdfParams::MIN
    };
    assert!(matches!(
        PasswordPolicy::new(Role::Member, [0; 16], cheap),
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
}

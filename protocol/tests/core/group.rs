use std::collections::HashSet;

use peergroup_protocol::{
    Error, GroupProperties, GroupSpec, MAX_MEMBER_DATA_LIFETIME, PeerName, Signed,
    testing::{T0, identity},
};

#[test]
fn group_name_is_creator_authority_plus_classifier() {
    let alice = identity(1, "alice");
    let props = GroupSpec::new(alice.peer_name(), "chess")
        .create(&alice, T0, |_| false)
        .unwrap();
    let p = props.properties();
    assert_eq!(p.group_peer_name.authority(), alice.peer_name().authority());
    assert_eq!(p.group_peer_name.classifier(), "chess");
    assert_eq!(p.classifier(), "chess");
    assert_eq!(&p.creator_peer_name, alice.peer_name());
    assert_eq!(p.creator_key, alice.public_key());
    assert!(p.group_peer_name.is_owned_by(&p.creator_key));
    assert_eq!(p.revision, 1);
    assert_eq!(p.friendly_name, p.group_peer_name.to_string());
    // Anyone can check the signed properties from their bytes alone.
    let again = Signed::<GroupProperties>::from_bytes(props.as_bytes()).unwrap();
    assert_eq!(again, props);
}

#[test]
fn creator_peer_name_is_required() {
    let alice = identity(1, "alice");
    let spec = GroupSpec {
        classifier: "chess".into(),
        ..GroupSpec::default()
    };
    assert!(matches!(
        spec.create(&alice, T0, |_| false),
        Err(Error::InvalidArg(_))
    ));
}

#[test]
fn caller_supplied_group_name_is_refused() {
    let alice = identity(1, "alice");
    let mut spec = GroupSpec::new(alice.peer_name(), "chess");
    spec.group_peer_name = Some(PeerName::new(&alice.public_key(), "chess").unwrap());
    assert!(matches!(
        spec.create(&alice, T0, |_| false),
        Err(Error::InvalidArg(_))
    ));
}

#[test]
fn creator_must_be_the_signing_identity() {
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let spec = GroupSpec::new(bob.peer_name(), "chess");
    assert!(matches!(
        spec.create(&alice, T0, |_| false),
        Err(Error::InvalidArg(_))
    ));
}

#[test]
fn same_creator_and_classifier_twice_already_exists() {
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let mut existing = HashSet::new();
    let first = GroupSpec::new(alice.peer_name(), "chess")
        .create(&alice, T0, |n| existing.contains(n))
        .unwrap();
    existing.insert(first.properties().group_peer_name.clone());
    assert!(matches!(
        GroupSpec::new(alice.peer_name(), "chess").create(&alice, T0, |n| existing.contains(n)),
        Err(Error::AlreadyExists(_))
    ));
    // Another classifier, or another creator, is a different group.
    GroupSpec::new(alice.peer_name(), "go")
        .create(&alice, T0, |n| existing.contains(n))
        .unwrap();
    GroupSpec::new(bob.peer_name(), "chess")
        .create(&bob, T0, |n| existing.contains(n))
        .unwrap();
}

#[test]
fn invalid_properties_are_refused() {
    let alice = identity(1, "alice");
    let base = GroupSpec::new(alice.peer_name(), "chess");
    type Expect = fn(&Error) -> bool;
    let cases: Vec<(GroupSpec, Expect)> = vec![
        (
            GroupSpec {
                classifier: "x".repeat(150),
                ..base.clone()
            },
            |e| matches!(e, Error::InvalidClassifier(_)),
        ),
        (
            GroupSpec {
                friendly_name: Some("f".repeat(256)),
                ..base.clone()
            },
            |e| matches!(e, Error::InvalidFriendlyName(_)),
        ),
        (
            GroupSpec {
                comment: Some("c".repeat(256)),
                ..base.clone()
            },
            |e| matches!(e, Error::InvalidGroupProperties(_)),
        ),
        (
            GroupSpec {
                member_data_lifetime: Some(60),
                ..base.clone()
            },
            |e| matches!(e, Error::InvalidGroupProperties(_)),
        ),
        (
            GroupSpec {
                presence_lifetime: Some(299),
                ..base.clone()
            },
            |e| matches!(e, Error::InvalidGroupProperties(_)),
        ),
    ];
    for (spec, expected) in cases {
        let err = spec.create(&alice, T0, |_| false).unwrap_err();
        assert!(expected(&err), "{spec:?} gave {err:?}");
    }
    let zero = GroupSpec {
        member_data_lifetime: Some(0),
        ..base
    };
    let props = zero.create(&alice, T0, |_| false).unwrap();
    assert_eq!(
        props.properties().member_data_lifetime,
        MAX_MEMBER_DATA_LIFETIME
    );
}

#[test]
fn properties_signed_by_someone_else_do_not_verify() {
    let alice = identity(1, "alice");
    let mallory = identity(9, "mallory");
    let props = GroupSpec::new(alice.peer_name(), "chess")
        .create(&alice, T0, |_| false)
        .unwrap();
    let mut forged = props.properties().clone();
    forged.comment = "owned".into();
    assert!(matches!(
        Signed::sign(forged.clone(), mallory.keypair()),
        Err(Error::NotAuthorized(_))
    ));
    // Mallory claiming the group with her own key changes the group's name.
    forged.creator_key = mallory.public_key();
    assert!(matches!(
        Signed::sign(forged, mallory.keypair()),
        Err(Error::InvalidGroupProperties(_))
    ));
}

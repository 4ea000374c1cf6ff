//! The add / update / delete rules of PeerGroupAddRecord, PeerGroupUpdateRecord
//! and PeerGroupDeleteRecord.

use peergroup_protocol::{
    AttributeValue, Attributes, Error, MAX_ATTRIBUTES, MAX_RECORD_DATA, NewRecord, Record,
    RecordFlags, RecordId, RecordType, SignedRecord, Timestamp,
    testing::{NOTE, T0, add, group_of, identity},
};

fn t(secs: u64) -> Timestamp {
    T0.saturating_add_secs(secs)
}

fn base() -> (
    Record,
    peergroup_protocol::Identity,
    peergroup_protocol::Identity,
) {
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let group = group_of(&alice, "chess");
    let attrs = Attributes::from_pairs([("Priority".to_owned(), AttributeValue::Int(3))]).unwrap();
    let new = NewRecord::new(NOTE, t(100))
        .with_data(b"hello".to_vec())
        .with_attributes(attrs);
    let record = Record::new(new, [1; 8], &group, alice.peer_name(), T0).unwrap();
    (record, alice, bob)
}

#[test]
fn add_sets_infrastructure_fields() {
    let (r, alice, _) = base();
    assert_eq!(r.version, 1);
    assert_eq!(&r.creator, alice.peer_name());
    assert_eq!(r.modified_by, None);
    assert_eq!(r.created_at, T0);
    assert_eq!(r.modified_at, T0);
    assert_eq!(r.expires_at, t(100));
    assert_eq!(r.flags, RecordFlags::NONE);
    assert_eq!(r.last_toucher(), alice.peer_name());
}

#[test]
fn add_rejects_bad_input() {
    let alice = identity(1, "alice");
    let group = group_of(&alice, "chess");
    let me = alice.peer_name();
    let past = NewRecord::new(NOTE, T0);
    assert!(matches!(
        Record::new(past, [1; 8], &group, me, T0),
        Err(Error::InvalidRecordExpiration(_))
    ));
    let reserved = NewRecord::new(RecordType::MEMBERSHIP, t(10));
    assert!(matches!(
        Record::new(reserved, [1; 8], &group, me, T0),
        Err(Error::NotAuthorized(_))
    ));
    assert!(RecordType::SECURITY_PROPERTIES.is_reserved());
    assert!(RecordType::PRESENCE.is_reserved());
    assert!(!NOTE.is_reserved());
    let big = NewRecord::new(NOTE, t(10)).with_data(vec![0; MAX_RECORD_DATA + 1]);
    assert!(matches!(
        Record::new(big, [1; 8], &group, me, T0),
        Err(Error::MaxRecordSizeExceeded { .. })
    ));
    let mut deleted = NewRecord::new(NOTE, t(10));
    deleted.flags = RecordFlags::DELETED;
    assert!(matches!(
        Record::new(deleted, [1; 8], &group, me, T0),
        Err(Error::InvalidArg(_))
    ));
    let mut autorefresh = NewRecord::new(NOTE, t(10));
    autorefresh.flags = RecordFlags::AUTOREFRESH;
    assert!(Record::new(autorefresh, [1; 8], &group, me, T0).is_ok());
    let unsecured = peergroup_protocol::PeerName::unsecured("x").unwrap();
    assert!(matches!(
        Record::new(NewRecord::new(NOTE, t(10)), [1; 8], &group, &unsecured, T0),
        Err(Error::InvalidPeerName(_))
    ));
}

#[test]
fn attribute_schema() {
    let ok = |name: &str| Attributes::from_pairs([(name.to_owned(), AttributeValue::Int(1))]);
    assert!(ok("Priority2").is_ok());
    for bad in [
        "",
        "has-dash",
        "under_score",
        "sp ace",
        "ünï",
        &"a".repeat(65),
    ] {
        assert!(
            matches!(ok(bad), Err(Error::InvalidAttributes(_))),
            "{bad:?}"
        );
    }
    for reserved in [
        "peercreatorid",
        "PeerCreatorId",
        "peerrecordid",
        "peerlastmodificationtime",
    ] {
        assert!(
            matches!(ok(reserved), Err(Error::InvalidAttributes(_))),
            "{reserved}"
        );
    }
    let twice = Attributes::from_pairs([
        ("a".to_owned(), AttributeValue::Int(1)),
        ("a".to_owned(), AttributeValue::Int(2)),
    ]);
    assert!(matches!(twice, Err(Error::InvalidAttributes(_))));
    let many = Attributes::from_pairs(
        (0..=MAX_ATTRIBUTES).map(|i| (format!("a{i}"), AttributeValue::Int(0))),
    );
    assert!(matches!(many, Err(Error::TooManyAttributes { .. })));
    let long = Attributes::from_pairs([("s".to_owned(), AttributeValue::String("x".repeat(1025)))]);
    assert!(matches!(long, Err(Error::InvalidAttributes(_))));
    // Sorted regardless of input order, and `set` replaces.
    let mut attrs = Attributes::from_pairs([
        ("b".to_owned(), AttributeValue::Int(2)),
        ("a".to_owned(), AttributeValue::String("x".into())),
    ])
    .unwrap();
    assert_eq!(
        attrs.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    attrs.set("b", AttributeValue::Date(T0)).unwrap();
    assert_eq!(attrs.get("b"), Some(&AttributeValue::Date(T0)));
    assert_eq!(attrs.len(), 2);
}

#[test]
fn reserved_attributes_are_searchable() {
    let (r, alice, bob) = base();
    assert_eq!(
        r.attribute("peercreatorid"),
        Some(AttributeValue::String(alice.peer_name().to_string()))
    );
    assert_eq!(
        r.attribute("PEERRECORDID"),
        Some(AttributeValue::String(r.id.to_string()))
    );
    assert_eq!(
        r.attribute("peercreationtime"),
        Some(AttributeValue::Date(T0))
    );
    assert_eq!(
        r.attribute("peerlastmodifiedby"),
        Some(AttributeValue::String(String::new()))
    );
    assert_eq!(r.attribute("Priority"), Some(AttributeValue::Int(3)));
    assert_eq!(r.attribute("missing"), None);
    let u = r.update(&r, bob.peer_name(), t(5)).unwrap();
    assert_eq!(
        u.attribute("peerlastmodifiedby"),
        Some(AttributeValue::String(bob.peer_name().to_string()))
    );
    assert_eq!(
        u.attribute("peerlastmodificationtime"),
        Some(AttributeValue::Date(t(5)))
    );
}

#[test]
fn update_may_change_attributes_expiration_and_data() {
    let (r, _, bob) = base();
    let mut proposed = r.clone();
    proposed.data = b"changed".to_vec();
    proposed.expires_at = t(200);
    proposed.attributes =
        Attributes::from_pairs([("Owner".to_owned(), AttributeValue::String("b".into()))]).unwrap();
    let u = r.update(&proposed, bob.peer_name(), t(5)).unwrap();
    assert_eq!(u.data, b"changed");
    assert_eq!(u.expires_at, t(200));
    assert_eq!(u.attributes, proposed.attributes);
    assert_eq!(u.version, 2);
    assert_eq!(u.modified_by.as_ref(), Some(bob.peer_name()));
    assert_eq!(u.modified_at, t(5));
    // Immutable members are kept.
    assert_eq!(
        (u.id, u.record_type, u.flags, u.format),
        (r.id, r.record_type, r.flags, r.format)
    );
    assert_eq!(
        (&u.creator, u.created_at, &u.group),
        (&r.creator, r.created_at, &r.group)
    );
    assert_eq!(u.last_toucher(), bob.peer_name());
}

#[test]
fn update_refuses_changes_to_present_but_immutable_members() {
    let (r, _, bob) = base();
    let who = bob.peer_name();
    let mut p = r.clone();
    p.format = 2;
    assert!(
        matches!(r.update(&p, who, t(5)), Err(Error::InvalidArg(_))),
        "dwSize"
    );
    let mut p = r.clone();
    p.id = RecordId::from_u128(42);
    assert!(
        matches!(r.update(&p, who, t(5)), Err(Error::InvalidArg(_))),
        "id"
    );
    let mut p = r.clone();
    p.record_type = RecordType::from_u128(42 << 64);
    assert!(
        matches!(r.update(&p, who, t(5)), Err(Error::InvalidArg(_))),
        "type"
    );
    let mut p = r.clone();
    p.flags = RecordFlags::AUTOREFRESH;
    assert!(
        matches!(r.update(&p, who, t(5)), Err(Error::InvalidArg(_))),
        "flags"
    );
    let mut p = r.clone();
    p.flags = RecordFlags::DELETED;
    assert!(
        matches!(r.update(&p, who, t(5)), Err(Error::InvalidArg(_))),
        "flags: delete via update"
    );
}

#[test]
fn update_ignores_infrastructure_members() {
    let (r, alice, bob) = base();
    let mut p = r.clone();
    p.version = 77;
    p.creator = bob.peer_name().clone();
    p.modified_by = Some(alice.peer_name().clone());
    p.created_at = t(50);
    p.modified_at = t(60);
    let u = r.update(&p, bob.peer_name(), t(5)).unwrap();
    assert_eq!(u.version, 2);
    assert_eq!(&u.creator, alice.peer_name());
    assert_eq!(u.modified_by.as_ref(), Some(bob.peer_name()));
    assert_eq!(u.created_at, T0);
    assert_eq!(u.modified_at, t(5));
}

#[test]
fn expiration_may_not_be_shortened_or_lie_in_the_past() {
    let (r, _, bob) = base();
    let mut p = r.clone();
    p.expires_at = t(99);
    assert!(matches!(
        r.update(&p, bob.peer_name(), t(5)),
        Err(Error::InvalidRecordExpiration(_))
    ));
    // Keeping the expiration is fine; keeping it when it has passed is not.
    assert!(r.update(&r, bob.peer_name(), t(5)).is_ok());
    assert!(matches!(
        r.update(&r, bob.peer_name(), t(100)),
        Err(Error::InvalidRecordExpiration(_))
    ));
}

#[test]
fn update_checks_the_new_contents() {
    let (r, _, bob) = base();
    let mut p = r.clone();
    p.data = vec![0; MAX_RECORD_DATA + 1];
    assert!(matches!(
        r.update(&p, bob.peer_name(), t(5)),
        Err(Error::MaxRecordSizeExceeded { .. })
    ));
}

#[test]
fn delete_makes_a_tombstone() {
    let (r, _, bob) = base();
    let tomb = r.delete(bob.peer_name(), t(7)).unwrap();
    assert!(tomb.is_deleted());
    assert!(tomb.data.is_empty() && tomb.attributes.is_empty());
    assert_eq!(tomb.version, 2);
    assert_eq!(tomb.expires_at, r.expires_at);
    assert_eq!(tomb.modified_by.as_ref(), Some(bob.peer_name()));
    assert_eq!(tomb.modified_at, t(7));
    // A tombstone is gone for the API: no update, no second delete.
    assert!(matches!(
        tomb.update(&tomb, bob.peer_name(), t(8)),
        Err(Error::RecordNotFound)
    ));
    assert!(matches!(
        tomb.delete(bob.peer_name(), t(8)),
        Err(Error::RecordNotFound)
    ));
    let signed = SignedRecord::sign(tomb, bob.keypair()).unwrap();
    assert!(signed.record().is_deleted());
}

#[test]
fn signing_requires_the_last_touchers_key() {
    let (r, alice, bob) = base();
    assert!(matches!(
        SignedRecord::sign(r.clone(), bob.keypair()),
        Err(Error::NotAuthorized(_))
    ));
    let u = r.update(&r, bob.peer_name(), t(1)).unwrap();
    assert!(matches!(
        SignedRecord::sign(u.clone(), alice.keypair()),
        Err(Error::NotAuthorized(_))
    ));
    assert!(SignedRecord::sign(u, bob.keypair()).is_ok());
    let _ = add;
}

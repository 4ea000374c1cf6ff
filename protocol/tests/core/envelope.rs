//! The signed CBOR envelope: round trips, bounded decoding, tampering, forgery.

use peergroup_protocol::{
    AttributeValue, Attributes, DecodeError, Error, GroupProperties, Kind, MAX_ENVELOPE_SIZE,
    NewRecord, PeerName, Record, RecordFlags, RecordId, RecordType, Signed, SignedRecord,
    Timestamp, VerifyError, WIRE_VERSION, decode_canonical, encode,
    testing::{NOTE, T0, add, forge_envelope, group_of, identity, sign_as, tamper, update},
};
use proptest::prelude::*;

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        any::<i64>().prop_map(AttributeValue::Int),
        any::<u64>().prop_map(|t| AttributeValue::Date(Timestamp::from_millis(t))),
        "[ -~é✓]{0,40}".prop_map(AttributeValue::String),
    ]
}

prop_compose! {
    fn arb_record()(
        seed in 1u8..4,
        modifier_seed in proptest::option::of(4u8..6),
        id in any::<u128>(),
        ty in any::<u128>().prop_filter("application type", |t| t & ((1 << 96) - 1) != 0),
        version in 2u32..1000,
        autorefresh in any::<bool>(),
        deleted in any::<bool>(),
        attrs in proptest::collection::btree_map("[a-zA-Z0-9]{1,12}", attribute_value(), 0..6),
        created in 0u64..1 << 50,
        life in 1u64..1 << 40,
        modified in any::<u64>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) -> (Record, u8) {
        let creator = identity(seed, "creator");
        let group = group_of(&creator, "g");
        let modifier = modifier_seed.map(|s| identity(s, "modifier"));
        let mut flags = RecordFlags::NONE;
        if autorefresh { flags = flags.with(RecordFlags::AUTOREFRESH) }
        if deleted { flags = flags.with(RecordFlags::DELETED) }
        let attributes = if deleted {
            Attributes::new()
        } else {
            Attributes::from_pairs(attrs.into_iter().filter(|(n, _)| !n.to_ascii_lowercase().starts_with("peer"))).unwrap()
        };
        let record = Record {
            format: 1,
            group,
            id: RecordId::new(creator.peer_name(), (id as u64).to_be_bytes()),
            record_type: RecordType::from_u128(ty),
            version: if modifier.is_some() { version } else { 1 },
            flags,
            creator: creator.peer_name().clone(),
            modified_by: modifier.as_ref().map(|m| m.peer_name().clone()),
            attributes,
            created_at: Timestamp::from_millis(created),
            expires_at: Timestamp::from_millis(created + life),
            modified_at: Timestamp::from_millis(modified),
            data: if deleted { vec![] } else { data },
        };
        (record, modifier_seed.unwrap_or(seed))
    }
}

fn signed((record, seed): (Record, u8)) -> SignedRecord {
    let who = if record.modified_by.is_some() {
        "modifier"
    } else {
        "creator"
    };
    SignedRecord::sign(record, identity(seed, who).keypair()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// decode(encode(x)) == x for records and envelopes.
    #[test]
    fn record_round_trips(input in arb_record()) {
        let bytes = encode(&input.0).unwrap();
        let back: Record = decode_canonical("record", &bytes).unwrap();
        prop_assert_eq!(&back, &input.0);
        let s = signed(input);
        let again = SignedRecord::from_bytes(s.as_bytes()).unwrap();
        prop_assert_eq!(again.record(), s.record());
        prop_assert_eq!(again.signer_key(), s.signer_key());
        prop_assert_eq!(again.as_bytes(), s.as_bytes());
    }

    /// encode(decode(b)) == b: every accepted encoding is the canonical one.
    #[test]
    fn accepted_bytes_are_canonical(input in arb_record()) {
        let s = signed(input);
        let back = SignedRecord::from_bytes(s.as_bytes()).unwrap();
        prop_assert_eq!(encode(back.record()).unwrap(), encode(s.record()).unwrap());
        let body = encode(s.record()).unwrap();
        let decoded: Record = decode_canonical("record", &body).unwrap();
        prop_assert_eq!(encode(&decoded).unwrap(), body);
    }

    /// Arbitrary bytes never panic a decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedRecord::from_bytes(&bytes);
        let _ = Signed::<GroupProperties>::from_bytes(&bytes);
        let _ = decode_canonical::<Record>("record", &bytes);
    }

    /// Any single flipped bit of a valid envelope is detected.
    #[test]
    fn bit_flips_are_detected(input in arb_record(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let s = signed(input);
        let mut bytes = s.as_bytes().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(SignedRecord::from_bytes(&bytes).is_err(), "flip at {} accepted", i);
    }

    /// Truncations and extensions of a valid envelope are rejected, without panicking.
    #[test]
    fn truncation_and_trailing_bytes_are_rejected(input in arb_record(), cut in any::<prop::sample::Index>(), extra in any::<u8>()) {
        let s = signed(input);
        let bytes = s.as_bytes();
        let n = cut.index(bytes.len());
        prop_assert!(SignedRecord::from_bytes(&bytes[..n]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(extra);
        prop_assert!(SignedRecord::from_bytes(&longer).is_err());
    }
}

fn sample() -> (SignedRecord, peergroup_protocol::Identity) {
    let alice = identity(1, "alice");
    let group = group_of(&alice, "chess");
    let attrs = Attributes::from_pairs([("Level".to_owned(), AttributeValue::Int(2))]).unwrap();
    let new = NewRecord::new(NOTE, T0.saturating_add_secs(60))
        .with_data(b"e4".to_vec())
        .with_attributes(attrs);
    let record = Record::new(new, [1; 8], &group, alice.peer_name(), T0).unwrap();
    (SignedRecord::sign(record, alice.keypair()).unwrap(), alice)
}

/// Every byte position, every bit: exhaustive over one envelope.
#[test]
fn every_single_bit_flip_is_detected() {
    let (s, _) = sample();
    let bytes = s.as_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.to_vec();
            b[i] ^= 1 << bit;
            assert!(
                SignedRecord::from_bytes(&b).is_err(),
                "flip of bit {bit} at byte {i} accepted"
            );
        }
    }
}

#[test]
fn any_tampered_field_fails_verification() {
    let (s, _) = sample();
    let bob = identity(2, "bob");
    let r = s.record().clone();
    let tampered: Vec<(&str, Record)> = vec![
        (
            "group",
            Record {
                group: group_of(&bob, "chess"),
                ..r.clone()
            },
        ),
        (
            "id",
            Record {
                id: RecordId::new(&r.creator, [2; 8]),
                ..r.clone()
            },
        ),
        (
            "type",
            Record {
                record_type: RecordType::from_u128(5 << 64),
                ..r.clone()
            },
        ),
        (
            "version",
            Record {
                version: 2,
                modified_by: Some(r.creator.clone()),
                ..r.clone()
            },
        ),
        (
            "flags",
            Record {
                flags: RecordFlags::AUTOREFRESH,
                ..r.clone()
            },
        ),
        (
            "attributes",
            Record {
                attributes: Attributes::new(),
                ..r.clone()
            },
        ),
        (
            "created",
            Record {
                created_at: T0.saturating_add_secs(1),
                ..r.clone()
            },
        ),
        (
            "expires",
            Record {
                expires_at: T0.saturating_add_secs(61),
                ..r.clone()
            },
        ),
        (
            "modified",
            Record {
                modified_at: T0.saturating_add_secs(1),
                ..r.clone()
            },
        ),
        (
            "data",
            Record {
                data: b"e5".to_vec(),
                ..r.clone()
            },
        ),
    ];
    for (field, record) in tampered {
        let err = SignedRecord::from_bytes(&tamper(&s, &record)).unwrap_err();
        assert_eq!(
            err,
            Error::Verify(VerifyError::BadSignature),
            "tampered {field}"
        );
    }
    // A changed creator no longer owns the record id (ids are bound to creators).
    let stolen = Record {
        creator: bob.peer_name().clone(),
        ..r.clone()
    };
    assert!(matches!(
        SignedRecord::from_bytes(&tamper(&s, &stolen)),
        Err(Error::InvalidRecord(_))
    ));
    // With the id rebound too, the key no longer owns the creator's name.
    let stolen = Record {
        id: RecordId::new(bob.peer_name(), [1; 8]),
        creator: bob.peer_name().clone(),
        ..r
    };
    assert!(matches!(
        SignedRecord::from_bytes(&tamper(&s, &stolen)),
        Err(Error::Verify(VerifyError::SignerMismatch { .. }))
    ));
}

#[test]
fn tampered_signature_or_signer_fails() {
    let (s, alice) = sample();
    let body = encode(s.record()).unwrap();
    let mut sig = *s.signature().as_bytes();
    sig[10] ^= 0x40;
    let bytes = forge_envelope(WIRE_VERSION, 1, alice.public_key().as_bytes(), &body, &sig);
    assert_eq!(
        SignedRecord::from_bytes(&bytes).unwrap_err(),
        Error::Verify(VerifyError::BadSignature)
    );
    // Malleated S (S + L) is refused by verify_strict's canonical-S check.
    let mut high_s = *s.signature().as_bytes();
    high_s[63] |= 0xf0;
    let bytes = forge_envelope(
        WIRE_VERSION,
        1,
        alice.public_key().as_bytes(),
        &body,
        &high_s,
    );
    assert!(SignedRecord::from_bytes(&bytes).is_err());
    // A signature by another key over the same body: the signer does not own the name.
    let mallory = identity(9, "mallory");
    assert!(matches!(
        SignedRecord::from_bytes(&sign_as(s.record(), mallory.keypair())),
        Err(Error::Verify(VerifyError::SignerMismatch { .. }))
    ));
    // A weak (small-order) key is refused as a key.
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let bytes = forge_envelope(WIRE_VERSION, 1, &identity_point, &body, &[0; 64]);
    assert_eq!(
        SignedRecord::from_bytes(&bytes).unwrap_err(),
        Error::Verify(VerifyError::InvalidKey)
    );
}

#[test]
fn version_kind_lengths_and_size_are_checked() {
    let (s, alice) = sample();
    let body = encode(s.record()).unwrap();
    let key = alice.public_key();
    let sig = s.signature().as_bytes();
    assert_eq!(
        SignedRecord::from_bytes(&forge_envelope(2, 1, key.as_bytes(), &body, sig)).unwrap_err(),
        Error::Decode(DecodeError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    );
    assert!(matches!(
        SignedRecord::from_bytes(&forge_envelope(
            1,
            Kind::Properties.to_byte(),
            key.as_bytes(),
            &body,
            sig
        )),
        Err(Error::Decode(DecodeError::WrongKind { found: 2, .. }))
    ));
    // A record envelope is never accepted as group properties (and vice versa).
    assert!(Signed::<GroupProperties>::from_bytes(s.as_bytes()).is_err());
    assert!(matches!(
        SignedRecord::from_bytes(&forge_envelope(1, 1, &key.as_bytes()[..31], &body, sig)),
        Err(Error::Decode(DecodeError::Malformed { .. }))
    ));
    assert!(matches!(
        SignedRecord::from_bytes(&forge_envelope(1, 1, key.as_bytes(), &body, &sig[..63])),
        Err(Error::Decode(DecodeError::Malformed { .. }))
    ));
    let huge = vec![0u8; MAX_ENVELOPE_SIZE + 1];
    assert!(matches!(
        SignedRecord::from_bytes(&huge),
        Err(Error::Decode(DecodeError::TooLarge { .. }))
    ));
}

#[test]
fn non_canonical_encodings_are_rejected() {
    let (s, _) = sample();
    // The envelope's version as a two-byte integer (0x18 0x01) instead of 0x01.
    let bytes = s.as_bytes();
    let pos = bytes.windows(2).position(|w| w == [0x61, b'v']).unwrap() + 2;
    assert_eq!(bytes[pos], 0x01);
    let mut long_int = bytes[..pos].to_vec();
    long_int.extend_from_slice(&[0x18, 0x01]);
    long_int.extend_from_slice(&bytes[pos + 1..]);
    assert_eq!(
        SignedRecord::from_bytes(&long_int).unwrap_err(),
        Error::Decode(DecodeError::NonCanonical { what: "record" })
    );
}

#[test]
fn structurally_invalid_records_are_rejected_even_when_signed() {
    let alice = identity(1, "alice");
    let (s, _) = sample();
    let r = s.record().clone();
    let bad = [
        Record {
            version: 0,
            ..r.clone()
        },
        Record {
            version: 2,
            ..r.clone()
        },
        Record {
            flags: RecordFlags(8),
            ..r.clone()
        },
        Record {
            flags: RecordFlags::DELETED,
            ..r.clone()
        },
        Record {
            expires_at: r.created_at,
            ..r.clone()
        },
        Record {
            format: 9,
            ..r.clone()
        },
        Record {
            group: PeerName::unsecured("g").unwrap(),
            ..r.clone()
        },
    ];
    for record in bad {
        assert!(
            SignedRecord::from_bytes(&sign_as(&record, alice.keypair())).is_err(),
            "{record:?}"
        );
    }
}

#[test]
fn wire_bytes_are_stable() {
    // The envelope of a fixed record signed by a fixed key never changes
    // between builds (ed25519 signatures are deterministic). If this fails, the
    // wire format changed: bump WIRE_VERSION or RECORD_FORMAT and say so.
    use sha2::{Digest, Sha256};
    let (s, _) = sample();
    let hex: String = Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        "fed7bca6a88cac78b42b9ccf79949f244f9580bbb9b7dcf631da2a4662e2515a",
        "envelope bytes: {:02x?}",
        s.as_bytes()
    );
    let again = update(&identity(2, "bob"), &s, b"e5", T0.saturating_add_secs(1));
    assert_eq!(again.record().version, 2);
    let _ = add;
}

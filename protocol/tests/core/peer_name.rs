use peergroup_protocol::{Error, Keypair, MAX_CLASSIFIER_CHARS, PeerName, authority_of};

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Vectors: RFC 8032 test keys 1 and 2; the authorities were computed
/// independently (Python: base58btc of 0x12 0x20 || sha256(public key)).
#[test]
fn authority_test_vectors() {
    let vectors = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "QmQdLyVK6Df2XQfexRd1LJr3zdu4uZV6dBm6kQHnXKrLdW",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "QmSEvTuu81BLWYiWXfSAuLVryKe3sSuX2isrrFqoBkE7Fc",
        ),
    ];
    for (secret, authority) in vectors {
        let key = Keypair::from_secret_bytes(&hex32(secret)).public();
        assert_eq!(authority_of(&key), authority);
        let name = PeerName::new(&key, "JohnDoe").unwrap();
        assert_eq!(name.to_string(), format!("{authority}.JohnDoe"));
        assert_eq!(name.authority(), authority);
        assert_eq!(name.classifier(), "JohnDoe");
        assert!(name.is_secure());
        assert!(name.is_owned_by(&key));
        assert_eq!(PeerName::parse(&name.to_string()).unwrap(), name);
    }
}

#[test]
fn names_are_owned_only_by_their_key() {
    let a = Keypair::from_secret_bytes(&[1; 32]).public();
    let b = Keypair::from_secret_bytes(&[2; 32]).public();
    let name = PeerName::new(&a, "x").unwrap();
    assert!(name.is_owned_by(&a));
    assert!(!name.is_owned_by(&b));
}

#[test]
fn classifier_may_contain_dots_and_is_case_sensitive() {
    let key = Keypair::from_secret_bytes(&[3; 32]).public();
    let name = PeerName::new(&key, "a.b.C").unwrap();
    assert_eq!(name.classifier(), "a.b.C");
    let parsed = PeerName::parse(name.as_str()).unwrap();
    assert_eq!(parsed.classifier(), "a.b.C");
    assert_ne!(
        PeerName::new(&key, "abc").unwrap(),
        PeerName::new(&key, "ABC").unwrap()
    );
}

#[test]
fn classifier_length_limit() {
    let key = Keypair::from_secret_bytes(&[3; 32]).public();
    let max = "é".repeat(MAX_CLASSIFIER_CHARS);
    assert!(
        PeerName::new(&key, &max).is_ok(),
        "the limit counts characters, not bytes"
    );
    let too_long = "x".repeat(MAX_CLASSIFIER_CHARS + 1);
    assert!(matches!(
        PeerName::new(&key, &too_long),
        Err(Error::InvalidClassifier(_))
    ));
    let text = format!("{}.{too_long}", authority_of(&key));
    assert!(matches!(
        PeerName::parse(&text),
        Err(Error::InvalidClassifier(_))
    ));
    assert!(matches!(
        PeerName::new(&key, "a\nb"),
        Err(Error::InvalidClassifier(_))
    ));
}

#[test]
fn unsecured_names_parse_but_are_not_secure() {
    let name = PeerName::parse("0.MyApp").unwrap();
    assert!(!name.is_secure());
    assert_eq!(name.authority(), "0");
    assert_eq!(name, PeerName::unsecured("MyApp").unwrap());
    let key = Keypair::from_secret_bytes(&[4; 32]).public();
    assert!(!name.is_owned_by(&key));
}

#[test]
fn malformed_names_are_rejected() {
    let good = authority_of(&Keypair::from_secret_bytes(&[5; 32]).public());
    let bad = [
        "no-dot".to_owned(),
        ".classifier".to_owned(),
        "1.classifier".to_owned(),
        "Qm0OIl.x".to_owned(),
        // sha1 hex (the Windows form) is not a multihash
        "6520c005f63fc1864b7d8f3cabebd4916ae7f33d.JohnDoe".to_owned(),
        // a valid base58 string that is not a sha2-256 multihash
        format!("{}.x", &good[..good.len() - 1]),
        // leading '1' = a zero byte: not the canonical spelling of the multihash
        format!("1{good}.x"),
    ];
    for text in bad {
        assert!(
            matches!(PeerName::parse(&text), Err(Error::InvalidPeerName(_))),
            "{text:?} should be an invalid peer name"
        );
    }
}

use peergroup_protocol::{
    DecodeError, Error, IDENTITY_TEXT_PREFIX, Identity, IdentityInfo, Keypair, Signed, VerifyError,
    testing::identity,
};

#[test]
fn secrets_never_print() {
    let seed = [0xAB; 32];
    let id = Identity::new(Keypair::from_secret_bytes(&seed), "alice", "Alice").unwrap();
    let printed = format!("{id:?} {:?}", id.keypair());
    assert!(printed.contains("SecretKey(..)"), "{printed}");
    let secret_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!printed.to_lowercase().contains(&secret_hex));
    assert!(
        !printed.contains("171, 171"),
        "no byte-array dump of the secret: {printed}"
    );
    assert_eq!(*id.keypair().secret_bytes(), seed);
}

#[test]
fn friendly_name_defaults_to_peer_name() {
    let id = Identity::new(Keypair::from_secret_bytes(&[1; 32]), "c", "").unwrap();
    assert_eq!(id.friendly_name(), id.peer_name().as_str());
    let long = "x".repeat(256);
    assert!(matches!(
        Identity::new(Keypair::from_secret_bytes(&[1; 32]), "c", &long),
        Err(Error::InvalidFriendlyName(_))
    ));
}

#[test]
fn public_text_round_trips_and_survives_line_breaks() {
    let alice = identity(1, "alice");
    let text = alice.public_text().unwrap();
    assert!(text.starts_with(IDENTITY_TEXT_PREFIX));
    assert!(!text.contains(char::is_whitespace));
    let info = Signed::<IdentityInfo>::from_identity_text(&text).unwrap();
    assert_eq!(&info.payload().peer_name, alice.peer_name());
    assert_eq!(info.payload().key, alice.public_key());
    assert_eq!(info.payload().friendly_name, "alice");

    let wrapped: String = text
        .chars()
        .enumerate()
        .flat_map(|(i, c)| if i % 40 == 39 { vec![c, '\n'] } else { vec![c] })
        .collect();
    let again = Signed::<IdentityInfo>::from_identity_text(&format!("  {wrapped}\r\n")).unwrap();
    assert_eq!(again, info);
}

#[test]
fn public_text_rejects_tampering_and_other_versions() {
    let text = identity(1, "alice").public_text().unwrap();
    let body = &text[IDENTITY_TEXT_PREFIX.len()..];
    for i in 0..body.len() {
        let mut chars: Vec<char> = body.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered = format!("{IDENTITY_TEXT_PREFIX}{}", chars.iter().collect::<String>());
        assert!(
            Signed::<IdentityInfo>::from_identity_text(&tampered).is_err(),
            "tampering at {i} went unnoticed"
        );
    }
    let v2 = text.replace("-v1:", "-v2:");
    assert!(matches!(
        Signed::<IdentityInfo>::from_identity_text(&v2),
        Err(Error::UnsupportedVersion(_))
    ));
    assert!(matches!(
        Signed::<IdentityInfo>::from_identity_text("hello"),
        Err(Error::Decode(DecodeError::Text { .. }))
    ));
}

#[test]
fn identity_info_signed_by_another_key_is_rejected() {
    let alice = identity(1, "alice");
    let mallory = identity(9, "mallory");
    // Mallory cannot sign Alice's info: the key must own the name.
    let info = alice.info().unwrap().payload().clone();
    assert!(matches!(
        Signed::sign(info, mallory.keypair()),
        Err(Error::NotAuthorized(_))
    ));
    let _ = VerifyError::BadSignature;
}

//! Writes the seed inputs of every fuzz target to `fuzz/corpus/<target>/seed-*`:
//! valid encodings made from the shared fixtures (`src/lib.rs`), so that the
//! fuzzer starts from inputs that go all the way through each target.
//!
//! ```text
//! cargo run --locked --release --manifest-path fuzz/Cargo.toml --example seeds [DIR]
//! ```
//!
//! The output is deterministic (fixed keys and times, ed25519's
//! deterministic signatures, a seeded RNG): re-running it rewrites the same
//! files. It is an example, not a bin, so that `cargo fuzz build` (which
//! builds every bin with coverage instrumentation and libFuzzer) leaves it
//! alone.

use std::{fs, path::PathBuf};

use peergroup_fuzz::{NOT_AFTER, NOW, fixtures, rng};
use peergroup_protocol::{
    AttributeValue, Attributes, AuthProof, AuthRole, CredentialChain, GroupKey, GroupSpec,
    IDENTITY_TEXT_PREFIX, InvitationInfo, NewRecord, PasswordCheck, PasswordJoin, PeerName, Record,
    Role, Signed, SignedRecord, create_invitation, create_password_invitation, group_tag,
    issue_credential, membership_record,
    messages::{self, auth, password, sync},
    open, seal,
    testing::{NOTE, T0, add, delete, identity, update},
    unwrap_key, unwrap_password_secret, wrap_key, wrap_password_secret,
};
use rand::{SeedableRng, rngs::StdRng};

struct Out {
    root: PathBuf,
    count: usize,
}

impl Out {
    fn write(&mut self, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        self.count += 1;
    }
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut out = Out { root, count: 0 };
    let f = fixtures();
    let props = f.properties.properties();
    let group = &f.group;

    // Records: add (data, attributes), update, delete, a membership record.
    let v1 = add(&f.member, group, 1, b"hello", T0, 3600);
    let v2 = update(&f.admin, &v1, b"hello again", T0.saturating_add_secs(1));
    let v3 = delete(&f.member, &v2, T0.saturating_add_secs(2));
    let attributes = Attributes::from_pairs([
        ("count".to_owned(), AttributeValue::Int(-42)),
        ("seen".to_owned(), AttributeValue::Date(T0)),
        ("title".to_owned(), AttributeValue::String("a note".into())),
    ])
    .unwrap();
    let with_attributes = {
        let new = NewRecord::new(NOTE, T0.saturating_add_secs(600))
            .with_attributes(attributes)
            .with_data(vec![0xab; 64]);
        let record = Record::new(new, 2u64.to_be_bytes(), group, f.admin.peer_name(), T0).unwrap();
        SignedRecord::sign(record, f.admin.keypair()).unwrap()
    };
    let membership = membership_record(props, &f.member_chain, &f.member, None, T0).unwrap();
    let records = [
        ("add", &v1),
        ("update", &v2),
        ("delete", &v3),
        ("attributes", &with_attributes),
        ("membership", &membership),
    ];
    for (name, record) in records {
        out.write("record_envelope", name, record.as_bytes());
    }

    // Properties: the fixed password group, a plain group, a later revision.
    out.write(
        "properties_envelope",
        "password-group",
        f.properties.as_bytes(),
    );
    let plain = GroupSpec::new(f.creator.peer_name(), "plain")
        .create(&f.creator, T0, |_| false)
        .unwrap();
    out.write("properties_envelope", "plain-group", plain.as_bytes());
    let mut revised = props.clone();
    revised.revision = 2;
    revised.comment = "revised".into();
    revised.friendly_name = "Fuzz group".into();
    let revised = Signed::sign(revised, f.creator.keypair()).unwrap();
    out.write("properties_envelope", "revision-2", revised.as_bytes());

    // Sealed envelopes under the fixed key (and one under another epoch).
    for (n, (name, record)) in records.iter().enumerate() {
        let nonce = [u8::try_from(n).unwrap(); 24];
        let sealed = seal(&f.group_key, group, nonce, record.as_bytes()).unwrap();
        out.write("sealed_envelope", name, sealed);
    }
    for (name, record) in &records {
        let sealed = fs::read(
            out.root
                .join("sealed_envelope")
                .join(format!("seed-{name}")),
        )
        .unwrap();
        assert_eq!(
            open(&f.group_key, group, &sealed).unwrap(),
            record.as_bytes()
        );
    }
    let other_epoch = seal(&GroupKey::new(1, [8; 32]), group, [9; 24], v1.as_bytes()).unwrap();
    out.write("sealed_envelope", "other-epoch", other_epoch);

    // Credential chains: the creator's (empty), the admin's, the member's.
    let chains = [
        ("creator", CredentialChain::creator()),
        ("admin", f.admin_chain.clone()),
        ("member", f.member_chain.clone()),
    ];
    for (name, chain) in &chains {
        chain.verify(props).unwrap().check_time(NOW).unwrap();
        out.write("credential_chain", name, chain.to_bytes().unwrap());
    }

    // Invitations: credential invitations from the creator and from the
    // admin, a password invitation, and one wrapped as a mail client would.
    let member_info = f.member.info().unwrap();
    let joiner_info = f.joiner.info().unwrap();
    let from_creator = create_invitation(
        &f.creator,
        &CredentialChain::creator(),
        &f.properties,
        &member_info,
        Role::Member,
        None,
        T0,
    )
    .unwrap();
    let from_admin = create_invitation(
        &f.admin,
        &f.admin_chain,
        &f.properties,
        &joiner_info,
        Role::Member,
        Some(NOW.saturating_add_secs(3600)),
        T0,
    )
    .unwrap();
    let by_password =
        create_password_invitation(&f.creator, &CredentialChain::creator(), &f.properties, T0)
            .unwrap();
    let wrapped: String = by_password
        .as_bytes()
        .chunks(72)
        .map(|c| format!("  {}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    for text in [&from_creator, &from_admin, &by_password, &wrapped] {
        InvitationInfo::parse(text).unwrap();
    }
    out.write("invitation_text", "from-creator", &from_creator);
    out.write("invitation_text", "from-admin", &from_admin);
    out.write("invitation_text", "password", &by_password);
    out.write("invitation_text", "password-wrapped", &wrapped);

    // Identity texts and peer names.
    for (name, who) in [("creator", &f.creator), ("member", &f.member)] {
        out.write("identity_text", name, who.public_text().unwrap());
    }
    let long_name = identity(4, &"x".repeat(149));
    out.write(
        "identity_text",
        "long-classifier",
        long_name.info().unwrap().to_text(IDENTITY_TEXT_PREFIX),
    );
    out.write("identity_text", "group-name", group.as_str());
    out.write(
        "identity_text",
        "unsecured-name",
        PeerName::unsecured("lobby").unwrap().as_str(),
    );

    // Group authentication messages.
    let transcript = f.transcript();
    let tag = group_tag(group);
    let member_proof =
        AuthProof::new(&f.member, &f.member_chain, AuthRole::Initiator, &transcript).unwrap();
    let creator_proof = AuthProof::new(
        &f.creator,
        &CredentialChain::creator(),
        AuthRole::Initiator,
        &transcript,
    )
    .unwrap();
    let admin_proof =
        AuthProof::new(&f.admin, &f.admin_chain, AuthRole::Responder, &transcript).unwrap();
    let creator_answer = AuthProof::new(
        &f.creator,
        &CredentialChain::creator(),
        AuthRole::Responder,
        &transcript,
    )
    .unwrap();
    // The targets verify these against the same transcript and time.
    for (proof, role) in [
        (&member_proof, AuthRole::Initiator),
        (&creator_proof, AuthRole::Initiator),
        (&admin_proof, AuthRole::Responder),
        (&creator_answer, AuthRole::Responder),
    ] {
        proof.verify(props, role, &transcript, NOW).unwrap();
    }
    let member_key = wrap_key(
        &f.group_key,
        &f.member.public_key(),
        [9; 32],
        f.wrap_context(),
    )
    .unwrap();
    unwrap_key(&member_key, f.member.keypair(), f.wrap_context()).unwrap();
    let member_password =
        wrap_password_secret(&f.secret, group, &f.member.public_key(), [11; 32]).unwrap();
    let policy = props.password.as_ref().unwrap();
    let unwrapped = unwrap_password_secret(&member_password, group, policy, f.member.keypair());
    assert_eq!(unwrapped.unwrap(), f.secret);
    let auth_requests = [
        (
            "hello",
            auth::Request::Hello {
                tag,
                nonce: peergroup_fuzz::INITIATOR_NONCE,
                time: peergroup_protocol::Timestamp::from_millis(1_790_000_000_000),
                anchored: false,
            },
        ),
        (
            "prove-member",
            auth::Request::Prove {
                tag,
                proof: member_proof,
            },
        ),
        (
            "prove-creator",
            auth::Request::Prove {
                tag,
                proof: creator_proof,
            },
        ),
    ];
    for (name, message) in &auth_requests {
        out.write("auth_messages", name, messages::encode(message).unwrap());
    }
    let auth_responses = [
        (
            "nonce",
            auth::Response::Nonce {
                nonce: peergroup_fuzz::RESPONDER_NONCE,
                time: peergroup_protocol::Timestamp::from_millis(1_790_000_000_000),
                anchored: true,
            },
        ),
        (
            "accepted-key-chain",
            auth::Response::Accepted {
                proof: admin_proof.clone(),
                key: Some(member_key),
                chain: Some(f.member_chain.to_bytes().unwrap().into()),
                password: Some(member_password),
            },
        ),
        (
            "accepted-creator",
            auth::Response::Accepted {
                proof: creator_answer,
                key: None,
                chain: None,
                password: None,
            },
        ),
        (
            "renew",
            auth::Response::Renew {
                chain: f.member_chain.to_bytes().unwrap().into(),
            },
        ),
        (
            "refused",
            auth::Response::Refused {
                reason: "unknown group".into(),
            },
        ),
    ];
    for (name, message) in &auth_responses {
        out.write("auth_messages", name, messages::encode(message).unwrap());
    }

    // First-connect copy messages.
    // Synchronization: reconciliation of the fuzz target's fixed set
    // against an empty one, and a fetch.
    let empty = std::collections::BTreeMap::new();
    let empty_set = peergroup_protocol::reconcile::Set::new(&empty, NOW);
    let first_query = peergroup_protocol::reconcile::start(&empty_set);
    let sync_requests = [
        (
            "reconcile",
            sync::Request::Reconcile {
                group: group.clone(),
                queries: vec![first_query.clone()],
            },
        ),
        (
            "fetch",
            sync::Request::Fetch {
                group: group.clone(),
                ids: records.iter().map(|(_, r)| r.record().id).collect(),
                max_bytes: 1 << 20,
            },
        ),
    ];
    for (name, message) in &sync_requests {
        out.write("sync_messages", name, messages::encode(message).unwrap());
    }
    let sync_responses = [
        (
            "reconciled",
            sync::Response::Reconciled {
                properties: f.properties.as_bytes().to_vec().into(),
                answers: vec![
                    peergroup_protocol::reconcile::Answer::Equal,
                    peergroup_protocol::reconcile::Answer::Items(
                        peergroup_protocol::reconcile::pack(std::iter::empty()),
                    ),
                    peergroup_protocol::reconcile::Answer::Split(vec![(
                        first_query.range,
                        first_query.summary,
                    )]),
                ],
            },
        ),
        (
            "records",
            sync::Response::Records {
                properties: f.properties.as_bytes().to_vec().into(),
                records: records
                    .iter()
                    .map(|(_, r)| r.as_bytes().to_vec().into())
                    .collect(),
                considered: records.len() as u32,
            },
        ),
        (
            "refused",
            sync::Response::Refused {
                reason: "not a member".into(),
            },
        ),
    ];
    for (name, message) in &sync_responses {
        out.write("sync_messages", name, messages::encode(message).unwrap());
    }

    // Password admission messages: `Start` carries the joiner's `A`; the
    // `Challenge` answers exactly the `A` the target's joiner sends (the
    // target's RNG is seeded), so that its confirmation checks out.
    let context = f.pake_context(&f.joiner_identity);
    let (join, a) = PasswordJoin::start(&f.secret, &context, &mut rng());
    let (check, b, confirm_b) =
        PasswordCheck::start(&f.secret, &context, &a, &mut StdRng::seed_from_u64(1)).unwrap();
    let confirm_a = join.confirm(&context, &b, &confirm_b).unwrap();
    check.finish(&confirm_a).unwrap();
    let joiner_chain = issue_credential(
        &f.creator,
        &CredentialChain::creator(),
        props,
        joiner_info.payload(),
        Role::Member,
        T0,
        NOT_AFTER,
    )
    .unwrap();
    let joiner_key = wrap_key(
        &f.group_key,
        &f.joiner.public_key(),
        [10; 32],
        f.wrap_context(),
    )
    .unwrap();
    unwrap_key(&joiner_key, f.joiner.keypair(), f.wrap_context()).unwrap();
    let password_requests = [
        (
            "start",
            password::Request::Start {
                tag,
                identity: f.joiner_identity.clone().into(),
                message: a.into(),
                nonce: [4; 32],
            },
        ),
        (
            "confirm",
            password::Request::Confirm {
                tag,
                confirmation: confirm_a.to_vec().into(),
            },
        ),
    ];
    for (name, message) in &password_requests {
        out.write(
            "password_messages",
            name,
            messages::encode(message).unwrap(),
        );
    }
    let password_responses = [
        (
            "challenge",
            password::Response::Challenge {
                message: b.into(),
                confirmation: confirm_b.to_vec().into(),
                proof: admin_proof,
                nonce: [5; 32],
            },
        ),
        (
            "busy",
            password::Response::Busy {
                retry_after_ms: 1000,
            },
        ),
        (
            "admitted",
            password::Response::Admitted {
                chain: joiner_chain.to_bytes().unwrap().into(),
                key: Some(joiner_key),
            },
        ),
        (
            "refused-retry",
            password::Response::Refused {
                reason: "wrong group password".into(),
                retry_after_ms: Some(2000),
            },
        ),
        (
            "refused",
            password::Response::Refused {
                reason: "no such group".into(),
                retry_after_ms: None,
            },
        ),
    ];
    for (name, message) in &password_responses {
        out.write(
            "password_messages",
            name,
            messages::encode(message).unwrap(),
        );
    }

    println!("wrote {} seeds under {}", out.count, out.root.display());
}

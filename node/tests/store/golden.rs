//! Old files keep opening: `golden/schema-N.redb` was written by the schema-N
//! code (records, a tombstone, an identity, a group, all from deterministic
//! fixtures). Every later build must open a copy of each and read the same
//! contents, migrated.

use std::path::PathBuf;

use peergroup_node::storage::RedbStore;
use peergroup_protocol::{
    CredentialChain, GroupSpec, Identity, PeerName, ReadStore, Role, SignedProperties,
    SignedRecord, Store, issue_credential,
    session::GroupState,
    testing::{T0, add, delete, group_of, identity, update},
};

struct Contents {
    alice: Identity,
    group: PeerName,
    properties: SignedProperties,
    records: Vec<SignedRecord>,
}

fn contents() -> Contents {
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let group = group_of(&alice, "golden");
    let properties = GroupSpec::new(alice.peer_name(), "golden")
        .create(&alice, T0, |_| false)
        .unwrap();
    let kept = add(&alice, &group, 1, b"kept", T0, 100 * 365 * 24 * 3600);
    let edited = update(&bob, &kept, b"edited", T0.saturating_add_secs(1));
    let doomed = add(&bob, &group, 2, b"doomed", T0, 100 * 365 * 24 * 3600);
    let tomb = delete(&alice, &doomed, T0.saturating_add_secs(2));
    // In id order, as the store lists them.
    let mut records = vec![edited, tomb];
    records.sort_by_key(|r| r.record().id);
    Contents {
        alice,
        group,
        properties,
        records,
    }
}

fn golden_path(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/store/golden/schema-{version}.redb"))
}

/// Opens a copy of the golden file of `version` and checks what every
/// version holds: the records (fully verified, summaries and indexes
/// agreeing), the identity with its secret key, and that the tombstone
/// still blocks the record it deleted.
fn open_golden(version: u32, c: &Contents) -> (tempfile::TempDir, RedbStore) {
    let (dir, path) = crate::temp_path();
    std::fs::copy(golden_path(version), &path).unwrap();
    let mut store = RedbStore::open(&path).unwrap();
    assert_eq!(store.verify_records().unwrap(), 2);
    assert_eq!(store.records(&c.group, None, None, 10).unwrap(), c.records);
    assert_eq!(store.versions(&c.group).unwrap().len(), 2);
    let alice = store.identity(c.alice.peer_name()).unwrap().unwrap();
    assert_eq!(
        *alice.keypair().secret_bytes(),
        *c.alice.keypair().secret_bytes()
    );
    let stale = store
        .merge(vec![add(
            &identity(2, "bob"),
            &c.group,
            2,
            b"doomed",
            T0,
            100 * 365 * 24 * 3600,
        )])
        .unwrap();
    assert!(stale[0].change.is_stale());
    (dir, store)
}

/// `golden/schema-1.redb` was written by the schema-1 code: its group row
/// and credential (the creator's, whose opaque credential schema 1 kept)
/// become one `groups-2` state, ready because the member is the creator.
#[test]
fn the_schema_1_golden_file_migrates_with_its_contents() {
    let c = contents();
    let (_dir, store) = open_golden(1, &c);
    let state = store.group_state(&c.group).unwrap().unwrap();
    assert_eq!(state.properties, c.properties);
    assert_eq!(&state.member, c.alice.peer_name());
    assert!(state.is_creator() && state.chain.is_empty() && state.ready);
}

/// `golden/schema-2.redb` was written by the schema-2 code: the records, the
/// identity, and the state of a group that Bob joined (not ready yet).
/// It was written by `PEERGROUP_WRITE_GOLDEN=2 cargo test -p peergroup-node
/// --test store golden` with the schema-2 build; never regenerate it with a
/// later one (a later schema adds its own file).
#[test]
fn the_schema_2_golden_file_opens_with_its_contents() {
    let c = contents();
    let bob = identity(2, "bob");
    let joined = GroupState {
        properties: c.properties.clone(),
        member: bob.peer_name().clone(),
        chain: issue_credential(
            &c.alice,
            &CredentialChain::creator(),
            c.properties.properties(),
            bob.info().unwrap().payload(),
            Role::Admin,
            T0,
            T0.saturating_add_secs(100 * 365 * 24 * 3600),
        )
        .unwrap(),
        ready: false,
        keys: Vec::new(),
        password: None,
    };
    if std::env::var_os("PEERGROUP_WRITE_GOLDEN").is_some_and(|v| v == "2") {
        let _ = std::fs::remove_file(golden_path(2));
        let mut store = RedbStore::open(golden_path(2)).unwrap();
        store.merge(c.records.clone()).unwrap();
        store.put_identity(&c.alice).unwrap();
        store.put_group_state(&joined).unwrap();
    }
    let (_dir, store) = open_golden(2, &c);
    assert_eq!(store.group_state(&c.group).unwrap().unwrap(), joined);
}

/// `golden/schema-3.redb` was written by the schema-3 code: what schema 2
/// holds, plus a member the node remembers for its group (with where it
/// listens) and its peer-time offset. Written by `PEERGROUP_WRITE_GOLDEN=3
/// cargo test -p peergroup-node --test store golden` with the schema-3
/// build; never regenerate it with a later one.
#[test]
fn the_schema_3_golden_file_opens_with_its_contents() {
    use peergroup_node::storage::{Backend, KnownPeer, WriteOp};

    let c = contents();
    let peer: libp2p::PeerId = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
        .parse()
        .unwrap();
    let known = KnownPeer {
        group: c.group.clone(),
        peer,
        addresses: vec!["/ip4/192.0.2.7/tcp/3587".parse().unwrap()],
        seen: T0,
    };
    if std::env::var_os("PEERGROUP_WRITE_GOLDEN").is_some_and(|v| v == "3") {
        let _ = std::fs::remove_file(golden_path(3));
        let mut store = RedbStore::open(golden_path(3)).unwrap();
        store.merge(c.records.clone()).unwrap();
        store.put_identity(&c.alice).unwrap();
        store
            .apply(&[
                WriteOp::SavePeer(Box::new(known.clone())),
                WriteOp::SaveClockOffset(-50_000),
            ])
            .unwrap();
    }
    let (_dir, store) = open_golden(3, &c);
    assert_eq!(store.known_peers().unwrap(), vec![known]);
    assert_eq!(store.clock_offset().unwrap(), Some(-50_000));
}

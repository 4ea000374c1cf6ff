//! Old files keep opening: `golden/schema-1.redb` was written by the schema-1
//! code (records, a tombstone, an identity, a group and a credential, all
//! from deterministic fixtures). Every later build must open a copy of it and
//! read the same contents. Regenerate it only when a new schema version adds a
//! new golden file: `PEERGROUP_WRITE_GOLDEN=1 cargo test -p peergroup-node
//! --test store golden`.

use std::path::PathBuf;

use peergroup_node::store::RedbStore;
use peergroup_protocol::{
    GroupSpec, Identity, PeerName, SignedProperties, SignedRecord, Store,
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

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/store/golden/schema-1.redb")
}

#[test]
fn the_schema_1_golden_file_opens_with_its_contents() {
    let c = contents();
    if std::env::var_os("PEERGROUP_WRITE_GOLDEN").is_some() {
        let _ = std::fs::remove_file(golden_path());
        let mut store = RedbStore::open(golden_path()).unwrap();
        store.merge(c.records.clone()).unwrap();
        store.put_identity(&c.alice).unwrap();
        store.put_group(&c.properties, c.alice.peer_name()).unwrap();
        store
            .put_credential(&c.group, c.alice.peer_name(), b"golden credential")
            .unwrap();
    }
    let (_dir, path) = crate::temp_path();
    std::fs::copy(golden_path(), &path).unwrap();
    let mut store = RedbStore::open(&path).unwrap();
    assert_eq!(store.verify_records().unwrap(), 2);
    assert_eq!(store.records(&c.group, None, None, 10).unwrap(), c.records);
    let alice = store.identity(c.alice.peer_name()).unwrap().unwrap();
    assert_eq!(
        *alice.keypair().secret_bytes(),
        *c.alice.keypair().secret_bytes()
    );
    let entry = store.group(&c.group).unwrap().unwrap();
    assert_eq!(entry.properties, c.properties);
    assert_eq!(
        store.credential(&c.group, c.alice.peer_name()).unwrap(),
        Some(b"golden credential".to_vec())
    );
    // The tombstone still blocks the record it deleted.
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
    assert_eq!(stale[0].change, peergroup_protocol::Change::Stale);
}

//! Rows altered inside a healthy redb file (so that redb's checksums pass):
//! each read that meets one reports the store as corrupt, naming the file.

#![allow(clippy::unwrap_used, clippy::panic)]

use peergroup_protocol::{
    CredentialChain, GroupSpec, ReadStore, Store, StoreError,
    session::GroupState,
    testing::{T0, add, identity, rid, tamper},
};

use super::{
    AccessError, RedbStore,
    tables::{GROUP_STATES, IDENTITIES, RECORDS, encode_group_state, record_key},
};

fn store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("t.redb")).unwrap();
    (dir, store)
}

/// Writes `value` under `key` in `table`, bypassing every check.
fn write_raw<K: redb::Key + 'static>(
    store: &RedbStore,
    table: redb::TableDefinition<'_, K, &[u8]>,
    key: K::SelfType<'_>,
    value: &[u8],
) {
    let txn = store.db.begin_write().unwrap();
    txn.open_table(table).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

fn assert_corrupt(error: AccessError, store: &RedbStore) {
    assert!(matches!(error, AccessError::Corrupt { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(&store.path().display().to_string()), "{text}");
}

#[test]
fn a_tampered_record_envelope_is_corrupt_after_reopen() {
    let (dir, mut store) = store();
    let alice = identity(1, "alice");
    let group = crate::protocol::testing::group_of(&alice, "chess");
    let good = add(&alice, &group, 1, b"honest", T0, 3600);
    store.merge(vec![good.clone()]).unwrap();
    let mut altered = good.record().clone();
    altered.data = b"forged".to_vec();
    write_raw(
        &store,
        RECORDS,
        record_key(&group, &rid(&alice, 1)).as_slice(),
        &tamper(&good, &altered),
    );
    drop(store);

    // redb's checksums are fine, so the file opens; the row does not verify.
    let store = RedbStore::open(dir.path().join("t.redb")).unwrap();
    assert_corrupt(
        store.get_record(&group, &rid(&alice, 1)).unwrap_err(),
        &store,
    );
    assert_corrupt(
        store.list_records(&group, None, None, 10).unwrap_err(),
        &store,
    );
    assert_corrupt(store.verify_records().unwrap_err(), &store);
    match store.digest(&group) {
        Err(StoreError::Corrupt(text)) => assert!(text.contains("t.redb"), "{text}"),
        other => panic!("expected a corrupt store, got {other:?}"),
    }
}

#[test]
fn a_valid_envelope_under_another_key_is_corrupt() {
    let (_dir, mut store) = store();
    let alice = identity(1, "alice");
    let group = crate::protocol::testing::group_of(&alice, "chess");
    let one = add(&alice, &group, 1, b"one", T0, 3600);
    store.merge(vec![one.clone()]).unwrap();
    write_raw(
        &store,
        RECORDS,
        record_key(&group, &rid(&alice, 2)).as_slice(),
        one.as_bytes(),
    );
    assert_corrupt(
        store.get_record(&group, &rid(&alice, 2)).unwrap_err(),
        &store,
    );
    // The index has no entry for the planted row.
    assert_corrupt(store.verify_records().unwrap_err(), &store);
}

#[test]
fn a_damaged_identity_row_is_corrupt_and_shows_no_secret() {
    let (_dir, store) = store();
    let alice = identity(9, "alice");
    store.put_identity(&alice).unwrap();
    // The seed, then a classifier length that runs past the end.
    let mut row = vec![9u8; 32];
    row.extend_from_slice(&[0xff, 0xff]);
    write_raw(&store, IDENTITIES, alice.peer_name().as_str(), &row);
    let error = store.identity(alice.peer_name()).unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("9, 9, 9"),
        "{error:?}"
    );
    assert_corrupt(error, &store);
    assert_corrupt(store.identities().unwrap_err(), &store);

    // A well-formed row whose key is another identity's.
    let bob = identity(2, "bob");
    store.put_identity(&bob).unwrap();
    let mut row = bob.keypair().secret_bytes().to_vec();
    row.extend_from_slice(&5u16.to_be_bytes());
    row.extend_from_slice(b"alice");
    write_raw(&store, IDENTITIES, alice.peer_name().as_str(), &row);
    assert_corrupt(store.identity(alice.peer_name()).unwrap_err(), &store);
}

#[test]
fn a_tampered_group_row_is_corrupt() {
    let (_dir, store) = store();
    let alice = identity(1, "alice");
    let properties = GroupSpec::new(alice.peer_name(), "chess")
        .create(&alice, T0, |_| false)
        .unwrap();
    let group = properties.properties().group_peer_name.clone();
    let state = GroupState {
        properties,
        member: alice.peer_name().clone(),
        chain: CredentialChain::creator(),
        ready: true,
        keys: Vec::new(),
        password: None,
    };
    store.put_group_state(&state).unwrap();
    let mut row = encode_group_state(&state).unwrap();
    // A byte of the properties envelope.
    let at = row.len() - 3;
    row[at] ^= 1;
    write_raw(&store, GROUP_STATES, group.as_str(), &row);
    assert_corrupt(store.group_state(&group).unwrap_err(), &store);
    assert_corrupt(store.group_states().unwrap_err(), &store);
}

/// Regression (issue 8, bug 2): a row naming a member that is not the
/// creator, without a credential, is corruption: it never loads as the
/// creator's group. And the store refuses to write one.
#[test]
fn a_member_row_without_credential_is_never_the_creators() {
    let (_dir, store) = store();
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let properties = GroupSpec::new(alice.peer_name(), "chess")
        .create(&alice, T0, |_| false)
        .unwrap();
    let group = properties.properties().group_peer_name.clone();
    let state = GroupState {
        properties,
        member: bob.peer_name().clone(),
        chain: CredentialChain::creator(),
        ready: true,
        keys: Vec::new(),
        password: None,
    };
    assert!(matches!(
        store.put_group_state(&state).unwrap_err(),
        AccessError::Refused { .. }
    ));
    write_raw(
        &store,
        GROUP_STATES,
        group.as_str(),
        &encode_group_state(&state).unwrap(),
    );
    assert_corrupt(store.group_state(&group).unwrap_err(), &store);
}

//! Identities, groups and credentials persist; secrets stay out of Debug;
//! the file's permissions, locking and schema checks.

use peergroup_node::storage::{AccessError, FILE_NAME, OpenError, RedbStore};
use peergroup_protocol::{
    CredentialChain, GroupSpec, Identity, ReadStore, Role, Store, issue_credential,
    session::GroupState,
    testing::{T0, add, identity, rid},
};

use crate::{open, temp_path};

fn creator_state(creator: &Identity, classifier: &str) -> GroupState {
    GroupState {
        properties: GroupSpec::new(creator.peer_name(), classifier)
            .create(creator, T0, |_| false)
            .unwrap(),
        member: creator.peer_name().clone(),
        chain: CredentialChain::creator(),
        ready: true,
        keys: vec![peergroup_protocol::GroupKey::new(0, [0x11; 32])],
        password: None,
    }
}

#[test]
fn identities_and_group_states_survive_reopen() {
    let (_dir, path) = temp_path();
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let created = creator_state(&alice, "chess");
    let group = created.group().clone();
    // Bob's state in the same group: a member with its chain, not ready yet.
    let chain = issue_credential(
        &alice,
        &CredentialChain::creator(),
        created.properties(),
        bob.info().unwrap().payload(),
        Role::Member,
        T0,
        T0.saturating_add_secs(86_400),
    )
    .unwrap();
    let joined = GroupState {
        member: bob.peer_name().clone(),
        chain,
        ready: false,
        keys: vec![
            peergroup_protocol::GroupKey::new(0, [0x11; 32]),
            peergroup_protocol::GroupKey::new(1, [0x22; 32]),
        ],
        password: Some(peergroup_protocol::PasswordSecret::from_parts(
            [0x33; 16], [0x44; 32],
        )),
        ..created.clone()
    };
    {
        let store = open(&path);
        store.put_identity(&alice).unwrap();
        store.put_identity(&bob).unwrap();
        store.put_group_state(&joined).unwrap();
    }
    let store = open(&path);
    let loaded = store.identity(alice.peer_name()).unwrap().unwrap();
    assert_eq!(loaded.peer_name(), alice.peer_name());
    assert_eq!(loaded.friendly_name(), alice.friendly_name());
    assert_eq!(
        *loaded.keypair().secret_bytes(),
        *alice.keypair().secret_bytes()
    );
    let names: Vec<_> = store
        .identities()
        .unwrap()
        .iter()
        .map(|i| i.peer_name().clone())
        .collect();
    let mut expected = vec![alice.peer_name().clone(), bob.peer_name().clone()];
    expected.sort();
    assert_eq!(names, expected);

    assert_eq!(store.group_state(&group).unwrap().unwrap(), joined);
    assert!(!store.group_state(&group).unwrap().unwrap().is_creator());
    // One row: replacing it changes properties, member, chain and readiness together.
    store.put_group_state(&created).unwrap();
    assert_eq!(store.group_states().unwrap(), vec![created]);

    assert!(store.remove_identity(bob.peer_name()).unwrap());
    assert!(!store.remove_identity(bob.peer_name()).unwrap());
    assert!(store.identity(bob.peer_name()).unwrap().is_none());
}

#[test]
fn deleting_a_group_removes_its_state_and_records() {
    let (_dir, path) = temp_path();
    let alice = identity(1, "alice");
    let one = creator_state(&alice, "chess");
    let two = creator_state(&alice, "go");
    let (group, other_group) = (one.group().clone(), two.group().clone());
    let mut store = open(&path);
    store.put_group_state(&one).unwrap();
    store.put_group_state(&two).unwrap();
    store
        .merge(vec![
            add(&alice, &group, 1, b"x", T0, 60),
            add(&alice, &other_group, 1, b"y", T0, 60),
        ])
        .unwrap();

    assert!(store.delete_group(&group).unwrap());
    assert!(!store.delete_group(&group).unwrap());
    assert!(store.group_state(&group).unwrap().is_none());
    assert_eq!(store.get(&group, &rid(&alice, 1)).unwrap(), None);
    assert!(store.versions(&group).unwrap().is_empty());
    assert!(store.group_state(&other_group).unwrap().is_some());
    assert!(store.get(&other_group, &rid(&alice, 1)).unwrap().is_some());
    assert_eq!(store.versions(&other_group).unwrap().len(), 1);
    assert_eq!(store.verify_records().unwrap(), 1);
}

#[test]
fn an_incoherent_group_state_is_refused() {
    let (_dir, path) = temp_path();
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let mut state = creator_state(&alice, "chess");
    state.member = bob.peer_name().clone();
    let store = open(&path);
    let err = store.put_group_state(&state).unwrap_err();
    assert!(matches!(err, AccessError::Refused { .. }), "{err}");
    assert!(store.group_states().unwrap().is_empty());
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let (_dir, path) = temp_path();
    let alice = identity(7, "alice");
    let store = open(&path);
    store.put_identity(&alice).unwrap();
    let loaded = store.identity(alice.peer_name()).unwrap().unwrap();
    let secret = alice.keypair().secret_bytes();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let decimal = format!("{:?}", &secret[..]);
    for text in [
        format!("{loaded:?}"),
        format!("{:?}", store.identities().unwrap()),
        format!("{store:?}"),
    ] {
        assert!(!text.contains(&hex), "{text}");
        assert!(!text.contains(&decimal), "{text}");
        assert!(!text.contains("[7, 7, 7"), "{text}");
    }
}

#[cfg(unix)]
#[test]
fn a_new_store_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = RedbStore::open_in_dir(&data).unwrap();
    assert_eq!(store.path(), data.join(FILE_NAME));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.path()), 0o600, "the file holds secret keys");
    assert_eq!(mode(&data), 0o700);
    // Nothing but the store is left in the directory.
    let entries: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn a_store_opens_once_at_a_time() {
    let (_dir, path) = temp_path();
    let _store = open(&path);
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let (_dir, path) = temp_path();
    drop(open(&path));
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let meta: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("meta");
        txn.open_table(meta)
            .unwrap()
            .insert("schema-version", 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&path).unwrap_err();
    match &err {
        OpenError::UnknownSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (99, 3)),
        other => panic!("expected UnknownSchema, got {other}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // Nothing was migrated. (redb's own open may rewrite its header; the
    // tables are as the newer build left them.)
    let db = redb::Database::open(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("meta");
    let table = txn.open_table(meta).unwrap();
    let version = redb::ReadableTable::get(&table, "schema-version").unwrap();
    assert_eq!(version.map(|v| v.value()), Some(99));
}

#[test]
fn another_programs_redb_file_is_not_a_store() {
    let (_dir, path) = temp_path();
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let theirs: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("theirs");
        txn.open_table(theirs).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err}");
    assert_eq!(err.path(), path);
    // Their data is untouched and no table of ours was added.
    let db = redb::Database::open(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    assert_eq!(names, ["theirs"]);
}

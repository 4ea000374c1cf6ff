//! Test support (feature `test-util`): fixtures, envelope forgery for negative
//! tests, and the backend-independent [`Store`] test suite.
//!
//! Each `store_*` function takes a fresh store and panics with a message on
//! the first broken expectation; every backend runs all of them (see
//! [`run_store_suite`]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use crate::{
    AttributeValue, Attributes, Change, GroupSpec, Identity, Keypair, NewRecord, PeerName, Record,
    RecordId, RecordType, SignedRecord, Store, Timestamp, Version,
    signed::{Envelope, Kind, WIRE_VERSION, encode, signing_message},
};

/// A fixed starting time for tests: 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// An application record type for tests.
pub const NOTE: RecordType = RecordType::from_u128(0x6e6f7465_0000_4000_8000_000000000001);

/// A deterministic identity: seed byte `seed`, classifier `name`.
pub fn identity(seed: u8, name: &str) -> Identity {
    Identity::new(Keypair::from_secret_bytes(&[seed; 32]), name, name).unwrap()
}

/// The name of the group `creator` creates with `classifier`.
pub fn group_of(creator: &Identity, classifier: &str) -> PeerName {
    GroupSpec::new(creator.peer_name(), classifier)
        .create(creator, T0, |_| false)
        .unwrap()
        .properties()
        .group_peer_name
        .clone()
}

/// The id of `creator`'s record number `n` (as made by [`add`]).
pub fn rid(creator: &Identity, n: u64) -> RecordId {
    RecordId::new(creator.peer_name(), n.to_be_bytes())
}

/// Signs `author`'s new record number `n` with `data`, expiring `ttl_secs` after `now`.
pub fn add(
    author: &Identity,
    group: &PeerName,
    n: u64,
    data: &[u8],
    now: Timestamp,
    ttl_secs: u64,
) -> SignedRecord {
    let new = NewRecord::new(NOTE, now.saturating_add_secs(ttl_secs)).with_data(data.to_vec());
    let record = Record::new(new, n.to_be_bytes(), group, author.peer_name(), now).unwrap();
    SignedRecord::sign(record, author.keypair()).unwrap()
}

/// Signs an update of `base` by `author` with new `data`.
pub fn update(author: &Identity, base: &SignedRecord, data: &[u8], now: Timestamp) -> SignedRecord {
    let mut proposed = base.record().clone();
    proposed.data = data.to_vec();
    let record = base
        .record()
        .update(&proposed, author.peer_name(), now)
        .unwrap();
    SignedRecord::sign(record, author.keypair()).unwrap()
}

/// Signs the tombstone of `base` by `author`.
pub fn delete(author: &Identity, base: &SignedRecord, now: Timestamp) -> SignedRecord {
    let record = base.record().delete(author.peer_name(), now).unwrap();
    SignedRecord::sign(record, author.keypair()).unwrap()
}

/// Builds envelope bytes from parts, bypassing every check: for tests that
/// feed forged or malformed envelopes to decoders.
pub fn forge_envelope(
    version: u8,
    kind: u8,
    signer: &[u8],
    body: &[u8],
    signature: &[u8],
) -> Vec<u8> {
    encode(&Envelope {
        version,
        kind,
        signer,
        body,
        signature,
    })
    .unwrap()
}

/// Re-encodes `record` as the body of `original`'s envelope, keeping the
/// original signer and signature: a tampered record.
pub fn tamper(original: &SignedRecord, record: &Record) -> Vec<u8> {
    forge_envelope(
        WIRE_VERSION,
        Kind::Record.to_byte(),
        original.signer_key().as_bytes(),
        &encode(record).unwrap(),
        original.signature().as_bytes(),
    )
}

/// Signs `record` with `keypair` whatever the record says its signer is: for
/// forged-signer tests.
pub fn sign_as(record: &Record, keypair: &Keypair) -> Vec<u8> {
    let body = encode(record).unwrap();
    let signature = keypair.sign(&signing_message(Kind::Record, &body));
    forge_envelope(
        WIRE_VERSION,
        Kind::Record.to_byte(),
        keypair.public().as_bytes(),
        &body,
        signature.as_bytes(),
    )
}

struct Fixture {
    alice: Identity,
    bob: Identity,
    group: PeerName,
    other_group: PeerName,
}

fn fixture() -> Fixture {
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let group = group_of(&alice, "chess");
    let other_group = group_of(&bob, "go");
    Fixture {
        alice,
        bob,
        group,
        other_group,
    }
}

fn changes<S: Store>(store: &mut S, batch: Vec<SignedRecord>) -> Vec<Change> {
    store
        .merge(batch)
        .unwrap()
        .into_iter()
        .map(|m| m.change)
        .collect()
}

/// The [`Change::Stale`] answer that names `held` as the copy kept.
fn stale(held: &SignedRecord) -> Change {
    Change::Stale {
        held: Version::of(held),
    }
}

/// Add, re-add, update, stale copy, delete, no resurrection.
pub fn store_merge_lifecycle<S: Store>(mut store: S) {
    let f = fixture();
    let v1 = add(&f.alice, &f.group, 1, b"one", T0, 3600);
    let v2 = update(&f.bob, &v1, b"two", T0.saturating_add_secs(1));
    let v3 = delete(&f.alice, &v2, T0.saturating_add_secs(2));

    assert_eq!(store.get(&f.group, &rid(&f.alice, 1)).unwrap(), None);
    assert_eq!(changes(&mut store, vec![v1.clone()]), [Change::Added]);
    assert_eq!(
        store.get(&f.group, &rid(&f.alice, 1)).unwrap().as_ref(),
        Some(&v1)
    );
    assert_eq!(changes(&mut store, vec![v1.clone()]), [stale(&v1)]);
    assert_eq!(changes(&mut store, vec![v2.clone()]), [Change::Updated]);
    assert_eq!(changes(&mut store, vec![v1.clone()]), [stale(&v2)]);
    assert_eq!(
        store.get(&f.group, &rid(&f.alice, 1)).unwrap().as_ref(),
        Some(&v2)
    );
    assert_eq!(changes(&mut store, vec![v3.clone()]), [Change::Deleted]);
    // A stale peer re-sending older versions never resurrects the record.
    assert_eq!(changes(&mut store, vec![v2, v1]), [stale(&v3), stale(&v3)]);
    let stored = store.get(&f.group, &rid(&f.alice, 1)).unwrap().unwrap();
    assert!(stored.record().is_deleted());
    assert_eq!(stored, v3);
}

/// A batch holding several versions of one record applies them in order, and
/// reports one outcome per input.
pub fn store_batch_merge<S: Store>(mut store: S) {
    let f = fixture();
    let v1 = add(&f.alice, &f.group, 7, b"one", T0, 3600);
    let v2 = update(&f.alice, &v1, b"two", T0.saturating_add_secs(1));
    let other = add(&f.alice, &f.group, 8, b"x", T0, 3600);
    assert_eq!(
        changes(&mut store, vec![v2.clone(), other, v1.clone()]),
        [Change::Added, Change::Added, stale(&v2)]
    );
    assert_eq!(store.get(&f.group, &rid(&f.alice, 7)).unwrap(), Some(v2));
    let tomb_first = delete(&f.alice, &v1, T0.saturating_add_secs(2));
    assert_eq!(changes(&mut store, vec![tomb_first]), [Change::Deleted]);
}

/// Two edits of one version (an update and a delete made on two sides of a
/// partition) end as the same copy in either arrival order, and the loser's
/// answer names the copy kept: what a session's version index then holds.
pub fn store_concurrent_edits<S: Store>(mut a: S, mut b: S) {
    let f = fixture();
    let v1 = add(&f.alice, &f.group, 9, b"one", T0, 3600);
    let updated = update(&f.bob, &v1, b"two", T0.saturating_add_secs(1));
    let deleted = delete(&f.alice, &v1, T0.saturating_add_secs(2));
    assert_eq!(updated.record().version, deleted.record().version);
    let winner = updated.clone().max(deleted.clone());
    let loser = if winner == updated {
        deleted.clone()
    } else {
        updated.clone()
    };
    for (store, first, second) in [(&mut a, &updated, &deleted), (&mut b, &deleted, &updated)] {
        assert_eq!(changes(store, vec![v1.clone()]), [Change::Added]);
        let answers = changes(store, vec![first.clone(), second.clone()]);
        let expected = |r: &SignedRecord| {
            if r == &loser && first == &winner {
                stale(&winner)
            } else if r.record().is_deleted() {
                Change::Deleted
            } else {
                Change::Updated
            }
        };
        assert_eq!(answers, [expected(first), expected(second)]);
        assert_eq!(
            store.get(&f.group, &rid(&f.alice, 9)).unwrap(),
            Some(winner.clone())
        );
        assert_eq!(changes(store, vec![loser.clone()]), [stale(&winner)]);
    }
    assert_eq!(a.digest(&f.group).unwrap(), b.digest(&f.group).unwrap());
}

/// Groups are separate namespaces: the same id in two groups is two records.
pub fn store_groups_are_separate<S: Store>(mut store: S) {
    let f = fixture();
    let a = add(&f.alice, &f.group, 1, b"a", T0, 3600);
    let b = add(&f.alice, &f.other_group, 1, b"b", T0, 3600);
    assert_eq!(
        changes(&mut store, vec![a.clone(), b.clone()]),
        [Change::Added, Change::Added]
    );
    assert_eq!(store.get(&f.group, &rid(&f.alice, 1)).unwrap(), Some(a));
    assert_eq!(
        store.get(&f.other_group, &rid(&f.alice, 1)).unwrap(),
        Some(b.clone())
    );
    assert_ne!(
        store.digest(&f.group).unwrap(),
        store.digest(&f.other_group).unwrap()
    );
    assert_eq!(store.remove_group(&f.group).unwrap(), 1);
    assert_eq!(store.get(&f.group, &rid(&f.alice, 1)).unwrap(), None);
    assert_eq!(
        store.get(&f.other_group, &rid(&f.alice, 1)).unwrap(),
        Some(b)
    );
    assert_eq!(store.records(&f.group, None, None, 10).unwrap(), vec![]);
}

/// Paging in id order and the type filter.
pub fn store_records_paging<S: Store>(mut store: S) {
    let f = fixture();
    let mut batch: Vec<SignedRecord> = (0..25)
        .rev()
        .map(|n| add(&f.alice, &f.group, n, &[n as u8], T0, 3600))
        .collect();
    let other_type = NewRecord::new(RecordType::from_u128(99 << 64), T0.saturating_add_secs(60))
        .with_attributes(
            Attributes::from_pairs([("Priority".to_owned(), AttributeValue::Int(3))]).unwrap(),
        );
    let typed = Record::new(
        other_type,
        100u64.to_be_bytes(),
        &f.group,
        f.bob.peer_name(),
        T0,
    )
    .unwrap();
    batch.push(SignedRecord::sign(typed, f.bob.keypair()).unwrap());
    store.merge(batch).unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.records(&f.group, Some(NOTE), after, 10).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = Some(page.last().unwrap().record().id);
        seen.extend(page.into_iter().map(|r| r.record().id));
    }
    let expected: Vec<RecordId> = (0..25).map(|n| rid(&f.alice, n)).collect();
    assert_eq!(
        seen, expected,
        "pages come in id order, without gaps or repeats"
    );
    let all = store.records(&f.group, None, None, 1000).unwrap();
    assert_eq!(all.len(), 26);
    let typed = store
        .records(&f.group, Some(RecordType::from_u128(99 << 64)), None, 1000)
        .unwrap();
    assert_eq!(typed.len(), 1);
    assert_eq!(typed[0].record().id, rid(&f.bob, 100));
}

/// Expiry removes live records (reported) and tombstones (silently), each at
/// its own expiration; until then a tombstone keeps older copies out.
pub fn store_expiry<S: Store>(mut store: S) {
    let f = fixture();
    let short = add(&f.alice, &f.group, 1, b"short", T0, 10);
    let long = add(&f.alice, &f.group, 2, b"long", T0, 1000);
    let doomed = add(&f.alice, &f.group, 3, b"doomed", T0, 100);
    let tomb = delete(&f.alice, &doomed, T0.saturating_add_secs(1));
    store
        .merge(vec![short, long.clone(), doomed.clone(), tomb.clone()])
        .unwrap();

    let expired = store.expire(T0.saturating_add_secs(10)).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].id, expired[0].change),
        (rid(&f.alice, 1), Change::Expired)
    );
    assert_eq!(store.get(&f.group, &rid(&f.alice, 1)).unwrap(), None);

    // The tombstone is still there: the deleted record's older copy is stale.
    assert_eq!(store.expire(T0.saturating_add_secs(99)).unwrap(), vec![]);
    assert_eq!(changes(&mut store, vec![doomed]), [stale(&tomb)]);
    assert_eq!(store.get(&f.group, &rid(&f.alice, 3)).unwrap(), Some(tomb));

    // At its own expiration the tombstone goes, silently.
    assert_eq!(store.expire(T0.saturating_add_secs(100)).unwrap(), vec![]);
    assert_eq!(store.get(&f.group, &rid(&f.alice, 3)).unwrap(), None);
    assert_eq!(store.get(&f.group, &rid(&f.alice, 2)).unwrap(), Some(long));
}

/// The digest depends on contents only, not on the order they arrived in.
pub fn store_digest<S: Store>(mut a: S, mut b: S) {
    let f = fixture();
    let empty = a.digest(&f.group).unwrap();
    let v1 = add(&f.alice, &f.group, 1, b"one", T0, 3600);
    let v2 = update(&f.bob, &v1, b"two", T0.saturating_add_secs(1));
    let w = add(&f.bob, &f.group, 2, b"w", T0, 3600);
    a.merge(vec![v1.clone(), v2.clone(), w.clone()]).unwrap();
    b.merge(vec![w]).unwrap();
    assert_ne!(a.digest(&f.group).unwrap(), b.digest(&f.group).unwrap());
    b.merge(vec![v2, v1]).unwrap();
    assert_eq!(a.digest(&f.group).unwrap(), b.digest(&f.group).unwrap());
    assert_ne!(a.digest(&f.group).unwrap(), empty);
}

/// The store's indexes follow every change: a longer expiration moves a record
/// in the expiry order, the type filter finds the current copy (tombstones
/// included), expiry reports in (group, id) order, and a removed group leaves
/// nothing for a later pass to find.
pub fn store_indexes_follow_changes<S: Store>(mut store: S) {
    let f = fixture();
    let v1 = add(&f.alice, &f.group, 1, b"one", T0, 10);
    let mut longer = v1.record().clone();
    longer.expires_at = T0.saturating_add_secs(1000);
    let v2 = v1
        .record()
        .update(&longer, f.alice.peer_name(), T0.saturating_add_secs(1))
        .unwrap();
    let v2 = SignedRecord::sign(v2, f.alice.keypair()).unwrap();
    let early = add(&f.alice, &f.group, 3, b"early", T0, 5);
    let elsewhere = add(&f.bob, &f.other_group, 2, b"two", T0, 10);
    assert_eq!(
        changes(&mut store, vec![v1, early, v2.clone(), elsewhere]),
        [Change::Added, Change::Added, Change::Updated, Change::Added]
    );

    // Record 1 moved to T0+1000 with its update: only the other two expire now.
    let expired: Vec<(PeerName, RecordId, Change)> = store
        .expire(T0.saturating_add_secs(10))
        .unwrap()
        .into_iter()
        .map(|m| (m.group, m.id, m.change))
        .collect();
    let mut expected = vec![
        (f.group.clone(), rid(&f.alice, 3), Change::Expired),
        (f.other_group.clone(), rid(&f.bob, 2), Change::Expired),
    ];
    expected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    assert_eq!(expired, expected, "expiry reports in (group, id) order");
    assert_eq!(
        store.get(&f.group, &rid(&f.alice, 1)).unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        store.records(&f.group, Some(NOTE), None, 10).unwrap(),
        vec![v2.clone()]
    );

    let tomb = delete(&f.alice, &v2, T0.saturating_add_secs(2));
    assert_eq!(changes(&mut store, vec![tomb.clone()]), [Change::Deleted]);
    assert_eq!(
        store.records(&f.group, Some(NOTE), None, 10).unwrap(),
        vec![tomb]
    );

    assert_eq!(store.remove_group(&f.group).unwrap(), 1);
    assert_eq!(
        store.records(&f.group, Some(NOTE), None, 10).unwrap(),
        vec![]
    );
    assert_eq!(store.expire(Timestamp::MAX).unwrap(), vec![]);
    // Removing a group forgets its tombstones too: the group starts afresh.
    assert_eq!(changes(&mut store, vec![v2]), [Change::Added]);
}

/// Runs every store test, each on fresh stores from `new_store`.
pub fn run_store_suite<S: Store>(mut new_store: impl FnMut() -> S) {
    store_merge_lifecycle(new_store());
    store_batch_merge(new_store());
    store_concurrent_edits(new_store(), new_store());
    store_groups_are_separate(new_store());
    store_records_paging(new_store());
    store_expiry(new_store());
    store_digest(new_store(), new_store());
    store_indexes_follow_changes(new_store());
}

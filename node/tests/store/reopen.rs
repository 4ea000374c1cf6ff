//! What survives closing and reopening the file.

use peergroup_protocol::{
    Change, MemoryStore, ReadStore, SignedRecord, Store, Timestamp,
    testing::{T0, add, delete, group_of, identity, rid, update},
};

use crate::{open, temp_path};

#[test]
fn records_survive_reopen_and_reverify() {
    let (_dir, path) = temp_path();
    let alice = identity(1, "alice");
    let group = group_of(&alice, "chess");
    let records: Vec<_> = (0..300)
        .map(|n| add(&alice, &group, n, &[n as u8; 256], T0, 3600))
        .collect();
    let mut memory = MemoryStore::new();
    memory.merge(records.clone()).unwrap();
    {
        let mut store = open(&path);
        store.merge(records.clone()).unwrap();
    }
    let store = open(&path);
    assert_eq!(store.verify_records().unwrap(), 300);
    assert_eq!(
        store.get(&group, &rid(&alice, 7)).unwrap().as_ref(),
        Some(&records[7])
    );
    assert_eq!(
        store.digest(&group).unwrap(),
        memory.digest(&group).unwrap()
    );
}

/// A tombstone outlives a restart: a stale peer re-sending the deleted
/// record after the reopen cannot resurrect it; the tombstone then expires at
/// its own time, silently, while a live record expiring after the reopen is
/// reported.
#[test]
fn tombstones_survive_reopen_until_their_expiration() {
    let (_dir, path) = temp_path();
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let group = group_of(&alice, "chess");
    let v1 = add(&alice, &group, 1, b"doomed", T0, 100);
    let v2 = update(&bob, &v1, b"edited", T0.saturating_add_secs(1));
    let tomb = delete(&alice, &v2, T0.saturating_add_secs(2));
    let short = add(&bob, &group, 2, b"short", T0, 50);
    {
        let mut store = open(&path);
        store
            .merge(vec![v1.clone(), v2.clone(), tomb.clone(), short])
            .unwrap();
    }
    {
        let mut store = open(&path);
        let stale: Vec<Change> = store
            .merge(vec![v1.clone(), v2.clone()])
            .unwrap()
            .into_iter()
            .map(|m| m.change)
            .collect();
        let held = Change::Stale {
            held: peergroup_protocol::Version::of(&tomb),
        };
        assert_eq!(stale, [held, held]);
        assert_eq!(
            store.get(&group, &rid(&alice, 1)).unwrap(),
            Some(tomb.clone())
        );
        let expired = store.expire(T0.saturating_add_secs(50)).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(
            (expired[0].id, expired[0].change),
            (rid(&bob, 2), Change::Expired)
        );
    }
    {
        let mut store = open(&path);
        assert_eq!(store.get(&group, &rid(&alice, 1)).unwrap(), Some(tomb));
        assert_eq!(store.expire(T0.saturating_add_secs(99)).unwrap(), vec![]);
        assert_eq!(store.expire(T0.saturating_add_secs(100)).unwrap(), vec![]);
        assert_eq!(store.get(&group, &rid(&alice, 1)).unwrap(), None);
    }
    let mut store = open(&path);
    assert_eq!(store.verify_records().unwrap(), 0);
    assert_eq!(store.expire(Timestamp::MAX).unwrap(), vec![]);
}

#[test]
fn merge_envelopes_reports_each_envelope_in_order() {
    let (_dir, path) = temp_path();
    let alice = identity(1, "alice");
    let group = group_of(&alice, "chess");
    let good: Vec<_> = (0..100)
        .map(|n| add(&alice, &group, n, b"data", T0, 3600))
        .collect();
    let mut envelopes: Vec<Vec<u8>> = good.iter().map(|r| r.as_bytes().to_vec()).collect();
    // A flipped signature bit in the middle of a batch large enough to be
    // decoded on several threads.
    let last = envelopes[50].len() - 1;
    envelopes[50][last] ^= 1;
    envelopes.push(good[3].as_bytes().to_vec());
    let slices: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    let store = open(&path);
    let outcomes = store.merge_envelopes(&slices).unwrap();
    assert_eq!(outcomes.len(), 101);
    for (n, outcome) in outcomes.iter().enumerate() {
        match n {
            50 => assert!(outcome.is_err(), "the forged envelope is refused"),
            100 => assert!(outcome.as_ref().unwrap().change.is_stale()),
            _ => {
                let merged = outcome.as_ref().unwrap();
                assert_eq!(
                    (merged.id, merged.change),
                    (rid(&alice, n as u64), Change::Added)
                );
            }
        }
    }
    assert_eq!(store.get(&group, &rid(&alice, 50)).unwrap(), None);
    assert_eq!(store.verify_records().unwrap(), 99);
}

/// The multi-threaded pipeline gives the same outcomes, in the same order, as
/// decoding and merging one envelope at a time into a MemoryStore, even when
/// versions of one record and forged envelopes are spread over many chunks.
#[test]
fn the_pipeline_merges_like_one_by_one_decoding() {
    let (_dir, path) = temp_path();
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let group = group_of(&alice, "chess");
    let mut envelopes: Vec<Vec<u8>> = Vec::new();
    for n in 0..200 {
        let v1 = add(&alice, &group, n, &[n as u8; 64], T0, 3600);
        envelopes.push(v1.as_bytes().to_vec());
        if n % 2 == 0 {
            let v2 = update(&bob, &v1, b"second", T0.saturating_add_secs(1));
            envelopes.push(v2.as_bytes().to_vec());
            if n % 10 == 0 {
                let tomb = delete(&alice, &v2, T0.saturating_add_secs(2));
                envelopes.push(tomb.as_bytes().to_vec());
            }
        }
        if n % 37 == 0 {
            let mut forged = v1.as_bytes().to_vec();
            let last = forged.len() - 1;
            forged[last] ^= 0x80;
            envelopes.push(forged);
        }
    }
    // Spread versions apart (a fixed permutation), so that a record's
    // versions land in different chunks and arrive in mixed order.
    let len = envelopes.len();
    let mut order: Vec<usize> = (0..len).map(|i| (i * 7919) % len).collect();
    order.sort_unstable();
    order.dedup();
    assert_eq!(order.len(), len, "7919 is prime to the length");
    let envelopes: Vec<Vec<u8>> = (0..len)
        .map(|i| envelopes[(i * 7919) % len].clone())
        .collect();
    let slices: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();

    let mut memory = MemoryStore::new();
    let expected: Vec<Option<Change>> = slices
        .iter()
        .map(|e| {
            SignedRecord::from_bytes(e)
                .ok()
                .map(|r| memory.merge(vec![r]).unwrap()[0].change)
        })
        .collect();
    let store = open(&path);
    let actual: Vec<Option<Change>> = store
        .merge_envelopes(&slices)
        .unwrap()
        .into_iter()
        .map(|o| o.ok().map(|m| m.change))
        .collect();
    assert_eq!(actual, expected);
    assert_eq!(
        store.digest(&group).unwrap(),
        memory.digest(&group).unwrap()
    );
    assert_eq!(store.verify_records().unwrap(), memory.len() as u64);
}

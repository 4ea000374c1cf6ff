//! The merge order: any arrival order of the same signed updates gives the same store.

use peergroup_protocol::{
    Identity, MemoryStore, PeerName, ReadStore, SignedRecord, Store,
    testing::{T0, add, delete, group_of, identity, rid, update},
};
use proptest::prelude::*;

/// One step of a history: `writer` updates (or deletes) a version chosen
/// among those that exist so far, so several writers often update the same
/// version concurrently.
#[derive(Debug, Clone)]
struct Step {
    record: u8,
    writer: u8,
    base: prop::sample::Index,
    delete: bool,
    at: u16,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u8..4,
        0u8..3,
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.15),
        0u16..50,
    )
        .prop_map(|(record, writer, base, delete, at)| Step {
            record,
            writer,
            base,
            delete,
            at,
        })
}

/// Builds every signed envelope of a history over `records` records.
fn history(writers: &[Identity], group: &PeerName, steps: &[Step]) -> Vec<SignedRecord> {
    let mut versions: Vec<Vec<SignedRecord>> = (0..4)
        .map(|n| {
            vec![add(
                &writers[n % writers.len()],
                group,
                n as u64,
                &[n as u8],
                T0,
                3600,
            )]
        })
        .collect();
    for (i, s) in steps.iter().enumerate() {
        let live: Vec<SignedRecord> = versions[s.record as usize]
            .iter()
            .filter(|v| !v.record().is_deleted())
            .cloned()
            .collect();
        if live.is_empty() {
            continue;
        }
        let base = s.base.get(&live);
        let writer = &writers[s.writer as usize];
        let now = T0.saturating_add_secs(u64::from(s.at));
        let next = if s.delete {
            delete(writer, base, now)
        } else {
            update(writer, base, &(i as u32).to_be_bytes(), now)
        };
        versions[s.record as usize].push(next);
    }
    versions.into_iter().flatten().collect()
}

fn merged_one_by_one(envelopes: &[SignedRecord]) -> MemoryStore {
    let mut store = MemoryStore::new();
    for e in envelopes {
        store.merge(vec![e.clone()]).unwrap();
    }
    store
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_arrival_order_gives_identical_digests(
        steps in proptest::collection::vec(step(), 0..40),
        seed in any::<u64>(),
    ) {
        let writers = [identity(1, "alice"), identity(2, "bob"), identity(3, "carol")];
        let group = group_of(&writers[0], "g");
        let envelopes = history(&writers, &group, &steps);

        let reference = merged_one_by_one(&envelopes);
        let digest = reference.digest(&group).unwrap();

        // Several permutations (a seeded Fisher-Yates), one by one and as one batch.
        let mut state = seed | 1;
        for _ in 0..4 {
            let mut shuffled = envelopes.clone();
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(merged_one_by_one(&shuffled).digest(&group).unwrap(), digest);
            let mut batch = MemoryStore::new();
            batch.merge(shuffled.clone()).unwrap();
            prop_assert_eq!(batch.digest(&group).unwrap(), digest);
            // Merging everything twice changes nothing: every outcome is Stale.
            let again = batch.merge(shuffled).unwrap();
            prop_assert!(again.iter().all(|m| m.change.is_stale()));
        }

        // What survives is the maximum of each record's versions.
        for n in 0..4u64 {
            let max = envelopes.iter().filter(|e| e.record().id == rid(&writers[n as usize % 3], n)).max().unwrap();
            let stored = reference.get(&group, &rid(&writers[n as usize % 3], n)).unwrap();
            prop_assert_eq!(stored.as_ref(), Some(max));
        }
    }
}

#[test]
fn merge_order_follows_the_windows_sequence() {
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let group = group_of(&alice, "g");
    let v1 = add(&alice, &group, 1, b"a", T0, 3600);
    let t = |s| T0.saturating_add_secs(s);

    // 1. Higher version wins, whatever the times and names.
    let v2 = update(&alice, &v1, b"b", t(100));
    let v3 = update(&alice, &v2, b"c", t(1));
    assert!(v3 > v2 && v2 > v1);

    // 3. Same version: the higher modifier name wins, not the later time.
    let by_alice = update(&alice, &v1, b"x", t(50));
    let by_bob = update(&bob, &v1, b"y", t(10));
    let (high, low) = if bob.peer_name() > alice.peer_name() {
        (&by_bob, &by_alice)
    } else {
        (&by_alice, &by_bob)
    };
    assert!(high > low, "the lexicographically higher modifier wins");

    // 4. Same version and modifier: the later modification wins.
    let early = update(&bob, &v1, b"p", t(1));
    let late = update(&bob, &v1, b"q", t(2));
    assert!(late > early);

    // 5. Same version, modifier and time: the signature bytes decide, consistently.
    let s1 = update(&bob, &v1, b"s1", t(3));
    let s2 = update(&bob, &v1, b"s2", t(3));
    assert_eq!(
        s1 > s2,
        s1.signature().as_bytes() > s2.signature().as_bytes()
    );

    // A delete is an update like any other for the order.
    let tomb = delete(&alice, &v2, t(5));
    assert!(tomb > v2 && tomb.record().version == 3);
}

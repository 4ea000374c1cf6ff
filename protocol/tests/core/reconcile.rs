//! Range-based set reconciliation: the initiator learns exactly what the
//! responder has that it lacks, in a number of rounds and bytes that grows
//! with the differences, and dishonest answers are refused.

use std::collections::{BTreeMap, BTreeSet};

use peergroup_protocol::{
    RecordId, Timestamp,
    messages::encode,
    reconcile::{
        Answer, ITEM_LEN, ITEMS_THRESHOLD, Query, Range, Set, Summary, answer, needs, pack, start,
        unpack,
    },
    session::Version,
};
use proptest::prelude::*;

const NOW: Timestamp = Timestamp::from_millis(1_000_000);

fn id(n: u64) -> RecordId {
    // Spread ids over the whole space, as real ones are.
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    RecordId(bytes)
}

/// A version of record `n`; its hash, like an envelope's, differs for every
/// (record, version, content) and so between records.
fn version_of(n: u64, v: u32, tag: u8) -> Version {
    use sha2::{Digest, Sha256};
    let hash: [u8; 32] = Sha256::new()
        .chain_update(n.to_be_bytes())
        .chain_update(v.to_be_bytes())
        .chain_update([tag])
        .finalize()
        .into();
    Version {
        version: v,
        hash,
        expires_at: Timestamp::from_millis(2_000_000),
    }
}

/// Runs a whole reconciliation of `a` (initiator) against `b`; returns what
/// `a` needs, the rounds and the bytes of every request and response.
fn run(
    a: &BTreeMap<RecordId, Version>,
    b: &BTreeMap<RecordId, Version>,
) -> (BTreeSet<RecordId>, usize, usize) {
    let (sa, sb) = (Set::new(a, NOW), Set::new(b, NOW));
    let mut queries = vec![start(&sa)];
    let (mut need, mut rounds, mut bytes) = (BTreeSet::new(), 0, 0);
    while !queries.is_empty() {
        rounds += 1;
        assert!(rounds < 20, "no progress");
        let mut next = Vec::new();
        for batch in queries.chunks(peergroup_protocol::reconcile::MAX_QUERIES) {
            let answers = answer(&sb, batch);
            bytes += encode(&batch.to_vec()).unwrap().len() + encode(&answers).unwrap().len();
            for (q, ans) in batch.iter().zip(&answers) {
                let (n, more) = needs(&sa, q, ans).unwrap();
                need.extend(n);
                next.extend(more);
            }
        }
        queries = next;
    }
    (need, rounds, bytes)
}

/// What `a` should need from `b`: b's live records that a lacks, or holds
/// in a lower version, or in a different envelope of the same version.
fn expected(
    a: &BTreeMap<RecordId, Version>,
    b: &BTreeMap<RecordId, Version>,
) -> BTreeSet<RecordId> {
    b.iter()
        .filter(|(_, v)| v.expires_at > NOW)
        .filter(|(k, v)| match a.get(k).filter(|m| m.expires_at > NOW) {
            None => true,
            Some(m) => v.version > m.version || (v.version == m.version && v.hash != m.hash),
        })
        .map(|(k, _)| *k)
        .collect()
}

#[test]
fn equal_sets_take_one_round() {
    let a: BTreeMap<_, _> = (0..5000).map(|n| (id(n), version_of(n, 1, 1))).collect();
    let (need, rounds, bytes) = run(&a, &a.clone());
    assert!(need.is_empty());
    assert_eq!(rounds, 1);
    assert!(bytes < 200, "{bytes} bytes for equal sets");
}

#[test]
fn a_joiner_learns_the_whole_set() {
    let b: BTreeMap<_, _> = (0..10_000).map(|n| (id(n), version_of(n, 1, 1))).collect();
    let (need, rounds, _) = run(&BTreeMap::new(), &b);
    assert_eq!(need, b.keys().copied().collect());
    assert!(rounds <= 5, "{rounds} rounds");
}

/// `n` records on the responder; the initiator misses 10 and holds 10 in
/// an older version.
fn twenty_differences(n: u64) -> (BTreeMap<RecordId, Version>, BTreeMap<RecordId, Version>) {
    let b: BTreeMap<_, _> = (0..n).map(|i| (id(i), version_of(i, 1, 1))).collect();
    let mut a = b.clone();
    let step = n / 20;
    for k in 0..20 {
        let i = k * step;
        if k % 2 == 0 {
            a.remove(&id(i));
        } else {
            a.insert(id(i), version_of(i, 0, 1));
        }
    }
    (a, b)
}

#[test]
fn bytes_grow_with_the_differences_not_the_set() {
    let (a, b) = twenty_differences(20_000);
    let (need, _, bytes) = run(&a, &b);
    assert_eq!(need, expected(&a, &b));
    assert_eq!(need.len(), 20);
    // About 2 KB per difference (a split per level, one leaf list): a
    // tenth of listing the set.
    let full = 20_000 * ITEM_LEN;
    assert!(
        bytes * 10 < full,
        "{bytes} bytes for 20 differences in 20,000 (a full list is {full})"
    );
    // Ten times the records, the same differences: one more level of
    // splits, not ten times the bytes.
    let (a, b) = twenty_differences(200_000);
    let (need, _, big) = run(&a, &b);
    assert_eq!(need.len(), 20);
    assert!(
        big < bytes * 2,
        "{big} bytes in 200,000 against {bytes} in 20,000"
    );
}

#[test]
fn expired_records_are_left_out_on_both_sides() {
    let mut b: BTreeMap<_, _> = (0..100).map(|n| (id(n), version_of(n, 1, 1))).collect();
    let a = b.clone();
    let expired = |n| Version {
        expires_at: NOW,
        ..version_of(n, 2, 2)
    };
    b.insert(id(5), expired(5));
    b.insert(id(500), expired(500));
    let (need, _, _) = run(&a, &b);
    assert!(need.is_empty(), "{need:?}");
}

#[test]
fn dishonest_answers_are_refused() {
    let a: BTreeMap<_, _> = (0..100).map(|n| (id(n), version_of(n, 1, 1))).collect();
    let set = Set::new(&a, NOW);
    let query = Query {
        range: Range {
            lower: Some(id(10)),
            upper: Some(id(20)),
        },
        summary: set.summary(&Range {
            lower: Some(id(10)),
            upper: Some(id(20)),
        }),
    };
    let any = Summary {
        fingerprint: [9; 16],
        count: 40,
    };
    // A split that does not shrink the range, one that leaves a gap, one
    // that reaches outside it.
    for parts in [
        vec![(query.range, any)],
        vec![(
            Range {
                lower: Some(id(11)),
                upper: Some(id(20)),
            },
            any,
        )],
        vec![
            (
                Range {
                    lower: Some(id(10)),
                    upper: Some(id(15)),
                },
                any,
            ),
            (
                Range {
                    lower: Some(id(15)),
                    upper: None,
                },
                any,
            ),
        ],
    ] {
        assert!(needs(&set, &query, &Answer::Split(parts)).is_err());
    }
    // Items outside the range, out of order, too many, torn.
    let outside = pack(
        [peergroup_protocol::reconcile::Item {
            id: id(50),
            version: 1,
            hash: [0; 16],
        }]
        .into_iter(),
    );
    assert!(needs(&set, &query, &Answer::Items(outside)).is_err());
    let (low, high) = (id(11).min(id(12)), id(11).max(id(12)));
    let unordered = pack(
        [high, low]
            .into_iter()
            .map(|id| peergroup_protocol::reconcile::Item {
                id,
                version: 1,
                hash: [0; 16],
            }),
    );
    assert!(unpack(&unordered).is_err());
    let too_many =
        pack(
            (0..=u64::from(ITEMS_THRESHOLD)).map(|n| peergroup_protocol::reconcile::Item {
                id: RecordId::from_u128(u128::from(n)),
                version: 1,
                hash: [0; 16],
            }),
        );
    assert!(unpack(&too_many).is_err());
    assert!(unpack(&[0u8; ITEM_LEN + 1]).is_err());
}

fn arb_set() -> impl Strategy<Value = BTreeMap<RecordId, Version>> {
    prop::collection::btree_map(0u64..400, (1u32..4, 0u8..3, any::<bool>()), 0..300).prop_map(|m| {
        m.into_iter()
            .map(|(n, (v, tag, expired))| {
                let mut version = version_of(n, v, tag);
                if expired {
                    version.expires_at = Timestamp::from_millis(10);
                }
                (id(n), version)
            })
            .collect()
    })
}

proptest! {
    /// For any two sets, the initiator needs exactly the responder's
    /// records that it lacks or holds in a worse version.
    #[test]
    fn the_initiator_needs_exactly_what_it_lacks(a in arb_set(), b in arb_set()) {
        let (need, _, _) = run(&a, &b);
        prop_assert_eq!(need, expected(&a, &b));
    }
}

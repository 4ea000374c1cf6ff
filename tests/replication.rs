//! Replication through the facade, without a network: envelopes are passed
//! as bytes between replicas, as gossip will carry them.

use peergroup::protocol::{
    Error, MemoryStore, ReadStore, SignedRecord, Store, VerifyError,
    testing::{T0, add, delete, group_of, identity, rid, sign_as, update},
};

#[test]
fn replicas_exchanging_bytes_converge_and_reject_forgeries() {
    let alice = identity(1, "alice");
    let bob = identity(2, "bob");
    let mallory = identity(9, "mallory");
    let group = group_of(&alice, "notes");

    let v1 = add(&alice, &group, 1, b"a", T0, 600);
    let v2 = update(&bob, &v1, b"b", T0.saturating_add_secs(1));
    let gone = delete(&alice, &v2, T0.saturating_add_secs(2));
    let w1 = add(&bob, &group, 2, b"w", T0, 600);
    let wire: Vec<Vec<u8>> = [&v1, &v2, &gone, &w1]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();

    let mut forward = MemoryStore::new();
    let mut backward = MemoryStore::new();
    for bytes in &wire {
        forward
            .merge(vec![SignedRecord::from_bytes(bytes).unwrap()])
            .unwrap();
    }
    for bytes in wire.iter().rev() {
        backward
            .merge(vec![SignedRecord::from_bytes(bytes).unwrap()])
            .unwrap();
    }
    assert_eq!(
        forward.digest(&group).unwrap(),
        backward.digest(&group).unwrap()
    );
    assert!(
        forward
            .get(&group, &rid(&alice, 1))
            .unwrap()
            .unwrap()
            .record()
            .is_deleted()
    );

    // Mallory re-signs Bob's record under her own key: refused before any store.
    let forged = sign_as(w1.record(), mallory.keypair());
    assert!(matches!(
        SignedRecord::from_bytes(&forged),
        Err(Error::Verify(VerifyError::SignerMismatch { .. }))
    ));
}

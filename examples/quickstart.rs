//! A first look at peergroup's core, with no network: two replicas of one
//! group's database exchange signed record envelopes and converge.
//!
//! Run it with `cargo run --example quickstart`.

use anyhow::Result;
use peergroup::protocol::{
    AttributeValue, Attributes, GroupSpec, Identity, Keypair, MemoryStore, NewRecord, ReadStore,
    Record, RecordId, RecordType, SignedRecord, Store, Timestamp,
};

fn main() -> Result<()> {
    // Keys come from the caller's RNG; fixed seeds keep the example repeatable.
    let alice = Identity::new(Keypair::from_secret_bytes(&[1; 32]), "alice", "Alice")?;
    let bob = Identity::new(Keypair::from_secret_bytes(&[2; 32]), "bob", "Bob")?;
    let now = Timestamp::from_millis(1_767_225_600_000);

    // Alice creates a group: its name is her key's authority plus a classifier.
    let group = GroupSpec::new(alice.peer_name(), "notes").create(&alice, now, |_| false)?;
    let name = group.properties().group_peer_name.clone();
    println!("group     {name}");
    println!("bob's id  {}", bob.public_text()?);

    // Alice adds a record; every replica verifies the envelope bytes on arrival.
    let note = RecordType::from_u128(0x6e6f7465);
    let attrs = Attributes::from_pairs([("Priority".to_owned(), AttributeValue::Int(1))])?;
    let new = NewRecord::new(note, now.saturating_add_secs(3600))
        .with_data(b"buy milk".to_vec())
        .with_attributes(attrs);
    let record = Record::new(new, [1; 8], &name, alice.peer_name(), now)?;
    let v1 = SignedRecord::sign(record, alice.keypair())?;

    // Bob (an admin, say) updates it; a delete would be a signed tombstone.
    let mut proposed = v1.record().clone();
    proposed.data = b"buy oat milk".to_vec();
    let v2 = v1
        .record()
        .update(&proposed, bob.peer_name(), now.saturating_add_secs(5))?;
    let v2 = SignedRecord::sign(v2, bob.keypair())?;

    // Two replicas receive the same envelopes in opposite orders and agree.
    let mut here = MemoryStore::new();
    let mut there = MemoryStore::new();
    for bytes in [v1.as_bytes(), v2.as_bytes()] {
        here.merge(vec![SignedRecord::from_bytes(bytes)?])?;
    }
    for bytes in [v2.as_bytes(), v1.as_bytes()] {
        there.merge(vec![SignedRecord::from_bytes(bytes)?])?;
    }
    let stored = here.get(&name, &RecordId::new(alice.peer_name(), [1; 8]))?;
    println!(
        "record    {:?} (version {})",
        stored
            .as_ref()
            .map(|r| String::from_utf8_lossy(&r.record().data).into_owned()),
        stored.as_ref().map_or(0, |r| r.record().version)
    );
    println!(
        "digests   {} / {}",
        here.digest(&name)?,
        there.digest(&name)?
    );
    anyhow::ensure!(
        here.digest(&name)? == there.digest(&name)?,
        "replicas diverged"
    );
    Ok(())
}

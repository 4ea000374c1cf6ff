//! A record envelope as it arrives in gossip, in a sync page or from a store
//! import: `SignedRecord::from_bytes`, and `envelope_kind`, which routes
//! received bytes before any decoder runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::{NOW, fixtures};
use peergroup_protocol::{Kind, RecordType, SignedRecord, envelope_kind, membership_chain};

fuzz_target!(|data: &[u8]| {
    let kind = envelope_kind(data);
    let Ok(signed) = SignedRecord::from_bytes(data) else {
        return;
    };
    // A decoded envelope is exactly the input, routes as a record, and
    // decodes again to the same thing.
    assert_eq!(signed.as_bytes(), data);
    assert_eq!(kind.ok(), Some(Kind::Record.to_byte()));
    let again = SignedRecord::from_bytes(signed.as_bytes());
    assert_eq!(again.as_ref().ok(), Some(&signed));
    assert_eq!(
        again.as_ref().ok().map(|a| a.record()),
        Some(signed.record())
    );
    // The merge order is total and reflexive on what decodes.
    if let Ok(again) = &again {
        assert_eq!(signed.cmp(again), std::cmp::Ordering::Equal);
    }
    // As a CBOR byte string (how records travel inside messages).
    assert!(peergroup_protocol::encode(&signed).is_ok_and(|b| b.len() > data.len()));
    let record = signed.record();
    let _ = record.is_expired(NOW);
    let _ = record.last_toucher();
    // Membership records carry a credential chain in their data.
    if record.record_type == RecordType::MEMBERSHIP
        && let Ok(chain) = membership_chain(record)
    {
        let _ = chain.verify(fixtures().properties.properties());
    }
});

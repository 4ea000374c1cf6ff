//! A sealed gossip envelope: `sealed_epoch` (the key lookup) and `open` with
//! the fixed group key; an envelope that opens is routed and decoded as a
//! received record would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::fixtures;
use peergroup_protocol::{SignedRecord, envelope_kind, open, sealed_epoch};

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let epoch = sealed_epoch(data);
    let Ok(plaintext) = open(&f.group_key, &f.group, data) else {
        return;
    };
    assert_eq!(epoch.ok(), Some(f.group_key.epoch()));
    let _ = envelope_kind(&plaintext);
    let _ = SignedRecord::from_bytes(&plaintext);
});

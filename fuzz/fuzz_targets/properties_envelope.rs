//! A group's signed properties, as they arrive in an invitation, a sync page
//! or gossip: `SignedProperties::from_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::fixtures;
use peergroup_protocol::{Kind, SignedProperties, envelope_kind};

fuzz_target!(|data: &[u8]| {
    let kind = envelope_kind(data);
    let Ok(signed) = SignedProperties::from_bytes(data) else {
        return;
    };
    assert_eq!(signed.as_bytes(), data);
    assert_eq!(kind.ok(), Some(Kind::Properties.to_byte()));
    // Invariant: what decoded decodes again, to the same properties.
    let again = SignedProperties::from_bytes(signed.as_bytes());
    assert_eq!(again.as_ref().ok(), Some(&signed));
    assert_eq!(
        again.ok().as_ref().map(|a| a.properties()),
        Some(signed.properties())
    );
    let props = signed.properties();
    let _ = props.classifier();
    let _ = props.admits_passwords();
    // The same revision never replaces itself; against the fixed group, the
    // update rules run on decoded input.
    assert!(props.check_update(props).is_err());
    let _ = fixtures().properties.properties().check_update(props);
});

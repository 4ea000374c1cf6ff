//! An identity's public text, as a user pastes it into an invitation
//! (`Signed::<IdentityInfo>::from_identity_text`), and a peer name as a
//! user types it (`PeerName::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_protocol::{IDENTITY_TEXT_PREFIX, IdentityInfo, PeerName, Signed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(info) = Signed::<IdentityInfo>::from_identity_text(text) {
        // Invariant: the text form of what parsed parses to the same identity.
        let again = Signed::<IdentityInfo>::from_identity_text(&info.to_text(IDENTITY_TEXT_PREFIX));
        assert_eq!(again.ok().as_ref(), Some(&info));
        assert!(info.payload().peer_name.is_owned_by(&info.payload().key));
    }
    if let Ok(name) = PeerName::parse(text) {
        assert_eq!(name.as_str(), text);
        assert_eq!(name.to_string(), text);
        assert_eq!(format!("{}.{}", name.authority(), name.classifier()), text);
        assert_eq!(PeerName::parse(name.as_str()).ok().as_ref(), Some(&name));
    }
});

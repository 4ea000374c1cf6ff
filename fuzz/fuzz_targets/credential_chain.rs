//! A credential chain (an auth proof's, a password admission's, a membership
//! record's): `CredentialChain::from_bytes`, then `verify` against the fixed
//! group's properties.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::{NOW, fixtures};
use peergroup_protocol::CredentialChain;

fuzz_target!(|data: &[u8]| {
    let Ok(chain) = CredentialChain::from_bytes(data) else {
        return;
    };
    // The decoder is canonical: the chain re-encodes to its input.
    assert_eq!(chain.to_bytes().ok().as_deref(), Some(data));
    let props = fixtures().properties.properties();
    if let Ok(membership) = chain.verify(props) {
        let _ = membership.check_time(NOW);
        // Invariant: a chain that verifies has memberships, the last its own.
        let all = chain.memberships(props);
        assert_eq!(all.ok().as_ref().and_then(|m| m.last()), Some(&membership));
    }
});

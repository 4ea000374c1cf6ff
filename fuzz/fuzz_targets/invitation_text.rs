//! An invitation's text form, as a user pastes it: `InvitationInfo::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::{NOW, fixtures};
use peergroup_protocol::InvitationInfo;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(info) = InvitationInfo::parse(text) else {
        return;
    };
    let _ = info.check_time(NOW);
    let _ = info.accept(&fixtures().member, NOW);
    let _ = info.chain.verify(info.properties.properties());
});

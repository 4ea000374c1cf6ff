//! Group authentication messages (`/peergroup/auth/1`), decoded as a node's
//! codec does; a decoded proof is verified against the fixed group and
//! transcript, a wrapped group key and password secret unwrapped with the
//! fixed member's key and a returned chain decoded and verified.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::{NOW, fixtures};
use peergroup_protocol::{
    AuthRole, CredentialChain,
    messages::{
        self,
        auth::{MAX_MESSAGE_BYTES, Request, Response},
    },
    unwrap_key, unwrap_password_secret,
};

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let props = f.properties.properties();
    let transcript = f.transcript();
    match messages::decode::<Request>(data, MAX_MESSAGE_BYTES) {
        Ok(Request::Prove { proof, .. }) => {
            let _ = proof.verify(props, AuthRole::Initiator, &transcript, NOW);
        }
        Ok(Request::Hello { .. }) | Err(_) => {}
    }
    match messages::decode::<Response>(data, MAX_MESSAGE_BYTES) {
        Ok(Response::Accepted {
            proof,
            key,
            chain,
            password,
        }) => {
            let _ = proof.verify(props, AuthRole::Responder, &transcript, NOW);
            if let Some(key) = key
                && let Ok(group_key) = unwrap_key(&key, f.member.keypair(), f.wrap_context())
            {
                assert_eq!(group_key.epoch(), key.epoch);
            }
            if let (Some(wrapped), Some(policy)) = (password, &props.password) {
                let _ = unwrap_password_secret(&wrapped, &f.group, policy, f.member.keypair());
            }
            if let Some(chain) = chain
                && let Ok(chain) = CredentialChain::from_bytes(&chain)
            {
                let _ = chain.verify(props);
            }
        }
        Ok(Response::Renew { chain }) => {
            if let Ok(chain) = CredentialChain::from_bytes(&chain) {
                let _ = chain.verify(props);
            }
        }
        Ok(Response::Nonce { .. } | Response::Refused { .. }) | Err(_) => {}
    }
});

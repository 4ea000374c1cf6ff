//! Password admission messages (`/peergroup/password/1`), decoded as a
//! node's codec does. A decoded `Start` runs the member's side of the
//! exchange (`PasswordCheck::start`) with the fixed secret; a decoded
//! `Challenge` runs the joiner's (`PasswordJoin::start`, then `confirm`);
//! a decoded `Admitted` has its chain decoded and verified and its key
//! unwrapped with the fixed joiner's key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::{fixtures, rng};
use peergroup_protocol::{
    CredentialChain, IdentityInfo, PasswordCheck, PasswordJoin, Signed,
    messages::{
        self,
        password::{MAX_MESSAGE_BYTES, Request, Response},
    },
    unwrap_key,
};

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    match messages::decode::<Request>(data, MAX_MESSAGE_BYTES) {
        Ok(Request::Start {
            identity, message, ..
        }) => {
            let _ = Signed::<IdentityInfo>::from_bytes(&identity);
            let context = f.pake_context(&identity);
            if let Ok((check, _b, _confirm_b)) =
                PasswordCheck::start(&f.secret, &context, &message, &mut rng())
            {
                // Nobody can answer this exchange's confirmation.
                assert!(check.finish(&[0; 32]).is_err());
            }
        }
        Ok(Request::Confirm { .. }) | Err(_) => {}
    }
    match messages::decode::<Response>(data, MAX_MESSAGE_BYTES) {
        Ok(Response::Challenge {
            message,
            confirmation,
            proof,
            nonce,
        }) => {
            // The joiner checks the member's proof first, as a node does.
            let transcript = peergroup_protocol::Transcript {
                responder_nonce: nonce,
                ..f.transcript()
            };
            let _ = proof.verify(
                f.properties.properties(),
                peergroup_protocol::AuthRole::Responder,
                &transcript,
                peergroup_fuzz::NOW,
            );
            let context = f.pake_context(&f.joiner_identity);
            let (join, _a) = PasswordJoin::start(&f.secret, &context, &mut rng());
            let _ = join.confirm(&context, &message, &confirmation);
        }
        Ok(Response::Admitted { chain, key }) => {
            if let Ok(chain) = CredentialChain::from_bytes(&chain) {
                let _ = chain.verify(f.properties.properties());
            }
            if let Some(key) = key {
                let _ = unwrap_key(&key, f.joiner.keypair(), f.wrap_context());
            }
        }
        Ok(Response::Refused { .. } | Response::Busy { .. }) | Err(_) => {}
    }
});

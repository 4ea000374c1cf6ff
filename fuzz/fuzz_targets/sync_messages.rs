//! First-connect copy messages (`/peergroup/sync/3`), decoded as a node's
//! codec does; a page's properties and records are decoded as the node
//! decodes them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_protocol::{
    SignedProperties, SignedRecord,
    messages::{
        self,
        sync::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, Response},
    },
};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = messages::decode::<Request>(data, MAX_REQUEST_BYTES) {
        let _ = request.group.is_secure();
    }
    match messages::decode::<Response>(data, MAX_RESPONSE_BYTES) {
        Ok(Response::Page {
            properties,
            records,
            ..
        }) => {
            let _ = SignedProperties::from_bytes(&properties);
            for record in &records {
                let _ = SignedRecord::from_bytes(record);
            }
        }
        Ok(Response::Refused { .. }) | Err(_) => {}
    }
});

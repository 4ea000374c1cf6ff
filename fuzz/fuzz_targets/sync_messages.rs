//! Synchronization messages (`/peergroup/sync/4`), decoded as a node's codec
//! does. A decoded `Reconcile` is answered over a fixed set of records, as a
//! member answers it; decoded `Reconciled` answers are judged against the
//! queries a member sends first, as the requester judges them (the split
//! and item checks); a `Records` answer's properties and records are decoded
//! as the node decodes them.
#![no_main]

use std::{collections::BTreeMap, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use peergroup_fuzz::NOW;
use peergroup_protocol::{
    RecordId, SignedProperties, SignedRecord, Timestamp,
    messages::{
        self,
        sync::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, Response},
    },
    reconcile::{self, MAX_QUERIES, Set},
    session::Version,
};

/// A fixed set: 200 records with spread ids.
fn index() -> &'static BTreeMap<RecordId, Version> {
    static INDEX: OnceLock<BTreeMap<RecordId, Version>> = OnceLock::new();
    INDEX.get_or_init(|| {
        (0u64..200)
            .map(|n| {
                let id = RecordId::from_u128(
                    u128::from(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) << 64 | u128::from(n),
                );
                let mut hash = [0u8; 32];
                hash[..8].copy_from_slice(&n.to_be_bytes());
                hash[8..16].copy_from_slice(&n.wrapping_mul(31).to_be_bytes());
                let version = Version {
                    version: 1,
                    hash,
                    expires_at: Timestamp::MAX,
                };
                (id, version)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let set = Set::new(index(), NOW);
    match messages::decode::<Request>(data, MAX_REQUEST_BYTES) {
        Ok(Request::Reconcile { group, queries }) => {
            let _ = group.is_secure();
            if queries.len() <= MAX_QUERIES {
                let answers = reconcile::answer(&set, &queries);
                assert_eq!(answers.len(), queries.len());
            }
        }
        Ok(Request::Fetch { group, .. }) => {
            let _ = group.is_secure();
        }
        Err(_) => {}
    }
    match messages::decode::<Response>(data, MAX_RESPONSE_BYTES) {
        Ok(Response::Reconciled {
            properties,
            answers,
        }) => {
            let _ = SignedProperties::from_bytes(&properties);
            let first = reconcile::start(&set);
            for answer in &answers {
                let _ = reconcile::needs(&set, &first, answer);
            }
        }
        Ok(Response::Records {
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

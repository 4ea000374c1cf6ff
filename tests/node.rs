//! Real libp2p nodes in one process, on loopback.

use std::time::Duration;

use peergroup::protocol::{Error, NewRecord, RecordType, Role};

use crate::support::*;

fn note(data: &str) -> NewRecord {
    let expires = now().saturating_add_secs(3600);
    NewRecord::new(
        RecordType::from_u128(0x6e6f7465_0000_4000_8000_000000000001),
        expires,
    )
    .with_data(data.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_replicate_records() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let bob = join(&creator, &group, Role::Member, config(), addrs).await;
    let id = creator
        .handle
        .add_record(&group, note("hello"))
        .await
        .unwrap();
    eventually(10, "bob sees the record", || async {
        bob.handle.get_record(&group, id).await.is_ok()
    })
    .await;
    let bobs = bob
        .handle
        .add_record(&group, note("from bob"))
        .await
        .unwrap();
    eventually(10, "creator sees bob's record", || async {
        creator.handle.get_record(&group, bobs).await.is_ok()
    })
    .await;
    // Bob may not change the creator's record.
    let mut r = bob.handle.get_record(&group, id).await.unwrap();
    r.data = b"mine now".to_vec();
    let err = bob.handle.update_record(&group, r).await.unwrap_err();
    assert!(matches!(err.peer(), Some(Error::NotAuthorized(_))), "{err}");
    let _ = Duration::ZERO;
}

//! Synchronization and recovery (issue 10): members reconcile on every
//! connection, so what one missed while away, or wrote alone, reaches the
//! other, and replicas that diverged agree again.

use std::time::Duration;

use peergroup::protocol::{PeerName, Role};

use crate::support::{Member, config, digests, eventually, group_with_creator, join, note, now};

/// A member and the creator, both ready and each other's neighbour.
async fn pair() -> (Member, Member, PeerName) {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let member = join(&creator, &group, Role::Member, config(), addrs).await;
    eventually(20, "the member is ready and connected", || async {
        member.handle.status(&group).await.unwrap().ready
            && !member.handle.connections(&group).await.unwrap().is_empty()
    })
    .await;
    (creator, member, group)
}

/// Reconnects `member` (closed) to `group` through `creator`'s addresses.
async fn reconnect(member: &Member, creator: &Member, group: &PeerName) {
    let addrs = creator.handle.listen_addrs().await.unwrap();
    member.handle.open(group).await.unwrap();
    member
        .handle
        .connect_by_address(group, addrs)
        .await
        .unwrap();
}

async fn converge(members: &[&Member], group: &PeerName, what: &str) {
    eventually(20, what, || async {
        let d = digests(members, group).await;
        d.windows(2).all(|w| w[0] == w[1])
    })
    .await;
}

/// A member closes the group, the creator adds 10 records, the member
/// reconnects: it receives them (gossip alone never brings them back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_while_a_member_was_away_reach_it() {
    let (creator, member, group) = pair().await;
    member.handle.close(&group).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            creator
                .handle
                .add_record(&group, note(&format!("while away {i}")))
                .await
                .unwrap(),
        );
    }
    reconnect(&member, &creator, &group).await;
    for id in ids {
        eventually(20, "every record written meanwhile", || async {
            member.handle.get_record(&group, id).await.is_ok()
        })
        .await;
    }
    converge(&[&creator, &member], &group, "identical databases").await;
}

/// A member works offline and adds 5 records while the creator adds 5; they
/// reconnect: both have all 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_both_sides_while_apart_end_up_everywhere() {
    let (creator, member, group) = pair().await;
    member.handle.close(&group).await.unwrap();
    member.handle.open(&group).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            member
                .handle
                .add_record(&group, note(&format!("offline {i}")))
                .await
                .unwrap(),
        );
        ids.push(
            creator
                .handle
                .add_record(&group, note(&format!("online {i}")))
                .await
                .unwrap(),
        );
    }
    let addrs = creator.handle.listen_addrs().await.unwrap();
    member
        .handle
        .connect_by_address(&group, addrs)
        .await
        .unwrap();
    for m in [&creator, &member] {
        for id in &ids {
            eventually(20, "all ten records on both", || async {
                m.handle.get_record(&group, *id).await.is_ok()
            })
            .await;
        }
    }
    converge(&[&creator, &member], &group, "identical databases").await;
}

/// While apart, the member edits a record the creator deletes: after
/// reconnecting both hold the same version (the merge order decides), and
/// the member's next change does not revive a deleted record anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_made_while_apart_resolves_the_same_everywhere() {
    let (creator, member, group) = pair().await;
    let id = member
        .handle
        .add_record(&group, note("shared"))
        .await
        .unwrap();
    eventually(20, "the record on the creator", || async {
        creator.handle.get_record(&group, id).await.is_ok()
    })
    .await;
    member.handle.close(&group).await.unwrap();
    member.handle.open(&group).await.unwrap();
    let mut edited = member.handle.get_record(&group, id).await.unwrap();
    edited.data = b"edited while apart".to_vec();
    member.handle.update_record(&group, edited).await.unwrap();
    creator.handle.delete_record(&group, id).await.unwrap();

    let addrs = creator.handle.listen_addrs().await.unwrap();
    member
        .handle
        .connect_by_address(&group, addrs)
        .await
        .unwrap();
    converge(
        &[&creator, &member],
        &group,
        "the conflict resolved the same",
    )
    .await;
    let on_creator = creator.handle.get_record(&group, id).await.is_ok();
    let on_member = member.handle.get_record(&group, id).await.is_ok();
    assert_eq!(on_creator, on_member, "the replicas disagree");
    // The member's next change follows what won: an update if the edit won,
    // nothing to update if the delete won. Either way the replicas agree.
    if on_member {
        let mut again = member.handle.get_record(&group, id).await.unwrap();
        again.data = b"edited again".to_vec();
        member.handle.update_record(&group, again).await.unwrap();
    } else {
        assert!(member.handle.get_record(&group, id).await.is_err());
    }
    converge(&[&creator, &member], &group, "still the same").await;
    assert_eq!(
        creator.handle.get_record(&group, id).await.is_ok(),
        member.handle.get_record(&group, id).await.is_ok()
    );
}

/// A record written while no neighbour is connected reaches the group at
/// the next connection, even after a restart in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_written_alone_survives_a_restart_and_reaches_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let member = join(
        &creator,
        &group,
        Role::Member,
        config().data_dir(dir.path()),
        addrs.clone(),
    )
    .await;
    eventually(20, "the member is ready", || async {
        member.handle.status(&group).await.unwrap().ready
    })
    .await;
    member.handle.close(&group).await.unwrap();
    member.handle.open(&group).await.unwrap();
    let id = member
        .handle
        .add_record(&group, note("written alone"))
        .await
        .unwrap();
    member.handle.shutdown().await.unwrap();

    let (handle, events) = crate::support::node(config().data_dir(dir.path())).await;
    let member = Member {
        handle,
        identity: member.identity,
        events,
    };
    member.handle.open(&group).await.unwrap();
    member
        .handle
        .connect_by_address(&group, addrs)
        .await
        .unwrap();
    eventually(
        20,
        "the record written alone reaches the creator",
        || async { creator.handle.get_record(&group, id).await.is_ok() },
    )
    .await;
}

/// Two halves of four members write while they are apart (the creator and
/// an admin stay online; the other two are offline), including a delete of
/// a record on one side, then meet again: identical digests everywhere,
/// the tombstone included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_members_that_wrote_apart_converge() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let b = join(&creator, &group, Role::Admin, config(), addrs.clone()).await;
    let c = join(&creator, &group, Role::Member, config(), addrs.clone()).await;
    let d = join(&creator, &group, Role::Member, config(), addrs.clone()).await;
    for m in [&b, &c, &d] {
        eventually(20, "ready", || async {
            m.handle.status(&group).await.unwrap().ready
        })
        .await;
    }
    let shared = c
        .handle
        .add_record(&group, note("c's, shared"))
        .await
        .unwrap();
    let all = [&creator, &b, &c, &d];
    converge(&all, &group, "the shared record everywhere").await;
    for m in [&c, &d] {
        m.handle.close(&group).await.unwrap();
        m.handle.open(&group).await.unwrap();
    }
    for (i, m) in all.iter().enumerate() {
        for k in 0..3 {
            m.handle
                .add_record(&group, note(&format!("apart {i}.{k}")))
                .await
                .unwrap();
        }
    }
    // The online half deletes c's record (b is an admin); c, offline, edits it.
    b.handle.delete_record(&group, shared).await.unwrap();
    let mut edited = c.handle.get_record(&group, shared).await.unwrap();
    edited.data = b"edited offline".to_vec();
    c.handle.update_record(&group, edited).await.unwrap();
    // Heal.
    for m in [&c, &d] {
        m.handle
            .connect_by_address(&group, addrs.clone())
            .await
            .unwrap();
    }
    converge(&all, &group, "all four agree").await;
    let present: Vec<bool> = {
        let mut v = Vec::new();
        for m in all {
            v.push(m.handle.get_record(&group, shared).await.is_ok());
        }
        v
    };
    assert!(present.windows(2).all(|w| w[0] == w[1]), "{present:?}");
    let _ = (now(), Duration::ZERO);
}

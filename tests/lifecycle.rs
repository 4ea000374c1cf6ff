//! Real nodes on loopback: ports, restarts with a data directory, corrupt
//! files, stored credentials, reconnecting, and timers on an injected clock.

use std::time::Duration;

use peergroup::node::GroupEvent;
use peergroup::protocol::{Error, NewRecord, RecordType, Role};

use crate::support::*;

/// The default listen port is 3587 (the Windows grouping port); when it is
/// taken the node listens on an OS-chosen port instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_port_falls_back_when_taken() {
    let taken = std::net::TcpListener::bind(("0.0.0.0", peergroup::node::DEFAULT_PORT));
    let config = peergroup::node::Config::builder()
        .mdns(false)
        .kademlia(false);
    let (handle, _) = node(config).await;
    let ports: Vec<u16> = handle
        .listen_addrs()
        .await
        .unwrap()
        .iter()
        .filter_map(|a| {
            a.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
        })
        .collect();
    assert!(!ports.is_empty());
    assert!(
        ports
            .iter()
            .all(|p| *p != peergroup::node::DEFAULT_PORT && *p != 0),
        "{ports:?}"
    );
    drop(taken);
    handle.shutdown().await.unwrap();
}

/// With a data directory, identities, groups, credentials and records
/// survive a restart; a group comes back closed, opens offline with its
/// database readable, and a member that synchronized before connects (and
/// listens) alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_data_directory_survives_a_restart() {
    let creator_dir = tempfile::tempdir().unwrap();
    let member_dir = tempfile::tempdir().unwrap();
    let (creator, group) = group_with_creator(config().data_dir(creator_dir.path())).await;
    let id = creator
        .handle
        .add_record(&group, note("persistent"))
        .await
        .unwrap();
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let member = join(
        &creator,
        &group,
        Role::Member,
        config().data_dir(member_dir.path()),
        addrs,
    )
    .await;
    let own = member
        .handle
        .add_record(&group, note("member's"))
        .await
        .unwrap();
    let digest = member.handle.digest(&group).await.unwrap();
    eventually(10, "creator has the member's record", || async {
        creator.handle.get_record(&group, own).await.is_ok()
    })
    .await;
    creator.handle.shutdown().await.unwrap();
    member.handle.shutdown().await.unwrap();

    let (again, _) = node(config().data_dir(member_dir.path())).await;
    let names: Vec<_> = again
        .identities()
        .await
        .unwrap()
        .iter()
        .map(|i| i.payload().peer_name.clone())
        .collect();
    assert_eq!(names, vec![member.identity.clone()]);
    assert_eq!(
        again.groups().await.unwrap(),
        vec![peergroup::node::GroupEntry {
            group: group.clone(),
            lifecycle: peergroup::protocol::session::Lifecycle::Closed,
        }]
    );
    assert!(matches!(
        again.get_record(&group, id).await.unwrap_err().peer(),
        Some(Error::InvalidGroup(_))
    ));
    again.open(&group).await.unwrap();
    assert_eq!(
        again.get_record(&group, id).await.unwrap().data,
        b"persistent"
    );
    assert_eq!(again.digest(&group).await.unwrap(), digest);
    // Nobody else is online: having synchronized before, it listens alone.
    again.connect(&group).await.unwrap();
    let status = again.status(&group).await.unwrap();
    let ready = status.ready;
    assert!(ready && status.listening);
    again
        .add_record(&group, note("after the restart"))
        .await
        .unwrap();
    again.shutdown().await.unwrap();

    let (creator_again, _) = node(config().data_dir(creator_dir.path())).await;
    creator_again.open(&group).await.unwrap();
    assert_eq!(
        creator_again.get_record(&group, own).await.unwrap().data,
        b"member's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_database_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(peergroup::node::storage::FILE_NAME),
        b"not a database at all",
    )
    .unwrap();
    let err = peergroup::node::Node::spawn(config().data_dir(dir.path()).build().unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, peergroup::node::Error::Open(_)), "{err:?}");
    assert!(text.contains(peergroup::node::storage::FILE_NAME), "{text}");
    let after = std::fs::read(dir.path().join(peergroup::node::storage::FILE_NAME)).unwrap();
    assert_eq!(after, b"not a database at all", "the file is left alone");
}

/// `PeerGroupIssueCredentials` with the store flag: the creator promotes a
/// member to admin; the member adopts the credential from the group database
/// and may then change another member's record, which every replica accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_credentials_promote_a_member() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let promoted = join(&creator, &group, Role::Member, config(), addrs.clone()).await;
    let other = join(&creator, &group, Role::Member, config(), addrs).await;
    let target = other
        .handle
        .add_record(&group, note("other's"))
        .await
        .unwrap();
    eventually(10, "the record reaches the member", || async {
        promoted.handle.get_record(&group, target).await.is_ok()
    })
    .await;
    let mut r = promoted.handle.get_record(&group, target).await.unwrap();
    r.data = b"edited by a member".to_vec();
    let err = promoted
        .handle
        .update_record(&group, r.clone())
        .await
        .unwrap_err();
    assert!(matches!(err.peer(), Some(Error::NotAuthorized(_))), "{err}");

    let info = promoted.handle.identities().await.unwrap().remove(0);
    let text = info.to_text(peergroup::protocol::IDENTITY_TEXT_PREFIX);
    creator
        .handle
        .issue_credentials(&group, &text, Role::Admin, None, true)
        .await
        .unwrap();
    eventually(10, "the promotion is adopted", || async {
        promoted
            .handle
            .update_record(&group, r.clone())
            .await
            .is_ok()
    })
    .await;
    for m in [&creator, &other] {
        eventually(10, "the admin's edit is accepted everywhere", || async {
            m.handle.get_record(&group, target).await.unwrap().data == b"edited by a member"
        })
        .await;
    }
    let members = creator.handle.members(&group).await.unwrap();
    assert!(
        members
            .iter()
            .any(|m| m.subject == promoted.identity && m.role == Role::Admin)
    );
}

/// Closing and reconnecting over a connection that stays up: the neighbours
/// subscribed before are neighbours again once they authenticate again over
/// that connection (no new dial), and records flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_finds_neighbours_already_subscribed() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let bob = join(&creator, &group, Role::Member, config(), addrs).await;
    eventually(10, "neighbours", || async {
        !bob.handle.connections(&group).await.unwrap().is_empty()
    })
    .await;
    let bob_peer = bob.handle.peer_id().await.unwrap();
    let mut seen_by_creator = creator.handle.subscribe(
        peergroup::node::EventFilter::kinds([peergroup::node::GroupEventKind::NeighborConnection])
            .with_group(group.clone()),
    );
    bob.handle.close(&group).await.unwrap();
    bob.handle.open(&group).await.unwrap();
    assert!(bob.handle.connections(&group).await.unwrap().is_empty());
    bob.handle.connect(&group).await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    eventually(10, "the creator is bob's neighbour again", || async {
        bob.handle.connections(&group).await.unwrap() == vec![creator_peer]
    })
    .await;
    assert!(bob.handle.status(&group).await.unwrap().has_connections);
    // Publish once the creator saw Bob leave and come back on the topic: a
    // record published in between reaches Bob only through a later sync.
    let (mut left, mut back) = (false, false);
    while !back {
        let event = tokio::time::timeout(Duration::from_secs(10), seen_by_creator.recv())
            .await
            .expect("the creator sees bob leave and come back")
            .unwrap()
            .unwrap();
        if let peergroup::node::Event::Group(GroupEvent::NeighborConnection {
            peer, change, ..
        }) = event
            && peer == bob_peer
        {
            match change {
                peergroup::node::ConnectionChange::Disconnected => left = true,
                peergroup::node::ConnectionChange::Connected => back = left,
            }
        }
    }
    let id = creator
        .handle
        .add_record(&group, note("again"))
        .await
        .unwrap();
    eventually(10, "records flow again", || async {
        bob.handle.get_record(&group, id).await.is_ok()
    })
    .await;
}

/// The behaviour runs on an injected clock: a connect times out, and
/// records expire, when the clock says so, without waiting in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_follow_an_injected_clock() {
    use std::sync::Arc;

    use peergroup::node::{
        Clock, Event, EventFilter, GroupEvent, GroupEventKind, ManualClock, RecordChange,
    };

    let clock = ManualClock::new(now());
    let with_clock = || config().clock(Arc::new(clock.clone()));
    let (creator, group) = group_with_creator(with_clock()).await;
    // A joiner nobody serves: its connect fails when the clock passes the
    // connect timeout (20 s in these tests), not after 20 real seconds.
    let joiner = invited(&creator, &group, Role::Member, with_clock(), None).await;
    creator.handle.shutdown().await.unwrap();
    let started = std::time::Instant::now();
    let connecting = {
        let (handle, group) = (joiner.handle.clone(), group.clone());
        tokio::spawn(async move { handle.connect(&group).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    clock.advance(21_000);
    let err = connecting.await.unwrap().unwrap_err();
    assert!(
        matches!(err.peer(), Some(Error::NoMembersFound(_))),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Expiry: a fresh node with the record, and the clock past its expiration.
    let (node, _) = node(with_clock()).await;
    let info = node.create_identity("solo", "").await.unwrap();
    let group = node
        .create_group(peergroup::protocol::GroupSpec::new(
            &info.payload().peer_name,
            "t",
        ))
        .await
        .unwrap();
    let mut changes = node.subscribe(EventFilter::kinds([GroupEventKind::RecordChanged]));
    let soon = NewRecord::new(
        RecordType::from_u128(0x6e6f7465_0000_4000_8000_000000000001),
        clock.now().saturating_add_secs(60),
    );
    let id2 = node.add_record(&group, soon).await.unwrap();
    clock.advance(61_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, changes.recv())
            .await
            .expect("the record expires")
            .unwrap()
            .unwrap();
        if let Event::Group(GroupEvent::RecordChanged {
            id,
            change: RecordChange::Expired,
            ..
        }) = event
        {
            assert_eq!(id, id2);
            break;
        }
    }
    assert!(matches!(
        node.get_record(&group, id2).await.unwrap_err().peer(),
        Some(Error::RecordNotFound)
    ));
}

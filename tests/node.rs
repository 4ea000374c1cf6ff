//! Real libp2p nodes in one process, on loopback.

use std::time::Duration;

use peergroup::node::GroupEvent;
use peergroup::protocol::{Error, NewRecord, RecordType, Role};

use crate::support::*;

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

/// 5 members joined by invitation, several writers, 1,000 updates including
/// concurrent updates of the same records and deletes: every replica ends
/// with the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_converge_after_1000_concurrent_updates() {
    let (creator, group) = group_with_creator(config()).await;
    let mut members = vec![creator];
    for role in [Role::Admin, Role::Admin, Role::Member, Role::Member] {
        let mut addrs = Vec::new();
        for m in &members {
            addrs.extend(m.handle.listen_addrs().await.unwrap());
        }
        let m = join(&members[0], &group, role, config(), addrs).await;
        members.push(m);
    }
    // Wait for the mesh: every member sees the other four.
    for m in &members {
        eventually(20, "neighbours", || async {
            let status = m.handle.status(&group).await.unwrap();
            let ready = status.ready;
            ready && status.has_connections
        })
        .await;
    }
    // Ten shared records that the three admins will fight over.
    let mut shared = Vec::new();
    for i in 0..10 {
        shared.push(
            members[0]
                .handle
                .add_record(&group, note(&format!("shared {i}")))
                .await
                .unwrap(),
        );
    }
    for m in &members {
        eventually(20, "shared records everywhere", || async {
            m.handle.records(&group, None).await.unwrap().len() >= 10
        })
        .await;
    }

    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(10));
    let mut tasks = Vec::new();
    for (w, m) in members.iter().enumerate().take(4) {
        let handle = m.handle.clone();
        let group = group.clone();
        let shared = shared.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut own = Vec::new();
            let mut i = 0u64;
            while done.load(std::sync::atomic::Ordering::Relaxed) < 1000 {
                i += 1;
                let ok = if w < 3 && !i.is_multiple_of(3) {
                    // Admins update (and sometimes delete) the shared records,
                    // each from its own possibly outdated copy: concurrent
                    // updates of the same version happen all the time.
                    let id = shared[(i as usize * (w + 1)) % shared.len()];
                    match handle.get_record(&group, id).await {
                        Ok(r) if i.is_multiple_of(97) => {
                            handle.delete_record(&group, r.id).await.is_ok()
                        }
                        Ok(mut r) => {
                            r.data = format!("writer {w} op {i}").into_bytes();
                            handle.update_record(&group, r).await.is_ok()
                        }
                        Err(_) => false,
                    }
                } else if own.len() < 5 || i.is_multiple_of(4) {
                    match handle
                        .add_record(&group, note(&format!("own {w} {i}")))
                        .await
                    {
                        Ok(id) => {
                            own.push(id);
                            true
                        }
                        Err(e) => panic!("add failed: {e}"),
                    }
                } else {
                    let id = own[(i as usize) % own.len()];
                    match handle.get_record(&group, id).await {
                        Ok(r) if i.is_multiple_of(11) => {
                            handle.delete_record(&group, r.id).await.is_ok()
                        }
                        Ok(mut r) => {
                            r.data = format!("own {w} v{i}").into_bytes();
                            handle.update_record(&group, r).await.is_ok()
                        }
                        Err(_) => false,
                    }
                };
                if ok {
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if i.is_multiple_of(16) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(done.load(std::sync::atomic::Ordering::Relaxed) >= 1000);
    let refs: Vec<&Member> = members.iter().collect();
    eventually(60, "identical digests on all five members", || async {
        let d = digests(&refs, &group).await;
        d.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    let records = members[4].handle.records(&group, None).await.unwrap();
    assert!(
        records.len() > 10,
        "the database holds the writers' records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_is_not_ready_until_its_first_copy() {
    let (creator, group) = group_with_creator(config()).await;
    let id = creator
        .handle
        .add_record(&group, note("before the joiner"))
        .await
        .unwrap();
    let mut joiner = invited(&creator, &group, Role::Member, config(), None).await;
    let status = joiner.handle.status(&group).await.unwrap();
    let ready = status.ready;
    assert!(!ready && !status.listening);
    for err in [
        joiner
            .handle
            .add_record(&group, note("too early"))
            .await
            .unwrap_err(),
        joiner.handle.get_record(&group, id).await.unwrap_err(),
        joiner.handle.records(&group, None).await.unwrap_err(),
    ] {
        assert!(matches!(err.peer(), Some(Error::GroupNotReady)), "{err}");
    }
    let addrs = creator.handle.listen_addrs().await.unwrap();
    joiner
        .handle
        .connect_by_address(&group, addrs)
        .await
        .unwrap();
    let status = joiner.handle.status(&group).await.unwrap();
    let ready = status.ready;
    assert!(ready && status.listening);
    assert_eq!(
        joiner.handle.get_record(&group, id).await.unwrap().data,
        b"before the joiner"
    );
    let ready_events: Vec<_> = drain(
        &mut joiner.events,
        peergroup::node::GroupEventKind::StatusChanged,
    )
    .into_iter()
    .filter(|e| matches!(e, peergroup::node::Event::Group(GroupEvent::StatusChanged { status, .. }) if status.ready))
    .collect();
    assert!(
        !ready_events.is_empty(),
        "StatusChanged announced readiness"
    );
    joiner.handle.add_record(&group, note("now")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_cleanly_when_no_member_is_found() {
    let (creator, group) = group_with_creator(config()).await;
    let mut joiner = invited(
        &creator,
        &group,
        Role::Member,
        config().connect_timeout(Duration::from_millis(800)),
        None,
    )
    .await;
    creator.handle.shutdown().await.unwrap();
    let err = joiner.handle.connect(&group).await.unwrap_err();
    assert!(
        matches!(err.peer(), Some(Error::NoMembersFound(_))),
        "{err}"
    );
    let failed = drain(
        &mut joiner.events,
        peergroup::node::GroupEventKind::ConnectionFailed,
    );
    assert!(matches!(
        failed.as_slice(),
        [peergroup::node::Event::Group(
            GroupEvent::ConnectionFailed {
                reason: Error::NoMembersFound(_),
                ..
            }
        )]
    ));
    // The group is back offline and still not ready.
    assert!(!joiner.handle.status(&group).await.unwrap().ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_typed() {
    let (creator, group) = group_with_creator(config()).await;
    let h = &creator.handle;
    let unknown =
        peergroup::protocol::PeerName::parse(&format!("{}.nope", group.authority())).unwrap();
    let err = h.add_record(&unknown, note("x")).await.unwrap_err();
    assert!(matches!(err.peer(), Some(Error::InvalidGroup(_))), "{err}");
    // Oversized records are refused at the API, never dropped silently.
    let big = note("").with_data(vec![0u8; peergroup::protocol::MAX_RECORD_DATA + 1]);
    let err = h.add_record(&group, big).await.unwrap_err();
    assert!(
        matches!(err.peer(), Some(Error::MaxRecordSizeExceeded { .. })),
        "{err}"
    );
    let missing = peergroup::protocol::RecordId::new(&creator.identity, [9; 8]);
    let err = h.get_record(&group, missing).await.unwrap_err();
    assert!(matches!(err.peer(), Some(Error::RecordNotFound)), "{err}");
    let err = h.delete_record(&group, missing).await.unwrap_err();
    assert!(matches!(err.peer(), Some(Error::RecordNotFound)), "{err}");
    // Changing an immutable member, or shortening the expiration.
    let id = h.add_record(&group, note("x")).await.unwrap();
    let mut r = h.get_record(&group, id).await.unwrap();
    r.record_type = RecordType::from_u128(7 << 64);
    assert!(matches!(
        h.update_record(&group, r).await.unwrap_err().peer(),
        Some(Error::InvalidArg(_))
    ));
    let mut r = h.get_record(&group, id).await.unwrap();
    r.expires_at = now();
    assert!(matches!(
        h.update_record(&group, r).await.unwrap_err().peer(),
        Some(Error::InvalidRecordExpiration(_))
    ));
    // A closed group is InvalidGroup; reopened, it is readable again.
    h.close(&group).await.unwrap();
    assert!(matches!(
        h.get_record(&group, id).await.unwrap_err().peer(),
        Some(Error::InvalidGroup(_))
    ));
    h.open(&group).await.unwrap();
    assert!(h.get_record(&group, id).await.is_ok());
    // After shutdown every call fails with Shutdown, without panicking.
    h.shutdown().await.unwrap();
    assert!(matches!(
        h.get_record(&group, id).await,
        Err(peergroup::node::Error::Shutdown)
    ));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_gossip_never_reaches_a_store() {
    use peergroup::protocol::{Record, SignedRecord, testing::identity};

    let (creator, group) = group_with_creator(config()).await;
    let creator_addrs = creator.handle.listen_addrs().await.unwrap();
    let mallory_id = identity(30, "mallory");
    let victim_id = identity(31, "victim");
    let mallory = invited(
        &creator,
        &group,
        Role::Member,
        config(),
        Some(mallory_id.clone()),
    )
    .await;
    mallory
        .handle
        .connect_by_address(&group, creator_addrs.clone())
        .await
        .unwrap();
    let victim = invited(
        &creator,
        &group,
        Role::Member,
        config(),
        Some(victim_id.clone()),
    )
    .await;
    victim
        .handle
        .connect_by_address(&group, creator_addrs.clone())
        .await
        .unwrap();
    let members = [&creator, &mallory, &victim];

    let target = victim
        .handle
        .add_record(&group, note("victim's"))
        .await
        .unwrap();
    for m in members {
        eventually(20, "the victim's record everywhere", || async {
            m.handle.get_record(&group, target).await.is_ok()
        })
        .await;
    }
    let before = digests(&members, &group).await;

    // Mallory, a member, forges an update of the victim's record with a valid signature.
    let original = victim.handle.get_record(&group, target).await.unwrap();
    let mut proposed = original.clone();
    proposed.data = b"mallory was here".to_vec();
    let forged = original
        .update(&proposed, mallory_id.peer_name(), now())
        .unwrap();
    let forged = SignedRecord::sign(forged, mallory_id.keypair()).unwrap();
    // A record of Mallory's own: valid, so it proves the rogue's messages arrive.
    let own = Record::new(
        note("mallory's own"),
        [5; 8],
        &group,
        mallory_id.peer_name(),
        now(),
    )
    .unwrap();
    let own = SignedRecord::sign(own, mallory_id.keypair()).unwrap();

    // Mallory speaks the wire protocols by hand: it authenticates as the
    // member it is, then publishes under the group key.
    let chain = crate::raw::credential(&creator, &group, &mallory_id, Role::Member, None).await;
    let mut raw = crate::raw::RawPeer::member(&group, &mallory_id, chain).await;
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let mut failures = creator.handle.subscribe(
        peergroup::node::EventFilter::kinds([peergroup::node::EventKind::AuthenticationFailed])
            .with_group(group.clone()),
    );
    raw.authenticate_with(creator_peer, &creator_addrs).await;
    let raw_peer = raw.peer_id();
    // Let the mesh form before publishing.
    raw.run_for(Duration::from_millis(500)).await;
    assert!(raw.publish_sealed(forged.as_bytes()));
    assert!(raw.publish_sealed(own.as_bytes()));
    let own_id = own.record().id;
    {
        let raw = &mut raw;
        let settled = async {
            for m in members {
                eventually(20, "mallory's own record arrives everywhere", || async {
                    m.handle.get_record(&group, own_id).await.is_ok()
                })
                .await;
            }
        };
        tokio::select! {
            () = settled => {}
            () = raw.run_for(Duration::from_secs(60)) => panic!("the raw peer stopped"),
        }
    }
    for m in members {
        let r = m.handle.get_record(&group, target).await.unwrap();
        assert_eq!(
            (r.version, r.data.as_slice()),
            (1, b"victim's".as_slice()),
            "the forgery was merged"
        );
    }
    // Nothing else changed: the digests moved only by Mallory's own record.
    let after = digests(&members, &group).await;
    assert!(after.windows(2).all(|w| w[0] == w[1]));
    assert_ne!(before[0], after[0]);

    // Garbage under the group key, a bit-flipped ciphertext, and a plaintext
    // envelope (members seal everything): each is rejected, none is stored.
    let garbage = raw.seal(b"\xa5not an envelope at all");
    let mut flipped = raw.seal(own.as_bytes());
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let plaintext = own.as_bytes().to_vec();
    for payload in [garbage, flipped, plaintext] {
        assert!(raw.publish_raw(payload));
    }
    let pump = tokio::spawn(async move {
        raw.run_for(Duration::from_secs(60)).await;
        raw
    });
    // Three rejected messages graylist their sender: the creator cuts it off.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, failures.recv())
            .await
            .expect("the creator never cut off the sender of rejected gossip")
            .unwrap()
            .unwrap();
        if let peergroup::node::Event::AuthenticationFailed { peer, reason, .. } = event
            && peer == raw_peer
        {
            assert!(reason.to_string().contains("graylisted"), "{reason}");
            break;
        }
    }
    assert_eq!(digests(&members, &group).await, after);
    pump.abort();
}

/// Discovery through the global cloud: creator and joiner know only a
/// bootstrap node (which is in no group) and find each other through
/// Kademlia provider records; neither dials the other explicitly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_find_each_other_through_kademlia() {
    let (bootstrap, _) = node(config().kademlia(true)).await;
    let seed = bootstrap.listen_addrs().await.unwrap();
    let (creator, group) =
        group_with_creator(config().kademlia(true).bootstrap(seed.clone())).await;
    let id = creator
        .handle
        .add_record(&group, note("found via the DHT"))
        .await
        .unwrap();
    let joiner = invited(
        &creator,
        &group,
        Role::Member,
        config().kademlia(true).bootstrap(seed),
        None,
    )
    .await;
    joiner.handle.connect(&group).await.unwrap();
    assert_eq!(
        joiner.handle.get_record(&group, id).await.unwrap().data,
        b"found via the DHT"
    );
    let status = joiner.handle.status(&group).await.unwrap();
    let ready = status.ready;
    assert!(ready && status.listening);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_filter_and_slow_subscribers_are_told_what_they_missed() {
    use peergroup::node::{Event, EventFilter, GroupEvent, GroupEventKind, RecordChange};
    let (creator, group) = group_with_creator(config()).await;
    let wanted = RecordType::from_u128(0x11 << 64);
    let mut only_wanted = creator
        .handle
        .subscribe(EventFilter::kinds([GroupEventKind::RecordChanged]).with_record_type(wanted));
    let mut slow = creator.handle.subscribe(EventFilter::all());
    let other = creator
        .handle
        .add_record(&group, note("other type"))
        .await
        .unwrap();
    let mine = creator
        .handle
        .add_record(
            &group,
            NewRecord::new(wanted, now().saturating_add_secs(60)),
        )
        .await
        .unwrap();
    match only_wanted.recv().await {
        Some(Ok(Event::Group(GroupEvent::RecordChanged {
            id,
            change: RecordChange::Added,
            record_type,
            ..
        }))) => {
            assert_eq!((id, record_type), (mine, wanted));
        }
        e => panic!("unexpected {e:?}"),
    }
    let _ = other;
    // Flood past the ring's capacity without reading `slow`: the node does not
    // wait for it, and it learns how much it missed.
    for i in 0..(peergroup::node::EVENT_CAPACITY + 100) {
        creator
            .handle
            .add_record(&group, note(&format!("{i}")))
            .await
            .unwrap();
    }
    match slow.recv().await {
        Some(Err(peergroup::node::Missed(n))) => assert!(n >= 100, "missed {n}"),
        e => panic!("expected a Missed report, got {e:?}"),
    }
    assert!(
        matches!(slow.recv().await, Some(Ok(_))),
        "the subscription carries on"
    );
}

/// Bursts of records near the size limit cross gossip intact (gossipsub
/// batches messages into frames checked against `max_transmit_size`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_near_limit_records_propagate() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let bob = join(&creator, &group, Role::Member, config(), addrs).await;
    eventually(10, "mesh", || async {
        creator.handle.status(&group).await.unwrap().has_connections
    })
    .await;
    let big = vec![0x5a; peergroup::protocol::MAX_RECORD_DATA];
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(
            creator
                .handle
                .add_record(&group, note("").with_data(big.clone()))
                .await
                .unwrap(),
        );
    }
    for id in ids {
        eventually(20, "every near-limit record arrives", || async {
            bob.handle.get_record(&group, id).await.is_ok()
        })
        .await;
    }
    let d = digests(&[&creator, &bob], &group).await;
    assert_eq!(d[0], d[1]);
}

/// A DHT node that restarts forgets every provider record it held: the
/// members that announced their group notice the node is back (they redial
/// it) and announce again, so a joiner that knows only that node still
/// finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_records_are_announced_again_after_the_dht_node_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed port, so the restarted DHT node is where the members look.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let at: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let dht = || {
        config()
            .listen([at.clone()])
            .kademlia(true)
            .data_dir(dir.path())
    };
    let (bootstrap, _) = node(dht()).await;
    let seed = bootstrap.listen_addrs().await.unwrap();
    let (creator, group) =
        group_with_creator(config().kademlia(true).bootstrap(seed.clone())).await;
    let id = creator
        .handle
        .add_record(&group, note("announced again"))
        .await
        .unwrap();
    // A second member, so that neither is alone: a lonely member's own
    // lookups would reconnect it to the DHT node and hide the fault.
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let member = join(
        &creator,
        &group,
        Role::Member,
        config().kademlia(true).bootstrap(seed.clone()),
        addrs,
    )
    .await;
    eventually(10, "the member is ready", || async {
        member.handle.status(&group).await.unwrap().ready
    })
    .await;
    let bootstrap_peer = bootstrap.peer_id().await.unwrap();
    // Time for the first announcements to reach the DHT node (and be lost).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bootstrap.shutdown().await.unwrap();
    let (again, _) = node(dht()).await;
    assert_eq!(again.peer_id().await.unwrap(), bootstrap_peer);
    let joiner = invited(
        &creator,
        &group,
        Role::Member,
        config().kademlia(true).bootstrap(seed),
        None,
    )
    .await;
    joiner.handle.connect(&group).await.unwrap();
    assert_eq!(
        joiner.handle.get_record(&group, id).await.unwrap().data,
        b"announced again"
    );
}

//! Secure group sessions against real nodes (issue 9): only authenticated
//! members are neighbours, gossip is sealed, outsiders are cut off and cost
//! nothing, credentials travel with authentication.

use std::time::Duration;

use libp2p::PeerId;
use peergroup::node::{Event, EventFilter, EventKind, Subscription, sync};
use peergroup::protocol::{
    AuthProof, CredentialChain, Identity, NewRecord, PeerName, Record, RecordType, Role,
    SignedRecord, membership_record, open, testing::identity,
};
use serde_bytes::ByteBuf;

use crate::raw::{RawPeer, credential, honest};
use crate::support::{
    Member, config, digests, eventually, group_with_creator, invited, join, note, now,
};

/// Waits for an `AuthenticationFailed` about `peer`; returns its reason.
async fn authentication_failed(events: &mut Subscription, peer: PeerId, secs: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no AuthenticationFailed for {peer} within {secs} s"))
            .unwrap()
            .unwrap();
        if let Event::AuthenticationFailed {
            peer: failed,
            reason,
            ..
        } = event
            && failed == peer
        {
            return reason.to_string();
        }
    }
}

fn failures(member: &Member, group: &PeerName) -> Subscription {
    member
        .handle
        .subscribe(EventFilter::kinds([EventKind::AuthenticationFailed]).with_group(group.clone()))
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Two real members authenticate each other and exchange records; a third,
/// hand-driven member sees every record only as ciphertext on the topic,
/// which opens with the group key it was handed during authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_authenticate_and_gossip_is_sealed() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let mut failed = failures(&creator, &group);
    let bob = join(&creator, &group, Role::Member, config(), addrs.clone()).await;
    let bob_peer = bob.handle.peer_id().await.unwrap();
    let carol = identity(60, "carol");
    let chain = credential(&creator, &group, &carol, Role::Member, None).await;
    let mut raw = RawPeer::member(&group, &carol, chain).await;
    raw.authenticate_with(creator_peer, &addrs).await;

    let marker = b"MARKER-sealed-7f3a";
    let id = creator
        .handle
        .add_record(&group, note(std::str::from_utf8(marker).unwrap()))
        .await
        .unwrap();
    let from_bob = bob.handle.add_record(&group, note("bob's")).await;
    assert!(from_bob.is_ok(), "{from_bob:?}");
    {
        let raw = &mut raw;
        let exchanged = async {
            eventually(20, "the creator's record reaches bob", || async {
                bob.handle.get_record(&group, id).await.is_ok()
            })
            .await;
            let bobs = from_bob.as_ref().unwrap();
            eventually(20, "bob's record reaches the creator", || async {
                creator.handle.get_record(&group, *bobs).await.is_ok()
            })
            .await;
        };
        tokio::select! {
            () = exchanged => {}
            () = raw.run_for(Duration::from_secs(60)) => unreachable!(),
        }
        raw.until(10, "the marker's message", |r| {
            r.seen.gossip.iter().any(|m| {
                open(r.key.as_ref().unwrap(), &r.group, m)
                    .is_ok_and(|plain| contains(&plain, marker))
            })
        })
        .await;
    }
    for message in &raw.seen.gossip {
        assert!(!contains(message, marker), "plaintext on the topic");
    }
    let connections = creator.handle.connections(&group).await.unwrap();
    assert!(connections.contains(&bob_peer) && connections.contains(&raw.peer_id()));
    assert_eq!(
        bob.handle.connections(&group).await.unwrap(),
        vec![creator_peer]
    );
    assert!(
        failed.try_recv().is_none(),
        "no authentication failed between members"
    );
}

/// A node with a valid identity but no credential is refused as a neighbour
/// (event, disconnect), is never handed the group key, receives no record
/// content over gossip, and is refused by the sync protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_without_credential_is_refused_and_learns_nothing() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let bob = join(&creator, &group, Role::Member, config(), addrs.clone()).await;
    eventually(20, "bob is a neighbour", || async {
        !bob.handle.connections(&group).await.unwrap().is_empty()
    })
    .await;
    let mut failed = failures(&creator, &group);
    // Eve claims the creator's (empty) chain for her own identity.
    let eve = identity(61, "eve");
    let mut raw = RawPeer::new(
        &group,
        Some(honest(eve.clone(), CredentialChain::creator())),
        Some(eve),
    )
    .await;
    raw.join_topic(addrs[0].clone());
    let marker = b"MARKER-secret-91c2";
    let writer = {
        let (handle, group) = (bob.handle.clone(), group.clone());
        tokio::spawn(async move {
            for _ in 0..20 {
                let data = std::str::from_utf8(marker).unwrap();
                handle.add_record(&group, note(data)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let reason = {
        let raw = &mut raw;
        tokio::select! {
            reason = authentication_failed(&mut failed, raw.peer_id(), 15) => reason,
            () = raw.run_for(Duration::from_secs(60)) => unreachable!(),
        }
    };
    assert!(reason.contains("not the proving identity's"), "{reason}");
    raw.until(10, "the creator closes the connection", |r| {
        r.seen.closed.contains(&creator_peer)
    })
    .await;
    // Back again, straight to the sync protocol: refused.
    raw.swarm.dial(addrs[0].clone()).unwrap();
    let empty = std::collections::BTreeMap::new();
    let query = peergroup::protocol::reconcile::start(&peergroup::protocol::reconcile::Set::new(
        &empty,
        now(),
    ));
    raw.swarm.behaviour_mut().sync.send_request(
        &creator_peer,
        sync::Request::Reconcile {
            group: group.clone(),
            queries: vec![query],
        },
    );
    raw.until(10, "a sync answer", |r| !r.seen.sync_responses.is_empty())
        .await;
    writer.await.unwrap();
    raw.run_for(Duration::from_millis(500)).await;

    assert!(raw.key.is_none(), "a non-member was handed the group key");
    assert!(raw.seen.accepted_by.is_empty());
    assert!(
        matches!(
            &raw.seen.sync_responses[..],
            [sync::Response::Refused { .. }]
        ),
        "{:?}",
        raw.seen.sync_responses
    );
    for message in &raw.seen.gossip {
        assert!(
            !contains(message, marker),
            "record content reached a non-member"
        );
    }
    // Refusals name the kind of failure, never the group.
    for reason in &raw.seen.refusals {
        assert!(!reason.contains(group.as_str()), "{reason}");
    }
    assert!(
        !creator
            .handle
            .connections(&group)
            .await
            .unwrap()
            .contains(&raw.peer_id())
    );
}

/// A plain gossipsub peer (no group authentication at all) subscribed to the
/// group's topic: it gets nothing but ciphertext at most, and what it injects
/// (garbage, bit-flipped and replayed ciphertext of the group, a message
/// sealed for another group) never reaches a store; it is cut off. So is a
/// peer that publishes to the topic without subscribing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_gossipsub_peer_is_cut_off_and_changes_nothing() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let bob = join(&creator, &group, Role::Member, config(), addrs.clone()).await;
    // A member captures real ciphertext of this group to replay and flip.
    let spy_id = identity(62, "spy");
    let chain = credential(&creator, &group, &spy_id, Role::Member, None).await;
    let mut spy = RawPeer::member(&group, &spy_id, chain).await;
    spy.authenticate_with(creator_peer, &addrs).await;
    let marker = b"MARKER-plain-44d0";
    creator
        .handle
        .add_record(&group, note(std::str::from_utf8(marker).unwrap()))
        .await
        .unwrap();
    spy.until(20, "a sealed message", |r| !r.seen.gossip.is_empty())
        .await;
    let captured = spy.seen.gossip[0].clone();
    // Ciphertext of another group, sealed under that group's key.
    let (other_creator, other_group) = group_with_creator(config()).await;
    let other_addrs = other_creator.handle.listen_addrs().await.unwrap();
    let other_peer = other_creator.handle.peer_id().await.unwrap();
    let other_chain = credential(&other_creator, &other_group, &spy_id, Role::Member, None).await;
    let mut other_spy = RawPeer::member(&other_group, &spy_id, other_chain).await;
    other_spy.authenticate_with(other_peer, &other_addrs).await;
    let cross_group = other_spy.seal(captured.as_slice());
    let members = [&creator, &bob];
    let before = digests(&members, &group).await;

    let mut failed = failures(&creator, &group);
    let mut rogue = RawPeer::new(&group, None, None).await;
    rogue.join_topic(addrs[0].clone());
    rogue
        .until(10, "the creator on the topic", |r| {
            r.swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .any(|(p, topics)| *p == creator_peer && !topics.is_empty())
        })
        .await;
    let mut flipped = captured.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x80;
    for payload in [
        b"\xa5garbage".to_vec(),
        flipped,
        captured.clone(),
        cross_group.clone(),
    ] {
        rogue.publish_raw(payload);
    }
    let reason = {
        let rogue = &mut rogue;
        tokio::select! {
            reason = authentication_failed(&mut failed, rogue.peer_id(), 15) => reason,
            () = rogue.run_for(Duration::from_secs(60)) => unreachable!(),
        }
    };
    assert!(!reason.is_empty());
    rogue
        .until(10, "cut off", |r| r.seen.closed.contains(&creator_peer))
        .await;
    for message in &rogue.seen.gossip {
        assert!(!contains(message, marker), "plaintext reached a plain peer");
    }

    // A peer that publishes without subscribing is cut off at its first message.
    let mut sneak = RawPeer::new(&group, None, None).await;
    sneak.swarm.dial(addrs[0].clone()).unwrap();
    sneak
        .until(10, "the creator on the topic", |r| {
            r.swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .any(|(p, topics)| *p == creator_peer && !topics.is_empty())
        })
        .await;
    sneak.publish_raw(cross_group);
    let reason = {
        let sneak = &mut sneak;
        tokio::select! {
            reason = authentication_failed(&mut failed, sneak.peer_id(), 15) => reason,
            () = sneak.run_for(Duration::from_secs(60)) => unreachable!(),
        }
    };
    assert!(reason.contains("without authenticating"), "{reason}");

    // Nothing reached a store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(digests(&members, &group).await, before);
}

/// An outsider that answers a joiner's copy requests (with a captured
/// pre-delete envelope) cannot make the joiner ready: it fails group
/// authentication and is never asked; the joiner copies from the creator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_cannot_serve_a_joiners_copy() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let kept = creator
        .handle
        .add_record(&group, note("kept"))
        .await
        .unwrap();
    let doomed = creator
        .handle
        .add_record(&group, note("doomed"))
        .await
        .unwrap();
    // A former member copied the database before the delete.
    let spy_id = identity(63, "spy");
    let chain = credential(&creator, &group, &spy_id, Role::Member, None).await;
    let mut spy = RawPeer::member(&group, &spy_id, chain).await;
    spy.authenticate_with(creator_peer, &addrs).await;
    let (properties, records, considered) = spy.fetch(creator_peer, vec![doomed]).await;
    let stale: Vec<ByteBuf> = records
        .into_iter()
        .filter(|e| SignedRecord::from_bytes(e).is_ok_and(|r| r.record().id == doomed))
        .collect();
    assert_eq!(stale.len(), 1);
    creator.handle.delete_record(&group, doomed).await.unwrap();

    // The outsider serves that page to whoever asks, and claims the
    // creator's chain for its own identity.
    let outsider = identity(64, "outsider");
    let mut raw = RawPeer::new(
        &group,
        Some(honest(outsider.clone(), CredentialChain::creator())),
        Some(outsider),
    )
    .await;
    raw.sync_answer = Some(sync::Response::Records {
        properties,
        records: stale,
        considered,
    });
    let outsider_addr = raw.addr();
    let outsider_peer = raw.peer_id();
    let serving = raw.serve();

    let joiner = invited(&creator, &group, Role::Member, config(), None).await;
    let mut failed = failures(&joiner, &group);
    joiner
        .handle
        .connect_by_address(&group, vec![outsider_addr, addrs[0].clone()])
        .await
        .unwrap();
    let reason = authentication_failed(&mut failed, outsider_peer, 10).await;
    assert!(reason.contains("not the proving identity's"), "{reason}");
    assert!(joiner.handle.status(&group).await.unwrap().ready);
    assert!(joiner.handle.get_record(&group, kept).await.is_ok());
    assert!(
        joiner.handle.get_record(&group, doomed).await.is_err(),
        "the deleted record was resurrected"
    );
    eventually(10, "joiner and creator agree", || async {
        let both = digests(&[&creator, &joiner], &group).await;
        both[0] == both[1]
    })
    .await;
    let raw = serving.stop().await;
    assert_eq!(raw.seen.sync_requests, 0, "the joiner asked an outsider");
    assert_eq!(
        joiner.handle.connections(&group).await.unwrap(),
        vec![creator_peer]
    );
}

/// A member presenting another member's credential, with its own identity
/// or with the other's identity info, fails authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_presenting_anothers_credential_fails() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let alice = identity(65, "alice");
    let mallory = identity(66, "mallory");
    let alice_chain = credential(&creator, &group, &alice, Role::Member, None).await;
    let _ = credential(&creator, &group, &mallory, Role::Member, None).await;

    type Forge = fn(&Identity, &Identity, &CredentialChain) -> (Vec<u8>, Vec<u8>);
    let forgeries: [(&str, Forge); 2] = [
        (
            "mallory's identity, alice's chain",
            |_alice, mallory, chain| {
                (
                    mallory.info().unwrap().into_bytes(),
                    chain.to_bytes().unwrap(),
                )
            },
        ),
        ("alice's identity and chain", |alice, _mallory, chain| {
            (
                alice.info().unwrap().into_bytes(),
                chain.to_bytes().unwrap(),
            )
        }),
    ];
    for (what, forge) in forgeries {
        let (info, chain) = forge(&alice, &mallory, &alice_chain);
        let signer = mallory.clone();
        let prover: crate::raw::Prover = Box::new(move |role, transcript| {
            // Mallory signs: she holds no other key.
            let mut proof =
                AuthProof::new(&signer, &CredentialChain::creator(), role, transcript).unwrap();
            proof.identity = ByteBuf::from(info.clone());
            proof.chain = ByteBuf::from(chain.clone());
            proof
        });
        let mut failed = failures(&creator, &group);
        let mut raw = RawPeer::new(&group, Some(prover), Some(mallory.clone())).await;
        raw.join_topic(addrs[0].clone());
        let reason = {
            let raw = &mut raw;
            tokio::select! {
                reason = authentication_failed(&mut failed, raw.peer_id(), 15) => reason,
                () = raw.run_for(Duration::from_secs(60)) => unreachable!(),
            }
        };
        assert!(
            reason.contains("not the proving identity's") || reason.contains("does not verify"),
            "{what}: {reason}"
        );
        raw.run_for(Duration::from_millis(300)).await;
        assert!(raw.key.is_none(), "{what}: handed the group key");
        assert!(raw.seen.accepted_by.is_empty(), "{what}: accepted");
    }
}

/// Records held for a missing membership are bounded per signer and per
/// peer: a member relaying over ten thousand records signed by outsiders
/// (the only way such records get in, now that outsiders cannot publish)
/// neither pushes out another member's record that waits for its membership
/// nor leaves no room for the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_outsider_records_does_not_evict_a_deferred_record() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let props = creator.handle.properties(&group).await.unwrap();

    // Bob's record goes first; his membership comes last.
    let bob = identity(67, "bob");
    let bob_chain = credential(&creator, &group, &bob, Role::Member, None).await;
    let mut bob_raw = RawPeer::member(&group, &bob, bob_chain.clone()).await;
    bob_raw.authenticate_with(creator_peer, &addrs).await;
    bob_raw.run_for(Duration::from_millis(500)).await;
    let bobs = signed_note(&group, &bob, 1, "bob's, deferred");
    assert!(bob_raw.publish_sealed(bobs.as_bytes()));
    bob_raw.run_for(Duration::from_millis(500)).await;

    let mallory = identity(68, "mallory");
    let chain = credential(&creator, &group, &mallory, Role::Member, None).await;
    let mut flooder = RawPeer::member(&group, &mallory, chain).await;
    flooder.authenticate_with(creator_peer, &addrs).await;
    flooder.run_for(Duration::from_millis(500)).await;
    let outsiders: Vec<Identity> = (0..42u8).map(|i| identity(100 + i, "outsider")).collect();
    let mut sent = 0;
    for round in 0..250u32 {
        for outsider in &outsiders {
            let record = signed_note(&group, outsider, round, "flood");
            if flooder.publish_sealed(record.as_bytes()) {
                sent += 1;
            }
        }
        flooder.run_for(Duration::from_millis(5)).await;
    }
    assert!(sent > 10_000, "only {sent} flood records published");
    flooder.run_for(Duration::from_secs(2)).await;
    // A second deferred record after the flood: a shared bound would have
    // no room left for it (or would have evicted the first).
    let bobs_second = signed_note(&group, &bob, 2, "bob's, deferred after the flood");
    assert!(bob_raw.publish_sealed(bobs_second.as_bytes()));
    bob_raw.run_for(Duration::from_millis(500)).await;

    let membership = membership_record(&props, &bob_chain, &bob, None, now()).unwrap();
    assert!(bob_raw.publish_sealed(membership.as_bytes()));
    let released = async {
        for record in [&bobs, &bobs_second] {
            eventually(20, "bob's deferred records stored", || async {
                creator
                    .handle
                    .get_record(&group, record.record().id)
                    .await
                    .is_ok()
            })
            .await;
        }
    };
    tokio::select! {
        () = released => {}
        () = bob_raw.run_for(Duration::from_secs(60)) => unreachable!(),
    }
    // None of the flood was stored.
    let notes = creator
        .handle
        .records(&group, Some(note_type()))
        .await
        .unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
}

/// A credential that expires ends its holder's neighbour status, and its
/// records published afterwards are not accepted, whoever relays them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_credential_stops_acceptance() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let props = creator.handle.properties(&group).await.unwrap();
    let dave = identity(69, "dave");
    let expires = now().saturating_add_secs(6);
    let chain = credential(&creator, &group, &dave, Role::Member, Some(expires)).await;
    let mut failed = failures(&creator, &group);
    let mut dave_raw = RawPeer::member(&group, &dave, chain.clone()).await;
    dave_raw.authenticate_with(creator_peer, &addrs).await;
    dave_raw.run_for(Duration::from_millis(500)).await;
    let membership = membership_record(&props, &chain, &dave, None, now()).unwrap();
    assert!(dave_raw.publish_sealed(membership.as_bytes()));
    // A credential must cover the lifetime of its holder's records (`authorize`).
    let before = signed_note_for(&group, &dave, 1, "before expiry", 5);
    assert!(dave_raw.publish_sealed(before.as_bytes()));
    let accepted = async {
        eventually(10, "dave's record accepted before expiry", || async {
            creator
                .handle
                .get_record(&group, before.record().id)
                .await
                .is_ok()
        })
        .await;
    };
    tokio::select! {
        () = accepted => {}
        () = dave_raw.run_for(Duration::from_secs(60)) => unreachable!(),
    }
    // The credential expires: Dave stops being a neighbour.
    let reason = {
        let dave_raw = &mut dave_raw;
        tokio::select! {
            reason = authentication_failed(&mut failed, dave_raw.peer_id(), 15) => reason,
            () = dave_raw.run_for(Duration::from_secs(60)) => unreachable!(),
        }
    };
    assert!(reason.contains("expired"), "{reason}");
    assert!(
        !creator
            .handle
            .connections(&group)
            .await
            .unwrap()
            .contains(&dave_raw.peer_id())
    );
    // A record Dave signs now, relayed by an honest member: not accepted.
    let erin = identity(70, "erin");
    let erin_chain = credential(&creator, &group, &erin, Role::Member, None).await;
    let mut relay = RawPeer::member(&group, &erin, erin_chain.clone()).await;
    relay.authenticate_with(creator_peer, &addrs).await;
    relay.run_for(Duration::from_millis(500)).await;
    let after = signed_note(&group, &dave, 2, "after expiry");
    assert!(relay.publish_sealed(after.as_bytes()));
    // Erin's own record after it: once it is in, Dave's was judged.
    let erin_membership = membership_record(&props, &erin_chain, &erin, None, now()).unwrap();
    assert!(relay.publish_sealed(erin_membership.as_bytes()));
    let control = signed_note(&group, &erin, 3, "control");
    assert!(relay.publish_sealed(control.as_bytes()));
    let judged = async {
        eventually(10, "the control record", || async {
            creator
                .handle
                .get_record(&group, control.record().id)
                .await
                .is_ok()
        })
        .await;
    };
    tokio::select! {
        () = judged => {}
        () = relay.run_for(Duration::from_secs(60)) => unreachable!(),
    }
    relay.run_for(Duration::from_millis(500)).await;
    assert!(
        creator
            .handle
            .get_record(&group, after.record().id)
            .await
            .is_err(),
        "a record signed after its credential expired was accepted"
    );
}

/// A renewed credential (here a role change to Admin) that an admin stores in
/// the group database while its subject is away is adopted by the subject
/// when it next connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_credential_is_adopted_on_the_next_connection() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let bob = join(&creator, &group, Role::Member, config(), addrs.clone()).await;
    eventually(20, "bob is ready", || async {
        bob.handle.status(&group).await.unwrap().ready
    })
    .await;
    let newcomer = identity(71, "newcomer").public_text().unwrap();
    let refused = bob
        .handle
        .create_invitation(&group, &newcomer, Role::Member, None)
        .await;
    assert!(refused.is_err(), "a member invited");
    bob.handle.close(&group).await.unwrap();
    let bob_text = bob
        .handle
        .identities()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.payload().peer_name == bob.identity)
        .unwrap()
        .to_text(peergroup::protocol::IDENTITY_TEXT_PREFIX);
    creator
        .handle
        .issue_credentials(&group, &bob_text, Role::Admin, None, true)
        .await
        .unwrap();
    bob.handle.open(&group).await.unwrap();
    bob.handle.connect(&group).await.unwrap();
    eventually(20, "bob adopts his admin credential", || async {
        bob.handle
            .create_invitation(&group, &newcomer, Role::Member, None)
            .await
            .is_ok()
    })
    .await;
}

fn note_type() -> RecordType {
    RecordType::from_u128(0x6e6f7465_0000_4000_8000_000000000001)
}

/// A note by `author`, signed by it; `n` makes its id unique per author.
fn signed_note(group: &PeerName, author: &Identity, n: u32, data: &str) -> SignedRecord {
    signed_note_for(group, author, n, data, 600)
}

/// [`signed_note`], expiring in `secs`.
fn signed_note_for(
    group: &PeerName,
    author: &Identity,
    n: u32,
    data: &str,
    secs: u64,
) -> SignedRecord {
    let mut id = [0u8; 8];
    id[..4].copy_from_slice(&n.to_be_bytes());
    let record = Record::new(
        NewRecord::new(note_type(), now().saturating_add_secs(secs))
            .with_data(data.as_bytes().to_vec()),
        id,
        group,
        author.peer_name(),
        now(),
    )
    .unwrap();
    SignedRecord::sign(record, author.keypair()).unwrap()
}

/// A member that hands a joiner a group key of its own (epoch 0, like the
/// real one) is refused: the key is not the one the creator committed to in
/// the properties. The joiner gets the real key from the creator, and what
/// it publishes reaches the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_substitute_the_group_key() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let mallory = identity(72, "mallory");
    let chain = credential(&creator, &group, &mallory, Role::Member, None).await;
    let mut raw = RawPeer::member(&group, &mallory, chain).await;
    raw.hand_key = Some(peergroup::protocol::GroupKey::new(0, [0x66; 32]));
    raw.initiate = false;
    let mallory_addr = raw.addr();
    let mallory_peer = raw.peer_id();
    let serving = raw.serve();

    let joiner = invited(&creator, &group, Role::Member, config(), None).await;
    let mut failed = failures(&joiner, &group);
    joiner
        .handle
        .connect_by_address(&group, vec![mallory_addr, addrs[0].clone()])
        .await
        .unwrap();
    let reason = authentication_failed(&mut failed, mallory_peer, 15).await;
    assert!(reason.contains("did not commit"), "{reason}");
    let id = joiner
        .handle
        .add_record(&group, note("sealed under the real key"))
        .await
        .unwrap();
    eventually(10, "the joiner's record reaches the creator", || async {
        creator.handle.get_record(&group, id).await.is_ok()
    })
    .await;
    serving.stop().await;
}

/// A neighbour in two groups whose credential expires in one stays a
/// neighbour in the other: a failure in one group costs nothing elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_in_one_group_keeps_the_neighbour_in_another() {
    let (creator, kept) = group_with_creator(config()).await;
    let lapsing = creator
        .handle
        .create_group(peergroup::protocol::GroupSpec::new(
            &creator.identity,
            "lapsing",
        ))
        .await
        .unwrap();
    creator.handle.connect(&lapsing).await.unwrap();
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let bob = join(&creator, &kept, Role::Member, config(), addrs.clone()).await;
    let text = bob
        .handle
        .identities()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.payload().peer_name == bob.identity)
        .unwrap()
        .to_text(peergroup::protocol::IDENTITY_TEXT_PREFIX);
    let invitation = creator
        .handle
        .create_invitation(
            &lapsing,
            &text,
            Role::Member,
            Some(now().saturating_add_secs(5)),
        )
        .await
        .unwrap();
    bob.handle.join(&bob.identity, &invitation).await.unwrap();
    bob.handle
        .connect_by_address(&lapsing, addrs)
        .await
        .unwrap();
    let bob_peer = bob.handle.peer_id().await.unwrap();
    let mut failed = failures(&creator, &lapsing);
    let reason = authentication_failed(&mut failed, bob_peer, 20).await;
    assert!(reason.contains("expired"), "{reason}");
    // Past the graylist check (once a second), bob is still the creator's
    // neighbour in the other group, and records still flow there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        creator
            .handle
            .connections(&kept)
            .await
            .unwrap()
            .contains(&bob_peer)
    );
    let id = creator
        .handle
        .add_record(&kept, note("still here"))
        .await
        .unwrap();
    eventually(10, "a record in the other group", || async {
        bob.handle.get_record(&kept, id).await.is_ok()
    })
    .await;
    assert!(
        bob.handle
            .connections(&kept)
            .await
            .unwrap()
            .contains(&creator_peer)
    );
}

/// A member whose credential expired while it was away receives the
/// renewal an admin stored meanwhile when it connects, and is a neighbour
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_member_receives_its_stored_renewal() {
    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let (handle, events) = crate::support::node(config()).await;
    let info = handle.create_identity("bob", "").await.unwrap();
    let bob_name = info.payload().peer_name.clone();
    let text = info.to_text(peergroup::protocol::IDENTITY_TEXT_PREFIX);
    let invitation = creator
        .handle
        .create_invitation(
            &group,
            &text,
            Role::Member,
            Some(now().saturating_add_secs(4)),
        )
        .await
        .unwrap();
    handle.join(&bob_name, &invitation).await.unwrap();
    handle
        .connect_by_address(&group, addrs.clone())
        .await
        .unwrap();
    let bob = Member {
        handle,
        identity: bob_name,
        events,
    };
    bob.handle.close(&group).await.unwrap();
    // The renewal, stored in the group database while bob is away.
    creator
        .handle
        .issue_credentials(&group, &text, Role::Member, None, true)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    bob.handle.open(&group).await.unwrap();
    bob.handle.connect(&group).await.unwrap();
    eventually(15, "bob is a neighbour again", || async {
        bob.handle
            .connections(&group)
            .await
            .unwrap()
            .contains(&creator_peer)
    })
    .await;
    let id = bob
        .handle
        .add_record(&group, note("renewed"))
        .await
        .unwrap();
    eventually(10, "bob's record reaches the creator", || async {
        creator.handle.get_record(&group, id).await.is_ok()
    })
    .await;
}

/// Members that serve bogus synchronization data are cut off, and nothing
/// they served is stored: a forged signature, another group's record, a
/// record nobody asked for. The joiner becomes ready from the creator and
/// agrees with it. (A record its signer may not write is a Reject like
/// these once the signer's membership is known, and takes the same path;
/// before that it is held, within the per-signer and per-peer bounds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_serving_bogus_sync_data_are_cut_off_and_nothing_invalid_is_stored() {
    use peergroup::protocol::{GroupSpec, reconcile::Item};
    use sha2::Digest as _;

    let (creator, group) = group_with_creator(config()).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let kept = creator
        .handle
        .add_record(&group, note("kept"))
        .await
        .unwrap();
    let other = creator
        .handle
        .create_group(GroupSpec::new(&creator.identity, "other"))
        .await
        .unwrap();
    // The group's properties envelope and a real record, as any member
    // can fetch them.
    let spy_id = identity(70, "spy");
    let chain = credential(&creator, &group, &spy_id, Role::Member, None).await;
    let mut spy = RawPeer::member(&group, &spy_id, chain).await;
    spy.authenticate_with(creator_peer, &addrs).await;
    let (properties, records, _) = spy.fetch(creator_peer, vec![kept]).await;
    let real = SignedRecord::from_bytes(&records[0]).unwrap();
    drop(spy);

    let server = |n: u8| identity(71 + n, &format!("bogus{n}"));
    let mut forged = real.as_bytes().to_vec();
    *forged.last_mut().unwrap() ^= 1;
    let foreign = signed_note(&other, &server(1), 1, "another group's")
        .as_bytes()
        .to_vec();
    let unasked = signed_note(&group, &server(3), 9, "not asked for")
        .as_bytes()
        .to_vec();
    // What each server claims in reconciliation, and what it then serves.
    let item = |bytes: &[u8], id, version| Item {
        id,
        version,
        hash: sha2::Sha256::digest(bytes)[..16].try_into().unwrap(),
    };
    let claimed_id = peergroup::protocol::RecordId([0xee; 16]);
    let cases = [
        ("forged", item(&forged, kept, 1), forged.clone()),
        (
            "foreign",
            item(
                &foreign,
                SignedRecord::from_bytes(&foreign).unwrap().record().id,
                1,
            ),
            foreign.clone(),
        ),
        ("unasked", item(&unasked, claimed_id, 1), unasked.clone()),
    ];
    for (n, (what, claimed, served)) in cases.into_iter().enumerate() {
        let me = server(n as u8);
        let chain = credential(&creator, &group, &me, Role::Member, None).await;
        let mut raw = RawPeer::member(&group, &me, chain).await;
        raw.reconcile_items = Some((properties.clone(), vec![claimed]));
        raw.sync_answer = Some(sync::Response::Records {
            properties: properties.clone(),
            records: vec![ByteBuf::from(served.clone())],
            considered: 1,
        });
        raw.initiate = false;
        let (raw_addr, raw_peer) = (raw.addr(), raw.peer_id());
        let serving = raw.serve();
        let joiner = invited(&creator, &group, Role::Member, config(), None).await;
        let mut failed = failures(&joiner, &group);
        joiner
            .handle
            .connect_by_address(&group, vec![raw_addr, addrs[0].clone()])
            .await
            .unwrap();
        let reason = authentication_failed(&mut failed, raw_peer, 20).await;
        assert!(!reason.is_empty(), "{what}");
        eventually(10, "joiner and creator agree", || async {
            let both = digests(&[&creator, &joiner], &group).await;
            both[0] == both[1]
        })
        .await;
        let record = joiner.handle.get_record(&group, kept).await.unwrap();
        assert_eq!(record.data, b"kept", "{what}");
        assert_eq!(record.version, 1, "{what}");
        let stored = joiner.handle.records(&group, None).await.unwrap();
        assert!(
            stored
                .iter()
                .all(|r| r.data != b"not asked for" && r.data != b"another group's"),
            "{what}: a bogus record was stored"
        );
        let raw = serving.stop().await;
        assert!(
            raw.seen.sync_requests > 0,
            "{what}: the server was never asked"
        );
        joiner.handle.shutdown().await.unwrap();
    }
}

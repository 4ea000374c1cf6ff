//! Password join over the network (issue 9): a member checks the password
//! with a PAKE and admits the joiner; a wrong password is refused, stored
//! nowhere and slowed down; an impostor answering the joiner learns nothing
//! to test guesses against.

use std::time::Duration;

use peergroup::node::{ConfigBuilder, Event, EventFilter, EventKind, Subscription};
use peergroup::protocol::{Error, GroupSpec, KdfParams, PasswordSecret, PeerName, Role};

use crate::raw::RawPeer;
use crate::support::{Member, config, eventually, invited, node, note};

const PASSWORD: &str = "correct horse battery";

/// Test nodes use Argon2id's cheapest allowed costs.
fn pw_config() -> ConfigBuilder {
    config().password_kdf(KdfParams::MIN)
}

/// A creator with a password group admitting members by `PASSWORD`, online.
async fn password_group(role: Role) -> (Member, PeerName) {
    password_group_with(pw_config(), role).await
}

/// [`password_group`], the creator configured by `builder`.
async fn password_group_with(builder: ConfigBuilder, role: Role) -> (Member, PeerName) {
    let (handle, events) = node(builder).await;
    let identity = handle
        .create_identity("creator", "")
        .await
        .unwrap()
        .payload()
        .peer_name
        .clone();
    let group = handle
        .create_password_group(GroupSpec::new(&identity, "pw"), PASSWORD, role)
        .await
        .unwrap();
    handle.connect(&group).await.unwrap();
    (
        Member {
            handle,
            identity,
            events,
        },
        group,
    )
}

/// A fresh node with one identity.
async fn joiner() -> Member {
    joiner_with(pw_config()).await
}

/// A fresh node with one identity, configured by `builder`.
async fn joiner_with(builder: ConfigBuilder) -> Member {
    let (handle, events) = node(builder).await;
    let identity = handle
        .create_identity("joiner", "")
        .await
        .unwrap()
        .payload()
        .peer_name
        .clone();
    Member {
        handle,
        identity,
        events,
    }
}

fn failures(member: &Member) -> Subscription {
    member
        .handle
        .subscribe(EventFilter::kinds([EventKind::AuthenticationFailed]))
}

async fn next_failure(events: &mut Subscription, secs: u64) -> (libp2p::PeerId, Error) {
    let event = tokio::time::timeout(Duration::from_secs(secs), events.recv())
        .await
        .expect("no AuthenticationFailed event")
        .unwrap()
        .unwrap();
    match event {
        Event::AuthenticationFailed { peer, reason, .. } => (peer, reason),
        other => panic!("unexpected {other:?}"),
    }
}

/// The right password: a member admits the joiner as the group's password
/// role, it copies the database, and records flow both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_admits_the_joiner() {
    let (creator, group) = password_group(Role::Member).await;
    let before = creator
        .handle
        .add_record(&group, note("before"))
        .await
        .unwrap();
    let invitation = creator
        .handle
        .create_password_invitation(&group)
        .await
        .unwrap();
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let joiner = joiner().await;
    let joined = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, addrs)
        .await
        .unwrap();
    assert_eq!(joined, group);
    assert!(joiner.handle.status(&group).await.unwrap().ready);
    assert!(joiner.handle.get_record(&group, before).await.is_ok());
    let members = joiner.handle.members(&group).await.unwrap();
    let me = members
        .iter()
        .find(|m| m.subject == joiner.identity)
        .expect("the joiner is a member");
    assert_eq!(me.role, Role::Member);
    let from_joiner = joiner
        .handle
        .add_record(&group, note("joiner's"))
        .await
        .unwrap();
    eventually(10, "the joiner's record reaches the creator", || async {
        creator.handle.get_record(&group, from_joiner).await.is_ok()
    })
    .await;
}

/// A wrong password: the join fails with `NotAuthorized`, the joiner stores
/// nothing, both sides raise `AuthenticationFailed`; trying again at once is
/// refused (slowed down) without the password being checked; after the wait
/// the right password gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_counted_and_slowed_down() {
    let (creator, group) = password_group(Role::Member).await;
    let invitation = creator
        .handle
        .create_password_invitation(&group)
        .await
        .unwrap();
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    let joiner = joiner().await;
    let joiner_peer = joiner.handle.peer_id().await.unwrap();
    let mut on_creator = failures(&creator);
    let mut on_joiner = failures(&joiner);

    let wrong = joiner
        .handle
        .password_join(
            &joiner.identity,
            &invitation,
            "correct horse battery!",
            addrs.clone(),
        )
        .await;
    let err = wrong.unwrap_err();
    assert!(matches!(err.peer(), Some(Error::NotAuthorized(_))), "{err}");
    assert!(
        joiner.handle.groups().await.unwrap().is_empty(),
        "something was stored"
    );
    assert!(joiner.handle.status(&group).await.is_err());
    let (peer, _) = next_failure(&mut on_joiner, 5).await;
    assert_eq!(peer, creator_peer);

    // Again at once: slowed down, not checked.
    let again = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, addrs.clone())
        .await
        .unwrap_err();
    assert!(
        again.to_string().contains("too many password attempts"),
        "{again}"
    );
    assert!(joiner.handle.groups().await.unwrap().is_empty());

    // The creator counted the guess once the joiner, which stopped at the
    // creator's confirmation, let its exchange lapse.
    let (peer, reason) = next_failure(&mut on_creator, 20).await;
    assert_eq!(peer, joiner_peer);
    assert!(matches!(reason, Error::NotAuthorized(_)), "{reason}");

    // After the wait (5 s after one attempt; over now), the right password
    // gets in.
    let joined = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, addrs)
        .await
        .unwrap();
    assert_eq!(joined, group);
    assert!(joiner.handle.status(&group).await.unwrap().ready);
}

/// Issue 16: a member's backoff and open checks run on the monotonic clock.
/// A wrong guess makes the guesser wait 5 s; the member's wall clock (and
/// with it its peer time) then steps 10 minutes ahead, as when it adopts a
/// neighbour's time: the guesser is still refused at once (before, the step
/// ended the wait, and timed out the check as another failed guess). Once
/// 5 s pass on the member's clock, the right password gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_of_the_members_clock_does_not_shorten_a_guessers_wait() {
    use std::sync::Arc;

    use peergroup::node::{Clock, ManualClock};

    let clock = ManualClock::new(crate::support::now());
    let builder = pw_config().clock(Arc::new(clock.clone()));
    let (creator, group) = password_group_with(builder, Role::Member).await;
    let invitation = creator
        .handle
        .create_password_invitation(&group)
        .await
        .unwrap();
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let joiner = joiner().await;
    let wrong = joiner
        .handle
        .password_join(
            &joiner.identity,
            &invitation,
            "not the password",
            addrs.clone(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(wrong.peer(), Some(Error::NotAuthorized(_))),
        "{wrong}"
    );

    clock.set(clock.now().saturating_add_secs(600));
    let again = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, addrs.clone())
        .await
        .unwrap_err();
    assert!(
        again.to_string().contains("too many password attempts"),
        "the step ended the wait: {again}"
    );

    clock.advance(5_000);
    let joined = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, addrs)
        .await
        .unwrap();
    assert_eq!(joined, group);
}

/// An admin invited with a credential receives the password's secret when
/// it authenticates with the creator, and admits password joiners while the
/// creator is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_admits_password_joiners_without_the_creator() {
    let (creator, group) = password_group(Role::Member).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let invitation = creator
        .handle
        .create_password_invitation(&group)
        .await
        .unwrap();
    let admin = invited(&creator, &group, Role::Admin, pw_config(), None).await;
    admin
        .handle
        .connect_by_address(&group, addrs)
        .await
        .unwrap();
    let admin_peer = admin.handle.peer_id().await.unwrap();
    let creator_peer = creator.handle.peer_id().await.unwrap();
    eventually(10, "creator and admin authenticated each other", || async {
        creator
            .handle
            .connections(&group)
            .await
            .unwrap()
            .contains(&admin_peer)
            && admin
                .handle
                .connections(&group)
                .await
                .unwrap()
                .contains(&creator_peer)
    })
    .await;
    creator.handle.shutdown().await.unwrap();

    let joiner = joiner().await;
    let admin_addrs = admin.handle.listen_addrs().await.unwrap();
    let joined = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, admin_addrs)
        .await
        .unwrap();
    assert_eq!(joined, group);
    assert_eq!(
        joiner.handle.connections(&group).await.unwrap(),
        vec![admin_peer]
    );
}

/// An impostor that answers the joiner's password exchange (with a
/// challenge from its own guess) gets the joiner's SPAKE2 message only:
/// it cannot prove that it may admit anyone, so the joiner never confirms
/// to it (which would tell it whether its guess was right), and is admitted
/// by the real member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_responder_gets_nothing_to_test_guesses_against() {
    let (creator, group) = password_group(Role::Member).await;
    let addrs = creator.handle.listen_addrs().await.unwrap();
    let invitation = creator
        .handle
        .create_password_invitation(&group)
        .await
        .unwrap();
    let properties = peergroup::protocol::InvitationInfo::parse(&invitation)
        .unwrap()
        .properties;
    let policy = properties.properties().password.clone().unwrap();
    let mut impostor = RawPeer::new(&group, None, None).await;
    impostor.password_guess = Some(PasswordSecret::derive("tr0ub4dor&3", &policy).unwrap());
    let topic = impostor.topic();
    impostor
        .swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .unwrap();
    let impostor_addr = impostor.addr();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let pump = tokio::spawn(async move {
        tokio::select! {
            _ = &mut stopped => {}
            () = impostor.run_for(Duration::from_secs(60)) => {}
        }
        impostor
    });

    // Only the impostor at hand: it cannot prove it may admit anyone, so
    // the joiner does not even check its challenge, sends it nothing more,
    // and the join ends at the (short) connect timeout, storing nothing.
    let joiner = joiner_with(pw_config().connect_timeout(Duration::from_secs(3))).await;
    let fooled = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, vec![impostor_addr])
        .await
        .unwrap_err();
    assert!(fooled.peer().is_some(), "{fooled}");
    assert!(joiner.handle.groups().await.unwrap().is_empty());
    // With the creator at hand too, the real member admits it.
    let joined = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, addrs)
        .await
        .unwrap();
    assert_eq!(joined, group);
    stop.send(()).unwrap();
    let impostor = pump.await.unwrap();
    assert!(
        impostor.seen.password_starts >= 1,
        "the impostor was never asked"
    );
    assert_eq!(
        impostor.seen.password_confirms, 0,
        "the joiner confirmed to an impostor"
    );
}

/// The creator keeps the password's secret across a restart (it is in the
/// group's stored state) and still admits password joiners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_creator_still_admits_password_joiners() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, _) = node(pw_config().data_dir(dir.path())).await;
    let identity = handle
        .create_identity("creator", "")
        .await
        .unwrap()
        .payload()
        .peer_name
        .clone();
    let group = handle
        .create_password_group(GroupSpec::new(&identity, "pw"), PASSWORD, Role::Member)
        .await
        .unwrap();
    let invitation = handle.create_password_invitation(&group).await.unwrap();
    handle.shutdown().await.unwrap();

    let (again, _) = node(pw_config().data_dir(dir.path())).await;
    again.open(&group).await.unwrap();
    again.connect(&group).await.unwrap();
    let addrs = again.listen_addrs().await.unwrap();
    let joiner = joiner().await;
    let joined = joiner
        .handle
        .password_join(&joiner.identity, &invitation, PASSWORD, addrs)
        .await
        .unwrap();
    assert_eq!(joined, group);
}

//! The per-group session at the unit level: inputs in, outputs out, no I/O.

use peergroup_protocol::{
    CredentialChain, Error, GroupSpec, Identity, Kind, NewRecord, RecordId, RecordType, Role,
    SignedProperties, SignedRecord, WIRE_VERSION, issue_credential, membership_record,
    session::{
        Acceptance, ConnectionChange, Event, Fetched, GroupState, Input, MemberChange, Origin,
        Output, Reason, RecordChange, Session, SessionConfig, Stored, SyncRequest,
    },
    testing::{NOTE, T0, add, forge_envelope, identity, update},
};

type Sess = Session<u32, u64>;

struct Fixture {
    creator: Identity,
    props: SignedProperties,
}

impl Fixture {
    fn new() -> Fixture {
        let creator = identity(1, "creator");
        let props = GroupSpec::new(creator.peer_name(), "unit")
            .create(&creator, T0, |_| false)
            .unwrap();
        Fixture { creator, props }
    }

    fn group(&self) -> &peergroup_protocol::PeerName {
        &self.props.properties().group_peer_name
    }

    fn chain(&self, who: &Identity, role: Role) -> CredentialChain {
        issue_credential(
            &self.creator,
            &CredentialChain::creator(),
            self.props.properties(),
            who.info().unwrap().payload(),
            role,
            T0,
            T0.saturating_add_secs(365 * 86_400),
        )
        .unwrap()
    }

    /// The creator's new session, open and offline, with its initial
    /// outputs drained.
    fn creator_offline(&self) -> Sess {
        let mut s = Sess::create(
            self.props.clone(),
            self.creator.clone(),
            peergroup_protocol::GroupKey::new(0, [0x4b; 32]),
            SessionConfig::default(),
        )
        .unwrap();
        drain(&mut s);
        s
    }

    /// The creator's session, online, with its initial outputs drained.
    fn creator_online(&self) -> Sess {
        let mut s = self.creator_offline();
        s.connect(T0).unwrap();
        drain(&mut s);
        s
    }

    /// `who`'s session of a group it just joined as a member (not ready).
    fn joined(&self, who: &Identity) -> Sess {
        Sess::join(
            self.props.clone(),
            who.clone(),
            self.chain(who, Role::Member),
            SessionConfig::default(),
        )
        .unwrap()
    }

    /// `who`'s session of the group, as a ready member, restored (closed).
    fn restored_member(&self, who: &Identity) -> Sess {
        Sess::restore(
            GroupState {
                properties: self.props.clone(),
                member: who.peer_name().clone(),
                chain: self.chain(who, Role::Member),
                ready: true,
                keys: Vec::new(),
                password: None,
            },
            who.clone(),
            SessionConfig::default(),
            Stored::default(),
        )
        .unwrap()
    }

    fn membership(&self, who: &Identity, role: Role) -> SignedRecord {
        membership_record(
            self.props.properties(),
            &self.chain(who, role),
            who,
            None,
            T0,
        )
        .unwrap()
    }
}

/// A neighbour serving synchronizations from a set of records: the
/// creator's ready session over them answers reconciliation; fetches read
/// the records.
struct Server {
    session: Sess,
    records: std::collections::BTreeMap<RecordId, SignedRecord>,
}

impl Server {
    fn new(f: &Fixture, records: &[SignedRecord]) -> Server {
        use sha2::Digest as _;
        let versions = records
            .iter()
            .map(|r| {
                (
                    r.record().id,
                    peergroup_protocol::session::Version {
                        version: r.record().version,
                        hash: sha2::Sha256::digest(r.as_bytes()).into(),
                        expires_at: r.record().expires_at,
                    },
                )
            })
            .collect();
        let session = Sess::restore(
            GroupState {
                properties: f.props.clone(),
                member: f.creator.peer_name().clone(),
                chain: CredentialChain::creator(),
                ready: true,
                keys: Vec::new(),
                password: None,
            },
            f.creator.clone(),
            SessionConfig::default(),
            Stored {
                versions,
                memberships: Vec::new(),
            },
        )
        .unwrap();
        let mut session = session;
        session.open();
        Server {
            session,
            records: records.iter().map(|r| (r.record().id, r.clone())).collect(),
        }
    }

    /// The answer to `request` from neighbour `peer`, as the session's input;
    /// a fetch gets at most `fit` records.
    fn answer(&self, peer: u32, tag: u64, request: &SyncRequest, fit: usize) -> Input<u32, u64> {
        match request {
            SyncRequest::Reconcile(queries) => Input::Reconciled {
                peer,
                tag,
                properties: None,
                answers: self.session.answer_reconcile(queries, T0).unwrap(),
            },
            SyncRequest::Fetch { ids, .. } => {
                let considered = ids.len().min(fit);
                Input::Fetched(Fetched {
                    peer,
                    tag,
                    properties: None,
                    records: ids[..considered]
                        .iter()
                        .filter_map(|id| self.records.get(id).cloned().map(Ok))
                        .collect(),
                    considered,
                })
            }
        }
    }
}

/// The synchronization requests `s` sent to `peer` in `out`.
fn requests(out: &[Output<u32, u64>], peer: u32) -> Vec<SyncRequest> {
    tagged(out, peer).into_iter().map(|(_, r)| r).collect()
}

/// The same, with their tags.
fn tagged(out: &[Output<u32, u64>], peer: u32) -> Vec<(u64, SyncRequest)> {
    out.iter()
        .filter_map(|o| match o {
            Output::SyncRequest {
                peer: p,
                tag,
                request,
            } if *p == peer => Some((*tag, request.clone())),
            _ => None,
        })
        .collect()
}

/// Lets `server` answer `s`'s requests to `peer` until `s` asks nothing
/// more (fetches answered with at most `fit` records each, and no more than
/// `fetches` of them); returns every output.
fn serve(
    s: &mut Sess,
    peer: u32,
    server: &Server,
    fit: usize,
    mut fetches: usize,
    first: Vec<Output<u32, u64>>,
) -> Vec<Output<u32, u64>> {
    let mut all = first;
    // Answered last first: several fetches may be in flight, and their
    // answers may arrive in any order.
    let mut pending = tagged(&all, peer);
    while let Some((tag, request)) = pending.pop() {
        if matches!(request, SyncRequest::Fetch { .. }) {
            if fetches == 0 {
                break;
            }
            fetches -= 1;
        }
        s.handle(server.answer(peer, tag, &request, fit), T0);
        let out = drain(s);
        pending.extend(tagged(&out, peer));
        all.extend(out);
    }
    all
}

fn drain(s: &mut Sess) -> Vec<Output<u32, u64>> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn gossip(record: Result<SignedRecord, Error>, source: u32, message: u64) -> Input<u32, u64> {
    Input::Record {
        record,
        origin: Origin::Gossip { source, message },
    }
}

fn verdicts(outputs: &[Output<u32, u64>]) -> Vec<(u64, Reason)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Verdict {
                message, reason, ..
            } => Some((*message, reason.clone())),
            _ => None,
        })
        .collect()
}

fn merged(outputs: &[Output<u32, u64>]) -> Vec<SignedRecord> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Merge(batch) => Some(batch.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn persisted(outputs: &[Output<u32, u64>]) -> Vec<GroupState> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Persist(state) => Some((**state).clone()),
            _ => None,
        })
        .collect()
}

/// Regression (issue 8, bug 5): held gossip messages are keyed by message,
/// not by record id. Two versions of one record wait for two different
/// memberships; when one membership arrives, only the message carrying the
/// version it validates is accepted; the other stays held and unreported.
#[test]
fn held_messages_are_released_by_message_not_by_record_id() {
    let f = Fixture::new();
    let mut s = f.creator_online();
    let member = identity(2, "member");
    let admin = identity(3, "admin");
    let v1 = add(&member, f.group(), 1, b"v1", T0, 3600);
    let v2 = update(&admin, &v1, b"v2", T0.saturating_add_secs(1));
    s.handle(gossip(Ok(v1.clone()), 9, 101), T0);
    s.handle(gossip(Ok(v2.clone()), 9, 102), T0);
    let out = drain(&mut s);
    assert!(verdicts(&out).is_empty(), "both are held: {out:?}");
    assert_eq!(s.held(), 2);

    // The member's membership arrives: v1 is valid now, v2 (by an unknown admin) is not.
    s.handle(gossip(Ok(f.membership(&member, Role::Member)), 9, 103), T0);
    let out = drain(&mut s);
    assert_eq!(
        verdicts(&out),
        vec![(101, Reason::Released), (103, Reason::Valid)]
    );
    assert!(merged(&out).contains(&v1));
    assert!(!merged(&out).contains(&v2), "v2 was forwarded unchecked");

    s.handle(gossip(Ok(f.membership(&admin, Role::Admin)), 9, 104), T0);
    let out = drain(&mut s);
    assert_eq!(
        verdicts(&out),
        vec![(102, Reason::Released), (104, Reason::Valid)]
    );
    assert_eq!(s.held(), 0);
}

/// Regression (issue 8, bug 1): properties received by gossip or in a copy
/// page are persisted.
#[test]
fn received_properties_are_persisted() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    s.connect(T0).unwrap();
    drain(&mut s);
    let mut newer = f.props.properties().clone();
    newer.friendly_name = "renamed".into();
    newer.revision += 1;
    let signed = peergroup_protocol::Signed::sign(newer, f.creator.keypair()).unwrap();
    s.handle(
        Input::Properties {
            properties: Ok(signed.clone()),
            origin: Origin::Gossip {
                source: 1,
                message: 7,
            },
        },
        T0,
    );
    let out = drain(&mut s);
    let states = persisted(&out);
    assert_eq!(states.len(), 1, "{out:?}");
    assert_eq!(states[0].properties, signed);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Emit(Event::PropertiesChanged { .. })))
    );
    assert_eq!(verdicts(&out), vec![(7, Reason::Valid)]);

    // In a synchronization too: every reconciliation answer carries the
    // neighbour's properties.
    let mut newest = signed.properties().clone();
    newest.friendly_name = "renamed again".into();
    newest.revision += 1;
    let newest = peergroup_protocol::Signed::sign(newest, f.creator.keypair()).unwrap();
    s.handle(Input::NeighborUp(1), T0);
    let (tag, _) = tagged(&drain(&mut s), 1)[0].clone();
    s.handle(
        Input::Reconciled {
            peer: 1,
            tag,
            properties: Some(Ok(newest.clone())),
            answers: vec![peergroup_protocol::reconcile::Answer::Equal],
        },
        T0,
    );
    let out = drain(&mut s);
    assert!(
        persisted(&out).iter().any(|p| p.properties == newest),
        "{out:?}"
    );
}

/// Regression (issue 8, bug 2): a member is the creator only by name; a
/// missing credential never makes a joined member the creator.
#[test]
fn a_member_without_a_credential_is_refused_not_made_creator() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let state = GroupState {
        properties: f.props.clone(),
        member: member.peer_name().clone(),
        chain: CredentialChain::creator(),
        ready: true,
        keys: Vec::new(),
        password: None,
    };
    assert!(!state.is_creator());
    assert!(matches!(state.check(), Err(Error::InvalidCredential(_))));
    let restored = Sess::restore(state, member, SessionConfig::default(), Stored::default());
    assert!(matches!(restored, Err(Error::InvalidCredential(_))));
    // Someone else's chain is refused too.
    let other = identity(3, "other");
    let state = GroupState {
        properties: f.props.clone(),
        member: identity(2, "member").peer_name().clone(),
        chain: f.chain(&other, Role::Member),
        ready: true,
        keys: Vec::new(),
        password: None,
    };
    assert!(matches!(state.check(), Err(Error::InvalidCredential(_))));
}

/// Regression (issue 8, bug 4): readiness comes only from a completed
/// synchronization, and is persisted only then.
#[test]
fn an_interrupted_synchronization_leaves_the_group_not_ready() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    assert!(persisted(&drain(&mut s)).iter().all(|p| !p.ready));
    s.connect(T0).unwrap();
    let records: Vec<_> = (0..6)
        .map(|n| add(&f.creator, f.group(), n, b"x", T0, 3600))
        .collect();
    let server = Server::new(&f, &records);
    // The first neighbour: reconciliation, then one fetch of which only 3
    // records fit, then it vanishes.
    s.handle(Input::NeighborUp(1), T0);
    let first = drain(&mut s);
    assert!(matches!(
        requests(&first, 1).as_slice(),
        [SyncRequest::Reconcile(_)]
    ));
    let out = serve(&mut s, 1, &server, 3, 1, first);
    s.handle(Input::NeighborDown(1), T0);
    let out = [out, drain(&mut s)].concat();
    let stored = merged(&out);
    assert_eq!(stored.len(), 3, "the records are stored meanwhile");
    assert!(persisted(&out).iter().all(|p| !p.ready), "{out:?}");
    assert!(!s.status().unwrap().ready);
    assert!(matches!(
        s.add_record(NewRecord::new(NOTE, T0.saturating_add_secs(60)), [1; 8], T0),
        Err(Error::GroupNotReady)
    ));

    // Another neighbour completes it: only what is missing is fetched. The
    // group is ready only once the store has everything the synchronizations
    // brought (the earlier batch is still being merged).
    s.handle(Input::NeighborUp(2), T0);
    let first = drain(&mut s);
    let out = serve(&mut s, 2, &server, usize::MAX, usize::MAX, first);
    let fetched: usize = requests(&out, 2)
        .iter()
        .map(|r| match r {
            SyncRequest::Fetch { ids, .. } => ids.len(),
            SyncRequest::Reconcile(_) => 0,
        })
        .sum();
    assert_eq!(fetched, 3, "{out:?}");
    assert!(persisted(&out).iter().all(|p| !p.ready), "{out:?}");
    assert!(!s.status().unwrap().ready);
    let more = merged(&out);
    for batch in [stored, more] {
        let changes = batch
            .into_iter()
            .map(|r| (r, peergroup_protocol::Change::Added))
            .collect();
        s.handle(Input::Merged(changes), T0);
    }
    let out = drain(&mut s);
    assert!(persisted(&out).iter().any(|p| p.ready), "{out:?}");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::ConnectOutcome(Ok(()))))
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Emit(Event::StatusChanged { status, .. }) if status.ready && status.listening
    )));
    // The member publishes its membership once it is synchronized.
    let published = merged(&out);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].record().record_type, RecordType::MEMBERSHIP);
}

/// Regression (issue 8, bug 6): a wire version this build does not speak is
/// "cannot judge yet" (Ignore), not the sender's fault (Reject).
#[test]
fn an_unsupported_wire_version_is_ignored_not_rejected() {
    let f = Fixture::new();
    let mut s = f.creator_online();
    let r = add(&f.creator, f.group(), 1, b"x", T0, 60);
    let newer = forge_envelope(
        WIRE_VERSION + 1,
        Kind::Record.to_byte(),
        r.signer_key().as_bytes(),
        b"\xa0",
        r.signature().as_bytes(),
    );
    s.handle(gossip(SignedRecord::from_bytes(&newer), 4, 1), T0);
    s.handle(gossip(SignedRecord::from_bytes(b"\x01garbage"), 4, 2), T0);
    let v = verdicts(&drain(&mut s));
    assert_eq!(v.len(), 2);
    assert!(matches!(v[0], (1, Reason::UnsupportedVersion(_))));
    assert_eq!(v[0].1.acceptance(), Acceptance::Ignore);
    assert!(matches!(v[1], (2, Reason::Invalid(_))));
    assert_eq!(v[1].1.acceptance(), Acceptance::Reject);
}

/// One validation function: the same bad record gets the same reason from
/// gossip, from a sync page and as a local write.
#[test]
fn gossip_sync_and_local_writes_share_one_validation() {
    let f = Fixture::new();
    let stranger = identity(9, "stranger");
    let other = Fixture {
        creator: identity(5, "elsewhere"),
        props: GroupSpec::new(identity(5, "elsewhere").peer_name(), "other")
            .create(&identity(5, "elsewhere"), T0, |_| false)
            .unwrap(),
    };
    let foreign = add(&other.creator, other.group(), 1, b"x", T0, 60);
    let expired = add(&f.creator, f.group(), 2, b"x", T0, 1);
    let later = T0.saturating_add_secs(5);
    let mut s = f.creator_online();
    s.handle(Input::NeighborUp(3), T0);
    drain(&mut s);
    for (record, expected) in [
        (foreign.clone(), Reason::WrongGroup(other.group().clone())),
        (expired.clone(), Reason::Expired),
    ] {
        s.handle(gossip(Ok(record.clone()), 3, 11), later);
        assert_eq!(verdicts(&drain(&mut s)), vec![(11, expected.clone())]);
        // From a sync peer: the same reason, reported as misbehaviour when it is a fault.
        s.handle(
            Input::Record {
                record: Ok(record),
                origin: Origin::Sync { peer: 3 },
            },
            later,
        );
        let out = drain(&mut s);
        let misbehaved: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::PeerMisbehaved { peer: 3, reason } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        if expected.is_fault() {
            assert_eq!(misbehaved, vec![expected]);
        } else {
            assert!(misbehaved.is_empty());
        }
        assert!(merged(&out).is_empty());
    }
    // A stranger's record is held (deferred), from any remote origin.
    s.handle(
        gossip(Ok(add(&stranger, f.group(), 3, b"x", T0, 600)), 3, 12),
        T0,
    );
    assert!(verdicts(&drain(&mut s)).is_empty());
    assert_eq!(s.held(), 1);
    // The local API refuses what validation refuses.
    let mut past = f.creator_online();
    let err = past
        .add_record(NewRecord::new(NOTE, T0), [1; 8], T0.saturating_add_secs(1))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRecordExpiration(_)), "{err}");
}

#[test]
fn local_writes_merge_and_publish_when_online() {
    let f = Fixture::new();
    let mut s = f.creator_offline();
    let new = || NewRecord::new(NOTE, T0.saturating_add_secs(60)).with_data(b"d".to_vec());
    // Open but offline: stored, not published.
    let id = s.add_record(new(), [1; 8], T0).unwrap();
    let out = drain(&mut s);
    assert_eq!(merged(&out).len(), 1);
    assert!(!out.iter().any(|o| matches!(o, Output::Publish(_))));
    assert_eq!(s.version(&id).unwrap().version, 1);
    assert!(matches!(
        s.add_record(new(), [1; 8], T0),
        Err(Error::AlreadyExists(_))
    ));
    s.connect(T0).unwrap();
    let out = drain(&mut s);
    assert!(out.iter().any(|o| matches!(o, Output::Subscribe)));
    assert!(out.iter().any(|o| matches!(o, Output::StartProviding)));
    assert!(matches!(out.last(), Some(Output::ConnectOutcome(Ok(())))));
    let current = merged(&out);
    assert!(current.is_empty());
    s.add_record(new(), [2; 8], T0).unwrap();
    let out = drain(&mut s);
    let stored = merged(&out);
    let published: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Publish(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(published, vec![stored[0].as_bytes().to_vec()]);
    // Update and delete take the current record; without one: RecordNotFound.
    let mut proposed = stored[0].record().clone();
    proposed.data = b"e".to_vec();
    assert!(matches!(
        s.update_record(&proposed, None, T0),
        Err(Error::RecordNotFound)
    ));
    s.update_record(&proposed, Some(stored[0].clone()), T0)
        .unwrap();
    let v2 = merged(&drain(&mut s)).remove(0);
    assert_eq!(v2.record().version, 2);
    s.delete_record(Some(v2.clone()), T0).unwrap();
    let gone = merged(&drain(&mut s)).remove(0);
    assert!(gone.record().is_deleted());
    assert!(matches!(
        s.delete_record(Some(gone), T0),
        Err(Error::RecordNotFound)
    ));
}

#[test]
fn a_joined_member_publishes_its_membership_before_its_first_record() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.restored_member(&member);
    s.open();
    s.add_record(NewRecord::new(NOTE, T0.saturating_add_secs(60)), [1; 8], T0)
        .unwrap();
    let batch = merged(&drain(&mut s));
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0].record().record_type, RecordType::MEMBERSHIP);
    assert_eq!(batch[1].record().record_type, NOTE);
    s.add_record(NewRecord::new(NOTE, T0.saturating_add_secs(60)), [2; 8], T0)
        .unwrap();
    assert_eq!(merged(&drain(&mut s)).len(), 1, "published once");
}

#[test]
fn connect_times_out_with_the_windows_errors() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let join = || {
        let mut s = f.joined(&member);
        drain(&mut s);
        s.connect(T0).unwrap();
        s
    };
    // Nobody found.
    let mut s = join();
    let out = drain(&mut s);
    assert!(out.iter().any(|o| matches!(o, Output::FindMembers)));
    let find = SessionConfig::default().find_interval;
    assert_eq!(
        s.poll_timeout(),
        Some(T0.saturating_add(find)),
        "the next lookup"
    );
    s.handle(Input::Timeout, T0.saturating_add_secs(2));
    assert!(
        drain(&mut s)
            .iter()
            .any(|o| matches!(o, Output::FindMembers))
    );
    let deadline = T0.saturating_add(SessionConfig::default().connect_timeout);
    s.handle(Input::Timeout, deadline);
    let out = drain(&mut s);
    assert!(out.iter().any(|o| matches!(o, Output::Unsubscribe)));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Emit(Event::ConnectionFailed {
            reason: Error::NoMembersFound(_),
            ..
        })
    )));
    assert!(matches!(
        out.last(),
        Some(Output::ConnectOutcome(Err(Error::NoMembersFound(_))))
    ));
    assert!(!s.is_online());
    assert_eq!(s.poll_timeout(), None);
    // A member found that never completes the copy.
    let mut s = join();
    s.handle(Input::NeighborUp(5), T0);
    let (tag, _) = tagged(&drain(&mut s), 5)[0].clone();
    s.handle(
        Input::SyncFailed {
            peer: 5,
            tag,
            reason: "refused".into(),
            timed_out: false,
        },
        T0,
    );
    s.handle(Input::Timeout, deadline);
    let out = drain(&mut s);
    assert!(matches!(
        out.last(),
        Some(Output::ConnectOutcome(Err(Error::NoMemberConnections(_))))
    ));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Emit(Event::NeighborConnection {
            peer: 5,
            change: ConnectionChange::Disconnected,
            ..
        })
    )));
}

#[test]
fn closing_reports_held_messages_and_a_pending_connect() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    s.connect(T0).unwrap();
    s.handle(
        gossip(Ok(add(&identity(7, "x"), f.group(), 1, b"", T0, 60)), 1, 77),
        T0,
    );
    drain(&mut s);
    s.close().unwrap();
    let out = drain(&mut s);
    assert_eq!(verdicts(&out), vec![(77, Reason::Offline)]);
    assert!(matches!(
        out.iter().find(|o| matches!(o, Output::ConnectOutcome(_))),
        Some(Output::ConnectOutcome(Err(Error::InvalidGroup(_))))
    ));
    assert!(matches!(s.status(), Err(Error::InvalidGroup(_))));
    // Offline messages are ignored without a hold.
    s.open();
    s.handle(
        gossip(Ok(add(&f.creator, f.group(), 2, b"", T0, 60)), 1, 78),
        T0,
    );
    assert_eq!(verdicts(&drain(&mut s)), vec![(78, Reason::Offline)]);
}

#[test]
fn stored_changes_become_events() {
    let f = Fixture::new();
    let mut s = f.creator_online();
    let member = identity(2, "member");
    let m = f.membership(&member, Role::Member);
    let r = add(&f.creator, f.group(), 1, b"x", T0, 60);
    let r2 = update(&f.creator, &r, b"y", T0);
    use peergroup_protocol::Change;
    s.handle(
        Input::Merged(vec![
            (m.clone(), Change::Added),
            (r.clone(), Change::Added),
            (r2.clone(), Change::Updated),
            (
                r.clone(),
                Change::Stale {
                    held: peergroup_protocol::Version::of(&r2),
                },
            ),
        ]),
        T0,
    );
    let events: Vec<_> = drain(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            Output::Emit(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![
            Event::MemberChanged {
                group: f.group().clone(),
                member: member.peer_name().clone(),
                change: MemberChange::Joined
            },
            Event::RecordChanged {
                group: f.group().clone(),
                change: RecordChange::Added,
                id: r.record().id,
                record_type: NOTE
            },
            Event::RecordChanged {
                group: f.group().clone(),
                change: RecordChange::Updated,
                id: r.record().id,
                record_type: NOTE
            },
        ]
    );
}

/// `PeerGroupIssueCredentials` with the store flag: the subject adopts the
/// newer credential from the group database and persists it.
#[test]
fn a_stored_credential_is_adopted_and_persisted() {
    let f = Fixture::new();
    let mut admin_side = f.creator_online();
    let member = identity(2, "member");
    let mut s = f.restored_member(&member);
    s.open();
    s.connect(T0).unwrap();
    drain(&mut s);
    let later = T0.saturating_add_secs(10);
    let text = member.public_text().unwrap();
    admin_side
        .issue_credentials(&text, Role::Admin, None, true, |_| Ok(None), later)
        .unwrap();
    let record = merged(&drain(&mut admin_side)).remove(0);
    s.handle(gossip(Ok(record), 1, 5), later);
    let out = drain(&mut s);
    let states = persisted(&out);
    assert_eq!(states.len(), 1);
    let m = states[0].chain.verify(f.props.properties()).unwrap();
    assert_eq!(m.role, Role::Admin);
    assert_eq!(s.state().chain, states[0].chain);
}

/// A neighbour whose answers no honest member gives (a split that does not
/// shrink its range) is reported, and a first synchronization moves on to
/// another neighbour.
#[test]
fn a_dishonest_reconciliation_is_misbehaviour() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    s.connect(T0).unwrap();
    s.handle(Input::NeighborUp(1), T0);
    s.handle(Input::NeighborUp(2), T0);
    let out = drain(&mut s);
    let Some((tag, SyncRequest::Reconcile(queries))) = tagged(&out, 1).pop() else {
        panic!("no reconciliation with the first neighbour: {out:?}");
    };
    let stuck = peergroup_protocol::reconcile::Answer::Split(vec![(
        queries[0].range,
        peergroup_protocol::reconcile::Summary {
            fingerprint: [7; 16],
            count: 1000,
        },
    )]);
    s.handle(
        Input::Reconciled {
            peer: 1,
            tag,
            properties: None,
            answers: vec![stuck],
        },
        T0,
    );
    s.handle(Input::Timeout, T0);
    let out = drain(&mut s);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::PeerMisbehaved { peer: 1, .. }))
    );
    assert!(
        !requests(&out, 2).is_empty(),
        "the synchronization moves to another neighbour: {out:?}"
    );
}

/// Slow links: a fetch that times out is asked again with half the bytes,
/// from the same neighbour; after repeated failures the synchronization
/// moves to another neighbour, and what came meanwhile stays.
#[test]
fn a_timed_out_fetch_is_retried_smaller_then_elsewhere() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    s.connect(T0).unwrap();
    let records: Vec<_> = (0..4)
        .map(|n| add(&f.creator, f.group(), n, b"x", T0, 3600))
        .collect();
    let server = Server::new(&f, &records);
    s.handle(Input::NeighborUp(1), T0);
    s.handle(Input::NeighborUp(2), T0);
    let out = drain(&mut s);
    let (tag, reconcile) = tagged(&out, 1).pop().unwrap();
    s.handle(server.answer(1, tag, &reconcile, usize::MAX), T0);
    let mut asked = Vec::new();
    for _ in 0..peergroup_protocol::session::MAX_FAILURES {
        let out = drain(&mut s);
        let tag = match tagged(&out, 1).pop() {
            Some((tag, SyncRequest::Fetch { max_bytes, .. })) => {
                asked.push(max_bytes);
                tag
            }
            other => panic!("expected a fetch from neighbour 1, got {other:?}"),
        };
        s.handle(
            Input::SyncFailed {
                peer: 1,
                tag,
                reason: "timeout".into(),
                timed_out: true,
            },
            T0,
        );
    }
    let full = peergroup_protocol::session::FETCH_BYTES;
    assert_eq!(asked, vec![full, full / 2, full / 4, full / 8]);
    // The run with 1 ended; the synchronization moves to neighbour 2.
    s.handle(Input::Timeout, T0);
    let out = drain(&mut s);
    assert!(requests(&out, 1).is_empty(), "{out:?}");
    assert!(
        matches!(requests(&out, 2).as_slice(), [SyncRequest::Reconcile(_)]),
        "{out:?}"
    );
}

/// Peer time stepped (a joiner adopted the group's clock): the session's
/// deadlines move with it, so a connect keeps its full wait.
#[test]
fn a_clock_step_moves_the_deadlines_with_it() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    drain(&mut s);
    s.connect(T0).unwrap();
    drain(&mut s);
    let step: i64 = 10 * 60 * 1000;
    let find = SessionConfig::default().find_interval;
    s.shift_clock(step);
    assert_eq!(
        s.poll_timeout(),
        Some(
            T0.saturating_add(find)
                .saturating_add_millis(10 * 60 * 1000)
        )
    );
    // Ten minutes later in the new time, the connect is still waiting.
    let later = T0
        .saturating_add_millis(10 * 60 * 1000)
        .saturating_add_secs(2);
    s.handle(Input::Timeout, later);
    let out = drain(&mut s);
    assert!(out.iter().any(|o| matches!(o, Output::FindMembers)));
    assert!(
        !out.iter().any(|o| matches!(o, Output::ConnectOutcome(_))),
        "{out:?}"
    );
    assert!(s.is_online());
}

/// A joiner synchronizing a group of `2 * FETCH_IDS + 1` records from
/// neighbour 1, answered up to its first fetches: the session, the server
/// and those fetches.
fn pipelined_fetches() -> (Sess, Server, usize, Vec<(u64, SyncRequest)>) {
    use peergroup_protocol::session::{FETCH_IDS, FETCH_PIPELINE};
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    s.connect(T0).unwrap();
    let total = (FETCH_PIPELINE - 1) * FETCH_IDS + 1;
    let records: Vec<_> = (0..total)
        .map(|n| add(&f.creator, f.group(), n as u64, b"x", T0, 3600))
        .collect();
    let server = Server::new(&f, &records);
    s.handle(Input::NeighborUp(1), T0);
    let mut out = drain(&mut s);
    // Reconciliation, one request at a time, until the fetches start.
    loop {
        let asked = tagged(&out, 1);
        assert_eq!(asked.len(), 1, "{asked:?}");
        let (tag, request) = asked[0].clone();
        s.handle(server.answer(1, tag, &request, usize::MAX), T0);
        out = drain(&mut s);
        let fetches: Vec<_> = tagged(&out, 1)
            .into_iter()
            .filter(|(_, r)| matches!(r, SyncRequest::Fetch { .. }))
            .collect();
        if !fetches.is_empty() {
            return (s, server, total, fetches);
        }
    }
}

/// A large synchronization keeps several fetches in flight (one answer is
/// verified and merged while the next is read and sent), and their answers
/// may arrive in any order: everything is fetched once and merged.
#[test]
fn fetches_are_pipelined_and_answered_in_any_order() {
    let (mut s, server, total, fetches) = pipelined_fetches();
    assert_eq!(
        fetches.len(),
        peergroup_protocol::session::FETCH_PIPELINE,
        "fetches in flight at once"
    );
    let mut all = Vec::new();
    for (tag, request) in fetches.into_iter().rev() {
        s.handle(server.answer(1, tag, &request, usize::MAX), T0);
        all.extend(drain(&mut s));
    }
    assert!(tagged(&all, 1).is_empty(), "nothing asked twice: {all:?}");
    let mut stored: Vec<_> = merged(&all).iter().map(|r| r.record().id).collect();
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), total);
}

/// Fetches sent together over a slow link time out together: that counts
/// as one failure, halves the bytes once, and the run goes on one fetch at
/// a time (instead of ending after a burst of timeouts).
#[test]
fn pipelined_fetches_that_time_out_together_count_once() {
    let (mut s, _server, _, fetches) = pipelined_fetches();
    let mut out = Vec::new();
    for (tag, _) in fetches {
        s.handle(
            Input::SyncFailed {
                peer: 1,
                tag,
                reason: "timeout".into(),
                timed_out: true,
            },
            T0,
        );
        out.extend(drain(&mut s));
    }
    let asked: Vec<u32> = requests(&out, 1)
        .into_iter()
        .map(|r| match r {
            SyncRequest::Fetch { max_bytes, .. } => max_bytes,
            other => panic!("{other:?}"),
        })
        .collect();
    // One fetch, of half the bytes, once the last of the three failed.
    let half = peergroup_protocol::session::FETCH_BYTES / 2;
    assert_eq!(asked, vec![half], "{out:?}");
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::PeerMisbehaved { .. })),
        "{out:?}"
    );
}

/// One bad envelope in a fetched batch (its signature failed the host's
/// check) is rejected alone: the good ones around it are merged, and the
/// neighbour that served it is reported.
#[test]
fn one_bad_envelope_in_a_fetched_batch_is_rejected_alone() {
    let f = Fixture::new();
    let member = identity(2, "member");
    let mut s = f.joined(&member);
    s.connect(T0).unwrap();
    let records: Vec<_> = (0..3)
        .map(|n| add(&f.creator, f.group(), n, b"x", T0, 3600))
        .collect();
    let server = Server::new(&f, &records);
    s.handle(Input::NeighborUp(1), T0);
    let mut out = drain(&mut s);
    let (tag, fetch) = loop {
        let (tag, request) = tagged(&out, 1).pop().expect("a request");
        if matches!(request, SyncRequest::Fetch { .. }) {
            break (tag, request);
        }
        s.handle(server.answer(1, tag, &request, usize::MAX), T0);
        out = drain(&mut s);
    };
    let Input::Fetched(mut fetched) = server.answer(1, tag, &fetch, usize::MAX) else {
        panic!("not a fetch answer");
    };
    assert_eq!(fetched.records.len(), 3);
    let bad = fetched.records[1].as_ref().unwrap().record().id;
    fetched.records[1] = Err(Error::Verify(peergroup_protocol::VerifyError::BadSignature));
    s.handle(Input::Fetched(fetched), T0);
    let out = drain(&mut s);
    let stored: Vec<_> = merged(&out).iter().map(|r| r.record().id).collect();
    assert_eq!(stored.len(), 2, "{out:?}");
    assert!(!stored.contains(&bad));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::PeerMisbehaved { peer: 1, .. })),
        "{out:?}"
    );
}

/// The statuses reported by `StatusChanged`, in order.
fn statuses(outputs: &[Output<u32, u64>]) -> Vec<peergroup_protocol::session::Status> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Emit(Event::StatusChanged { status, .. }) => Some(*status),
            _ => None,
        })
        .collect()
}

/// `PEER_GROUP_EVENT_STATUS_CHANGED` fires when the group starts and stops
/// listening, even when nothing else changes: a creator's group is ready
/// from the start, so going online changes `listening` alone.
#[test]
fn going_online_and_offline_reports_the_status_change() {
    let f = Fixture::new();
    let mut s = f.creator_offline();
    s.connect(T0).unwrap();
    let online = statuses(&drain(&mut s));
    assert_eq!(online.len(), 1, "{online:?}");
    assert!(online[0].listening && online[0].ready && !online[0].has_connections);
    s.close().unwrap();
    let offline = statuses(&drain(&mut s));
    assert_eq!(offline.len(), 1, "{offline:?}");
    assert!(!offline[0].listening);
    // Nothing changed: nothing reported.
    s.open();
    assert!(statuses(&drain(&mut s)).is_empty());
}

/// A second connection to a neighbour (the first may be dead without a
/// reset) starts the reconciliation over, as a first connection does; a
/// peer that is no neighbour gets nothing.
#[test]
fn a_reconnected_neighbour_is_reconciled_with_again() {
    let f = Fixture::new();
    let mut s = f.creator_online();
    s.handle(Input::NeighborUp(1), T0);
    let first = drain(&mut s);
    assert_eq!(requests(&first, 1).len(), 1, "a reconciliation starts");
    s.handle(Input::Reconnected(1), T0.saturating_add_secs(5));
    let again = drain(&mut s);
    assert_eq!(requests(&again, 1).len(), 1, "it starts again: {again:?}");
    assert!(
        again.iter().any(|o| matches!(
            o,
            Output::SyncEnded {
                peer: 1,
                completed: false,
                ..
            }
        )),
        "the run over the old connection is abandoned: {again:?}"
    );
    s.handle(Input::Reconnected(2), T0.saturating_add_secs(5));
    assert!(requests(&drain(&mut s), 2).is_empty());
}

/// Issue 15: one identity edits the same version of a record on two
/// devices, first on one whose clock runs 50 s fast (stamped t + 50 s),
/// then, 10 s later, on one with a correct clock (stamped t + 10 s); an
/// admin whose clock runs 50 s slow edits it too (stamped in the past).
/// On a replica on the group's time, in every arrival order and from
/// gossip or synchronization alike: the fast copy is refused while it lies
/// more than `FUTURE_TOLERANCE` ahead (ignored, never the sender's fault),
/// so in that window every replica holds the same merge of the others;
/// offered again once peer time has caught up, it is judged like any other
/// copy, and every order still ends with one digest.
#[test]
fn records_stamped_in_the_future_wait_for_peer_time_in_every_arrival_order() {
    use peergroup_protocol::{MemoryStore, ReadStore, Store, session::FUTURE_TOLERANCE};

    let f = Fixture::new();
    let admin = identity(3, "slow-admin");
    let replica_of = identity(4, "replica");
    let base = add(&f.creator, f.group(), 1, b"base", T0, 3600);
    let t = T0.saturating_add_secs(100);
    // (record, real time it was made)
    let fast = update(&f.creator, &base, b"fast device", t.saturating_add_secs(50));
    let correct = update(
        &f.creator,
        &base,
        b"correct device",
        t.saturating_add_secs(10),
    );
    let slow = update(&admin, &base, b"slow admin", t.saturating_offset(-20_000));
    let made = [
        (fast.clone(), t),
        (correct.clone(), t.saturating_add_secs(10)),
        (slow.clone(), t.saturating_add_secs(30)),
    ];
    let membership = f.membership(&admin, Role::Admin);
    let expected_window = {
        let mut store = MemoryStore::new();
        store
            .merge(vec![
                membership.clone(),
                base.clone(),
                correct.clone(),
                slow.clone(),
            ])
            .unwrap();
        store.digest(f.group()).unwrap()
    };
    let expected_end = {
        let mut store = MemoryStore::new();
        store
            .merge(vec![
                membership.clone(),
                base.clone(),
                correct.clone(),
                slow.clone(),
                fast.clone(),
            ])
            .unwrap();
        store.digest(f.group()).unwrap()
    };
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for from_sync in [false, true] {
        for order in orders {
            let mut s = f.restored_member(&replica_of);
            s.open();
            s.connect(T0).unwrap();
            s.handle(Input::NeighborUp(7), T0);
            let mut store = MemoryStore::new();
            let mut outputs = drain(&mut s);
            let origin = |n: u64| {
                if from_sync {
                    Origin::Sync { peer: 7 }
                } else {
                    Origin::Gossip {
                        source: 7,
                        message: n,
                    }
                }
            };
            for (n, record) in [membership.clone(), base.clone()].into_iter().enumerate() {
                s.handle(
                    Input::Record {
                        record: Ok(record),
                        origin: origin(n as u64),
                    },
                    T0,
                );
            }
            outputs.extend(drain(&mut s));
            // Each arrives after it was made, one second after the one before.
            let mut now = t;
            for i in order {
                let (record, at) = &made[i];
                now = now.max(*at).saturating_add_secs(1);
                s.handle(
                    Input::Record {
                        record: Ok(record.clone()),
                        origin: origin(100 + i as u64),
                    },
                    now,
                );
                let out = drain(&mut s);
                if i == 0 {
                    assert!(merged(&out).is_empty(), "{order:?}: the fast copy merged");
                    if !from_sync {
                        assert!(
                            matches!(
                                verdicts(&out).as_slice(),
                                [(100, Reason::FromTheFuture { ahead_ms })]
                                    if *ahead_ms > FUTURE_TOLERANCE.as_millis() as u64
                            ),
                            "{order:?}: {:?}",
                            verdicts(&out)
                        );
                    }
                    assert!(
                        !out.iter()
                            .any(|o| matches!(o, Output::PeerMisbehaved { .. })),
                        "{order:?}: a clock off is nobody's fault"
                    );
                }
                outputs.extend(out);
            }
            assert!(now < t.saturating_add_secs(40), "still inside the window");
            for batch in merged(&outputs).chunks(1) {
                store.merge(batch.to_vec()).unwrap();
            }
            assert_eq!(
                store.digest(f.group()).unwrap(),
                expected_window,
                "{order:?} (sync {from_sync}): the window"
            );
            // Synchronization offers the fast copy again once peer time is
            // within the tolerance of its stamp.
            let later = t.saturating_add_secs(50 - FUTURE_TOLERANCE.as_secs());
            s.handle(
                Input::Record {
                    record: Ok(fast.clone()),
                    origin: Origin::Sync { peer: 7 },
                },
                later,
            );
            store.merge(merged(&drain(&mut s))).unwrap();
            assert_eq!(
                store.digest(f.group()).unwrap(),
                expected_end,
                "{order:?} (sync {from_sync}): the end"
            );
        }
    }
}

/// Two edits of one version meet (an update on one side of a partition, a
/// delete on the other): whatever order the edits arrive in, again and
/// again, and whenever the store's answers come back, the version index ends
/// naming the copy the store holds. Before, an index naming the loser made a
/// member holding the loser look equal to it in reconciliation, and the two
/// never converged (seen in the compose partition scenario); a first fix
/// that restored the displaced entry still named the loser when the winner
/// came again while the loser's answer was pending.
#[test]
fn the_version_index_names_what_the_store_holds_after_concurrent_edits() {
    use peergroup_protocol::{Change, MemoryStore, ReadStore, Store, Version, testing::delete};

    let f = Fixture::new();
    let base = add(&f.creator, f.group(), 1, b"x", T0, 600);
    let id = base.record().id;
    let winner = update(&f.creator, &base, b"updated", T0.saturating_add_secs(2));
    let loser = delete(&f.creator, &base, T0.saturating_add_secs(1));
    assert!(loser < winner, "same version, the delete is earlier");
    let now = T0.saturating_add_secs(3);

    // Every order of each edit arriving twice, with the answers pending so
    // far delivered after arrival `i` when bit `i` of the mask is set.
    let mut orders: Vec<[&SignedRecord; 4]> = Vec::new();
    for bits in 0u8..16 {
        if bits.count_ones() == 2 {
            let pick = |i: u8| {
                if bits & (1 << i) != 0 {
                    &winner
                } else {
                    &loser
                }
            };
            orders.push([pick(0), pick(1), pick(2), pick(3)]);
        }
    }
    for order in &orders {
        for mask in 0u8..16 {
            let mut s = f.creator_online();
            s.handle(Input::NeighborUp(3), T0);
            drain(&mut s);
            let mut store = MemoryStore::new();
            let mut pending: Vec<Vec<SignedRecord>> = Vec::new();
            let deliver =
                |s: &mut Sess, store: &mut MemoryStore, pending: &mut Vec<Vec<SignedRecord>>| {
                    for batch in pending.drain(..) {
                        let changes: Vec<Change> = store
                            .merge(batch.clone())
                            .unwrap()
                            .into_iter()
                            .map(|m| m.change)
                            .collect();
                        s.handle(Input::Merged(batch.into_iter().zip(changes).collect()), now);
                        drain(s);
                    }
                };
            let arrivals = std::iter::once(&base).chain(order.iter().copied());
            for (i, record) in arrivals.enumerate() {
                s.handle(
                    Input::Record {
                        record: Ok(record.clone()),
                        origin: Origin::Sync { peer: 3 },
                    },
                    now,
                );
                let batch = merged(&drain(&mut s));
                if !batch.is_empty() {
                    pending.push(batch);
                }
                if i == 0 || mask & (1 << (i - 1)) != 0 {
                    deliver(&mut s, &mut store, &mut pending);
                }
                // At every step the index names the copy the store holds, or
                // a newer version on its way there: never another edit of
                // the stored version, which reconciliation would announce.
                let stored = store.get(f.group(), &id).unwrap().map(|r| Version::of(&r));
                let named = s.version(&id);
                assert!(
                    named == stored || named.zip(stored).is_none_or(|(n, s)| n.version > s.version),
                    "arrival {i} of {:?}, answers after {mask:04b}: names {named:?}, store holds {stored:?}",
                    order.map(|r| if r == &winner { "winner" } else { "loser" })
                );
            }
            deliver(&mut s, &mut store, &mut pending);
            let held = store.get(f.group(), &id).unwrap().unwrap();
            assert_eq!(held, winner);
            assert_eq!(
                s.version(&id),
                Some(Version::of(&held)),
                "arrivals {:?}, answers after {mask:04b}",
                order.map(|r| if r == &winner { "winner" } else { "loser" })
            );
        }
    }
}

//! The one validation function: every record and properties envelope, from
//! gossip, from a synchronization page or from a local write, is judged
//! here, and only the origin decides what happens with the verdict.

/// How many records one peer may have waiting for memberships in one group.
pub const MAX_HELD_PER_PEER: usize = 1024;

/// How far in the future of this member's peer time a record may be stamped
/// (its creation or last modification time) and still be accepted: 10 s.
///
/// Records are stamped in peer time, which members agree on to within
/// milliseconds on a LAN (the samples' round trips, `crate::peer_time`). A
/// stamp further ahead comes from a clock that is not on the group's time
/// (a device whose clock runs fast and that stamped while away from the
/// group). Such a record is not accepted while it is that far ahead
/// ([`Reason::FromTheFuture`]: ignored, never the sender's fault), because
/// the merge order would rank it above every real edit of the same version
/// by the same identity made before its stamp. Synchronization offers it
/// again, and it is judged again then. Membership records are exempt: a
/// joiner writes its own before it has adopted the group's time.
pub const FUTURE_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(10);

use crate::{
    authorize::{AuthorizeError, Verdict},
    error::{DecodeError, Error},
    group::SignedProperties,
    peer_name::PeerName,
    record::SignedRecord,
    session::{
        Acceptance, Event, Origin, Output, Session, Version,
        io::{Fetched, Input},
    },
    store::envelope_hash,
    time::Timestamp,
};

/// Why an envelope got its verdict. [`Reason::acceptance`] maps each reason
/// to gossip's Accept / Ignore / Reject with one exhaustive match: Reject only
/// where the fault is provably the sender's (style rule 11).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Valid: stored and forwarded.
    Valid,
    /// Valid once a membership arrived that it waited for (deferred validation).
    Released,
    /// The group is not online on this node.
    Offline,
    /// The record had expired when it arrived.
    Expired,
    /// Stamped more than [`FUTURE_TOLERANCE`] ahead of this member's peer
    /// time: not accepted yet (a clock off the group's time); judged again
    /// when synchronization offers it.
    FromTheFuture {
        /// How far ahead of peer time it is stamped, ms.
        ahead_ms: u64,
    },
    /// An older version than the one this node holds.
    Stale,
    /// The version this node holds already.
    Duplicate,
    /// Properties with a revision this node has already.
    StaleProperties,
    /// A wire or record format this build does not speak (a newer peer):
    /// this node cannot judge it, which is not the sender's fault.
    UnsupportedVersion(Error),
    /// Would wait for a membership, but the hold is full (globally, for its
    /// signer, or for the peer that sent it): not held, not the sender's
    /// provable fault; sync offers it again.
    HoldFull,
    /// Sealed under a group key this node does not hold (yet).
    UnknownKey,
    /// Malformed, forged, or structurally invalid.
    Invalid(Error),
    /// It belongs to another group than the topic's or the page's.
    WrongGroup(PeerName),
    /// Its signer is a member that may not write it, or it breaks the
    /// membership rules.
    Unauthorized(AuthorizeError),
}

impl Reason {
    /// The gossip verdict for this reason.
    pub fn acceptance(&self) -> Acceptance {
        match self {
            Reason::Valid | Reason::Released => Acceptance::Accept,
            Reason::Offline
            | Reason::Expired
            | Reason::FromTheFuture { .. }
            | Reason::Stale
            | Reason::Duplicate
            | Reason::StaleProperties
            | Reason::UnsupportedVersion(_)
            | Reason::HoldFull
            | Reason::UnknownKey => Acceptance::Ignore,
            Reason::Invalid(_) | Reason::WrongGroup(_) | Reason::Unauthorized(_) => {
                Acceptance::Reject
            }
        }
    }

    /// Whether the sender is at fault (the reason is a Reject).
    pub fn is_fault(&self) -> bool {
        self.acceptance() == Acceptance::Reject
    }

    /// A short, stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Reason::Valid => "valid",
            Reason::Released => "released",
            Reason::Offline => "offline",
            Reason::Expired => "expired",
            Reason::FromTheFuture { .. } => "from-the-future",
            Reason::Stale => "stale",
            Reason::Duplicate => "duplicate",
            Reason::StaleProperties => "stale-properties",
            Reason::UnsupportedVersion(_) => "unsupported-version",
            Reason::HoldFull => "hold-full",
            Reason::UnknownKey => "unknown-key",
            Reason::Invalid(_) => "invalid",
            Reason::WrongGroup(_) => "wrong-group",
            Reason::Unauthorized(_) => "unauthorized",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::UnsupportedVersion(e) | Reason::Invalid(e) => write!(f, "{}: {e}", self.name()),
            Reason::WrongGroup(g) => write!(f, "belongs to group {g}"),
            Reason::FromTheFuture { ahead_ms } => write!(
                f,
                "stamped {ahead_ms} ms ahead of peer time (at most {} ms)",
                FUTURE_TOLERANCE.as_millis()
            ),
            Reason::Unauthorized(e) => write!(f, "{e}"),
            _ => f.write_str(self.name()),
        }
    }
}

/// Why a decode or verification failed, as a verdict reason: a format this
/// build does not know is "cannot judge"; anything else is the sender's fault.
fn undecodable(error: Error) -> Reason {
    if let Error::Decode(DecodeError::UnknownKey { .. }) = error {
        return Reason::UnknownKey;
    }
    let newer = match &error {
        Error::Decode(DecodeError::UnsupportedVersion { .. }) | Error::UnsupportedVersion(_) => {
            true
        }
        Error::Decode(
            DecodeError::TooLarge { .. }
            | DecodeError::UnknownKey { .. }
            | DecodeError::Malformed { .. }
            | DecodeError::NonCanonical { .. }
            | DecodeError::WrongKind { .. }
            | DecodeError::Text { .. },
        )
        | Error::InvalidArg(_)
        | Error::InvalidPeerName(_)
        | Error::InvalidClassifier(_)
        | Error::InvalidFriendlyName(_)
        | Error::InvalidGroupProperties(_)
        | Error::InvalidRecord(_)
        | Error::InvalidAttributes(_)
        | Error::InvalidSearch(_)
        | Error::TooManyAttributes { .. }
        | Error::InvalidRecordExpiration(_)
        | Error::MaxRecordSizeExceeded { .. }
        | Error::AlreadyExists(_)
        | Error::NotFound(_)
        | Error::RecordNotFound
        | Error::NotAuthorized(_)
        | Error::DeferredValidation(_)
        | Error::GroupNotReady
        | Error::InvalidGroup(_)
        | Error::InvitationNotTrusted(_)
        | Error::InvalidTimePeriod(_)
        | Error::ChainTooLong { .. }
        | Error::InvalidCredential(_)
        | Error::PasswordDoesNotMeetPolicy(_)
        | Error::CircularChainDetected
        | Error::GroupInUse(_)
        | Error::GroupsExist(_)
        | Error::NoMembersFound(_)
        | Error::NoMemberConnections(_)
        | Error::UnableToListen(_)
        | Error::ConnectionFailed(_)
        | Error::Verify(_) => false,
    };
    if newer {
        Reason::UnsupportedVersion(error)
    } else {
        Reason::Invalid(error)
    }
}

/// The outcome of [`Session::judge`].
#[derive(Debug)]
pub(crate) enum Judged {
    /// Valid now: queued for the store.
    Accepted,
    /// Valid once a missing membership arrives; held by the authorizer.
    Held,
    /// Not stored.
    Refused(Reason),
}

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// Judges one record envelope (the one validation function). Accepted
    /// records, and held ones it releases, are queued for the next
    /// [`Output::Merge`]; the verdicts of gossip messages waiting for released
    /// or dropped records are reported here.
    pub(crate) fn judge(
        &mut self,
        record: Result<SignedRecord, Error>,
        origin: &Origin<P, M>,
        now: Timestamp,
    ) -> Judged {
        let record = match record {
            Ok(record) => record,
            Err(error) => return Judged::Refused(undecodable(error)),
        };
        let r = record.record();
        if &r.group != self.name() {
            return Judged::Refused(Reason::WrongGroup(r.group.clone()));
        }
        if r.is_expired(now) {
            // Every replica drops expired records; storing one would only
            // announce its expiry at the next pass.
            return Judged::Refused(Reason::Expired);
        }
        if r.record_type != crate::record::RecordType::MEMBERSHIP {
            let stamped = r.modified_at.max(r.created_at);
            let limit = now.saturating_add(FUTURE_TOLERANCE);
            if stamped > limit {
                return Judged::Refused(Reason::FromTheFuture {
                    ahead_ms: stamped.as_millis().saturating_sub(now.as_millis()),
                });
            }
        }
        let hash = envelope_hash(record.as_bytes());
        if let Some(known) = self.versions.get(&r.id) {
            if r.version < known.version {
                return Judged::Refused(Reason::Stale);
            }
            if r.version == known.version && known.hash == hash {
                return Judged::Refused(Reason::Duplicate);
            }
        }
        // A peer may have only so many records waiting for memberships:
        // past its share, its records are not held (checked only then, as it
        // costs an authorization).
        let source = origin.peer().map(|p| self.holder(p));
        if let Some(holder) = &source
            && !self.held_sources.contains_key(&hash)
            && self.held_by_peer.get(holder).copied().unwrap_or(0) >= MAX_HELD_PER_PEER
            && self.authorizer.check(&record).is_err_and(|e| !e.is_final())
        {
            return Judged::Refused(Reason::HoldFull);
        }
        let mut own = Judged::Refused(Reason::Invalid(Error::InvalidRecord(
            "the authorizer gave no verdict".into(),
        )));
        for (i, verdict) in self
            .authorizer
            .handle_at(record, now)
            .into_iter()
            .enumerate()
        {
            match verdict {
                Verdict::Accepted(accepted) => {
                    if i == 0 {
                        own = Judged::Accepted;
                    } else {
                        // A held record released by this one: report the
                        // gossip messages that carried it.
                        self.report_held(envelope_hash(accepted.as_bytes()), Reason::Released);
                    }
                    self.accepted(accepted);
                }
                Verdict::Held { .. } => {
                    if let Origin::Gossip { source, message } = origin {
                        self.held_messages
                            .entry(hash)
                            .or_default()
                            .push((source.clone(), message.clone()));
                    }
                    // Counted once per envelope, against its first holder.
                    if let Some(holder) = &source
                        && !self.held_sources.contains_key(&hash)
                    {
                        let count = self.held_by_peer.entry(holder.clone()).or_default();
                        *count = count.saturating_add(1);
                        self.held_sources.insert(hash, holder.clone());
                    }
                    own = Judged::Held;
                }
                Verdict::Refused { reason, .. } => {
                    own = Judged::Refused(Reason::Unauthorized(reason));
                }
                Verdict::Dropped { record } => {
                    if i == 0 {
                        own = Judged::Refused(Reason::HoldFull);
                    } else {
                        self.report_held(envelope_hash(record.as_bytes()), Reason::HoldFull);
                    }
                }
            }
        }
        own
    }

    /// Reports the verdict of every gossip message held for the envelope
    /// `hash`, and releases the sending peer's share of the hold.
    pub(super) fn report_held(&mut self, hash: [u8; 32], reason: Reason) {
        if let Some(peer) = self.held_sources.remove(&hash)
            && let Some(count) = self.held_by_peer.get_mut(&peer)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.held_by_peer.remove(&peer);
            }
        }
        for (source, message) in self.held_messages.remove(&hash).unwrap_or_default() {
            self.outputs.push_back(Output::Verdict {
                source,
                message,
                reason: reason.clone(),
            });
        }
    }

    /// Reports every held gossip message as ignored (the group goes offline).
    pub(crate) fn release_held_messages(&mut self) {
        let hashes: Vec<[u8; 32]> = self.held_messages.keys().copied().collect();
        for hash in hashes {
            self.report_held(hash, Reason::Offline);
        }
    }

    /// A record the authorizer accepted: remember its version, notice
    /// membership news, and queue it for the store.
    fn accepted(&mut self, record: SignedRecord) {
        let r = record.record();
        let version = Version::of(&record);
        // A newer version is named at once: reconciliation announces it
        // before the store commits it (a fetch of it is served after the
        // commit). Another edit of a version already named is not: only the
        // store's merge decides which of the two it keeps, and its answer
        // sets the index (`on_merged`). Naming a copy the store then refuses,
        // even while the merge is in flight, would tell a neighbour holding
        // that copy that the two replicas are equal, and it would never
        // fetch the one this member keeps.
        if self
            .versions
            .get(&r.id)
            .is_none_or(|known| known.version < version.version)
        {
            self.versions.insert(r.id, version);
        }
        self.note_membership(&record);
        self.to_merge.push(record);
    }

    /// Handles a record input from gossip or sync.
    pub(crate) fn on_record(
        &mut self,
        record: Result<SignedRecord, Error>,
        origin: Origin<P, M>,
        now: Timestamp,
    ) {
        if !self.is_online() && !matches!(origin, Origin::Local) {
            self.verdict(&origin, Reason::Offline);
            return;
        }
        match self.judge(record, &origin, now) {
            Judged::Accepted => self.verdict(&origin, Reason::Valid),
            Judged::Held => {}
            Judged::Refused(reason) => self.verdict(&origin, reason),
        }
    }

    /// What an origin gets for a final verdict: gossip messages their
    /// verdict, sync peers a misbehaviour report when at fault.
    pub(crate) fn verdict(&mut self, origin: &Origin<P, M>, reason: Reason) {
        match origin {
            Origin::Gossip { source, message } => self.outputs.push_back(Output::Verdict {
                source: source.clone(),
                message: message.clone(),
                reason,
            }),
            Origin::Sync { peer } if reason.is_fault() => {
                self.outputs.push_back(Output::PeerMisbehaved {
                    peer: peer.clone(),
                    reason,
                })
            }
            Origin::Sync { .. } | Origin::Local => {}
        }
    }

    /// Judges a properties envelope: only the creator's, of this group, with a
    /// higher revision that keeps the immutable members, replaces ours.
    pub(crate) fn judge_properties(
        &mut self,
        properties: Result<SignedProperties, Error>,
    ) -> Reason {
        let newer = match properties {
            Ok(p) => p,
            Err(error) => return undecodable(error),
        };
        let p = newer.properties();
        if &p.group_peer_name != self.name() {
            return Reason::WrongGroup(p.group_peer_name.clone());
        }
        if p.revision <= self.state.properties().revision {
            return Reason::StaleProperties;
        }
        if let Err(e) = self.state.properties().check_update(p) {
            return Reason::Invalid(e);
        }
        self.state.properties = newer;
        self.persist();
        self.emit(Event::PropertiesChanged {
            group: self.name().clone(),
        });
        Reason::Valid
    }

    /// Handles a properties input from gossip or sync.
    pub(crate) fn on_properties(
        &mut self,
        properties: Result<SignedProperties, Error>,
        origin: Origin<P, M>,
    ) {
        if !self.is_online() && !matches!(origin, Origin::Local) {
            self.verdict(&origin, Reason::Offline);
            return;
        }
        let reason = self.judge_properties(properties);
        self.verdict(&origin, reason);
    }

    /// Routes an input to its handler.
    pub(crate) fn dispatch(&mut self, input: Input<P, M>, now: Timestamp) {
        match input {
            Input::NeighborUp(peer) => self.neighbor_up(peer, now),
            Input::NeighborDown(peer) => self.neighbor_down(&peer, now),
            Input::Reconnected(peer) => self.neighbor_reconnected(&peer, now),
            Input::Record { record, origin } => self.on_record(record, origin, now),
            Input::Properties { properties, origin } => self.on_properties(properties, origin),
            Input::Reconciled {
                peer,
                tag,
                properties,
                answers,
            } => {
                if let Some(properties) = properties {
                    let reason = self.judge_properties(properties);
                    self.verdict(&Origin::Sync { peer: peer.clone() }, reason);
                }
                self.on_reconciled(&peer, tag, answers, now);
            }
            Input::Fetched(fetched) => self.on_fetched(fetched, now),
            Input::SyncFailed {
                peer,
                tag,
                timed_out,
                ..
            } => self.on_sync_failed(&peer, tag, timed_out, now),
            Input::Merged(outcomes) => self.on_merged(outcomes, now),
            Input::MergeFailed { records, .. } => self.on_merge_failed(records),
            Input::Expired(outcomes) => self.on_expired(outcomes),
            Input::Timeout => {
                self.expire_holds(now);
                self.on_timeout(now);
                self.sync_timers(now);
            }
        }
    }

    /// Judges every record a neighbour sent (origin: sync with it).
    ///
    /// A ready member floods what it accepted on to its other neighbours, as
    /// Windows re-floods every new record (reference 3.4): records written
    /// on one side of a partition reach the whole other side as soon as one
    /// member of it synchronizes, not one anti-entropy round per hop. A
    /// first synchronization floods nothing (its neighbour has it all).
    pub(crate) fn judge_fetched(&mut self, fetched: &mut Fetched<P>, now: Timestamp) {
        let origin = Origin::Sync {
            peer: fetched.peer.clone(),
        };
        if let Some(properties) = fetched.properties.take() {
            let reason = self.judge_properties(properties);
            self.verdict(&origin, reason);
        }
        let flood = self.state.ready && self.is_online();
        for record in std::mem::take(&mut fetched.records) {
            let bytes = match (&record, flood) {
                (Ok(r), true) => Some(r.as_bytes().to_vec()),
                _ => None,
            };
            match self.judge(record, &origin, now) {
                Judged::Accepted => {
                    if let Some(bytes) = bytes {
                        self.outputs.push_back(Output::Publish(bytes));
                    }
                }
                Judged::Held => {}
                Judged::Refused(reason) => self.verdict(&origin, reason),
            }
        }
    }
}

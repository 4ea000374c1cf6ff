//! A session's inputs and outputs: everything that crosses its boundary.

use crate::{
    error::Error,
    group::SignedProperties,
    reconcile::{Answer, Query},
    record::{RecordId, SignedRecord},
    session::{GroupState, Reason, event::Event},
    store::{Change, Merged},
};

/// Where a record or properties envelope came from. The same validation runs
/// for every origin; the origin decides what is done with the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin<P, M> {
    /// A gossip message `message` delivered by `source`; it gets exactly one
    /// [`Output::Verdict`], possibly later (a held record).
    Gossip {
        /// The neighbour that forwarded it (gossipsub's propagation source).
        source: P,
        /// The message's id, to report the verdict for.
        message: M,
    },
    /// A page of a synchronization with `peer`.
    Sync {
        /// The neighbour that served it.
        peer: P,
    },
    /// Made by this node's own member (a local write).
    Local,
}

impl<P, M> Origin<P, M> {
    /// The peer the envelope came from, if it came from the network.
    pub fn peer(&self) -> Option<&P> {
        match self {
            Origin::Gossip { source, .. } => Some(source),
            Origin::Sync { peer } => Some(peer),
            Origin::Local => None,
        }
    }
}

/// A gossip verdict (gossipsub's `MessageAcceptance`, without the network types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acceptance {
    /// Valid: merged and forwarded.
    Accept,
    /// Not forwarded, nobody penalized (stale, duplicate, cannot judge yet).
    Ignore,
    /// Provably the sender's fault: not forwarded, the sender is penalized.
    Reject,
}

/// What a session asks a neighbour in a synchronization
/// ([`Output::SyncRequest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    /// Reconciliation queries ([`crate::reconcile`]); answer with
    /// [`Input::Reconciled`].
    Reconcile(Vec<Query>),
    /// The envelopes of these records, about `max_bytes` of them at most
    /// (the server sends at least one); answer with [`Input::Fetched`].
    Fetch {
        /// The records, in the order to send them.
        ids: Vec<RecordId>,
        /// About how many envelope bytes.
        max_bytes: u32,
    },
}

/// Records a neighbour sent for a [`SyncRequest::Fetch`], decoded and
/// verified by the host.
#[derive(Debug, Clone)]
pub struct Fetched<P> {
    /// The neighbour that sent them.
    pub peer: P,
    /// The tag of the [`Output::SyncRequest`] they answer.
    pub tag: u64,
    /// The group's properties, as the neighbour holds them.
    pub properties: Option<Result<SignedProperties, Error>>,
    /// Every envelope sent, decoded and verified (or why not).
    pub records: Vec<Result<SignedRecord, Error>>,
    /// How many of the requested ids the neighbour considered (in request
    /// order); the rest did not fit and are asked again.
    pub considered: usize,
}

/// An input to a [`crate::Session`].
#[derive(Debug, Clone)]
pub enum Input<P, M> {
    /// `peer` subscribed to the group (became a neighbour).
    NeighborUp(P),
    /// `peer` left the group or disconnected.
    NeighborDown(P),
    /// A further connection to `peer` came up while the host still held
    /// one: the old one may be dead without anybody knowing yet (a link cut
    /// without a reset), so what was sent over it may be lost. A neighbour is
    /// reconciled with again, as on a first connection (a run in flight is
    /// abandoned and started over).
    Reconnected(P),
    /// A record envelope, decoded and verified by the caller (signature checks
    /// run outside the session, on worker threads), or the reason it was not.
    Record {
        /// The verified record, or why it failed to decode or verify.
        record: Result<SignedRecord, Error>,
        /// Where it came from.
        origin: Origin<P, M>,
    },
    /// A properties envelope, decoded and verified, or why not.
    Properties {
        /// The verified properties, or why they failed to decode or verify.
        properties: Result<SignedProperties, Error>,
        /// Where they came from.
        origin: Origin<P, M>,
    },
    /// The answers to the last [`SyncRequest::Reconcile`] sent to `peer`.
    Reconciled {
        /// The neighbour.
        peer: P,
        /// The tag of the [`Output::SyncRequest`] answered.
        tag: u64,
        /// The group's properties, as the neighbour holds them (so that a
        /// newer revision spreads with every reconciliation, even when the
        /// records agree).
        properties: Option<Result<SignedProperties, Error>>,
        /// One answer per query, in order.
        answers: Vec<Answer>,
    },
    /// The records of a [`SyncRequest::Fetch`] sent to a neighbour.
    Fetched(Fetched<P>),
    /// An [`Output::SyncRequest`] to `peer` failed (timeout, refusal, the
    /// connection closed).
    SyncFailed {
        /// The neighbour asked.
        peer: P,
        /// The tag of the failed request.
        tag: u64,
        /// Why, for logs.
        reason: String,
        /// Whether it timed out (a fetch is retried with fewer bytes).
        timed_out: bool,
    },
    /// An [`Output::Merge`] batch is stored; each record with its outcome, in
    /// the order of the batch.
    Merged(Vec<(SignedRecord, Change)>),
    /// An [`Output::Merge`] batch could not be stored.
    MergeFailed {
        /// The batch's records.
        records: Vec<SignedRecord>,
        /// Why, for logs.
        reason: String,
    },
    /// The store's expiry pass removed these records of the group.
    Expired(Vec<Merged>),
    /// The time from [`crate::Session::poll_timeout`] has come.
    Timeout,
}

/// What a [`crate::Session`] asks its host to do.
#[derive(Debug, Clone)]
pub enum Output<P, M> {
    /// Join the group's gossip topic.
    Subscribe,
    /// Leave the group's gossip topic.
    Unsubscribe,
    /// Publish these envelope bytes on the group's topic.
    Publish(Vec<u8>),
    /// Report a gossip message's verdict (exactly once per message):
    /// [`Reason::acceptance`] gives gossipsub's Accept / Ignore / Reject.
    Verdict {
        /// The message's propagation source.
        source: P,
        /// The message.
        message: M,
        /// Why; decides the verdict.
        reason: Reason,
    },
    /// A synchronization with `peer` ended (for metrics and logs). Runs cut
    /// short by closing the group or by a failed store commit are not
    /// reported.
    SyncEnded {
        /// The neighbour.
        peer: P,
        /// Whether it completed (`false`: failed, timed out, the neighbour
        /// left or misbehaved).
        completed: bool,
        /// Whether it was the group's first synchronization.
        first: bool,
        /// Records received in it.
        received: u64,
        /// How long it ran, in milliseconds of the session's clock.
        duration_ms: u64,
    },
    /// `peer` served something that is provably its fault (in a
    /// synchronization): the host may lower its score or cut it off.
    PeerMisbehaved {
        /// The neighbour.
        peer: P,
        /// What it did.
        reason: Reason,
    },
    /// Merge these verified, authorized records into the store, in this order,
    /// then answer with [`Input::Merged`] (or [`Input::MergeFailed`]).
    Merge(Vec<SignedRecord>),
    /// Store the group's state (properties, member, credential, readiness)
    /// in one transaction, after every [`Output::Merge`] that came before.
    Persist(Box<GroupState>),
    /// Send `peer` a synchronization request; answer with
    /// [`Input::Reconciled`] or [`Input::Fetched`], or [`Input::SyncFailed`],
    /// carrying its `tag`: several requests to one neighbour may be in
    /// flight and answered in any order, and an answer to a request of a
    /// run that ended matches nothing.
    SyncRequest {
        /// The neighbour to ask.
        peer: P,
        /// Names the request in its answer or failure.
        tag: u64,
        /// What to ask.
        request: SyncRequest,
    },
    /// Announce the group in the global cloud (a Kademlia provider record).
    StartProviding,
    /// Stop announcing the group.
    StopProviding,
    /// Look for members in the clouds (a Kademlia provider lookup).
    FindMembers,
    /// Tell the application.
    Emit(Event<P>),
    /// The outcome of the last `connect`: ready and online, or failed.
    ConnectOutcome(Result<(), Error>),
}

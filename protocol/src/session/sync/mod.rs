//! Synchronization with neighbours (reference 3.5): on every new
//! authenticated neighbour, and periodically with one of them
//! (anti-entropy), the session reconciles its set of records with the
//! neighbour's ([`crate::reconcile`]) and fetches what it lacks, membership
//! records first (alone), then up to [`FETCH_PIPELINE`] fetches at once, in
//! batches bounded by bytes. Both members of a connection
//! run it, so each ends with the union. A joiner's first synchronization is
//! the same protocol from an empty set; the group becomes ready when one
//! completes and the store holds everything it brought.
//!
//! Slow links: a fetch asks for at most [`FETCH_IDS`] records and about
//! `max_bytes` of envelopes ([`FETCH_BYTES`] at first) (the server sends at least one); a timed-out
//! fetch is retried with half the bytes, up to [`MAX_FAILURES`] failures,
//! then the run ends and another neighbour is asked (for a first sync) or
//! the next anti-entropy round resumes it: what was merged stays merged.
//! A neighbour whose answers cannot come from an honest member (a split
//! that does not shrink, more than [`MAX_ROUNDS`] rounds, records it was not
//! asked for, forged or unauthorized records) is reported with
//! [`Output::PeerMisbehaved`] and its run ends.

mod fetch;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use self::fetch::Fetching;

use crate::{
    error::Error,
    reconcile::{self, Answer, MAX_QUERIES, Query, Set},
    record::{MEMBERSHIP_NONCE, RecordId},
    session::{Output, Session, io::SyncRequest, validate::Reason},
    time::Timestamp,
};

/// The most records one fetch asks for (3,072 ids of 17 bytes fit the
/// request limit). A fetch costs a round trip, so it asks for many; with
/// 256-byte records [`FETCH_BYTES`] binds first (about 1,600). Measured on
/// the join benchmark with one fetch in flight: 512 ids took 12.5 s for
/// 100,000 records, 3,072 ids 6.6 s; letting the bytes grow to 4 MiB on
/// fast links made it slower (10.7 s), so they do not.
pub const FETCH_IDS: usize = 3072;

/// The envelope bytes a fetch asks for at first: 1 MiB, about 8 s over a
/// 1 Mbit/s link (far within the 30 s request timeout) and a few
/// milliseconds on a LAN; halved after each timeout.
pub const FETCH_BYTES: u32 = 1024 * 1024;

/// How many failed requests (timeouts, errors) end a run.
pub const MAX_FAILURES: u32 = 4;

/// The most reconciliation rounds of one run: an honest neighbour needs
/// about `log16(records / 32) + 1` (6 for ten million records).
pub const MAX_ROUNDS: u32 = 64;

/// The most fetches in flight per run: while one answer is verified and
/// merged, the next is being read and sent. Membership records are fetched
/// alone, before the rest; after a timeout (a slow link, where concurrent
/// fetches would only share it) one at a time.
pub const FETCH_PIPELINE: usize = 3;

/// The most runs at once, with different neighbours.
pub const MAX_RUNS: usize = 4;

/// One synchronization with one neighbour.
#[derive(Debug, Clone)]
pub(super) struct SyncRun {
    /// The first synchronization of a group that is not ready yet.
    first: bool,
    /// Queries not sent yet.
    queries: VecDeque<Query>,
    /// The reconciliation request in flight: its tag and queries.
    reconciling: Option<(u64, Vec<Query>)>,
    /// The fetches in flight, by tag, with their ids.
    fetching: BTreeMap<u64, Fetching>,
    /// How many fetches may be in flight ([`FETCH_PIPELINE`], 1 after a
    /// timeout).
    pipeline: usize,
    rounds: u32,
    /// Membership records to fetch (they go first, so that what follows
    /// validates at once).
    need_memberships: BTreeSet<RecordId>,
    need: BTreeSet<RecordId>,
    max_bytes: u32,
    failures: u32,
    received: u64,
    /// The neighbour's own count of records, from its first answer.
    their_total: Option<u64>,
    /// Everything fetched; waiting for the store (first runs only).
    finishing: bool,
    /// When it started (for [`Output::SyncEnded`]).
    started: Timestamp,
}

/// A synchronization in progress, as [`Session::sync_status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncProgress<P> {
    /// The neighbour.
    pub peer: P,
    /// Records received so far.
    pub received: u64,
    /// Records expected in all (an estimate while reconciliation runs).
    pub estimated_total: u64,
    /// Whether it is the group's first synchronization.
    pub first: bool,
}

/// A group's synchronization status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncStatus<P> {
    /// Synchronizations in progress.
    pub running: Vec<SyncProgress<P>>,
    /// When each neighbour last completed one with this member, ordered by
    /// peer; as JSON, `[{"peer": ..., "at": ms}]`.
    pub last_completed: Vec<LastSync<P>>,
}

/// The last synchronization a neighbour completed with this member, an
/// entry of [`SyncStatus::last_completed`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastSync<P> {
    /// The neighbour.
    pub peer: P,
    /// When it completed (milliseconds since the Unix epoch on the wire
    /// and in JSON).
    pub at: Timestamp,
}

impl<P> From<(P, Timestamp)> for LastSync<P> {
    fn from((peer, at): (P, Timestamp)) -> LastSync<P> {
        LastSync { peer, at }
    }
}

impl SyncRun {
    fn estimated_total(&self) -> u64 {
        let pending = self
            .received
            .saturating_add(self.need.len() as u64)
            .saturating_add(self.need_memberships.len() as u64);
        if self.first {
            pending.max(self.their_total.unwrap_or(0))
        } else {
            pending
        }
    }
}

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// The set reconciliation sees: live records at `now`.
    fn set(&self, now: Timestamp) -> Set<'_> {
        Set::new(&self.versions, now)
    }

    /// Answers a neighbour's reconciliation queries over this member's set.
    /// `GroupNotReady` before the first synchronization (a member serves
    /// only a complete database); `InvalidArg` for more than
    /// [`MAX_QUERIES`] queries.
    pub fn answer_reconcile(
        &self,
        queries: &[Query],
        now: Timestamp,
    ) -> Result<Vec<Answer>, Error> {
        self.check_ready()?;
        if queries.len() > MAX_QUERIES {
            return Err(Error::InvalidArg(format!(
                "{} queries in one request; at most {MAX_QUERIES}",
                queries.len()
            )));
        }
        Ok(reconcile::answer(&self.set(now), queries))
    }

    /// The synchronizations in progress and the last completed ones.
    pub fn sync_status(&self) -> SyncStatus<P> {
        SyncStatus {
            running: self
                .syncs
                .iter()
                .map(|(peer, run)| SyncProgress {
                    peer: peer.clone(),
                    received: run.received,
                    estimated_total: run.estimated_total(),
                    first: run.first,
                })
                .collect(),
            last_completed: self
                .last_synced
                .iter()
                .map(|(peer, at)| LastSync {
                    peer: peer.clone(),
                    at: *at,
                })
                .collect(),
        }
    }

    /// Starts a synchronization with `peer` if none runs with it and there
    /// is room. A group that is not ready runs one (first) synchronization
    /// at a time, with a neighbour not tried during this connect.
    pub(super) fn start_sync(&mut self, peer: P, now: Timestamp) {
        if !self.is_online() || self.syncs.contains_key(&peer) || !self.neighbors.contains(&peer) {
            return;
        }
        let first = !self.state.ready;
        if first {
            let Some(connect) = self.connect.as_mut() else {
                return;
            };
            if self.syncs.values().any(|r| r.first) || connect.tried.contains(&peer) {
                return;
            }
            connect.tried.insert(peer.clone());
        } else if self.syncs.len() >= MAX_RUNS {
            return;
        }
        let start = reconcile::start(&self.set(now));
        let run = SyncRun {
            first,
            queries: VecDeque::from([start]),
            reconciling: None,
            fetching: BTreeMap::new(),
            pipeline: FETCH_PIPELINE,
            rounds: 0,
            need_memberships: BTreeSet::new(),
            need: BTreeSet::new(),
            max_bytes: FETCH_BYTES,
            failures: 0,
            received: 0,
            their_total: None,
            finishing: false,
            started: now,
        };
        self.syncs.insert(peer.clone(), run);
        self.send_next(&peer, now);
    }

    /// A group that is not ready starts its first synchronization with the
    /// next neighbour not tried yet.
    /// Once every neighbour was tried, they are tried again: what an
    /// interrupted synchronization merged stays merged, so a slow or flaky
    /// member is worth asking again (a misbehaving one was cut off by the
    /// host and is no neighbour any more).
    pub(super) fn try_next_first_sync(&mut self, now: Timestamp) {
        if self.state.ready || self.syncs.values().any(|r| r.first) {
            return;
        }
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        if self.neighbors.iter().all(|p| connect.tried.contains(p)) {
            connect.tried.clear();
        }
        let next = self
            .neighbors
            .iter()
            .find(|p| !connect.tried.contains(*p))
            .cloned();
        if let Some(peer) = next {
            self.start_sync(peer, now);
        }
    }

    /// Anti-entropy: a ready, online group reconciles with the neighbour it
    /// synchronized with least recently.
    pub(super) fn anti_entropy(&mut self, now: Timestamp) {
        if !self.state.ready || !self.is_online() {
            return;
        }
        let next = self
            .neighbors
            .iter()
            .filter(|p| !self.syncs.contains_key(*p))
            .min_by_key(|p| {
                self.last_synced
                    .get(*p)
                    .copied()
                    .unwrap_or(Timestamp::EPOCH)
            })
            .cloned();
        if let Some(peer) = next {
            self.start_sync(peer, now);
        }
    }

    /// Sends what the run with `peer` needs next: queries first (one
    /// request at a time), then membership records (alone), then the rest
    /// (up to [`FETCH_PIPELINE`] fetches in flight); completes it when
    /// nothing is left.
    fn send_next(&mut self, peer: &P, now: Timestamp) {
        loop {
            self.next_sync_tag = self.next_sync_tag.wrapping_add(1);
            let tag = self.next_sync_tag;
            let Some(run) = self.syncs.get_mut(peer) else {
                return;
            };
            if run.reconciling.is_some() || run.finishing {
                return;
            }
            let request = if !run.queries.is_empty() {
                if !run.fetching.is_empty() {
                    return;
                }
                let batch: Vec<Query> = run
                    .queries
                    .drain(..run.queries.len().min(MAX_QUERIES))
                    .collect();
                run.reconciling = Some((tag, batch.clone()));
                SyncRequest::Reconcile(batch)
            } else {
                let memberships = !run.need_memberships.is_empty();
                let fetching_memberships = run
                    .fetching
                    .values()
                    .any(|f| f.ids.iter().any(|id| id.nonce() == MEMBERSHIP_NONCE));
                let room = if memberships || fetching_memberships {
                    run.fetching.is_empty()
                } else {
                    run.fetching.len() < run.pipeline
                };
                if !room {
                    return;
                }
                let from = if memberships {
                    &mut run.need_memberships
                } else {
                    &mut run.need
                };
                let ids: Vec<RecordId> = from.iter().take(FETCH_IDS).copied().collect();
                if ids.is_empty() {
                    if run.fetching.is_empty() {
                        self.sync_done(peer, now);
                    }
                    return;
                }
                for id in &ids {
                    from.remove(id);
                }
                run.fetching.insert(
                    tag,
                    Fetching {
                        ids: ids.clone(),
                        max_bytes: run.max_bytes,
                    },
                );
                SyncRequest::Fetch {
                    ids,
                    max_bytes: run.max_bytes,
                }
            };
            self.outputs.push_back(Output::SyncRequest {
                peer: peer.clone(),
                tag,
                request,
            });
        }
    }

    /// The answers to the run's reconciliation request.
    pub(super) fn on_reconciled(
        &mut self,
        peer: &P,
        tag: u64,
        answers: Vec<Answer>,
        now: Timestamp,
    ) {
        let Some(run) = self.syncs.get_mut(peer) else {
            return;
        };
        if run.reconciling.as_ref().is_none_or(|(t, _)| *t != tag) {
            return;
        }
        let Some((_, queries)) = run.reconciling.take() else {
            return;
        };
        run.rounds = run.rounds.saturating_add(1);
        if answers.len() != queries.len() {
            self.sync_misbehaved(peer, "answers that do not match the queries", now);
            return;
        }
        if run.rounds > MAX_ROUNDS {
            self.sync_misbehaved(peer, "a reconciliation that does not converge", now);
            return;
        }
        let set = Set::new(&self.versions, now);
        let mut found = Vec::new();
        let mut next = Vec::new();
        let mut total = None;
        for (query, answer) in queries.iter().zip(&answers) {
            if query.range == reconcile::Range::ALL {
                total = Some(match answer {
                    Answer::Equal => u64::from(query.summary.count),
                    Answer::Items(bytes) => (bytes.len() / reconcile::ITEM_LEN) as u64,
                    Answer::Split(parts) => parts.iter().map(|(_, s)| u64::from(s.count)).sum(),
                });
            }
            match reconcile::needs(&set, query, answer) {
                Ok((ids, more)) => {
                    found.extend(ids);
                    next.extend(more);
                }
                Err(e) => {
                    let reason = e.to_string();
                    self.sync_misbehaved(peer, &reason, now);
                    return;
                }
            }
        }
        let Some(run) = self.syncs.get_mut(peer) else {
            return;
        };
        if total.is_some() {
            run.their_total = total;
        }
        run.need(found);
        run.queries.extend(next);
        self.send_next(peer, now);
    }

    pub(super) fn sync_misbehaved(&mut self, peer: &P, what: &str, now: Timestamp) {
        self.outputs.push_back(Output::PeerMisbehaved {
            peer: peer.clone(),
            reason: Reason::Invalid(Error::InvalidRecord(format!(
                "a synchronization answer that no honest member sends: {what}"
            ))),
        });
        self.end_run(peer, false, now);
        self.after_run_ended_early();
    }

    /// Ends the run with `peer` before it completed.
    pub(super) fn end_sync(&mut self, peer: &P, now: Timestamp) {
        if self.syncs.get(peer).is_some_and(|r| !r.finishing) {
            self.end_run(peer, false, now);
            self.after_run_ended_early();
        }
    }

    /// Removes the run with `peer` and reports how it ended
    /// ([`Output::SyncEnded`], for metrics).
    fn end_run(&mut self, peer: &P, completed: bool, now: Timestamp) {
        if let Some(run) = self.syncs.remove(peer) {
            self.outputs.push_back(Output::SyncEnded {
                peer: peer.clone(),
                completed,
                first: run.first,
                received: run.received,
                duration_ms: now.as_millis().saturating_sub(run.started.as_millis()),
            });
        }
    }

    fn after_run_ended_early(&mut self) {
        // A first synchronization moves on to another neighbour; the
        // connect timer ends the attempt if none completes.
        if !self.state.ready {
            self.pending_first_retry = true;
        }
    }

    /// Everything the run asked for came: a first run completes once the
    /// store holds it; any other completes now.
    fn sync_done(&mut self, peer: &P, now: Timestamp) {
        let Some(run) = self.syncs.get_mut(peer) else {
            return;
        };
        if run.first {
            run.finishing = true;
            self.sync_merged(now);
        } else {
            self.end_run(peer, true, now);
            self.last_synced.insert(peer.clone(), now);
        }
    }

    /// A merge was answered: a finishing first run completes once none is
    /// in flight.
    pub(super) fn sync_merged(&mut self, now: Timestamp) {
        let finished: Vec<P> = self
            .syncs
            .iter()
            .filter(|(_, r)| r.finishing)
            .map(|(p, _)| p.clone())
            .collect();
        if finished.is_empty() || self.merges_in_flight != 0 {
            return;
        }
        for peer in finished {
            self.end_run(&peer, true, now);
            self.last_synced.insert(peer, now);
        }
        if !self.state.ready {
            self.first_sync_complete(now);
        }
    }

    /// A merge failed: a first run whose records did not all get stored is
    /// no synchronization; it starts over with another neighbour. (Not
    /// reported as [`Output::SyncEnded`]: no clock here, and the store's
    /// failure is reported as such.)
    pub(super) fn sync_merge_failed(&mut self) {
        let first: Vec<P> = self
            .syncs
            .iter()
            .filter(|(_, r)| r.first)
            .map(|(p, _)| p.clone())
            .collect();
        for peer in first {
            self.syncs.remove(&peer);
            self.pending_first_retry = true;
        }
    }

    fn first_sync_complete(&mut self, now: Timestamp) {
        self.state.ready = true;
        self.persist();
        self.become_listening();
        self.refresh_status();
        self.outputs.push_back(Output::ConnectOutcome(Ok(())));
        self.next_anti_entropy = now.saturating_add(self.config.anti_entropy_interval);
        // Windows publishes the member's GMC in the group database once it
        // is synchronized, unless the group makes member data optional.
        // It fails only for a credential that is no longer valid now; then
        // the member's first write fails with the same error, which is where
        // the application can see it.
        let _ = self.ensure_membership_published(true, now);
        // Now ready: reconcile with the other neighbours too.
        let others: Vec<P> = self.neighbors.iter().cloned().collect();
        for peer in others {
            self.start_sync(peer, now);
        }
    }

    /// Forgets the runs and the history of a neighbour that left.
    pub(super) fn sync_neighbor_down(&mut self, peer: &P, now: Timestamp) {
        self.last_synced.remove(peer);
        if self.syncs.contains_key(peer) {
            self.end_run(peer, false, now);
            self.after_run_ended_early();
        }
    }

    /// Runs what the sync timers ask for: a retry of a first
    /// synchronization, the anti-entropy round, and a lookup for members
    /// when a ready group lost every neighbour (reference 3.2: it keeps
    /// listening alone, and redials: the host looks members up in the
    /// clouds and redials the members and link-local peers it knew).
    pub(super) fn sync_timers(&mut self, now: Timestamp) {
        if self.state.ready && self.is_online() && self.neighbors.is_empty() {
            let (at, interval) = self.lonely_find.unwrap_or((now, self.config.find_interval));
            if now >= at {
                self.outputs.push_back(Output::FindMembers);
                let next = interval.saturating_mul(2).min(super::MAX_FIND_INTERVAL);
                self.lonely_find = Some((now.saturating_add(interval), next));
            } else if self.lonely_find.is_none() {
                self.lonely_find = Some((at, interval));
            }
        } else {
            self.lonely_find = None;
        }
        if std::mem::take(&mut self.pending_first_retry) {
            self.try_next_first_sync(now);
        }
        if self.state.ready && self.is_online() && now >= self.next_anti_entropy {
            self.next_anti_entropy = now.saturating_add(self.config.anti_entropy_interval);
            self.anti_entropy(now);
        }
    }

    /// When the sync timers are due next, if any applies: the anti-entropy
    /// round with neighbours, the lookup without.
    pub(super) fn sync_timeout(&self) -> Option<Timestamp> {
        if !self.state.ready || !self.is_online() {
            return None;
        }
        if self.neighbors.is_empty() {
            Some(self.lonely_find.map_or(Timestamp::EPOCH, |(at, _)| at))
        } else {
            Some(self.next_anti_entropy)
        }
    }

    /// Records from `last_synced` and runs, by peer (for tests and status).
    #[allow(dead_code)]
    pub(super) fn runs(&self) -> &BTreeMap<P, SyncRun> {
        &self.syncs
    }
}

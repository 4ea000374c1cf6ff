//! The fetch side of a synchronization: what a run asks again, the answers
//! to its fetches (in any order, by tag) and their failures.

use std::collections::BTreeSet;

use crate::{
    record::{MEMBERSHIP_NONCE, RecordId},
    session::{Event, Session, io::Fetched},
    time::Timestamp,
};

use super::{MAX_FAILURES, SyncRun};

impl SyncRun {
    /// Records to fetch: membership records go first.
    pub(super) fn need(&mut self, ids: impl IntoIterator<Item = RecordId>) {
        for id in ids {
            if id.nonce() == MEMBERSHIP_NONCE {
                self.need_memberships.insert(id);
            } else {
                self.need.insert(id);
            }
        }
    }
}

/// A fetch in flight: its ids and the bytes it asked for.
#[derive(Debug, Clone)]
pub(super) struct Fetching {
    pub(super) ids: Vec<RecordId>,
    pub(super) max_bytes: u32,
}

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// Records fetched from the run's neighbour, verified by the host.
    pub(in crate::session) fn on_fetched(&mut self, mut fetched: Fetched<P>, now: Timestamp) {
        let peer = fetched.peer.clone();
        let group = self.name().clone();
        let Some(run) = self.syncs.get_mut(&peer) else {
            return;
        };
        let Some(Fetching { ids, .. }) = run.fetching.remove(&fetched.tag) else {
            return;
        };
        let asked: BTreeSet<RecordId> = ids.iter().copied().collect();
        let considered = fetched.considered.min(ids.len());
        let stray = fetched.records.iter().any(|r| match r {
            Ok(record) => !asked.contains(&record.record().id),
            Err(_) => false,
        });
        if stray || (fetched.records.is_empty() && considered == 0 && !ids.is_empty()) {
            self.sync_misbehaved(
                &peer,
                "a fetch answer with records not asked for, or none",
                now,
            );
            return;
        }
        // Ids the server did not get to (they did not fit): ask again.
        if let Some(rest) = ids.get(considered..) {
            run.need(rest.iter().copied());
        }
        run.received = run.received.saturating_add(fetched.records.len() as u64);
        run.failures = 0;
        let first = run.first;
        // The connect deadline bounds inactivity, not the size of the
        // database: a first synchronization that makes progress keeps it
        // open (a large group over a slow link takes longer than it).
        if first
            && !fetched.records.is_empty()
            && let Some(connect) = self.connect.as_mut()
        {
            connect.deadline = connect
                .deadline
                .max(now.saturating_add(self.config.connect_timeout));
        }
        let Some(run) = self.syncs.get(&peer) else {
            return;
        };
        let progress = Event::SyncProgress {
            group,
            peer: peer.clone(),
            received: run.received,
            estimated_total: run.estimated_total(),
        };
        self.judge_fetched(&mut fetched, now);
        // Merge what this batch brought before what comes next, so that a
        // persisted readiness always follows the records it covers.
        self.flush_merges();
        self.emit(progress);
        self.send_next(&peer, now);
    }

    /// A request of the run with `peer` failed: a timed-out fetch is
    /// retried with half the bytes; after [`MAX_FAILURES`] failures the run
    /// ends (what it merged stays).
    pub(in crate::session) fn on_sync_failed(
        &mut self,
        peer: &P,
        tag: u64,
        timed_out: bool,
        now: Timestamp,
    ) {
        let Some(run) = self.syncs.get_mut(peer) else {
            return;
        };
        // What failed goes back to be asked again.
        match run.fetching.remove(&tag) {
            Some(Fetching { ids, max_bytes }) => {
                // Fetches sent together time out together: only one asked
                // for the current size counts, halves it and stops the
                // pipeline; the others are just asked again.
                run.need(ids);
                if max_bytes > run.max_bytes {
                    self.send_next(peer, now);
                    return;
                }
                if timed_out {
                    run.max_bytes = (run.max_bytes / 2).max(1);
                    run.pipeline = 1;
                }
            }
            None => {
                if run.reconciling.as_ref().is_none_or(|(t, _)| *t != tag) {
                    return;
                }
                let Some((_, queries)) = run.reconciling.take() else {
                    return;
                };
                for query in queries.into_iter().rev() {
                    run.queries.push_front(query);
                }
            }
        }
        run.failures = run.failures.saturating_add(1);
        if run.failures >= MAX_FAILURES {
            self.end_sync(peer, now);
            return;
        }
        self.send_next(peer, now);
    }
}

//! The first-connect copy: a joiner copies a neighbour's database page by
//! page, membership records first (so that the records after them validate
//! at once), then everything. The group becomes ready only when a copy
//! completes, and that readiness is persisted ([`Output::Persist`]) after
//! every page's merge, so an interrupted copy never counts as complete.

use crate::{
    record::{RecordId, RecordType},
    session::{
        Output, Session,
        io::{Page, PageRequest},
        validate::Reason,
    },
    time::Timestamp,
};

/// Which part of the copy is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Membership records only.
    Memberships,
    /// Every record.
    Records,
}

impl Phase {
    fn record_type(self) -> Option<RecordType> {
        match self {
            Phase::Memberships => Some(RecordType::MEMBERSHIP),
            Phase::Records => None,
        }
    }
}

/// A running copy from one neighbour.
#[derive(Debug, Clone)]
pub(super) struct CopyRun<P> {
    /// The neighbour serving it.
    pub(super) peer: P,
    phase: Phase,
    /// The cursor of the outstanding request.
    after: Option<RecordId>,
    /// The last page is in; the copy completes once the store has every
    /// record it brought (so that a ready group can read what it copied).
    finishing: bool,
}

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// Starts a copy from a neighbour not asked yet during this connect, if
    /// the group waits for one and none is running.
    pub(super) fn try_next_copy(&mut self) {
        if self.state.ready || !self.is_online() || self.copy.is_some() {
            return;
        }
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        let Some(peer) = self
            .neighbors
            .iter()
            .find(|p| !connect.tried.contains(*p))
            .cloned()
        else {
            return;
        };
        connect.tried.insert(peer.clone());
        self.copy = Some(CopyRun {
            peer: peer.clone(),
            phase: Phase::Memberships,
            after: None,
            finishing: false,
        });
        self.request(peer, Phase::Memberships, None);
    }

    fn request(&mut self, peer: P, phase: Phase, after: Option<RecordId>) {
        if let Some(copy) = self.copy.as_mut() {
            copy.phase = phase;
            copy.after = after;
        }
        self.outputs.push_back(Output::RequestPage {
            peer,
            request: PageRequest {
                record_type: phase.record_type(),
                after,
            },
        });
    }

    pub(super) fn on_page(&mut self, mut page: Page<P>, now: Timestamp) {
        let Some(copy) = self.copy.as_ref() else {
            return;
        };
        if copy.peer != page.peer || copy.finishing {
            return;
        }
        let (phase, after) = (copy.phase, copy.after);
        // Until the last page, the cursor must move forward, or a server
        // could page forever.
        let advanced = page.done
            || match (after, page.last) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(after), Some(last)) => last > after,
            };
        if !advanced {
            let peer = page.peer.clone();
            self.outputs.push_back(Output::PeerMisbehaved {
                peer: peer.clone(),
                reason: Reason::Invalid(crate::Error::InvalidRecord(
                    "a synchronization page did not advance its cursor".into(),
                )),
            });
            self.on_page_failed(&peer, "the page did not advance");
            return;
        }
        self.judge_page(&mut page, now);
        // Merge what this page brought before deciding what comes next, so
        // that a persisted readiness always follows the records it covers.
        self.flush_merges();
        match (page.done, phase) {
            (false, phase) => self.request(page.peer, phase, page.last),
            (true, Phase::Memberships) => self.request(page.peer, Phase::Records, None),
            (true, Phase::Records) => {
                if let Some(copy) = self.copy.as_mut() {
                    copy.finishing = true;
                }
                self.copy_merged(now);
            }
        }
    }

    pub(super) fn on_page_failed(&mut self, peer: &P, _reason: &str) {
        if self
            .copy
            .as_ref()
            .is_some_and(|c| &c.peer == peer && !c.finishing)
        {
            self.copy = None;
            self.try_next_copy();
        }
    }

    /// A merge was answered: a finishing copy completes once none is in flight.
    pub(super) fn copy_merged(&mut self, now: Timestamp) {
        let finishing = self.copy.as_ref().is_some_and(|c| c.finishing);
        if finishing && self.merges_in_flight == 0 {
            self.copy_complete(now);
        }
    }

    /// A merge failed: a running copy starts over with another neighbour.
    pub(super) fn copy_merge_failed(&mut self) {
        if self.copy.take().is_some() {
            self.try_next_copy();
        }
    }

    fn copy_complete(&mut self, now: Timestamp) {
        self.copy = None;
        self.state.ready = true;
        self.persist();
        self.become_listening();
        self.refresh_status();
        self.outputs.push_back(Output::ConnectOutcome(Ok(())));
        // Windows publishes the member's GMC in the group database once it
        // is synchronized, unless the group makes member data optional.
        // It fails only for a credential that is no longer valid now; then
        // the member's first write fails with the same error, which is where
        // the application can see it.
        let _ = self.ensure_membership_published(true, now);
    }
}

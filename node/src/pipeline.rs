//! The work pipeline: what leaves the swarm task and comes back.
//!
//! [`Pipeline`] owns the storage worker, the verify pool and their
//! correlation: writes queued for the worker (an outbox while its queue is
//! full, merges of one poll round coalesced per group), reads of fetches
//! being served, and envelopes queued for verification (gossip of one round
//! batched; a fetch's chunks wait in the outbox, gossip that finds the queue
//! full is handed back as [`Done::Busy`] to be ignored). It also keeps the
//! read overlay: local writes not committed yet, so that reads see them.
//!
//! It never touches a session or the network: [`Pipeline::poll`] hands each
//! finished piece of work back as a [`Done`], which the behaviour routes
//! (merged records to their session, verified envelopes to theirs, a served
//! read to its requester).

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    task::{Context, Poll},
};

use libp2p::{PeerId, gossipsub::MessageId};
use peergroup_protocol::{Error, PeerName, RecordId, SignedRecord};

use crate::{
    event::OperationId,
    storage::{
        Applied, Backend, Completion, FetchRead, RawRecords, Rejected, Storage, StorageError,
        WriteOp,
    },
    verify::{CHUNK, VerifyPool},
};

/// The most records one coalesced merge carries.
const MERGE_BATCH: usize = 1024;

/// What a queued write is for, to act on its completion.
#[derive(Debug)]
pub(crate) enum WriteFor {
    /// Records a session asked to merge; `local` ones sit in the read overlay.
    Merge {
        group: PeerName,
        local: bool,
        /// The sizes of the session's `Merge` outputs this write carries, in
        /// order: each gets its own `Merged` answer.
        splits: Vec<usize>,
    },
    /// A durability barrier.
    Barrier(OperationId),
    /// The expiry pass.
    Expire,
    /// Identities, group states, known peers: nothing to do on completion.
    Other,
}

/// What a verification job is for.
#[derive(Debug)]
pub(crate) enum VerifyFor {
    /// Gossip messages, one per envelope of the job.
    Gossip(Vec<GossipRef>),
    /// Chunk `index` of a synchronization fetch being assembled
    /// (`crate::sync::SyncRequests`).
    Fetch { fetch: u64, index: usize },
}

/// A gossip message waiting for its envelope's verification.
#[derive(Debug)]
pub(crate) struct GossipRef {
    pub(crate) group: PeerName,
    pub(crate) source: PeerId,
    pub(crate) message: MessageId,
}

/// A session's `Merge` output waiting to be coalesced with others of the
/// same poll round into one storage write.
#[derive(Debug)]
struct PendingMerge {
    group: PeerName,
    local: bool,
    records: Vec<SignedRecord>,
    splits: Vec<usize>,
}

/// A finished piece of work, for the behaviour to route.
#[derive(Debug)]
pub(crate) enum Done {
    /// A write committed (or failed). `op` is the write, handed back.
    Written {
        purpose: WriteFor,
        op: Option<WriteOp>,
        result: Result<Applied, StorageError>,
    },
    /// A write never reached the worker (it stopped).
    WriteFailed { purpose: WriteFor, reason: String },
    /// A fetch read for a member being served.
    Read {
        tag: u64,
        result: Result<RawRecords, StorageError>,
    },
    /// Envelopes verified, one result per envelope, in order.
    Verified {
        purpose: VerifyFor,
        results: Vec<Result<SignedRecord, Error>>,
    },
    /// Gossip that found the verify queue full: to be ignored (never
    /// rejected: it was not judged).
    Busy(Vec<GossipRef>),
}

/// The work pipeline. See the module docs.
#[derive(Debug)]
pub(crate) struct Pipeline {
    storage: Storage,
    verify: VerifyPool,
    writes: HashMap<u64, WriteFor>,
    write_outbox: VecDeque<(Option<WriteOp>, WriteFor)>,
    verifying: HashMap<u64, VerifyFor>,
    verify_outbox: VecDeque<(Vec<Vec<u8>>, VerifyFor)>,
    /// Gossip envelopes received this poll round, verified as one job.
    gossip_batch: Vec<(Vec<u8>, GossipRef)>,
    /// Merges asked for this poll round, written as one job per group.
    merge_batch: Vec<PendingMerge>,
    /// Local writes not yet committed, so that reads see them.
    overlay: HashMap<(PeerName, RecordId), SignedRecord>,
    done: VecDeque<Done>,
}

impl Pipeline {
    /// Starts the storage worker over `backend` and the verify pool.
    pub(crate) fn new(backend: Arc<dyn Backend>) -> std::io::Result<Pipeline> {
        Ok(Pipeline {
            storage: Storage::new(backend)?,
            verify: VerifyPool::new()?,
            writes: HashMap::new(),
            write_outbox: VecDeque::new(),
            verifying: HashMap::new(),
            verify_outbox: VecDeque::new(),
            gossip_batch: Vec::new(),
            merge_batch: Vec::new(),
            overlay: HashMap::new(),
            done: VecDeque::new(),
        })
    }

    /// Closes the storage queues (see [`crate::storage::Storage::close`]).
    pub(crate) fn close(&mut self) -> crate::storage::Closing {
        self.storage.close()
    }

    /// The store (committed data only; see [`Pipeline::current`]).
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        self.storage.backend()
    }

    /// Writes queued for the store and not committed yet.
    pub(crate) fn queued_writes(&self) -> usize {
        self.storage.queued_writes()
    }

    /// Whether work waits for room in the storage or verification queues.
    pub(crate) fn is_backlogged(&self) -> bool {
        !self.write_outbox.is_empty() || !self.verify_outbox.is_empty()
    }

    /// Whether writes wait for room in the storage queue (a read queued now
    /// would not see them).
    pub(crate) fn writes_waiting(&self) -> bool {
        !self.write_outbox.is_empty()
    }

    // ----- storage -------------------------------------------------------------

    /// Adds a session's `Merge` output to this poll round's batch: the
    /// merges of one round go to the storage worker as one write per group
    /// (the worker commits everything queued in one transaction anyway; this
    /// saves a queue slot, a wake-up and a completion per message). `local`
    /// records (this node's own writes) are readable at once, through the
    /// overlay, until they are committed.
    pub(crate) fn queue_merge(
        &mut self,
        group: &PeerName,
        local: bool,
        records: Vec<SignedRecord>,
    ) {
        if local {
            for record in &records {
                let key = (group.clone(), record.record().id);
                self.overlay.insert(key, record.clone());
            }
        }
        if let Some(last) = self.merge_batch.last_mut()
            && &last.group == group
            && last.local == local
            && last.records.len() < MERGE_BATCH
        {
            last.splits.push(records.len());
            last.records.extend(records);
            return;
        }
        self.merge_batch.push(PendingMerge {
            group: group.clone(),
            local,
            splits: vec![records.len()],
            records,
        });
        let batched: usize = self.merge_batch.iter().map(|m| m.records.len()).sum();
        if batched >= MERGE_BATCH {
            self.flush_merges();
        }
    }

    /// Sends this round's merges to the storage worker (before any other
    /// write, so that the queue keeps the order in which they were asked).
    pub(crate) fn flush_merges(&mut self) {
        for merge in std::mem::take(&mut self.merge_batch) {
            self.queue_write_now(
                Some(WriteOp::Merge(merge.records)),
                WriteFor::Merge {
                    group: merge.group,
                    local: merge.local,
                    splits: merge.splits,
                },
            );
        }
    }

    /// Queues a write (or, with `None`, a barrier) for the storage worker,
    /// after the merges batched so far, keeping it in the outbox while the
    /// worker's queue is full.
    pub(crate) fn queue_write(&mut self, op: Option<WriteOp>, purpose: WriteFor) {
        self.flush_merges();
        self.queue_write_now(op, purpose);
    }

    fn queue_write_now(&mut self, op: Option<WriteOp>, purpose: WriteFor) {
        if !self.write_outbox.is_empty() {
            self.write_outbox.push_back((op, purpose));
            return;
        }
        match self.storage.write(op) {
            Ok(tag) => {
                self.writes.insert(tag, purpose);
            }
            Err(Rejected::Full(op)) => self.write_outbox.push_back((op, purpose)),
            Err(Rejected::Closed(_)) => self.done.push_back(Done::WriteFailed {
                purpose,
                reason: "the storage worker stopped".into(),
            }),
        }
    }

    fn retry_writes(&mut self) {
        while let Some((op, purpose)) = self.write_outbox.pop_front() {
            match self.storage.write(op) {
                Ok(tag) => {
                    self.writes.insert(tag, purpose);
                }
                Err(Rejected::Full(op)) => {
                    self.write_outbox.push_front((op, purpose));
                    return;
                }
                Err(Rejected::Closed(_)) => self.done.push_back(Done::WriteFailed {
                    purpose,
                    reason: "the storage worker stopped".into(),
                }),
            }
        }
    }

    /// Queues a fetch read for a member being served; it runs after every
    /// write queued so far (flush this round's merges first). Returns its
    /// tag, or `None` when the reader's queue is full or gone (busy).
    pub(crate) fn read(&mut self, read: FetchRead) -> Option<u64> {
        self.storage.read(read).ok()
    }

    /// The current copy of a record: a local write still being committed,
    /// else the store's.
    pub(crate) fn current(
        &self,
        group: &PeerName,
        id: &RecordId,
    ) -> Result<Option<SignedRecord>, peergroup_protocol::StoreError> {
        if let Some(record) = self.overlay.get(&(group.clone(), *id)) {
            return Ok(Some(record.clone()));
        }
        self.storage.backend().get(group, id)
    }

    /// Forgets `group`'s uncommitted writes from the overlay (the group is
    /// being deleted; its `ForgetGroup` write follows).
    pub(crate) fn forget_group(&mut self, group: &PeerName) {
        self.overlay.retain(|(g, _), _| g != group);
    }

    /// The local writes of `group` not committed yet, for enumerations.
    pub(crate) fn uncommitted(&self, group: &PeerName) -> impl Iterator<Item = &SignedRecord> {
        self.overlay
            .iter()
            .filter(move |((g, _), _)| g == group)
            .map(|(_, record)| record)
    }

    // ----- verification --------------------------------------------------------

    /// Adds a received gossip envelope to this poll round's verification
    /// batch (sent when it holds a chunk, and at the end of the round).
    pub(crate) fn queue_gossip(&mut self, envelope: Vec<u8>, message: GossipRef) {
        self.gossip_batch.push((envelope, message));
        if self.gossip_batch.len() >= CHUNK {
            self.flush_gossip();
        }
    }

    /// Sends the gossip envelopes batched so far to the verify pool.
    pub(crate) fn flush_gossip(&mut self) {
        if self.gossip_batch.is_empty() {
            return;
        }
        let (envelopes, messages) = std::mem::take(&mut self.gossip_batch).into_iter().unzip();
        self.queue_verify(envelopes, VerifyFor::Gossip(messages));
    }

    /// Queues envelopes for verification; a fetch's chunks wait in the
    /// outbox when the queue is full, gossip is handed back as [`Done::Busy`].
    pub(crate) fn queue_verify(&mut self, envelopes: Vec<Vec<u8>>, purpose: VerifyFor) {
        if !self.verify_outbox.is_empty() {
            match purpose {
                VerifyFor::Gossip(messages) => self.done.push_back(Done::Busy(messages)),
                purpose @ VerifyFor::Fetch { .. } => {
                    self.verify_outbox.push_back((envelopes, purpose))
                }
            }
            return;
        }
        match self.verify.submit(envelopes) {
            Ok(tag) => {
                self.verifying.insert(tag, purpose);
            }
            Err(envelopes) => match purpose {
                VerifyFor::Gossip(messages) => self.done.push_back(Done::Busy(messages)),
                purpose @ VerifyFor::Fetch { .. } => {
                    self.verify_outbox.push_back((envelopes, purpose))
                }
            },
        }
    }

    fn retry_verify(&mut self) {
        while let Some((envelopes, purpose)) = self.verify_outbox.pop_front() {
            match self.verify.submit(envelopes) {
                Ok(tag) => {
                    self.verifying.insert(tag, purpose);
                }
                Err(envelopes) => {
                    self.verify_outbox.push_front((envelopes, purpose));
                    return;
                }
            }
        }
    }

    /// The end of a poll round: what it batched leaves the swarm task.
    pub(crate) fn flush(&mut self) {
        self.flush_gossip();
        self.flush_merges();
    }

    /// The next finished piece of work. Each completion also makes room in
    /// its queue, which the outboxes take at once.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Done> {
        loop {
            if let Some(done) = self.done.pop_front() {
                return Poll::Ready(done);
            }
            if let Poll::Ready(Some(completion)) = self.storage.poll_completion(cx) {
                self.retry_writes();
                match completion {
                    Completion::Written { tag, op, result } => {
                        let Some(purpose) = self.writes.remove(&tag) else {
                            continue;
                        };
                        if let (
                            WriteFor::Merge {
                                group, local: true, ..
                            },
                            Some(WriteOp::Merge(records)),
                        ) = (&purpose, &op)
                        {
                            for record in records {
                                let key = (group.clone(), record.record().id);
                                if self.overlay.get(&key) == Some(record) {
                                    self.overlay.remove(&key);
                                }
                            }
                        }
                        return Poll::Ready(Done::Written {
                            purpose,
                            op,
                            result,
                        });
                    }
                    Completion::Read { tag, result } => {
                        return Poll::Ready(Done::Read { tag, result });
                    }
                }
            }
            if let Poll::Ready(Some(verified)) = self.verify.poll_verified(cx) {
                self.retry_verify();
                let Some(purpose) = self.verifying.remove(&verified.tag) else {
                    continue;
                };
                return Poll::Ready(Done::Verified {
                    purpose,
                    results: verified.results,
                });
            }
            return Poll::Pending;
        }
    }
}

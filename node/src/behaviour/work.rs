//! Work that leaves the swarm task and comes back: writes queued for the
//! storage worker (with an outbox while its queue is full) and their
//! completions, and envelopes queued for the verify pool and their results.

use peergroup_protocol::{Error, PeerName, RecordId, SignedRecord, session::Input};
use std::collections::HashMap;

use super::{Behaviour, Event, GossipRef, OperationError, PendingMerge, VerifyFor, WriteFor};

/// The most records one coalesced merge carries.
const MERGE_BATCH: usize = 1024;
use crate::{
    error::NodeError,
    storage::{Applied, Completion, Rejected, StorageError, WriteOp},
    verify::Verified,
};

impl Behaviour {
    // ----- storage ---------------------------------------------------------------

    /// Adds a session's `Merge` output to this poll round's batch: the
    /// merges of one round go to the storage worker as one write per group
    /// (the worker commits everything queued in one transaction anyway; this
    /// saves a queue slot, a wake-up and a completion per message).
    pub(crate) fn queue_merge(
        &mut self,
        group: &PeerName,
        local: bool,
        records: Vec<SignedRecord>,
    ) {
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
            Err(Rejected::Closed(_)) => self.write_failed(purpose, "the storage worker stopped"),
        }
    }

    pub(super) fn retry_writes(&mut self) {
        while let Some((op, purpose)) = self.write_outbox.pop_front() {
            match self.storage.write(op) {
                Ok(tag) => {
                    self.writes.insert(tag, purpose);
                }
                Err(Rejected::Full(op)) => {
                    self.write_outbox.push_front((op, purpose));
                    return;
                }
                Err(Rejected::Closed(_)) => {
                    self.write_failed(purpose, "the storage worker stopped")
                }
            }
        }
    }

    fn write_failed(&mut self, purpose: WriteFor, reason: &str) {
        tracing::error!(%reason, "a write to the store failed");
        match purpose {
            WriteFor::Barrier(operation) => self.events.push_back(Event::OperationCompleted {
                operation,
                result: Err(OperationError::Store(reason.to_owned())),
            }),
            WriteFor::Merge { .. } | WriteFor::Expire | WriteFor::Other => {
                self.events.push_back(Event::StoreFailed {
                    reason: reason.to_owned(),
                })
            }
        }
    }

    pub(super) fn on_completion(&mut self, completion: Completion) {
        match completion {
            Completion::Written { tag, op, result } => {
                let Some(purpose) = self.writes.remove(&tag) else {
                    return;
                };
                self.on_written(purpose, op, result);
            }
            Completion::Read { tag, result } => self.on_fetch_read(tag, result),
        }
    }

    fn on_written(
        &mut self,
        purpose: WriteFor,
        op: Option<WriteOp>,
        result: Result<Applied, StorageError>,
    ) {
        match (purpose, op, result) {
            (WriteFor::Barrier(operation), _, result) => {
                self.events.push_back(Event::OperationCompleted {
                    operation,
                    result: result
                        .map(|_| ())
                        .map_err(|e| OperationError::Store(e.to_string())),
                });
            }
            (
                WriteFor::Merge {
                    group,
                    local,
                    splits,
                },
                Some(WriteOp::Merge(records)),
                result,
            ) => {
                if local {
                    for record in &records {
                        let key = (group.clone(), record.record().id);
                        if self.overlay.get(&key) == Some(record) {
                            self.overlay.remove(&key);
                        }
                    }
                }
                let failure = result.as_ref().err().map(ToString::to_string);
                if let Some(reason) = &failure {
                    self.write_failed(WriteFor::Other, reason);
                }
                let mut changes = match result {
                    Ok(Applied::Merged(changes)) => changes.into_iter(),
                    _ => Vec::new().into_iter(),
                };
                // One answer per `Merge` output the session asked for.
                let mut records = records.into_iter();
                for size in splits {
                    let part: Vec<SignedRecord> = records.by_ref().take(size).collect();
                    let input = match &failure {
                        Some(reason) => Input::MergeFailed {
                            records: part,
                            reason: reason.clone(),
                        },
                        None => Input::Merged(part.into_iter().zip(changes.by_ref()).collect()),
                    };
                    self.handle(&group, input);
                }
            }
            (WriteFor::Expire, _, Ok(Applied::Expired(outcomes))) => {
                let mut by_group: HashMap<PeerName, Vec<_>> = HashMap::new();
                for merged in outcomes {
                    by_group
                        .entry(merged.group.clone())
                        .or_default()
                        .push(merged);
                }
                for (group, outcomes) in by_group {
                    self.handle(&group, Input::Expired(outcomes));
                }
            }
            (purpose, _, Err(e)) => self.write_failed(purpose, &e.to_string()),
            (WriteFor::Merge { .. } | WriteFor::Expire | WriteFor::Other, _, Ok(_)) => {}
        }
    }

    /// The current copy of a record: a local write still being committed,
    /// else the store's.
    pub(crate) fn current(
        &self,
        group: &PeerName,
        id: &RecordId,
    ) -> Result<Option<SignedRecord>, NodeError> {
        if let Some(record) = self.overlay.get(&(group.clone(), *id)) {
            return Ok(Some(record.clone()));
        }
        Ok(self.storage.backend().get(group, id)?)
    }

    // ----- verification ------------------------------------------------------------

    /// Adds a received gossip envelope to this poll round's verification
    /// batch (sent when it holds a chunk, and at the end of the round).
    pub(crate) fn queue_gossip(&mut self, envelope: Vec<u8>, message: GossipRef) {
        self.gossip_batch.push((envelope, message));
        if self.gossip_batch.len() >= crate::verify::CHUNK {
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

    /// Queues envelopes for verification; a page's chunks wait in the outbox
    /// when the queue is full, gossip messages are ignored (and counted).
    pub(crate) fn queue_verify(&mut self, envelopes: Vec<Vec<u8>>, purpose: VerifyFor) {
        if !self.verify_outbox.is_empty() {
            if let VerifyFor::Gossip(_) = purpose {
                self.verify_busy(purpose);
            } else {
                self.verify_outbox.push_back((envelopes, purpose));
            }
            return;
        }
        match self.verify.submit(envelopes) {
            Ok(tag) => {
                self.verifying.insert(tag, purpose);
            }
            Err(envelopes) => match purpose {
                VerifyFor::Gossip(_) => self.verify_busy(purpose),
                VerifyFor::Fetch { .. } => self.verify_outbox.push_back((envelopes, purpose)),
            },
        }
    }

    fn verify_busy(&mut self, purpose: VerifyFor) {
        if let VerifyFor::Gossip(messages) = purpose {
            for GossipRef {
                source, message, ..
            } in messages
            {
                // Cannot judge now: Ignore, never Reject (style rule 15).
                self.stats.dropped_busy = self.stats.dropped_busy.saturating_add(1);
                self.inner.gossipsub.report_message_validation_result(
                    &message,
                    &source,
                    libp2p::gossipsub::MessageAcceptance::Ignore,
                );
            }
        }
    }

    pub(super) fn retry_verify(&mut self) {
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

    pub(super) fn on_verified(&mut self, verified: Verified) {
        let Some(purpose) = self.verifying.remove(&verified.tag) else {
            return;
        };
        match purpose {
            VerifyFor::Gossip(messages) => {
                let mut results = verified.results.into_iter();
                for GossipRef {
                    group,
                    source,
                    message,
                } in messages
                {
                    let record = results.next().unwrap_or_else(|| {
                        Err(Error::InvalidRecord(
                            "the verify pool returned too few results".into(),
                        ))
                    });
                    self.handle(
                        &group,
                        Input::Record {
                            record,
                            origin: peergroup_protocol::session::Origin::Gossip { source, message },
                        },
                    );
                }
            }
            VerifyFor::Fetch { fetch, index } => {
                self.on_fetch_chunk(fetch, index, verified.results)
            }
        }
    }
}

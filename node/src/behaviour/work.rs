//! Routing the work pipeline's results ([`crate::pipeline::Done`]): merged
//! and expired records to their sessions, verified envelopes to the
//! session (gossip) or to the fetch being assembled, served reads to their
//! requesters, gossip the verify queue had no room for to the verdict path.

use std::collections::HashMap;

use peergroup_protocol::{
    Error, PeerName, SignedRecord,
    session::{Input, Origin},
};

use super::{Behaviour, Event, OperationError};
use crate::{
    pipeline::{Done, GossipRef, VerifyFor, WriteFor},
    storage::{Applied, StorageError, WriteOp},
};

impl Behaviour {
    pub(super) fn on_work_done(&mut self, done: Done) {
        match done {
            Done::Written {
                purpose,
                op,
                result,
            } => self.on_written(purpose, op, result),
            Done::WriteFailed { purpose, reason } => self.write_failed(purpose, &reason),
            Done::Read { tag, result } => self.on_fetch_read(tag, result),
            Done::Verified { purpose, results } => self.on_verified(purpose, results),
            Done::Busy(messages) => {
                for GossipRef {
                    group,
                    source,
                    message,
                } in messages
                {
                    self.stats.dropped_busy = self.stats.dropped_busy.saturating_add(1);
                    self.report_busy(&group, source, &message);
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
            (WriteFor::Merge { group, splits, .. }, Some(WriteOp::Merge(records)), result) => {
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

    fn on_verified(&mut self, purpose: VerifyFor, results: Vec<Result<SignedRecord, Error>>) {
        match purpose {
            VerifyFor::Gossip(messages) => {
                let mut results = results.into_iter();
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
                            origin: Origin::Gossip { source, message },
                        },
                    );
                }
            }
            VerifyFor::Fetch { fetch, index } => {
                if let Some(assembly) = self.sync.chunk_verified(fetch, index, results) {
                    let (group, fetched) = assembly.into_fetched();
                    self.handle(&group, Input::Fetched(fetched));
                }
            }
        }
    }
}

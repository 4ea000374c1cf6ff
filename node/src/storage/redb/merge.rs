//! Merging: one write transaction per batch, and the pipeline that decodes
//! and verifies envelopes on every core while the merge proceeds.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
};

use peergroup_protocol::{Change, Error, Merged, SignedRecord, merge_decision};
use redb::{ReadableTable, Table, WriteTransaction};

use super::{
    AccessError, RedbStore,
    error::Failure,
    read::envelope_hash,
    tables::{
        RECORD_SUMMARIES, RECORDS, RECORDS_BY_EXPIRY, RECORDS_BY_TYPE, Summary, expiry_key,
        expiry_value, record_key, type_key,
    },
    verify::{PARALLEL_MIN, decode, threads},
};

/// Envelopes per unit of pipelined work: about 2 ms of verification, small
/// enough that the merge trails the decoders closely.
const CHUNK: usize = 32;

/// The merge state of one write transaction.
pub(super) struct Merger<'txn> {
    records: Table<'txn, &'static [u8], &'static [u8]>,
    summaries: Table<'txn, &'static [u8], &'static [u8]>,
    by_type: Table<'txn, &'static [u8], u64>,
    by_expiry: Table<'txn, &'static [u8], &'static [u8]>,
}

impl<'txn> Merger<'txn> {
    pub(super) fn new(txn: &'txn WriteTransaction) -> Result<Merger<'txn>, Failure> {
        Ok(Merger {
            records: txn.open_table(RECORDS)?,
            summaries: txn.open_table(RECORD_SUMMARIES)?,
            by_type: txn.open_table(RECORDS_BY_TYPE)?,
            by_expiry: txn.open_table(RECORDS_BY_EXPIRY)?,
        })
    }

    /// Merges one record and returns what happened, as [`merge_decision`]
    /// decides it. The stored copy's summary settles every case but equal
    /// versions, which alone need the stored envelope (the merge order
    /// compares versions first). A record that wins replaces the row and its
    /// summary, and moves its index entries.
    pub(super) fn merge(
        &mut self,
        store: &RedbStore,
        incoming: &SignedRecord,
    ) -> Result<Change, Failure> {
        let r = incoming.record();
        let key = record_key(&r.group, &r.id);
        let stored = match self.summaries.get(key.as_slice())? {
            Some(value) => Some(Summary::decode(value.value()).ok_or_else(|| {
                Failure::Corrupt(format!(
                    "malformed summary of record {} of group {}",
                    r.id, r.group
                ))
            })?),
            None => None,
        };
        let change = match &stored {
            None => merge_decision(None, incoming),
            Some(s) if s.version.version < r.version => {
                if r.is_deleted() {
                    Change::Deleted
                } else {
                    Change::Updated
                }
            }
            Some(s) if s.version.version > r.version => Change::Stale { held: s.version },
            Some(s) => {
                // Equal versions: the rest of the merge order needs the stored
                // copy (which may be one this transaction wrote).
                let Some(bytes) = self.records.get(key.as_slice())? else {
                    return Err(Failure::Corrupt(format!(
                        "record {} of group {} has a summary but no row",
                        r.id, r.group
                    )));
                };
                let summary = s.encode();
                let copy =
                    store.decode_record(bytes.value(), Some(&summary), r.group.as_str(), &r.id)?;
                merge_decision(Some(&copy), incoming)
            }
        };
        if change.is_stale() {
            return Ok(change);
        }
        if let Some(old) = &stored {
            self.by_type
                .remove(type_key(&r.group, &old.record_type, &r.id).as_slice())?;
            self.by_expiry
                .remove(expiry_key(old.expires_at, &r.group, &r.id).as_slice())?;
        }
        let summary = Summary::of(r, envelope_hash(incoming.as_bytes()));
        self.records.insert(key.as_slice(), incoming.as_bytes())?;
        self.summaries
            .insert(key.as_slice(), summary.encode().as_slice())?;
        self.by_type.insert(
            type_key(&r.group, &r.record_type, &r.id).as_slice(),
            r.expires_at.as_millis(),
        )?;
        self.by_expiry.insert(
            expiry_key(r.expires_at.as_millis(), &r.group, &r.id).as_slice(),
            expiry_value(&r.record_type, r.is_deleted()).as_slice(),
        )?;
        Ok(change)
    }

    /// Merges the valid records of a decoded chunk, appending each
    /// envelope's outcome (or refusal) to `out`.
    fn merge_decoded(
        &mut self,
        store: &RedbStore,
        decoded: Vec<Result<SignedRecord, Error>>,
        out: &mut Vec<Result<Merged, Error>>,
    ) -> Result<(), Failure> {
        for result in decoded {
            out.push(match result {
                Ok(record) => {
                    let change = self.merge(store, &record)?;
                    Ok(merged_of(&record, change))
                }
                Err(error) => Err(error),
            });
        }
        Ok(())
    }
}

/// A [`Merged`] for `record` with `change`.
pub(super) fn merged_of(record: &SignedRecord, change: Change) -> Merged {
    let r = record.record();
    Merged {
        group: r.group.clone(),
        id: r.id,
        record_type: r.record_type,
        change,
    }
}

impl RedbStore {
    /// Merges a batch in one durable transaction (see
    /// [`Store::merge`](peergroup_protocol::Store::merge)): [`merge_decision`]
    /// decides each record in input order, the type and expiry indexes change
    /// in the same transaction, and the outcomes come in input order.
    pub fn merge_records(&self, batch: Vec<SignedRecord>) -> Result<Vec<Merged>, AccessError> {
        let result = (|| -> Result<Vec<Merged>, Failure> {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            let txn = self.begin_write()?;
            let mut outcomes = Vec::with_capacity(batch.len());
            {
                let mut merger = Merger::new(&txn)?;
                for record in &batch {
                    let change = merger.merge(self, record)?;
                    outcomes.push(merged_of(record, change));
                }
            }
            self.commit(txn)?;
            Ok(outcomes)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Decodes, verifies and merges `envelopes` in one durable transaction:
    /// the node's merge pipeline. Returns, in input order, each envelope's
    /// outcome or why it was refused; the error is the store's alone.
    ///
    /// Each envelope gets the exact [`SignedRecord::from_bytes`] check. With
    /// more than one core, chunks of [`CHUNK`] envelopes are decoded by
    /// worker threads and by this thread, which merges each chunk as soon as
    /// it and all before it are decoded, so that verification (most of the
    /// work) runs on every core and overlaps the merge; then one commit.
    pub fn merge_envelopes(
        &self,
        envelopes: &[&[u8]],
    ) -> Result<Vec<Result<Merged, Error>>, AccessError> {
        let result = (|| -> Result<Vec<Result<Merged, Error>>, Failure> {
            let mut out = Vec::with_capacity(envelopes.len());
            if envelopes.is_empty() {
                return Ok(out);
            }
            let txn = self.begin_write()?;
            {
                let mut merger = Merger::new(&txn)?;
                let workers = threads().saturating_sub(1);
                if envelopes.len() < PARALLEL_MIN || workers == 0 {
                    merger.merge_decoded(self, decode(envelopes), &mut out)?;
                } else {
                    self.pipeline(&mut merger, envelopes, workers, &mut out)?;
                }
            }
            self.commit(txn)?;
            Ok(out)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    fn pipeline(
        &self,
        merger: &mut Merger<'_>,
        envelopes: &[&[u8]],
        workers: usize,
        out: &mut Vec<Result<Merged, Error>>,
    ) -> Result<(), Failure> {
        let chunks: Vec<&[&[u8]]> = envelopes.chunks(CHUNK).collect();
        let next = AtomicUsize::new(0);
        // Room for every chunk, so a worker never blocks on a slow merge.
        let (tx, rx) = mpsc::sync_channel(chunks.len());
        thread::scope(|scope| {
            for _ in 0..workers {
                let (tx, next, chunks) = (tx.clone(), &next, &chunks);
                // A thread the OS refuses leaves its share to the others.
                let _ =
                    thread::Builder::new()
                        .name("decode".into())
                        .spawn_scoped(scope, move || {
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(chunk) = chunks.get(i) else { return };
                                if tx.send((i, decode(chunk))).is_err() {
                                    return;
                                }
                            }
                        });
            }
            drop(tx);
            let mut ready = BTreeMap::new();
            let mut merged = 0;
            while merged < chunks.len() {
                while let Ok((i, decoded)) = rx.try_recv() {
                    ready.insert(i, decoded);
                }
                if let Some(decoded) = ready.remove(&merged) {
                    merger.merge_decoded(self, decoded, out)?;
                    merged = merged.saturating_add(1);
                    continue;
                }
                // The next chunk to merge is still being decoded: decode
                // another meanwhile, or wait for the workers.
                let i = next.fetch_add(1, Ordering::Relaxed);
                if let Some(chunk) = chunks.get(i) {
                    ready.insert(i, decode(chunk));
                } else if let Ok((i, decoded)) = rx.recv() {
                    ready.insert(i, decoded);
                } else {
                    // Every worker is gone (one panicked; the scope re-raises
                    // it): decode what is missing here.
                    for (i, chunk) in chunks.iter().enumerate().skip(merged) {
                        ready.entry(i).or_insert_with(|| decode(chunk));
                    }
                }
            }
            Ok(())
        })
    }
}

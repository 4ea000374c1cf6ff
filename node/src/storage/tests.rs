//! The storage worker's tests: ordering, group commit, read-after-write,
//! failures, backpressure and closing.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::{
    sync::{Condvar, Mutex},
    task::Context,
};

use futures::task::noop_waker_ref;
use peergroup_protocol::{
    Change, Digest, Identity, ReadStore, RecordType, SignedRecord,
    session::{GroupState, Version},
    testing::{T0, add, group_of, identity},
};

use super::*;

/// A backend that counts transactions, can hold the writer inside
/// `apply` until released, and can fail every transaction.
#[derive(Debug, Default)]
struct Probe {
    inner: MemoryBackend,
    applies: Mutex<Vec<usize>>,
    hold: Mutex<bool>,
    released: Condvar,
    fail: Mutex<bool>,
}

impl Probe {
    fn release(&self) {
        *self.hold.lock().unwrap() = false;
        self.released.notify_all();
    }
}

impl ReadStore for Probe {
    fn get(&self, group: &PeerName, id: &RecordId) -> Result<Option<SignedRecord>, StoreError> {
        self.inner.get(group, id)
    }
    fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<SignedRecord>, StoreError> {
        self.inner.records(group, record_type, after, limit)
    }
    fn digest(&self, group: &PeerName) -> Result<Digest, StoreError> {
        self.inner.digest(group)
    }
}

impl Backend for Probe {
    fn apply(&self, ops: &[WriteOp]) -> Result<Vec<Applied>, StoreError> {
        self.applies.lock().unwrap().push(ops.len());
        let mut held = self.hold.lock().unwrap();
        while *held {
            held = self.released.wait(held).unwrap();
        }
        drop(held);
        if *self.fail.lock().unwrap() {
            return Err(StoreError::Corrupt("the disk is on fire".into()));
        }
        self.inner.apply(ops)
    }
    fn envelopes_of(
        &self,
        group: &PeerName,
        ids: &[RecordId],
        max_bytes: usize,
    ) -> Result<RawRecords, StoreError> {
        self.inner.envelopes_of(group, ids, max_bytes)
    }
    fn versions(&self, group: &PeerName) -> Result<Vec<(RecordId, Version)>, StoreError> {
        self.inner.versions(group)
    }
    fn identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.inner.identities()
    }
    fn groups(&self) -> Result<Vec<GroupState>, StoreError> {
        self.inner.groups()
    }
    fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError> {
        self.inner.known_peers()
    }
    fn clock_offset(&self) -> Result<Option<i64>, StoreError> {
        self.inner.clock_offset()
    }
}

/// Waits (blocking) for the next completion.
fn next(storage: &mut Storage) -> Completion {
    let mut cx = Context::from_waker(noop_waker_ref());
    loop {
        if let Poll::Ready(Some(c)) = storage.poll_completion(&mut cx) {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn records(n: u64) -> Vec<SignedRecord> {
    let alice = identity(1, "alice");
    let group = group_of(&alice, "g");
    (0..n)
        .map(|i| add(&alice, &group, i, b"x", T0, 3600))
        .collect()
}

/// A fetch is read only once the writes queued before it are
/// committed: a member announces records as soon as it accepts them, and
/// a fetch that overtook the commit found nothing (issue 15).
#[test]
fn a_read_waits_for_the_writes_queued_before_it() {
    let probe = Arc::new(Probe::default());
    *probe.hold.lock().unwrap() = true;
    let mut storage = Storage::new(probe.clone()).unwrap();
    let batch = records(3);
    let group = group_of(&identity(1, "alice"), "g");
    storage.write(Some(WriteOp::Merge(batch.clone()))).unwrap();
    // The writer is inside the transaction, which holds the records.
    while probe.applies.lock().unwrap().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let read = storage
        .read(FetchRead {
            group,
            ids: batch.iter().map(|r| r.record().id).collect(),
            max_bytes: usize::MAX,
        })
        .unwrap();
    // Give a reader that did not wait the time to answer too early.
    std::thread::sleep(std::time::Duration::from_millis(30));
    probe.release();
    let mut served = None;
    for _ in 0..2 {
        if let Completion::Read { tag, result } = next(&mut storage) {
            assert_eq!(tag, read);
            served = Some(result.unwrap());
        }
    }
    let served = served.unwrap();
    assert_eq!(served.considered, 3);
    assert_eq!(served.envelopes.len(), 3);
}

#[test]
fn queued_writes_share_one_transaction_and_complete_in_order() {
    let probe = Arc::new(Probe::default());
    *probe.hold.lock().unwrap() = true;
    let mut storage = Storage::new(probe.clone()).unwrap();
    let batch = records(50);
    let mut tags = Vec::new();
    for (i, record) in batch.iter().enumerate() {
        if i == 1 {
            // Wait until the writer is inside the first transaction.
            while probe.applies.lock().unwrap().is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        tags.push(
            storage
                .write(Some(WriteOp::Merge(vec![record.clone()])))
                .unwrap(),
        );
    }
    let barrier = storage.write(None).unwrap();
    // The writer holds the first write in its transaction meanwhile.
    probe.release();
    let mut done = Vec::new();
    for _ in 0..51 {
        match next(&mut storage) {
            Completion::Written { tag, op, result } => {
                if tag == barrier {
                    assert!(op.is_none());
                } else {
                    assert_eq!(
                        result.unwrap(),
                        Applied::Merged(vec![Change::Added]),
                        "each write gets its own outcome"
                    );
                    assert!(matches!(op, Some(WriteOp::Merge(r)) if r.len() == 1));
                }
                done.push(tag);
            }
            Completion::Read { .. } => panic!("no read was asked"),
        }
    }
    tags.push(barrier);
    assert_eq!(done, tags, "completions come in queue order");
    let applies = probe.applies.lock().unwrap().clone();
    assert_eq!(
        applies,
        vec![1, 49],
        "the first write, then everything queued meanwhile in one transaction"
    );
}

#[test]
fn a_failed_transaction_fails_every_write_in_it_and_the_barrier() {
    let probe = Arc::new(Probe::default());
    *probe.fail.lock().unwrap() = true;
    *probe.hold.lock().unwrap() = true;
    let mut storage = Storage::new(probe.clone()).unwrap();
    let batch = records(2);
    storage
        .write(Some(WriteOp::Merge(vec![batch[0].clone()])))
        .unwrap();
    storage
        .write(Some(WriteOp::Merge(vec![batch[1].clone()])))
        .unwrap();
    storage.write(None).unwrap();
    probe.release();
    for _ in 0..3 {
        match next(&mut storage) {
            Completion::Written { result, .. } => {
                let e = result.unwrap_err();
                assert!(e.to_string().contains("on fire"), "{e}");
            }
            Completion::Read { .. } => panic!("no read was asked"),
        }
    }
    assert!(
        probe
            .inner
            .versions(&batch[0].record().group)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_full_queue_hands_the_write_back() {
    let probe = Arc::new(Probe::default());
    *probe.hold.lock().unwrap() = true;
    let mut storage = Storage::new(probe.clone()).unwrap();
    let expire = || {
        Some(WriteOp::Expire {
            now: T0,
            keep: Vec::new(),
        })
    };
    // One write, and wait until the writer is stuck applying it.
    storage.write(expire()).unwrap();
    while probe.applies.lock().unwrap().is_empty() {
        std::thread::yield_now();
    }
    // The queue takes WRITE_QUEUE more; the next is handed back.
    let mut accepted = 0;
    let mut rejected = None;
    for _ in 0..=WRITE_QUEUE {
        match storage.write(expire()) {
            Ok(_) => accepted += 1,
            Err(e) => {
                rejected = Some(e);
                break;
            }
        }
    }
    // Released before asserting: a failed assertion must not leave the
    // writer stuck (dropping the storage waits for it).
    probe.release();
    assert_eq!(accepted, WRITE_QUEUE);
    assert!(
        matches!(rejected, Some(Rejected::Full(Some(WriteOp::Expire { .. })))),
        "{rejected:?}"
    );
}

#[test]
fn closing_the_storage_commits_what_is_queued_and_releases_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let batch = records(300);
    {
        let store = Arc::new(RedbStore::open_in_dir(dir.path()).unwrap());
        let mut storage = Storage::new(store).unwrap();
        for chunk in batch.chunks(10) {
            storage.write(Some(WriteOp::Merge(chunk.to_vec()))).unwrap();
        }
        storage.close().wait();
    }
    let store = RedbStore::open_in_dir(dir.path()).unwrap();
    assert_eq!(store.verify_records().unwrap(), 300);
    let group = batch[0].record().group.clone();
    assert_eq!(
        store.list_records(&group, None, None, 1000).unwrap().len(),
        300
    );
}

#[test]
fn fetches_are_read_beside_the_writer() {
    let probe = Arc::new(Probe::default());
    let batch = records(5);
    probe.inner.apply(&[WriteOp::Merge(batch.clone())]).unwrap();
    *probe.hold.lock().unwrap() = true;
    let mut storage = Storage::new(probe.clone()).unwrap();
    // A read waits only for the writes queued before it: one queued
    // first completes while a later write holds the writer.
    let group = batch[0].record().group.clone();
    let ids: Vec<_> = batch.iter().take(3).map(|r| r.record().id).collect();
    let tag = storage
        .read(FetchRead {
            group,
            ids,
            max_bytes: 1 << 20,
        })
        .unwrap();
    storage
        .write(Some(WriteOp::Expire {
            now: T0,
            keep: Vec::new(),
        }))
        .unwrap();
    while probe.applies.lock().unwrap().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    match next(&mut storage) {
        Completion::Read { tag: t, result } => {
            assert_eq!(t, tag);
            let read = result.unwrap();
            assert_eq!(read.envelopes.len(), 3);
            assert_eq!(read.considered, 3);
        }
        Completion::Written { .. } => panic!("the writer is held"),
    }
    probe.release();
}

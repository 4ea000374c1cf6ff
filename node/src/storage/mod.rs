//! Storage off the swarm task: a [`Backend`] (redb with a data directory,
//! memory without), a writer thread that group-commits queued writes, and a
//! reader thread that serves synchronization pages.
//!
//! - Writes ([`WriteOp`]) go into a bounded queue ([`WRITE_QUEUE`]); the
//!   writer takes everything queued (up to [`MAX_BATCH_RECORDS`] records) and
//!   applies it in **one durable transaction**, then reports each write's
//!   outcome in order. A barrier (a write of nothing) completes once every
//!   write queued before it is durable: that is how a caller learns that its
//!   write "returned Ok" durably.
//! - Page reads go into their own bounded queue ([`READ_QUEUE`]) and run on
//!   the reader thread beside the writer (redb runs reads beside a write).
//!   A read starts only once every write queued before it is committed: the
//!   session announces a record in reconciliation as soon as it accepts it,
//!   so a fetch that follows must find it in the store (read your writes,
//!   across members).
//! - Other reads (get, enumerate, digest) run on whatever thread asks, through
//!   [`Storage::backend`]: the node answers them on blocking threads.
//! - Completions come back through one bounded channel that the behaviour
//!   polls; the threads wait when it is full (backpressure on storage, never
//!   on the swarm). A full queue is reported to the submitter, which keeps
//!   the job and stops reading the network until there is room.
//!
//! On drop, the queues close and the threads finish what is queued (every
//! write queued is committed) on their own: dropping never blocks.
//! [`Storage::close`] hands over the threads for whoever must wait for
//! that (the node, on shutdown, on a blocking thread).

mod backend;
mod redb;

use std::{
    sync::{
        Arc, Condvar, Mutex,
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    task::{Context, Poll},
    thread::JoinHandle,
};

use peergroup_protocol::{PeerName, RecordId, StoreError};
use tokio::sync::mpsc as async_mpsc;

pub use self::{
    backend::{Applied, Backend, KnownPeer, MemoryBackend, WriteOp},
    redb::{AccessError, FILE_NAME, OpenError, RawRecords, RedbStore, decode_records},
};

/// How many writes may wait for the writer. Each carries up to a page of
/// records (512); 256 of them is far more than one commit takes.
pub const WRITE_QUEUE: usize = 256;

/// How many page reads may wait for the reader.
pub const READ_QUEUE: usize = 64;

/// How many completions may wait for the behaviour before the threads wait.
pub const DONE_QUEUE: usize = 1024;

/// The most records the writer puts in one transaction; more queued records
/// wait for the next commit.
pub const MAX_BATCH_RECORDS: usize = 8192;

/// A read of the envelopes of some records, to serve a synchronization fetch.
#[derive(Debug, Clone)]
pub struct FetchRead {
    /// The group.
    pub group: PeerName,
    /// The records, in the order to send them.
    pub ids: Vec<RecordId>,
    /// At most about this many envelope bytes (at least one record).
    pub max_bytes: usize,
}

/// A storage failure, shared by every write of the transaction that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct StorageError(Arc<StoreError>);

impl StorageError {
    /// The store's error.
    pub fn store_error(&self) -> &StoreError {
        &self.0
    }
}

impl From<StoreError> for StorageError {
    fn from(e: StoreError) -> StorageError {
        StorageError(Arc::new(e))
    }
}

/// What the threads report.
#[derive(Debug)]
pub enum Completion {
    /// A write (or, with `op: None`, a barrier) is durable, or failed.
    Written {
        /// The tag [`Storage::write`] returned.
        tag: u64,
        /// The write itself, handed back (records included).
        op: Option<WriteOp>,
        /// What it did.
        result: Result<Applied, StorageError>,
    },
    /// A fetch read finished.
    Read {
        /// The tag [`Storage::read`] returned.
        tag: u64,
        /// The envelopes.
        result: Result<RawRecords, StorageError>,
    },
}

struct WriteJob {
    tag: u64,
    op: Option<WriteOp>,
    /// A barrier carries no op; the flag survives the writer taking the op out.
    barrier: bool,
}

struct ReadJob {
    tag: u64,
    /// The tag of the last write queued before it: the read waits until
    /// that write is committed.
    after: u64,
    read: FetchRead,
}

/// The tag of the last write the writer finished (committed or failed),
/// for reads to wait on; `u64::MAX` once the writer is gone.
#[derive(Debug, Default)]
struct Committed {
    tag: Mutex<u64>,
    changed: Condvar,
}

impl Committed {
    fn set(&self, tag: u64) {
        let mut current = self.tag.lock().unwrap_or_else(|e| e.into_inner());
        *current = (*current).max(tag);
        self.changed.notify_all();
    }

    /// Waits until the write tagged `tag` is finished.
    fn wait_for(&self, tag: u64) {
        let mut current = self.tag.lock().unwrap_or_else(|e| e.into_inner());
        while *current < tag {
            current = self
                .changed
                .wait(current)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Marks the writer gone when its thread ends, however it ends, so that no
/// read waits for it forever.
struct WriterGone(Arc<Committed>);

impl Drop for WriterGone {
    fn drop(&mut self) {
        self.0.set(u64::MAX);
    }
}

/// The storage handle: the shared backend, the two queues, and the
/// completions. See the module docs.
pub struct Storage {
    backend: Arc<dyn Backend>,
    writes: Option<SyncSender<WriteJob>>,
    reads: Option<SyncSender<ReadJob>>,
    done: async_mpsc::Receiver<Completion>,
    threads: Vec<JoinHandle<()>>,
    next_tag: u64,
    /// The tag of the last write queued.
    last_write: u64,
    /// Writes queued and not completed yet (for the queue-depth metric).
    queued_writes: usize,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Why a job was not queued.
#[derive(Debug)]
pub enum Rejected<T> {
    /// The queue is full: try again after a completion.
    Full(T),
    /// The storage threads are gone.
    Closed(T),
}

impl Storage {
    /// Starts the writer and reader threads over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> std::io::Result<Storage> {
        let (writes, write_rx) = mpsc::sync_channel(WRITE_QUEUE);
        let (reads, read_rx) = mpsc::sync_channel(READ_QUEUE);
        let (done_tx, done) = async_mpsc::channel(DONE_QUEUE);
        let committed = Arc::new(Committed::default());
        let writer = {
            let (backend, done) = (backend.clone(), done_tx.clone());
            let gone = WriterGone(committed.clone());
            std::thread::Builder::new()
                .name("peergroup-writer".into())
                .spawn(move || {
                    write_loop(&*backend, &write_rx, &done, &gone.0);
                    drop(gone);
                })?
        };
        let reader = {
            let backend = backend.clone();
            std::thread::Builder::new()
                .name("peergroup-reader".into())
                .spawn(move || read_loop(&*backend, &read_rx, &done_tx, &committed))?
        };
        Ok(Storage {
            backend,
            writes: Some(writes),
            reads: Some(reads),
            done,
            threads: vec![writer, reader],
            next_tag: 0,
            last_write: 0,
            queued_writes: 0,
        })
    }

    /// Writes queued (or being committed) and not completed yet.
    pub fn queued_writes(&self) -> usize {
        self.queued_writes
    }

    /// The backend, for reads on the caller's thread.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    fn tag(&mut self) -> u64 {
        self.next_tag = self.next_tag.wrapping_add(1);
        self.next_tag
    }

    /// Queues a write (`None`: a barrier); returns its tag, or the write back
    /// when the queue is full or the writer is gone.
    pub fn write(&mut self, op: Option<WriteOp>) -> Result<u64, Rejected<Option<WriteOp>>> {
        let tag = self.tag();
        let Some(writes) = &self.writes else {
            return Err(Rejected::Closed(op));
        };
        let barrier = op.is_none();
        match writes.try_send(WriteJob { tag, op, barrier }) {
            Ok(()) => {
                self.queued_writes = self.queued_writes.saturating_add(1);
                self.last_write = tag;
                Ok(tag)
            }
            Err(TrySendError::Full(job)) => Err(Rejected::Full(job.op)),
            Err(TrySendError::Disconnected(job)) => Err(Rejected::Closed(job.op)),
        }
    }

    /// Queues a fetch read, to run once every write queued before it is
    /// committed; returns its tag, or the read back.
    pub fn read(&mut self, read: FetchRead) -> Result<u64, Rejected<FetchRead>> {
        let tag = self.tag();
        let Some(reads) = &self.reads else {
            return Err(Rejected::Closed(read));
        };
        let after = self.last_write;
        match reads.try_send(ReadJob { tag, after, read }) {
            Ok(()) => Ok(tag),
            Err(TrySendError::Full(job)) => Err(Rejected::Full(job.read)),
            Err(TrySendError::Disconnected(job)) => Err(Rejected::Closed(job.read)),
        }
    }

    /// The next completion, if one is ready (registers the waker otherwise).
    pub fn poll_completion(&mut self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        let completion = self.done.poll_recv(cx);
        if let Poll::Ready(Some(Completion::Written { .. })) = &completion {
            self.queued_writes = self.queued_writes.saturating_sub(1);
        }
        completion
    }
}

impl Storage {
    /// Closes the queues and hands over the threads: [`Closing::wait`]
    /// returns once every queued write is committed and the store released
    /// (its file closed, if no one else holds the backend). Call `wait` on a
    /// thread that may block.
    pub fn close(&mut self) -> Closing {
        self.writes = None;
        self.reads = None;
        self.done.close();
        Closing(std::mem::take(&mut self.threads))
    }
}

/// The storage threads of a closed [`Storage`]. See [`Storage::close`].
#[derive(Debug)]
#[must_use = "wait() is what waits for the queued writes"]
pub struct Closing(Vec<JoinHandle<()>>);

impl Closing {
    /// Blocks until the storage threads ended: every write queued before
    /// [`Storage::close`] is committed (or failed).
    pub fn wait(self) {
        for thread in self.0 {
            let _ = thread.join();
        }
    }
}

impl Drop for Storage {
    /// Closes the queues without waiting: the writer still commits every
    /// queued write before it stops, on its own thread. Dropping never
    /// blocks (a behaviour dropped on an async task must not wait for a
    /// commit); whoever needs the writes durable and the file released
    /// first calls [`Storage::close`] and waits.
    fn drop(&mut self) {
        drop(self.close());
    }
}

/// The writer: one transaction for everything queued, then the completions.
fn write_loop(
    backend: &dyn Backend,
    jobs: &Receiver<WriteJob>,
    done: &async_mpsc::Sender<Completion>,
    committed: &Committed,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        let mut records = batch.first().map_or(0, job_records);
        while records < MAX_BATCH_RECORDS {
            match jobs.try_recv() {
                Ok(job) => {
                    records = records.saturating_add(job_records(&job));
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let ops: Vec<WriteOp> = batch.iter_mut().filter_map(|j| j.op.take()).collect();
        let result = if ops.is_empty() {
            Ok(Vec::new())
        } else {
            backend.apply(&ops).map_err(StorageError::from)
        };
        // Reads waiting for these writes may run now (before the
        // completions go out: the behaviour may be slow to take them).
        if let Some(last) = batch.iter().map(|j| j.tag).max() {
            committed.set(last);
        }
        let mut ops = ops.into_iter();
        let mut applied = match &result {
            Ok(applied) => applied.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        for job in batch {
            // Barriers carry no op: they only report that everything queued
            // before them is durable (or that this transaction failed).
            let is_barrier = job.barrier;
            let op = if is_barrier { None } else { ops.next() };
            let outcome = match &result {
                Ok(_) if is_barrier => Ok(Applied::Done),
                Ok(_) => Ok(applied.next().unwrap_or(Applied::Done)),
                Err(e) => Err(e.clone()),
            };
            // After the behaviour is gone the writer keeps committing what is
            // queued; the completions have nobody to go to.
            let _ = done.blocking_send(Completion::Written {
                tag: job.tag,
                op,
                result: outcome,
            });
        }
    }
}

fn job_records(job: &WriteJob) -> usize {
    match &job.op {
        Some(WriteOp::Merge(records)) => records.len(),
        _ => 1,
    }
}

/// The reader: page reads, one at a time.
fn read_loop(
    backend: &dyn Backend,
    jobs: &Receiver<ReadJob>,
    done: &async_mpsc::Sender<Completion>,
    committed: &Committed,
) {
    while let Ok(ReadJob { tag, after, read }) = jobs.recv() {
        committed.wait_for(after);
        let result = backend
            .envelopes_of(&read.group, &read.ids, read.max_bytes)
            .map_err(StorageError::from);
        if done
            .blocking_send(Completion::Read { tag, result })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
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
}

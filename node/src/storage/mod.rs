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
mod tests;

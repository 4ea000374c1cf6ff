//! The verify pool: record envelopes are decoded and their signatures
//! checked on worker threads (one per core), never on the swarm task.
//!
//! A job is a list of envelopes (one gossip message, or a chunk of a
//! synchronization page); its result is each envelope's
//! [`SignedRecord::from_bytes`] outcome, in order: the exact single-envelope
//! check, so that what a batch accepts is exactly what one-by-one decoding
//! accepts (ed25519 batch verification is not used: its equation can accept
//! signatures `verify_strict` refuses, and replicas would disagree).
//!
//! The job queue is bounded ([`VERIFY_QUEUE`]); a full queue is reported to
//! the submitter (gossip: the message is ignored and counted; a page: kept
//! and retried). Results come back through a bounded channel.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc, Mutex,
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    task::{Context, Poll},
    thread::JoinHandle,
};

use peergroup_protocol::{Error, SignedRecord};
use tokio::sync::mpsc as async_mpsc;

/// How many jobs may wait for a worker.
pub(crate) const VERIFY_QUEUE: usize = 4096;

/// How many finished jobs may wait for the behaviour before workers wait.
const DONE_QUEUE: usize = 4096;

/// Envelopes per job when a page is split: about 2 ms of work.
pub(crate) const CHUNK: usize = 32;

struct Job {
    tag: u64,
    envelopes: Vec<Vec<u8>>,
}

/// A finished job.
#[derive(Debug)]
pub(crate) struct Verified {
    /// The job's tag.
    pub(crate) tag: u64,
    /// Each envelope's outcome, in order.
    pub(crate) results: Vec<Result<SignedRecord, Error>>,
}

/// The pool. See the module docs.
pub(crate) struct VerifyPool {
    jobs: Option<SyncSender<Job>>,
    done: async_mpsc::Receiver<Verified>,
    threads: Vec<JoinHandle<()>>,
    next_tag: u64,
}

impl std::fmt::Debug for VerifyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPool")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl VerifyPool {
    /// Starts one worker per core the OS grants this process.
    pub(crate) fn new() -> std::io::Result<VerifyPool> {
        let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let (jobs, rx) = mpsc::sync_channel(VERIFY_QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let (done_tx, done) = async_mpsc::channel(DONE_QUEUE);
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (rx, done) = (rx.clone(), done_tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("peergroup-verify-{i}"))
                    .spawn(move || work(&rx, &done))?,
            );
        }
        Ok(VerifyPool {
            jobs: Some(jobs),
            done,
            threads,
            next_tag: 0,
        })
    }

    /// Queues `envelopes`; returns the job's tag, or the envelopes back when
    /// the queue is full (or the workers are gone).
    pub(crate) fn submit(&mut self, envelopes: Vec<Vec<u8>>) -> Result<u64, Vec<Vec<u8>>> {
        self.next_tag = self.next_tag.wrapping_add(1);
        let tag = self.next_tag;
        let Some(jobs) = &self.jobs else {
            return Err(envelopes);
        };
        match jobs.try_send(Job { tag, envelopes }) {
            Ok(()) => Ok(tag),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(job.envelopes),
        }
    }

    /// The next finished job, if one is ready (registers the waker otherwise).
    pub(crate) fn poll_verified(&mut self, cx: &mut Context<'_>) -> Poll<Option<Verified>> {
        self.done.poll_recv(cx)
    }
}

impl Drop for VerifyPool {
    /// Closes the queue; the threads end on their own once their job is
    /// done (nothing waits for them: dropping never blocks).
    fn drop(&mut self) {
        self.jobs = None;
        self.done.close();
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, done: &async_mpsc::Sender<Verified>) {
    loop {
        // The lock is held only while waiting for the next job.
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let results = job
            .envelopes
            .iter()
            .map(|e| SignedRecord::from_bytes(e))
            .collect();
        if done
            .blocking_send(Verified {
                tag: job.tag,
                results,
            })
            .is_err()
        {
            return;
        }
    }
}

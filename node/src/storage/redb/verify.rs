//! Decoding and verifying envelopes on every core before a merge.

use std::{num::NonZeroUsize, sync::OnceLock, thread};

use peergroup_protocol::{Error, SignedRecord};

/// Batches smaller than this are decoded on the calling thread: starting a
/// thread costs about as much as verifying a few signatures.
pub(super) const PARALLEL_MIN: usize = 64;

/// Decodes and verifies each envelope, on this thread.
pub(super) fn decode(envelopes: &[&[u8]]) -> Vec<Result<SignedRecord, Error>> {
    envelopes
        .iter()
        .map(|e| SignedRecord::from_bytes(e))
        .collect()
}

/// How many threads may decode: the cores the OS grants this process, asked
/// once (on Linux the answer reads cgroup files).
pub(super) fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// Decodes and verifies each envelope with [`SignedRecord::from_bytes`]
/// (bounded canonical decode, structural checks, `verify_strict`), using every
/// core the OS grants this process. Returns the results in input order.
///
/// This is the exact single-envelope check, split over threads: a batch
/// accepts precisely what one-by-one decoding accepts. (ed25519 batch
/// verification would be cheaper per signature, but its cofactorless batch
/// equation can accept, with some probability, signatures that
/// `verify_strict` rejects, which would let replicas disagree on what they
/// store.)
pub fn decode_records(envelopes: &[&[u8]]) -> Vec<Result<SignedRecord, Error>> {
    let threads = threads();
    if envelopes.len() < PARALLEL_MIN || threads < 2 {
        return decode(envelopes);
    }
    let chunk = envelopes.len().div_ceil(threads);
    thread::scope(|scope| {
        let mut chunks = envelopes.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let workers: Vec<_> = chunks
            .map(|c| {
                // A thread the OS refuses is work done on this thread instead.
                thread::Builder::new()
                    .name("decode".into())
                    .spawn_scoped(scope, move || decode(c))
                    .map_err(|_| c)
            })
            .collect();
        let mut out = decode(first);
        for worker in workers {
            match worker {
                Ok(handle) => match handle.join() {
                    Ok(done) => out.extend(done),
                    // `from_bytes` does not panic; if it ever did, re-raise it here.
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(chunk) => out.extend(decode(chunk)),
            }
        }
        out
    })
}

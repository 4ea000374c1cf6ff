//! The merge pipeline's throughput: pre-signed record envelopes (256 bytes of
//! data each) decoded, verified and merged into a redb store on disk with
//! durable commits, in batches of 1 and of 1,000, beside the raw ed25519
//! `verify_strict` rate measured in the same run.
//!
//! Run: `cargo bench -p peergroup-node --bench merge`. Throughput is reported
//! in elements (records) per second; `BENCHMARKS.md` has the figures.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peergroup_node::store::RedbStore;
use peergroup_protocol::{
    Kind, SignedRecord, Store, encode,
    testing::{T0, add, group_of, identity, rid},
};
use tempfile::TempDir;

/// Distinct pre-signed envelopes; a store that has merged them all is
/// replaced by a fresh one (untimed), so every merge adds new records.
const POOL: u64 = 20_000;

fn pool() -> Vec<Vec<u8>> {
    let alice = identity(1, "alice");
    let group = group_of(&alice, "bench");
    (0..POOL)
        .map(|n| {
            let data: Vec<u8> = (0..256u64).map(|i| (n ^ i) as u8).collect();
            add(&alice, &group, rid(n), &data, T0, 3600)
                .as_bytes()
                .to_vec()
        })
        .collect()
}

/// A store in a fresh temporary directory on disk.
fn fresh_store() -> (TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("bench.redb")).unwrap();
    (dir, store)
}

/// Times merging `iters` batches of `batch` envelopes with `merge`.
fn merge_batches(
    envelopes: &[&[u8]],
    batch: usize,
    iters: u64,
    merge: impl Fn(&mut RedbStore, &[&[u8]]) -> usize,
) -> Duration {
    let (mut dir, mut store) = fresh_store();
    let mut cursor = 0;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if cursor + batch > envelopes.len() {
            drop(store);
            (dir, store) = fresh_store();
            cursor = 0;
        }
        let slice = &envelopes[cursor..cursor + batch];
        let start = Instant::now();
        let added = merge(&mut store, slice);
        total += start.elapsed();
        assert_eq!(added, batch, "every envelope is new and valid");
        cursor += batch;
    }
    drop((store, dir));
    total
}

/// The pipeline the node runs: decode and verify on every core, then one
/// durable transaction.
fn pipeline(store: &mut RedbStore, envelopes: &[&[u8]]) -> usize {
    let outcomes = store.merge_envelopes(envelopes).unwrap();
    black_box(&outcomes);
    outcomes.iter().filter(|o| o.is_ok()).count()
}

/// The same on one core: `SignedRecord::from_bytes` one by one, then merge.
fn one_core(store: &mut RedbStore, envelopes: &[&[u8]]) -> usize {
    let records: Vec<SignedRecord> = envelopes
        .iter()
        .map(|e| SignedRecord::from_bytes(e).unwrap())
        .collect();
    store.merge(records).unwrap().len()
}

fn benches(c: &mut Criterion) {
    let pool = pool();
    let envelopes: Vec<&[u8]> = pool.iter().map(Vec::as_slice).collect();

    // One `verify_strict` of one record envelope's signature (message = the
    // record domain tag and the body, exactly what `from_bytes` verifies).
    let record = SignedRecord::from_bytes(envelopes[0]).unwrap();
    let body = encode(record.record()).unwrap();
    let domain = Kind::Record.domain().as_bytes();
    let mut message = vec![domain.len() as u8];
    message.extend_from_slice(domain);
    message.extend_from_slice(&body);
    let mut verify = c.benchmark_group("ed25519_verify_strict");
    verify.throughput(Throughput::Elements(1));
    verify.bench_function("one_envelope", |b| {
        b.iter(|| {
            record
                .signer_key()
                .verify(black_box(&message), black_box(record.signature()))
                .unwrap()
        })
    });
    verify.finish();

    let mut merge = c.benchmark_group("merge");
    merge.sample_size(20);
    merge.measurement_time(Duration::from_secs(15));
    for batch in [1usize, 1000] {
        merge.throughput(Throughput::Elements(batch as u64));
        merge.bench_function(format!("batch_{batch}"), |b| {
            b.iter_custom(|iters| merge_batches(&envelopes, batch, iters, pipeline))
        });
    }
    merge.throughput(Throughput::Elements(1000));
    merge.bench_function("batch_1000_one_core", |b| {
        b.iter_custom(|iters| merge_batches(&envelopes, 1000, iters, one_core))
    });
    merge.finish();
}

criterion_group!(merge, benches);
criterion_main!(merge);

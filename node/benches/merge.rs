//! The merge pipeline's throughput: pre-signed record envelopes (256 bytes of
//! data each) decoded, verified and merged into a redb store on disk with
//! durable commits, in batches of 1 and of 1,000, beside the raw ed25519
//! `verify_strict` rate measured in the same run.
//!
//! Run: `cargo bench -p peergroup-node --bench merge`. Throughput is reported
//! in elements (records) per second; a last pass prints the merge/verify ratio
//! measured in alternation (see [`interleaved`]). `BENCHMARKS.md` has the figures.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput};
use peergroup_node::storage::RedbStore;
use peergroup_protocol::{
    Kind, SignedRecord, Store, encode,
    testing::{T0, add, group_of, identity},
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
            add(&alice, &group, n, &data, T0, 3600).as_bytes().to_vec()
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

fn benches(c: &mut Criterion, envelopes: &[&[u8]]) {
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
            b.iter_custom(|iters| merge_batches(envelopes, batch, iters, pipeline))
        });
    }
    merge.throughput(Throughput::Elements(1000));
    merge.bench_function("batch_1000_one_core", |b| {
        b.iter_custom(|iters| merge_batches(envelopes, 1000, iters, one_core))
    });
    merge.finish();
}

/// Rounds of the interleaved comparison (each merges 1,000 of the [`POOL`]).
const ROUNDS: usize = 20;

/// The ratio measured so that both sides see the same machine: each round
/// times 1,000 raw `verify_strict` calls on one thread, then one pipelined
/// merge of 1,000 new envelopes. On a shared machine, load that comes and goes
/// during criterion's sequential groups skews their ratio; alternating does not.
fn interleaved(envelopes: &[&[u8]]) {
    let records: Vec<(SignedRecord, Vec<u8>)> = envelopes[..1000]
        .iter()
        .map(|e| {
            let record = SignedRecord::from_bytes(e).unwrap();
            let domain = Kind::Record.domain().as_bytes();
            let mut message = vec![domain.len() as u8];
            message.extend_from_slice(domain);
            message.extend_from_slice(&encode(record.record()).unwrap());
            (record, message)
        })
        .collect();
    // One store for all rounds, growing to 20,000 records as criterion's do.
    let (_dir, mut store) = fresh_store();
    let (mut verify, mut merge) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        let start = Instant::now();
        for (record, message) in &records {
            record
                .signer_key()
                .verify(black_box(message), black_box(record.signature()))
                .unwrap();
        }
        verify += start.elapsed();
        let batch = &envelopes[round * 1000..(round + 1) * 1000];
        let start = Instant::now();
        let added = pipeline(&mut store, batch);
        merge += start.elapsed();
        assert_eq!(added, 1000);
    }
    let n = (ROUNDS * 1000) as f64;
    let (verify_rate, merge_rate) = (n / verify.as_secs_f64(), n / merge.as_secs_f64());
    println!(
        "interleaved, {ROUNDS} rounds of 1,000: verify_strict {verify_rate:.0}/s on one core, \
         merge/batch_1000 {merge_rate:.0} records/s, ratio {:.2}",
        merge_rate / verify_rate
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let pool = pool();
    let envelopes: Vec<&[u8]> = pool.iter().map(Vec::as_slice).collect();
    benches(&mut criterion, &envelopes);
    // Not in criterion's test or list modes (`cargo test --benches`).
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        interleaved(&envelopes);
    }
    criterion.final_summary();
}

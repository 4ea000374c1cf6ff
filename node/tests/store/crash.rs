//! Crash safety under SIGKILL.
//!
//! The test binary runs itself as the child (`crash_child`, which does nothing
//! unless [`CHILD_ENV`] is set). The child opens the store, merges a
//! deterministic sequence of records in batches of 1 to [`MAX_BATCH`], and
//! prints `ack N` for each record N after the `merge` that committed it returned:
//! a printed number is an *acknowledged* record. The parent waits for a random
//! number of acknowledgements, waits a further random 0-20 ms, kills the child
//! with SIGKILL (`Child::kill`), and reopens the store. Every round checks:
//!
//! 1. the file opens without error;
//! 2. every acknowledged record is present, byte for byte;
//! 3. the rule for records that are present but were not acknowledged: they
//!    can only be the batch whose commit completed while its numbers were not
//!    yet printed, so they must be records of the sequence numbered
//!    `A + 1 ..= A + MAX_BATCH`, where `A` is the highest acknowledged number
//!    (`0 ..= MAX_BATCH - 1` before any acknowledgement);
//! 4. the store's digest equals that of a `MemoryStore` fed the acknowledged
//!    records plus those present-but-unacknowledged ones, and every stored
//!    record decodes, verifies and is indexed.
//!
//! Each round's child starts at `A + 1`, so a committed-but-unacknowledged
//! batch is merged again (as stale) and acknowledged then.

use std::{
    collections::{BTreeSet, HashMap},
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use peergroup_node::storage::RedbStore;
use peergroup_protocol::{
    Identity, MemoryStore, PeerName, ReadStore, SignedRecord, Store,
    testing::{T0, add, group_of, identity, rid},
};

use crate::temp_path;

/// Set in the child's environment: the store path.
const CHILD_ENV: &str = "PEERGROUP_CRASH_CHILD_STORE";
/// Set in the child's environment: the first record number to merge.
const START_ENV: &str = "PEERGROUP_CRASH_CHILD_START";
/// Set by a developer to replay a failing run's kill schedule.
const SEED_ENV: &str = "PEERGROUP_CRASH_SEED";
/// Kill-and-reopen rounds.
const ROUNDS: usize = 24;
/// The largest batch the child merges.
const MAX_BATCH: u64 = 7;
/// How long the parent waits for one acknowledgement before declaring the
/// child stuck (a watchdog, not a performance bound).
const STUCK: Duration = Duration::from_secs(120);

/// The deterministic record sequence both processes sign.
struct Sequence {
    author: Identity,
    group: PeerName,
    cache: HashMap<u64, SignedRecord>,
}

impl Sequence {
    fn new() -> Sequence {
        let author = identity(1, "alice");
        let group = group_of(&author, "crash");
        Sequence {
            author,
            group,
            cache: HashMap::new(),
        }
    }

    /// Record `n`: 256 bytes of data derived from `n` (ed25519 signing is
    /// deterministic, so both processes get the same envelope).
    fn record(&mut self, n: u64) -> SignedRecord {
        let (author, group) = (&self.author, &self.group);
        self.cache
            .entry(n)
            .or_insert_with(|| {
                let data: Vec<u8> = (0..256u64)
                    .map(|i| (n.wrapping_mul(31).wrapping_add(i) % 251) as u8)
                    .collect();
                add(author, group, n, &data, T0, 30 * 24 * 3600)
            })
            .clone()
    }
}

/// The batch that starts at record `start` has this many records.
fn batch_len(start: u64) -> u64 {
    1 + start % MAX_BATCH
}

/// The child: merges from `START_ENV` on, forever, printing each record's
/// number once its batch's `merge` returned. Returns at once in a normal run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let mut sequence = Sequence::new();
    let mut store = RedbStore::open(&path).unwrap();
    let mut out = std::io::stdout().lock();
    // libtest has printed `test crash::crash_child ... ` without a newline.
    writeln!(out).unwrap();
    let mut next = start;
    loop {
        let end = next + batch_len(next);
        let batch = (next..end).map(|n| sequence.record(n)).collect();
        store.merge(batch).unwrap();
        // One write per line (stdout is line-buffered; pipe writes this small
        // are atomic), so the parent never sees half a number.
        for n in next..end {
            writeln!(out, "ack {n}").unwrap();
        }
        out.flush().unwrap();
        next = end;
    }
}

/// xorshift64*: a tiny seeded PRNG for the kill schedule.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Runs one child from `start` until it acknowledged `wait_for` records, then
/// `linger` longer, then SIGKILLs it. Returns the numbers it acknowledged.
fn run_child(path: &Path, log: &Path, start: u64, wait_for: u64, linger: Duration) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, path)
        .env(START_ENV, start.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Bounded: the reader blocks (and so the child) if the parent lags.
    let (tx, rx) = mpsc::sync_channel::<u64>(4096);
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // Only complete `ack N` lines count, not the harness's own lines.
            let Some(text) = line.strip_suffix(b"\n") else {
                return;
            };
            if let Some(n) = text
                .strip_prefix(b"ack ")
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse().ok())
                && tx.send(n).is_err()
            {
                return;
            }
        }
    });
    let mut acknowledged = Vec::new();
    while (acknowledged.len() as u64) < wait_for {
        match rx.recv_timeout(STUCK) {
            Ok(n) => acknowledged.push(n),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!(
                    "the child stopped acknowledging ({e:?}, status {status}): {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
    std::thread::sleep(linger);
    child.kill().unwrap();
    child.wait().unwrap();
    // After the kill the pipe closes and the reader ends: collect the rest.
    acknowledged.extend(rx.iter());
    reader.join().unwrap();
    acknowledged
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let (dir, path) = temp_path();
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng(seed);
    let mut sequence = Sequence::new();
    let group = sequence.group.clone();
    let mut acknowledged: BTreeSet<u64> = BTreeSet::new();
    let mut in_flight_found = 0;

    for round in 0..ROUNDS {
        let start = acknowledged.last().map_or(0, |a| a + 1);
        // Round 0 may kill during the very first open and migration.
        let wait_for = if round == 0 { 0 } else { rng.below(60) };
        let linger = Duration::from_millis(rng.below(21));
        let log = dir.path().join(format!("child-{round}.log"));
        let acked = run_child(&path, &log, start, wait_for, linger);
        let context = format!("round {round}, seed {seed}");
        for (i, n) in acked.iter().enumerate() {
            assert_eq!(
                *n,
                start + i as u64,
                "acknowledgements in order ({context})"
            );
        }
        acknowledged.extend(acked);

        // 1. The file opens.
        let store = RedbStore::open(&path)
            .unwrap_or_else(|e| panic!("reopen after SIGKILL failed ({context}): {e}"));

        // 2. Every acknowledged record is there, byte for byte.
        for &n in &acknowledged {
            let stored = store.get(&group, &rid(&sequence.author, n)).unwrap();
            assert!(
                stored.as_ref() == Some(&sequence.record(n)),
                "acknowledged record {n} is missing or different ({context})"
            );
        }

        // 3. Present but unacknowledged: only the batch in flight at the kill.
        let highest = acknowledged.last().copied();
        let window =
            highest.map_or(0, |a| a + 1)..=highest.map_or(MAX_BATCH - 1, |a| a + MAX_BATCH);
        let stored = store.records(&group, None, None, usize::MAX).unwrap();
        let mut expected = MemoryStore::new();
        for record in &stored {
            let n = u64::from_be_bytes(record.record().id.nonce());
            assert_eq!(
                record.record().id,
                rid(&sequence.author, n),
                "a record of the sequence ({context})"
            );
            if !acknowledged.contains(&n) {
                assert!(
                    window.contains(&n),
                    "unacknowledged record {n} outside the in-flight window {window:?} ({context})"
                );
                assert!(
                    *record == sequence.record(n),
                    "record {n} intact ({context})"
                );
                expected.merge(vec![record.clone()]).unwrap();
                in_flight_found += 1;
            }
        }

        // 4. Same digest as a MemoryStore fed the same records; all verify.
        let acked_records: Vec<SignedRecord> =
            acknowledged.iter().map(|&n| sequence.record(n)).collect();
        expected.merge(acked_records).unwrap();
        assert_eq!(
            store.digest(&group).unwrap(),
            expected.digest(&group).unwrap(),
            "digest ({context})"
        );
        assert_eq!(
            store.verify_records().unwrap(),
            expected.len() as u64,
            "every record verifies and is indexed ({context})"
        );
    }
    eprintln!(
        "crash test: {ROUNDS} kills, {} records acknowledged, {in_flight_found} committed \
         but unacknowledged records found",
        acknowledged.len()
    );
    assert!(
        !acknowledged.is_empty(),
        "the children acknowledged records (seed {seed})"
    );
}

//! Memory benchmark: a node's resident memory as its store grows.
//!
//! One node in this process (a data directory in a temporary directory,
//! loopback, mDNS and Kademlia off) creates an identity and a group, connects
//! it, and adds records (160 bytes of data each, about what `record add`
//! stores) as fast as its `Handle` accepts them, with 64 calls in flight. Its
//! events are read and dropped, as `peergroup run` does. At each checkpoint
//! (0, 10,000, 20,000, 40,000 and 100,000 records, then 200,000, 400,000,
//! 700,000, 1,000,000 and every million up to N) it prints one JSON line: the
//! records added, the process's resident memory (`VmRSS`, and its anonymous
//! part `RssAnon`: the heap, not file pages), the peak (`VmHWM`), the store
//! file's size, and the add rate since the previous checkpoint.
//!
//! ```sh
//! cargo run --release --example memory              # up to 100,000
//! cargo run --release --example memory -- 1000000   # up to 1,000,000
//! ```
//!
//! With `--enumerate` it then reads every record back through the `Handle`
//! twice (`Handle::records`, one request each) and prints how long each read
//! took and the resident memory after it.
//!
//! `MALLOC_ARENA_MAX=1` in the environment takes glibc's per-thread arenas
//! (memory freed but kept by the allocator) out of the figure.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use peergroup::{
    node::{Config, Node, storage::FILE_NAME},
    protocol::{GroupSpec, NewRecord, RecordType, Timestamp},
};

const BENCH: RecordType = RecordType::from_u128(0x6265_6e63_6800_4000_8000_0000_0000_0003);
/// API calls in flight.
const IN_FLIGHT: usize = 64;
/// Bytes of data per record.
const DATA_LEN: usize = 160;
/// Checkpoints before N (N itself is always one).
const CHECKPOINTS: &[usize] = &[
    0, 10_000, 20_000, 40_000, 100_000, 200_000, 400_000, 700_000, 1_000_000,
];

/// `key: value kB` lines of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn checkpoint(records: usize, dir: &Path, since: &mut (usize, Instant)) {
    let file = std::fs::metadata(dir.join(FILE_NAME)).map_or(0, |m| m.len());
    let rate = (records - since.0) as f64 / since.1.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{{\"records\":{records},\"rss_kb\":{},\"rss_anon_kb\":{},\"hwm_kb\":{},\"file_bytes\":{file},\"records_per_s\":{rate:.0}}}",
        status_kb("VmRSS"),
        status_kb("RssAnon"),
        status_kb("VmHWM"),
    );
    *since = (records, Instant::now());
}

fn main() -> Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let enumerate = args.iter().any(|a| a == "--enumerate");
    args.retain(|a| a != "--enumerate");
    let n: usize = args
        .first()
        .map_or("100000", String::as_str)
        .parse()
        .context("N must be a number")?;
    // The current-thread runtime, as `peergroup run` uses.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(n, enumerate))
}

async fn run(n: usize, enumerate: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config::builder()
        .listen(["/ip4/127.0.0.1/tcp/0".parse()?])
        .mdns(false)
        .kademlia(false)
        .data_dir(dir.path())
        .build()?;
    let (handle, mut events) = Node::spawn(config).await?;
    // Read and drop every event, as `peergroup run` does (it logs them at debug).
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let me = handle
        .create_identity("memory", "")
        .await?
        .payload()
        .peer_name
        .clone();
    let group = handle.create_group(GroupSpec::new(&me, "memory")).await?;
    handle.connect(&group).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut checkpoints: Vec<usize> = CHECKPOINTS.iter().copied().filter(|&c| c < n).collect();
    checkpoints.extend((2..).map(|m| m * 1_000_000).take_while(|&c| c < n));
    checkpoints.push(n);
    let mut since = (0, Instant::now());
    let next = Arc::new(AtomicUsize::new(0));
    for &target in &checkpoints {
        let mut tasks = Vec::new();
        for _ in 0..IN_FLIGHT {
            let (handle, group, next) = (handle.clone(), group.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= target {
                        return Ok::<(), peergroup::node::Error>(());
                    }
                    handle.add_record(&group, record(i)).await?;
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        // Numbers drawn past the target are drawn again for the next one.
        next.store(target, Ordering::Relaxed);
        checkpoint(target, dir.path(), &mut since);
    }
    for pass in (1..=2).filter(|_| enumerate) {
        let start = Instant::now();
        let records = handle.records(&group, Some(BENCH)).await?;
        println!(
            "{{\"enumeration\":{pass},\"records\":{},\"seconds\":{:.3},\"rss_kb\":{}}}",
            records.len(),
            start.elapsed().as_secs_f64(),
            status_kb("VmRSS"),
        );
    }
    handle.shutdown().await?;
    Ok(())
}

/// Record `i`: text like `record add --data` stores, padded to [`DATA_LEN`].
fn record(i: usize) -> NewRecord {
    let mut data = format!("memory benchmark record {i} ").into_bytes();
    data.resize(DATA_LEN, b'.');
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let expires = Timestamp::from_millis(now).saturating_add_secs(30 * 24 * 3600);
    NewRecord::new(BENCH, expires).with_data(data)
}

//! Does reading a large database stall the network? Two members, each node
//! on its own thread and current-thread runtime (as in separate processes):
//! A keeps a data directory holding N records (default 100,000), B joins.
//! A gossip round trip is timed from A's `add_record` of a ping to A's event
//! for B's pong (B adds the pong when its ping event arrives): 200 round
//! trips while A is idle, then 200 while A enumerates its whole database in
//! a loop through its `Handle` (each enumeration reads N records). Before
//! issue 8 the enumeration ran on the swarm task, with a signature check per
//! record, and stopped the node's networking for seconds.
//!
//! `cargo run --release --example stall -- 100000`

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow};
use peergroup::{
    node::{Config, Event, EventFilter, GroupEvent, GroupEventKind, Handle, Node, RecordChange},
    protocol::{GroupSpec, IDENTITY_TEXT_PREFIX, NewRecord, PeerName, RecordType, Role, Timestamp},
};

const DATA: RecordType = RecordType::from_u128(0x6265_6e63_6800_4000_8000_0000_0000_0003);
const PING: RecordType = RecordType::from_u128(0x6265_6e63_6800_4000_8000_0000_0000_0004);
const PONG: RecordType = RecordType::from_u128(0x6265_6e63_6800_4000_8000_0000_0000_0005);
const SAMPLES: usize = 200;

fn config(dir: Option<&std::path::Path>) -> Result<Config> {
    let mut builder = Config::builder()
        .listen(["/ip4/127.0.0.1/tcp/0".parse()?])
        .mdns(false)
        .kademlia(false)
        .heartbeat(Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(600));
    if let Some(dir) = dir {
        builder = builder.data_dir(dir);
    }
    Ok(builder.build()?)
}

/// Starts a node on its own thread and runtime; returns its handle.
fn spawn_node(config: Config) -> Result<Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(anyhow!(e)));
                return;
            }
        };
        runtime.block_on(async move {
            match Node::spawn(config).await {
                Ok((handle, mut events)) => {
                    let _ = tx.send(Ok(handle));
                    // Keep the runtime (and the node) alive until it stops.
                    while events.recv().await.is_some() {}
                }
                Err(e) => {
                    let _ = tx.send(Err(anyhow!(e)));
                }
            }
        });
    });
    rx.recv()?
}

fn expires() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Timestamp::from_millis(ms).saturating_add_secs(24 * 3600)
}

/// Round trips: A adds a ping; B answers with a pong; time until A sees it.
async fn round_trips(a: &Handle, group: &PeerName, samples: usize) -> Result<Vec<f64>> {
    let mut pongs =
        a.subscribe(EventFilter::kinds([GroupEventKind::RecordChanged]).with_record_type(PONG));
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        a.add_record(group, NewRecord::new(PING, expires())).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), pongs.recv()).await {
                Ok(Some(Ok(Event::Group(GroupEvent::RecordChanged {
                    change: RecordChange::Added,
                    ..
                })))) => break,
                Ok(Some(_)) => {}
                Ok(None) => return Err(anyhow!("node A stopped")),
                Err(_) => return Err(anyhow!("no pong within 30 s")),
            }
        }
        out.push(start.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "100000".into())
        .parse()
        .context("N must be a number")?;
    let dir = tempfile::tempdir()?;
    let a = spawn_node(config(Some(dir.path()))?)?;
    let b = spawn_node(config(None)?)?;

    let me = a
        .create_identity("a", "")
        .await?
        .payload()
        .peer_name
        .clone();
    let group = a.create_group(GroupSpec::new(&me, "stall")).await?;
    a.connect(&group).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let (a, group) = (a.clone(), group.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                let data = vec![(i % 251) as u8; 256];
                a.add_record(&group, NewRecord::new(DATA, expires()).with_data(data))
                    .await?;
                i += 64;
            }
            Ok::<(), peergroup::node::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!(
        "A: {n} records stored in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let info = b.create_identity("b", "").await?;
    let invitation = a
        .create_invitation(
            &group,
            &info.to_text(IDENTITY_TEXT_PREFIX),
            Role::Member,
            None,
        )
        .await?;
    b.join(&info.payload().peer_name, &invitation).await?;
    let start = Instant::now();
    b.connect_by_address(&group, a.listen_addrs().await?)
        .await?;
    eprintln!(
        "B: joined (copied {n} records) in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // B answers every ping with a pong.
    let responder = {
        let (b, group) = (b.clone(), group.clone());
        let mut pings =
            b.subscribe(EventFilter::kinds([GroupEventKind::RecordChanged]).with_record_type(PING));
        tokio::spawn(async move {
            while let Some(event) = pings.recv().await {
                if let Ok(Event::Group(GroupEvent::RecordChanged {
                    change: RecordChange::Added,
                    ..
                })) = event
                {
                    let _ = b.add_record(&group, NewRecord::new(PONG, expires())).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    let idle = round_trips(&a, &group, SAMPLES).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let enumerations = Arc::new(AtomicU64::new(0));
    let enumerating_ms = Arc::new(AtomicU64::new(0));
    let reader = {
        let (a, group) = (a.clone(), group.clone());
        let (stop, enumerations, ms) = (stop.clone(), enumerations.clone(), enumerating_ms.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let records = a.records(&group, Some(DATA)).await?;
                ms.fetch_add(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                enumerations.fetch_add(1, Ordering::Relaxed);
                if records.len() != n {
                    return Err(anyhow!("enumerated {} records, not {n}", records.len()));
                }
            }
            Ok::<(), anyhow::Error>(())
        })
    };
    // Let the first enumeration start.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let loaded = round_trips(&a, &group, SAMPLES).await?;
    stop.store(true, Ordering::Relaxed);
    reader.await??;
    responder.abort();
    let count = enumerations.load(Ordering::Relaxed);
    let per_enumeration = enumerating_ms.load(Ordering::Relaxed) as f64 / count.max(1) as f64;
    println!(
        "{{\"n\":{n},\"idle_rtt_ms\":{{\"p50\":{:.2},\"p99\":{:.2},\"max\":{:.2}}},\"enumerating_rtt_ms\":{{\"p50\":{:.2},\"p99\":{:.2},\"max\":{:.2}}},\"enumerations\":{count},\"ms_per_enumeration\":{per_enumeration:.0}}}",
        pct(&idle, 0.5),
        pct(&idle, 0.99),
        pct(&idle, 1.0),
        pct(&loaded, 0.5),
        pct(&loaded, 0.99),
        pct(&loaded, 1.0),
    );
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}

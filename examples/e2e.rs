//! End-to-end propagation benchmark: 3 nodes as separate OS processes on loopback.
//!
//! The coordinator process runs the publishing node; it starts two receiver
//! processes (this same program with `receiver`), invites them, waits until
//! both have joined and are neighbours, then adds N records with 256 bytes of
//! data each, as fast as the API accepts them (8 calls in flight). Each
//! receiver counts the `RecordChanged` events of those records and measures
//! put-to-remote-event latency from the publish time stamped into each
//! record's data (all processes share the host clock). Output: one JSON
//! object with the publisher's rate and each receiver's figures.
//!
//! `cargo run --release --example e2e -- 20000` (flat out), or
//! `cargo run --release --example e2e -- 5000 1000` to publish at 1,000
//! records/s, which shows the latency without queueing. `--data-dirs` gives
//! every node a data directory (a redb file on disk) instead of memory.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow, bail};
use peergroup::{
    node::{Config, Event, EventFilter, GroupEvent, GroupEventKind, Handle, Node, RecordChange},
    protocol::{GroupSpec, IDENTITY_TEXT_PREFIX, NewRecord, RecordType, Role, Timestamp},
};

const BENCH: RecordType = RecordType::from_u128(0x6265_6e63_6800_4000_8000_0000_0000_0001);
/// API calls in flight when publishing flat out (`--in-flight N` to change).
const IN_FLIGHT: usize = 8;

fn nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A benchmark record: the publish time (8 bytes) then `padding`.
fn bench_record(padding: &[u8]) -> NewRecord {
    let mut data = nanos().to_be_bytes().to_vec();
    data.extend_from_slice(padding);
    let expires = Timestamp::from_millis(nanos() / 1_000_000).saturating_add_secs(3600);
    NewRecord::new(BENCH, expires).with_data(data)
}

/// A node's configuration; with `data_dir`, it keeps its data there.
fn config(data_dir: Option<&std::path::Path>) -> Result<Config> {
    let mut builder = Config::builder()
        .listen(["/ip4/127.0.0.1/tcp/0".parse()?])
        .mdns(false)
        .kademlia(false)
        .heartbeat(Duration::from_millis(200));
    if let Some(dir) = data_dir {
        builder = builder.data_dir(dir);
    }
    Ok(builder.build()?)
}

fn main() -> Result<()> {
    // Silent unless RUST_LOG asks for logs.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args: Vec<String> = std::env::args().collect();
    let data_dirs = args.iter().any(|a| a == "--data-dirs");
    args.retain(|a| a != "--data-dirs");
    let in_flight = match args.iter().position(|a| a == "--in-flight") {
        Some(i) => {
            let n = args
                .get(i + 1)
                .context("--in-flight takes a number")?
                .parse()?;
            args.drain(i..i + 2);
            n
        }
        None => IN_FLIGHT,
    };
    let dir = tempfile::tempdir()?;
    let data_dir = data_dirs.then_some(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.get(1).map(String::as_str) {
        Some("receiver") => runtime.block_on(receiver(data_dir)),
        n => {
            let n: usize = n.unwrap_or("20000").parse().context("N must be a number")?;
            let rate: Option<u64> = args
                .get(2)
                .map(|r| r.parse())
                .transpose()
                .context("rate must be a number")?;
            runtime.block_on(coordinator(n, rate, data_dir, in_flight))
        }
    }
}

async fn coordinator(
    n: usize,
    rate: Option<u64>,
    data_dir: Option<&std::path::Path>,
    in_flight: usize,
) -> Result<()> {
    let (handle, _events) = Node::spawn(config(data_dir)?).await?;
    let me = handle
        .create_identity("publisher", "")
        .await?
        .payload()
        .peer_name
        .clone();
    let group = handle.create_group(GroupSpec::new(&me, "bench")).await?;
    handle.connect(&group).await?;
    let addr = handle
        .listen_addrs()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no address"))?;

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..2 {
        let mut child = Command::new(&exe)
            .arg("receiver")
            .args(data_dir.map(|_| "--data-dirs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines =
            BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?).lines();
        let identity = lines.next().ok_or_else(|| anyhow!("receiver died"))??;
        let invitation = handle
            .create_invitation(&group, identity.trim(), Role::Member, None)
            .await?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        writeln!(stdin, "{invitation} {addr} {n}")?;
        children.push((child, lines, stdin));
    }
    // Child pipes are read on a blocking thread: the node's event loop shares
    // this (current-thread) runtime and must keep running meanwhile.
    let mut waiting = Vec::new();
    for (child, mut lines, stdin) in children {
        waiting.push(tokio::task::spawn_blocking(move || {
            let ready = lines.next().ok_or_else(|| anyhow!("receiver died"))??;
            if ready.trim() != "READY" {
                bail!("unexpected receiver line {ready:?}");
            }
            Ok((child, lines, stdin))
        }));
    }
    let mut children = Vec::new();
    for w in waiting {
        children.push(w.await??);
    }
    wait_for_neighbours(&handle, &group, 2).await?;
    // Let the gossip mesh settle.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let padding = vec![0x42u8; 256 - 8];
    let start = Instant::now();
    let handle = Arc::new(handle);
    let mut tasks = Vec::new();
    let publishers = if rate.is_some() { 1 } else { in_flight };
    let mut ticks = rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_nanos(1_000_000_000 / r.max(1)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    if let Some(ticks) = ticks.as_mut() {
        for _ in 0..n {
            ticks.tick().await;
            handle.add_record(&group, bench_record(&padding)).await?;
        }
    }
    for t in (0..publishers).filter(|_| rate.is_none()) {
        let (handle, group, padding) = (handle.clone(), group.clone(), padding.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                handle.add_record(&group, bench_record(&padding)).await?;
                i += in_flight;
            }
            Ok::<(), peergroup::node::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let publish_s = start.elapsed().as_secs_f64();

    let mut results = Vec::new();
    for (mut child, mut lines, _) in children {
        let line = tokio::task::spawn_blocking(move || {
            let line = lines.next().ok_or_else(|| anyhow!("receiver died"))??;
            child.wait()?;
            Ok::<String, anyhow::Error>(line)
        })
        .await??;
        results.push(line);
    }
    println!(
        "{{\"n\":{n},\"data_dirs\":{},\"rate\":{},\"publisher\":{{\"seconds\":{publish_s:.3},\"puts_per_s\":{:.0}}},\"receivers\":[{}]}}",
        data_dir.is_some(),
        rate.map_or("null".to_owned(), |r| r.to_string()),
        n as f64 / publish_s,
        results.join(",")
    );
    Ok(())
}

async fn wait_for_neighbours(
    handle: &Handle,
    group: &peergroup::protocol::PeerName,
    want: usize,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.connections(group).await?.len() < want {
        if Instant::now() > deadline {
            bail!("the receivers did not become neighbours within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn receiver(data_dir: Option<&std::path::Path>) -> Result<()> {
    let (handle, _events) = Node::spawn(config(data_dir)?).await?;
    let info = handle.create_identity("receiver", "").await?;
    println!("{}", info.to_text(IDENTITY_TEXT_PREFIX));
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (invitation, addr, n) = match (parts.next(), parts.next(), parts.next()) {
        (Some(i), Some(a), Some(n)) => (i.to_owned(), a.parse()?, n.parse::<usize>()?),
        _ => bail!("expected `<invitation> <address> <n>`"),
    };
    let group = handle.join(&info.payload().peer_name, &invitation).await?;
    let mut events = handle
        .subscribe(EventFilter::kinds([GroupEventKind::RecordChanged]).with_record_type(BENCH));
    handle.connect_by_address(&group, vec![addr]).await?;
    println!("READY");
    std::io::stdout().flush()?;

    let mut latencies_us = Vec::with_capacity(n);
    let mut first = None;
    let mut last = Instant::now();
    let mut missed = 0u64;
    let idle = Duration::from_secs(20);
    while latencies_us.len() < n {
        let event = match tokio::time::timeout(idle, events.recv()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(m))) => {
                missed += m.0;
                continue;
            }
            Ok(None) => break,
            Err(_) => {
                eprintln!("receiver: idle for {idle:?}, stopping");
                break;
            }
        };
        let Event::Group(GroupEvent::RecordChanged {
            id,
            change: RecordChange::Added,
            ..
        }) = event
        else {
            continue;
        };
        let received = nanos();
        last = Instant::now();
        first.get_or_insert(last);
        let record = handle.get_record(&group, id).await?;
        let sent = record
            .data
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes);
        if let Some(sent) = sent {
            latencies_us.push(received.saturating_sub(sent) / 1000);
        }
    }
    let count = latencies_us.len();
    let seconds = first
        .map(|f| last.duration_since(f).as_secs_f64())
        .unwrap_or(0.0);
    latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
        latencies_us[i.min(latencies_us.len() - 1)] as f64 / 1000.0
    };
    println!(
        "{{\"received\":{count},\"missed_events\":{missed},\"seconds\":{seconds:.3},\"merged_per_s\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        },
        pct(0.50),
        pct(0.99)
    );
    std::io::stdout().flush()?;
    handle.shutdown().await?;
    Ok(())
}

//! Join benchmark: how long a new member takes to copy a group of N records
//! (256 bytes of data each), against the time to verify and commit the same
//! envelopes locally in the same run.
//!
//! The creator runs in a child process (this program with `creator`): it
//! makes the group, adds N records through its `Handle` and waits. The parent
//! is the joiner: it is invited, joins, and times `connect_by_address` (the
//! first synchronization: reconciliation, then fetches verified on every core and group-committed),
//! printing progress lines as records arrive. Then, in the same process, it
//! times the baseline: the same envelopes (read back from its store)
//! decoded, verified and merged into a fresh store in batches of 1,000
//! (`RedbStore::merge_envelopes`, multi-core), and prints the ratio.
//!
//! With `--resync` it then measures a re-synchronization after 1 %
//! divergence: the joiner goes offline (closes the group), the creator adds
//! N/200 records and updates N/200 others, the joiner connects again and
//! times until every change arrived. The joiner reaches the creator through
//! a counting TCP proxy in this process, so both runs report the bytes that
//! crossed the connection (both directions, everything: Noise, Yamux,
//! authentication, reconciliation, fetches, gossip).
//!
//! ```sh
//! cargo run --release --example join -- 100000              # memory stores
//! cargo run --release --example join -- 100000 --data-dirs  # a data directory on each node
//! cargo run --release --example join -- 100000 --data-dirs --resync
//! ```

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use peergroup::{
    node::{
        Config, Event, EventFilter, GroupEvent, GroupEventKind, Node, RecordChange,
        storage::RedbStore,
    },
    protocol::{GroupSpec, IDENTITY_TEXT_PREFIX, NewRecord, RecordType, Role, Timestamp},
};

const BENCH: RecordType = RecordType::from_u128(0x6265_6e63_6800_4000_8000_0000_0000_0002);

fn config(dir: Option<&std::path::Path>) -> Result<Config> {
    let mut builder = Config::builder()
        .listen(["/ip4/127.0.0.1/tcp/0".parse()?])
        .mdns(false)
        .kademlia(false)
        .connect_timeout(Duration::from_secs(600));
    if let Some(dir) = dir {
        builder = builder.data_dir(dir);
    }
    Ok(builder.build()?)
}

fn main() -> Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let data_dirs = args.iter().any(|a| a == "--data-dirs");
    match args.get(1).map(String::as_str) {
        Some("creator") => {
            let n = args.get(2).context("creator N")?.parse()?;
            runtime.block_on(creator(n, data_dirs))
        }
        n => {
            let n: usize = n
                .unwrap_or("100000")
                .parse()
                .context("N must be a number")?;
            let resync = args.iter().any(|a| a == "--resync");
            runtime.block_on(joiner(n, data_dirs, resync))
        }
    }
}

async fn creator(n: usize, data_dirs: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (handle, _events) = Node::spawn(config(data_dirs.then_some(dir.path()))?).await?;
    let me = handle.create_identity("creator", "").await?;
    let me = me.payload().peer_name.clone();
    let group = handle.create_group(GroupSpec::new(&me, "join")).await?;
    handle.connect(&group).await?;
    let handle = Arc::new(handle);
    let start = Instant::now();
    let ids = add_records(&handle, &group, n).await?;
    eprintln!(
        "creator: {n} records added in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let addr = handle
        .listen_addrs()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no address"))?;
    println!("READY {addr}");
    std::io::stdout().flush()?;
    let identity = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    let invitation = handle
        .create_invitation(&group, identity.trim(), Role::Member, None)
        .await?;
    println!("{invitation}");
    std::io::stdout().flush()?;
    // Serve until the parent closes our stdin; `DIVERGE k` adds k/2
    // records and updates k/2 of the first ones, then answers `DIVERGED`.
    loop {
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await??;
        let Some(k) = line.trim().strip_prefix("DIVERGE ") else {
            break;
        };
        let k: usize = k.parse()?;
        add_records(&handle, &group, k / 2).await?;
        for id in ids.iter().take(k - k / 2) {
            let mut record = handle.get_record(&group, *id).await?;
            record.data = vec![0xd1; 256];
            handle.update_record(&group, record).await?;
        }
        println!("DIVERGED");
        std::io::stdout().flush()?;
    }
    handle.shutdown().await?;
    Ok(())
}

/// Adds `n` records of 256 bytes, 64 in flight; returns their ids.
async fn add_records(
    handle: &Arc<peergroup::node::Handle>,
    group: &peergroup::protocol::PeerName,
    n: usize,
) -> Result<Vec<peergroup::protocol::RecordId>> {
    const IN_FLIGHT: usize = 64;
    let mut tasks = Vec::new();
    for t in 0..IN_FLIGHT {
        let (handle, group) = (handle.clone(), group.clone());
        tasks.push(tokio::spawn(async move {
            let expires = Timestamp::from_millis(now_ms()).saturating_add_secs(24 * 3600);
            let mut ids = Vec::new();
            let mut i = t;
            while i < n {
                let data = vec![(i % 251) as u8; 256];
                ids.push(
                    handle
                        .add_record(&group, NewRecord::new(BENCH, expires).with_data(data))
                        .await?,
                );
                i += IN_FLIGHT;
            }
            Ok::<_, peergroup::node::Error>(ids)
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await??);
    }
    Ok(ids)
}

/// A TCP proxy on loopback to `target` that counts the bytes it carries
/// (both directions). Returns its address and the counter.
async fn counting_proxy(
    target: std::net::SocketAddr,
) -> Result<(std::net::SocketAddr, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = bytes.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(pump(ri, wo, counter.clone()));
            tokio::spawn(pump(ro, wi, counter.clone()));
        }
    });
    Ok((addr, bytes))
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    bytes: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                bytes.fetch_add(n as u64, Ordering::Relaxed);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

async fn joiner(n: usize, data_dirs: bool, resync: bool) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut args = vec!["creator".to_owned(), n.to_string()];
    if data_dirs {
        args.push("--data-dirs".into());
    }
    let mut child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines =
        BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?).lines();
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    let ready = tokio::task::spawn_blocking(move || {
        let line = lines.next().ok_or_else(|| anyhow!("creator died"))??;
        Ok::<_, anyhow::Error>((line, lines))
    });
    let (ready, mut lines) = ready.await??;
    let creator_addr: libp2p::Multiaddr = ready
        .strip_prefix("READY ")
        .ok_or_else(|| anyhow!("unexpected creator line {ready:?}"))?
        .parse()?;
    // Through the counting proxy (the creator dials nobody: the joiner's
    // one connection carries everything).
    let target = match creator_addr.iter().take(2).collect::<Vec<_>>()[..] {
        [
            libp2p::multiaddr::Protocol::Ip4(ip),
            libp2p::multiaddr::Protocol::Tcp(port),
        ] => std::net::SocketAddr::from((ip, port)),
        _ => bail!("unexpected creator address {creator_addr}"),
    };
    let (proxy, bytes) = counting_proxy(target).await?;
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", proxy.port()).parse()?;

    let dir = tempfile::tempdir()?;
    let (handle, _events) = Node::spawn(config(data_dirs.then_some(dir.path()))?).await?;
    let info = handle.create_identity("joiner", "").await?;
    writeln!(stdin, "{}", info.to_text(IDENTITY_TEXT_PREFIX))?;
    let (invitation, mut lines) = tokio::task::spawn_blocking(move || {
        let line = lines.next().ok_or_else(|| anyhow!("creator died"))??;
        Ok::<_, anyhow::Error>((line, lines))
    })
    .await??;
    let group = handle.join(&info.payload().peer_name, &invitation).await?;

    // Progress lines while the copy runs (from `SyncProgress` events, what
    // a progress bar uses): a person watching sees it move.
    let mut progress = handle.subscribe(EventFilter::kinds([GroupEventKind::SyncProgress]));
    let watcher = tokio::spawn(async move {
        let mut next = Instant::now();
        let start = Instant::now();
        while let Some(event) = progress.recv().await {
            if let Ok(Event::Group(GroupEvent::SyncProgress {
                received,
                estimated_total,
                ..
            })) = event
                && Instant::now() >= next
            {
                eprintln!(
                    "joining: {received:>7} / {estimated_total} records ({:>3.0} %) after {:.1} s",
                    received as f64 * 100.0 / estimated_total.max(1) as f64,
                    start.elapsed().as_secs_f64()
                );
                next = Instant::now() + Duration::from_millis(500);
            }
        }
    });
    let bytes_before = bytes.load(Ordering::Relaxed);
    let start = Instant::now();
    handle
        .connect_by_address(&group, vec![addr.clone()])
        .await?;
    let join_s = start.elapsed().as_secs_f64();
    let join_bytes = bytes.load(Ordering::Relaxed) - bytes_before;
    watcher.abort();
    let records = handle.records(&group, Some(BENCH)).await?;
    if records.len() != n {
        bail!("the joiner has {} records, not {n}", records.len());
    }
    let resync_figures = if resync {
        Some(resynchronize(&handle, &group, n, &mut stdin, &mut lines, &bytes).await?)
    } else {
        None
    };
    drop(stdin);
    let _ = child.wait();

    handle.shutdown().await?;

    // The baseline, in the same run: N envelopes of the same shape (one
    // signer, 256 bytes of data), signed beforehand, then decoded, verified
    // and committed into a store on disk in batches of 1,000, on every core.
    let envelopes = sign_records(n)?;
    let base_dir = tempfile::tempdir()?;
    let store = RedbStore::open_in_dir(base_dir.path())?;
    let start = Instant::now();
    for chunk in envelopes.chunks(1000) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        for outcome in store.merge_envelopes(&refs)? {
            outcome?;
        }
    }
    let baseline_s = start.elapsed().as_secs_f64();
    let resync_json = match resync_figures {
        Some((s, b)) => format!(
            ",\"resync_changes\":{},\"resync_s\":{s:.3},\"resync_bytes\":{b},\"resync_time_share\":{:.4},\"resync_bytes_share\":{:.4}",
            n / 100,
            s / join_s,
            b as f64 / join_bytes as f64
        ),
        None => String::new(),
    };
    println!(
        "{{\"n\":{n},\"data_dirs\":{data_dirs},\"join_s\":{join_s:.3},\"join_bytes\":{join_bytes},\"join_records_per_s\":{:.0},\"baseline_verify_commit_s\":{baseline_s:.3},\"ratio\":{:.2}{resync_json}}}",
        n as f64 / join_s,
        join_s / baseline_s
    );
    Ok(())
}

/// The joiner goes offline, the creator changes N/100 records (half new,
/// half updated), the joiner connects again: seconds until every change
/// arrived, and the bytes that crossed the connection meanwhile.
async fn resynchronize(
    handle: &peergroup::node::Handle,
    group: &peergroup::protocol::PeerName,
    n: usize,
    stdin: &mut std::process::ChildStdin,
    lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>,
    bytes: &AtomicU64,
) -> Result<(f64, u64)> {
    let k = n / 100;
    handle.close(group).await?;
    handle.open(group).await?;
    writeln!(stdin, "DIVERGE {k}")?;
    let line = lines.next().ok_or_else(|| anyhow!("creator died"))??;
    if line != "DIVERGED" {
        bail!("unexpected creator line {line:?}");
    }
    let mut changes = handle
        .subscribe(EventFilter::kinds([GroupEventKind::RecordChanged]).with_record_type(BENCH));
    let (want_added, want_updated) = (k / 2, k - k / 2);
    let before = bytes.load(Ordering::Relaxed);
    let start = Instant::now();
    handle.connect(group).await?;
    let (mut added, mut updated) = (0, 0);
    while added < want_added || updated < want_updated {
        match tokio::time::timeout(Duration::from_secs(120), changes.recv()).await {
            Ok(Some(Ok(Event::Group(GroupEvent::RecordChanged { change, .. })))) => match change {
                RecordChange::Added => added += 1,
                RecordChange::Updated => updated += 1,
                _ => {}
            },
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(missed))) => bail!("the event stream missed {} events", missed.0),
            Ok(None) | Err(_) => bail!("re-sync stalled at {added} added, {updated} updated"),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let moved = bytes.load(Ordering::Relaxed) - before;
    eprintln!("re-sync: {added} added and {updated} updated in {seconds:.3} s, {moved} bytes");
    Ok((seconds, moved))
}

/// `n` signed record envelopes like the creator's.
fn sign_records(n: usize) -> Result<Vec<Vec<u8>>> {
    use peergroup::protocol::{Identity, Keypair, Record, SignedRecord};
    let me = Identity::new(Keypair::from_secret_bytes(&[7; 32]), "baseline", "")?;
    let props = GroupSpec::new(me.peer_name(), "baseline").create(
        &me,
        Timestamp::from_millis(now_ms()),
        |_| false,
    )?;
    let group = props.properties().group_peer_name.clone();
    let now = Timestamp::from_millis(now_ms());
    (0..n)
        .map(|i| {
            let new = NewRecord::new(BENCH, now.saturating_add_secs(24 * 3600))
                .with_data(vec![(i % 251) as u8; 256]);
            let record = Record::new(new, (i as u64).to_be_bytes(), &group, me.peer_name(), now)?;
            Ok(SignedRecord::sign(record, me.keypair())?.into_bytes())
        })
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

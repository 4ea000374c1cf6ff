//! Join benchmark: how long a new member takes to copy a group of N records
//! (256 bytes of data each), against the time to verify and commit the same
//! envelopes locally in the same run.
//!
//! The creator runs in a child process (this program with `creator`): it
//! makes the group, adds N records through its `Handle` and waits. The parent
//! is the joiner: it is invited, joins, and times `connect_by_address` (the
//! first-connect copy, pages verified on every core and group-committed),
//! printing progress lines as records arrive. Then, in the same process, it
//! times the baseline: the same envelopes (read back from its store)
//! decoded, verified and merged into a fresh store in batches of 1,000
//! (`RedbStore::merge_envelopes`, multi-core), and prints the ratio.
//!
//! ```sh
//! cargo run --release --example join -- 100000              # memory stores
//! cargo run --release --example join -- 100000 --data-dirs  # a data directory on each node
//! ```

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use peergroup::{
    node::{Config, Event, EventFilter, EventKind, Node, RecordChange, storage::RedbStore},
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
            runtime.block_on(joiner(n, data_dirs))
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
    let mut tasks = Vec::new();
    const IN_FLIGHT: usize = 64;
    for t in 0..IN_FLIGHT {
        let (handle, group) = (handle.clone(), group.clone());
        tasks.push(tokio::spawn(async move {
            let expires = Timestamp::from_millis(now_ms()).saturating_add_secs(24 * 3600);
            let mut i = t;
            while i < n {
                let data = vec![(i % 251) as u8; 256];
                handle
                    .add_record(&group, NewRecord::new(BENCH, expires).with_data(data))
                    .await?;
                i += IN_FLIGHT;
            }
            Ok::<(), peergroup::node::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
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
    // Serve until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| {
        let mut rest = String::new();
        std::io::stdin().read_line(&mut rest)
    })
    .await;
    handle.shutdown().await?;
    Ok(())
}

async fn joiner(n: usize, data_dirs: bool) -> Result<()> {
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
    let addr: libp2p::Multiaddr = ready
        .strip_prefix("READY ")
        .ok_or_else(|| anyhow!("unexpected creator line {ready:?}"))?
        .parse()?;

    let dir = tempfile::tempdir()?;
    let (handle, _events) = Node::spawn(config(data_dirs.then_some(dir.path()))?).await?;
    let info = handle.create_identity("joiner", "").await?;
    writeln!(stdin, "{}", info.to_text(IDENTITY_TEXT_PREFIX))?;
    let invitation = tokio::task::spawn_blocking(move || {
        lines
            .next()
            .ok_or_else(|| anyhow!("creator died"))?
            .map_err(anyhow::Error::from)
    })
    .await??;
    let group = handle.join(&info.payload().peer_name, &invitation).await?;

    // Progress lines while the copy runs: a person watching sees it move.
    let mut progress =
        handle.subscribe(EventFilter::kinds([EventKind::RecordChanged]).with_record_type(BENCH));
    let watcher = tokio::spawn(async move {
        let (mut seen, mut next) = (0usize, Instant::now());
        let start = Instant::now();
        while let Some(event) = progress.recv().await {
            match event {
                Ok(Event::RecordChanged {
                    change: RecordChange::Added,
                    ..
                }) => seen += 1,
                Ok(_) => {}
                Err(missed) => seen += missed.0 as usize,
            }
            if Instant::now() >= next {
                eprintln!(
                    "joining: {seen:>7} / {n} records ({:>3.0} %) after {:.1} s",
                    seen as f64 * 100.0 / n as f64,
                    start.elapsed().as_secs_f64()
                );
                next = Instant::now() + Duration::from_millis(500);
            }
        }
    });
    let start = Instant::now();
    handle.connect_by_address(&group, vec![addr]).await?;
    let join_s = start.elapsed().as_secs_f64();
    watcher.abort();
    let records = handle.records(&group, Some(BENCH)).await?;
    if records.len() != n {
        bail!("the joiner has {} records, not {n}", records.len());
    }
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
    println!(
        "{{\"n\":{n},\"data_dirs\":{data_dirs},\"join_s\":{join_s:.3},\"join_records_per_s\":{:.0},\"baseline_verify_commit_s\":{baseline_s:.3},\"ratio\":{:.2}}}",
        n as f64 / join_s,
        join_s / baseline_s
    );
    Ok(())
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

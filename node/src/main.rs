//! `peergroup`: the standalone node binary.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use libp2p::Multiaddr;
use peergroup_node::{Config, Error as NodeError, Node};

/// A peer-group replication node: the Windows Peer-to-Peer Grouping model on libp2p.
///
/// Groups of identities share a replicated, signed record database that
/// every member verifies and merges in one deterministic order.
#[derive(Debug, Parser)]
#[command(name = "peergroup", version, about, long_about)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a node until interrupted (Ctrl-C or SIGTERM), logging its events.
    ///
    /// Log verbosity follows RUST_LOG (default: info).
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Address to listen on (repeatable). Default: /ip4/0.0.0.0/tcp/3587,
    /// or an OS-chosen port when 3587 is taken.
    #[arg(long, env = "PEERGROUP_LISTEN")]
    listen: Vec<Multiaddr>,
    /// Kademlia bootstrap peer, ending with /p2p/<peer id> (repeatable).
    #[arg(long, env = "PEERGROUP_BOOTSTRAP")]
    bootstrap: Vec<Multiaddr>,
    /// Do not discover link-local peers with mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// Do not run Kademlia.
    #[arg(long)]
    no_kademlia: bool,
    /// Where the node keeps its database (`peergroup.redb`: identities,
    /// groups, credentials, records) and its transport key (`node.key`, so
    /// that its peer id survives restarts). Default: $XDG_DATA_HOME/peergroup,
    /// or ~/.local/share/peergroup.
    #[arg(long, env = "PEERGROUP_DATA_DIR", conflicts_with = "ephemeral")]
    data_dir: Option<std::path::PathBuf>,
    /// Keep everything in memory; nothing survives the process.
    #[arg(long)]
    ephemeral: bool,
}

/// The default data directory: `$XDG_DATA_HOME/peergroup`, else
/// `$HOME/.local/share/peergroup`.
fn default_data_dir() -> Option<std::path::PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(std::path::PathBuf::from(xdg).join("peergroup"));
    }
    std::env::var_os("HOME")
        .map(|home| std::path::PathBuf::from(home).join(".local/share/peergroup"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let Some(command) = cli.command else {
        // No subcommand: show the help, like `git`.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    };
    let result = match command {
        Command::Run(args) => run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(peer) = e.downcast_ref::<NodeError>().and_then(NodeError::peer) {
                eprintln!("({} {:#010x})", peer.name(), peer.code());
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(args: RunArgs) -> Result<()> {
    let mut builder = Config::builder()
        .bootstrap(args.bootstrap)
        .mdns(!args.no_mdns)
        .kademlia(!args.no_kademlia);
    if !args.listen.is_empty() {
        builder = builder.listen(args.listen);
    }
    if !args.ephemeral {
        let dir = args
            .data_dir
            .or_else(default_data_dir)
            .context("no data directory: pass --data-dir or --ephemeral")?;
        builder = builder.data_dir(dir);
    }
    let config = builder.build().context("invalid configuration")?;
    // tokio's current-thread runtime beat the multi-thread one by 20-50 % on
    // the 2-core machines this runs on (design.md section 8).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // The signal handlers go in before anything is printed: a supervisor
        // (or a test) that reads the peer id and then sends SIGTERM must get
        // a clean shutdown, not the default disposition (killed by the
        // signal, with queued writes lost).
        let mut shutdown = Shutdown::register()?;
        let (handle, mut events) = Node::spawn(config).await?;
        println!("peer id {}", handle.peer_id().await?);
        for addr in handle.listen_addrs().await? {
            println!("listening on {addr}");
        }
        // Containers stop with SIGTERM: it shuts down as cleanly as Ctrl-C
        // (queued writes are committed before the process exits).
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Ok(event)) => tracing::info!(?event, "event"),
                    Some(Err(missed)) => tracing::warn!(%missed, "event log fell behind"),
                    None => break,
                },
                why = shutdown.recv() => {
                    tracing::info!("{why}, shutting down");
                    handle.shutdown().await?;
                    break;
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    })
}

/// The signals that stop the node: SIGINT (Ctrl-C) and SIGTERM (how
/// containers and service managers stop a process). Both are registered when
/// this is built, so a signal that arrives before the first `recv` is kept,
/// not handled by the default disposition.
struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    #[cfg(unix)]
    fn register() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    #[cfg(not(unix))]
    fn register() -> Result<Self> {
        Ok(Self {})
    }

    /// Waits for a signal; returns its description for the log.
    #[cfg(unix)]
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted",
            _ = self.terminate.recv() => "terminated",
        }
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

//! `peergroup`: the standalone node binary and its CLI.
//!
//! `peergroup run` starts a node with its control API; every other command
//! talks to a running node through that API (found through the data
//! directory's `api.url` and `api.token`). `docs/cli.md` is the manual.

mod client;
mod commands;
mod config;
mod daemon;
mod exit;
mod progress;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use libp2p::Multiaddr;
use peergroup_node::{Error as NodeError, protocol::PeerName};

use crate::exit::out;
use crate::{
    client::Client,
    commands::{
        Ctx, EventsArgs, GroupCommand, IdentityCommand, InviteCommand, JoinArgs, RecordCommand,
    },
    config::{Flags, Settings},
    exit::Exit,
};

/// A peer-group replication node: the Windows Peer-to-Peer Grouping model on libp2p.
///
/// Groups of identities share a replicated, signed record database that
/// every member verifies and merges in one deterministic order.
/// `peergroup run` starts a node; the other commands drive it.
#[derive(Debug, Parser)]
#[command(name = "peergroup", version, about, long_about, after_long_help = exit::HELP)]
struct Cli {
    /// Print machine-readable JSON (the control API's own JSON).
    #[arg(long, global = true)]
    json: bool,
    /// The configuration file (TOML). Default:
    /// $XDG_CONFIG_HOME/peergroup/config.toml when it exists.
    #[arg(long, global = true, env = "PEERGROUP_CONFIG")]
    config: Option<PathBuf>,
    /// The node's data directory: its database, node key, API token and
    /// URL. Default: $XDG_DATA_HOME/peergroup or ~/.local/share/peergroup
    /// (environment: PEERGROUP_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// The control API's URL, instead of the data directory's api.url.
    #[arg(long, global = true, env = "PEERGROUP_API")]
    api: Option<String>,
    /// The API token file, instead of the data directory's api.token.
    #[arg(long, global = true, env = "PEERGROUP_TOKEN_FILE")]
    token_file: Option<PathBuf>,
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
    /// Runs a node until interrupted (Ctrl-C or SIGTERM), with its control
    /// API on loopback. Prints its peer id, listen addresses and API URL.
    Run(RunArgs),
    /// Shows the effective configuration and where each value came from.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Asks the running node for its peer id, addresses and API (exits 0
    /// when it answers: a health check).
    Status,
    /// Identities: create, list, show, export, import, delete.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Groups: create, list, open, connect, close, delete, properties,
    /// set-properties, members, connections, status.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Invitations: create, password, parse.
    Invite {
        #[command(subcommand)]
        command: InviteCommand,
    },
    /// Joins a group with an invitation (or a password invitation and
    /// --password) and waits until its database is copied.
    Join(JoinArgs),
    /// Records: add, update, delete, get, list.
    Record {
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// Follows the node's events (server-sent events of the control API).
    Events(EventsArgs),
    /// Prints the node's Prometheus metrics (the API's /metrics).
    Metrics,
    /// Synchronization status.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints every setting, its value and its source (default, file, env, flag).
    Show(NodeFlags),
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// The group's running and last completed synchronizations.
    Status {
        /// The group.
        group: PeerName,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    flags: NodeFlags,
    /// Keep everything in memory; nothing survives the process.
    #[arg(long)]
    ephemeral: bool,
    /// The log format on stderr (RUST_LOG sets the verbosity; default
    /// info). Colours only on a terminal, and never with NO_COLOR set.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// The node's settings as flags (precedence: defaults < file < env < flags).
#[derive(Debug, Clone, clap::Args)]
struct NodeFlags {
    /// Address to listen on (repeatable). Default: /ip4/0.0.0.0/tcp/3587,
    /// or an OS-chosen port when 3587 is taken (env: PEERGROUP_LISTEN,
    /// comma-separated).
    #[arg(long)]
    listen: Vec<Multiaddr>,
    /// Kademlia bootstrap peer, ending with /p2p/<peer id> (repeatable;
    /// env: PEERGROUP_BOOTSTRAP).
    #[arg(long)]
    bootstrap: Vec<Multiaddr>,
    /// Do not discover link-local peers with mDNS (env: PEERGROUP_MDNS=false).
    #[arg(long)]
    no_mdns: bool,
    /// Do not run Kademlia (env: PEERGROUP_KADEMLIA=false).
    #[arg(long)]
    no_kademlia: bool,
    /// The control API's address. Default 127.0.0.1:3588 (an OS-chosen port
    /// when taken). Binding beyond loopback lets anyone who reaches the
    /// port and holds the token drive the node (env: PEERGROUP_API_LISTEN).
    #[arg(long)]
    api_listen: Option<SocketAddr>,
}

impl NodeFlags {
    fn into_flags(self, data_dir: Option<PathBuf>) -> Flags {
        Flags {
            data_dir,
            listen: self.listen,
            bootstrap: self.bootstrap,
            no_mdns: self.no_mdns,
            no_kademlia: self.no_kademlia,
            api_listen: self.api_listen,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        // No subcommand: show the help, like `git`.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    };
    let json = cli.json;
    match dispatch(
        command,
        &Globals {
            json,
            config: cli.config,
            data_dir: cli.data_dir,
            api: cli.api,
            token_file: cli.token_file,
        },
    ) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => ExitCode::from(report(&e, json)),
    }
}

/// Prints `e` for a person (or as JSON) and picks the exit code.
fn report(e: &anyhow::Error, json: bool) -> u8 {
    let (name, code, exit) = match e.downcast_ref::<Exit>() {
        Some(Exit::Refused { name, code, .. }) => (Some(name.clone()), Some(*code), exit::REFUSED),
        Some(other) => (None, None, other.code()),
        None => match e.downcast_ref::<NodeError>().and_then(NodeError::peer) {
            Some(peer) => (
                Some(peer.name().to_owned()),
                Some(peer.code()),
                exit::FAILURE,
            ),
            None => (None, None, exit::FAILURE),
        },
    };
    if json {
        let value = serde_json::json!({
            "error": { "name": name, "code": code, "message": format!("{e:#}"), "exit": exit }
        });
        eprintln!("{value}");
    } else {
        eprintln!("error: {e:#}");
        if let (Some(name), Some(code)) = (name, code) {
            eprintln!("({name} {code:#010x})");
        }
    }
    exit
}

/// The options every command shares.
struct Globals {
    json: bool,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    api: Option<String>,
    token_file: Option<PathBuf>,
}

impl Globals {
    /// The settings; a bad configuration file or variable is a usage error.
    fn settings(&self, flags: Flags) -> Result<Settings> {
        Settings::resolve(self.config.as_deref(), &flags)
            .map_err(|e| Exit::Usage(format!("{e:#}")).into())
    }

    /// A connection to the running node. It needs only the data directory
    /// (or `--api` and `--token-file`): the node's run configuration is
    /// `run`'s business, and a wrong run-only setting must not stop a
    /// client.
    fn ctx(&self) -> Result<Ctx> {
        let data_dir = if self.api.is_some() && self.token_file.is_some() {
            None
        } else {
            Settings::resolve_data_dir(self.config.as_deref(), self.data_dir.clone())
                .map_err(|e| Exit::Usage(format!("{e:#}")))?
        };
        let client = Client::locate(
            data_dir.as_deref(),
            self.api.as_deref(),
            self.token_file.as_deref(),
        )?;
        Ok(Ctx {
            json: self.json,
            client,
        })
    }
}

fn dispatch(command: Command, globals: &Globals) -> Result<()> {
    match command {
        Command::Run(args) => {
            init_logging(args.log_format);
            let settings = globals.settings(args.flags.into_flags(globals.data_dir.clone()))?;
            daemon::run(settings, args.ephemeral)
        }
        Command::Config {
            command: ConfigCommand::Show(flags),
        } => {
            let settings = globals.settings(flags.into_flags(globals.data_dir.clone()))?;
            let running = running_node(globals, &settings);
            show_config(&settings, running.as_ref(), globals.json)
        }
        Command::Status => commands::node_status(&globals.ctx()?),
        Command::Identity { command } => commands::identity(&globals.ctx()?, command),
        Command::Group { command } => commands::group(&globals.ctx()?, command),
        Command::Invite { command } => {
            // `invite parse` needs no node.
            let ctx = match command {
                InviteCommand::Parse { .. } => None,
                _ => Some(globals.ctx()?),
            };
            commands::invite(ctx.as_ref(), globals.json, command)
        }
        Command::Join(args) => commands::join(&globals.ctx()?, args),
        Command::Record { command } => commands::record(&globals.ctx()?, command),
        Command::Events(args) => commands::events(&globals.ctx()?, args),
        Command::Metrics => {
            exit::write_stdout(format_args!(
                "{}",
                globals.ctx()?.client.get_text("/metrics")?
            ));
            Ok(())
        }
        Command::Sync {
            command: SyncCommand::Status { group },
        } => commands::sync_status(&globals.ctx()?, group),
    }
}

/// What the node running in the data directory really uses: its
/// configuration may differ from what `run` would use now (other flags, a
/// file changed since, an OS-chosen port).
struct Running {
    peer_id: libp2p::PeerId,
    listen: Vec<Multiaddr>,
    api: String,
}

/// The node that answers at the data directory's `api.url` (or `--api`),
/// if one does.
fn running_node(globals: &Globals, settings: &Settings) -> Option<Running> {
    let client = Client::locate(
        settings.data_dir.value.as_deref(),
        globals.api.as_deref(),
        globals.token_file.as_deref(),
    )
    .ok()?;
    let peergroup_node::Response::PeerId(peer_id) =
        client.request(&peergroup_node::Request::PeerId).ok()?
    else {
        return None;
    };
    let peergroup_node::Response::Addresses(listen) =
        client.request(&peergroup_node::Request::ListenAddrs).ok()?
    else {
        return None;
    };
    Some(Running {
        peer_id,
        listen,
        api: client.base().to_owned(),
    })
}

/// `config show`: the settings `run` would use, and what a node running in
/// the data directory uses (`running`).
fn show_config(settings: &Settings, running: Option<&Running>, json: bool) -> Result<()> {
    let rows = settings.rows();
    let strings = |addrs: &[Multiaddr]| addrs.iter().map(ToString::to_string).collect::<Vec<_>>();
    if json {
        let mut map = serde_json::Map::new();
        for (key, value, source) in rows {
            map.insert(
                key.to_owned(),
                serde_json::json!({ "value": value, "source": source }),
            );
        }
        if let Some(file) = &settings.file {
            map.insert("config_file".into(), serde_json::json!(file));
        }
        map.insert(
            "running".into(),
            match running {
                Some(r) => serde_json::json!({
                    "peer_id": r.peer_id.to_string(),
                    "listen": strings(&r.listen),
                    "api": r.api,
                }),
                None => serde_json::Value::Null,
            },
        );
        out!("{}", serde_json::to_string_pretty(&map)?);
        return Ok(());
    }
    match &settings.file {
        Some(file) => out!("# configuration file: {}", file.display()),
        None => out!("# no configuration file"),
    }
    for (key, value, source) in rows {
        out!("{key} = {value}  # {source}");
    }
    match running {
        Some(r) => {
            out!();
            out!("# the node running in this data directory now uses:");
            out!("running.peer_id = {:?}", r.peer_id.to_string());
            out!(
                "running.listen = {}",
                toml::Value::try_from(strings(&r.listen))?
            );
            out!("running.api = {:?}", r.api);
        }
        None => out!("# no node is running in this data directory"),
    }
    Ok(())
}

/// Logs to stderr. Colour codes only when stderr is a terminal and NO_COLOR
/// (<https://no-color.org>) is unset or empty: a log redirected to a file or
/// a collector gets plain text.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

//! `peergroup run`: the node with its control API.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};
use peergroup_node::{Config, Handle, Node, control};

use crate::config::{Settings, Source};

/// How long a stopping node waits for API requests in flight.
const API_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The classifier of the identity a node creates on its first run.
pub(crate) const DEFAULT_IDENTITY: &str = "default";

/// Runs a node until SIGINT or SIGTERM.
pub(crate) fn run(settings: Settings, ephemeral: bool) -> Result<()> {
    let mut builder = Config::builder()
        .bootstrap(settings.bootstrap.value.clone())
        .mdns(settings.mdns.value)
        .kademlia(settings.kademlia.value);
    // Only the default address may fall back to an OS-chosen port: an
    // address the operator gave (file, environment, flag) is used as given,
    // and one that cannot be had stops the node with the reason.
    if settings.listen.source != Source::Default {
        builder = builder.listen(settings.listen.value.clone());
    }
    let data_dir = if ephemeral {
        None
    } else {
        let dir = settings.data_dir()?.to_path_buf();
        create_private_dir(&dir)?;
        builder = builder.data_dir(dir.clone());
        Some(dir)
    };
    let config = builder
        .build()
        .map_err(|e| crate::exit::Exit::Usage(format!("invalid configuration: {e}")))?;
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
        let mut registry = prometheus_client::registry::Registry::with_prefix("peergroup");
        let (handle, mut events) = Node::spawn_with_metrics(config, &mut registry).await?;
        let identity = default_identity(&handle).await?;

        let listener = bind_api(
            settings.api_listen.value,
            settings.api_listen.source == Source::Default,
        )
        .await?;
        let api_addr = listener.local_addr().context("the control API's address")?;
        if !api_addr.ip().is_loopback() {
            tracing::warn!(%api_addr, "the control API listens beyond loopback: anyone who can reach it and has the token controls this node");
        }
        // An API bound to every interface is reached on loopback from here.
        let reach = match api_addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, api_addr.port()))
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, api_addr.port()))
            }
            _ => api_addr,
        };
        let url = format!("http://{reach}");
        let token = control::new_token()?;
        let files = ApiFiles::write(data_dir.as_deref(), &token, &url)?;
        let router = control::router(handle.clone(), &token, Some(Arc::new(registry)));
        let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = api_stopped.await;
                })
                .await
        });

        say(format_args!("peer id {}", handle.peer_id().await?));
        for addr in handle.listen_addrs().await? {
            say(format_args!("listening on {addr}"));
        }
        say(format_args!("control api {url}"));
        say(format_args!("api token file {}", files.token.display()));
        if let Some(identity) = identity {
            say(format_args!("default identity {identity}"));
        }
        reconnect_groups(&handle).await;

        loop {
            tokio::select! {
                // Every event at debug (`RUST_LOG=peergroup=debug`): at info
                // a busy group floods the log (megabytes per thousand
                // records); `peergroup events` follows them instead.
                event = events.recv() => match event {
                    Some(Ok(event)) => tracing::debug!(?event, "event"),
                    Some(Err(missed)) => tracing::warn!(%missed, "event log fell behind"),
                    None => break,
                },
                why = shutdown.recv() => {
                    tracing::info!("{why}, shutting down");
                    break;
                }
            }
        }
        // The API first (no new requests), then the node (queued writes
        // are committed before `shutdown` returns).
        let _ = stop_api.send(());
        files.remove();
        // Requests in flight get a moment to finish; event streams and long
        // connects do not hold the shutdown (their clients see the
        // connection close).
        let mut server = server;
        if tokio::time::timeout(API_DRAIN, &mut server).await.is_err() {
            server.abort();
        }
        handle.shutdown().await?;
        Ok::<(), anyhow::Error>(())
    })
}

/// Creates the data directory (and its parents) with mode 0700 on Unix: it
/// holds the secret keys of the node's identities and groups. An existing
/// directory is left as it is, but one that others can read is warned about.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("cannot read the data directory {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), mode = format_args!("{:o}", mode & 0o777), "the data directory is readable by other users; it holds secret keys (chmod 700 it)");
        }
    }
    Ok(())
}

/// Prints a start-up line on stdout. A supervisor may close our stdout
/// once it read what it wanted: the node keeps running (a failed write is
/// ignored, where `println!` would panic).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// The identity the node creates on its first run (classifier
/// [`DEFAULT_IDENTITY`]), so that a new user can create or join a group at
/// once. Returns the default identity's peer name when there is one.
async fn default_identity(handle: &Handle) -> Result<Option<String>> {
    let identities = handle.identities().await?;
    if identities.is_empty() {
        let info = handle.create_identity(DEFAULT_IDENTITY, "").await?;
        tracing::info!(identity = %info.payload().peer_name, "created the default identity");
        return Ok(Some(info.payload().peer_name.to_string()));
    }
    Ok(identities
        .iter()
        .map(|i| &i.payload().peer_name)
        .find(|name| name.classifier() == DEFAULT_IDENTITY)
        .map(ToString::to_string))
}

/// Brings every group this node knows back online, as it was before the
/// node stopped (a daemon's groups do not wait for an application to reopen
/// them). A ready group is online at once; one whose first synchronization
/// never completed looks for members in the background, and a failure is
/// logged (`peergroup group connect` tries again).
async fn reconnect_groups(handle: &Handle) {
    let groups = match handle.groups().await {
        Ok(groups) => groups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the groups");
            return;
        }
    };
    for entry in groups {
        let group = entry.group;
        if let Err(e) = handle.open(&group).await {
            tracing::debug!(%group, error = %e, "open");
        }
        let handle = handle.clone();
        tokio::spawn(async move {
            match handle.connect(&group).await {
                Ok(()) => tracing::info!(%group, "group online"),
                Err(e) => tracing::warn!(%group, error = %e, "the group could not connect"),
            }
        });
    }
}

/// Binds the control API. The default address (`fallback`: not set by the
/// operator) falls back to a port the OS chooses when it is taken (several
/// nodes on one host); the `api.url` file names it. An address the operator
/// gave is used as given or the node stops, like the listen addresses.
async fn bind_api(addr: SocketAddr, fallback: bool) -> Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(e) if fallback => {
            let fallback = SocketAddr::new(addr.ip(), 0);
            tracing::warn!(%addr, error = %e, "cannot listen on the default API port, using an OS-chosen one");
            tokio::net::TcpListener::bind(fallback)
                .await
                .with_context(|| format!("cannot listen for the control API on {fallback}"))
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen for the control API on {addr}")),
    }
}

/// The API's token and URL files, removed when the node stops cleanly.
struct ApiFiles {
    token: PathBuf,
    url: Option<PathBuf>,
}

impl ApiFiles {
    /// Writes them into `dir`; an ephemeral node (no directory) writes its
    /// token to a file of its own in the temporary directory.
    fn write(dir: Option<&Path>, token: &str, url: &str) -> Result<ApiFiles> {
        let Some(dir) = dir else {
            let tmp = std::env::temp_dir().join(format!("peergroup-{}", std::process::id()));
            std::fs::create_dir_all(&tmp)?;
            let token = control::write_token(&tmp, token)
                .with_context(|| format!("cannot write the API token in {}", tmp.display()))?;
            return Ok(ApiFiles { token, url: None });
        };
        let token = control::write_token(dir, token)
            .with_context(|| format!("cannot write the API token in {}", dir.display()))?;
        let url_path = dir.join(control::URL_FILE);
        std::fs::write(&url_path, format!("{url}\n"))
            .with_context(|| format!("cannot write {}", url_path.display()))?;
        Ok(ApiFiles {
            token,
            url: Some(url_path),
        })
    }

    fn remove(&self) {
        if let Some(url) = &self.url {
            let _ = std::fs::remove_file(url);
        } else {
            let _ = std::fs::remove_file(&self.token);
            if let Some(dir) = self.token.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
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

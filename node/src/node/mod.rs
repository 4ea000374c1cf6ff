//! [`Node`]: the ready-made host. One task owns the `Swarm` (with the
//! [`Behaviour`] in it); a cloneable [`Handle`] sends it typed
//! [`Command`]s over a bounded channel ([`COMMAND_CAPACITY`]); replies
//! complete at once, when the operation they wait for completes (a connect,
//! or the barrier that makes a write durable), or from a blocking thread for
//! reads (get, enumerate, digest never run on the swarm task). Events go out
//! through a bounded broadcast ring ([`EVENT_CAPACITY`]) that never waits for
//! a slow subscriber.
//!
//! The loop ends on [`Handle::shutdown`] or when every handle is dropped;
//! queued writes are committed before it returns, and after it every handle
//! call returns [`Error::Shutdown`].

mod command;
mod handle;
mod key;
mod subscription;

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use libp2p::{
    Multiaddr, Swarm, SwarmBuilder, identity, multiaddr::Protocol, noise, swarm::SwarmEvent, tcp,
    yamux,
};
use tokio::sync::{broadcast, mpsc, oneshot};

pub(crate) use self::command::Command;
use self::command::{Outcome, execute};
pub use self::{
    command::{ExportedIdentity, GroupPassword, Request, Response},
    handle::Handle,
    key::KEY_FILE,
    subscription::{EVENT_CAPACITY, EventFilter, EventKind, Missed, Subscription},
};
use crate::{
    behaviour::{Behaviour, Event, GroupEvent, OperationId},
    config::Config,
    error::Error,
};

/// How many commands may wait for the event loop; senders wait beyond it
/// (backpressure on API callers, never on the swarm).
pub const COMMAND_CAPACITY: usize = 1024;

/// How long [`Node::spawn`] waits for the first listen address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A peer-group node: [`Node::spawn`] starts one.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Starts a node on the current tokio runtime: the transport key (kept in
    /// the data directory's `node.key` when there is one), the behaviour
    /// (opening the store), TCP + Noise + Yamux (plus QUIC with the `quic`
    /// feature), the listeners, and the event loop. Returns once the node
    /// listens, with a handle and a subscription to every event.
    pub async fn spawn(config: Config) -> Result<(Handle, Subscription), Error> {
        Node::start(config, |_| {}).await
    }

    /// [`Node::spawn`], with the node's metrics registered in `registry`:
    /// libp2p's (connections, gossipsub, Kademlia, identify) and the node's
    /// own (`docs/metrics.md`). Serve the registry with
    /// `prometheus_client::encoding::text::encode`, or through the control API.
    #[cfg(feature = "metrics")]
    pub async fn spawn_with_metrics(
        config: Config,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<(Handle, Subscription), Error> {
        Node::start(config, |behaviour| behaviour.register_metrics(registry)).await
    }

    async fn start(
        config: Config,
        prepare: impl FnOnce(&mut Behaviour),
    ) -> Result<(Handle, Subscription), Error> {
        let key = match (&config.transport_seed, &config.behaviour.data_dir) {
            (Some(seed), _) => identity::Keypair::ed25519_from_bytes(*seed)
                .map_err(|e| Error::Transport(e.to_string()))?,
            (None, Some(dir)) => key::load_or_create(dir)?,
            (None, None) => identity::Keypair::generate_ed25519(),
        };
        let mut behaviour = Behaviour::new(&key, config.clone())?;
        prepare(&mut behaviour);
        let builder = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| Error::Transport(e.to_string()))?;
        #[cfg(feature = "quic")]
        let builder = builder.with_quic();
        let mut swarm = builder
            .with_behaviour(|_| behaviour)
            .map_err(|e| Error::Transport(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        listen(&mut swarm, &config)?;

        let (events, first) = broadcast::channel(EVENT_CAPACITY);
        let (commands, rx) = mpsc::channel(COMMAND_CAPACITY);
        let mut host = Host {
            swarm,
            events: events.clone(),
            pending: HashMap::new(),
        };
        // Return only once the node listens somewhere, so that
        // `Handle::listen_addrs` is never empty for a started node.
        let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
        while host.swarm.listeners().next().is_none() {
            match tokio::time::timeout_at(deadline, host.swarm.select_next_some()).await {
                Ok(event) => host.on_swarm_event(event),
                Err(_) => {
                    return Err(peergroup_protocol::Error::UnableToListen(format!(
                        "no listen address came up within {LISTEN_TIMEOUT:?}"
                    ))
                    .into());
                }
            }
        }
        tokio::spawn(host.run(rx));
        let handle = Handle::new(commands, events);
        Ok((handle, Subscription::new(first, EventFilter::all())))
    }
}

/// Listens on every configured address.
///
/// libp2p's TCP transport sets `SO_REUSEPORT` on its listeners, so a second
/// process would share a port that another node already listens on (the
/// kernel then splits incoming connections between them). Each fixed port is
/// therefore first bound once without it, which fails while anyone listens
/// there:
///
/// - the default address ([`crate::config::DEFAULT_PORT`], not set by the
///   operator) falls back to a port the OS chooses, with a warning that says
///   why;
/// - an address the operator asked for is an error
///   ([`peergroup_protocol::Error::UnableToListen`] with the reason): a node
///   never listens somewhere else than where it was told to.
fn listen(swarm: &mut Swarm<Behaviour>, config: &Config) -> Result<(), Error> {
    for addr in &config.listen {
        let outcome = port_is_free(addr).and_then(|()| {
            swarm
                .listen_on(addr.clone())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let Err(reason) = outcome else { continue };
        if !config.default_listen {
            return Err(peergroup_protocol::Error::UnableToListen(format!(
                "cannot listen on {addr}: {reason}"
            ))
            .into());
        }
        let fallback: Multiaddr = addr
            .iter()
            .map(|p| match p {
                Protocol::Tcp(_) => Protocol::Tcp(0),
                Protocol::Udp(_) => Protocol::Udp(0),
                other => other,
            })
            .collect();
        tracing::warn!(%addr, %fallback, %reason, "the default port is not available, listening on one the OS chooses");
        swarm.listen_on(fallback.clone()).map_err(|e| {
            peergroup_protocol::Error::UnableToListen(format!("cannot listen on {fallback}: {e}"))
        })?;
    }
    Ok(())
}

/// Whether the fixed TCP or UDP port of `addr` can be had: bound once
/// without `SO_REUSEPORT` (and closed at once). An address without a fixed
/// port, or not an IP one, is not checked. The error says why not.
fn port_is_free(addr: &Multiaddr) -> Result<(), String> {
    let mut ip = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(port) if port != 0 => {
                let Some(ip) = ip else { return Ok(()) };
                return std::net::TcpListener::bind((ip, port))
                    .map(drop)
                    .map_err(|e| describe_bind_error(&e, "TCP", port));
            }
            Protocol::Udp(port) if port != 0 => {
                let Some(ip) = ip else { return Ok(()) };
                return std::net::UdpSocket::bind((ip, port))
                    .map(drop)
                    .map_err(|e| describe_bind_error(&e, "UDP", port));
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe_bind_error(e: &std::io::Error, transport: &str, port: u16) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!(
                "{transport} port {port} is already in use (another node or program listens there)"
            )
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!("the address is not one of this host's ({e})")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("not allowed to listen on {transport} port {port} ({e})")
        }
        _ => e.to_string(),
    }
}

/// A reply waiting for an operation to complete.
struct Pending {
    reply: oneshot::Sender<Result<Response, Error>>,
    response: Response,
}

/// The event loop's state.
struct Host {
    swarm: Swarm<Behaviour>,
    events: broadcast::Sender<Event>,
    pending: HashMap<OperationId, Pending>,
}

impl Host {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut stopped = None;
        loop {
            // While the behaviour's storage or verification queues are full,
            // take no new commands: callers wait on the bounded channel.
            let ready = !self.swarm.behaviour().is_backlogged();
            tokio::select! {
                command = commands.recv(), if ready => match command {
                    Some(Command::Request { request, reply }) => self.on_request(*request, reply),
                    Some(Command::Shutdown { reply }) => {
                        stopped = Some(reply);
                        break;
                    }
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
            }
        }
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(Error::Shutdown));
        }
        // Release the sockets and the database file before `shutdown`
        // returns (the storage worker commits what is queued first), so
        // that a node can be started again on the same data at once. The
        // wait runs on a blocking thread, not on this task.
        let closing = self.swarm.behaviour_mut().close_store();
        drop(self);
        let _ = tokio::task::spawn_blocking(move || closing.wait()).await;
        if let Some(reply) = stopped {
            let _ = reply.send(());
        }
    }

    fn on_request(&mut self, request: Request, reply: oneshot::Sender<Result<Response, Error>>) {
        let swarm = &mut self.swarm;
        let outcome = match request {
            Request::PeerId => Outcome::Now(Ok(Response::PeerId(*swarm.local_peer_id()))),
            Request::ListenAddrs => {
                let me = *swarm.local_peer_id();
                Outcome::Now(Ok(Response::Addresses(
                    swarm
                        .listeners()
                        .map(|a| a.clone().with(Protocol::P2p(me)))
                        .collect(),
                )))
            }
            request => execute(swarm.behaviour_mut(), request),
        };
        match outcome {
            Outcome::Now(result) => {
                let _ = reply.send(result);
            }
            Outcome::After(operation, response) => {
                self.pending.insert(operation, Pending { reply, response });
            }
            Outcome::Read(read) => {
                let backend = swarm.behaviour().backend();
                tokio::task::spawn_blocking(move || {
                    let _ = reply.send(read.run(&*backend));
                });
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<Event>) {
        let metrics = &self.swarm.behaviour().metrics;
        metrics.swarm(&event);
        metrics.storage_queue(self.swarm.behaviour().queued_writes());
        match &event {
            SwarmEvent::Behaviour(Event::Group(GroupEvent::RecordChanged { change, .. })) => {
                metrics.record_changed(*change);
            }
            SwarmEvent::Behaviour(Event::Group(
                GroupEvent::NeighborConnection { group, .. }
                | GroupEvent::StatusChanged { group, .. },
            )) => {
                let count = self
                    .swarm
                    .behaviour()
                    .connections(group)
                    .map_or(0, |c| c.len());
                metrics.neighbors(group, count);
            }
            _ => {}
        }
        match event {
            SwarmEvent::Behaviour(Event::OperationCompleted { operation, result }) => {
                if let Some(Pending { reply, response }) = self.pending.remove(&operation) {
                    let _ = reply.send(result.map(|()| response).map_err(Error::from));
                }
            }
            SwarmEvent::Behaviour(event) => {
                if let Event::StoreFailed { reason } = &event {
                    tracing::error!(%reason, "the store failed");
                }
                // Nobody listening is fine; a lagging subscriber is told later.
                let _ = self.events.send(event);
            }
            SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "listening"),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }
}

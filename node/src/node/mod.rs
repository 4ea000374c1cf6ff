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
    behaviour::{Behaviour, Event, OperationId},
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
        let key = match (&config.transport_seed, &config.data_dir) {
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

/// Listens on every configured address. An address whose fixed port cannot
/// be bound (taken, typically) falls back to an OS-chosen port. The error
/// from the boxed transport does not keep the `AddrInUse` kind, so any bind
/// failure of a fixed port falls back, and the reason is logged.
fn listen(swarm: &mut Swarm<Behaviour>, config: &Config) -> Result<(), Error> {
    let mut listening = 0;
    for addr in &config.listen {
        match swarm.listen_on(addr.clone()) {
            Ok(_) => listening += 1,
            Err(e) => {
                let fixed_port = addr
                    .iter()
                    .any(|p| matches!(p, Protocol::Tcp(port) | Protocol::Udp(port) if port != 0));
                if !fixed_port {
                    tracing::warn!(%addr, error = %e, "cannot listen");
                    continue;
                }
                let fallback: Multiaddr = addr
                    .iter()
                    .map(|p| match p {
                        Protocol::Tcp(_) => Protocol::Tcp(0),
                        Protocol::Udp(_) => Protocol::Udp(0),
                        other => other,
                    })
                    .collect();
                tracing::info!(%addr, %fallback, error = %e, "cannot listen on the port, using an OS-chosen one");
                match swarm.listen_on(fallback.clone()) {
                    Ok(_) => listening += 1,
                    Err(e) => tracing::warn!(addr = %fallback, error = %e, "cannot listen"),
                }
            }
        }
    }
    if listening == 0 {
        return Err(
            peergroup_protocol::Error::UnableToListen("no listen address worked".into()).into(),
        );
    }
    Ok(())
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
        // that a node can be started again on the same data at once.
        drop(self);
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
            SwarmEvent::Behaviour(Event::RecordChanged { change, .. }) => {
                metrics.record_changed(*change);
            }
            SwarmEvent::Behaviour(
                Event::NeighborConnection { group, .. } | Event::StatusChanged { group, .. },
            ) => {
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

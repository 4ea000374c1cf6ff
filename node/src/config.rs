//! Configuration, built with [`ConfigBuilder`]; every default is documented.
//!
//! Two types, one builder: [`BehaviourConfig`] holds the protocol settings
//! an application embedding [`crate::Behaviour`] chooses
//! ([`ConfigBuilder::build_behaviour`]); [`Config`] adds what only the
//! ready-made [`crate::Node`] uses: where to listen and its transport key
//! ([`ConfigBuilder::build`]).

use std::{path::PathBuf, sync::Arc, time::Duration};

use libp2p::{Multiaddr, multiaddr::Protocol};
use peergroup_protocol::KdfParams;
use thiserror::Error;

use crate::clock::{Clock, SystemClock};

/// The Windows grouping port; the default listen port. When it is taken (and
/// the listen addresses were left at their default) the node falls back to
/// a port the OS chooses.
pub const DEFAULT_PORT: u16 = 3587;

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A bootstrap address lacks its `/p2p/<peer id>` suffix.
    #[error("bootstrap address {0} must end with /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    /// There is nowhere to listen.
    #[error("at least one listen address is required")]
    NoListenAddress,
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A node-only setting was given for an embedded behaviour, which would
    /// ignore it (the application's swarm listens and holds the key).
    #[error("{0} is a setting of the node, not of an embedded behaviour")]
    NodeOnly(&'static str),
}

/// The node's configuration: the behaviour's protocol settings, plus where
/// to listen and the transport key. Build it with [`Config::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) behaviour: BehaviourConfig,
    pub(crate) listen: Vec<Multiaddr>,
    /// Whether `listen` is the default (never set): only then may a taken
    /// port fall back to one the OS chooses.
    pub(crate) default_listen: bool,
    pub(crate) transport_seed: Option<[u8; 32]>,
}

/// The protocol settings of [`crate::Behaviour`]: what an application that
/// embeds it configures. Build it with [`Config::builder`] and
/// [`ConfigBuilder::build_behaviour`]; a [`Config`] converts into one.
#[derive(Debug, Clone)]
pub struct BehaviourConfig {
    pub(crate) bootstrap: Vec<Multiaddr>,
    pub(crate) mdns: bool,
    pub(crate) kademlia: bool,
    pub(crate) identify: bool,
    pub(crate) ping: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) anti_entropy_interval: Duration,
    pub(crate) expiry_interval: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng_seed: Option<u64>,
    pub(crate) password_kdf: KdfParams,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            behaviour: BehaviourConfig::default(),
            listen: vec![
                Multiaddr::empty()
                    .with(Protocol::Ip4([0, 0, 0, 0].into()))
                    .with(Protocol::Tcp(DEFAULT_PORT)),
            ],
            default_listen: true,
            transport_seed: None,
        }
    }
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        BehaviourConfig {
            bootstrap: Vec::new(),
            mdns: true,
            kademlia: true,
            identify: true,
            ping: true,
            connect_timeout: Duration::from_secs(30),
            anti_entropy_interval: peergroup_protocol::session::DEFAULT_ANTI_ENTROPY_INTERVAL,
            expiry_interval: Duration::from_secs(15),
            heartbeat: Duration::from_secs(1),
            data_dir: None,
            clock: Arc::new(SystemClock),
            rng_seed: None,
            password_kdf: KdfParams::DEFAULT,
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Config::default())
    }

    /// The addresses the node listens on.
    pub fn listen(&self) -> &[Multiaddr] {
        &self.listen
    }

    /// The data directory, if the node persists anything.
    pub fn data_dir(&self) -> Option<&PathBuf> {
        self.behaviour.data_dir.as_ref()
    }

    /// The behaviour's protocol settings.
    pub fn behaviour(&self) -> &BehaviourConfig {
        &self.behaviour
    }
}

impl From<Config> for BehaviourConfig {
    /// The protocol settings of a node's configuration (its listen
    /// addresses and transport key are the host's business).
    fn from(config: Config) -> BehaviourConfig {
        config.behaviour
    }
}

/// Builds a validated [`Config`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// Where to listen. Default: `/ip4/0.0.0.0/tcp/3587`, which falls back
    /// to an OS-chosen port when 3587 is taken. Addresses given here are
    /// used as they are: one whose port is taken (by another node, say)
    /// makes [`crate::Node::spawn`] fail with `PEER_E_UNABLE_TO_LISTEN`
    /// naming the address and why.
    pub fn listen(mut self, addrs: impl IntoIterator<Item = Multiaddr>) -> Self {
        self.0.listen = addrs.into_iter().collect();
        self.0.default_listen = false;
        self
    }

    /// Kademlia bootstrap peers, each ending with `/p2p/<peer id>`. Default: none.
    pub fn bootstrap(mut self, addrs: impl IntoIterator<Item = Multiaddr>) -> Self {
        self.0.behaviour.bootstrap = addrs.into_iter().collect();
        self
    }

    /// Whether to discover link-local peers with mDNS (the link-local cloud). Default: on.
    pub fn mdns(mut self, on: bool) -> Self {
        self.0.behaviour.mdns = on;
        self
    }

    /// Whether to run Kademlia (the global cloud). Default: on.
    pub fn kademlia(mut self, on: bool) -> Self {
        self.0.behaviour.kademlia = on;
        self
    }

    /// Whether to run identify, which tells Kademlia the listen addresses of
    /// peers that dial us. Default: on. An application with its own identify
    /// turns it off.
    pub fn identify(mut self, on: bool) -> Self {
        self.0.behaviour.identify = on;
        self
    }

    /// How long `connect` waits for a not-yet-ready group to find a member and
    /// copy its database before failing with `NoMembersFound`. Default: 30 s
    /// (the timeout Windows recommends for `PeerGroupConnect`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.0.behaviour.connect_timeout = timeout;
        self
    }

    /// How often a ready member reconciles with one of its neighbours
    /// (anti-entropy), on top of reconciling with every new neighbour.
    /// Default: 30 s.
    pub fn anti_entropy_interval(mut self, interval: Duration) -> Self {
        self.0.behaviour.anti_entropy_interval = interval;
        self
    }

    /// How often expired records are removed. Default: 15 s (the shortest
    /// interval of the Windows record expiration timer).
    pub fn expiry_interval(mut self, interval: Duration) -> Self {
        self.0.behaviour.expiry_interval = interval;
        self
    }

    /// The gossipsub heartbeat. Default: 1 s (gossipsub's own default).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.0.behaviour.heartbeat = interval;
        self
    }

    /// Whether to ping every connection every 5 s and close one whose ping
    /// fails (a link that died without a TCP reset is otherwise kept for
    /// as long as TCP retransmits, about 15 minutes). Default: on. An
    /// application that runs its own ping, or its own liveness checks,
    /// turns it off.
    pub fn ping(mut self, on: bool) -> Self {
        self.0.behaviour.ping = on;
        self
    }

    /// The seed of the node's libp2p transport key (its `PeerId`), separate
    /// from its identities' keys. Default: with a data directory, the key in
    /// its `node.key` file (created once, mode 0600), so that the peer id
    /// survives restarts; without one, random at every start. Only
    /// [`crate::Node`] uses it: an embedding application brings its own key.
    pub fn transport_seed(mut self, seed: [u8; 32]) -> Self {
        self.0.transport_seed = Some(seed);
        self
    }

    /// The data directory. Default: none (everything in memory).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.0.behaviour.data_dir = Some(dir.into());
        self
    }

    /// The wall clock. Default: the system clock. Tests inject a
    /// [`crate::ManualClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.0.behaviour.clock = clock;
        self
    }

    /// Seeds the behaviour's random number generator (identity keys, record
    /// ids), for reproducible tests. Default: seeded from the operating system.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.0.behaviour.rng_seed = Some(seed);
        self
    }

    /// The Argon2id costs of the group passwords this node sets
    /// ([`crate::Behaviour::create_password_group`]). Default:
    /// [`KdfParams::DEFAULT`] (19 MiB, 2 passes, 1 lane: OWASP's minimum);
    /// the costs travel in the group's properties, and every joiner and
    /// password change pays them once.
    pub fn password_kdf(mut self, kdf: KdfParams) -> Self {
        self.0.behaviour.password_kdf = kdf;
        self
    }

    /// Validates and returns the node's configuration. Errors: no listen
    /// address, a bootstrap address without its peer id, a zero duration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.0;
        if c.listen.is_empty() {
            return Err(ConfigError::NoListenAddress);
        }
        c.behaviour.validate()?;
        Ok(c)
    }

    /// Validates and returns the protocol settings for an embedded
    /// [`crate::Behaviour`]. Errors: as [`ConfigBuilder::build`], and
    /// `NodeOnly` for a listen address or transport seed, which an embedded
    /// behaviour would ignore (the application's swarm listens and holds
    /// the key).
    pub fn build_behaviour(self) -> Result<BehaviourConfig, ConfigError> {
        let c = self.0;
        if !c.default_listen {
            return Err(ConfigError::NodeOnly("listen"));
        }
        if c.transport_seed.is_some() {
            return Err(ConfigError::NodeOnly("transport_seed"));
        }
        c.behaviour.validate()?;
        Ok(c.behaviour)
    }
}

impl BehaviourConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let c = self;
        if let Some(bad) = c
            .bootstrap
            .iter()
            .find(|a| !matches!(a.iter().last(), Some(Protocol::P2p(_))))
        {
            return Err(ConfigError::BootstrapWithoutPeerId(bad.clone()));
        }
        for (name, d) in [
            ("connect_timeout", c.connect_timeout),
            ("anti_entropy_interval", c.anti_entropy_interval),
            ("expiry_interval", c.expiry_interval),
            ("heartbeat", c.heartbeat),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_behaviour_takes_protocol_settings_only() {
        let behaviour = Config::builder()
            .mdns(false)
            .ping(false)
            .build_behaviour()
            .unwrap();
        assert!(!behaviour.mdns && !behaviour.ping);
        let listen = Config::builder()
            .listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
            .build_behaviour();
        assert_eq!(listen.unwrap_err(), ConfigError::NodeOnly("listen"));
        let seed = Config::builder().transport_seed([1; 32]).build_behaviour();
        assert_eq!(seed.unwrap_err(), ConfigError::NodeOnly("transport_seed"));
        // A node's configuration carries the same protocol settings.
        let node = Config::builder().mdns(false).build().unwrap();
        assert!(!BehaviourConfig::from(node).mdns);
        assert_eq!(
            Config::builder()
                .heartbeat(Duration::ZERO)
                .build_behaviour()
                .unwrap_err(),
            ConfigError::ZeroDuration("heartbeat")
        );
    }
}

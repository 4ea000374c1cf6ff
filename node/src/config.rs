//! The node's [`Config`], built with [`ConfigBuilder`]; every default is documented.

use std::{path::PathBuf, sync::Arc, time::Duration};

use libp2p::{Multiaddr, multiaddr::Protocol};
use peergroup_protocol::KdfParams;
use thiserror::Error;

use crate::behaviour::{Clock, SystemClock};

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
}

/// Node configuration. Build it with [`Config::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) listen: Vec<Multiaddr>,
    /// Whether `listen` is the default (never set): only then may a taken
    /// port fall back to one the OS chooses.
    pub(crate) default_listen: bool,
    pub(crate) bootstrap: Vec<Multiaddr>,
    pub(crate) mdns: bool,
    pub(crate) kademlia: bool,
    pub(crate) identify: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) anti_entropy_interval: Duration,
    pub(crate) expiry_interval: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) transport_seed: Option<[u8; 32]>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng_seed: Option<u64>,
    pub(crate) password_kdf: KdfParams,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![
                Multiaddr::empty()
                    .with(Protocol::Ip4([0, 0, 0, 0].into()))
                    .with(Protocol::Tcp(DEFAULT_PORT)),
            ],
            default_listen: true,
            bootstrap: Vec::new(),
            mdns: true,
            kademlia: true,
            identify: true,
            connect_timeout: Duration::from_secs(30),
            anti_entropy_interval: peergroup_protocol::session::DEFAULT_ANTI_ENTROPY_INTERVAL,
            expiry_interval: Duration::from_secs(15),
            heartbeat: Duration::from_secs(1),
            transport_seed: None,
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
        self.data_dir.as_ref()
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
        self.0.bootstrap = addrs.into_iter().collect();
        self
    }

    /// Whether to discover link-local peers with mDNS (the link-local cloud). Default: on.
    pub fn mdns(mut self, on: bool) -> Self {
        self.0.mdns = on;
        self
    }

    /// Whether to run Kademlia (the global cloud). Default: on.
    pub fn kademlia(mut self, on: bool) -> Self {
        self.0.kademlia = on;
        self
    }

    /// Whether to run identify, which tells Kademlia the listen addresses of
    /// peers that dial us. Default: on. An application with its own identify
    /// turns it off.
    pub fn identify(mut self, on: bool) -> Self {
        self.0.identify = on;
        self
    }

    /// How long `connect` waits for a not-yet-ready group to find a member and
    /// copy its database before failing with `NoMembersFound`. Default: 30 s
    /// (the timeout Windows recommends for `PeerGroupConnect`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.0.connect_timeout = timeout;
        self
    }

    /// How often a ready member reconciles with one of its neighbours
    /// (anti-entropy), on top of reconciling with every new neighbour.
    /// Default: 30 s.
    pub fn anti_entropy_interval(mut self, interval: Duration) -> Self {
        self.0.anti_entropy_interval = interval;
        self
    }

    /// How often expired records are removed. Default: 15 s (the shortest
    /// interval of the Windows record expiration timer).
    pub fn expiry_interval(mut self, interval: Duration) -> Self {
        self.0.expiry_interval = interval;
        self
    }

    /// The gossipsub heartbeat. Default: 1 s (gossipsub's own default).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.0.heartbeat = interval;
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
        self.0.data_dir = Some(dir.into());
        self
    }

    /// The wall clock. Default: the system clock. Tests inject a
    /// [`crate::ManualClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.0.clock = clock;
        self
    }

    /// Seeds the behaviour's random number generator (identity keys, record
    /// ids), for reproducible tests. Default: seeded from the operating system.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.0.rng_seed = Some(seed);
        self
    }

    /// The Argon2id costs of the group passwords this node sets
    /// ([`crate::Behaviour::create_password_group`]). Default:
    /// [`KdfParams::DEFAULT`] (19 MiB, 2 passes, 1 lane: OWASP's minimum);
    /// the costs travel in the group's properties, and every joiner and
    /// password change pays them once.
    pub fn password_kdf(mut self, kdf: KdfParams) -> Self {
        self.0.password_kdf = kdf;
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.0;
        if c.listen.is_empty() {
            return Err(ConfigError::NoListenAddress);
        }
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
        Ok(c)
    }
}

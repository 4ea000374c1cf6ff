//! The peergroup node: the Windows Peer-to-Peer Grouping model on rust-libp2p.
//!
//! Two ways in:
//!
//! - [`Node::spawn`] starts a ready-made node and returns a [`Handle`], whose
//!   methods mirror the Windows functions (create, join, connect, records,
//!   invitations, ...), and a [`Subscription`] to its [`Event`]s.
//! - An application with its own libp2p `Swarm` adds [`Behaviour`] as one
//!   field of its `#[derive(NetworkBehaviour)]` struct, calls its methods
//!   and matches its [`Event`]s (`examples/embed.rs`).
//!
//! The design is in the project's `architecture.md`: a sans-I/O session per
//! group (`peergroup_protocol::Session`), this crate's behaviour as the shell
//! that turns its outputs into I/O, storage and signature checks off the
//! swarm task, and the node as a thin host.
//!
//! # Layout
//!
//! - `behaviour`: [`Behaviour`] (the `NetworkBehaviour`, poll order, the
//!   public API), its [`Event`]s, [`OperationId`]s and [`Clock`]s.
//! - `config`: [`Config`] and its builder, with every default documented.
//! - [`auth`]: group authentication of every neighbour (`/peergroup/auth/1`):
//!   its messages, and the glue.
//! - [`password`]: password admission over the network (`/peergroup/password/1`).
//! - `keystore`: local identities. `groups`: group name to session.
//! - `gossip`: topics, gossipsub configuration, received messages, verdicts.
//! - `verify`: the verify pool (signature checks on worker threads).
//! - `discovery`: Kademlia providers, mDNS, bootstrap, the address book.
//! - [`sync`]: synchronization (reconciliation and fetches): messages and glue.
//! - [`storage`]: the storage worker and the [`storage::Backend`]s
//!   ([`storage::RedbStore`] on disk, [`storage::MemoryBackend`]).
//! - `node`: [`Node`], its event loop, [`Request`]/[`Response`] commands,
//!   the [`Handle`] and filtered [`Subscription`]s.
//! - `error`: [`Error`].

pub mod auth;
mod behaviour;
mod config;
#[cfg(feature = "control")]
pub mod control;
mod discovery;
mod error;
mod gossip;
mod groups;
mod keystore;
mod metrics;
mod node;
pub mod password;
mod pipeline;
pub mod storage;
pub mod sync;
mod verify;

pub use peergroup_protocol as protocol;

pub use self::{
    behaviour::{
        Behaviour, BuildError, Clock, DEFAULT_INVITATION_LIFETIME, Event, GroupEntry,
        IDENTIFY_PROTOCOL, KAD_PROTOCOL, ManualClock, OperationError, OperationId, Stats,
        SystemClock, live_records,
    },
    config::{BehaviourConfig, Config, ConfigBuilder, ConfigError, DEFAULT_PORT},
    discovery::provider_key,
    error::Error,
    gossip::{GOSSIP_PROTOCOL_PREFIX, MAX_TRANSMIT_SIZE, topic_of},
    node::{
        COMMAND_CAPACITY, EVENT_CAPACITY, EventFilter, EventKind, ExportedIdentity, GroupPassword,
        Handle, KEY_FILE, Missed, Node, Request, Response, Subscription,
    },
};
pub use peergroup_protocol::session::{ConnectionChange, MemberChange, RecordChange, Status};

/// The node's version, as the binary reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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
//! The design is in `docs/design.md` and the project's shared
//! `architecture.md` (beside the repository): a sans-I/O session per
//! group (`peergroup_protocol::Session`), this crate's behaviour as the shell
//! that turns its outputs into I/O, storage and signature checks off the
//! swarm task, and the node as a thin host.
//!
//! # Layout
//!
//! The behaviour composes components that own their state; only
//! `behaviour/` moves data between them (nothing below imports it):
//!
//! - `behaviour`: [`Behaviour`], the composition. `mod.rs`: its fields
//!   (the components), construction, the one timer and the inner events;
//!   `network.rs`: the `NetworkBehaviour` impl and the poll order; `api.rs`:
//!   the public API (the Windows functions); `route.rs`: executing the
//!   groups router's outputs; `admission.rs`: password admission's glue,
//!   all of it; `gossip.rs`, `sync.rs`, `discovery.rs`, `work.rs`,
//!   `connections.rs`, `peer_time.rs`: turning one component's events into
//!   the others' inputs; `inner.rs`: the libp2p behaviours underneath.
//! - `groups`: the protocol's groups router (sessions, group
//!   authentication, neighbours, peer time) over libp2p types.
//! - [`auth`], [`password`]: carriers of the authentication and password
//!   admission requests (`/peergroup/auth/1`, `/peergroup/password/1`); the
//!   decisions are the protocol crate's (`groups`, `admission`).
//! - [`sync`]: synchronization's messages and request correlation.
//! - `pipeline`: storage and verification off the swarm task, and the read
//!   overlay of local writes.
//! - `gossip`: topics, gossipsub configuration, the wire, verdicts.
//! - `discovery`: Kademlia providers, mDNS, bootstrap, the address book.
//! - `verify`: the verify pool. `keystore`: local identities.
//! - [`storage`]: the storage worker and the [`storage::Backend`]s
//!   ([`storage::RedbStore`] on disk, [`storage::MemoryBackend`]).
//! - `config`: [`Config`] (the node's) and [`BehaviourConfig`] (an
//!   embedder's), one builder, every default documented.
//! - `clock`: [`Clock`]s. `event`: [`Event`]s and [`OperationId`]s.
//! - `node`: [`Node`], its event loop, [`Request`]/[`Response`] commands,
//!   the [`Handle`] and filtered [`Subscription`]s.
//! - `error`: [`Error`].

pub mod auth;
mod behaviour;
mod clock;
mod config;
#[cfg(feature = "control")]
pub mod control;
mod discovery;
mod error;
mod event;
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
        Behaviour, BuildError, Clock, DEFAULT_INVITATION_LIFETIME, Event, GroupEntry, GroupEvent,
        GroupEventKind, IDENTIFY_PROTOCOL, KAD_PROTOCOL, ManualClock, OperationError, OperationId,
        Stats, SystemClock, live_records,
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

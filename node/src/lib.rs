//! The peergroup node: the Windows Peer-to-Peer Grouping model on rust-libp2p.
//!
//! [`Node::spawn`] starts a node and returns a [`Handle`] whose methods mirror
//! the Windows functions (create, join, connect, records, invitations, ...)
//! and a [`Subscription`] to its [`Event`]s. Applications with their own
//! libp2p `Swarm` embed [`Behaviour`] instead and drive it with an [`Engine`].
//!
//! # Layout
//!
//! - `config`: [`Config`] and its builder, with every default documented.
//! - `behaviour`: the composed libp2p [`Behaviour`] (gossipsub, Kademlia, mDNS,
//!   identify, request-response); every protocol id is private.
//! - `engine`: the [`Engine`]: groups, identities, gossip validation,
//!   discovery, the first-connect copy; no swarm ownership, no clock.
//! - `sync`: the first-connect copy protocol's messages and authentication.
//! - `node`: the event loop owning the swarm, and the [`Handle`].
//! - `events`: [`Event`]s and filtered [`Subscription`]s.
//! - `error`: [`NodeError`].
//! - [`store`]: [`store::RedbStore`], the persistent record database, keystore
//!   and group list in one redb file, with its migrations and error types.

mod behaviour;
mod config;
mod engine;
mod error;
mod events;
mod node;
pub mod store;
pub mod sync;

pub use peergroup_protocol as protocol;

pub use self::{
    behaviour::{
        Behaviour, BehaviourError, BehaviourEvent, GOSSIP_PROTOCOL_PREFIX, IDENTIFY_PROTOCOL,
        KAD_PROTOCOL, MAX_TRANSMIT_SIZE,
    },
    config::{Config, ConfigBuilder, ConfigError, DEFAULT_PORT},
    engine::{ConnectStart, Engine, provider_key, topic_of},
    error::NodeError,
    events::{
        ConnectionChange, EVENT_CAPACITY, Event, EventFilter, EventKind, MemberChange, Missed,
        RecordChange, Status, Subscription,
    },
    node::{COMMAND_CAPACITY, Handle, Node},
};

/// The node's version, as the binary reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

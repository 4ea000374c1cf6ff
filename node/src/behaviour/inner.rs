//! The libp2p behaviours peergroup builds on, composed by the derive macro.

use std::time::Duration;

use libp2p::{
    PeerId, StreamProtocol, gossipsub, identify,
    identity::PublicKey,
    kad, mdns, ping,
    request_response::{self, ProtocolSupport},
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
};

use crate::{auth, config::BehaviourConfig, error::BuildError, gossip, password, sync};

/// The Kademlia protocol id.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/kad/1.0.0");
/// The identify protocol id.
pub const IDENTIFY_PROTOCOL: &str = "/peergroup/id/1.0.0";

/// How often every connection is pinged, and how long a ping may take.
/// A connection whose ping fails is closed (libp2p's ping only reports the
/// failure): a link that died without a TCP reset (a cable pulled, a
/// container cut off its network, a NAT that forgot the mapping) is
/// otherwise kept for as long as TCP retransmits, about 15 minutes, and the
/// neighbour is neither redialed nor reconciled with. Detection takes the
/// interval plus the timeout, plus the stream negotiation's own timeout when
/// the ping stream must be opened again: about 25 s in the compose suite.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(5);
/// See [`PING_INTERVAL`].
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a synchronization request may wait for its page.
pub(crate) const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The inner behaviours. None of them denies connections, so the field
/// order only sets the order in which they are polled: gossip first, as it
/// carries the traffic. Kademlia, mDNS and identify can be switched off
/// ([`Config`]) for an application that brings its own discovery.
///
/// `pub` only because the handler type of [`crate::Behaviour`] names it; the
/// module is private, so nothing outside the crate can reach it.
#[derive(NetworkBehaviour)]
#[allow(missing_debug_implementations, unreachable_pub)] // the derive's generated types have none
pub struct Inner {
    /// Propagation: one topic per group.
    pub(crate) gossipsub: gossipsub::Behaviour,
    /// Group authentication of every neighbour.
    pub(crate) auth: request_response::cbor::Behaviour<auth::Request, auth::Response>,
    /// Password admission.
    pub(crate) password: request_response::cbor::Behaviour<password::Request, password::Response>,
    /// Synchronization: reconciliation and fetches.
    pub(crate) sync: request_response::cbor::Behaviour<sync::Request, sync::Response>,
    /// The global cloud.
    pub(crate) kademlia: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    /// The link-local cloud.
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    /// Tells Kademlia the listen addresses of peers that dialed us.
    pub(crate) identify: Toggle<identify::Behaviour>,
    /// Finds connections that died silently ([`PING_INTERVAL`]); optional
    /// (`ConfigBuilder::ping`).
    pub(crate) ping: Toggle<ping::Behaviour>,
}

impl Inner {
    pub(crate) fn new(key: &PublicKey, config: &BehaviourConfig) -> Result<Inner, BuildError> {
        let peer_id = PeerId::from_public_key(key);
        let codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(sync::MAX_REQUEST_BYTES)
            .set_response_size_maximum(sync::MAX_RESPONSE_BYTES);
        let sync = request_response::Behaviour::with_codec(
            codec,
            [(sync::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(SYNC_REQUEST_TIMEOUT),
        );
        let auth_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(auth::MAX_MESSAGE_BYTES)
            .set_response_size_maximum(auth::MAX_MESSAGE_BYTES);
        let auth = request_response::Behaviour::with_codec(
            auth_codec,
            [(auth::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(auth::AUTH_TIMEOUT),
        );
        let password_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(password::MAX_MESSAGE_BYTES)
            .set_response_size_maximum(password::MAX_MESSAGE_BYTES);
        let password = request_response::Behaviour::with_codec(
            password_codec,
            [(password::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(password::PASSWORD_TIMEOUT),
        );
        let kademlia = config.kademlia.then(|| {
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config.set_query_timeout(Duration::from_secs(30));
            // Provider records expire after an hour on the nodes that store
            // them (a departed member stops being found) and Kademlia
            // announces ours again every 20 minutes, well before that.
            kad_config.set_provider_record_ttl(Some(crate::discovery::PROVIDER_TTL));
            kad_config
                .set_provider_publication_interval(Some(crate::discovery::PROVIDER_REANNOUNCE));
            // Without bootstrap peers the routing table starts empty, and
            // Kademlia's periodic bootstrap would only warn "no known peers"
            // every few minutes. Peers found later (mDNS, identify) still
            // start a bootstrap on their own (Kademlia's automatic one).
            if config.bootstrap.is_empty() {
                kad_config.set_periodic_bootstrap_interval(None);
            }
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                kad::store::MemoryStore::new(peer_id),
                kad_config,
            );
            // Every node answers queries: peergroup nodes are servers, and
            // on loopback or LAN no external address would ever be confirmed.
            kad.set_mode(Some(kad::Mode::Server));
            kad
        });
        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(BuildError::Mdns)?,
            )
        } else {
            None
        };
        let identify = config.identify.then(|| {
            identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL.into(), key.clone()))
        });
        Ok(Inner {
            gossipsub: gossip::behaviour(config)?,
            auth,
            password,
            sync,
            kademlia: kademlia.into(),
            mdns: mdns.into(),
            identify: identify.into(),
            ping: config
                .ping
                .then(|| {
                    ping::Behaviour::new(
                        ping::Config::new()
                            .with_interval(PING_INTERVAL)
                            .with_timeout(PING_TIMEOUT),
                    )
                })
                .into(),
        })
    }
}

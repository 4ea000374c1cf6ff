//! A peer that speaks peergroup's wire protocols by hand (gossipsub, group
//! authentication, sync), so that tests can play an outsider, a dishonest
//! member or a bogus sync server against real nodes, and look at every byte
//! a node sends it.
#![allow(dead_code)] // shared by test modules; not every test uses every helper

use std::{collections::HashSet, time::Duration};

use futures::StreamExt as _;
use libp2p::{
    Multiaddr, PeerId, Swarm, gossipsub,
    request_response::{self, Message, ProtocolSupport},
    swarm::{NetworkBehaviour, SwarmEvent},
};
use peergroup::node::{auth, password, sync};
use peergroup::protocol::{
    AuthProof, AuthRole, CredentialChain, GroupKey, Identity, PakeContext, PasswordCheck,
    PasswordSecret, PeerName, Transcript, group_tag, seal, unwrap_key,
};

/// A deterministic CSPRNG for the raw peer's SPAKE2 messages (tests need
/// freshness, not secrecy).
fn rand_core_rng(seed: [u8; 32]) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::from_seed(seed)
}

/// The protocols a peergroup node speaks, without any of its logic.
#[derive(NetworkBehaviour)]
pub(crate) struct Wire {
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) auth: request_response::cbor::Behaviour<auth::Request, auth::Response>,
    pub(crate) password: request_response::cbor::Behaviour<password::Request, password::Response>,
    pub(crate) sync: request_response::cbor::Behaviour<sync::Request, sync::Response>,
}

/// How the raw peer proves membership when asked: the proof it sends for a
/// role and transcript.
pub(crate) type Prover = Box<dyn Fn(AuthRole, &Transcript<'_>) -> AuthProof + Send>;

/// An honest prover: `identity` with `chain`.
pub(crate) fn honest(identity: Identity, chain: CredentialChain) -> Prover {
    Box::new(move |role, transcript| AuthProof::new(&identity, &chain, role, transcript).unwrap())
}

/// What a raw peer saw, for assertions.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Every gossip payload received, as received.
    pub(crate) gossip: Vec<Vec<u8>>,
    /// Peers that authenticated us (an `Accepted` answer).
    pub(crate) accepted_by: HashSet<PeerId>,
    /// Refusals of our authentication, by reason.
    pub(crate) refusals: Vec<String>,
    /// Sync requests received.
    pub(crate) sync_requests: usize,
    /// Connections that closed, by peer.
    pub(crate) closed: Vec<PeerId>,
    /// Sync responses received.
    pub(crate) sync_responses: Vec<sync::Response>,
    /// Password exchanges started with it (each brings a SPAKE2 message).
    pub(crate) password_starts: usize,
    /// Password confirmations sent to it.
    pub(crate) password_confirms: usize,
}

/// A hand-driven peer for one group. See the module docs.
pub(crate) struct RawPeer {
    pub(crate) swarm: Swarm<Wire>,
    pub(crate) group: PeerName,
    pub(crate) seen: Seen,
    /// How it proves itself; `None`: it refuses every exchange.
    prover: Option<Prover>,
    /// The identity whose key unwraps the group key.
    unwrap_with: Option<Identity>,
    /// The group key, once a node handed it over.
    pub(crate) key: Option<GroupKey>,
    /// What it answers sync requests with (`None`: a refusal).
    pub(crate) sync_answer: Option<sync::Response>,
    /// How it answers reconciliation queries, if not with `sync_answer`:
    /// the properties envelope and its claimed items (each query gets the
    /// items inside its range).
    pub(crate) reconcile_items: Option<(
        serde_bytes::ByteBuf,
        Vec<peergroup::protocol::reconcile::Item>,
    )>,
    /// Whether it starts exchanges itself when a node subscribes.
    pub(crate) initiate: bool,
    /// A password it pretends to know: it answers password joiners with a
    /// challenge made from it (an impostor's guess).
    pub(crate) password_guess: Option<PasswordSecret>,
    /// A group key it hands whoever it authenticates (a substitute).
    pub(crate) hand_key: Option<GroupKey>,
    /// A password secret it hands whoever it authenticates (a planted one).
    pub(crate) hand_password: Option<PasswordSecret>,
    /// Exchanges it started: peer, our nonce, their nonce.
    started: Vec<(PeerId, [u8; 32], Option<[u8; 32]>)>,
    /// Exchanges it answered: peer, their nonce, our nonce.
    answered: Vec<(PeerId, [u8; 32], [u8; 32])>,
    counter: u64,
}

fn gossip_config() -> gossipsub::Config {
    gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(peergroup::node::GOSSIP_PROTOCOL_PREFIX)
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(|m| {
            use sha2::Digest;
            gossipsub::MessageId::from(sha2::Sha256::digest(&m.data)[..20].to_vec())
        })
        .max_transmit_size(peergroup::node::MAX_TRANSMIT_SIZE)
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .unwrap()
}

impl RawPeer {
    /// A raw peer for `group`, listening on loopback. With `prover` it
    /// answers (and, with `initiate`, starts) authentication exchanges as
    /// that prover says; `unwrap_with` opens the group key it is handed.
    pub(crate) async fn new(
        group: &PeerName,
        prover: Option<Prover>,
        unwrap_with: Option<Identity>,
    ) -> RawPeer {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config())
                .unwrap();
        let auth = request_response::cbor::Behaviour::new(
            [(auth::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        );
        let sync = request_response::cbor::Behaviour::new(
            [(sync::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        );
        let password = request_response::cbor::Behaviour::new(
            [(password::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        );
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| Wire {
                gossipsub,
                auth,
                password,
                sync,
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let mut raw = RawPeer {
            swarm,
            group: group.clone(),
            seen: Seen::default(),
            prover,
            unwrap_with,
            key: None,
            sync_answer: None,
            reconcile_items: None,
            initiate: true,
            password_guess: None,
            hand_key: None,
            hand_password: None,
            started: Vec::new(),
            answered: Vec::new(),
            counter: 0,
        };
        raw.until(10, "listening", |r| r.swarm.listeners().next().is_some())
            .await;
        raw
    }

    /// Its listen address (with its peer id).
    pub(crate) fn addr(&self) -> Multiaddr {
        let addr = self
            .swarm
            .external_addresses()
            .next()
            .cloned()
            .unwrap_or_else(|| self.swarm.listeners().next().cloned().unwrap());
        addr.with_p2p(*self.swarm.local_peer_id()).unwrap()
    }

    pub(crate) fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// The group's gossip topic.
    pub(crate) fn topic(&self) -> gossipsub::IdentTopic {
        peergroup::node::topic_of(&self.group)
    }

    /// Dials `addr` and subscribes to the group's topic.
    pub(crate) fn join_topic(&mut self, addr: Multiaddr) {
        self.swarm.dial(addr).unwrap();
        let topic = self.topic();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .unwrap();
    }

    /// Publishes `bytes` as they are on the group's topic.
    pub(crate) fn publish_raw(&mut self, bytes: Vec<u8>) -> bool {
        let topic = self.topic();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, bytes)
            .is_ok()
    }

    /// Seals `envelope` under the group key it was handed and publishes it.
    pub(crate) fn publish_sealed(&mut self, envelope: &[u8]) -> bool {
        let sealed = self.seal(envelope);
        self.publish_raw(sealed)
    }

    /// Seals `envelope` under the group key it was handed.
    pub(crate) fn seal(&mut self, envelope: &[u8]) -> Vec<u8> {
        let nonce = self.fresh::<24>();
        seal(
            self.key.as_ref().expect("no group key yet"),
            &self.group,
            nonce,
            envelope,
        )
        .unwrap()
    }

    /// Unique bytes (tests need freshness, not secrecy).
    fn fresh<const N: usize>(&mut self) -> [u8; N] {
        use sha2::Digest;
        self.counter += 1;
        let digest = sha2::Sha256::digest(
            [
                self.peer_id().to_bytes(),
                self.counter.to_be_bytes().to_vec(),
            ]
            .concat(),
        );
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = digest[i % digest.len()];
        }
        out
    }

    /// Starts an exchange with `peer` for the group.
    pub(crate) fn start_auth(&mut self, peer: PeerId) {
        let nonce = self.fresh::<32>();
        let tag = group_tag(&self.group);
        self.swarm.behaviour_mut().auth.send_request(
            &peer,
            auth::Request::Hello {
                tag,
                nonce,
                time: crate::support::now(),
                anchored: false,
            },
        );
        self.started.push((peer, nonce, None));
    }

    /// Handles swarm events until `check` holds (at most `secs`).
    pub(crate) async fn until(
        &mut self,
        secs: u64,
        what: &str,
        mut check: impl FnMut(&RawPeer) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !check(self) {
            match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(event) => self.on_event(event),
                Err(_) => panic!("raw peer: timed out after {secs} s waiting for: {what}"),
            }
        }
    }

    /// Handles swarm events for `duration`.
    pub(crate) async fn run_for(&mut self, duration: Duration) {
        let deadline = tokio::time::Instant::now() + duration;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await
        {
            self.on_event(event);
        }
    }

    pub(crate) fn on_event(&mut self, event: SwarmEvent<WireEvent>) {
        match event {
            SwarmEvent::Behaviour(WireEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(WireEvent::Auth(event)) => self.on_auth(event),
            SwarmEvent::Behaviour(WireEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(WireEvent::Password(event)) => self.on_password(event),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.seen.closed.push(peer_id),
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message { message, .. } => self.seen.gossip.push(message.data),
            gossipsub::Event::Subscribed { peer_id, topic }
                if topic == self.topic().hash() && self.initiate && self.prover.is_some() =>
            {
                self.start_auth(peer_id);
            }
            _ => {}
        }
    }

    fn proof(&self, role: AuthRole, transcript: &Transcript<'_>) -> Option<AuthProof> {
        self.prover.as_ref().map(|p| p(role, transcript))
    }

    fn on_auth(&mut self, event: request_response::Event<auth::Request, auth::Response>) {
        let request_response::Event::Message { peer, message, .. } = event else {
            return;
        };
        let me = self.peer_id().to_bytes();
        let them = peer.to_bytes();
        match message {
            Message::Request {
                request, channel, ..
            } => {
                let response = match request {
                    auth::Request::Hello { tag, nonce, .. }
                        if tag == group_tag(&self.group) && self.prover.is_some() =>
                    {
                        let ours = self.fresh::<32>();
                        self.answered.push((peer, nonce, ours));
                        auth::Response::Nonce {
                            nonce: ours,
                            time: crate::support::now(),
                            anchored: false,
                        }
                    }
                    auth::Request::Prove {
                        proof: theirs_proof,
                        ..
                    } => {
                        // What it hands the initiator, wrapped for the key
                        // its proof names.
                        let recipient = peergroup::protocol::Signed::<
                            peergroup::protocol::IdentityInfo,
                        >::from_bytes(
                            &theirs_proof.identity
                        )
                        .ok()
                        .map(|info| info.payload().key);
                        let handed_key = self.hand_key.clone().zip(recipient).map(|(k, to)| {
                            peergroup::protocol::wrap_key(
                                &k,
                                &to,
                                [7; 32],
                                self.group.as_str().as_bytes(),
                            )
                            .unwrap()
                        });
                        let handed_password =
                            self.hand_password.clone().zip(recipient).map(|(w, to)| {
                                peergroup::protocol::wrap_password_secret(
                                    &w,
                                    &self.group,
                                    &to,
                                    [8; 32],
                                )
                                .unwrap()
                            });
                        match self
                            .answered
                            .iter()
                            .rev()
                            .find(|(p, _, _)| *p == peer)
                            .copied()
                        {
                            Some((_, theirs, ours)) => {
                                let transcript = Transcript {
                                    group: &self.group,
                                    initiator: &them,
                                    responder: &me,
                                    initiator_nonce: theirs,
                                    responder_nonce: ours,
                                };
                                match self.proof(AuthRole::Responder, &transcript) {
                                    Some(proof) => auth::Response::Accepted {
                                        proof,
                                        key: handed_key,
                                        chain: None,
                                        password: handed_password,
                                    },
                                    None => auth::Response::Refused {
                                        reason: "raw peer".into(),
                                    },
                                }
                            }
                            None => auth::Response::Refused {
                                reason: "no exchange".into(),
                            },
                        }
                    }
                    auth::Request::Hello { .. } => auth::Response::Refused {
                        reason: "raw peer".into(),
                    },
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .auth
                    .send_response(channel, response);
            }
            Message::Response { response, .. } => match response {
                auth::Response::Nonce { nonce, .. } => {
                    let Some(entry) = self
                        .started
                        .iter_mut()
                        .rev()
                        .find(|(p, _, theirs)| *p == peer && theirs.is_none())
                    else {
                        return;
                    };
                    entry.2 = Some(nonce);
                    let ours = entry.1;
                    let transcript = Transcript {
                        group: &self.group,
                        initiator: &me,
                        responder: &them,
                        initiator_nonce: ours,
                        responder_nonce: nonce,
                    };
                    if let Some(proof) = self.proof(AuthRole::Initiator, &transcript) {
                        let tag = group_tag(&self.group);
                        self.swarm
                            .behaviour_mut()
                            .auth
                            .send_request(&peer, auth::Request::Prove { tag, proof });
                    }
                }
                auth::Response::Accepted { key, .. } => {
                    self.seen.accepted_by.insert(peer);
                    if let (Some(wrapped), Some(identity)) = (key, self.unwrap_with.as_ref())
                        && let Ok(key) =
                            unwrap_key(&wrapped, identity.keypair(), self.group.as_str().as_bytes())
                    {
                        self.key = Some(key);
                    }
                }
                auth::Response::Refused { reason } => self.seen.refusals.push(reason),
                auth::Response::Renew { .. } => self.seen.refusals.push("renew".into()),
            },
        }
    }

    fn on_password(
        &mut self,
        event: request_response::Event<password::Request, password::Response>,
    ) {
        let request_response::Event::Message {
            peer,
            message: Message::Request {
                request, channel, ..
            },
            ..
        } = event
        else {
            return;
        };
        let response = match (request, self.password_guess.clone()) {
            (
                password::Request::Start {
                    identity,
                    message,
                    nonce: theirs,
                    ..
                },
                Some(guess),
            ) => {
                self.seen.password_starts += 1;
                let mut rng = rand_core_rng(self.fresh::<32>());
                let ours = self.fresh::<32>();
                let (me, them) = (self.peer_id().to_bytes(), peer.to_bytes());
                let transcript = Transcript {
                    group: &self.group,
                    initiator: &them,
                    responder: &me,
                    initiator_nonce: theirs,
                    responder_nonce: ours,
                };
                // Its own prover if it has one, else an identity of its own
                // claiming the creator's (empty) chain.
                let proof = self
                    .proof(AuthRole::Responder, &transcript)
                    .unwrap_or_else(|| {
                        let stranger = peergroup::protocol::testing::identity(99, "stranger");
                        AuthProof::new(
                            &stranger,
                            &CredentialChain::creator(),
                            AuthRole::Responder,
                            &transcript,
                        )
                        .unwrap()
                    });
                let context = PakeContext {
                    group: &self.group,
                    joiner_identity: &identity,
                    joiner_peer: &them,
                    responder_peer: &me,
                };
                match PasswordCheck::start(&guess, &context, &message, &mut rng) {
                    Ok((_, b, confirm_b)) => password::Response::Challenge {
                        message: b.into(),
                        confirmation: confirm_b.to_vec().into(),
                        proof,
                        nonce: ours,
                    },
                    Err(e) => password::Response::Refused {
                        reason: e.to_string(),
                        retry_after_ms: None,
                    },
                }
            }
            (password::Request::Confirm { .. }, _) => {
                self.seen.password_confirms += 1;
                password::Response::Refused {
                    reason: "raw peer".into(),
                    retry_after_ms: None,
                }
            }
            (password::Request::Start { .. }, None) => password::Response::Refused {
                reason: "raw peer".into(),
                retry_after_ms: None,
            },
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .password
            .send_response(channel, response);
    }

    fn on_sync(&mut self, event: request_response::Event<sync::Request, sync::Response>) {
        let request_response::Event::Message { message, .. } = event else {
            return;
        };
        match message {
            Message::Request {
                channel, request, ..
            } => {
                self.seen.sync_requests += 1;
                let response = match (&request, &self.reconcile_items) {
                    (sync::Request::Reconcile { queries, .. }, Some((properties, items))) => {
                        use peergroup::protocol::reconcile::{Answer, pack};
                        let answers = queries
                            .iter()
                            .map(|q| {
                                Answer::Items(pack(
                                    items.iter().copied().filter(|i| q.range.contains(&i.id)),
                                ))
                            })
                            .collect();
                        sync::Response::Reconciled {
                            properties: properties.clone(),
                            answers,
                        }
                    }
                    _ => self.sync_answer.clone().unwrap_or(sync::Response::Refused {
                        reason: "raw peer".into(),
                    }),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Message::Response { response, .. } => self.seen.sync_responses.push(response),
        }
    }
}

/// `identity`'s credential chain for `group`, invited by `inviter` as `role`
/// (until `expires`, if given).
pub(crate) async fn credential(
    inviter: &crate::support::Member,
    group: &PeerName,
    identity: &Identity,
    role: peergroup::protocol::Role,
    expires: Option<peergroup::protocol::Timestamp>,
) -> CredentialChain {
    let text = identity.public_text().unwrap();
    let invitation = inviter
        .handle
        .create_invitation(group, &text, role, expires)
        .await
        .unwrap();
    peergroup::protocol::InvitationInfo::parse(&invitation)
        .unwrap()
        .accept(identity, crate::support::now())
        .unwrap()
}

impl RawPeer {
    /// A raw peer speaking for `identity`, an honest member holding `chain`.
    pub(crate) async fn member(
        group: &PeerName,
        identity: &Identity,
        chain: CredentialChain,
    ) -> RawPeer {
        RawPeer::new(
            group,
            Some(honest(identity.clone(), chain)),
            Some(identity.clone()),
        )
        .await
    }

    /// Dials `node` at `addrs`, joins the topic and waits until the node
    /// accepted it and handed over the group key.
    pub(crate) async fn authenticate_with(&mut self, node: PeerId, addrs: &[Multiaddr]) {
        self.join_topic(addrs[0].clone());
        self.until(20, "authenticated, with the group key", |r| {
            r.seen.accepted_by.contains(&node) && r.key.is_some()
        })
        .await;
    }
}

/// A raw peer running in the background (see [`RawPeer::serve`]).
pub(crate) struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    pump: tokio::task::JoinHandle<RawPeer>,
}

impl Serving {
    /// Stops it; returns the peer with what it saw.
    pub(crate) async fn stop(self) -> RawPeer {
        let _ = self.stop.send(());
        self.pump.await.unwrap()
    }
}

impl RawPeer {
    /// Subscribes to the group's topic and runs in the background (for at
    /// most 60 s) until stopped, answering as configured.
    pub(crate) fn serve(mut self) -> Serving {
        let topic = self.topic();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let pump = tokio::spawn(async move {
            tokio::select! {
                _ = &mut stopped => {}
                () = self.run_for(Duration::from_secs(60)) => {}
            }
            self
        });
        Serving { stop, pump }
    }

    /// Fetches `ids` from `node` as the member it authenticated as: the
    /// group's properties envelope and the record envelopes it served.
    pub(crate) async fn fetch(
        &mut self,
        node: PeerId,
        ids: Vec<peergroup::protocol::RecordId>,
    ) -> (serde_bytes::ByteBuf, Vec<serde_bytes::ByteBuf>, u32) {
        let group = self.group.clone();
        self.swarm.behaviour_mut().sync.send_request(
            &node,
            sync::Request::Fetch {
                group,
                ids,
                max_bytes: 1 << 20,
            },
        );
        self.until(10, "the records", |r| !r.seen.sync_responses.is_empty())
            .await;
        match self.seen.sync_responses.pop() {
            Some(sync::Response::Records {
                properties,
                records,
                considered,
            }) => (properties, records, considered),
            other => panic!("the fetch was answered with {other:?}"),
        }
    }
}

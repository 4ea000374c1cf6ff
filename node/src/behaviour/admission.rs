//! Password admission's glue: the protocol's machine
//! (`peergroup_protocol::admission`) fed with what happens (requests and
//! answers of `/peergroup/password/1`, members subscribing, peers leaving,
//! time) and its outputs executed (requests sent, the admitted group
//! created and connected, events).

use libp2p::{PeerId, gossipsub::TopicHash, request_response};
use peergroup_protocol::{
    Error, GroupKey, PasswordSecret, PeerName, admission::Output as AdmissionOutput, groups::Now,
};

use super::{Behaviour, Event, OperationError, OperationId, session_config};
use crate::{
    gossip::topic_of,
    groups::GroupSession,
    password::{Request, Response},
};

impl Behaviour {
    /// A request, answer or failure of the password protocol.
    pub(super) fn on_password_event(&mut self, event: request_response::Event<Request, Response>) {
        let now = self.clocks();
        let peer_time = self.now();
        self.password_requests.on_event(
            event,
            &mut self.inner.password,
            &mut self.admission,
            &self.groups,
            now.instant,
            peer_time,
            &mut self.rng,
        );
        self.drive_admission();
    }

    /// `peer` subscribed to `topic`, which is no group of ours: a password
    /// join of that group may have a member to ask.
    pub(super) fn admission_candidate(&mut self, topic: &TopicHash, peer: PeerId) {
        let now = self.clocks();
        let joining: Vec<PeerName> = self
            .admission
            .joining()
            .filter(|g| topic_of(g).hash() == *topic)
            .cloned()
            .collect();
        for group in joining {
            self.admission
                .candidate(&group, peer, peer.to_bytes(), now.instant, &mut self.rng);
        }
        self.drive_admission();
    }

    /// The last connection to `peer` closed.
    pub(super) fn admission_peer_gone(&mut self, peer: &PeerId, now: Now) {
        self.admission.peer_gone(peer, now.instant, &mut self.rng);
        self.drive_admission();
    }

    /// Runs what is due; returns whether anything ran.
    pub(super) fn admission_timers(&mut self, now: Now) -> bool {
        if self
            .admission
            .poll_timeout()
            .is_none_or(|at| at > now.instant)
        {
            return false;
        }
        self.admission.handle_timeout(now.instant, &mut self.rng);
        self.drive_admission();
        true
    }

    /// Executes password admission's outputs until it has none.
    pub(crate) fn drive_admission(&mut self) {
        while let Some(output) = self.admission.poll_output() {
            match output {
                AdmissionOutput::Send {
                    group,
                    peer,
                    request,
                } => self
                    .password_requests
                    .send(&mut self.inner.password, group, peer, request),
                AdmissionOutput::Admitted {
                    group,
                    operation,
                    peer,
                    identity,
                    properties,
                    secret,
                    chain,
                    key,
                } => {
                    let operation = OperationId(operation);
                    let joined = self.password_admitted(
                        &group, operation, identity, properties, secret, chain, key,
                    );
                    match joined {
                        Ok(()) => tracing::info!(%group, %peer, "admitted by password"),
                        Err(error) => self.password_join_failed(&group, operation, error),
                    }
                }
                AdmissionOutput::JoinFailed {
                    group,
                    operation,
                    error,
                } => self.password_join_failed(&group, OperationId(operation), error),
                AdmissionOutput::AuthenticationFailed {
                    group,
                    peer,
                    reason,
                } => self.events.push_back(Event::AuthenticationFailed {
                    group,
                    peer,
                    reason,
                }),
                AdmissionOutput::AttemptFailed {
                    group,
                    peer,
                    reason,
                } => {
                    tracing::warn!(%group, %peer, %reason, "password check failed");
                    self.stats.password_failures = self.stats.password_failures.saturating_add(1);
                    self.events.push_back(Event::AuthenticationFailed {
                        group,
                        peer,
                        reason,
                    });
                }
                AdmissionOutput::AdmittedJoiner {
                    group,
                    peer,
                    joiner,
                } => tracing::info!(%group, %peer, %joiner, "admitted a password joiner"),
            }
        }
        self.wake();
    }

    fn password_join_failed(&mut self, group: &PeerName, operation: OperationId, error: Error) {
        tracing::warn!(%group, %error, "password join failed");
        self.events.push_back(Event::OperationCompleted {
            operation,
            result: Err(OperationError::Peer(error)),
        });
    }

    /// A member admitted this node to `group` by password: join with the
    /// credential it minted, keep the key and the password's secret, and
    /// connect (authentication and the first synchronization follow; the
    /// join's `operation` completes with that connect).
    #[allow(clippy::too_many_arguments)] // what the admission hands over
    pub(super) fn password_admitted(
        &mut self,
        group: &PeerName,
        operation: OperationId,
        identity: peergroup_protocol::Identity,
        properties: peergroup_protocol::SignedProperties,
        secret: PasswordSecret,
        chain: peergroup_protocol::CredentialChain,
        key: Option<GroupKey>,
    ) -> Result<(), Error> {
        let now = self.observed_now();
        let mut session =
            GroupSession::join(properties, identity, chain, session_config(&self.config))?;
        if let Some(key) = key {
            session.learn_key(key)?;
        }
        session.remember_password(secret);
        self.groups.insert(session);
        if let Err(e) = self.start_connect(group, operation, now) {
            self.groups.remove(group);
            return Err(e);
        }
        self.drive(group, false);
        Ok(())
    }
}

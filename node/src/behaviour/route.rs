//! Executing what the machines decide: the groups router's outputs (its
//! own and each session's). Each output becomes
//! a libp2p request, a score, a close, a storage write or an event.

use libp2p::{
    PeerId,
    gossipsub::MessageId,
    swarm::{CloseConnection, ToSwarm},
};
use peergroup_protocol::{Error, PeerName, groups::Output as RouterOutput, session::Output};

use super::{Behaviour, Event, Happened, OperationError};
use crate::{pipeline::WriteFor, storage::WriteOp};

impl Behaviour {
    pub(super) fn execute_router(&mut self, output: RouterOutput<PeerId, MessageId>) {
        match output {
            RouterOutput::Session { group, output } => self.execute(&group, output, false),
            RouterOutput::AuthRequest {
                exchange,
                peer,
                request,
            } => self
                .auth_requests
                .send(&mut self.inner.auth, &peer, exchange, request),
            RouterOutput::Authenticated {
                group,
                peer,
                member,
            } => self.happened(Happened::NeighborUp {
                group: &group,
                peer,
                member: &member,
            }),
            RouterOutput::AuthenticationFailed {
                group,
                peer,
                reason,
            } => {
                self.metrics.authentication_failed();
                tracing::warn!(%group, %peer, %reason, "group authentication failed");
                self.stats.authentication_failures =
                    self.stats.authentication_failures.saturating_add(1);
                self.events.push_back(Event::AuthenticationFailed {
                    group,
                    peer,
                    reason,
                });
            }
            RouterOutput::CredentialExpired { group, peer } => {
                tracing::debug!(%group, %peer, "a neighbour's credential expired");
                self.events.push_back(Event::AuthenticationFailed {
                    group,
                    peer,
                    reason: Error::InvalidTimePeriod("the neighbour's credential expired".into()),
                });
            }
            RouterOutput::Graylist { peer, graylisted } => {
                let score = if graylisted {
                    crate::auth::UNAUTHENTICATED_SCORE
                } else {
                    0.0
                };
                self.inner.gossipsub.set_application_score(&peer, score);
            }
            RouterOutput::Disconnect(peer) => self.actions.push_back(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::All,
            }),
            RouterOutput::WallClockStepped { step_ms } => {
                tracing::info!(
                    step_ms,
                    "the wall clock stepped: the groups' timeouts keep their length"
                );
            }
            RouterOutput::ClockAdjusted { offset_ms, step_ms } => {
                // Kept across restarts (`PeerClock::restored`).
                self.work
                    .queue_write(Some(WriteOp::SaveClockOffset(offset_ms)), WriteFor::Other);
                if step_ms.unsigned_abs() >= 1_000 {
                    tracing::info!(step_ms, offset_ms, "peer time adjusted");
                } else {
                    tracing::debug!(step_ms, offset_ms, "peer time adjusted");
                }
            }
        }
    }

    pub(super) fn execute(
        &mut self,
        group: &PeerName,
        output: Output<PeerId, MessageId>,
        local: bool,
    ) {
        match output {
            Output::Subscribe => self.happened(Happened::GroupOnline(group)),
            Output::Unsubscribe => self.happened(Happened::GroupOffline(group)),
            Output::Publish(bytes) => self.publish(group, bytes),
            Output::Verdict {
                source,
                message,
                reason,
            } => self.report_verdict(
                Some(group),
                source,
                &message,
                crate::gossip::Verdict::Judged(&reason),
            ),
            Output::SyncEnded {
                peer,
                completed,
                first,
                received,
                duration_ms,
            } => {
                self.metrics.sync_ended(completed, received, duration_ms);
                tracing::debug!(%group, %peer, completed, first, received, duration_ms, "synchronization ended");
            }
            Output::PeerMisbehaved { peer, reason } => {
                self.metrics.sync_rejected(&reason);
                // Only authenticated members serve synchronizations, from
                // stores they verified: forged, unauthorized or wrong-group
                // records, answers no honest reconciliation gives, records
                // not asked for are a broken or dishonest member. It is cut
                // off from the group (`AuthenticationFailed`, graylisted and
                // disconnected unless it is a neighbour in another group);
                // nothing invalid it sent was stored.
                self.stats.misbehaved = self.stats.misbehaved.saturating_add(1);
                tracing::warn!(%group, %peer, %reason, "a neighbour served data no honest member sends: cutting it off");
                let now = self.clocks();
                self.groups.cut_off(
                    group,
                    &peer,
                    Error::NotAuthorized(format!("served invalid synchronization data: {reason}")),
                    now,
                );
            }
            Output::Merge(records) => self.work.queue_merge(group, local, records),
            Output::Persist(state) => self
                .work
                .queue_write(Some(WriteOp::SaveGroup(state)), WriteFor::Other),
            Output::SyncRequest { peer, tag, request } => {
                self.request_sync(group, peer, tag, request);
            }
            Output::StartProviding => self.start_providing(group),
            Output::StopProviding => self.stop_providing(group),
            Output::FindMembers => self.find_members(group),
            Output::Emit(event) => self.events.push_back(event.into()),
            Output::ConnectOutcome(result) => {
                for operation in self.connects.remove(group).unwrap_or_default() {
                    self.events.push_back(Event::OperationCompleted {
                        operation,
                        result: result.clone().map_err(OperationError::Peer),
                    });
                }
            }
        }
    }
}

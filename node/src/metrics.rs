//! Prometheus metrics (feature `metrics`): libp2p's own (connections,
//! gossipsub, Kademlia, identify, ping round trips) and the node's.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `peergroup_records_merged_total` | counter | `change` (added, updated, deleted, expired) |
//! | `peergroup_records_rejected_total` | counter | `reason` (`Reason::name`: stale, duplicate, invalid, unauthorized, ...), `source` (gossip, sync) |
//! | `peergroup_gossip_verdicts_total` | counter | `verdict` (accept, ignore, reject) |
//! | `peergroup_sync_runs_total` | counter | `outcome` (completed, failed) |
//! | `peergroup_sync_duration_seconds` | histogram | (completed runs) |
//! | `peergroup_sync_records_received_total` | counter | |
//! | `peergroup_neighbors` | gauge | `group` |
//! | `peergroup_authentication_failures_total` | counter | |
//! | `peergroup_storage_queue_depth` | gauge | (writes queued, not committed) |
//!
//! (With [`prometheus_client::registry::Registry::with_prefix`]`("peergroup")`
//! the names get the prefix once; the table shows the full names the
//! `peergroup` binary serves.) Without the feature every method is a no-op.

#[cfg(feature = "metrics")]
mod enabled {
    use std::sync::Arc;

    use libp2p::metrics::Recorder;
    use peergroup_protocol::{
        PeerName,
        session::{Reason, RecordChange},
    };
    use prometheus_client::{
        encoding::EncodeLabelSet,
        metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
        registry::Registry,
    };

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct ChangeLabel {
        change: &'static str,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct RejectLabels {
        reason: &'static str,
        source: &'static str,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct VerdictLabel {
        verdict: &'static str,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct OutcomeLabel {
        outcome: &'static str,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct GroupLabel {
        group: String,
    }

    struct Families {
        libp2p: libp2p::metrics::Metrics,
        merged: Family<ChangeLabel, Counter>,
        rejected: Family<RejectLabels, Counter>,
        verdicts: Family<VerdictLabel, Counter>,
        sync_runs: Family<OutcomeLabel, Counter>,
        sync_duration: Histogram,
        sync_received: Counter,
        neighbors: Family<GroupLabel, Gauge>,
        auth_failures: Counter,
        storage_queue: Gauge,
    }

    /// The node's metrics; cheap to clone (shared families).
    #[derive(Clone, Default)]
    pub(crate) struct Metrics(Option<Arc<Families>>);

    impl std::fmt::Debug for Metrics {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Metrics")
                .field("enabled", &self.0.is_some())
                .finish()
        }
    }

    impl Metrics {
        /// Registers every family in `registry`.
        pub(crate) fn register(registry: &mut Registry) -> Metrics {
            let libp2p = libp2p::metrics::Metrics::new(registry);
            let families = Families {
                libp2p,
                merged: Family::default(),
                rejected: Family::default(),
                verdicts: Family::default(),
                sync_runs: Family::default(),
                // 10 ms to about 80 s.
                sync_duration: Histogram::new(
                    prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 14),
                ),
                sync_received: Counter::default(),
                neighbors: Family::default(),
                auth_failures: Counter::default(),
                storage_queue: Gauge::default(),
            };
            registry.register(
                "records_merged",
                "Record changes stored, by kind",
                families.merged.clone(),
            );
            registry.register(
                "records_rejected",
                "Records and messages not stored, by reason and by where they came from",
                families.rejected.clone(),
            );
            registry.register(
                "gossip_verdicts",
                "Gossip messages judged, by verdict",
                families.verdicts.clone(),
            );
            registry.register(
                "sync_runs",
                "Synchronizations with a neighbour that ended, by outcome",
                families.sync_runs.clone(),
            );
            registry.register(
                "sync_duration_seconds",
                "How long completed synchronizations took",
                families.sync_duration.clone(),
            );
            registry.register(
                "sync_records_received",
                "Records received in synchronizations",
                families.sync_received.clone(),
            );
            registry.register(
                "neighbors",
                "Authenticated neighbours, per group",
                families.neighbors.clone(),
            );
            registry.register(
                "authentication_failures",
                "Group authentications that failed",
                families.auth_failures.clone(),
            );
            registry.register(
                "storage_queue_depth",
                "Writes queued for the store and not committed yet",
                families.storage_queue.clone(),
            );
            // Known label values start at zero, so that a dashboard sees
            // them before the first event (Prometheus practice).
            for change in ["added", "updated", "deleted", "expired"] {
                let _ = families.merged.get_or_create(&ChangeLabel { change });
            }
            for verdict in ["accept", "ignore", "reject"] {
                let _ = families.verdicts.get_or_create(&VerdictLabel { verdict });
            }
            for outcome in ["completed", "failed"] {
                let _ = families.sync_runs.get_or_create(&OutcomeLabel { outcome });
            }
            Metrics(Some(Arc::new(families)))
        }

        pub(crate) fn gossipsub(&self, event: &libp2p::gossipsub::Event) {
            if let Some(m) = &self.0 {
                m.libp2p.record(event);
            }
        }

        pub(crate) fn kad(&self, event: &libp2p::kad::Event) {
            if let Some(m) = &self.0 {
                m.libp2p.record(event);
            }
        }

        pub(crate) fn identify(&self, event: &libp2p::identify::Event) {
            if let Some(m) = &self.0 {
                m.libp2p.record(event);
            }
        }

        pub(crate) fn ping(&self, event: &libp2p::ping::Event) {
            if let Some(m) = &self.0 {
                m.libp2p.record(event);
            }
        }

        pub(crate) fn swarm<E>(&self, event: &libp2p::swarm::SwarmEvent<E>) {
            if let Some(m) = &self.0 {
                m.libp2p.record(event);
            }
        }

        pub(crate) fn record_changed(&self, change: RecordChange) {
            if let Some(m) = &self.0 {
                let change = match change {
                    RecordChange::Added => "added",
                    RecordChange::Updated => "updated",
                    RecordChange::Deleted => "deleted",
                    RecordChange::Expired => "expired",
                };
                m.merged.get_or_create(&ChangeLabel { change }).inc();
            }
        }

        /// A gossip verdict; a message not accepted counts as rejected too.
        pub(crate) fn verdict(&self, verdict: &'static str, reason: &'static str) {
            if let Some(m) = &self.0 {
                m.verdicts.get_or_create(&VerdictLabel { verdict }).inc();
                if verdict != "accept" {
                    m.rejected
                        .get_or_create(&RejectLabels {
                            reason,
                            source: "gossip",
                        })
                        .inc();
                }
            }
        }

        /// A neighbour served invalid synchronization data.
        pub(crate) fn sync_rejected(&self, reason: &Reason) {
            if let Some(m) = &self.0 {
                m.rejected
                    .get_or_create(&RejectLabels {
                        reason: reason.name(),
                        source: "sync",
                    })
                    .inc();
            }
        }

        pub(crate) fn sync_ended(&self, completed: bool, received: u64, duration_ms: u64) {
            if let Some(m) = &self.0 {
                let outcome = if completed { "completed" } else { "failed" };
                m.sync_runs.get_or_create(&OutcomeLabel { outcome }).inc();
                m.sync_received.inc_by(received);
                if completed {
                    m.sync_duration.observe(duration_ms as f64 / 1000.0);
                }
            }
        }

        pub(crate) fn neighbors(&self, group: &PeerName, count: usize) {
            if let Some(m) = &self.0 {
                m.neighbors
                    .get_or_create(&GroupLabel {
                        group: group.to_string(),
                    })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }

        pub(crate) fn authentication_failed(&self) {
            if let Some(m) = &self.0 {
                m.auth_failures.inc();
            }
        }

        pub(crate) fn storage_queue(&self, depth: usize) {
            if let Some(m) = &self.0 {
                m.storage_queue
                    .set(i64::try_from(depth).unwrap_or(i64::MAX));
            }
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    use peergroup_protocol::{
        PeerName,
        session::{Reason, RecordChange},
    };

    /// No metrics: every method does nothing.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Metrics;

    impl Metrics {
        pub(crate) fn gossipsub(&self, _: &libp2p::gossipsub::Event) {}
        pub(crate) fn kad(&self, _: &libp2p::kad::Event) {}
        pub(crate) fn identify(&self, _: &libp2p::identify::Event) {}
        pub(crate) fn ping(&self, _: &libp2p::ping::Event) {}
        pub(crate) fn swarm<E>(&self, _: &libp2p::swarm::SwarmEvent<E>) {}
        pub(crate) fn record_changed(&self, _: RecordChange) {}
        pub(crate) fn verdict(&self, _: &'static str, _: &'static str) {}
        pub(crate) fn sync_rejected(&self, _: &Reason) {}
        pub(crate) fn sync_ended(&self, _: bool, _: u64, _: u64) {}
        pub(crate) fn neighbors(&self, _: &PeerName, _: usize) {}
        pub(crate) fn authentication_failed(&self) {}
        pub(crate) fn storage_queue(&self, _: usize) {}
    }
}

pub(crate) use enabled::Metrics;

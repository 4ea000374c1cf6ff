//! Gossip verdicts: every message gossipsub hands the behaviour gets exactly
//! one, reported in one place (`Behaviour::report_verdict`) with a metric
//! per reason. Most come from the group's session; the node itself decides
//! the few it makes before a session sees the message.

use libp2p::gossipsub::MessageAcceptance;
use peergroup_protocol::session::{Acceptance, Reason};

/// Why a gossip message gets its verdict.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict<'a> {
    /// The session judged it (validation and authorization).
    Judged(&'a Reason),
    /// Its topic is not one of this node's groups (any more): ignored.
    UnknownTopic,
    /// Its group is not online here (closed a moment ago): ignored.
    Offline,
    /// Its forwarder has not authenticated for the group: ignored while the
    /// peer's exchange is under way (`pending`), rejected otherwise.
    Stranger { pending: bool },
    /// The verify queue was full: ignored, never rejected (not judged).
    Busy,
}

impl Verdict<'_> {
    /// What gossipsub is told.
    pub(crate) fn acceptance(self) -> MessageAcceptance {
        match self {
            Verdict::Judged(reason) => match reason.acceptance() {
                Acceptance::Accept => MessageAcceptance::Accept,
                Acceptance::Ignore => MessageAcceptance::Ignore,
                Acceptance::Reject => MessageAcceptance::Reject,
            },
            Verdict::Stranger { pending: false } => MessageAcceptance::Reject,
            Verdict::UnknownTopic
            | Verdict::Offline
            | Verdict::Stranger { pending: true }
            | Verdict::Busy => MessageAcceptance::Ignore,
        }
    }

    /// The reason's name, as metrics and logs give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verdict::Judged(reason) => reason.name(),
            Verdict::UnknownTopic => "unknown-topic",
            Verdict::Offline => "offline",
            Verdict::Stranger { .. } => "stranger",
            Verdict::Busy => "busy",
        }
    }
}

/// The verdict's label in `peergroup_gossip_verdicts_total`.
pub(crate) fn acceptance_name(acceptance: &MessageAcceptance) -> &'static str {
    match acceptance {
        MessageAcceptance::Accept => "accept",
        MessageAcceptance::Ignore => "ignore",
        MessageAcceptance::Reject => "reject",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stranger_that_is_not_authenticating_is_rejected_by_the_node() {
        for verdict in [
            Verdict::UnknownTopic,
            Verdict::Offline,
            Verdict::Stranger { pending: true },
            Verdict::Busy,
        ] {
            assert_eq!(
                verdict.acceptance(),
                MessageAcceptance::Ignore,
                "{verdict:?}"
            );
        }
        assert_eq!(
            Verdict::Stranger { pending: false }.acceptance(),
            MessageAcceptance::Reject
        );
        let names: std::collections::HashSet<&str> = [
            Verdict::UnknownTopic,
            Verdict::Offline,
            Verdict::Stranger { pending: true },
            Verdict::Busy,
        ]
        .into_iter()
        .map(Verdict::name)
        .collect();
        assert_eq!(names.len(), 4);
    }
}

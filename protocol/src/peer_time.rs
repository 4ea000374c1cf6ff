//! Peer time (`PeerGroupUniversalTimeToPeerTime` /
//! `PeerGroupPeerTimeToUniversalTime`, reference 3.6): the clock the members
//! agree on, so that a member whose wall clock is wrong judges record
//! expirations, and stamps its records, like the others.
//!
//! Windows ([MS-PPGRH] 1.3.6): peer time starts as the creator's UTC; a
//! joining node adopts its first neighbour's peer time; each further
//! connection averages it with the neighbour's. Ours follows that shape with
//! a median instead of a mean, so one wildly wrong clock cannot drag the
//! others:
//!
//! - A node keeps an *offset*: peer time minus its own wall clock (ms).
//! - It is **anchored** once it created a group it holds ([`PeerClock::anchor`])
//!   or adopted the time of an anchored neighbour. Every authentication
//!   exchange carries each side's current peer time and whether it is
//!   anchored. The initiator takes the responder's reading against the
//!   midpoint of its request's round trip; the responder takes the
//!   initiator's reading against its arrival. Each gives a *sample*: how far
//!   the neighbour's peer time is ahead of our wall clock.
//! - With samples from anchored neighbours, the offset becomes the **median
//!   of those samples and, if we are anchored already, our own offset** (the
//!   mean of the two middle values for an even count); we are anchored from
//!   then on. An unanchored node (a joiner, a member restarted while its
//!   group's creator is away) thus adopts the group's time and ignores its
//!   own wall clock; an anchored one moves only as far as the median.
//! - Samples from unanchored neighbours never move an anchored node. Nodes
//!   that meet only unanchored nodes take the median of all their wall
//!   clocks (their own zero and the samples).
//! - A neighbour that leaves takes its sample with it, but the offset stays:
//!   a member that goes offline keeps the group's time.
//!
//! Bounds:
//! - one sample is off by at most half its round trip (plus the other
//!   side's processing time) for the initiator, by the one-way latency for
//!   the responder: on a LAN, milliseconds;
//! - with `n` anchored clocks in a median, up to `(n - 1) / 2` of them may
//!   be arbitrarily wrong without moving it past the correct ones: three
//!   members ignore one broken clock; a joiner's own clock never counts;
//! - samples further than [`MAX_SKEW`] from our wall clock are ignored (a
//!   clock that far off is broken, and following it would move everyone);
//! - the host keeps the offset across restarts ([`PeerClock::restored`]): a
//!   restarted node stamps with the group's time as it last knew it (not
//!   with its own wall clock, which may be far off), and is unanchored
//!   (unless it created one of its groups) until it meets an anchored
//!   neighbour, whose time it then adopts.
//!
//! One clock per node, for all its groups (Windows keeps one per group): a
//! node in several groups brings them to one time. Credentials and
//! invitations are checked against peer time too.

use std::collections::BTreeMap;

use crate::time::Timestamp;

/// How far a credential's or an invitation's *start* of validity may lie in
/// the future of the checking clock and still be accepted: 15 minutes (the
/// end of validity is exact). A joiner has no peer time before its first
/// authentication, so its wall clock judges the invitation; Windows fails
/// with `PEER_E_INVALID_TIME_PERIOD` there for any skew (reference 3.6);
/// this tolerates a clock up to 15 minutes slow, which then adopts the
/// group's time. A start of validity only ever lies in the future by clock
/// skew, so accepting it early grants nothing that was not issued.
pub const NOT_BEFORE_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The largest clock difference a sample may show: one day.
pub const MAX_SKEW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// One neighbour's clock reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    /// How far its peer time was ahead of our wall clock, ms.
    offset: i64,
    /// Whether its time was anchored.
    anchored: bool,
}

/// A node's peer clock: its offset from its wall clock, whether it is
/// anchored, and the latest sample of each neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerClock<K: Ord> {
    offset: i64,
    /// This node's own estimate while unanchored: 0 (its wall clock), or
    /// the offset it kept from before a restart.
    base: i64,
    anchored: bool,
    samples: BTreeMap<K, Sample>,
}

impl<K: Ord> Default for PeerClock<K> {
    fn default() -> Self {
        PeerClock::new()
    }
}

/// The sample an initiator takes: the neighbour's clock `theirs`, read at
/// some point between `sent` and `received` (our wall clock), against the
/// midpoint. Positive: the neighbour is ahead.
pub fn sample_round_trip(sent: Timestamp, theirs: Timestamp, received: Timestamp) -> i64 {
    let midpoint = sent
        .as_millis()
        .saturating_add(received.as_millis().saturating_sub(sent.as_millis()) / 2);
    signed_difference(theirs.as_millis(), midpoint)
}

/// The sample a responder takes: the neighbour's clock `theirs` as it
/// arrived at `received` (our wall clock).
pub fn sample_one_way(theirs: Timestamp, received: Timestamp) -> i64 {
    signed_difference(theirs.as_millis(), received.as_millis())
}

fn signed_difference(a: u64, b: u64) -> i64 {
    if a >= b {
        i64::try_from(a.saturating_sub(b)).unwrap_or(i64::MAX)
    } else {
        i64::try_from(b.saturating_sub(a))
            .map(i64::saturating_neg)
            .unwrap_or(i64::MIN)
    }
}

/// The median of `values` (the mean of the two middle ones for an even
/// count), 0 for none.
fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    let n = values.len();
    let Some(upper) = values.get(n / 2).copied() else {
        return 0;
    };
    if n % 2 == 1 {
        return upper;
    }
    let lower = values
        .get((n / 2).saturating_sub(1))
        .copied()
        .unwrap_or(upper);
    // The mean of the two, without overflow: halves first, then the
    // remainders (each in -1..=1).
    let halves = (lower / 2).saturating_add(upper / 2);
    halves.saturating_add((lower % 2).saturating_add(upper % 2) / 2)
}

impl<K: Ord> PeerClock<K> {
    /// An unanchored clock without samples: peer time is the wall clock.
    pub fn new() -> PeerClock<K> {
        PeerClock::restored(0)
    }

    /// An unanchored clock that starts `offset_ms` from the wall clock:
    /// where this node's peer time stood before it restarted (what the host
    /// stored after the offset last moved). An offset beyond [`MAX_SKEW`]
    /// is not trusted (0 instead).
    pub fn restored(offset_ms: i64) -> PeerClock<K> {
        let max = i64::try_from(MAX_SKEW.as_millis()).unwrap_or(i64::MAX);
        let offset = if offset_ms.unsigned_abs() > max.unsigned_abs() {
            0
        } else {
            offset_ms
        };
        PeerClock {
            offset,
            base: offset,
            anchored: false,
            samples: BTreeMap::new(),
        }
    }

    /// Anchors the clock where it stands: this node created a group (the
    /// group's time starts as its creator's).
    pub fn anchor(&mut self) {
        self.anchored = true;
    }

    /// Whether the clock is anchored (what this node tells its neighbours).
    pub fn is_anchored(&self) -> bool {
        self.anchored
    }

    /// Records `who`'s latest sample (ms its peer time is ahead of our wall
    /// clock; `anchored` as it said) and recomputes the offset. Samples
    /// beyond [`MAX_SKEW`] are ignored; returns whether it was kept.
    pub fn sample(&mut self, who: K, offset_ms: i64, anchored: bool) -> bool {
        let max = i64::try_from(MAX_SKEW.as_millis()).unwrap_or(i64::MAX);
        if offset_ms.unsigned_abs() > max.unsigned_abs() {
            return false;
        }
        self.samples.insert(
            who,
            Sample {
                offset: offset_ms,
                anchored,
            },
        );
        self.recompute();
        true
    }

    fn recompute(&mut self) {
        let anchored: Vec<i64> = self
            .samples
            .values()
            .filter(|s| s.anchored)
            .map(|s| s.offset)
            .collect();
        if !anchored.is_empty() {
            let mut values = anchored;
            if self.anchored {
                values.push(self.offset);
            }
            self.offset = median(values);
            self.anchored = true;
        } else if !self.anchored {
            let mut values: Vec<i64> = self.samples.values().map(|s| s.offset).collect();
            values.push(self.base);
            self.offset = median(values);
        }
    }

    /// Forgets `who`'s sample (it is no neighbour any more); the offset
    /// stays.
    pub fn forget(&mut self, who: &K) {
        self.samples.remove(who);
    }

    /// How many neighbours it has samples of.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether it has no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The offset of peer time from our wall clock, ms.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// `PeerGroupUniversalTimeToPeerTime`: peer time at our wall clock `universal`.
    pub fn to_peer_time(&self, universal: Timestamp) -> Timestamp {
        universal.saturating_offset(self.offset)
    }

    /// `PeerGroupPeerTimeToUniversalTime`: our wall clock at peer time `peer`.
    pub fn to_universal_time(&self, peer: Timestamp) -> Timestamp {
        peer.saturating_offset(self.offset.saturating_neg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    /// A node whose clock runs 50 s fast learned the group's time, then
    /// restarted: it stamps with the group's time at once (not its wall
    /// clock), still adopts an anchored neighbour's time when it meets one,
    /// and takes its kept offset, not 0, as its own view among unanchored
    /// samples (issue 15: a fast device's edits stamped 50 s ahead won every
    /// tie against real later edits).
    #[test]
    fn a_restarted_clock_keeps_the_groups_time() {
        let mut clock: PeerClock<&str> = PeerClock::restored(-50_000);
        assert_eq!(clock.offset(), -50_000);
        assert!(!clock.is_anchored());
        assert_eq!(
            clock.to_peer_time(Timestamp::from_millis(1_000_000)),
            Timestamp::from_millis(950_000)
        );
        let mut alone = clock.clone();
        assert!(alone.sample("unanchored", -50_000, false));
        assert_eq!(alone.offset(), -50_000, "the median of two equal views");
        assert!(clock.sample("anchored", -49_000, true));
        assert_eq!(clock.offset(), -49_000);
        assert!(clock.is_anchored());
        // A stored offset beyond MAX_SKEW is not trusted.
        let broken: PeerClock<&str> = PeerClock::restored(i64::MAX);
        assert_eq!(broken.offset(), 0);
    }

    #[test]
    fn a_joiner_adopts_the_groups_time_and_keeps_it() {
        // The joiner's clock runs 10 minutes fast; the creator's is right.
        let mut joiner = PeerClock::new();
        assert!(joiner.sample("creator", -10 * MIN, true));
        assert_eq!(joiner.offset(), -10 * MIN);
        assert!(joiner.is_anchored());
        // The creator ignores the unanchored joiner's clock.
        let mut creator = PeerClock::new();
        creator.anchor();
        creator.sample("joiner", 10 * MIN, false);
        assert_eq!(creator.offset(), 0);
        // Offline, the joiner keeps the group's time.
        joiner.forget(&"creator");
        assert_eq!(joiner.offset(), -10 * MIN);
    }

    #[test]
    fn one_wildly_wrong_clock_among_three_anchored_is_outvoted() {
        // An anchored member whose peer time went 10 minutes wrong (its
        // wall clock stepped) meets two members that agree.
        let mut wrong = PeerClock::new();
        wrong.anchor();
        wrong.sample("a", -10 * MIN, true);
        wrong.sample("b", -10 * MIN + 3, true);
        assert!((wrong.offset() + 10 * MIN).abs() <= 3, "{}", wrong.offset());
        // A correct member, with the wrong one and a correct one.
        let mut good = PeerClock::new();
        good.anchor();
        good.sample("a", 2, true);
        good.sample("wrong", 10 * MIN, true);
        assert_eq!(good.offset(), 2);
    }

    #[test]
    fn unanchored_nodes_take_the_median_of_their_wall_clocks() {
        let (wall_a, wall_b) = (1_000_000u64, 1_000_000u64 + 10 * MIN as u64);
        let mut a = PeerClock::new();
        a.sample("b", 10 * MIN, false);
        let mut b = PeerClock::new();
        b.sample("a", -10 * MIN, false);
        let now_a = a.to_peer_time(Timestamp::from_millis(wall_a));
        let now_b = b.to_peer_time(Timestamp::from_millis(wall_b));
        assert_eq!(now_a, now_b);
        assert_eq!(a.to_universal_time(now_a), Timestamp::from_millis(wall_a));
        assert!(!a.is_anchored());
        // An anchored neighbour later wins over the wall-clock median.
        a.sample("creator", 3, true);
        assert_eq!(a.offset(), 3);
    }

    #[test]
    fn samples_beyond_a_day_do_not_count() {
        let mut c = PeerClock::new();
        assert!(!c.sample("broken", 400 * 24 * 60 * MIN, true));
        assert_eq!(c.offset(), 0);
        assert!(c.is_empty());
        assert!(!c.is_anchored());
    }

    #[test]
    fn round_trip_samples_take_the_midpoint() {
        let t = |ms| Timestamp::from_millis(ms);
        assert_eq!(sample_round_trip(t(1000), t(1550), t(1100)), 500);
        assert_eq!(sample_round_trip(t(1000), t(900), t(1100)), -150);
        assert_eq!(sample_one_way(t(2000), t(2010)), -10);
        assert_eq!(median(vec![i64::MAX, i64::MAX - 1]), i64::MAX - 1);
    }
}

//! [`Timestamp`]: wall-clock time as it travels in records and credentials.
//!
//! `protocol` never reads a clock: callers pass `now` in. Timestamps are
//! milliseconds since the Unix epoch (UTC), a `u64` on the wire.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The latest representable time; used as "never expires".
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms` milliseconds, saturating at [`Timestamp::MAX`].
    pub const fn saturating_add_millis(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// `self + duration` (whole milliseconds), saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, duration: std::time::Duration) -> Timestamp {
        self.saturating_add_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn saturating_since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self + offset_ms` (negative: earlier), saturating at both ends.
    pub const fn saturating_offset(self, offset_ms: i64) -> Timestamp {
        if offset_ms >= 0 {
            Timestamp(self.0.saturating_add(offset_ms.unsigned_abs()))
        } else {
            Timestamp(self.0.saturating_sub(offset_ms.unsigned_abs()))
        }
    }

    /// `self + seconds`, saturating at [`Timestamp::MAX`].
    pub const fn saturating_add_secs(self, seconds: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1000)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

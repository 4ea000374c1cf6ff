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

/// The first millisecond of the year 10000, the first time RFC 3339's
/// four-digit years cannot write.
const YEAR_10000_MS: u64 = 253_402_300_800_000;

/// A date as people read it, in RFC 3339 UTC: `2026-12-07T15:04:05Z`, with
/// the milliseconds when there are any (`2026-12-07T15:04:05.123Z`). From
/// the year 10000 on (as [`Timestamp::MAX`], "never"), which RFC 3339
/// cannot write, the milliseconds since the epoch: `253402300800000ms`.
///
/// This is for messages only: timestamps travel and are stored as their
/// `u64` of milliseconds (`serde` and the signing bytes), never as text.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= YEAR_10000_MS {
            return write!(f, "{}ms", self.0);
        }
        let (year, month, day) = civil_date(self.0 / 86_400_000);
        let ms_of_day = self.0 % 86_400_000;
        let (hour, minute) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
        let (second, ms) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
        )?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// The (year, month, day) of the proleptic Gregorian calendar `days` days
/// after 1970-01-01 (the `time` crate's calendar), for days before the year
/// 10000 (checked by the caller; later days give `(0, 0, 0)`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let date = i32::try_from(days)
        .ok()
        .and_then(|d| d.checked_add(UNIX_EPOCH_JULIAN_DAY))
        .and_then(|julian| time::Date::from_julian_day(julian).ok());
    match date {
        Some(date) => (
            u64::try_from(date.year()).unwrap_or(0),
            u64::from(u8::from(date.month())),
            u64::from(date.day()),
        ),
        None => (0, 0, 0),
    }
}

/// The days from 1970-01-01 to the proleptic Gregorian `year-month-day`
/// (negative before it); `None` for a date that does not exist (`2003-02-30`)
/// or a year outside ±9999.
pub(crate) fn days_from_civil(year: i32, month: u8, day: u8) -> Option<i64> {
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(i64::from(date.to_julian_day()).saturating_sub(i64::from(UNIX_EPOCH_JULIAN_DAY)))
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    fn shown(ms: u64) -> String {
        Timestamp::from_millis(ms).to_string()
    }

    #[test]
    fn display_is_rfc_3339_utc() {
        assert_eq!(shown(0), "1970-01-01T00:00:00Z");
        assert_eq!(shown(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(shown(1_796_655_845_000), "2026-12-07T15:04:05Z");
        assert_eq!(shown(1_796_655_845_123), "2026-12-07T15:04:05.123Z");
        // Leap days: a year divisible by 4, and by 400.
        assert_eq!(shown(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(shown(951_782_400_000), "2000-02-29T00:00:00Z");
        // 1900 and 2100 are not leap years.
        assert_eq!(shown(4_107_542_400_000), "2100-03-01T00:00:00Z");
        // A creator's credential's end, about a thousand years on.
        assert_eq!(shown(33_332_649_576_760), "3026-04-09T13:19:36.760Z");
        assert_eq!(shown(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    /// Every day from the epoch to 9999-12-31 against a calendar counted
    /// day by day.
    #[test]
    fn civil_date_matches_a_counted_calendar() {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let (mut year, mut month, mut day) = (1970, 1, 1);
        for days in 0..super::YEAR_10000_MS / 86_400_000 {
            assert_eq!(super::civil_date(days), (year, month, day), "day {days}");
            let length = match month {
                2 if leap(year) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > length {
                (day, month) = (1, month + 1);
                if month > 12 {
                    (month, year) = (1, year + 1);
                }
            }
        }
        assert_eq!((year, month, day), (10000, 1, 1));
    }

    #[test]
    fn display_beyond_the_year_9999_is_milliseconds() {
        assert_eq!(shown(253_402_300_800_000), "253402300800000ms");
        assert_eq!(Timestamp::MAX.to_string(), format!("{}ms", u64::MAX));
    }

    #[test]
    fn debug_stays_the_integer() {
        assert_eq!(
            format!("{:?}", Timestamp::from_millis(1_796_655_845_000)),
            "Timestamp(1796655845000)"
        );
    }
}

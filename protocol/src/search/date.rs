//! Dates in search values: the W3C date-time profile (NOTE-datetime), each
//! naming the interval its precision spans.

use std::cmp::Ordering;

use super::invalid;
use crate::{
    error::Error,
    time::{Timestamp, days_from_civil},
};

const MS_PER_DAY: i64 = 86_400_000;

/// A date of a search value: the interval `[start, end)` its precision
/// spans, in ms since the Unix epoch (a day for `2003-01-31`, a second for
/// `2003-01-31T10:00:05Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// The first millisecond.
    pub start_ms: i64,
    /// One past the last millisecond.
    pub end_ms: i64,
}

impl DateRange {
    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.s…]]TZD`
    /// (`TZD` = `Z` or `±hh:mm`). `PEER_E_INVALID_SEARCH` otherwise, and
    /// for dates that do not exist (`2003-02-30`).
    pub fn parse(text: &str) -> Result<DateRange, Error> {
        let bad = || invalid(format!("{text:?} is not a W3C date-time"));
        let (date, time) = match text.split_once('T') {
            Some((date, time)) => (date, Some(time)),
            None => (text, None),
        };
        let mut parts = date.split('-');
        let year: i32 = digits(parts.next(), 4).ok_or_else(bad)?;
        let month: Option<u8> = parts
            .next()
            .map(|m| digits(Some(m), 2).ok_or_else(bad))
            .transpose()?;
        let day: Option<u8> = parts
            .next()
            .map(|d| digits(Some(d), 2).ok_or_else(bad))
            .transpose()?;
        if parts.next().is_some() {
            return Err(bad());
        }
        let day_start = |y: i32, m: u8, d: u8| -> Result<i64, Error> {
            days_from_civil(y, m, d)
                .and_then(|days| days.checked_mul(MS_PER_DAY))
                .ok_or_else(bad)
        };
        let (start, end) = match (month, day, time) {
            (None, None, None) => (
                day_start(year, 1, 1)?,
                day_start(year.saturating_add(1), 1, 1)?,
            ),
            (Some(m), None, None) => {
                let (ny, nm) = if m == 12 {
                    (year.saturating_add(1), 1)
                } else {
                    (year, m.saturating_add(1))
                };
                (day_start(year, m, 1)?, day_start(ny, nm, 1)?)
            }
            (Some(m), Some(d), None) => {
                let start = day_start(year, m, d)?;
                (start, start.checked_add(MS_PER_DAY).ok_or_else(bad)?)
            }
            (Some(m), Some(d), Some(time)) => {
                let day = day_start(year, m, d)?;
                let (offset_ms, clock) = zone(time).ok_or_else(bad)?;
                let (start_in_day, length) = clock_ms(clock).ok_or_else(bad)?;
                let start = day
                    .checked_add(start_in_day)
                    .and_then(|s| s.checked_sub(offset_ms))
                    .ok_or_else(bad)?;
                (start, start.checked_add(length).ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        };
        Ok(DateRange {
            start_ms: start,
            end_ms: end,
        })
    }

    /// Where `at` lies against this interval: `Less` before it, `Equal`
    /// within it, `Greater` after it.
    pub fn place(&self, at: Timestamp) -> Ordering {
        let at = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
        if at < self.start_ms {
            Ordering::Less
        } else if at >= self.end_ms {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }
}

/// Exactly `len` ASCII digits, as a number.
fn digits<T: std::str::FromStr>(text: Option<&str>, len: usize) -> Option<T> {
    let text = text?;
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Splits `hh:mm[:ss[.s…]]TZD` into the zone's offset (ms east of UTC) and
/// the clock part.
fn zone(time: &str) -> Option<(i64, &str)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((0, clock));
    }
    let at = time.rfind(['+', '-'])?;
    let (clock, zone) = time.split_at(at);
    let sign: i64 = if zone.starts_with('-') { -1 } else { 1 };
    let (h, m) = zone.get(1..)?.split_once(':')?;
    let h: i64 = digits(Some(h), 2)?;
    let m: i64 = digits(Some(m), 2)?;
    if h > 23 || m > 59 {
        return None;
    }
    Some((
        sign.checked_mul(
            h.checked_mul(3_600_000)?
                .checked_add(m.checked_mul(60_000)?)?,
        )?,
        clock,
    ))
}

/// `hh:mm[:ss[.s…]]` as (ms into the day, the precision's length in ms).
fn clock_ms(clock: &str) -> Option<(i64, i64)> {
    let mut parts = clock.splitn(3, ':');
    let h: i64 = digits(parts.next(), 2)?;
    let m: i64 = digits(parts.next(), 2)?;
    if h > 23 || m > 59 {
        return None;
    }
    let base = h
        .checked_mul(3_600_000)?
        .checked_add(m.checked_mul(60_000)?)?;
    let Some(seconds) = parts.next() else {
        return Some((base, 60_000));
    };
    let (s, fraction) = match seconds.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (seconds, None),
    };
    let s: i64 = digits(Some(s), 2)?;
    if s > 59 {
        return None;
    }
    let base = base.checked_add(s.checked_mul(1_000)?)?;
    let Some(fraction) = fraction else {
        return Some((base, 1_000));
    };
    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Milliseconds at most: finer digits are dropped.
    let kept = fraction.get(..fraction.len().min(3))?;
    let scale = 10i64.checked_pow(u32::try_from(3usize.saturating_sub(kept.len())).ok()?)?;
    let ms: i64 = kept.parse::<i64>().ok()?.checked_mul(scale)?;
    Some((base.checked_add(ms)?, scale))
}

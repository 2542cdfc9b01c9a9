//! From a daily wall-clock schedule to UTC instants: which period is in force when.
//!
//! Each schedule entry, on each local calendar day, is a *boundary*: an instant from which
//! its period is in force, until the next boundary. Boundaries are found in the tariff's
//! zone with the bundled tz database, day by day, so a local day lasts 23, 24 or 25 hours
//! (or none at all, where a zone once skipped a date) and midnight is just another boundary.
//!
//! DST rules (the only two cases where a wall-clock time is not exactly one instant):
//! - **Gap** (spring forward): a boundary whose local time does not exist takes effect at
//!   the first instant after the gap, i.e. at the transition itself. If several boundaries
//!   fall in one gap, the last of them wins (the others last zero time).
//! - **Fold** (fall back): a boundary whose local time happens twice takes effect at its
//!   first occurrence. The repeated stretch of wall-clock time therefore keeps the period in
//!   force at the end of its first pass; boundaries are not applied a second time.
//!
//! Equivalently: the period in force at an instant is the one the schedule gives for the
//! latest local wall-clock time reached so far. Boundary instants never decrease, so the
//! segments of any span tile it with no gap and no overlap.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::limits;
use super::model::{Tariff, TariffPeriod, UnitPrice};

/// A stretch of time `[start, end)` during which one period is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// First instant in the segment.
    pub start: Timestamp,
    /// First instant after the segment.
    pub end: Timestamp,
    /// Index into the tariff's periods.
    pub period: usize,
}

impl Segment {
    /// `end - start`.
    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }

    /// Length in nanoseconds.
    pub fn nanos(&self) -> i128 {
        self.end.as_nanosecond() - self.start.as_nanosecond()
    }
}

/// A span of time the tariff will not evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("the span ends ({to}) before it starts ({from}); pass the earlier instant first")]
    EndsBeforeStart { from: Timestamp, to: Timestamp },
    #[error("the span from {from} to {to} is longer than {max_days} days; price it in parts")]
    TooLong {
        from: Timestamp,
        to: Timestamp,
        max_days: i64,
    },
}

impl Tariff {
    /// The periods in force over `[from, to)`, in time order. Consecutive segments always
    /// differ in period (runs of one period, also across midnight, are merged), none is
    /// empty, the first starts at `from` and the last ends at `to`. Empty when
    /// `from == to`. At most [`limits::MAX_SPAN_DAYS`] days.
    pub fn segments(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Segment>, SpanError> {
        check_span(from, to)?;
        let mut out: Vec<Segment> = Vec::new();
        if from == to {
            return Ok(out);
        }
        let mut boundaries = self.boundaries_from(local_date(&self.time_zone, from));
        let mut current = self.in_force_at(from, &mut boundaries);
        let mut start = from;
        for (at, period) in boundaries {
            if at >= to {
                break;
            }
            push_merged(&mut out, start, at, current);
            start = at;
            current = period;
        }
        push_merged(&mut out, start, to, current);
        Ok(out)
    }

    /// The index of the period in force at `at` (consistent with [`Tariff::segments`]).
    pub fn period_index_at(&self, at: Timestamp) -> usize {
        let mut boundaries = self.boundaries_from(local_date(&self.time_zone, at));
        self.in_force_at(at, &mut boundaries)
    }

    /// The period in force at `at`: what the edge shows and charges for a live session.
    pub fn period_at(&self, at: Timestamp) -> &TariffPeriod {
        &self.periods[self.period_index_at(at)]
    }

    /// The prices per kWh in force at `at`.
    pub fn price_at(&self, at: Timestamp) -> UnitPrice {
        self.period_at(at).unit_price()
    }

    /// Consumes boundaries up to and including `at` and returns the period of the last one.
    /// The caller starts `boundaries` on `at`'s local date, whose midnight boundary is never
    /// after `at`; before it, the day's last entry (from the day before) is in force.
    fn in_force_at(
        &self,
        at: Timestamp,
        boundaries: &mut std::iter::Peekable<Boundaries<'_>>,
    ) -> usize {
        let mut current = self.schedule.last().map_or(0, |e| e.period);
        while let Some(&(b, period)) = boundaries.peek() {
            if b > at {
                break;
            }
            current = period;
            boundaries.next();
        }
        current
    }

    fn boundaries_from(&self, date: Date) -> std::iter::Peekable<Boundaries<'_>> {
        Boundaries {
            tariff: self,
            date: Some(date),
            entry: 0,
            floor: Timestamp::MIN,
        }
        .peekable()
    }
}

fn check_span(from: Timestamp, to: Timestamp) -> Result<(), SpanError> {
    if to < from {
        return Err(SpanError::EndsBeforeStart { from, to });
    }
    if to.as_nanosecond() - from.as_nanosecond() > limits::MAX_SPAN_NS {
        return Err(SpanError::TooLong {
            from,
            to,
            max_days: limits::MAX_SPAN_DAYS,
        });
    }
    Ok(())
}

fn push_merged(out: &mut Vec<Segment>, start: Timestamp, end: Timestamp, period: usize) {
    if end <= start {
        return;
    }
    match out.last_mut() {
        Some(last) if last.period == period && last.end == start => last.end = end,
        _ => out.push(Segment { start, end, period }),
    }
}

fn local_date(tz: &TimeZone, at: Timestamp) -> Date {
    tz.to_datetime(at).date()
}

/// Boundary instants in order, day after day, from 00:00 of `date`. Never decreasing (each
/// is clamped to at least the previous one, so even odd tz data cannot break the tiling).
/// Ends only at the last civil date `jiff` can represent.
struct Boundaries<'a> {
    tariff: &'a Tariff,
    date: Option<Date>,
    entry: usize,
    floor: Timestamp,
}

impl Iterator for Boundaries<'_> {
    type Item = (Timestamp, usize);

    fn next(&mut self) -> Option<(Timestamp, usize)> {
        let date = self.date?;
        let entry = self.tariff.schedule[self.entry];
        let at = boundary_instant(
            &self.tariff.time_zone,
            date.to_datetime(entry.start.to_civil()),
        )
        .max(self.floor);
        self.floor = at;
        self.entry += 1;
        if self.entry == self.tariff.schedule.len() {
            self.entry = 0;
            self.date = date.tomorrow().ok();
        }
        Some((at, entry.period))
    }
}

/// The instant a local wall-clock boundary takes effect (see the module's DST rules).
fn boundary_instant(tz: &TimeZone, local: DateTime) -> Timestamp {
    let ambiguous = tz.to_ambiguous_timestamp(local);
    let clamp = |r: Result<Timestamp, jiff::Error>| {
        // Only fails at the very ends of jiff's range; saturate there.
        r.unwrap_or(if local.date().year() < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
    };
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => clamp(offset.to_timestamp(local)),
        // First occurrence: the wall clock read with the earlier (pre-transition) offset.
        AmbiguousOffset::Fold { before, .. } => clamp(before.to_timestamp(local)),
        AmbiguousOffset::Gap { before, after } => {
            // `local` read with the old offset lies after the transition, read with the new
            // one before it; the transition between them is the first instant after the gap.
            let late = clamp(before.to_timestamp(local));
            let early = clamp(after.to_timestamp(local));
            let probe = late
                .checked_add(SignedDuration::from_nanos(1))
                .unwrap_or(late);
            match tz.preceding(probe).next() {
                Some(t) if t.timestamp() >= early && t.timestamp() <= late => t.timestamp(),
                _ => late,
            }
        }
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;

//! Incremental pricing of a live session: the few meter readings that decide its cost.
//!
//! [`voltline_protocol::tariff::Tariff::cost`] splits the energy between two readings over the
//! tariff periods in proportion to time. A reading whose neighbours lie in one single tariff
//! segment adds nothing to that split: removing it moves no energy between periods. So the
//! meter keeps the first reading, the latest one, and only those in between that sit at a
//! period change; each new reading replaces the latest when the span from the one before it
//! to the new one is a single segment. The kept list stays a few readings long per period
//! change, and `cost` over it equals `cost` over every reading (tested). The store's telemetry
//! thinning uses the same rule ([`same_segment`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, Money};
use voltline_protocol::tariff::{CostError, MeterReading, Tariff};

/// Most readings a session keeps: two per period change over the longest priceable span
/// (31 days × 288 changes a day), plus the ends.
pub const MAX_KEPT_READINGS: usize = 2 * 31 * 288 + 2;

/// True when `[a, b]` lies within one tariff segment (no period change in between), so a
/// reading between two readings at `a` and `b` can be dropped without changing the cost.
/// Without a tariff nothing is known about period changes: only readings within the same UTC
/// quarter hour count as one segment (every zone offset is a multiple of 15 minutes).
pub fn same_segment(tariff: Option<&Tariff>, a: Timestamp, b: Timestamp) -> bool {
    match tariff {
        Some(t) => match t.segments(a, b) {
            Ok(segments) => segments.len() <= 1,
            Err(_) => false,
        },
        None => a.as_second().div_euclid(900) == b.as_second().div_euclid(900),
    }
}

/// The readings of one session that matter for its price.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionMeter {
    kept: Vec<MeterReading>,
}

impl SessionMeter {
    /// Adds a reading. Readings earlier than the latest are clamped to its instant, and
    /// registers lower than the latest are refused (the caller filters stale frames first).
    /// Returns false when the reading was refused.
    pub fn push(&mut self, tariff: Option<&Tariff>, reading: MeterReading) -> bool {
        let mut reading = reading;
        if let Some(last) = self.kept.last() {
            if reading.register < last.register {
                return false;
            }
            if reading.at < last.at {
                reading.at = last.at;
            }
        }
        let n = self.kept.len();
        let collapsible = n >= 2 && same_segment(tariff, self.kept[n - 2].at, reading.at);
        if collapsible || n >= MAX_KEPT_READINGS {
            self.kept[n - 1] = reading;
        } else {
            self.kept.push(reading);
        }
        debug_assert!(self.kept.len() <= MAX_KEPT_READINGS);
        true
    }

    /// The kept readings, in time order.
    pub fn readings(&self) -> &[MeterReading] {
        &self.kept
    }

    /// The energy between the first and the latest reading.
    pub fn energy(&self) -> Energy {
        match (self.kept.first(), self.kept.last()) {
            (Some(a), Some(b)) => b.register - a.register,
            _ => Energy::ZERO,
        }
    }

    /// The session's price so far under `tariff`: zero with fewer than two readings.
    pub fn cost(&self, tariff: &Tariff) -> Result<Money, CostError> {
        if self.kept.len() < 2 {
            return Ok(Money::ZERO);
        }
        tariff.cost(&self.kept).map(|b| b.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::tests_support::{t, two_period_tariff};

    fn reading(s: i64, wh: i64) -> MeterReading {
        MeterReading::new(t(s), Energy::from_wh(wh))
    }

    #[test]
    fn kept_readings_price_exactly_like_all_readings() {
        let tariff = two_period_tariff();
        let mut meter = SessionMeter::default();
        let mut all = Vec::new();
        // Every 15 s for 5 hours, crossing the 08:00 and 12:00 changes of the test tariff.
        for i in 0..1200 {
            let r = reading(6 * 3600 + i * 15, i * 40);
            all.push(r);
            assert!(meter.push(Some(&tariff), r));
        }
        assert!(meter.readings().len() < 12, "{}", meter.readings().len());
        assert_eq!(
            meter.cost(&tariff).unwrap(),
            tariff.cost(&all).unwrap().total
        );
        assert_eq!(meter.energy(), Energy::from_wh(1199 * 40));
    }

    #[test]
    fn lower_register_is_refused_and_earlier_instant_clamped() {
        let mut meter = SessionMeter::default();
        assert!(meter.push(None, reading(100, 10)));
        assert!(!meter.push(None, reading(200, 5)));
        assert!(meter.push(None, reading(50, 20)));
        assert_eq!(meter.readings().last().unwrap().at, t(100));
    }

    #[test]
    fn no_tariff_means_quarter_hour_segments() {
        assert!(same_segment(None, t(0), t(899)));
        assert!(!same_segment(None, t(899), t(900)));
    }
}

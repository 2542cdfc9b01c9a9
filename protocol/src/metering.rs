//! One register of a bidirectional meter followed reading by reading: which increases count
//! as energy, and which readings are anomalies. The edge (live, from 0xC7 reports) and the
//! cloud (from stored readings) both count with [`RegisterTrack`], so that the two count the
//! same energy from the same readings.
//!
//! The rule. A register that reads lower than its last reading is not energy. One lower
//! reading alone may be a frame that arrived late (a reordered or resent report), so it is
//! held as *pending* and the next reading decides:
//! - the next reading is at or above the last one: the lower reading was stale; it is dropped
//!   and counting goes on from the last reading (nothing is counted twice);
//! - the next reading continues from the lower one: the register really went down (a reset,
//!   a meter swap, or a rollover past its 5-byte maximum). An anomaly is reported, the drop
//!   counts nothing, and the lower reading is the new baseline;
//! - lower again: the first drop stands and the new reading waits for its own proof;
//! - a series that ends with a lower reading pending reports it too ([`RegisterTrack::finish`]).
//!
//! A drop is never energy, so nothing here can produce negative energy. The energy between
//! the last reading before a reset and the reset is lost to the count (at most one report
//! interval); the anomaly tells the operator to look.
//!
//! It owns only that arithmetic. It must never do I/O, read a clock, or decide what an
//! anomaly costs.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::Energy;
use crate::sync::{AnomalyKind, Register, RegisterAnomaly};

/// The largest value of a 5-byte register at 0.0001 kWh, in mWh.
pub const REGISTER_MAX_MWH: i64 = ((1i64 << 40) - 1) * 100;

/// A drop from the top tenth of the register's range to its bottom tenth is a rollover; any
/// other drop a decrease.
pub fn anomaly_kind(before: Energy, reading: Energy) -> AnomalyKind {
    if before.mwh() >= REGISTER_MAX_MWH / 10 * 9 && reading.mwh() <= REGISTER_MAX_MWH / 10 {
        AnomalyKind::Rollover
    } else {
        AnomalyKind::Decreased
    }
}

/// One register's running state: its last counted reading and a lower reading waiting for
/// the next one to tell a stale frame from a reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterTrack {
    last: Energy,
    pending: Option<(Energy, Timestamp)>,
}

impl RegisterTrack {
    /// A register first read at `first`.
    pub fn starting_at(first: Energy) -> RegisterTrack {
        RegisterTrack {
            last: first,
            pending: None,
        }
    }

    /// The last reading counting went on from.
    pub fn last(&self) -> Energy {
        self.last
    }

    /// Takes `reading` of `register` seen at `at`: the energy it adds (never negative) and
    /// the anomaly it confirms, if any.
    pub fn step(
        &mut self,
        register: Register,
        at: Timestamp,
        reading: Energy,
    ) -> (Energy, Option<RegisterAnomaly>) {
        let (counted, anomaly) = match self.pending.take() {
            None if reading >= self.last => (self.rise_to(reading), None),
            None => {
                self.pending = Some((reading, at));
                (Energy::ZERO, None)
            }
            // The lower reading was a late frame: count on from the last one.
            Some(_) if reading >= self.last => (self.rise_to(reading), None),
            Some((low, seen)) => {
                let anomaly = self.anomaly(register, low, seen);
                if reading >= low {
                    // The register went down and goes on from there: a new baseline.
                    self.last = low;
                    (self.rise_to(reading), Some(anomaly))
                } else {
                    self.last = low;
                    self.pending = Some((reading, at));
                    (Energy::ZERO, Some(anomaly))
                }
            }
        };
        assert!(counted >= Energy::ZERO, "a drop was counted as energy");
        (counted, anomaly)
    }

    /// The anomaly of a lower reading still pending when the series ends.
    pub fn finish(&self, register: Register) -> Option<RegisterAnomaly> {
        self.pending
            .map(|(low, seen)| self.anomaly(register, low, seen))
    }

    fn rise_to(&mut self, reading: Energy) -> Energy {
        let e = reading - self.last;
        self.last = reading;
        e
    }

    fn anomaly(&self, register: Register, low: Energy, seen: Timestamp) -> RegisterAnomaly {
        RegisterAnomaly {
            register,
            kind: anomaly_kind(self.last, low),
            at: seen,
            before: self.last,
            reading: low,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    /// Counts `whs` (Wh): (energy in Wh, every anomaly including a pending one at the end).
    fn count(whs: &[i64]) -> (i64, Vec<RegisterAnomaly>) {
        let Some((&first, rest)) = whs.split_first() else {
            return (0, Vec::new());
        };
        let mut track = RegisterTrack::starting_at(Energy::from_wh(first));
        let mut energy = Energy::ZERO;
        let mut anomalies = Vec::new();
        for (i, &w) in rest.iter().enumerate() {
            let (e, a) = track.step(Register::Export, t(i as i64 * 15), Energy::from_wh(w));
            energy += e;
            anomalies.extend(a);
        }
        anomalies.extend(track.finish(Register::Export));
        (energy.mwh() / 1_000, anomalies)
    }

    #[test]
    fn a_rising_register_counts_its_increase() {
        assert_eq!(count(&[1_000, 1_500, 1_500, 3_000]), (2_000, vec![]));
    }

    #[test]
    fn a_late_frame_is_dropped_without_counting_twice() {
        assert_eq!(count(&[100, 200, 150, 250]), (150, vec![]));
    }

    #[test]
    fn a_reset_is_reported_and_counting_goes_on_from_the_new_baseline() {
        let (energy, anomalies) = count(&[1_000, 1_500, 0, 300]);
        assert_eq!(energy, 800, "500 before, 300 after");
        assert_eq!(anomalies.len(), 1);
        let a = &anomalies[0];
        assert_eq!(
            (a.register, a.kind),
            (Register::Export, AnomalyKind::Decreased)
        );
        assert_eq!(
            (a.before, a.reading),
            (Energy::from_wh(1_500), Energy::ZERO)
        );
        assert_eq!(a.at, t(15));
    }

    #[test]
    fn a_rollover_is_told_from_a_reset() {
        let near_max = REGISTER_MAX_MWH / 1_000 - 1_000; // in Wh
        let (energy, anomalies) = count(&[near_max, near_max + 500, 100, 400]);
        assert_eq!(anomalies[0].kind, AnomalyKind::Rollover);
        assert_eq!(energy, 800);
    }

    #[test]
    fn lower_again_keeps_the_first_drop_and_waits_for_proof_of_the_second() {
        let (energy, anomalies) = count(&[5_000, 4_000, 3_000, 3_500]);
        assert_eq!(anomalies.len(), 2);
        assert_eq!(energy, 500);
    }

    #[test]
    fn a_drop_pending_at_the_end_is_reported_by_finish() {
        let (energy, anomalies) = count(&[5_000, 4_000]);
        assert_eq!(energy, 0);
        assert_eq!(anomalies.len(), 1);
        assert_eq!(anomalies[0].reading, Energy::from_wh(4_000));
    }

    proptest! {
        #[test]
        fn energy_is_never_negative_nor_above_the_sum_of_rises(
            whs in proptest::collection::vec(0i64..1_000_000, 0..60)
        ) {
            let (energy, _) = count(&whs);
            let rises: i64 = whs.windows(2).map(|w| (w[1] - w[0]).max(0)).sum();
            prop_assert!(energy >= 0);
            prop_assert!(energy <= rises);
        }

        #[test]
        fn a_monotone_series_counts_last_minus_first_without_anomalies(
            steps in proptest::collection::vec(0i64..10_000, 1..60)
        ) {
            let mut acc = 7;
            let whs: Vec<i64> = steps.iter().map(|s| { acc += s; acc }).collect();
            let (energy, anomalies) = count(&whs);
            prop_assert_eq!(energy, whs[whs.len() - 1] - whs[0]);
            prop_assert!(anomalies.is_empty());
        }
    }
}

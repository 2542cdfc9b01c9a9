//! One register of a bidirectional meter, measured from stored readings: the energy that
//! may be billed, the monotone series it is priced with, and the anomalies found.
//!
//! The import and the export register are measured apart (one call each) and never netted,
//! each counted with the protocol crate's [`RegisterTrack`], the rule the edge counts live
//! readings with (see [`voltline_protocol::metering`]: late frames dropped, resets and
//! rollovers listed as anomalies), so that cloud and edge count the same energy from the
//! same readings.
//!
//! A drop is never energy, so nothing here can produce negative energy. The output
//! [`Measured::readings`] is a *virtual* register (0 at the first reading, rising by each
//! counted increase at the instant it was measured), so that the protocol crate's
//! [`Tariff::cost`](voltline_protocol::tariff::Tariff::cost) prices exactly the counted energy,
//! period by period.
//!
//! It owns only that arithmetic. It must never do I/O, read a clock, or decide what an
//! anomaly costs (the caller flags the session; nothing is billed for a drop).

use jiff::Timestamp;
use voltline_protocol::domain::Energy;
use voltline_protocol::metering::RegisterTrack;
use voltline_protocol::sync::{Register, RegisterAnomaly, MAX_LISTED_ANOMALIES};
use voltline_protocol::tariff::MeterReading;

/// One reading of one register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at: Timestamp,
    pub register: Energy,
}

impl Sample {
    pub fn new(at: Timestamp, register: Energy) -> Sample {
        Sample { at, register }
    }
}

/// What one register measured over a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// The counted energy: the sum of the register's increases (never negative).
    pub energy: Energy,
    /// The virtual register to price with: time-ordered, never decreasing, from zero, its
    /// last value `energy`. Empty when there were no samples.
    pub readings: Vec<MeterReading>,
    /// The first [`MAX_LISTED_ANOMALIES`] anomalies.
    pub anomalies: Vec<RegisterAnomaly>,
    /// Every anomaly, listed or not.
    pub anomaly_count: u32,
}

/// Measures `register` from `samples` (sorted by time here, stably, so equal instants keep
/// their order). See the module doc for the rule.
pub fn measure(register: Register, samples: &[Sample]) -> Measured {
    let mut sorted = samples.to_vec();
    sorted.sort_by_key(|s| s.at);
    let mut out = Measured {
        energy: Energy::ZERO,
        readings: Vec::with_capacity(sorted.len()),
        anomalies: Vec::new(),
        anomaly_count: 0,
    };
    let Some(first) = sorted.first() else {
        return out;
    };
    let mut track = RegisterTrack::starting_at(first.register);
    out.readings.push(MeterReading::new(first.at, Energy::ZERO));
    for s in &sorted[1..] {
        let (counted, anomaly) = track.step(register, s.at, s.register);
        if let Some(a) = anomaly {
            out.list(a);
        }
        out.energy += counted;
        out.readings.push(MeterReading::new(s.at, out.energy));
    }
    if let Some(a) = track.finish(register) {
        out.list(a);
    }
    out
}

impl Measured {
    fn list(&mut self, a: RegisterAnomaly) {
        self.anomaly_count = self.anomaly_count.saturating_add(1);
        if self.anomalies.len() < MAX_LISTED_ANOMALIES {
            self.anomalies.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use voltline_protocol::metering::REGISTER_MAX_MWH;
    use voltline_protocol::sync::AnomalyKind;

    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn series(whs: &[i64]) -> Vec<Sample> {
        whs.iter()
            .enumerate()
            .map(|(i, &w)| Sample::new(t(i as i64 * 15), Energy::from_wh(w)))
            .collect()
    }

    fn m(whs: &[i64]) -> Measured {
        measure(Register::Export, &series(whs))
    }

    #[test]
    fn a_rising_register_counts_its_increase_and_prices_the_same_energy() {
        let got = m(&[1_000, 1_500, 1_500, 3_000]);
        assert_eq!(got.energy, Energy::from_wh(2_000));
        assert!(got.anomalies.is_empty());
        let regs: Vec<i64> = got.readings.iter().map(|r| r.register.mwh()).collect();
        assert_eq!(regs, vec![0, 500_000, 500_000, 2_000_000]);
    }

    #[test]
    fn no_or_one_sample_measures_nothing() {
        assert_eq!(m(&[]).energy, Energy::ZERO);
        assert!(m(&[]).readings.is_empty());
        let one = m(&[42]);
        assert_eq!((one.energy, one.readings.len()), (Energy::ZERO, 1));
    }

    #[test]
    fn a_stale_lower_frame_is_dropped_without_an_anomaly() {
        let got = m(&[1_000, 2_000, 1_500, 2_500]);
        assert_eq!(got.energy, Energy::from_wh(1_500));
        assert!(got.anomalies.is_empty());
    }

    #[test]
    fn a_reset_is_flagged_and_counts_only_what_follows_it() {
        let got = m(&[1_000, 2_000, 0, 300]);
        assert_eq!(got.energy, Energy::from_wh(1_300));
        assert_eq!(got.anomaly_count, 1);
        let a = &got.anomalies[0];
        assert_eq!(
            (a.kind, a.register),
            (AnomalyKind::Decreased, Register::Export)
        );
        assert_eq!(
            (a.before, a.reading),
            (Energy::from_wh(2_000), Energy::ZERO)
        );
        assert_eq!(a.at, t(30));
    }

    #[test]
    fn a_rollover_is_told_apart_from_a_decrease() {
        let near_max = REGISTER_MAX_MWH / 1_000 - 1_000; // in Wh
        let got = m(&[near_max, near_max + 500, 100, 400]);
        assert_eq!(got.anomalies[0].kind, AnomalyKind::Rollover);
        assert_eq!(got.energy, Energy::from_wh(800));
    }

    #[test]
    fn a_series_ending_lower_lists_the_drop_and_bills_nothing_for_it() {
        let got = m(&[5_000, 4_000]);
        assert_eq!(got.energy, Energy::ZERO);
        assert_eq!(got.anomaly_count, 1);
    }

    #[test]
    fn lower_again_keeps_the_first_drop_and_waits_for_proof_of_the_second() {
        let got = m(&[5_000, 4_000, 3_000, 3_500]);
        // 3000 is lower again: the drop to 4000 stands and 3000 waits; 3500 continues from
        // 3000, confirming it.
        assert_eq!(got.anomaly_count, 2);
        assert_eq!(got.energy, Energy::from_wh(500));
    }

    #[test]
    fn listed_anomalies_are_bounded_but_all_are_counted() {
        let mut whs = Vec::new();
        for _ in 0..40 {
            whs.extend([2_000, 0, 1]);
        }
        let got = m(&whs);
        assert_eq!(got.anomalies.len(), MAX_LISTED_ANOMALIES);
        assert!(got.anomaly_count as usize > MAX_LISTED_ANOMALIES);
    }

    #[test]
    fn samples_out_of_time_order_are_sorted_first() {
        let mut s = series(&[1_000, 2_000, 3_000]);
        s.reverse();
        assert_eq!(measure(Register::Import, &s).energy, Energy::from_wh(2_000));
    }

    proptest! {
        #[test]
        fn energy_is_never_negative_nor_above_the_sum_of_rises(
            whs in proptest::collection::vec(0i64..1_000_000, 0..60)
        ) {
            let got = m(&whs);
            let rises: i64 = whs.windows(2).map(|w| (w[1] - w[0]).max(0)).sum();
            prop_assert!(got.energy >= Energy::ZERO);
            prop_assert!(got.energy <= Energy::from_wh(rises));
            prop_assert!(got.readings.windows(2).all(|w| w[0].register <= w[1].register));
            if let Some(last) = got.readings.last() {
                prop_assert_eq!(last.register, got.energy);
            }
        }

        #[test]
        fn a_monotone_series_counts_last_minus_first_without_anomalies(
            steps in proptest::collection::vec(0i64..10_000, 1..60)
        ) {
            let mut acc = 7;
            let whs: Vec<i64> = steps.iter().map(|s| { acc += s; acc }).collect();
            let got = m(&whs);
            prop_assert_eq!(got.energy, Energy::from_wh(whs[whs.len() - 1] - whs[0]));
            prop_assert_eq!(got.anomaly_count, 0);
        }
    }
}
